//! Hostile local peers against a real `rcimd` process: what a misbehaving or
//! malicious process of the same user can do to the socket, and what it must not
//! achieve (exhaust the daemon's memory, starve other clients, or trick it into
//! binding somewhere else).
//!
//! Covered elsewhere, not repeated here: another uid is refused
//! (`e2e/hub.rs`), a world-writable socket dir (`e2e/daemon.rs`), hostile frames
//! closing only their own session and a missing Hello (`daemon/tests/session.rs`,
//! in-process).
//!
//! Here: a 4 GiB length prefix followed by a flood of bytes (the daemon's memory
//! does not move), slowloris Hellos (one byte per 100 ms) and hundreds of idle
//! connections (cut at the 10 s Hello deadline; others are served meanwhile and
//! the file descriptors come back), a flood of requests from one client (another
//! client's `status` round trip stays short), a flood of database queries (another
//! client's queries stay quick and arriving messages are still committed), and a symlink planted at the socket
//! path or as the socket dir (refused with a clear error).

use rcim_client::{Client, ClientOptions};
use rcim_proto::frame::{MAX_IPC_FRAME, decode_body, encode};
use rcim_proto::ipc::{ClientFrame, DaemonFrame, Hello, Op, Reply, Request, Response};
use rcim_proto::message::{ConversationKey, ConversationType, TimeOrder};
use rcim_tests::{
    InProcessServer, TestDaemon, alice_connected, bin, eventually, open_fds, rss_kib, stored_ids,
    wait_stored,
};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn hello_frame(name: &str) -> Vec<u8> {
    let hello = ClientFrame::Hello(Hello {
        protocol: rcim_proto::PROTOCOL_VERSION,
        client_name: name.into(),
        client_version: "0".into(),
    });
    encode(&hello, MAX_IPC_FRAME).expect("encode")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The round trip of one `status` request from a client attached beforehand.
fn status_rtt(rt: &tokio::runtime::Runtime, client: &Client) -> Duration {
    let started = Instant::now();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), client.status())
            .await
            .expect("status within 30 s")
            .expect("status")
    });
    started.elapsed()
}

fn attach(rt: &tokio::runtime::Runtime, socket: &Path, name: &str) -> Client {
    let options = ClientOptions {
        socket: Some(socket.to_owned()),
        ..ClientOptions::named(name)
    };
    rt.block_on(Client::attach(options)).expect("attach")
}

