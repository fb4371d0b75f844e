//! Unread counts, read receipts and read sync across real processes: the
//! reference server in the test, one rcimd per device, `rcimctl` and
//! `rcim-client` as the apps. Two devices of one user are two rcimd with their own
//! data dirs; both are desktops, so the second one's connect takes over from the
//! first (RC's one-connection-per-platform rule) and syncs what the first did.

use rcim_client::{Client, ClientOptions, ConversationKey, Event};
use rcim_tests::{InProcessServer, TestDaemon, eventually, query_db, wait_stored};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// `rcimctl ARGS --json` against `daemon`, parsed; panics unless it succeeds.
fn ctl_json(daemon: &TestDaemon, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = daemon.ctl(&all);
    assert!(
        out.status.success(),
        "rcimctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// One integer from `user`'s database in `daemon`.
fn db_int(daemon: &TestDaemon, user: &str, sql: &str) -> i64 {
    query_db(&daemon.data_dir, user, sql)
        .first()
        .and_then(|row| row.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// An attached client on `socket`, with its event stream.
fn attach(server: &InProcessServer, socket: &Path, name: &str) -> (Client, rcim_client::Events) {
    let options = ClientOptions {
        socket: Some(socket.to_owned()),
        ..ClientOptions::named(name)
    };
    server
        .block_on(Client::attach_with_events(options))
        .expect("attach")
}

/// Reads `events` until `want` matches one (panics after [`WAIT`]).
fn wait_event(
    server: &InProcessServer,
    events: &mut rcim_client::Events,
    want: impl Fn(&Event) -> bool,
) -> Event {
    use futures_util::StreamExt as _;
    server.block_on(async {
        tokio::time::timeout(WAIT, async {
            loop {
                match events.next().await {
                    Some(Ok(event)) if want(&event) => return event,
                    Some(_) => {}
                    None => panic!("the event stream ended"),
                }
            }
        })
        .await
        .expect("the event came")
    })
}

/// alice and bob, each with an rcimd connected to one in-process server.
fn alice_and_bob() -> (InProcessServer, String, TestDaemon, TestDaemon) {
    let server = InProcessServer::start();
    let alice_token = server.get().issue_token("alice", "Alice").expect("token");
    let bob_token = server.get().issue_token("bob", "Bob").expect("token");
    let alice = TestDaemon::start(&server.url(), &[]);
    alice.connect(&alice_token);
    let bob = TestDaemon::start(&server.url(), &[]);
    bob.connect(&bob_token);
    (server, alice_token, alice, bob)
}

/// Bob sends `n` texts to alice from his device (waiting for each to be sent).
fn bob_sends(bob: &TestDaemon, n: usize) {
    for i in 0..n {
        let out = bob.ctl(&["send", "--to", "alice", "--text", &format!("hi {i}")]);
        assert!(
            out.status.success(),
            "send: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn reading_clears_the_count_tells_the_peer_and_the_other_device() {
    let (server, alice_token, alice, bob) = alice_and_bob();
    let (_bob_app, mut bob_events) = attach(&server, &bob.socket, "bob-app");
    bob_sends(&bob, 3);
    wait_stored(&alice, "alice", 3, WAIT);

    // Kept counts, total, per type and per conversation.
    assert_eq!(alice.status()["unread_total"], 3);
    assert_eq!(ctl_json(&alice, &["unread"])["unread_count"], 3);
    assert_eq!(
        ctl_json(&alice, &["unread", "--type", "private"])["unread_count"],
        3
    );
    assert_eq!(
        ctl_json(&alice, &["unread", "--type", "group"])["unread_count"],
        0
    );
    assert_eq!(
        ctl_json(&alice, &["unread", "--with", "bob"])["unread_count"],
        3
    );
    let conversations = ctl_json(&alice, &["conversations"]);
    assert_eq!(conversations["conversations"][0]["unread_count"], 3);

    // alice reads on her device.
    let read = ctl_json(&alice, &["read", "--with", "bob"]);
    assert_eq!(read["unread_count"], 0);
    assert_eq!(alice.status()["unread_total"], 0);

    // bob hears the receipt and sees his messages read.
    let newest_sent = db_int(
        &bob,
        "bob",
        "SELECT MAX(sent_time) FROM messages WHERE direction = 0",
    );
    let receipt = wait_event(&server, &mut bob_events, |e| {
        matches!(e, Event::ReadReceipt { .. })
    });
    assert_eq!(
        receipt,
        Event::ReadReceipt {
            conversation: ConversationKey::private("alice"),
            last_message_send_time_ms: newest_sent,
        }
    );
    assert!(
        eventually(WAIT, || db_int(
            &bob,
            "bob",
            "SELECT COUNT(*) FROM messages WHERE direction = 0 AND sent_status = 4"
        ) == 3),
        "bob's three messages are read"
    );
    let history = ctl_json(&bob, &["history", "--with", "alice"]);
    for message in history["messages"].as_array().expect("messages") {
        assert_eq!(message["sent_status"], "read", "{message}");
    }

    // alice's other device syncs: the messages arrive, already read.
    let alice2 = TestDaemon::start(&server.url(), &[]);
    alice2.connect(&alice_token);
    wait_stored(&alice2, "alice", 3, WAIT);
    assert!(
        eventually(WAIT, || alice2.status()["unread_total"] == 0),
        "the read position came along: {}",
        alice2.status()
    );
    assert_eq!(
        ctl_json(&alice2, &["unread", "--with", "bob"])["unread_count"],
        0
    );

    // Neither command is a message anywhere: not stored, not counted, not shown.
    for (daemon, user) in [(&alice, "alice"), (&alice2, "alice"), (&bob, "bob")] {
        assert_eq!(
            db_int(
                daemon,
                user,
                "SELECT COUNT(*) FROM messages WHERE object_name IN ('RC:ReadNtf', 'RC:SRSMsg')"
            ),
            0
        );
    }
}

#[test]
fn a_read_position_in_the_future_is_refused_with_33003() {
    let (_server, _token, alice, bob) = alice_and_bob();
    bob_sends(&bob, 1);
    wait_stored(&alice, "alice", 1, WAIT);
    let future = (rcim_proto::time::now_ms() + 3_600_000).to_string();
    let out = alice.ctl(&["read", "--with", "bob", "--up-to", &future]);
    assert_eq!(out.status.code(), Some(1), "an RC error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("33003"), "{stderr}");
    // Nothing was cleared or queued.
    assert_eq!(alice.status()["unread_total"], 1);
    assert_eq!(
        db_int(&alice, "alice", "SELECT COUNT(*) FROM command_outbox"),
        0
    );
    // A negative position is a usage error before it reaches rcimd.
    let out = alice.ctl(&["read", "--with", "bob", "--up-to", "-5"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sending_and_reading_concurrently_leaves_exact_counts_on_both_devices() {
    const MESSAGES: usize = 300;
    const READS: usize = 25;
    let (server, alice_token, alice, bob) = alice_and_bob();
    let (bob_app, _bob_events) = attach(&server, &bob.socket, "bob-sender");
    let (alice_app, _alice_events) = attach(&server, &alice.socket, "alice-reader");

    // bob sends while alice marks the conversation read, again and again.
    let sender = server.spawn(async move {
        let mut calls = Vec::new();
        for i in 0..MESSAGES {
            let content = format!("{{\"content\":\"m{i}\"}}");
            let call = bob_app
                .send_message(ConversationKey::private("alice"), "RC:TxtMsg", &content)
                .await
                .expect("send");
            calls.push(call);
            if i % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for call in calls {
            let sent = call.sent().await;
            assert_eq!(sent.code, 0);
        }
    });
    let reader = server.spawn(async move {
        for i in 0..READS {
            let code = alice_app
                .mark_read(ConversationKey::private("bob"), 0)
                .await
                .expect("mark read");
            assert_eq!(code, 0);
            tokio::time::sleep(Duration::from_millis(5 + (i as u64 * 7) % 20)).await;
        }
    });
    server.block_on(sender).expect("sender");
    server.block_on(reader).expect("reader");
    wait_stored(&alice, "alice", MESSAGES, WAIT);
    assert!(
        eventually(WAIT, || db_int(
            &alice,
            "alice",
            "SELECT COUNT(*) FROM command_outbox"
        ) == 0),
        "every read went out"
    );

    // Exact: what is unread is exactly what was sent after the read position.
    let read_time = db_int(&alice, "alice", "SELECT read_time FROM read_state");
    let expected = db_int(
        &alice,
        "alice",
        &format!("SELECT COUNT(*) FROM messages WHERE direction = 1 AND sent_time > {read_time}"),
    );
    let kept = ctl_json(&alice, &["unread", "--with", "bob"])["unread_count"]
        .as_i64()
        .expect("count");
    assert_eq!(kept, expected, "read up to {read_time}");
    assert_eq!(alice.status()["unread_total"], expected);
    assert_eq!(
        db_int(
            &alice,
            "alice",
            "SELECT COUNT(*) FROM messages WHERE unread = 1"
        ),
        expected
    );

    // The second device, syncing messages and read positions interleaved as the
    // server's inbox has them, ends with the same count.
    let alice2 = TestDaemon::start(&server.url(), &[]);
    alice2.connect(&alice_token);
    wait_stored(&alice2, "alice", MESSAGES, WAIT);
    assert!(
        eventually(
            WAIT,
            || ctl_json(&alice2, &["unread", "--with", "bob"])["unread_count"] == expected
        ),
        "second device: {} unread, want {expected}",
        ctl_json(&alice2, &["unread", "--with", "bob"])
    );
    assert_eq!(
        db_int(&alice2, "alice", "SELECT read_time FROM read_state"),
        read_time
    );
    eprintln!(
        "{MESSAGES} messages, {READS} reads interleaved: read up to {read_time}, {expected} unread on both devices"
    );
}

#[test]
fn kill_9_right_after_a_read_sends_each_notification_exactly_once() {
    let (server, alice_token, mut alice, bob) = alice_and_bob();
    bob_sends(&bob, 2);
    wait_stored(&alice, "alice", 2, WAIT);
    let out = alice.ctl(&["read", "--with", "bob"]);
    assert!(out.status.success());
    // Dies with the notifications perhaps sent, perhaps only queued.
    alice.proc.kill9();
    alice.restart(&server.url(), &[]);
    alice.connect(&alice_token);
    assert!(
        eventually(WAIT, || db_int(
            &alice,
            "alice",
            "SELECT COUNT(*) FROM command_outbox"
        ) == 0),
        "the queue drains after the restart"
    );
    // The server holds each command once: bob's inbox has his receipt once, and
    // alice published exactly two commands (the receipt and the read sync).
    assert!(eventually(WAIT, || {
        server
            .block_on(server.get().inbox_uids("bob"))
            .expect("inbox")
            .len()
            == 1
    }));
    let published = server
        .block_on(server.get().messages_from("alice"))
        .expect("sent");
    assert_eq!(published.len(), 2, "{published:?}");
    assert!(
        eventually(WAIT, || db_int(
            &bob,
            "bob",
            "SELECT COUNT(*) FROM messages WHERE direction = 0 AND sent_status = 4"
        ) == 2),
        "bob's messages are read"
    );
    assert_eq!(alice.status()["unread_total"], 0);
}
