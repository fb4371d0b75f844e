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
    /// What went wrong in subscribers, if anything.
    pub errors: Vec<String>,
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
            let mut command = Command::new(bins.path("bench-subscriber"));
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
    let upstream = Upstream::start(USER, 0).await?;
    let daemon = tokio::task::block_in_place(|| Daemon::start(bins, dir, &upstream.url()))?;
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
    match committed {
        Ok(at) => run.committed_per_s = Some(count as f64 / (at - started).as_secs_f64()),
        Err(e) => run.errors.push(e.to_string()),
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