#[test]
fn a_4_gib_length_prefix_and_a_byte_flood_cost_the_daemon_nothing() {
    let server = InProcessServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let rt = runtime();
    let good = attach(&rt, &daemon.socket, "good");
    let pid = daemon.proc.pid();
    let baseline = rss_kib(pid);
    // After a Hello (a 4 GiB request), and instead of one (a 4 GiB Hello).
    for before_hello in [false, true] {
        let mut hostile = UnixStream::connect(&daemon.socket).expect("connect");
        if !before_hello {
            hostile.write_all(&hello_frame("hostile")).expect("hello");
        }
        hostile.write_all(&u32::MAX.to_be_bytes()).expect("prefix");
        // Then 64 MiB of body that the daemon must not buffer: it closes first, and
        // our writes fail.
        let chunk = vec![0x41u8; 1 << 20];
        let mut written = 0usize;
        for _ in 0..64 {
            match hostile.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        hostile
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut rest = Vec::new();
        let closed = hostile.read_to_end(&mut rest).is_ok();
        assert!(closed, "the daemon did not close the connection");
        eprintln!(
            "4 GiB prefix (before the Hello: {before_hello}): {written} bytes went in before \
             the close"
        );
    }
    let after = rss_kib(pid);
    assert!(
        after < baseline + 16 * 1024,
        "rcimd grew from {baseline} KiB to {after} KiB"
    );
    assert!(status_rtt(&rt, &good) < Duration::from_secs(1));
    eprintln!("RSS {baseline} KiB before, {after} KiB after");
}

#[test]
fn slowloris_and_idle_connections_are_cut_at_the_hello_deadline_and_starve_nobody() {
    const IDLE: usize = 300;
    const SLOW: usize = 20;
    let server = InProcessServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let pid = daemon.proc.pid();
    let rt = runtime();
    let good = attach(&rt, &daemon.socket, "good");
    let fds_before = open_fds(pid);

    // Hundreds of connections that never say anything.
    let idle: Vec<UnixStream> = (0..IDLE)
        .map(|_| UnixStream::connect(&daemon.socket).expect("connect"))
        .collect();
    // Slowloris: Hellos too long to finish within the deadline at one byte per
    // 100 ms (and one short enough to finish: it is served).
    let long = hello_frame(&"s".repeat(200));
    let short = hello_frame("slow-but-fine");
    let started = Instant::now();
    let slow: Vec<_> = (0..SLOW)
        .map(|i| {
            let frame = if i == 0 { short.clone() } else { long.clone() };
            let mut stream = UnixStream::connect(&daemon.socket).expect("connect");
            std::thread::spawn(move || {
                for byte in frame {
                    if stream.write_all(&[byte]).is_err() {
                        return (false, started.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // Finished: a Welcome must come.
                let mut prefix = [0u8; 4];
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                (stream.read_exact(&mut prefix).is_ok(), started.elapsed())
            })
        })
        .collect();

    // Meanwhile the good client is served at once, again and again.
    let mut worst = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(4) {
        worst = worst.max(status_rtt(&rt, &good));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        worst < Duration::from_millis(500),
        "status took {worst:?} during the slowloris"
    );
    assert!(
        open_fds(pid) >= fds_before + IDLE,
        "the idle connections were accepted"
    );

    let results: Vec<_> = slow
        .into_iter()
        .map(|t| t.join().expect("slowloris thread"))
        .collect();
    assert!(results[0].0, "a slow but complete Hello is served");
    for (welcomed, when) in &results[1..] {
        assert!(!welcomed, "a slowloris past the deadline was served");
        assert!(
            *when < Duration::from_secs(15),
            "cut only after {when:?} (the deadline is 10 s)"
        );
    }
    // Every idle connection was closed by the daemon, and its descriptors are back.
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut buf = [0u8; 16];
        assert!(
            matches!(stream.read(&mut buf), Ok(0)),
            "an idle connection is still open"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || open_fds(pid) <= fds_before),
        "rcimd holds {} descriptors, {fds_before} before",
        open_fds(pid)
    );
    assert!(status_rtt(&rt, &good) < Duration::from_millis(500));
}

#[test]
fn a_request_flood_from_one_client_does_not_starve_another() {
    const FLOOD: u64 = 200_000;
    let server = InProcessServer::start();
    let daemon = TestDaemon::start(&server.url(), &[]);
    let pid = daemon.proc.pid();
    let rt = runtime();
    let good = attach(&rt, &daemon.socket, "good");
    let baseline_rtt = (0..20)
        .map(|_| status_rtt(&rt, &good))
        .max()
        .unwrap_or_default();
    let baseline_rss = rss_kib(pid);

    let mut batch = Vec::new();
    for id in 0..1_000u64 {
        let request = ClientFrame::Request(Request { id, op: Op::Status });
        batch.extend(encode(&request, MAX_IPC_FRAME).expect("encode"));
    }
    let flood = Flood::start(&daemon.socket, &batch, FLOOD);

    // During the flood: the good client's status round trips.
    let started = Instant::now();
    let mut rtts = Vec::new();
    while started.elapsed() < Duration::from_secs(5) {
        rtts.push(status_rtt(&rt, &good));
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak_rss = rss_kib(pid);
    let (sent, read) = flood.stop();
    rtts.sort();
    let median = rtts[rtts.len() / 2];
    let worst = *rtts.last().expect("rtts");
    eprintln!(
        "request flood: silent flooder wrote {} requests, greedy {} (read {read} bytes of \
         answers); other client's status: baseline worst {baseline_rtt:?}, during the flood \
         median {median:?}, worst {worst:?} over {} calls; RSS {baseline_rss} → {peak_rss} KiB",
        sent[0],
        sent[1],
        rtts.len()
    );
    assert!(
        worst < Duration::from_secs(1),
        "another client waited {worst:?} for status during a request flood"
    );
    assert!(
        peak_rss < baseline_rss + 64 * 1024,
        "rcimd grew from {baseline_rss} KiB to {peak_rss} KiB during the flood"
    );
    assert!(status_rtt(&rt, &good) < Duration::from_millis(500));
}

/// Two flooding clients: `silent` writes requests as fast as the socket takes them
/// and never reads an answer; `greedy` writes as fast and reads its answers as fast
/// as it can. Each writes `batch` (whole request frames) over and over, up to
/// `limit` requests of 1,000 per batch.
struct Flood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    writers: Vec<std::thread::JoinHandle<u64>>,
    reader: std::thread::JoinHandle<usize>,
    /// Closed when the flood is stopped.
    _streams: [UnixStream; 2],
}

impl Flood {
    fn start(socket: &Path, batch: &[u8], limit: u64) -> Self {
        let mut silent = UnixStream::connect(socket).expect("connect");
        silent
            .write_all(&hello_frame("flood-silent"))
            .expect("hello");
        let mut greedy = UnixStream::connect(socket).expect("connect");
        greedy
            .write_all(&hello_frame("flood-greedy"))
            .expect("hello");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers = [silent.try_clone(), greedy.try_clone()]
            .into_iter()
            .map(|stream| {
                let mut stream = stream.expect("clone");
                let batch = batch.to_vec();
                let stop = std::sync::Arc::clone(&stop);
                std::thread::spawn(move || {
                    stream
                        .set_write_timeout(Some(Duration::from_millis(200)))
                        .expect("timeout");
                    // Partial writes continue where they stopped, so frames stay whole.
                    let (mut sent, mut at) = (0u64, 0usize);
                    while sent < limit && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        match stream.write(&batch[at..]) {
                            Ok(0) => break,
                            Ok(n) => {
                                at += n;
                                if at == batch.len() {
                                    at = 0;
                                    sent += 1_000;
                                }
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) => {}
                            Err(_) => break,
                        }
                    }
                    sent
                })
            })
            .collect();
        let reader = {
            let mut stream = greedy.try_clone().expect("clone");
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0usize;
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .expect("timeout");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => total += n,
                        Err(_) => {}
                    }
                }
                total
            })
        };
        Self {
            stop,
            writers,
            reader,
            _streams: [silent, greedy],
        }
    }

    /// Stops both flooders: the requests each wrote, and the answer bytes the
    /// greedy one read.
    fn stop(self) -> (Vec<u64>, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let sent = self
            .writers
            .into_iter()
            .map(|w| w.join().expect("writer"))
            .collect();
        (sent, self.reader.join().expect("reader"))
    }
}

