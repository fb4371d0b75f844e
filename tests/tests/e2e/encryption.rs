//! Encryption at rest with the real token stores: a message received and one sent
//! leave no trace of their text in any file of the data dir (the database, its WAL
//! and shared-memory files included); a restart with the key in place keeps the
//! history; a lost key moves the database aside and a new one is synced.
//!
//! Each test needs a real keyring, so it runs where `.ci/run` provides one: the
//! Secret Service under `dbus-run-session` with an unlocked gnome-keyring, the
//! kernel keyring under `keyctl session -` with `RCIM_TEST_KEYUTILS=1`. Elsewhere
//! it says why it was skipped.

use rcim_tests::{InProcessServer, TestDaemon, bytes_contain, eventually, files_under};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Texts that must never appear in a file under the data dir.
const MARKER_IN: &str = "incoming-7f3a91-plaintext-marker";
const MARKER_OUT: &str = "outgoing-2b8c44-plaintext-marker";

fn secret_service_here() -> bool {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!(
            "skipped: no session D-Bus (DBUS_SESSION_BUS_ADDRESS is unset); .ci/run runs this under dbus-run-session"
        );
        return false;
    }
    true
}

fn keyutils_here() -> bool {
    if std::env::var_os("RCIM_TEST_KEYUTILS").is_none() {
        eprintln!(
            "skipped: set RCIM_TEST_KEYUTILS=1 and run under `keyctl session -` to test the kernel keyring"
        );
        return false;
    }
    true
}

