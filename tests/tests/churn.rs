//! Churn: 1,000 short-lived client processes attach to one `rcimd`, subscribe and
//! vanish, some in the middle of a frame, while a steady receiver stays attached
//! and the server keeps publishing. Afterwards the daemon's open file descriptors
//! are back to their baseline and its memory near it, and the steady receiver got
//! every message once, in order.
//!
//! The processes come in waves (so a 2-core machine copes), a mix of:
//! - `rcim-test-client --receive --since N`: attach, subscribe (a replay from a
//!   random point), killed with SIGKILL at a random moment (before its Hello,
//!   during the replay, or live);
//! - `rcim-test-client --receive` without a subscription, killed the same way;
//! - this test binary re-run as a child (`half_frame_child`), which says Hello and
//!   then writes half a request frame (or half a Hello) and exits;
//! - `rcimctl status --json`, which attaches, asks and leaves politely.
//!
//! `RCIM_CHURN_CLIENTS` changes the number of processes (default 1,000).

mod support;

use rcim_proto::frame::{MAX_IPC_FRAME, encode};
use rcim_proto::ipc::{ClientFrame, Hello, Op, Request};
use rcim_tests::{InProcessServer, Rng, TestDaemon, eventually, open_fds, rss_kib, stored_ids};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{CLIENT, Receiver};

/// The env var that turns this binary into a half-frame child.
const CHILD_SOCKET: &str = "RCIM_CHURN_CHILD_SOCKET";
/// Processes per wave.
const WAVE: usize = 50;

/// Not a test of its own: the child process of the churn test (when
/// `RCIM_CHURN_CHILD_SOCKET` is set) that vanishes in the middle of a frame.
#[test]
fn half_frame_child() {
    let Ok(socket) = std::env::var(CHILD_SOCKET) else {
        return;
    };
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(socket) else {
        return;
    };
    let hello = encode(
        &ClientFrame::Hello(Hello {
            protocol: rcim_proto::PROTOCOL_VERSION,
            client_name: "half-frame".into(),
            client_version: "0".into(),
        }),
        MAX_IPC_FRAME,
    )
    .expect("encode");
    let request = encode(
        &ClientFrame::Request(Request {
            id: 1,
            op: Op::Subscribe { since_seq: 0 },
        }),
        MAX_IPC_FRAME,
    )
    .expect("encode");
    let half = if std::process::id().is_multiple_of(2) {
        // Half a Hello.
        hello[..hello.len() / 2].to_vec()
    } else {
        // A Hello, then half a request.
        let mut bytes = hello;
        bytes.extend_from_slice(&request[..request.len() / 2]);
        bytes
    };
    let _ = stream.write_all(&half);
    // Exit with the frame unfinished: the kernel closes the socket.
}

