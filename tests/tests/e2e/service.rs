//! The token's life as a service sees it: never in a log or a file, kept in a real
//! OS keyring across restarts, used at start-up without any `connect` call.
//!
//! The keyring tests need a working store and skip themselves (saying why)
//! elsewhere; `.ci/run` runs them under `dbus-run-session` with an unlocked
//! gnome-keyring, and under `keyctl session -`.

use rcim_tests::proxy::FaultProxy;
use rcim_tests::{TestDaemon, TestServer, bytes_contain, ctl, eventually, files_under};
use std::time::Duration;

fn connect(daemon: &TestDaemon, token: &str) -> std::process::Output {
    ctl(
        &daemon.socket,
        &["connect", "--token-stdin", "--timeout", "10"],
        Some(&format!("{token}\n")),
    )
}

/// Trace logging through connect, a reconnect, logout and a 31004: neither the
/// good token nor the forged one, nor their signatures, show up in any log line or
/// in any file under the data dir.
#[test]
fn the_token_is_in_no_log_line_and_no_file_at_trace_level() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.im_addr.parse().expect("im_addr"));
    let daemon = TestDaemon::start(&proxy.url(), &["--log-level", "trace"]);
    let good = server.token("alice");
    let (payload, signature) = good.split_once('.').expect("payload.signature");
    let forged = format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

    let out = connect(&daemon, &good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.wait_status("connected");

    // A reconnect: the connection is cut under the daemon's feet.
    proxy.drop_all();
    assert!(
        eventually(Duration::from_secs(10), || {
            let status = daemon.status();
            status["status"] == "connected" && status["reconnects"] == 1
        }),
        "no reconnect: {}",
        daemon.status()
    );

    let out = daemon.ctl(&["logout"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = connect(&daemon, &forged);
    assert_eq!(out.status.code(), Some(1), "31004 for the forged token");
    daemon.wait_status("token_incorrect");

    let log = daemon.proc.log();
    assert!(log.contains("logging to stderr at trace"), "{log}");
    for secret in [good.as_str(), forged.as_str(), signature, payload] {
        if let Some(line) = log.lines().find(|line| line.contains(secret)) {
            panic!("a log line holds the token: {line}");
        }
    }
    let data = files_under(&daemon.data_dir);
    assert!(!data.is_empty(), "the data dir has files");
    for file in data {
        let bytes = std::fs::read(&file).unwrap_or_default();
        for secret in [good.as_str(), forged.as_str(), signature] {
            assert!(
                !bytes_contain(&bytes, secret),
                "{} holds the token",
                file.display()
            );
        }
    }
}

/// With a real OS store: connect once, restart rcimd, and it connects by itself
/// with the stored token; after logout the next start stays idle.
fn restart_reconnects_with_the_stored_token(store: &str) {
    let server = TestServer::start();
    let mut daemon = TestDaemon::start(&server.url(), &["--token-store", store]);
    // The socket is bound before the store opens: wait for the store's line.
    assert!(
        eventually(Duration::from_secs(10), || daemon
            .proc
            .log()
            .contains(&format!("token store: {store}"))),
        "{}",
        daemon.proc.log()
    );
    let token = server.token("dora");
    let out = connect(&daemon, &token);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    daemon.wait_status("connected");

    let status = daemon.proc.terminate().expect("terminate");
    assert!(status.success(), "SIGTERM exits 0: {status}");
    daemon.restart(&server.url(), &["--token-store", store]);
    // No connect call this time.
    let status = daemon.wait_status("connected");
    assert_eq!(status["user_id"], "dora");
    assert_eq!(server.stats().connects_accepted, 2);
    assert!(!daemon.proc.log().contains(&token));

    // Logout deletes the entry: the next start has nothing to connect with.
    let out = daemon.ctl(&["logout"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(daemon.proc.terminate().expect("terminate").success());
    daemon.restart(&server.url(), &["--token-store", store]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.status()["status"], "unconnected");
    assert_eq!(server.stats().connects_accepted, 2);
}

#[test]
fn secret_service_restart_reconnects_with_the_stored_token() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!(
            "skipped: no session D-Bus (DBUS_SESSION_BUS_ADDRESS is unset); .ci/run runs this under dbus-run-session"
        );
        return;
    }
    restart_reconnects_with_the_stored_token("secret-service");
}

#[test]
fn keyutils_restart_reconnects_with_the_stored_token() {
    if std::env::var_os("RCIM_TEST_KEYUTILS").is_none() {
        eprintln!(
            "skipped: set RCIM_TEST_KEYUTILS=1 and run under `keyctl session -` to test the kernel keyring"
        );
        return;
    }
    restart_reconnects_with_the_stored_token("keyutils");
}

/// A token the server rejected stays rejected across a restart: no attempt at
/// start-up until a new token is given.
#[test]
fn a_rejected_token_is_not_retried_after_a_restart() {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        eprintln!(
            "skipped: no session D-Bus (DBUS_SESSION_BUS_ADDRESS is unset); .ci/run runs this under dbus-run-session"
        );
        return;
    }
    let server = TestServer::start();
    let store = ["--token-store", "secret-service"];
    let mut daemon = TestDaemon::start(&server.url(), &store);
    let good = server.token("erin");
    let (payload, _) = good.split_once('.').expect("payload.signature");
    let forged = format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(connect(&daemon, &forged).status.code(), Some(1));
    daemon.wait_status("token_incorrect");
    assert!(daemon.proc.terminate().expect("terminate").success());
    daemon.restart(&server.url(), &store);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.status()["status"], "unconnected");
    assert_eq!(
        server.stats().connects_rejected,
        1,
        "not retried at start-up"
    );
    // Clean the entry up.
    assert!(daemon.ctl(&["logout"]).status.success());
}
