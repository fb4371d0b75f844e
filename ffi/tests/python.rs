//! Python apps on librcim_client through ctypes, as RC's own Python wrapper uses
//! RC's library: two apps with one token share one server connection, and an app
//! written against RC's own generated binding (`rcim_client.py` from RC's wheel)
//! runs unchanged. Skipped with a message when python3 is not installed.

mod support;

use rcim_tests::{InProcessServer, TestDaemon};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn two_python_apps_share_one_connection() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let library = support::library_file();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/flow.py");
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);

    let (lines, seen) = mpsc::channel::<(usize, String)>();
    let mut children = Vec::new();
    for app in 0..2 {
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(&library)
            .arg(&token)
            .arg(format!("py-app-{app}"))
            .env("RCIM_SOCKET", &daemon.socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let stdout = child.stdout.take().expect("stdout");
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send((app, line));
            }
        });
        children.push(child);
    }
    drop(lines);

    let mut ready = [false; 2];
    let mut ok = [false; 2];
    let mut output = Vec::new();
    while let Ok((app, line)) = seen.recv_timeout(Duration::from_secs(60)) {
        output.push(format!("{app}: {line}"));
        match line.as_str() {
            "READY" => {
                ready[app] = true;
                if ready == [true, true] {
                    server.publish_bob_to_alice(1, "from bob");
                }
            }
            "OK" => ok[app] = true,
            _ => {}
        }
    }
    for mut child in children {
        let status = child.wait().expect("wait for python3");
        assert!(
            status.success(),
            "a Python app failed ({status}):\n{}",
            output.join("\n")
        );
    }
    assert_eq!(ok, [true, true], "{}", output.join("\n"));
    let stats = server.get().stats();
    assert_eq!(
        stats.connects_accepted, 1,
        "two apps, one token: the server must see one connection"
    );
    let sent = server
        .block_on(server.get().messages_from("alice"))
        .expect("messages from alice");
    assert_eq!(sent.len(), 2, "{sent:?}");
}

/// Where RC's wheel was unpacked (`RCIM_RC_HEADER` names its `rcim_client.h`; the
/// generated binding `rcim_client.py` sits beside it), or None to skip.
fn rc_binding() -> Option<PathBuf> {
    let Some(header) = std::env::var_os("RCIM_RC_HEADER") else {
        assert!(
            std::env::var("RCIM_REQUIRE_RC_HEADER").as_deref() != Ok("1"),
            "RCIM_REQUIRE_RC_HEADER=1 but RCIM_RC_HEADER is not set: .ci/run fetches RC's wheel"
        );
        eprintln!("skipped: set RCIM_RC_HEADER to RC's rcim_client.h, beside its rcim_client.py");
        return None;
    };
    let binding = Path::new(&header).with_file_name("rcim_client.py");
    assert!(
        binding.is_file(),
        "no {} beside RCIM_RC_HEADER",
        binding.display()
    );
    Some(binding)
}

#[test]
fn an_app_on_rcs_own_python_binding_runs_unchanged() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 is not installed");
        return;
    }
    let Some(binding) = rc_binding() else { return };
    // RC's binding loads librust_universal_imsdk.so from its own directory: put it
    // there under that name, pointing at our library.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&binding, dir.path().join("rcim_client.py")).expect("copy RC's binding");
    std::os::unix::fs::symlink(
        support::library_file(),
        dir.path().join("librust_universal_imsdk.so"),
    )
    .expect("link the library under RC's name");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/rc_binding.py");
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&token)
        .env("PYTHONPATH", dir.path())
        .env("RCIM_SOCKET", &daemon.socket)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let stdout = child.stdout.take().expect("stdout");
    let mut output = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if line == "READY" {
            server.publish_bob_to_alice(1, "from bob");
        }
        output.push(line);
    }
    let status = child.wait().expect("wait for python3");
    assert!(
        status.success() && output.last().map(String::as_str) == Some("OK"),
        "the app on RC's binding failed ({status}):\n{}\nrcimd log:\n{}",
        output.join("\n"),
        daemon.proc.log()
    );
}
