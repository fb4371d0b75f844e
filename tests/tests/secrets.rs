//! The token is a secret everywhere a person or another process can look.
//!
//! `e2e/service.rs` already greps rcimd's trace log and every file under the data
//! dir through connect, a reconnect, logout and a 31004 (forged signature). This
//! test covers what that one does not look at, over the same kind of life plus a
//! 31020 (a token the server expired) and a daemon restart:
//!
//! - everything `rcimctl` prints: stdout and stderr of `connect` (accepted and
//!   refused with 31004 / 31020), `status`, `status --json`, `clients`, `logout`,
//!   `disconnect`, `doctor`;
//! - everything the RC-shaped client process prints when it connects with the
//!   token (callbacks on stdout, and its stderr);
//! - rcimd's command line and environment (`/proc/PID/cmdline`, `environ`), and
//!   every file under the socket dir and the data dir (the payload half too);
//! - every log line of rcimd at trace level, and that nothing panicked (a panic
//!   message is the classic way a secret escapes `Debug` redaction).
//!
//! Each is searched for the whole token, its signature and its base64 payload.

use rcim_tests::proxy::FaultProxy;
use rcim_tests::{
    TestDaemon, TestServer, bytes_contain, ctl, eventually, files_under, spawn_client,
};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

const CLIENT: &str = env!("CARGO_BIN_EXE_rcim-test-client");

/// Everything the test looked at, by where it came from.
#[derive(Default)]
struct Evidence(Vec<(String, Vec<u8>)>);

impl Evidence {
    fn add(&mut self, what: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.0.push((what.into(), bytes.into()));
    }

    fn output(&mut self, what: &str, out: &Output) {
        self.add(format!("{what} stdout"), out.stdout.clone());
        self.add(format!("{what} stderr"), out.stderr.clone());
    }

    /// Fails naming the place that holds any of `secrets`.
    fn assert_clean(&self, secrets: &[(&str, &str)]) {
        for (what, bytes) in &self.0 {
            for (name, secret) in secrets {
                assert!(
                    !bytes_contain(bytes, secret),
                    "{what} holds the {name}:\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
            assert!(
                !bytes_contain(bytes, "panicked"),
                "{what} shows a panic:\n{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
}

fn connect(socket: &Path, token: &str) -> Output {
    ctl(
        socket,
        &["connect", "--token-stdin", "--timeout", "10"],
        Some(&format!("{token}\n")),
    )
}

#[test]
fn the_token_is_in_no_output_no_process_record_and_no_file() {
    let server = TestServer::start();
    let proxy = FaultProxy::start(server.im_addr.parse().expect("im_addr"));
    let trace = ["--log-level", "trace"];
    let mut daemon = TestDaemon::start(&proxy.url(), &trace);
    let good = server.token("alice");
    let (payload, signature) = good.split_once('.').expect("payload.signature");
    let forged = format!("{payload}.{}", "B".repeat(signature.len()));
    let mut seen = Evidence::default();
    let socket = daemon.socket.clone();

    // Connect through the RC-shaped client, then through rcimctl.
    let client = spawn_client(CLIENT, &socket, &good, 10)
        .wait_with_output()
        .expect("client");
    assert!(client.status.success());
    seen.output("rcim-test-client connect", &client);
    let out = connect(&socket, &good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.output("rcimctl connect", &out);
    daemon.wait_status("connected");
    for file in [Path::new("cmdline"), Path::new("environ")] {
        let path = Path::new("/proc")
            .join(daemon.proc.pid().to_string())
            .join(file);
        seen.add(
            path.display().to_string(),
            std::fs::read(&path).unwrap_or_default(),
        );
    }

    // A reconnect under the daemon's feet.
    proxy.drop_all();
    assert!(
        eventually(Duration::from_secs(10), || {
            let status = daemon.status();
            status["status"] == "connected" && status["reconnects"] == 1
        }),
        "no reconnect: {}",
        daemon.status()
    );
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["clients"],
        &["doctor"],
    ] {
        seen.output(&format!("rcimctl {}", args.join(" ")), &daemon.ctl(args));
    }

    // The server expires alice's tokens: the next connect is refused with 31020.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis()
        .to_string();
    let (status, body) = server.api(
        "/user/token/expire.json",
        &[("userId", "alice"), ("time", &now_ms)],
    );
    assert_eq!(
        (status, &body["code"]),
        (200, &serde_json::json!(200)),
        "{body}"
    );
    seen.output("rcimctl disconnect", &daemon.ctl(&["disconnect"]));
    let out = connect(&socket, &good);
    assert!(!out.status.success(), "an expired token connected");
    seen.output("rcimctl connect (expired)", &out);
    seen.output(
        "rcimctl status --json (expired)",
        &daemon.ctl(&["status", "--json"]),
    );

    // A forged signature: 31004.
    let out = connect(&socket, &forged);
    assert!(!out.status.success(), "a forged token connected");
    seen.output("rcimctl connect (forged)", &out);
    daemon.wait_status("token_incorrect");
    seen.output("rcimctl status (forged)", &daemon.ctl(&["status"]));
    seen.output(
        "rcimctl status --json (forged)",
        &daemon.ctl(&["status", "--json"]),
    );

    // A fresh token, logout, and a restart of the daemon.
    let fresh = server.token("alice");
    let out = connect(&socket, &fresh);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen.output("rcimctl connect (fresh)", &out);
    seen.output("rcimctl logout", &daemon.ctl(&["logout"]));
    let first_log = daemon.proc.log();
    assert!(
        first_log.contains("trace"),
        "not at trace level:\n{first_log}"
    );
    seen.add("rcimd log (first run)", first_log);
    daemon.proc.terminate().expect("SIGTERM");
    daemon.restart(&proxy.url(), &trace);
    seen.output(
        "rcimctl status --json (restarted)",
        &daemon.ctl(&["status", "--json"]),
    );
    daemon.proc.terminate().expect("SIGTERM");
    seen.add("rcimd log (second run)", daemon.proc.log());

    for file in files_under(daemon.dir()) {
        // The temp dir holds the socket dir, the data dir and the logs.
        seen.add(
            file.display().to_string(),
            std::fs::read(&file).unwrap_or_default(),
        );
    }
    assert!(seen.0.len() > 20, "looked at {} places", seen.0.len());
    let (fresh_payload, fresh_signature) = fresh.split_once('.').expect("payload.signature");
    seen.assert_clean(&[
        ("token", &good),
        ("signature", signature),
        ("payload", payload),
        ("forged token", &forged),
        ("fresh token", &fresh),
        ("fresh signature", fresh_signature),
        ("fresh payload", fresh_payload),
    ]);
    eprintln!(
        "secrets: {} places searched, none holds the token",
        seen.0.len()
    );
}
