//! Two Python apps (ctypes, as RC's own Python wrapper uses RC's library) on one
//! rcimd with one token: both connect, send and receive through librcim_client,
//! and the server sees exactly one connection. Skipped with a message when
//! python3 is not installed.

mod support;

use rcim_tests::{InProcessServer, TestDaemon};
use std::io::{BufRead, BufReader};
use std::path::Path;
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
