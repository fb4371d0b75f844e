//! Scenario 7: what encryption at rest costs, and what each token store costs
//! when idle (issue 18).
//!
//! In one run, alternating so both sides see the same machine:
//! - sync of a backlog, rcimd with the memory token store (a plain database)
//!   against rcimd with an OS keyring (an encrypted one);
//! - saturated fan-out to N = 16 subscribers, plain against encrypted;
//! - fan-out paced at 10,000 msg/s to N = 16, p99 latency, plain against
//!   encrypted;
//! - rcimd connected to `rcim-server` and idle, for every token store asked for:
//!   RSS, threads (and how many of them are tokio's blocking pool, whose idle
//!   threads exit after 10 s) and CPU.
//!
//! The OS keyrings must work where the bench runs: `.ci/run` and
//! docs/PERFORMANCE.md run it as
//! `dbus-run-session -- sh -c 'eval "$(echo -n pw | gnome-keyring-daemon --unlock --components=secrets)"; keyctl session - rcim-bench encryption --token-store memory,keyutils,secret-service'`.

use crate::fanout::{self, FanoutRun, Pace, USER};
use crate::procs::{self, Bins, Daemon, Server};
use crate::scenarios::Plan;
use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Subscribers of the fan-out and latency comparisons.
const N: usize = 16;
/// The paced rate of the latency comparison.
const RATE: f64 = 10_000.0;
/// Plain and encrypted runs of each comparison, alternated.
const ROUNDS: usize = 2;

/// Scenario 7's figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EncryptionResult {
    /// The OS keyring that held the key of the encrypted runs.
    pub key_store: String,
    /// Sync backlog, messages.
    pub sync_messages: u64,
    /// Sync, plain database, msgs/s per round.
    pub sync_plain: Vec<f64>,
    /// Sync, encrypted database, msgs/s per round.
    pub sync_encrypted: Vec<f64>,
    /// Saturated fan-out N = 16, plain: msgs/s to every subscriber, per round.
    pub fanout_plain: Vec<f64>,
    /// The same, encrypted.
    pub fanout_encrypted: Vec<f64>,
    /// Fan-out paced at 10,000 msg/s, N = 16, plain: p99 µs per round.
    pub p99_plain_us: Vec<f64>,
    /// The same, encrypted.
    pub p99_encrypted_us: Vec<f64>,
    /// Messages lost or duplicated over every fan-out run (must be 0).
    pub lost_or_duplicated: u64,
    /// Idle rcimd per token store.
    pub idle: Vec<IdleByStore>,
}

/// rcimd connected and idle with one token store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdleByStore {
    /// The token store.
    pub store: String,
    /// Whether the database was encrypted (from `rcimctl status`' source).
    pub encrypted: bool,
    /// Idle window, seconds.
    pub window_s: u64,
    /// VmRSS at the end of the window, KiB.
    pub rss_kib: u64,
    /// Of which the pages of the system libcrypto (SQLCipher's crypto), KiB.
    #[serde(default)]
    pub libcrypto_rss_kib: u64,
    /// Proportional set size (shared pages divided among the processes mapping
    /// them), KiB.
    #[serde(default)]
    pub pss_kib: u64,
    /// Threads at the end of the window.
    pub threads: u64,
    /// Of which tokio's blocking-pool threads (idle ones exit after 10 s).
    pub blocking_pool_threads: u64,
    /// Every thread's name, as the kernel has it (15 characters at most).
    #[serde(default)]
    pub thread_names: Vec<String>,
    /// CPU over the window (/proc/PID/stat, tick resolution), ms.
    pub cpu_ms: f64,
}

/// The median of `values` (0 for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

impl EncryptionResult {
    /// Encrypted sync ÷ plain sync (medians).
    pub fn sync_ratio(&self) -> f64 {
        median(&self.sync_encrypted) / median(&self.sync_plain).max(f64::MIN_POSITIVE)
    }

    /// Encrypted fan-out ÷ plain fan-out (medians).
    pub fn fanout_ratio(&self) -> f64 {
        median(&self.fanout_encrypted) / median(&self.fanout_plain).max(f64::MIN_POSITIVE)
    }

    /// Encrypted p99 ÷ plain p99 (medians).
    pub fn p99_ratio(&self) -> f64 {
        median(&self.p99_encrypted_us) / median(&self.p99_plain_us).max(f64::MIN_POSITIVE)
    }
}

