//! Typing status and status messages across real processes: delivered to the
//! devices online at that moment, never stored, never counted, never synced later.
//! The back-end side is driven by RC's official Python server SDK
//! (rc-server-sdk 3.2.0, in a venv that `tests/rc-server-sdk/setup.sh` makes
//! once), against the Server API of the in-process reference server.

use rcim_client::{Client, ClientOptions, ConversationKey, Event, Events, RcCode};
use rcim_tests::{APP_KEY, APP_SECRET, InProcessServer, TestDaemon, eventually, query_db};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The venv's python with rc-server-sdk 3.2.0: `RCIM_RC_SDK_PYTHON` when set,
/// otherwise what `tests/rc-server-sdk/setup.sh` makes (it installs from PyPI
/// the first time only).
pub(crate) fn sdk_python() -> PathBuf {
    if let Some(python) = std::env::var_os("RCIM_RC_SDK_PYTHON") {
        return python.into();
    }
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("rc-server-sdk/setup.sh");
    let out = Command::new(&setup).output().expect("run setup.sh");
    assert!(
        out.status.success(),
        "RC's Python server SDK is needed for this test and could not be installed \
         ({}): {}; run {} with PyPI reachable once, or set RCIM_RC_SDK_PYTHON",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        setup.display()
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// Runs `code` (Python, with `rc` a `RongCloud` against `api_url`) and returns
/// what it prints.
fn sdk(api_url: &str, code: &str) -> String {
    let script = format!(
        "import json\nfrom rongcloud.rongcloud import RongCloud\n\
         rc = RongCloud({APP_KEY:?}, {APP_SECRET:?}, {api_url:?})\n{code}\n"
    );
    let out = Command::new(sdk_python())
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An attached client on `socket`, with its event stream.
fn attach(server: &InProcessServer, socket: &Path, name: &str) -> (Client, Events) {
    let options = ClientOptions {
        socket: Some(socket.to_owned()),
        ..ClientOptions::named(name)
    };
    server
        .block_on(Client::attach_with_events(options))
        .expect("attach")
}

/// Every event until (and with) the first one `last` matches; panics after
/// [`WAIT`].
fn events_until(
    server: &InProcessServer,
    events: &mut Events,
    last: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    use futures_util::StreamExt as _;
    server.block_on(async {
        let mut seen = Vec::new();
        tokio::time::timeout(WAIT, async {
            loop {
                match events.next().await {
                    Some(Ok(event)) => {
                        let done = last(&event);
                        seen.push(event);
                        if done {
                            return;
                        }
                    }
                    Some(Err(_)) => {}
                    None => panic!("the event stream ended after {seen:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no end event; saw {seen:?}"));
        seen
    })
}

/// Whether `event` is a status message whose content is `content`.
fn status_with(event: &Event, content: &str) -> bool {
    matches!(event, Event::StatusMessageReceived { message } if message.content == content)
}

/// The number of rows of `sql` in `user`'s database.
fn count(daemon: &TestDaemon, user: &str, sql: &str) -> i64 {
    query_db(&daemon.data_dir, user, sql)
        .first()
        .and_then(|row| row.first())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn connected(server: &InProcessServer, user: &str) -> (String, TestDaemon) {
    let token = server.get().issue_token(user, user).expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);
    (token, daemon)
}

#[test]
fn typing_spam_reaches_the_online_peer_once_and_is_never_stored() {
    let server = InProcessServer::start();
    let (_, alice) = connected(&server, "alice");
    let (_, bob) = connected(&server, "bob");
    let (_bob_app, mut bob_events) = attach(&server, &bob.socket, "bob-app");
    let (alice_app, _) = attach(&server, &alice.socket, "alice-app");

    // Typing spam: twenty calls in a row, each answered 0.
    let bob_key = ConversationKey::private("bob");
    for _ in 0..20 {
        let code = server
            .block_on(alice_app.send_typing_status(bob_key.clone(), "RC:TxtMsg"))
            .expect("typing");
        assert_eq!(code, 0);
    }
    // A status message after them, on the same path, marks the end.
    let code = server
        .block_on(alice_app.send_status_message(bob_key.clone(), "app:Mark", "{\"end\":1}"))
        .expect("status");
    assert_eq!(code, 0);
    let seen = events_until(&server, &mut bob_events, |e| status_with(e, "{\"end\":1}"));
    let typing: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::TypingStatus {
                conversation,
                users,
            } => Some((conversation.clone(), users.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(typing.len(), 1, "one typing status per 6 s: {seen:?}");
    assert_eq!(typing[0].0, ConversationKey::private("alice"));
    assert_eq!(typing[0].1.len(), 1);
    assert_eq!(typing[0].1[0].user_id, "alice");
    assert_eq!(typing[0].1[0].content_type, "RC:TxtMsg");

    // Typing is for private conversations only (RC): 33003 at once.
    let code = server
        .block_on(alice_app.send_typing_status(ConversationKey::group("team"), "RC:TxtMsg"))
        .expect("typing");
    assert_eq!(code, RcCode::INVALID_PARAMETER.0);
    let out = alice.ctl(&["typing", "--with", "a b"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Nothing stored or counted anywhere.
    for (daemon, user) in [(&alice, "alice"), (&bob, "bob")] {
        assert_eq!(count(daemon, user, "SELECT COUNT(*) FROM messages"), 0);
        assert_eq!(daemon.status()["unread_total"], 0);
    }
    assert!(
        server
            .block_on(server.get().inbox_uids("bob"))
            .expect("inbox")
            .is_empty()
    );
}

#[test]
fn a_status_message_reaches_online_devices_only() {
    let server = InProcessServer::start();
    let (_, alice) = connected(&server, "alice");
    let (bob_token, mut bob) = connected(&server, "bob");
    let (alice_app, _) = attach(&server, &alice.socket, "alice-app");
    let bob_key = ConversationKey::private("bob");

    // bob is offline when alice sends one.
    bob.proc.kill9();
    assert!(eventually(WAIT, || !server.get().is_online("bob")));
    let code = server
        .block_on(alice_app.send_status_message(bob_key.clone(), "app:Ping", "{\"n\":1}"))
        .expect("status");
    assert_eq!(code, 0);
    // Back online: a later one arrives, the missed one never does.
    bob.restart(&server.url(), &[]);
    bob.connect(&bob_token);
    let (_bob_app, mut bob_events) = attach(&server, &bob.socket, "bob-app");
    let code = server
        .block_on(alice_app.send_status_message(bob_key.clone(), "app:Ping", "{\"n\":2}"))
        .expect("status");
    assert_eq!(code, 0);
    let seen = events_until(&server, &mut bob_events, |e| status_with(e, "{\"n\":2}"));
    assert!(
        !seen.iter().any(|e| status_with(e, "{\"n\":1}")),
        "a status message sent while offline is never delivered: {seen:?}"
    );
    assert_eq!(count(&bob, "bob", "SELECT COUNT(*) FROM messages"), 0);

    // Not connected: 30002, nothing queued.
    let out = alice.ctl(&["disconnect"]);
    assert!(out.status.success());
    let code = server
        .block_on(alice_app.send_status_message(bob_key, "app:Ping", "{\"n\":3}"))
        .expect("status");
    assert_eq!(code, RcCode::RC_NETWORK_UNAVAILABLE.0);
}

#[test]
fn rc_python_server_sdk_sends_status_messages_to_online_devices_only() {
    let server = InProcessServer::start();
    let api = server.get().api_url();
    let (alice_token, mut alice) = connected(&server, "alice");
    let (_, bob) = connected(&server, "bob");
    server
        .block_on(server.get().create_group("team", "Team", &["alice", "bob"]))
        .expect("group");
    let (_alice_app, mut alice_events) = attach(&server, &alice.socket, "alice-app");
    let (_bob_app, mut bob_events) = attach(&server, &bob.socket, "bob-app");

    // Private, through the SDK's own call.
    let answer = sdk(
        &api,
        "print(json.dumps(rc.get_message().get_private().send_status_message(\
         'backend', ['alice'], 'app:Presence', {'state': 'away'})))",
    );
    assert_eq!(answer, "{\"code\": 200}");
    let seen = events_until(&server, &mut alice_events, |e| {
        matches!(e, Event::StatusMessageReceived { .. })
    });
    let Some(Event::StatusMessageReceived { message }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(message.sender, "backend");
    assert_eq!(message.conversation, ConversationKey::private("backend"));
    assert_eq!(message.object_name, "app:Presence");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&message.content).expect("JSON"),
        serde_json::json!({"state": "away"})
    );

    // Group: every online member.
    let answer = sdk(
        &api,
        "print(json.dumps(rc.get_message().get_group().send_status_message(\
         'backend', ['team'], 'app:Presence', {'state': 'busy'})))",
    );
    assert_eq!(answer, "{\"code\": 200}");
    for events in [&mut alice_events, &mut bob_events] {
        let seen = events_until(
            &server,
            events,
            |e| matches!(e, Event::StatusMessageReceived { message } if message.content.contains("busy")),
        );
        let Some(Event::StatusMessageReceived { message }) = seen.last() else {
            unreachable!()
        };
        assert_eq!(message.conversation, ConversationKey::group("team"));
    }

    // alice offline: the SDK's call succeeds, and she never gets it.
    alice.proc.kill9();
    assert!(eventually(WAIT, || !server.get().is_online("alice")));
    let answer = sdk(
        &api,
        "print(json.dumps(rc.get_message().get_private().send_status_message(\
         'backend', ['alice'], 'app:Presence', {'state': 'missed'})))",
    );
    assert_eq!(answer, "{\"code\": 200}");
    alice.restart(&server.url(), &[]);
    alice.connect(&alice_token);
    let (_alice_app, mut alice_events) = attach(&server, &alice.socket, "alice-app-2");
    sdk(
        &api,
        "rc.get_message().get_private().send_status_message(\
         'backend', ['alice'], 'app:Presence', {'state': 'back'})",
    );
    let seen = events_until(
        &server,
        &mut alice_events,
        |e| matches!(e, Event::StatusMessageReceived { message } if message.content.contains("back")),
    );
    assert!(
        !seen.iter().any(|e| matches!(e,
            Event::StatusMessageReceived { message } if message.content.contains("missed"))),
        "{seen:?}"
    );

    // Never stored, counted or in any inbox.
    for (daemon, user) in [(&alice, "alice"), (&bob, "bob")] {
        assert_eq!(count(daemon, user, "SELECT COUNT(*) FROM messages"), 0);
        assert_eq!(daemon.status()["unread_total"], 0);
        assert!(
            server
                .block_on(server.get().inbox_uids(user))
                .expect("inbox")
                .is_empty()
        );
    }

    // Bad input gets RC's error body, through the SDK too.
    let too_many: Vec<String> = (0..1001).map(|i| format!("'u{i}'")).collect();
    let answer = sdk(
        &api,
        &format!(
            "print(json.dumps(rc.get_message().get_private().send_status_message(\
             'backend', [{}], 'app:Presence', {{}})))",
            too_many.join(",")
        ),
    );
    assert!(!answer.contains("\"code\": 200"), "{answer}");
    let (status, body) = server
        .block_on(rcim_server::api_client::post_signed(
            &api,
            APP_KEY,
            APP_SECRET,
            "/statusmessage/private/publish.json",
            &[
                ("fromUserId", "backend"),
                ("objectName", "app:Presence"),
                ("content", "{}"),
            ],
        ))
        .expect("post");
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], 1002, "{body}");
}
