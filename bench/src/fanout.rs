//! Fan-out runs: one upstream message to N subscriber processes, saturated or
//! paced, through rcimd (and, via `baseline`, through a raw socket or Mosquitto),
//! with the accounting they all share.
//!
//! Through rcimd, the driver's [bench upstream](crate::upstream) pushes messages
//! to a real `rcimd` process, which commits each batch to SQLite, acknowledges it
//! upstream and fans it out over its Unix socket to N `bench-subscriber rcim`
//! processes linking `rcim-client`. rcimd's hub drops events for a client whose
//! queue is full instead of blocking the others, so a saturated run is closed-loop:
//! the upstream keeps at most `window` messages ahead of the slowest subscriber's
//! reported progress. What is measured is then the rate at which *every* message
//! is committed and delivered to *every* subscriber.

use crate::control::ControlServer;
use crate::procs::{Bins, Daemon, Proc};
use crate::stats::Summary;
use crate::upstream::{Upstream, encode_push};
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The user every benchmark daemon connects as.
pub const USER: &str = "bench-user";

/// How a run offers its messages.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Pace {
    /// As fast as the system takes them.
    Saturated,
    /// Open loop at this many messages per second.
    Rate(f64),
}

/// The outcome of one fan-out run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FanoutRun {
    /// Subscribers.
    pub n: usize,
    /// Messages sent.
    pub messages: u64,
    /// Deliveries (message × subscriber) that arrived.
    pub delivered: u64,
    /// Deliveries that did not.
    pub lost: u64,
    /// `Lagged` events the subscribers saw (each followed by a replay).
    pub lag_events: u64,
    /// Deliveries received twice.
    pub duplicates: u64,
    /// From the first send to the last delivery anywhere.
    pub seconds: f64,
    /// Messages delivered to every subscriber per second (deliveries / N / s).
    pub msgs_per_s: f64,
    /// Deliveries per second.
    pub deliveries_per_s: f64,
    /// rcimd only: messages committed (acknowledged upstream) per second.
    pub committed_per_s: Option<f64>,
    /// Per-delivery latency from the send stamp to the subscriber.
    pub latency: Summary,
    /// rcimd only: rcimd's CPU time over the run (every thread), ms.
    #[serde(default)]
    pub rcimd_cpu_ms: Option<f64>,
    /// CPU time of all subscribers together, from ready to report, ms.
    #[serde(default)]
    pub subscribers_cpu_ms: f64,
    /// What went wrong in subscribers, if anything.
    pub errors: Vec<String>,
}

impl FanoutRun {
    /// rcimd's CPU per message (committed and fanned out to all N), µs.
    pub fn rcimd_cpu_us_per_msg(&self) -> Option<f64> {
        let cpu = self.rcimd_cpu_ms?;
        (self.messages > 0).then(|| cpu * 1e3 / self.messages as f64)
    }

    /// One subscriber's CPU per message received, µs (averaged over all).
    pub fn subscriber_cpu_us_per_msg(&self) -> Option<f64> {
        (self.delivered > 0 && self.subscribers_cpu_ms > 0.0)
            .then(|| self.subscribers_cpu_ms * 1e3 / self.delivered as f64)
    }
}

/// Starts `n` `bench-subscriber ROLE` processes.
#[allow(clippy::too_many_arguments)]
pub fn spawn_subscribers(
    bins: &Bins,
    dir: &Path,
    role: &str,
    socket: &Path,
    control: &Path,
    n: usize,
    count: u64,
    token: Option<&str>,
) -> anyhow::Result<Vec<Proc>> {
    (0..n)
        .map(|i| {
            // `RCIM_BENCH_SUB_WRAP="valgrind --tool=callgrind"` (any command
            // prefix) runs the first rcim subscriber under a profiler.
            let wrap = std::env::var("RCIM_BENCH_SUB_WRAP")
                .ok()
                .filter(|w| i == 0 && role == "rcim" && !w.trim().is_empty());
            let mut command = match wrap {
                Some(wrap) => {
                    let mut words = wrap.split_whitespace();
                    let mut command = Command::new(words.next().unwrap_or("env"));
                    command.args(words).arg(bins.path("bench-subscriber"));
                    command
                }
                None => Command::new(bins.path("bench-subscriber")),
            };
            command
                .arg(role)
                .arg("--socket")
                .arg(socket)
                .arg("--control")
                .arg(control)
                .args(["--index", &i.to_string(), "--count", &count.to_string()])
                .arg("--dir")
                .arg(dir);
            if let Some(token) = token {
                command.env("BENCH_TOKEN", token);
            }
            Proc::spawn(
                &format!("{role} subscriber {i}"),
                command,
                &dir.join(format!("sub-{i}.log")),
            )
        })
        .collect()
}

/// Waits for every subscriber's report and computes the run's figures.
pub fn collect(
    control: &ControlServer,
    dir: &Path,
    n: usize,
    count: u64,
    start_ns: u64,
    pace: Pace,
) -> FanoutRun {
    let limit = match pace {
        Pace::Saturated => Duration::from_secs(120),
        Pace::Rate(rate) => Duration::from_secs_f64(count as f64 / rate + 30.0),
    };
    let reports = control.wait_reports(limit);
    let delivered: u64 = reports.iter().map(|r| r.received).sum();
    let end_ns = reports.iter().map(|r| r.last_ns).max().unwrap_or(start_ns);
    let seconds = end_ns.saturating_sub(start_ns) as f64 / 1e9;
    let mut latencies = crate::control::read_latencies(dir, n);
    let errors = reports
        .iter()
        .filter_map(|r| {
            r.error
                .as_ref()
                .map(|e| format!("subscriber {}: {e}", r.index))
        })
        .collect();
    let per_s = |v: f64| if seconds > 0.0 { v / seconds } else { 0.0 };
    FanoutRun {
        n,
        messages: count,
        delivered,
        lost: (n as u64 * count).saturating_sub(delivered),
        lag_events: reports.iter().map(|r| r.lag_events).sum(),
        duplicates: reports.iter().map(|r| r.duplicates).sum(),
        seconds,
        msgs_per_s: per_s(delivered as f64 / n as f64),
        deliveries_per_s: per_s(delivered as f64),
        committed_per_s: None,
        latency: Summary::of(&mut latencies),
        rcimd_cpu_ms: None,
        subscribers_cpu_ms: reports.iter().map(|r| r.cpu_ms).sum(),
        errors,
    }
}

