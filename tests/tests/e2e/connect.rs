//! `connect` through the daemon: many callers, one upstream connection, RC's codes.

use crate::CLIENT;
use rcim_tests::{Seen, TestDaemon, TestServer, client_output, eventually, spawn_client};
use std::time::Duration;

#[test]
fn three_client_processes_share_one_upstream_connect() {
    let server = TestServer::start();
    let token = server.token("alice");
    let daemon = TestDaemon::start(&server.url(), &[]);

    let clients: Vec<_> = (0..3)
        .map(|_| spawn_client(CLIENT, &daemon.socket, &token, 0))
        .collect();
    for client in clients {
        assert_eq!(
            client_output(client),
            vec![
                Seen::DatabaseOpened(0),
                Seen::Connected(0, Some("alice".into())),
            ]
        );
    }
    let stats = server.stats();
    assert_eq!(
        stats.connects_accepted, 1,
        "one upstream CONNECT for three callers"
    );
    assert_eq!(stats.connects_rejected, 0);
    assert_eq!(stats.online, 1);

    let status = daemon.status();
    assert_eq!(status["status"], "connected");
    assert_eq!(status["status_code"], 1);
    assert_eq!(status["user_id"], "alice");
    assert_eq!(status["server"], server.url());
    assert_eq!(status["reconnects"], 0);
    assert_eq!(status["last_error"], serde_json::Value::Null);
    assert!(daemon.data_dir.join("users/alice/rcim.db").exists());
}

#[test]
fn a_later_caller_joins_the_live_connection() {
    let server = TestServer::start();
    let token = server.token("alice");
    let daemon = TestDaemon::start(&server.url(), &[]);
    for _ in 0..2 {
        let seen = client_output(spawn_client(CLIENT, &daemon.socket, &token, 5));
        assert_eq!(
            seen,
            vec![
                Seen::DatabaseOpened(0),
                Seen::Connected(0, Some("alice".into()))
            ]
        );
    }
    assert_eq!(server.stats().connects_accepted, 1);
}

#[test]
fn a_wrong_token_gets_31004_once_and_is_not_retried() {
    let server = TestServer::start();
    // A readable token (it names alice) whose signature the server refuses.
    let good = server.token("alice");
    let (payload, _) = good.split_once('.').expect("payload.signature");
    let forged = format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let daemon = TestDaemon::start(&server.url(), &[]);

    let seen = client_output(spawn_client(CLIENT, &daemon.socket, &forged, 0));
    assert_eq!(
        seen,
        vec![Seen::DatabaseOpened(0), Seen::Connected(31004, None)]
    );

    let status = daemon.wait_status("token_incorrect");
    assert_eq!(status["status_code"], 5);
    assert_eq!(status["last_error"]["code"], 31004);
    // Several steps of the retry schedule (0.05 + 0.25 + 0.5 + 1 s) pass: no retry.
    std::thread::sleep(Duration::from_millis(2_000));
    let stats = server.stats();
    assert_eq!(
        stats.connects_rejected, 1,
        "exactly one attempt reached the server"
    );
    assert_eq!(stats.connects_accepted, 0);
    assert_eq!(daemon.status()["status"], "token_incorrect");
    assert!(
        !daemon.proc.log().contains(&forged) && !daemon.proc.log().contains(payload),
        "the token text must never be logged"
    );
}

#[test]
fn an_unreadable_token_is_sent_once_and_refused() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let seen = client_output(spawn_client(CLIENT, &daemon.socket, "not-a-token", 0));
    // No user can be read from it, so no database is opened: only onConnected.
    assert_eq!(seen, vec![Seen::Connected(31004, None)]);
    assert!(eventually(Duration::from_secs(5), || server
        .stats()
        .connects_rejected
        == 1));
}

#[test]
fn bad_arguments_are_rejected_at_once() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let long = "x".repeat(5000);
    for bad in ["", "   ", long.as_str()] {
        let seen = client_output(spawn_client(CLIENT, &daemon.socket, bad, 0));
        assert_eq!(
            seen,
            vec![Seen::Rejected(33003)],
            "token {:?}",
            &bad[..bad.len().min(8)]
        );
    }
    assert_eq!(
        server.stats().connects_rejected + server.stats().connects_accepted,
        0
    );
}

#[test]
fn another_user_while_connected_gets_34001() {
    let server = TestServer::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let seen = client_output(spawn_client(CLIENT, &daemon.socket, &alice, 0));
    assert_eq!(seen.last(), Some(&Seen::Connected(0, Some("alice".into()))));
    let seen = client_output(spawn_client(CLIENT, &daemon.socket, &bob, 0));
    assert_eq!(seen, vec![Seen::Rejected(34001)]);
    assert_eq!(server.stats().connects_accepted, 1);
    assert_eq!(daemon.status()["user_id"], "alice");
}

#[test]
fn timeout_against_an_unreachable_server_gives_34006() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let server = TestServer::start();
    let token = server.token("alice");
    let daemon = TestDaemon::start(&format!("rcim://127.0.0.1:{port}"), &[]);
    let seen = client_output(spawn_client(CLIENT, &daemon.socket, &token, 1));
    assert_eq!(
        seen,
        vec![Seen::DatabaseOpened(0), Seen::Connected(34006, None)]
    );
    let status = daemon.wait_status("timeout");
    assert_eq!(status["status_code"], 9);
}
