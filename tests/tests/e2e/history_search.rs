//! Remote history and local search across real processes: the server's copy of
//! a conversation includes what this user sent from another device; search runs
//! on the daemon's own database, with FTS syntax taken as text.

use rcim_tests::{InProcessServer, TestDaemon, eventually, stored_ids};
use std::time::Duration;

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn remote_history_has_both_sides_and_other_devices_and_pages() {
    let server = InProcessServer::start();
    let alice_token = server.get().issue_token("alice", "Alice").expect("token");
    let bob_token = server.get().issue_token("bob", "Bob").expect("token");
    // Alice's "other device": a second rcimd with its own database.
    // (Two devices of one platform cannot be online together: the server kicks
    // the older one, as RC does; the phone signs out before the desktop comes.)
    let phone = TestDaemon::start(&server.url(), &[]);
    phone.connect(&alice_token);
    let bob = TestDaemon::start(&server.url(), &[]);
    bob.connect(&bob_token);
    for i in 0..3 {
        assert!(
            phone
                .ctl(&["send", "--to", "bob", "--text", &format!("from phone {i}")])
                .status
                .success()
        );
        assert!(
            bob.ctl(&["send", "--to", "alice", "--text", &format!("from bob {i}")])
                .status
                .success()
        );
    }
    assert!(phone.ctl(&["disconnect"]).status.success());
    let desktop = TestDaemon::start(&server.url(), &[]);
    desktop.connect(&alice_token);
    assert!(eventually(Duration::from_secs(20), || stored_ids(
        &desktop.data_dir,
        "alice"
    )
    .len()
        == 3));
    // The desktop never stored what the phone sent; the server has all six.
    let page = json(desktop.ctl(&[
        "history", "--with", "bob", "--remote", "--limit", "4", "--json",
    ]));
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4, "{page}");
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        texts,
        ["from bob 2", "from phone 2", "from bob 1", "from phone 1"]
    );
    assert_eq!(messages[1]["id"], 0, "not stored on this device");
    assert_ne!(messages[0]["id"], 0, "stored on this device: its local id");
    let oldest = messages[3]["sent_time_ms"].as_i64().expect("time");
    let rest = json(desktop.ctl(&[
        "history",
        "--with",
        "bob",
        "--remote",
        "--before",
        &oldest.to_string(),
        "--json",
    ]));
    assert_eq!(rest["messages"].as_array().map(Vec::len), Some(2), "{rest}");
    // A group alice is not in: 22406.
    let out = desktop.ctl(&["history", "--with", "team", "--group", "--remote"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("22406"));
}

#[test]
fn search_finds_words_pages_and_takes_syntax_as_text() {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);
    let texts = [
        "lunch at noon",
        "Lunch tomorrow? \"maybe\" OR NEAR(x)",
        "no match here",
        "c++ -flag col:on *star*",
    ];
    for (i, text) in texts.iter().enumerate() {
        let content = serde_json::json!({ "content": text }).to_string();
        server
            .block_on(
                server
                    .get()
                    .publish_private("bob", &["alice"], "RC:TxtMsg", &content),
            )
            .expect("publish");
        assert!(eventually(Duration::from_secs(20), || {
            stored_ids(&daemon.data_dir, "alice").len() == i + 1
        }));
    }
    let found = json(daemon.ctl(&["search", "lunch", "--json"]));
    let messages = found["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2);
    assert!(
        messages[0]["text"]
            .as_str()
            .unwrap_or("")
            .starts_with("Lunch tomorrow")
    );
    // Paging: one at a time, then the next page from `next`.
    let first = json(daemon.ctl(&["search", "lunch", "--limit", "1", "--json"]));
    let next = &first["next"];
    let second = json(daemon.ctl(&[
        "search",
        "lunch",
        "--limit",
        "1",
        "--json",
        "--before-time",
        &next["before_time_ms"].to_string(),
        "--before-id",
        &next["before_id"].to_string(),
    ]));
    assert_eq!(second["messages"][0]["text"], "lunch at noon");
    // FTS syntax characters are text: never an error, never an operator.
    for query in [
        "\"maybe\" OR",
        "NEAR(x)",
        "c++ -flag",
        "col:on",
        "*star*",
        "\"",
        "AND",
        "'); --",
    ] {
        let out = daemon.ctl(&["search", query, "--json"]);
        assert!(
            out.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let found = json(daemon.ctl(&["search", "col:on", "--json"]));
    assert_eq!(found["messages"].as_array().map(Vec::len), Some(1));
    let found = json(daemon.ctl(&["search", "lunch OR match", "--json"]));
    assert_eq!(
        found["messages"],
        serde_json::json!([]),
        "OR is a word, not an operator"
    );
    // Scoped to a conversation with nobody in it.
    let found = json(daemon.ctl(&["search", "lunch", "--with", "carol", "--json"]));
    assert_eq!(found["messages"], serde_json::json!([]));
    // Over the limit: refused by the CLI before it asks.
    assert!(
        !daemon
            .ctl(&["search", "lunch", "--limit", "101"])
            .status
            .success()
    );
}