/// Database queries go through the one store connection that also commits what
/// arrives. Each session answers its requests one at a time, so a client flooding
/// queries has at most one in flight: another client's queries stay quick, and
/// messages arriving meanwhile are still committed and delivered.
#[test]
fn a_database_query_flood_starves_neither_other_clients_nor_incoming_messages() {
    const BACKLOG: u32 = 2_000;
    const DURING: u32 = 200;
    let (server, _, daemon) = alice_connected(&[]);
    let stored = || stored_ids(&daemon.data_dir, "alice").len();
    server.publish_bob_to_alice(BACKLOG, "m");
    wait_stored(&daemon, "alice", BACKLOG as usize, Duration::from_secs(60));
    let pid = daemon.proc.pid();
    let rt = runtime();
    let good = attach(&rt, &daemon.socket, "good");
    let bob = ConversationKey::private("bob");
    let query_rtt = || {
        let started = Instant::now();
        let page = rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    good.get_messages(bob.clone(), 0, TimeOrder::Before, 20),
                )
                .await
                .expect("getMessages within 30 s")
                .expect("getMessages")
            })
            .expect("a page of messages");
        assert_eq!(page.len(), 20);
        started.elapsed()
    };
    let baseline_query = (0..20).map(|_| query_rtt()).max().unwrap_or_default();
    let baseline_rss = rss_kib(pid);

    // The heaviest reads a client may ask for: a full page of history, a full page
    // of conversations, and 1,000 messages after the start (cut to fit a frame).
    let mut batch = Vec::new();
    for id in 0..1_000u64 {
        let op = match id % 3 {
            0 => Op::GetMessages {
                conversation: bob.clone(),
                sent_time_ms: 0,
                order: TimeOrder::Before,
                count: 20,
            },
            1 => Op::GetConversations {
                types: vec![ConversationType::Private],
                start_time_ms: 0,
                count: 50,
            },
            _ => Op::MessagesAfter {
                since_seq: 0,
                limit: 1_000,
            },
        };
        let request = ClientFrame::Request(Request { id, op });
        batch.extend(encode(&request, MAX_IPC_FRAME).expect("encode"));
    }
    let flood = Flood::start(&daemon.socket, &batch, u64::MAX);

    // During the flood: messages arrive, and the good client queries and asks for
    // the status.
    let started = Instant::now();
    server.publish_bob_to_alice(DURING, "m");
    let mut stored_after = None;
    let (mut queries, mut statuses) = (Vec::new(), Vec::new());
    while started.elapsed() < Duration::from_secs(5) || stored_after.is_none() {
        queries.push(query_rtt());
        statuses.push(status_rtt(&rt, &good));
        if stored_after.is_none() && stored() == (BACKLOG + DURING) as usize {
            stored_after = Some(started.elapsed());
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {DURING} messages stored after 30 s of the flood",
            stored() - BACKLOG as usize
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak_rss = rss_kib(pid);
    let (sent, read) = flood.stop();
    queries.sort();
    statuses.sort();
    let worst_query = *queries.last().expect("queries");
    let worst_status = *statuses.last().expect("statuses");
    eprintln!(
        "query flood: silent flooder wrote {} requests, greedy {} (read {read} bytes of \
         answers); other client's getMessages: baseline worst {baseline_query:?}, during \
         the flood median {:?}, worst {worst_query:?}; status worst {worst_status:?} over {} \
         calls; {DURING} messages published during the flood stored after {:?}; RSS \
         {baseline_rss} → {peak_rss} KiB",
        sent[0],
        sent[1],
        queries[queries.len() / 2],
        queries.len(),
        stored_after.expect("stored")
    );
    assert!(sent[1] > 0, "the greedy flooder got nothing in");
    assert!(
        worst_query < Duration::from_secs(2),
        "another client waited {worst_query:?} for getMessages during a query flood"
    );
    assert!(
        worst_status < Duration::from_secs(1),
        "another client waited {worst_status:?} for status during a query flood"
    );
    assert!(
        stored_after.expect("stored") < Duration::from_secs(10),
        "messages arriving during the flood took {stored_after:?} to be stored"
    );
    // The silent flooder's answers wait in its queue, at most 4 MiB of them
    // (+7.5 MiB measured; +29 MiB in 5 s and +37 MiB in 20 s while that queue was
    // bounded in frames only).
    assert!(
        peak_rss < baseline_rss + 32 * 1024,
        "rcimd grew from {baseline_rss} KiB to {peak_rss} KiB during the flood"
    );
    assert!(query_rtt() < Duration::from_millis(500));
}

/// A client that asks for the biggest answers and never reads them holds at most
/// its byte budget (4 MiB) of them in the daemon. The queue used to be bounded in
/// frames only for a client's own answers: 1,024 of up to 768 KiB each. With the
/// 256 requests here rcimd grew by 163 MiB before the fix, and by 8 MiB after.
#[test]
fn a_client_that_never_reads_its_big_answers_is_held_to_its_byte_budget() {
    const MESSAGES: u32 = 1_200;
    const REQUESTS: u64 = 256;
    let (server, _, daemon) = alice_connected(&[]);
    // 4 KiB messages: a page of 1,000 is cut to fit one frame (~190 of them).
    server.publish_bob_to_alice(MESSAGES, &"x".repeat(4096));
    wait_stored(&daemon, "alice", MESSAGES as usize, Duration::from_secs(60));
    let pid = daemon.proc.pid();
    let rt = runtime();
    let good = attach(&rt, &daemon.socket, "good");
    let baseline_rss = rss_kib(pid);

    let mut hoarder = UnixStream::connect(&daemon.socket).expect("connect");
    let mut requests = hello_frame("hoarder");
    for id in 0..REQUESTS {
        let op = Op::MessagesAfter {
            since_seq: 0,
            limit: 1_000,
        };
        let request = ClientFrame::Request(Request { id, op });
        requests.extend(encode(&request, MAX_IPC_FRAME).expect("encode"));
    }
    // About 20 KiB of requests: the socket takes them all at once.
    hoarder.write_all(&requests).expect("requests");
    let started = Instant::now();
    let mut peak_rss = baseline_rss;
    while started.elapsed() < Duration::from_secs(6) {
        peak_rss = peak_rss.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let rtt = status_rtt(&rt, &good);
    eprintln!(
        "big answers never read: RSS {baseline_rss} → peak {peak_rss} KiB over 6 s; another \
         client's status {rtt:?}"
    );
    assert!(
        peak_rss < baseline_rss + 48 * 1024,
        "rcimd grew from {baseline_rss} KiB to {peak_rss} KiB for a client that does not read"
    );
    assert!(rtt < Duration::from_secs(1));
    // Once it reads, it gets the Welcome and then every answer, whole and in order.
    hoarder
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut next = || -> DaemonFrame {
        let mut prefix = [0u8; 4];
        hoarder.read_exact(&mut prefix).expect("frame length");
        let mut body = vec![0u8; u32::from_be_bytes(prefix) as usize];
        hoarder.read_exact(&mut body).expect("frame body");
        decode_body(&body).expect("a daemon frame")
    };
    assert!(matches!(next(), DaemonFrame::Welcome(_)));
    let mut want = 0;
    while want < REQUESTS {
        match next() {
            DaemonFrame::Response(Response {
                id,
                reply: Reply::Messages(page),
            }) => {
                assert_eq!(id, want);
                assert!(
                    !page.is_empty() && page.len() < 1_000,
                    "{} messages",
                    page.len()
                );
                want += 1;
            }
            DaemonFrame::Event(_) => {}
            other => panic!("expected the answer to {want}, got {other:?}"),
        }
    }
}

/// Runs rcimd on `socket` once and returns its exit status and stderr.
fn run_rcimd(server_url: &str, socket: &Path, data: &Path) -> (bool, String) {
    let out = Command::new(bin("rcimd"))
        .arg("--socket")
        .arg(socket)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--server",
            server_url,
            "--app-key",
            "k",
            "--token-store",
            "memory",
        ])
        .env_remove("RCIM_SOCKET")
        .output()
        .expect("run rcimd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_symlink_at_the_socket_path_or_as_the_socket_dir_is_refused() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let server = InProcessServer::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");

    // A symlink planted where the socket goes, pointing at a file the attacker
    // wants clobbered: the daemon neither follows nor removes it.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).expect("mkdir");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let target = dir.path().join("precious");
    std::fs::write(&target, b"keep me").expect("write");
    let socket = run.join("rcimd.sock");
    symlink(&target, &socket).expect("symlink");
    let (ok, stderr) = run_rcimd(&server.url(), &socket, &data);
    assert!(!ok, "rcimd started on a planted symlink");
    assert!(
        stderr.contains("not a socket") && stderr.contains("symlink"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&target).expect("target"), b"keep me");
    assert!(
        std::fs::symlink_metadata(&socket)
            .expect("still there")
            .file_type()
            .is_symlink(),
        "the planted link was removed"
    );

    // A dangling symlink to a path of the attacker's choosing.
    std::fs::remove_file(&socket).expect("rm");
    symlink(dir.path().join("elsewhere.sock"), &socket).expect("symlink");
    let (ok, stderr) = run_rcimd(&server.url(), &socket, &data);
    assert!(!ok, "rcimd started on a dangling symlink");
    assert!(stderr.contains("not a socket"), "{stderr}");
    assert!(!dir.path().join("elsewhere.sock").exists());

    // The socket dir itself is a symlink (to a dir the attacker controls).
    let real = dir.path().join("attacker-dir");
    std::fs::create_dir(&real).expect("mkdir");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let linked = dir.path().join("linked-run");
    symlink(&real, &linked).expect("symlink");
    let (ok, stderr) = run_rcimd(&server.url(), &linked.join("rcimd.sock"), &data);
    assert!(!ok, "rcimd started in a symlinked socket dir");
    assert!(stderr.contains("symlink"), "{stderr}");
    assert!(!real.join("rcimd.sock").exists());
}
