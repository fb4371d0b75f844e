//! `rcimctl` against the real daemon: what people see, and the exit codes scripts
//! rely on (0 ok, 1 RC error, 2 usage, 3 daemon unreachable).

use rcim_tests::{TestDaemon, TestServer, bin, ctl, eventually};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ctl_env(daemon: &TestDaemon, args: &[&str], token: &str) -> Output {
    Command::new(bin("rcimctl"))
        .args(args)
        .env("RCIM_SOCKET", &daemon.socket)
        .env("RCIM_TOKEN_FOR_TEST", token)
        .stdin(Stdio::null())
        .output()
        .expect("run rcimctl")
}

#[test]
fn connect_disconnect_and_connect_again() {
    let server = TestServer::start();
    let token = server.token("carol");
    let daemon = TestDaemon::start(&server.url(), &[]);

    let out = ctl(
        &daemon.socket,
        &["connect", "--token-stdin", "--timeout", "10"],
        Some(&format!("{token}\n")),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "database opened\nconnected as carol\n");
    assert_eq!(daemon.status()["status"], "connected");

    let out = daemon.ctl(&["disconnect", "--no-push"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "disconnected (push notifications stopped)\n"
    );
    assert_eq!(daemon.wait_status("sign_out")["status_code"], 7);
    assert!(eventually(Duration::from_secs(5), || server.stats().online == 0));

    let out = ctl_env(
        &daemon,
        &["connect", "--token-env", "RCIM_TOKEN_FOR_TEST"],
        &token,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(server.stats().connects_accepted, 2);
    let everything = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!everything.contains(&token), "the token is never printed");
}

#[test]
fn a_refused_token_prints_the_code_and_its_meaning_and_exits_1() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let out = ctl(
        &daemon.socket,
        &["connect", "--token-stdin"],
        Some("wrong.token"),
    );
    assert_eq!(out.status.code(), Some(1));
    let meaning = rcim_proto::RcCode(31004).meaning();
    assert_eq!(
        text(&out.stderr),
        format!("rcimctl: connect failed: error 31004: {meaning}\n")
    );
}

#[test]
fn a_rejected_connect_exits_1_with_nothing_on_stdout() {
    let server = TestServer::start();
    let alice = server.token("alice");
    let bob = server.token("bob");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let out = ctl(&daemon.socket, &["connect", "--token-stdin"], Some(&alice));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = ctl(&daemon.socket, &["connect", "--token-stdin"], Some(&bob));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("connect failed: error 34001"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn human_status_reads_well() {
    let server = TestServer::start();
    let token = server.token("dave");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let out = daemon.ctl(&["status"]);
    assert!(out.status.success());
    let human = text(&out.stdout);
    assert!(
        human.starts_with("status:     unconnected (3)\n"),
        "{human}"
    );

    let out = ctl(&daemon.socket, &["connect", "--token-stdin"], Some(&token));
    assert!(out.status.success());
    let human = text(&daemon.ctl(&["status"]).stdout);
    assert!(
        human.starts_with("status:     connected (1)\nuser:       dave\n"),
        "{human}"
    );
    assert!(
        human.contains(&format!("server:     {}", server.url())),
        "{human}"
    );
    assert!(
        human.contains(&format!(
            "daemon:     rcimd {}, protocol {}",
            env!("CARGO_PKG_VERSION"),
            rcim_proto::PROTOCOL_VERSION
        )),
        "{human}"
    );
}

/// Regression: `rcimctl status | head -1` must not panic when the reader goes away.
#[test]
fn closed_stdout_is_not_a_panic() {
    let server = TestServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(bin("rcimctl"))
        .args(["status"])
        .env("RCIM_SOCKET", &daemon.socket)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run rcimctl");
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}
