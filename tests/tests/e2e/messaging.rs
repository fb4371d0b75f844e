//! Messaging across real processes, under kill -9: nothing lost, nothing twice.
//! The server runs inside the test (for its bulk publisher and its authoritative
//! inbox); rcimd is a real process that the tests kill and restart.

use crate::CLIENT;
use rcim_proto::message::ConversationKey;
use rcim_tests::{
    InProcessServer, Rng, Seen, TestDaemon, client_output, eventually, spawn_client, stored_uids,
    wait_stored,
};
use std::time::Duration;

fn server_uids(server: &InProcessServer, user: &str) -> Vec<String> {
    server
        .block_on(server.get().inbox_uids(user))
        .expect("inbox")
        .into_iter()
        .map(|(_, uid)| uid)
        .collect()
}

#[test]
fn kill_9_during_a_20000_message_stream_loses_and_duplicates_nothing() {
    const ROUNDS: u32 = 20;
    const PER_ROUND: u32 = 1_000;
    let mut rng = Rng::from_env("kill_9_during_a_stream");
    let mut server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let mut daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);

    let mut kills = 0;
    let mut restarts = 0;
    for round in 0..ROUNDS {
        // The server streams a burst while the daemon dies at a random moment (now
        // and then the server restarts instead, while the daemon is still syncing).
        let kill_daemon = round % 5 != 4;
        let pause = Duration::from_millis(rng.below(400));
        std::thread::scope(|scope| {
            let publisher = scope.spawn(|| {
                server.block_on(server.get().publish_private_bulk(
                    "bob",
                    "alice",
                    PER_ROUND,
                    "RC:TxtMsg",
                    "m",
                ))
            });
            std::thread::sleep(pause);
            if kill_daemon && round % 5 == 2 {
                // A clean stop in the middle of the burst loses nothing either.
                let status = daemon.proc.terminate().expect("SIGTERM");
                assert!(status.success(), "rcimd exits 0 on SIGTERM: {status}");
            } else if kill_daemon {
                daemon.proc.kill9();
            }
            publisher.join().expect("publisher").expect("publish");
        });
        if kill_daemon {
            kills += 1;
            daemon.restart(&server.url(), &[]);
        } else {
            restarts += 1;
            server.restart();
        }
        daemon.connect(&token);
    }
    let total = usize::try_from(ROUNDS * PER_ROUND).expect("fits");
    wait_stored(&daemon, "alice", total, Duration::from_secs(120));
    let (stored, integrity) = stored_uids(&daemon.data_dir, "alice");
    let expected = server_uids(&server, "alice");
    assert_eq!(expected.len(), total);
    assert_eq!(integrity, "ok");
    assert_eq!(stored.len(), total, "count");
    assert_eq!(
        stored, expected,
        "every message exactly once, in inbox order"
    );
    eprintln!(
        "{kills} daemon stops ({} of them SIGTERM, the rest kill -9), {restarts} server restarts, {total} messages, 0 lost, 0 duplicated",
        ROUNDS / 5
    );
}

#[test]
fn kill_9_with_1000_messages_in_the_outbox_delivers_each_once() {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let mut daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);

    // 1,000 sends from a real client; each is in the outbox when its code comes back.
    let socket = daemon.socket.clone();
    server.block_on(async move {
        let options = rcim_client::ClientOptions {
            socket: Some(socket),
            ..rcim_client::ClientOptions::named("sender")
        };
        let client = rcim_client::Client::attach(options).await.expect("attach");
        let mut calls = Vec::new();
        for i in 0..1_000 {
            let content = format!("{{\"content\":\"out {i}\"}}");
            calls.push(
                client
                    .send_message(ConversationKey::private("bob"), "RC:TxtMsg", &content)
                    .await
                    .expect("send"),
            );
        }
        for call in &calls {
            assert_eq!(call.code(), 0);
        }
        // Leave the calls open: the daemon dies with some of them in flight.
        std::mem::forget(calls);
    });
    daemon.proc.kill9();
    daemon.restart(&server.url(), &[]);
    daemon.connect(&token);

    let delivered = eventually(Duration::from_secs(60), || {
        server
            .block_on(server.get().inbox_uids("bob"))
            .expect("inbox")
            .len()
            >= 1_000
    });
    assert!(delivered, "not all 1,000 messages reached bob");
    std::thread::sleep(Duration::from_millis(500));
    let sent = server
        .block_on(server.get().messages_from("alice"))
        .expect("messages");
    assert_eq!(sent.len(), 1_000, "each message exactly once on the server");
    let mut ids: Vec<_> = sent
        .iter()
        .map(|(client_id, _)| client_id.clone())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1_000);
    assert_eq!(
        server
            .block_on(server.get().inbox_uids("bob"))
            .expect("inbox")
            .len(),
        1_000
    );
}

#[test]
fn an_unusable_data_dir_gives_33002_then_the_connect_result() {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    // The daemon runs as root in CI, so permissions cannot stop it: put a file
    // where the users directory must go.
    std::fs::write(daemon.data_dir.join("users"), b"not a directory").expect("write");
    let seen = client_output(spawn_client(CLIENT, &daemon.socket, &token, 10));
    assert_eq!(
        seen,
        vec![
            Seen::DatabaseOpened(33002),
            Seen::Connected(0, Some("alice".into()))
        ]
    );
}

#[test]
fn every_caller_hears_database_opened_before_connected() {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let clients: Vec<_> = (0..5)
        .map(|_| spawn_client(CLIENT, &daemon.socket, &token, 0))
        .collect();
    for client in clients {
        assert_eq!(
            client_output(client),
            vec![
                Seen::DatabaseOpened(0),
                Seen::Connected(0, Some("alice".into()))
            ]
        );
    }
}