/// Runs scenario 7 with the keyring of `stores` (the first that is not `memory`)
/// holding the key, and the idle measurement for each of `stores`.
pub async fn run(
    bins: &Bins,
    plan: &Plan,
    stores: &[String],
    work: &Path,
) -> anyhow::Result<EncryptionResult> {
    let (sync_backlog, idle_secs, window) = (plan.sync_backlog, plan.idle_secs, plan.window);
    let fanout_messages = plan.rcimd_deliveries / N as u64;
    let latency_secs = plan.latency_secs;
    let Some(key_store) = stores.iter().find(|s| s.as_str() != "memory").cloned() else {
        bail!(
            "the encryption scenario needs an OS keyring: give --token-store with keyutils or secret-service (and run it inside that keyring's session)"
        );
    };
    let mut result = EncryptionResult {
        key_store: key_store.clone(),
        sync_messages: sync_backlog,
        ..EncryptionResult::default()
    };
    for round in 0..ROUNDS {
        for store in ["memory", key_store.as_str()] {
            let encrypted = store != "memory";
            eprintln!("encryption round {round}: sync, {store}…");
            let rate = sync(bins, work, sync_backlog, store).await?;
            if encrypted {
                result.sync_encrypted.push(rate);
            } else {
                result.sync_plain.push(rate);
            }
            eprintln!("encryption round {round}: fan-out N={N}, {store}…");
            let dir = tempfile::Builder::new()
                .prefix("enc-fanout-")
                .tempdir_in(work)?;
            let run = fanout::rcimd_fanout_with_store(
                bins,
                dir.path(),
                N,
                fanout_messages,
                Pace::Saturated,
                window,
                store,
            )
            .await?;
            result.lost_or_duplicated += run.lost + run.duplicates;
            if encrypted {
                result.fanout_encrypted.push(run.msgs_per_s);
            } else {
                result.fanout_plain.push(run.msgs_per_s);
            }
            eprintln!("encryption round {round}: latency {RATE} msg/s N={N}, {store}…");
            let dir = tempfile::Builder::new()
                .prefix("enc-latency-")
                .tempdir_in(work)?;
            let run: FanoutRun = fanout::rcimd_fanout_with_store(
                bins,
                dir.path(),
                N,
                (RATE * latency_secs) as u64,
                Pace::Rate(RATE),
                window,
                store,
            )
            .await?;
            result.lost_or_duplicated += run.lost + run.duplicates;
            if encrypted {
                result.p99_encrypted_us.push(run.latency.p99_us);
            } else {
                result.p99_plain_us.push(run.latency.p99_us);
            }
        }
    }
    for store in stores {
        eprintln!("encryption: idle for {idle_secs} s with the {store} token store…");
        result.idle.push(idle(bins, work, store, idle_secs).await?);
    }
    Ok(result)
}

/// Sync of `backlog` messages through rcimd on `store`; msgs/s.
async fn sync(bins: &Bins, work: &Path, backlog: u64, store: &str) -> anyhow::Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("enc-sync-")
        .tempdir_in(work)?;
    let upstream = crate::upstream::Upstream::start(USER, backlog).await?;
    let daemon = tokio::task::block_in_place(|| {
        Daemon::start_with_store(bins, dir.path(), &upstream.url(), store)
    })?;
    let client = crate::scenarios::connect_client(&daemon.socket, &procs::token(USER)).await?;
    let acked_at = upstream
        .wait_acked(backlog, Duration::from_secs(300))
        .await?;
    let (first_sync, _) = upstream.sync_window().context("the daemon never synced")?;
    drop(client);
    drop(daemon);
    Ok(backlog as f64 / (acked_at - first_sync).as_secs_f64())
}

/// rcimd on `store`, connected to `rcim-server` and left idle for `secs`.
async fn idle(bins: &Bins, work: &Path, store: &str, secs: u64) -> anyhow::Result<IdleByStore> {
    let dir = tempfile::Builder::new()
        .prefix("enc-idle-")
        .tempdir_in(work)?;
    let server = tokio::task::block_in_place(|| Server::start(bins, dir.path()))?;
    let mut daemon = tokio::task::block_in_place(|| {
        Daemon::start_with_store(bins, dir.path(), &server.url(), store)
    })?;
    let pid = daemon.proc.pid();
    let (client, _events) =
        crate::scenarios::connect_client(&daemon.socket, &procs::token(USER)).await?;
    let encrypted = client
        .status()
        .await?
        .database
        .is_some_and(|db| db.encrypted);
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // /proc/PID/stat counts the CPU of threads that have exited (a blocking-pool
    // thread that ends takes its schedstat with it).
    let cpu0 = procs::cpu_stat_ms(pid)?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    daemon.proc.alive()?;
    let cpu1 = procs::cpu_stat_ms(pid)?;
    let mut thread_names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let comm = std::fs::read_to_string(task?.path().join("comm")).unwrap_or_default();
        thread_names.push(comm.trim().to_owned());
    }
    thread_names.sort();
    let threads = thread_names.len() as u64;
    // The main thread is `rcimd`; spawn_blocking threads of a current-thread
    // runtime take tokio's default name (cut to 15 characters by the kernel).
    let blocking_pool_threads = thread_names
        .iter()
        .filter(|name| *name == "tokio-runtime-w")
        .count() as u64;
    Ok(IdleByStore {
        store: store.to_owned(),
        encrypted,
        window_s: secs,
        rss_kib: procs::rss_kib(pid)?,
        libcrypto_rss_kib: mapping_rss_kib(pid, "libcrypto"),
        pss_kib: rollup_kib(pid, "Pss:"),
        threads,
        blocking_pool_threads,
        thread_names,
        cpu_ms: cpu1 - cpu0,
    })
}

/// The resident KiB of `pid`'s mappings whose path contains `name` (0 when
/// /proc cannot say).
fn mapping_rss_kib(pid: u32, name: &str) -> u64 {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut inside = false;
    let mut total = 0;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: `start-end perms offset dev inode [path]`.
            inside = line.contains(name);
        } else if inside && first == "Rss:" {
            total += words
                .next()
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// One field of /proc/PID/smaps_rollup, KiB (0 when /proc cannot say).
fn rollup_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}
