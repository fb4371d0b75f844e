//! The hub across real processes: many subscribers, a client that never reads, a
//! client killed mid-stream, a daemon killed mid-stream, another uid.

use crate::CLIENT;
use rcim_tests::{
    InProcessServer, TestDaemon, alice_connected, bin, eventually, rss_kib, stored_ids, wait_stored,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A receiver process and its stdout, read line by line.
struct Receiver {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Receiver {
    fn start(socket: &Path, count: usize, since: Option<i64>, print_ids: bool) -> Self {
        Self::start_with(socket, count, since, print_ids, &[])
    }

    fn start_with(
        socket: &Path,
        count: usize,
        since: Option<i64>,
        print_ids: bool,
        extra: &[&str],
    ) -> Self {
        let mut command = Command::new(CLIENT);
        command.args(extra);
        command
            .args(["--receive", &count.to_string()])
            .env("RCIM_SOCKET", socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(since) = since {
            command.args(["--since", &since.to_string()]);
        }
        if print_ids {
            command.arg("--print-ids");
        }
        let mut child = command.spawn().expect("start a receiver");
        let stdout = child.stdout.take().expect("stdout");
        let mut receiver = Self {
            child,
            lines: BufReader::new(stdout),
        };
        let ready = receiver.line().expect("ready line");
        assert!(ready.contains("\"ready\""), "{ready}");
        receiver
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.lines.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end().to_owned()),
        }
    }

    /// Waits for the final summary and returns the ids received.
    fn finish(self) -> Vec<i64> {
        self.finish_with_lags().0
    }

    /// Waits for the final summary: the ids received, and how many times the event
    /// stream fell behind its buffer.
    fn finish_with_lags(mut self) -> (Vec<i64>, u64) {
        let mut rest = String::new();
        let _ = self.lines.read_to_string(&mut rest);
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "receiver failed: {status}");
        let last = rest.lines().last().expect("summary line");
        let v: serde_json::Value = serde_json::from_str(last).expect("summary JSON");
        let ids = v["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|id| id.as_i64().expect("id"))
            .collect();
        (ids, v["lags"].as_u64().expect("lags"))
    }
}

#[test]
fn fifty_clients_get_every_message_in_order_exactly_once() {
    const CLIENTS: usize = 50;
    const MESSAGES: u32 = 10_000;
    let (server, _, daemon) = alice_connected(&[]);
    let receivers: Vec<_> = (0..CLIENTS)
        .map(|_| Receiver::start(&daemon.socket, MESSAGES as usize, None, false))
        .collect();
    server.publish_bob_to_alice(MESSAGES, "m");
    let started = Instant::now();
    let stored = {
        wait_stored(
            &daemon,
            "alice",
            MESSAGES as usize,
            Duration::from_secs(120),
        );
        stored_ids(&daemon.data_dir, "alice")
    };
    for receiver in receivers {
        assert_eq!(
            receiver.finish(),
            stored,
            "every message, in order, exactly once"
        );
    }
    eprintln!(
        "{CLIENTS} clients × {MESSAGES} messages in {:?}",
        started.elapsed()
    );
}

/// Regression: a stream that fell behind its local buffer used to have the daemon
/// replay everything after its position into that same buffer, which overflowed
/// again: the stream lagged over and over (thousands of times in the fan-out bench)
/// and could stall. It now pages its gap from the database at its own pace.
#[test]
fn a_stream_that_falls_behind_its_buffer_pages_its_gap_and_misses_nothing() {
    const MESSAGES: u32 = 3_000;
    let started = Instant::now();
    let (server, _, daemon) = alice_connected(&[]);
    let count = MESSAGES as usize + 1;
    let paused = Receiver::start_with(
        &daemon.socket,
        count,
        None,
        false,
        &["--pause-after", "1:1500"],
    );
    let steady = Receiver::start(&daemon.socket, count, None, false);
    // The first message starts the pause; the rest arrive while it lasts.
    server.publish_bob_to_alice(1, "m");
    wait_stored(&daemon, "alice", 1, Duration::from_secs(10));
    server.publish_bob_to_alice(MESSAGES, "m");
    wait_stored(&daemon, "alice", count, Duration::from_secs(120));
    let stored = stored_ids(&daemon.data_dir, "alice");
    let (ids, lags) = paused.finish_with_lags();
    eprintln!("{count} messages, {lags} lag(s), {:?}", started.elapsed());
    assert_eq!(ids, stored, "every message, in order, exactly once");
    assert!(
        (1..=3).contains(&lags),
        "the stream fell behind once (or a few times while paging), not {lags} times"
    );
    assert_eq!(steady.finish(), stored);
}

#[test]
fn a_client_that_never_reads_is_dropped_and_hurts_nobody() {
    const MESSAGES: u32 = 10_000;
    let (server, _, daemon) = alice_connected(&["--client-stall-timeout", "2"]);

    // A client that says Hello and then never reads a byte.
    let mut stuck = std::os::unix::net::UnixStream::connect(&daemon.socket).expect("connect");
    let hello = rcim_proto::ipc::ClientFrame::Hello(rcim_proto::ipc::Hello {
        protocol: rcim_proto::PROTOCOL_VERSION,
        client_name: "stuck-client".into(),
        client_version: "0".into(),
    });
    let frame =
        rcim_proto::frame::encode(&hello, rcim_proto::frame::MAX_IPC_FRAME).expect("encode");
    stuck.write_all(&frame).expect("hello");

    let receivers: Vec<_> = (0..5)
        .map(|_| Receiver::start(&daemon.socket, MESSAGES as usize, None, false))
        .collect();
    let content = "x".repeat(400);
    server.publish_bob_to_alice(MESSAGES, &content);
    for receiver in receivers {
        assert_eq!(receiver.finish().len(), MESSAGES as usize);
    }
    assert!(
        eventually(Duration::from_secs(20), || daemon
            .proc
            .log()
            .contains("'stuck-client'")
            && daemon
                .proc
                .log()
                .contains("dropped: it has not read anything")),
        "the stuck client was not dropped with a log line naming it"
    );
    let rss = rss_kib(daemon.proc.pid());
    assert!(rss < 64 * 1024, "rcimd uses {rss} KiB");
    // The stuck client's connection is closed by the daemon.
    let mut buf = vec![0u8; 1 << 20];
    stuck
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut total = 0;
    loop {
        match stuck.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("the stuck client was not closed (read {total} bytes): {e}"),
        }
    }
}

