//! Conversation settings and deletion across real processes: pin, mute (synced
//! to the server, read back through RC's `/conversation/notification/get.json`
//! and RC's Python server SDK's `get_conversation().get_notification()`), remove
//! from the list, delete by ids and before a time, drafts; bad input; a kill -9
//! right after a mute.

use rcim_tests::{APP_KEY, APP_SECRET, InProcessServer, TestDaemon, eventually, wait_stored};
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// `rcimctl ARGS` against `daemon`; panics unless it succeeds; stdout.
fn ctl_ok(daemon: &TestDaemon, args: &[&str]) -> String {
    let out = daemon.ctl(args);
    assert!(
        out.status.success(),
        "rcimctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rcimctl ARGS --json`, parsed.
fn ctl_json(daemon: &TestDaemon, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ctl_ok(daemon, &all)).expect("JSON")
}

/// RC's `/conversation/notification/get.json` for alice's private conversation
/// with bob: (isMuted, unpushLevel).
fn server_level(server: &InProcessServer) -> (i64, i64) {
    let (status, body) = server
        .block_on(rcim_server::api_client::post_signed(
            &server.get().api_url(),
            APP_KEY,
            APP_SECRET,
            "/conversation/notification/get.json",
            &[
                ("conversationType", "1"),
                ("requestId", "alice"),
                ("targetId", "bob"),
            ],
        ))
        .expect("post");
    assert_eq!(status, 200, "{body}");
    (
        body["isMuted"].as_i64().expect("isMuted"),
        body["unpushLevel"].as_i64().expect("unpushLevel"),
    )
}

fn alice_with_messages(count: u32) -> (InProcessServer, String, TestDaemon) {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);
    server.publish_bob_to_alice(count, "m");
    wait_stored(&daemon, "alice", count as usize, WAIT);
    (server, token, daemon)
}

#[test]
fn pin_mute_draft_remove_and_delete_through_rcimctl() {
    let (server, _token, alice) = alice_with_messages(10);
    let bob = || ctl_json(&alice, &["conversations"])["conversations"][0].clone();

    ctl_ok(&alice, &["pin", "--with", "bob"]);
    ctl_ok(
        &alice,
        &["draft", "--with", "bob", "--set", "half a thought"],
    );
    ctl_ok(&alice, &["mute", "--with", "bob"]);
    let listed = bob();
    assert_eq!(listed["is_top"], true, "{listed}");
    assert_eq!(listed["notification_level"], 5);
    assert_eq!(listed["draft"], "half a thought");
    assert_eq!(
        ctl_json(&alice, &["draft", "--with", "bob"])["draft"],
        "half a thought"
    );
    // The level reached the server (RC's get answers for the back-end).
    assert!(eventually(WAIT, || server_level(&server) == (1, 5)));
    ctl_ok(&alice, &["mute", "--with", "bob", "--level", "-1"]);
    assert!(eventually(WAIT, || server_level(&server) == (0, -1)));
    ctl_ok(&alice, &["pin", "--with", "bob", "--off"]);
    assert_eq!(bob()["is_top"], false);

    // Delete by ids (the newest two) and up to a time.
    let history = ctl_json(&alice, &["history", "--with", "bob", "--limit", "2"]);
    let newest: Vec<String> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].to_string())
        .collect();
    let deleted = ctl_json(&alice, &["delete", "--id", &newest[0], "--id", &newest[1]]);
    assert_eq!(deleted["deleted"], 2);
    assert_eq!(bob()["unread_count"], 8);
    assert_eq!(alice.status()["unread_total"], 8);
    let oldest = ctl_json(&alice, &["history", "--with", "bob"])["messages"]
        .as_array()
        .expect("messages")
        .last()
        .expect("one")["sent_time_ms"]
        .to_string();
    let deleted = ctl_json(&alice, &["delete", "--with", "bob", "--before", &oldest]);
    let deleted = deleted["deleted"].as_u64().expect("count");
    assert!(deleted >= 1);
    // (A bulk publish stamps its messages with one time, so this may be all 8.)
    let remaining = ctl_json(&alice, &["history", "--with", "bob"])["messages"]
        .as_array()
        .expect("messages")
        .len() as u64;
    assert_eq!(deleted + remaining, 8);
    assert_eq!(alice.status()["unread_total"], remaining);
    if remaining > 0 {
        assert_eq!(bob()["unread_count"], remaining);
    } else {
        assert_eq!(
            ctl_json(&alice, &["conversations"])["conversations"],
            serde_json::json!([]),
            "nothing left: off the list"
        );
        server.publish_bob_to_alice(1, "again");
        wait_stored(&alice, "alice", 1, WAIT);
    }

    // Off the list: messages stay, read; a new message brings it back with its
    // settings.
    ctl_ok(&alice, &["remove", "--with", "bob"]);
    assert_eq!(
        ctl_json(&alice, &["conversations"])["conversations"],
        serde_json::json!([])
    );
    assert_eq!(alice.status()["unread_total"], 0);
    assert!(
        !ctl_json(&alice, &["history", "--with", "bob"])["messages"]
            .as_array()
            .expect("messages")
            .is_empty()
    );
    server.publish_bob_to_alice(1, "back");
    assert!(eventually(WAIT, || {
        ctl_json(&alice, &["conversations"])["conversations"]
            .as_array()
            .is_some_and(|c| c.len() == 1)
    }));
    let listed = bob();
    assert_eq!(listed["unread_count"], 1);
    assert_eq!(listed["draft"], "half a thought");
    assert_eq!(listed["notification_level"], -1);

    // Everything.
    let deleted = ctl_json(&alice, &["delete", "--with", "bob", "--all"]);
    assert!(deleted["deleted"].as_u64().expect("count") >= 1);
    assert_eq!(
        ctl_json(&alice, &["conversations"])["conversations"],
        serde_json::json!([])
    );
    ctl_ok(&alice, &["draft", "--with", "bob", "--clear"]);
    assert_eq!(ctl_json(&alice, &["draft", "--with", "bob"])["draft"], "");
}

