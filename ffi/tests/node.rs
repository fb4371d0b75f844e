//! A Node app on librcim_client through koffi (from npm), the way an Electron main
//! process would: connect, send and receive. Skipped with a message when node or
//! koffi is missing (`RCIM_KOFFI_DIR` names koffi's package directory; `.ci/run`
//! installs it and sets `RCIM_REQUIRE_KOFFI=1`, which makes a missing one fail).

mod support;

use rcim_tests::{InProcessServer, TestDaemon};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn a_node_app_connects_sends_and_receives() {
    let koffi = std::env::var_os("RCIM_KOFFI_DIR");
    let node = Command::new("node").arg("--version").output().is_ok();
    let (Some(koffi), true) = (koffi, node) else {
        assert!(
            std::env::var("RCIM_REQUIRE_KOFFI").as_deref() != Ok("1"),
            "RCIM_REQUIRE_KOFFI=1 but node or RCIM_KOFFI_DIR is missing"
        );
        eprintln!("skipped: needs node and RCIM_KOFFI_DIR (koffi's package directory)");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/flow.cjs");
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let mut child = Command::new("node")
        .arg(&script)
        .arg(&koffi)
        .arg(support::library_file())
        .arg(&token)
        .env("RCIM_SOCKET", &daemon.socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start node");
    let stdout = child.stdout.take().expect("stdout");
    let mut output = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line == "READY" {
            server.publish_bob_to_alice(1, "from bob");
        }
        output.push(line);
    }
    let status = child.wait().expect("wait for node");
    assert!(
        status.success() && output.last().map(String::as_str) == Some("OK"),
        "the Node app failed ({status}):\n{}\nrcimd log:\n{}",
        output.join("\n"),
        daemon.proc.log()
    );
}
