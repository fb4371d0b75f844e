//! Recall across real processes: two rcimd (alice, bob) on one server; the
//! sender recalls with `rcimctl recall`, the app server with RC's own Python
//! server SDK; an offline device applies the recall at its next sync, once.

use rcim_tests::{APP_KEY, APP_SECRET, InProcessServer, TestDaemon, eventually, query_db};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A daemon connected as `user`.
fn daemon_for(server: &InProcessServer, user: &str) -> (TestDaemon, String) {
    let token = server.get().issue_token(user, user).expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);
    (daemon, token)
}

/// (uid, object name, content, sent time) of every message `user` stores.
fn rows(daemon: &TestDaemon, user: &str) -> Vec<Vec<String>> {
    query_db(
        &daemon.data_dir,
        user,
        "SELECT uid, object_name, content, sent_time FROM messages ORDER BY id",
    )
}

/// Sends `text` from `daemon` to `to` with rcimctl; waits for the server's uid.
fn send(daemon: &TestDaemon, to: &str, text: &str) {
    let out = daemon.ctl(&["send", "--to", to, "--text", text]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_rows(daemon: &TestDaemon, user: &str, what: impl Fn(&[Vec<String>]) -> bool) {
    assert!(
        eventually(Duration::from_secs(20), || what(&rows(daemon, user))),
        "{user}'s database: {:?}",
        rows(daemon, user)
    );
}

fn is_notification(row: &[String]) -> bool {
    row[1] == "RC:RcNtf" && !row[2].contains("secret")
}

#[test]
fn a_recall_reaches_an_offline_device_at_its_next_sync_once_and_leaves_no_text() {
    let server = InProcessServer::start();
    let (alice, _) = daemon_for(&server, "alice");
    let (mut bob, bob_token) = daemon_for(&server, "bob");
    send(&alice, "bob", "the secret plan");
    wait_rows(&bob, "bob", |rows| rows.len() == 1);
    let original = rows(&bob, "bob").remove(0);
    let (uid, sent_time) = (original[0].clone(), original[3].clone());

    // Bad input first: an unknown uid, and someone else's message: RC's 25101.
    for (daemon, uid) in [(&alice, "no-such-uid"), (&bob, uid.as_str())] {
        let out = daemon.ctl(&["recall", "--uid", uid]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("25101"), "{stderr}");
    }

    // Bob's device dies; alice recalls while it is down.
    bob.proc.kill9();
    let out = alice.ctl(&["recall", "--uid", &uid, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["recalled"], true);
    wait_rows(&alice, "alice", |rows| {
        rows.len() == 1 && is_notification(&rows[0])
    });
    // A second recall is done already, and tells nobody again.
    assert!(alice.ctl(&["recall", "--uid", &uid]).status.success());

    bob.restart(&server.url(), &[]);
    bob.connect(&bob_token);
    wait_rows(&bob, "bob", |rows| {
        rows.len() == 1 && is_notification(&rows[0])
    });
    let now = rows(&bob, "bob").remove(0);
    assert_eq!(
        (now[0].as_str(), now[3].as_str()),
        (uid.as_str(), sent_time.as_str())
    );
    // Both sides hold the same notification.
    assert_eq!(now, rows(&alice, "alice")[0]);
    // The search index has forgotten the words.
    let out = bob.ctl(&["search", "secret", "--json"]);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(found["messages"], serde_json::json!([]));
    // Once: the inbox holds the message and one command, both committed.
    let inbox = server
        .block_on(server.get().inbox_uids("bob"))
        .expect("inbox");
    assert_eq!(inbox.len(), 2);
    let cursor = query_db(&bob.data_dir, "bob", "SELECT inbox_seq FROM sync_state");
    assert_eq!(cursor, vec![vec!["2".to_owned()]]);
}

/// A Python with RC's official server SDK, rc-server-sdk 3.2.0, in a venv kept
/// under the target dir (installed once with pip; offline after that).
fn python_with_rc_sdk() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("rc-server-sdk-3.2.0");
    let python = venv.join("bin").join("python");
    let ready = || {
        Command::new(&python)
            .args(["-c", "import rongcloud"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready() {
        let made = Command::new("python3")
            .args(["-m", "venv", "--system-site-packages"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(made.success(), "python3 -m venv failed");
        let pip = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "rc-server-sdk==3.2.0", "jinja2"])
            .status()
            .expect("pip runs");
        assert!(
            pip.success() && ready(),
            "cannot install rc-server-sdk 3.2.0 (needs the network once): pip failed"
        );
    }
    python
}

#[test]
fn rcs_python_server_sdk_recalls_a_message_on_both_sides() {
    let server = InProcessServer::start();
    let (alice, _) = daemon_for(&server, "alice");
    let (bob, _) = daemon_for(&server, "bob");
    send(&alice, "bob", "a secret for the sdk");
    wait_rows(&bob, "bob", |rows| rows.len() == 1);
    let original = rows(&bob, "bob").remove(0);
    let script = r#"
import json, sys
from rongcloud.rongcloud import RongCloud
app_key, secret, url, uid, sent = sys.argv[1:6]
rc = RongCloud(app_key, secret, url)
private = rc.get_message().get_private()
def answer(reply):
    # The SDK parses a 200 answer and hands back the raw body of any other.
    return json.loads(reply) if isinstance(reply, (bytes, str)) else reply
print(json.dumps([
    answer(private.recall('alice', 'bob', 'no-such-uid', int(sent))),
    answer(private.recall('alice', 'bob', uid, int(sent))),
]))
"#;
    let out = Command::new(python_with_rc_sdk())
        .args(["-c", script, APP_KEY, APP_SECRET])
        .arg(server.get().api_url())
        .args([&original[0], &original[3]])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(answers[0]["code"], 1002, "{answers}");
    assert_eq!(answers[1]["code"], 200, "{answers}");
    wait_rows(&bob, "bob", |rows| is_notification(&rows[0]));
    wait_rows(&alice, "alice", |rows| is_notification(&rows[0]));
    let history = alice.ctl(&["history", "--with", "bob", "--remote", "--json"]);
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).expect("json");
    assert_eq!(
        history["messages"][0]["object_name"], "RC:RcNtf",
        "{history}"
    );
}

#[test]
fn kill_9_in_the_middle_of_recalls_leaves_both_sides_agreeing_with_the_server() {
    const ROUNDS: usize = 8;
    let mut rng = rcim_tests::Rng::from_env("kill_9_in_the_middle_of_recalls");
    let server = InProcessServer::start();
    let (mut alice, alice_token) = daemon_for(&server, "alice");
    let (bob, _) = daemon_for(&server, "bob");
    for i in 0..ROUNDS {
        send(&alice, "bob", &format!("secret number {i}"));
    }
    wait_rows(&bob, "bob", |rows| rows.len() == ROUNDS);
    let uids: Vec<String> = rows(&bob, "bob")
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    for uid in &uids {
        // The recall is in flight (asked, maybe applied on the server, maybe
        // answered) when alice's rcimd dies.
        let mut recall = Command::new(rcim_tests::bin("rcimctl"))
            .env("RCIM_SOCKET", &alice.socket)
            .args(["recall", "--uid", uid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rcimctl");
        std::thread::sleep(Duration::from_millis(rng.below(40)));
        alice.proc.kill9();
        let _ = recall.wait();
        alice.restart(&server.url(), &[]);
        alice.connect(&alice_token);
    }
    // The server decided each recall; both devices end up as it says, each
    // message once.
    let page = alice.ctl(&["history", "--with", "bob", "--remote", "--json"]);
    let page: serde_json::Value = serde_json::from_slice(&page.stdout).expect("json");
    let server_side: Vec<(String, String)> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let uid = m["uid"].as_str().unwrap_or_default().to_owned();
            (
                uid,
                m["object_name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .rev()
        .collect();
    assert_eq!(server_side.len(), ROUNDS);
    let recalled = server_side.iter().filter(|(_, o)| o == "RC:RcNtf").count();
    let settled = |daemon: &TestDaemon, user: &str| {
        rows(daemon, user)
            .into_iter()
            .map(|r| (r[0].clone(), r[1].clone()))
            .collect::<Vec<_>>()
    };
    for (daemon, user) in [(&alice, "alice"), (&bob, "bob")] {
        assert!(
            eventually(Duration::from_secs(20), || settled(daemon, user)
                == server_side),
            "{user}: {:?} != server {server_side:?}",
            settled(daemon, user)
        );
    }
    // No recalled text is left on either side.
    for (daemon, user) in [(&alice, "alice"), (&bob, "bob")] {
        for row in rows(daemon, user) {
            assert!(
                row[1] != "RC:RcNtf" || !row[2].contains("secret"),
                "{row:?}"
            );
        }
    }
    eprintln!(
        "{ROUNDS} recalls each cut by kill -9: {recalled} took effect, both devices agree with the server"
    );
}

/// An RC-shaped engine attached to `daemon`.
fn engine_on(daemon: &TestDaemon, name: &str) -> rcim_client::Engine {
    let mut options = rcim_client::EngineOptions::named(name);
    options.client.socket = Some(daemon.socket.clone());
    rcim_client::Engine::create(APP_KEY, options)
}

#[test]
fn the_engine_recalls_and_the_other_side_hears_on_remote_message_recalled() {
    let server = InProcessServer::start();
    let (alice, _) = daemon_for(&server, "alice");
    let (bob, _) = daemon_for(&server, "bob");
    let (heard_tx, heard) = std::sync::mpsc::channel();
    let bob_engine = engine_on(&bob, "bob-app");
    bob_engine.set_on_remote_message_recalled(move |message| {
        let _ = heard_tx.send(message);
    });
    send(&alice, "bob", "a secret for the engine");
    wait_rows(&bob, "bob", |rows| rows.len() == 1);
    let alice_engine = engine_on(&alice, "alice-app");
    let (sent_tx, sent) = std::sync::mpsc::channel();
    let code = alice_engine.get_messages(
        rcim_client::ConversationKey::private("bob"),
        0,
        rcim_client::TimeOrder::Before,
        1,
        move |answer| {
            let _ = sent_tx.send(answer);
        },
    );
    assert_eq!(code, 0);
    let mine = sent
        .recv_timeout(Duration::from_secs(10))
        .expect("history")
        .expect("messages")
        .remove(0);
    // A message not sent yet (no uid) is refused at once, with no callback.
    let mut unsent = mine.clone();
    unsent.uid = None;
    assert_eq!(alice_engine.recall_message(&unsent, |_| {}), 33003);
    let (done_tx, done) = std::sync::mpsc::channel();
    let code = alice_engine.recall_message(&mine, move |answer| {
        let _ = done_tx.send(answer);
    });
    assert_eq!(code, 0);
    assert_eq!(
        done.recv_timeout(Duration::from_secs(10))
            .expect("callback"),
        Ok(())
    );
    let heard = heard
        .recv_timeout(Duration::from_secs(10))
        .expect("listener");
    assert_eq!(heard.object_name, "RC:RcNtf");
    assert_eq!(heard.uid, mine.uid);
    assert_eq!(heard.sent_time_ms, mine.sent_time_ms);
    assert!(!heard.content.contains("secret"));
}