#[test]
fn a_client_killed_mid_stream_resumes_from_its_last_seq() {
    const MESSAGES: u32 = 5_000;
    let (server, _, daemon) = alice_connected(&[]);
    let mut first = Receiver::start(&daemon.socket, MESSAGES as usize, Some(0), true);
    std::thread::scope(|scope| {
        scope.spawn(|| server.publish_bob_to_alice(MESSAGES, "m"));
        let mut seen = Vec::new();
        while seen.len() < 1_500 {
            let line = first.line().expect("an id");
            seen.push(line.parse::<i64>().expect("id"));
        }
        first.child.kill().expect("kill");
        let _ = first.child.wait();
        let last = *seen.last().expect("ids");
        let rest = Receiver::start(
            &daemon.socket,
            MESSAGES as usize - seen.len(),
            Some(last),
            false,
        )
        .finish();
        seen.extend(rest);
        wait_stored(&daemon, "alice", MESSAGES as usize, Duration::from_secs(60));
        assert_eq!(
            seen,
            stored_ids(&daemon.data_dir, "alice"),
            "no gap, no duplicate"
        );
    });
}

#[test]
fn after_rcimd_is_killed_a_client_resumes_from_its_last_seq() {
    const MESSAGES: u32 = 5_000;
    let (server, token, mut daemon) = alice_connected(&[]);
    let mut receiver = Receiver::start(&daemon.socket, MESSAGES as usize, Some(0), true);
    std::thread::scope(|scope| {
        scope.spawn(|| server.publish_bob_to_alice(MESSAGES, "m"));
        let mut seen = Vec::new();
        while seen.len() < 1_000 {
            let line = receiver.line().expect("an id");
            seen.push(line.parse::<i64>().expect("id"));
        }
        daemon.proc.kill9();
        // The receiver reports the daemon gone; keep what it printed before that.
        while let Some(line) = receiver.line() {
            if let Ok(id) = line.parse::<i64>() {
                seen.push(id);
            }
        }
        let _ = receiver.child.wait();
        daemon.restart(&server.url(), &[]);
        daemon.connect(&token);
        let last = *seen.last().expect("ids");
        let rest = Receiver::start(
            &daemon.socket,
            MESSAGES as usize - seen.len(),
            Some(last),
            false,
        )
        .finish();
        seen.extend(rest);
        assert_eq!(
            seen,
            stored_ids(&daemon.data_dir, "alice"),
            "no gap, no duplicate"
        );
    });
}

#[test]
fn a_process_of_another_uid_is_refused() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        panic!("setpriv (util-linux) is needed for this test");
    }
    let server = InProcessServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    // Open the path for the other user, so that only the peer-credential check
    // stands in the way (the daemon itself keeps them 0700/0600).
    let dir = daemon.socket.parent().expect("dir");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).expect("chmod dir");
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666))
        .expect("chmod socket");
    for parent in dir.ancestors().skip(1) {
        if let Ok(meta) = std::fs::metadata(parent) {
            let mode = meta.permissions().mode();
            let _ = std::fs::set_permissions(parent, std::fs::Permissions::from_mode(mode | 0o001));
        }
    }
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(bin("rcimctl"))
        .args(["status", "--json"])
        .env("RCIM_SOCKET", &daemon.socket)
        .output()
        .expect("run setpriv");
    assert!(
        !out.status.success(),
        "another uid got in: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        eventually(Duration::from_secs(5), || daemon
            .proc
            .log()
            .contains("runs as uid 65534")),
        "no log line about the refused uid:\n{}",
        daemon.proc.log()
    );
    // The owner is still served.
    assert_eq!(daemon.status()["status"], "unconnected");
}