#[test]
fn bad_settings_are_refused() {
    let (server, _token, alice) = alice_with_messages(1);
    // Not one of RC's levels: a usage error in rcimctl, 33003 from the library.
    assert_eq!(
        alice
            .ctl(&["mute", "--with", "bob", "--level", "3"])
            .status
            .code(),
        Some(2)
    );
    let socket = alice.socket.clone();
    let (level, too_many, draft) = server.block_on(async move {
        let options = rcim_client::ClientOptions {
            socket: Some(socket),
            ..rcim_client::ClientOptions::named("settings")
        };
        let client = rcim_client::Client::attach(options).await.expect("attach");
        let bob = rcim_client::ConversationKey::private("bob");
        let level = client
            .set_notification_level(bob.clone(), 3)
            .await
            .expect("level");
        let ids: Vec<i64> = (1..=101).collect();
        let too_many = client.delete_messages(&ids).await.expect("delete");
        let draft = client
            .save_draft(bob, &"x".repeat(rcim_proto::ipc::MAX_DRAFT_LEN + 1))
            .await
            .expect("draft");
        (level, too_many, draft)
    });
    assert_eq!(level, 33003);
    assert_eq!(too_many, Err(33003), "a page over the limit");
    assert_eq!(draft, 33003);
    // Over 100 ids is a usage error in rcimctl too.
    let mut args = vec!["delete".to_owned()];
    for id in 1..=101 {
        args.push("--id".into());
        args.push(id.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(alice.ctl(&args).status.code(), Some(2));
    // Nothing was deleted.
    assert_eq!(alice.status()["unread_total"], 1);
    // The Server API refuses a bad conversation type or level with RC's 1002.
    for form in [
        vec![
            ("conversationType", "2"),
            ("requestId", "alice"),
            ("targetId", "bob"),
            ("isMuted", "1"),
        ],
        vec![
            ("conversationType", "1"),
            ("requestId", "alice"),
            ("targetId", "bob"),
            ("unpushLevel", "3"),
        ],
    ] {
        let (status, body) = server
            .block_on(rcim_server::api_client::post_signed(
                &server.get().api_url(),
                APP_KEY,
                APP_SECRET,
                "/conversation/notification/set.json",
                &form,
            ))
            .expect("post");
        assert_eq!((status, body["code"].clone()), (400, 1002.into()), "{body}");
    }
}

#[test]
fn a_mute_survives_kill_9_and_reaches_the_server_once_connected() {
    let (server, token, mut alice) = alice_with_messages(1);
    // Offline: the level is kept and queued.
    ctl_ok(&alice, &["disconnect"]);
    ctl_ok(&alice, &["mute", "--with", "bob"]);
    alice.proc.kill9();
    assert_eq!(server_level(&server), (0, 0), "not sent while offline");
    alice.restart(&server.url(), &[]);
    alice.connect(&token);
    assert!(
        eventually(WAIT, || server_level(&server) == (1, 5)),
        "sent after the restart and the connect"
    );
    assert_eq!(
        ctl_json(&alice, &["conversations"])["conversations"][0]["notification_level"],
        5
    );
}

#[test]
fn rc_python_server_sdk_reads_the_level_rcimd_set() {
    let (server, _token, alice) = alice_with_messages(1);
    ctl_ok(&alice, &["mute", "--with", "bob"]);
    assert!(eventually(WAIT, || server_level(&server) == (1, 5)));
    let python = crate::status_messages::sdk_python();
    let script = format!(
        "import json\nfrom rongcloud.rongcloud import RongCloud\n\
         rc = RongCloud({APP_KEY:?}, {APP_SECRET:?}, {:?})\n\
         n = rc.get_conversation().get_notification()\n\
         print(json.dumps(n.get(1, 'alice', 'bob')))\n\
         print(json.dumps(n.set(1, 'alice', 'bob', 0)))\n\
         print(json.dumps(n.get(1, 'alice', 'bob')))\n",
        server.get().api_url()
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines[0]["code"], 200);
    assert_eq!(lines[0]["isMuted"], 1);
    assert_eq!(lines[1]["code"], 200);
    assert_eq!(lines[2]["isMuted"], 0);
}