/// `rcimctl history --with bob --json`: the texts (the raw content of a message
/// that is not a text message), oldest first.
fn history(daemon: &TestDaemon) -> Vec<String> {
    let out = daemon.ctl(&["history", "--with", "bob", "--json"]);
    assert!(
        out.status.success(),
        "history: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).expect("history JSON");
    let mut texts: Vec<String> = value["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            m["text"]
                .as_str()
                .or(m["content"].as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    texts.reverse();
    texts
}

/// Files under the data dir that hold either marker.
fn files_with_markers(daemon: &TestDaemon) -> Vec<String> {
    files_under(&daemon.data_dir)
        .into_iter()
        .filter(|file| {
            let bytes = std::fs::read(file).unwrap_or_default();
            bytes_contain(&bytes, MARKER_IN) || bytes_contain(&bytes, MARKER_OUT)
        })
        .map(|file| file.display().to_string())
        .collect()
}

/// alice connected through rcimd with `store`, with 5 messages received from bob
/// and one sent to bob, each holding a marker.
fn alice_with_markers(store: &str) -> (InProcessServer, String, TestDaemon) {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &["--token-store", store]);
    daemon.connect(&token);
    server.publish_bob_to_alice(5, MARKER_IN);
    assert!(
        eventually(Duration::from_secs(10), || history(&daemon).len() == 5),
        "received: {:?}",
        history(&daemon)
    );
    let out = daemon.ctl(&["send", "--to", "bob", "--text", MARKER_OUT]);
    assert!(
        out.status.success(),
        "send: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (server, token, daemon)
}

/// The marker test and the restart with the key present, for `store`.
fn no_plain_text_at_rest_and_history_survives_a_restart(store: &str) {
    let (server, _token, mut daemon) = alice_with_markers(store);
    let status = daemon.status();
    assert_eq!(status["token_store"], store, "{status}");
    assert_eq!(status["database"]["encrypted"], true, "{status}");
    assert_eq!(status["database"]["key_store"], store, "{status}");
    let before = history(&daemon);
    assert_eq!(before.len(), 6, "{before:?}");
    assert!(before.iter().any(|t| t == MARKER_OUT), "{before:?}");
    // The WAL holds the latest writes: it is checked as it is, while rcimd runs.
    let wal = daemon.data_dir.join("users/alice/rcim.db-wal");
    assert!(wal.exists(), "the WAL is there to be checked");
    assert_eq!(files_with_markers(&daemon), Vec::<String>::new());
    // A plain SQLite reader cannot read it.
    let plain = rusqlite::Connection::open(daemon.data_dir.join("users/alice/rcim.db"))
        .expect("open")
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        });
    assert!(
        plain.is_err(),
        "a reader without the key read it: {plain:?}"
    );

    // Restart with the key in place: the history is intact, and it connects by
    // itself with the stored token.
    assert!(daemon.proc.terminate().expect("terminate").success());
    assert_eq!(files_with_markers(&daemon), Vec::<String>::new());
    daemon.restart(&server.url(), &["--token-store", store]);
    daemon.wait_status("connected");
    assert_eq!(history(&daemon), before);
    assert!(
        daemon.status()["database"]["moved_aside"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    // Clean the keyring entry of the token up.
    assert!(daemon.ctl(&["logout"]).status.success());
}

#[test]
fn secret_service_no_plain_text_at_rest_and_history_survives_a_restart() {
    if secret_service_here() {
        no_plain_text_at_rest_and_history_survives_a_restart("secret-service");
    }
}

#[test]
fn keyutils_no_plain_text_at_rest_and_history_survives_a_restart() {
    if keyutils_here() {
        no_plain_text_at_rest_and_history_survives_a_restart("keyutils");
    }
}

/// The key is deleted from the kernel keyring while rcimd is stopped: at the next
/// start the database is moved aside (nothing deleted), a new one is synced from
/// the server, and doctor explains.
#[test]
fn keyutils_a_lost_key_moves_the_database_aside_and_syncs_a_new_one() {
    if !keyutils_here() {
        return;
    }
    let (server, _token, mut daemon) = alice_with_markers("keyutils");
    let path = daemon.data_dir.join("users/alice/rcim.db");
    assert!(daemon.proc.terminate().expect("terminate").success());
    // The key's entry: rcimd names it after the database file.
    let resolved = std::fs::canonicalize(path.parent().unwrap())
        .unwrap()
        .join("rcim.db");
    let description = format!("keyring:dbkey:{}@rcim", resolved.display());
    let unlinked = Command::new("keyctl")
        .args(["purge", "-s", "user", &description])
        .output()
        .expect("keyctl");
    let said = String::from_utf8_lossy(&unlinked.stdout);
    assert!(
        said.starts_with("purged ") && !said.starts_with("purged 0"),
        "keyctl purge: {} {}",
        String::from_utf8_lossy(&unlinked.stdout),
        String::from_utf8_lossy(&unlinked.stderr)
    );
    daemon.restart(&server.url(), &["--token-store", "keyutils"]);
    daemon.wait_status("connected");
    // The five messages from bob come back from the server.
    assert!(
        eventually(Duration::from_secs(10), || {
            history(&daemon)
                .iter()
                .filter(|t| t.starts_with(MARKER_IN))
                .count()
                == 5
        }),
        "synced again: {:?}",
        history(&daemon)
    );
    let status = daemon.status();
    let moved = status["database"]["moved_aside"]
        .as_array()
        .expect("moved_aside")
        .clone();
    assert_eq!(moved.len(), 1, "{status}");
    let moved = moved[0].as_str().unwrap().to_owned();
    assert!(moved.contains("rcim.db.unreadable-"), "{moved}");
    assert!(std::path::Path::new(&moved).exists(), "nothing was deleted");
    assert_eq!(status["database"]["encrypted"], true, "{status}");
    let doctor = daemon.ctl(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("the key of an earlier database was lost"),
        "{text}"
    );
    assert!(text.contains(&moved), "{text}");
    assert_eq!(files_with_markers(&daemon), Vec::<String>::new());
    assert!(daemon.ctl(&["logout"]).status.success());
}

/// A plain database left by an older rcimd (or by the memory store) is encrypted
/// in place at the first start with a key store; a kill -9 while that runs loses
/// nothing.
#[test]
fn keyutils_a_plain_database_is_encrypted_at_start_even_after_a_kill_mid_way() {
    if !keyutils_here() {
        return;
    }
    // A plain database: rcimd with the memory store.
    let (server, _token, mut daemon) = alice_with_markers("memory");
    assert!(
        !files_with_markers(&daemon).is_empty(),
        "plain with the memory store"
    );
    assert_eq!(daemon.status()["database"]["encrypted"], false);
    assert!(daemon.proc.terminate().expect("terminate").success());
    // More rows, so the export takes a moment: 20,000 messages from bob, synced
    // into the plain database by another plain run.
    server.publish_bob_to_alice(20_000, "bulk");
    daemon.restart(&server.url(), &["--token-store", "memory"]);
    let token = server.get().issue_token("alice", "Alice").expect("token");
    daemon.connect(&token);
    assert!(
        eventually(Duration::from_secs(60), || {
            rcim_tests::stored_ids(&daemon.data_dir, "alice").len() == 20_005
        }),
        "synced {}",
        rcim_tests::stored_ids(&daemon.data_dir, "alice").len()
    );
    let newest = history(&daemon);
    assert!(daemon.proc.terminate().expect("terminate").success());

    // Start with keyutils and kill it as soon as the export has begun.
    let path = daemon.data_dir.join("users/alice/rcim.db");
    let converting = daemon.data_dir.join("users/alice/rcim.db.converting");
    daemon.restart(&server.url(), &["--token-store", "keyutils"]);
    daemon.connect(&token);
    let _ = eventually(Duration::from_secs(10), || converting.exists());
    daemon.proc.kill9();
    // Whatever step it reached, the next start finishes the job.
    daemon.restart(&server.url(), &["--token-store", "keyutils"]);
    daemon.connect(&token);
    daemon.wait_status("connected");
    let status = daemon.status();
    assert_eq!(status["database"]["encrypted"], true, "{status}");
    assert!(!converting.exists(), "no half-written file is left");
    assert_eq!(history(&daemon), newest);
    // Every message is there exactly once: the conversation counts them.
    let out = daemon.ctl(&["conversations", "--json"]);
    let value: Value = serde_json::from_slice(&out.stdout).expect("conversations JSON");
    let bob = value["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .find(|c| c["target_id"] == "bob")
        .cloned()
        .expect("the conversation with bob");
    assert_eq!(bob["unread_count"], 20_005, "{bob}");
    assert!(
        std::fs::read(&path).is_ok_and(|b| !b.starts_with(b"SQLite format 3")),
        "encrypted on disk"
    );
    assert_eq!(files_with_markers(&daemon), Vec::<String>::new());
    assert!(daemon.ctl(&["logout"]).status.success());
}
