//! The daemon as a process: its socket, its status, its lifecycle.

use rcim_tests::{TestDaemon, TestServer, bin};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

#[test]
fn status_of_an_idle_daemon() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let status = daemon.status();
    assert_eq!(status["status"], "unconnected");
    assert_eq!(status["status_code"], 3);
    assert_eq!(status["user_id"], serde_json::Value::Null);
    assert_eq!(status["protocol"], rcim_proto::PROTOCOL_VERSION);
    assert_eq!(status["daemon_version"], env!("CARGO_PKG_VERSION"));
    assert!(status["uptime_s"].is_u64());
    // rcimctl itself is attached while it asks.
    assert_eq!(status["clients"], 1);
}

#[test]
fn socket_is_owner_only() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.socket), 0o600);
    assert_eq!(mode(daemon.socket.parent().expect("dir")), 0o700);
}

#[test]
fn a_second_daemon_does_not_steal_the_socket() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let out = Command::new(bin("rcimd"))
        .arg("--socket")
        .arg(&daemon.socket)
        .arg("--data-dir")
        .arg(daemon.dir().join("data2"))
        .args([
            "--server",
            &server.url(),
            "--app-key",
            "k",
            "--token-store",
            "memory",
        ])
        .output()
        .expect("run rcimd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    // The first daemon still serves.
    assert_eq!(daemon.status()["status"], "unconnected");
}

#[test]
fn a_stale_socket_is_replaced() {
    let server = TestServer::start();
    let mut daemon = TestDaemon::start(&server.url(), &[]);
    daemon.proc.kill9();
    assert!(
        daemon.socket.exists(),
        "kill -9 leaves the socket file behind"
    );
    daemon.restart(&server.url(), &[]);
    assert_eq!(daemon.status()["status"], "unconnected");
}

/// The installed daemon has no embedded server: `--dev` says how to get one, and
/// starts nothing (the CI runs the feature build's `--dev` itself).
#[test]
fn dev_mode_without_the_embedded_server_says_how_to_get_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("rcimd.sock");
    let out = Command::new(bin("rcimd"))
        .arg("--dev")
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("run rcimd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cargo run -p rcimd --features dev-server -- --dev"),
        "{stderr}"
    );
    assert!(!socket.exists(), "it opened its socket anyway");
    assert!(
        !dir.path().join("data").exists(),
        "it created its data dir anyway"
    );
}

#[test]
fn refuses_a_world_writable_socket_dir() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let open_dir = dir.path().join("open");
    std::fs::create_dir(&open_dir).expect("mkdir");
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = Command::new(bin("rcimd"))
        .arg("--socket")
        .arg(open_dir.join("rcimd.sock"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--server",
            &server.url(),
            "--app-key",
            "k",
            "--token-store",
            "memory",
        ])
        .output()
        .expect("run rcimd");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("writable by others"), "{stderr}");
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let server = TestServer::start();
    let mut daemon = TestDaemon::start(&server.url(), &[]);
    let status = daemon.proc.terminate().expect("terminate");
    assert!(status.success(), "{status}");
    assert!(!daemon.socket.exists());
}