/// One short-lived process of the mix.
fn spawn_one(kind: u64, socket: &std::path::Path, since: i64) -> Child {
    let quiet = |command: &mut Command| {
        command
            .env("RCIM_SOCKET", socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut command;
    match kind {
        0..=4 => {
            command = Command::new(CLIENT);
            command.args(["--receive", "1000000", "--since", &since.to_string()]);
        }
        5 | 6 => {
            command = Command::new(CLIENT);
            command.args(["--receive", "1000000"]);
        }
        7 | 8 => {
            command = Command::new(std::env::current_exe().expect("test binary"));
            command
                .args(["--exact", "half_frame_child", "--test-threads", "1", "-q"])
                .env(CHILD_SOCKET, socket);
        }
        _ => {
            command = Command::new(rcim_tests::bin("rcimctl"));
            command.args(["status", "--json"]);
        }
    }
    quiet(&mut command);
    command.spawn().expect("spawn a churn process")
}

#[test]
fn a_thousand_clients_come_and_go_and_leave_nothing_behind() {
    let total: usize = std::env::var("RCIM_CHURN_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let mut rng = Rng::from_env("churn");
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    daemon.connect(&token);
    let pid = daemon.proc.pid();

    let mut steady = Receiver::new("steady".into());
    assert!(steady.start(&daemon.socket), "the steady receiver attaches");
    let mut published = 0usize;
    let mut publish = |count: u32| {
        published += server
            .block_on(server.get().publish_private_bulk(
                "bob",
                "alice",
                count,
                "RC:TxtMsg",
                "churn",
            ))
            .expect("publish")
            .len();
    };
    publish(200);
    // Warm up (first sessions, first replays, allocator arenas), then measure.
    for child in (0..WAVE as u64).map(|i| spawn_one(i % 10, &daemon.socket, 0)) {
        let mut child = child;
        std::thread::sleep(Duration::from_millis(5));
        let _ = child.kill();
        let _ = child.wait();
    }
    std::thread::sleep(Duration::from_millis(500));
    let fds_before = open_fds(pid);
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    let mut spawned = 0usize;
    let mut kinds = [0usize; 4];
    let mut peak_fds = 0usize;
    let mut peak_rss = 0u64;
    let mut rss_half = 0u64;
    while spawned < total {
        let wave = WAVE.min(total - spawned);
        let stored = stored_ids(&daemon.data_dir, "alice");
        let mut children: Vec<(Child, Duration)> = (0..wave)
            .map(|_| {
                let kind = rng.below(10);
                kinds[match kind {
                    0..=4 => 0,
                    5 | 6 => 1,
                    7 | 8 => 2,
                    _ => 3,
                }] += 1;
                let since = if stored.is_empty() {
                    0
                } else {
                    stored[rng.below(stored.len() as u64) as usize]
                };
                let life = Duration::from_millis(rng.below(400));
                (spawn_one(kind, &daemon.socket, since), life)
            })
            .collect();
        spawned += wave;
        publish(50);
        // Kill each at its moment (the polite ones have exited by then).
        children.sort_by_key(|(_, life)| *life);
        let wave_start = Instant::now();
        for (child, life) in &mut children {
            if let Some(wait) = life.checked_sub(wave_start.elapsed()) {
                std::thread::sleep(wait);
            }
            peak_fds = peak_fds.max(open_fds(pid));
            let _ = child.kill();
        }
        peak_rss = peak_rss.max(rss_kib(pid));
        if spawned >= total / 2 && rss_half == 0 {
            rss_half = rss_kib(pid);
        }
        for (mut child, _) in children {
            let _ = child.wait();
        }
        assert!(steady.is_alive(), "the steady receiver was dropped");
    }
    let churn_time = started.elapsed();

    // Everything published reached the database and the steady receiver.
    assert!(
        eventually(Duration::from_secs(60), || {
            stored_ids(&daemon.data_dir, "alice").len() == published
                && steady.ids().len() == published
        }),
        "stored {} and received {} of {published}",
        stored_ids(&daemon.data_dir, "alice").len(),
        steady.ids().len()
    );
    assert_eq!(
        steady.ids(),
        stored_ids(&daemon.data_dir, "alice"),
        "the steady receiver got every message once, in order"
    );

    // The daemon let go of every connection and most of the memory.
    let settled = eventually(Duration::from_secs(15), || open_fds(pid) <= fds_before);
    let fds_after = open_fds(pid);
    let rss_after = rss_kib(pid);
    let log = daemon.proc.log();
    let attached = log.matches(" attached").count();
    let unfinished = log
        .matches("connection closed in the middle of a frame")
        .count();
    eprintln!(
        "churn: {spawned} processes in {:.1}s ({} subscribing receivers, {} plain receivers, \
         {} half-frame, {} rcimctl status; {attached} sessions attached, {unfinished} ended \
         mid-frame), {published} messages; rcimd fds {fds_before} → peak {peak_fds} → \
         {fds_after}; RSS {rss_before} KiB → half-way {rss_half} KiB → peak {peak_rss} KiB → \
         {rss_after} KiB",
        churn_time.as_secs_f64(),
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3]
    );
    assert!(
        settled,
        "rcimd holds {fds_after} descriptors, {fds_before} before the churn"
    );
    // Memory: near the baseline, and not growing with the number of clients (the
    // second half of the churn adds next to nothing to the first).
    assert!(
        rss_after < rss_before + 16 * 1024,
        "rcimd's memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    assert!(
        rss_after < rss_half + 8 * 1024,
        "rcimd's memory kept growing: {rss_half} KiB half-way, {rss_after} KiB at the end"
    );
    let status = daemon.status();
    assert_eq!(status["status"], "connected");
    // rcimctl and the steady receiver.
    assert_eq!(status["clients"], 2, "{status}");
    steady.reap();
}