/// A fan-out through a real rcimd: bench upstream → rcimd → `n` rcim-client
/// subscriber processes. Saturated runs keep at most `window` messages ahead of
/// the slowest subscriber.
pub async fn rcimd_fanout(
    bins: &Bins,
    dir: &Path,
    n: usize,
    count: u64,
    pace: Pace,
    window: u64,
) -> anyhow::Result<FanoutRun> {
    rcimd_fanout_with_store(bins, dir, n, count, pace, window, "memory").await
}

/// [`rcimd_fanout`] with rcimd on `token_store` (an OS keyring: the database is
/// encrypted).
pub async fn rcimd_fanout_with_store(
    bins: &Bins,
    dir: &Path,
    n: usize,
    count: u64,
    pace: Pace,
    window: u64,
    token_store: &str,
) -> anyhow::Result<FanoutRun> {
    let upstream = Upstream::start(USER, 0).await?;
    let daemon = tokio::task::block_in_place(|| {
        Daemon::start_with_store(bins, dir, &upstream.url(), token_store)
    })?;
    let control = ControlServer::bind(&dir.join("control.sock"), n)?;
    let token = crate::procs::token(USER);
    let mut subs = spawn_subscribers(
        bins,
        dir,
        "rcim",
        &daemon.socket,
        control.path(),
        n,
        count,
        Some(&token),
    )?;
    tokio::task::block_in_place(|| {
        control.wait_ready(Duration::from_secs(60), || {
            subs.iter_mut().try_for_each(Proc::alive)
        })
    })?;
    upstream.wait_live(Duration::from_secs(10)).await?;
    let rcimd_pid = daemon.proc.pid();
    let cpu_before = crate::procs::cpu_sched_ms(rcimd_pid).ok();
    let first = upstream.first_live_seq();
    let last = first + count - 1;
    let start_ns = crate::payload::now_ns();
    let started = Instant::now();
    match pace {
        Pace::Saturated => feed_saturated(&upstream, &control, first, count, window).await?,
        Pace::Rate(rate) => {
            let writer = upstream.writer().context("no live connection")?;
            tokio::task::spawn_blocking(move || {
                let mut buf = Vec::with_capacity(512);
                for i in 0..count {
                    crate::baseline::sleep_until(
                        started + Duration::from_secs_f64(i as f64 / rate),
                    );
                    buf.clear();
                    encode_push(first + i, crate::payload::now_ns(), &mut buf)?;
                    writer
                        .blocking_send(buf.clone())
                        .ok()
                        .context("the daemon's connection closed")?;
                }
                anyhow::Ok(())
            })
            .await??;
        }
    }
    let committed = upstream.wait_acked(last, Duration::from_secs(120)).await;
    let mut run = tokio::task::block_in_place(|| collect(&control, dir, n, count, start_ns, pace));
    if let (Some(before), Ok(after)) = (cpu_before, crate::procs::cpu_sched_ms(rcimd_pid)) {
        run.rcimd_cpu_ms = Some(after - before);
    }
    match committed {
        Ok(at) => run.committed_per_s = Some(count as f64 / (at - started).as_secs_f64()),
        Err(e) => run.errors.push(e.to_string()),
    }
    if std::env::var_os("RCIM_BENCH_SUB_WRAP").is_some() {
        // Let a profiled subscriber exit by itself and write its profile.
        for sub in &mut subs {
            let _ = sub.wait(Duration::from_secs(120));
        }
    }
    drop(daemon);
    drop(subs);
    Ok(run)
}

/// Pushes `count` pre-encoded messages from `first`, never more than `window`
/// ahead of the slowest subscriber.
async fn feed_saturated(
    upstream: &Upstream,
    control: &ControlServer,
    first: u64,
    count: u64,
    window: u64,
) -> anyhow::Result<()> {
    // Encode everything first so the upstream costs one memcpy per message.
    let mut frames = Vec::with_capacity(usize::try_from(count).unwrap_or(0) * 300);
    let mut ends = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let ts = crate::payload::now_ns();
    for i in 0..count {
        encode_push(first + i, ts, &mut frames)?;
        ends.push(frames.len());
    }
    let board = &control.board;
    let mut sent = 0u64;
    let mut stalled_since = Instant::now();
    while sent < count {
        let notified = board.changed.notified();
        let allowed = board.min_progress().saturating_add(window).min(count);
        if allowed > sent {
            while sent < allowed {
                let upto = (sent + 64).min(allowed);
                let from = if sent == 0 {
                    0
                } else {
                    ends[usize::try_from(sent - 1)?]
                };
                let to = ends[usize::try_from(upto - 1)?];
                upstream.push(frames[from..to].to_vec()).await?;
                sent = upto;
            }
            stalled_since = Instant::now();
            continue;
        }
        if tokio::time::timeout(Duration::from_millis(200), notified)
            .await
            .is_err()
            && stalled_since.elapsed() > Duration::from_secs(15)
        {
            bail!(
                "no subscriber progress for 15 s ({} of {count} sent, slowest at {})",
                sent,
                board.min_progress()
            );
        }
    }
    Ok(())
}
