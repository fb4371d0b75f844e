//! The control channel between the driver and its subscriber processes.
//!
//! Each subscriber connects to the driver's control socket and speaks one text
//! line at a time: `hello INDEX`, `ready` once it can receive, `p COUNT` every
//! [`PROGRESS_EVERY`] messages, and `done JSON` with its [`Report`] at the end.
//! The progress lines let the driver's upstream keep the number of messages in
//! flight below the daemon's per-client queue, so a saturated run measures how
//! fast rcimd delivers *everything* instead of how much it drops. Latency samples
//! are too many for a line; each subscriber writes them to `lat-INDEX.bin` (u64
//! little-endian nanoseconds) in the run directory.

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A subscriber reports progress after this many messages. Each report is a
/// blocking write (a system call, ~5 µs here) that the raw and Mosquitto
/// subscribers do not make: at 32 it was ~9 % of an rcim subscriber's CPU (perf),
/// at 256 it is ~1 %. The upstream's window (768) stays well above it.
pub const PROGRESS_EVERY: u64 = 256;

/// What one subscriber saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Its index, 0..N.
    pub index: usize,
    /// Messages received.
    pub received: u64,
    /// Times the client library said the stream fell behind (`Lagged`); the
    /// daemon then replays what was skipped, so nothing is lost, but it costs.
    pub lag_events: u64,
    /// Messages received twice (should stay 0: replay is exactly-once).
    pub duplicates: u64,
    /// When the first message arrived (ns since the epoch).
    pub first_ns: u64,
    /// When the last message arrived (ns since the epoch).
    pub last_ns: u64,
    /// CPU time this subscriber used from `ready` to its report (every thread,
    /// from schedstat), ms.
    #[serde(default)]
    pub cpu_ms: f64,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// What the driver knows about its subscribers.
#[derive(Debug)]
pub struct Board {
    ready: AtomicUsize,
    progress: Vec<AtomicU64>,
    reports: Mutex<Vec<Option<Report>>>,
    /// Woken on every progress line and every report.
    pub changed: Notify,
}

impl Board {
    /// The smallest progress over every subscriber.
    pub fn min_progress(&self) -> u64 {
        self.progress
            .iter()
            .map(|p| p.load(Ordering::Acquire))
            .min()
            .unwrap_or(0)
    }

    fn done(&self) -> usize {
        self.reports
            .lock()
            .map(|r| r.iter().filter(|r| r.is_some()).count())
            .unwrap_or(0)
    }
}

/// The driver's end: a listener and one reader thread per subscriber.
pub struct ControlServer {
    path: PathBuf,
    /// Shared with the reader threads and the upstream.
    pub board: Arc<Board>,
    n: usize,
}

impl ControlServer {
    /// Listens on `path` for `n` subscribers.
    pub fn bind(path: &Path, n: usize) -> anyhow::Result<Self> {
        let listener = UnixListener::bind(path)
            .with_context(|| format!("cannot bind the control socket {}", path.display()))?;
        let board = Arc::new(Board {
            ready: AtomicUsize::new(0),
            progress: (0..n).map(|_| AtomicU64::new(0)).collect(),
            reports: Mutex::new(vec![None; n]),
            changed: Notify::new(),
        });
        let accept_board = Arc::clone(&board);
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let Ok(stream) = stream else { break };
                let board = Arc::clone(&accept_board);
                std::thread::spawn(move || serve(stream, &board));
            }
        });
        Ok(Self {
            path: path.to_owned(),
            board,
            n,
        })
    }

    /// The socket path, for the subscribers' command line.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until every subscriber said `ready`.
    pub fn wait_ready(
        &self,
        limit: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while self.board.ready.load(Ordering::Acquire) < self.n {
            alive()?;
            if Instant::now() > deadline {
                bail!(
                    "only {} of {} subscribers became ready within {limit:?}",
                    self.board.ready.load(Ordering::Acquire),
                    self.n
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    /// Waits until every subscriber reported (at most `limit`), and returns the
    /// reports, a missing one as an error report.
    pub fn wait_reports(&self, limit: Duration) -> Vec<Report> {
        let deadline = Instant::now() + limit;
        while self.board.done() < self.n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let reports = self
            .board
            .reports
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        reports
            .into_iter()
            .enumerate()
            .map(|(index, r)| {
                r.unwrap_or(Report {
                    index,
                    error: Some(format!("no report within {limit:?}")),
                    ..Report::default()
                })
            })
            .collect()
    }
}

fn serve(stream: UnixStream, board: &Board) {
    let mut index = None;
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match (word, index) {
            ("hello", _) => {
                index = rest
                    .parse::<usize>()
                    .ok()
                    .filter(|&i| i < board.progress.len())
            }
            ("ready", Some(_)) => {
                board.ready.fetch_add(1, Ordering::AcqRel);
            }
            ("p", Some(i)) => {
                if let Ok(count) = rest.parse::<u64>() {
                    board.progress[i].store(count, Ordering::Release);
                    board.changed.notify_one();
                }
            }
            ("done", Some(i)) => {
                let report = serde_json::from_str::<Report>(rest).unwrap_or_else(|e| Report {
                    index: i,
                    error: Some(format!("unreadable report: {e}")),
                    ..Report::default()
                });
                board.progress[i].store(u64::MAX, Ordering::Release);
                if let Ok(mut reports) = board.reports.lock() {
                    reports[i] = Some(report);
                }
                board.changed.notify_one();
            }
            _ => {}
        }
    }
}

/// The subscriber's end.
pub struct ControlClient {
    stream: UnixStream,
}

impl ControlClient {
    /// Connects to the driver and says hello.
    pub fn connect(path: &Path, index: usize) -> anyhow::Result<Self> {
        let stream = UnixStream::connect(path)
            .with_context(|| format!("cannot reach the driver at {}", path.display()))?;
        let mut client = Self { stream };
        client.line(&format!("hello {index}"))?;
        Ok(client)
    }

    fn line(&mut self, text: &str) -> anyhow::Result<()> {
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        self.stream.write_all(&buf).context("the driver went away")
    }

    /// Ready to receive.
    pub fn ready(&mut self) -> anyhow::Result<()> {
        self.line("ready")
    }

    /// Received `count` messages so far.
    pub fn progress(&mut self, count: u64) -> anyhow::Result<()> {
        self.line(&format!("p {count}"))
    }

    /// The final report.
    pub fn done(&mut self, report: &Report) -> anyhow::Result<()> {
        let json = serde_json::to_string(report)?;
        self.line(&format!("done {json}"))
    }
}

/// Writes latency samples for the driver to merge.
pub fn write_latencies(dir: &Path, index: usize, samples_ns: &[u64]) -> anyhow::Result<()> {
    let mut bytes = Vec::with_capacity(samples_ns.len() * 8);
    for s in samples_ns {
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(dir.join(format!("lat-{index}.bin")), bytes).context("cannot write latencies")
}

/// Reads and merges every subscriber's latency samples.
pub fn read_latencies(dir: &Path, n: usize) -> Vec<u64> {
    let mut all = Vec::new();
    for index in 0..n {
        if let Ok(bytes) = std::fs::read(dir.join(format!("lat-{index}.bin"))) {
            all.extend(
                bytes
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))),
            );
        }
    }
    all
}
