//! The baselines, measured by the bench itself in the same run: a raw Unix-socket
//! fan-out (coalesced writes, and one write per message), a raw Unix-socket
//! ping-pong, a raw batched SQLite insert, and Mosquitto.
//!
//! They follow `shared/research/physical-baselines.md`: 200-byte payloads, one
//! producer and N subscriber processes each on its own connection, 64 frames per
//! write in the coalesced mode; SQLite through rusqlite (bundled) in WAL with
//! `synchronous=NORMAL`, 16-byte time-ordered ids, 1,000 rows per transaction;
//! Mosquitto 2 on a Unix socket with unlimited queues (so QoS 0 loses nothing)
//! and one `write` per PUBLISH.

use crate::control::ControlServer;
use crate::fanout::{self, FanoutRun, Pace};
use crate::procs::{Bins, Proc};
use crate::stats::Summary;
use anyhow::{Context as _, bail};
use std::io::{Read as _, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How the raw producer writes.
#[derive(Clone, Copy, Debug)]
pub enum RawWrites {
    /// Up to this many frames per `write` to each subscriber.
    Coalesced(usize),
    /// One `write` per message per subscriber.
    PerMessage,
}

/// The raw fan-out: this process produces, `n` `bench-subscriber raw` processes
/// receive.
pub fn raw_fanout(
    bins: &Bins,
    dir: &Path,
    n: usize,
    count: u64,
    writes: RawWrites,
    pace: Pace,
) -> anyhow::Result<FanoutRun> {
    let sock = dir.join("raw.sock");
    let listener = UnixListener::bind(&sock)?;
    let control = ControlServer::bind(&dir.join("control.sock"), n)?;
    let mut subs =
        fanout::spawn_subscribers(bins, dir, "raw", &sock, control.path(), n, count, None)?;
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(listener.accept()?.0);
    }
    control.wait_ready(Duration::from_secs(30), || alive(&mut subs))?;
    let start_ns = crate::payload::now_ns();
    let started = Instant::now();
    match (pace, writes) {
        (Pace::Saturated, RawWrites::Coalesced(batch)) => {
            let mut buf = Vec::with_capacity(batch * crate::payload::RAW_FRAME);
            let mut seq = 0;
            while seq < count {
                buf.clear();
                let ts = crate::payload::now_ns();
                let end = (seq + batch as u64).min(count);
                for s in seq..end {
                    buf.extend_from_slice(&crate::payload::raw_frame(s, ts));
                }
                for stream in &mut streams {
                    stream.write_all(&buf)?;
                }
                seq = end;
            }
        }
        (Pace::Saturated, RawWrites::PerMessage) => {
            for seq in 0..count {
                let frame = crate::payload::raw_frame(seq, crate::payload::now_ns());
                for stream in &mut streams {
                    stream.write_all(&frame)?;
                }
            }
        }
        (Pace::Rate(rate), _) => {
            for seq in 0..count {
                sleep_until(started + Duration::from_secs_f64(seq as f64 / rate));
                let frame = crate::payload::raw_frame(seq, crate::payload::now_ns());
                for stream in &mut streams {
                    stream.write_all(&frame)?;
                }
            }
        }
    }
    let run = fanout::collect(&control, dir, n, count, start_ns, pace);
    drop(streams);
    for sub in &mut subs {
        let _ = sub.wait(Duration::from_secs(5));
    }
    Ok(run)
}

/// Sleeps until `at` (returns at once if it passed). Plain `nanosleep`, no spin:
/// on two cores a spinning pacer would take a core from the system under test.
/// The schedule is open-loop (a late send goes at once) and every message is
/// stamped when it is actually sent, so timer slack shifts the offered load by a
/// few tens of microseconds but never hides latency.
pub fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

fn alive(subs: &mut [Proc]) -> anyhow::Result<()> {
    for sub in subs {
        sub.alive()?;
    }
    Ok(())
}

/// Raw Unix-socket ping-pong round trips of 200 bytes between this process and
/// an echo process (blocking std on both sides).
pub fn ping_pong(bins: &Bins, dir: &Path, warmup: usize, rounds: usize) -> anyhow::Result<Summary> {
    let sock = dir.join("pp.sock");
    let listener = UnixListener::bind(&sock)?;
    let mut command = Command::new(bins.path("bench-subscriber"));
    command.arg("echo").arg("--socket").arg(&sock);
    let mut echo = Proc::spawn("echo", command, &dir.join("echo.log"))?;
    let (mut stream, _) = listener.accept()?;
    let mut buf = [0u8; crate::payload::PAYLOAD];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let start = Instant::now();
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
        if i >= warmup {
            samples.push(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
    }
    drop(stream);
    let _ = echo.wait(Duration::from_secs(5));
    Ok(Summary::of(&mut samples))
}

/// Raw UDS, a new connection each time: connect, two 200-byte round trips (the
/// two exchanges of attach + `connect`), close; blocking std on both ends, the
/// echo side one thread that accepts connections one after another. The floor
/// under "attach + connect" that the warm ping-pong RTT leaves out: socket set-up
/// and tear-down in the kernel.
pub fn new_connection(dir: &Path, warmup: usize, rounds: usize) -> anyhow::Result<Summary> {
    let sock = dir.join("nc.sock");
    let echo = EchoServer::start(&sock, warmup + rounds)?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..warmup + rounds {
        let took = connect_two_round_trips(&sock)?;
        if i >= warmup {
            samples.push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    echo.join()?;
    Ok(Summary::of(&mut samples))
}

/// Connects to `sock`, makes two 200-byte round trips and closes: how long that
/// took. The raw counterpart of attach + `connect`.
pub fn connect_two_round_trips(sock: &Path) -> anyhow::Result<Duration> {
    let mut buf = [0u8; crate::payload::PAYLOAD];
    let start = Instant::now();
    let mut stream = UnixStream::connect(sock)?;
    for _ in 0..2 {
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
    }
    drop(stream);
    Ok(start.elapsed())
}

/// A raw echo server in a thread: accepts `connections` connections one after
/// another and echoes 200-byte messages on each until it closes.
pub struct EchoServer {
    thread: std::thread::JoinHandle<()>,
}

impl EchoServer {
    /// Listens on `sock` (which must not exist).
    pub fn start(sock: &Path, connections: usize) -> anyhow::Result<Self> {
        let listener = UnixListener::bind(sock)?;
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; crate::payload::PAYLOAD];
            for _ in 0..connections {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                while stream.read_exact(&mut buf).is_ok() {
                    if stream.write_all(&buf).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(Self { thread })
    }

    /// Waits for the thread to have served every connection.
    pub fn join(self) -> anyhow::Result<()> {
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the raw echo thread panicked"))
    }
}

/// Raw SQLite: `rows` 200-byte rows with 16-byte time-ordered ids, `batch` rows
/// per transaction, into a fresh WAL database with `synchronous=NORMAL`.
/// Returns rows per second.
pub fn sqlite_insert(dir: &Path, rows: u64, batch: u64) -> anyhow::Result<f64> {
    let path = dir.join("raw.db");
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE messages(id INTEGER PRIMARY KEY, msg_id BLOB NOT NULL UNIQUE, \
         ts INTEGER NOT NULL, payload BLOB NOT NULL)",
    )?;
    let payload = [b'x'; crate::payload::PAYLOAD];
    let base = crate::payload::now_ns();
    let start = Instant::now();
    let mut seq = 0u64;
    while seq < rows {
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO messages(msg_id, ts, payload) VALUES (?1, ?2, ?3)")?;
            let end = (seq + batch).min(rows);
            for s in seq..end {
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&base.to_be_bytes());
                id[8..].copy_from_slice(&s.to_be_bytes());
                insert.execute(rusqlite::params![&id[..], s as i64, &payload[..]])?;
            }
            seq = end;
        }
        tx.commit()?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(rows as f64 / elapsed)
}

/// A Mosquitto broker on a Unix socket in `dir`, stopped when dropped.
pub struct Mosquitto {
    proc: Proc,
    /// Its Unix socket.
    pub socket: std::path::PathBuf,
}

impl Mosquitto {
    /// Starts `mosquitto` (installing Debian's package first when it is missing and
    /// this is root). `Err` says why it cannot run; the caller skips its ratios.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        if which("mosquitto").is_none() {
            install_mosquitto()?;
        }
        let exe = which("mosquitto").context("mosquitto is not installed")?;
        let mq = dir.join("mq");
        std::fs::create_dir_all(&mq)?;
        let socket = mq.join("mosq.sock");
        let conf = mq.join("mosquitto.conf");
        // `user root`: when started as root, stay root instead of dropping to the
        // `mosquitto` user, who could not create the socket in our 0700 temp dir.
        std::fs::write(
            &conf,
            format!(
                "user root\nlistener 0 {}\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 0\n",
                socket.display()
            ),
        )?;
        let mut command = Command::new(exe);
        command.arg("-c").arg(&conf);
        let mut proc = Proc::spawn("mosquitto", command, &mq.join("mosquitto.log"))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            proc.alive()
                .context("mosquitto did not start (see mq/mosquitto.log)")?;
            if Instant::now() > deadline {
                bail!("mosquitto did not open {} within 5 s", socket.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Self { proc, socket })
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Saturated fan-out through the broker: this process publishes `count`
    /// messages, one `write` per PUBLISH; `n` `bench-subscriber mqtt` processes
    /// receive.
    pub fn fanout(
        &self,
        bins: &Bins,
        dir: &Path,
        n: usize,
        count: u64,
    ) -> anyhow::Result<FanoutRun> {
        let control = ControlServer::bind(&dir.join("control.sock"), n)?;
        let mut subs = fanout::spawn_subscribers(
            bins,
            dir,
            "mqtt",
            &self.socket,
            control.path(),
            n,
            count,
            None,
        )?;
        control.wait_ready(Duration::from_secs(30), || alive(&mut subs))?;
        let mut publisher = crate::mqtt::Mqtt::connect(&self.socket, "bench-pub")?;
        let start_ns = crate::payload::now_ns();
        let mut payload = [0u8; crate::payload::PAYLOAD];
        for seq in 0..count {
            crate::payload::write_binary(&mut payload, seq, crate::payload::now_ns());
            publisher
                .stream
                .write_all(&crate::mqtt::publish(&payload))?;
        }
        let run = fanout::collect(&control, dir, n, count, start_ns, Pace::Saturated);
        let _ = publisher.stream.write_all(&crate::mqtt::DISCONNECT);
        for sub in &mut subs {
            let _ = sub.wait(Duration::from_secs(5));
        }
        Ok(run)
    }
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn install_mosquitto() -> anyhow::Result<()> {
    if !rustix::process::geteuid().is_root() {
        bail!("mosquitto is not installed and this is not root (apt-get install -y mosquitto)");
    }
    eprintln!("mosquitto is missing: apt-get install -y mosquitto mosquitto-clients…");
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
    };
    let ok = install(&["install", "-y", "mosquitto", "mosquitto-clients"])
        .is_ok_and(|s| s.success())
        || (install(&["update"]).is_ok_and(|s| s.success())
            && install(&["install", "-y", "mosquitto", "mosquitto-clients"])
                .is_ok_and(|s| s.success()));
    if !ok {
        bail!("apt-get install mosquitto failed");
    }
    // The package starts a system broker on port 1883; the bench runs its own.
    Ok(())
}
