//! The six scenarios of issue 7, each next to the baseline it is a ratio of,
//! measured in the same run.
//!
//! | Scenario | rcimd side | baseline |
//! |---|---|---|
//! | fan-out throughput | bench upstream → rcimd → N rcim-client processes, saturated | raw UDS fan-out (coalesced, per message), Mosquitto |
//! | fan-out latency | same, paced at 1,000 and 10,000 msg/s | raw UDS fan-out, paced |
//! | sync | 100,000-message backlog pulled and committed after `connect` | raw batched SQLite insert |
//! | attach + connect | a new process attaches and `connect`s to an already connected rcimd (real `rcim-server`) | raw UDS ping-pong RTT |
//! | idle | RSS and CPU of rcimd connected to `rcim-server`, idle; RSS per attached idle client | the absolute targets |
//! | reconnect | `rcim-server` killed and restarted at once; server up → connected | RC's first backoff step (50 ms) |
//!
//! A [`Plan`] sizes every scenario: `all` for the full run (under 10 minutes on
//! two cores), `quick` for a one-minute smoke run.

use crate::baseline::{self, Mosquitto, RawWrites};
use crate::fanout::{self, FanoutRun, Pace, USER};
use crate::procs::{self, Bins, Daemon, Server};
use crate::stats::Summary;
use anyhow::{Context as _, bail};
use futures_util::{FutureExt as _, StreamExt as _};
use rcim_client::{Client, ClientOptions, ConnectionStatus, Event, Token};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How big each scenario is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// `all`, `quick`, or the scenario run alone.
    pub name: String,
    /// Subscriber counts for the fan-out throughput runs.
    pub fanout_ns: Vec<usize>,
    /// Deliveries per saturated rcimd run (messages = this / N).
    pub rcimd_deliveries: u64,
    /// Deliveries per saturated raw coalesced run.
    pub raw_coalesced_deliveries: u64,
    /// Deliveries per saturated raw one-write-per-message run.
    pub raw_per_message_deliveries: u64,
    /// Deliveries per saturated Mosquitto run.
    pub mosquitto_deliveries: u64,
    /// Subscriber counts for the latency runs.
    pub latency_ns: Vec<usize>,
    /// Input rates for the latency runs (messages per second).
    pub rates: Vec<f64>,
    /// Seconds per latency run.
    pub latency_secs: f64,
    /// Messages in the sync backlog.
    pub sync_backlog: u64,
    /// Attach + connect samples (one process each).
    pub attach_samples: usize,
    /// Idle window in seconds.
    pub idle_secs: u64,
    /// Idle clients attached for the per-client RSS.
    pub idle_clients: usize,
    /// Server restarts.
    pub reconnects: usize,
    /// Ping-pong round trips.
    pub ping_pongs: usize,
    /// Saturated rcimd runs keep at most this many messages ahead of the slowest
    /// subscriber.
    pub window: u64,
}

impl Plan {
    /// The full run.
    pub fn all() -> Self {
        Self {
            name: "all".into(),
            fanout_ns: vec![1, 4, 16, 64],
            rcimd_deliveries: 1_500_000,
            raw_coalesced_deliveries: 12_000_000,
            raw_per_message_deliveries: 1_500_000,
            mosquitto_deliveries: 600_000,
            latency_ns: vec![1, 4, 16, 64],
            rates: vec![1_000.0, 10_000.0],
            latency_secs: 2.0,
            sync_backlog: 100_000,
            attach_samples: 50,
            idle_secs: 60,
            idle_clients: 1_000,
            reconnects: 5,
            ping_pongs: 100_000,
            window: 768,
        }
    }

    /// The one-minute smoke run.
    pub fn quick() -> Self {
        Self {
            name: "quick".into(),
            fanout_ns: vec![1, 16],
            rcimd_deliveries: 300_000,
            raw_coalesced_deliveries: 2_000_000,
            raw_per_message_deliveries: 300_000,
            mosquitto_deliveries: 150_000,
            latency_ns: vec![16],
            rates: vec![1_000.0, 10_000.0],
            latency_secs: 1.0,
            sync_backlog: 20_000,
            attach_samples: 10,
            idle_secs: 5,
            idle_clients: 200,
            reconnects: 2,
            ping_pongs: 20_000,
            window: 768,
        }
    }
}

/// One N of the fan-out throughput scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FanoutRow {
    /// Subscribers.
    pub n: usize,
    /// Through rcimd.
    pub rcimd: Option<FanoutRun>,
    /// Raw UDS, 64 frames per write.
    pub raw_coalesced: Option<FanoutRun>,
    /// Raw UDS, one write per message.
    pub raw_per_message: Option<FanoutRun>,
    /// Mosquitto (None when it could not run).
    pub mosquitto: Option<FanoutRun>,
    /// The physical ceiling with durable commits (`report::add_ceilings`), once the
    /// sync baseline is in too.
    #[serde(default)]
    pub ceiling: Option<Ceiling>,
}

/// The most a machine could carry to each of N subscribers with every message
/// durable first, from two raw figures of the same run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ceiling {
    /// SQLite's insert of one row, µs of one core (from the raw batched rate).
    pub sqlite_us: f64,
    /// CPU one raw coalesced delivery costs, µs (cores ÷ its deliveries/s:
    /// producer and reader together, no decoding, no routing, no callbacks).
    pub delivery_us: f64,
    /// cores ÷ (sqlite + N × delivery).
    pub msgs_per_s: f64,
}

/// One (rate, N) of the latency scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatencyRow {
    /// Input messages per second.
    pub rate: f64,
    /// Subscribers.
    pub n: usize,
    /// Through rcimd.
    pub rcimd: Option<FanoutRun>,
    /// Raw UDS, one write per message, same pacing.
    pub raw: Option<FanoutRun>,
}

/// The sync scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SyncResult {
    /// Backlog size.
    pub messages: u64,
    /// From the first `Sync` to the `Ack` of the last message.
    pub seconds: f64,
    /// Messages pulled and committed per second.
    pub msgs_per_s: f64,
    /// Raw SQLite rows per second (1,000 per transaction), same run.
    pub raw_sqlite_rows_per_s: f64,
}

/// The attach + connect scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AttachResult {
    /// Attach (socket + Hello/Welcome), measured inside the new process.
    pub attach: Summary,
    /// Attach + `connect` until `onConnected`, inside the new process.
    pub connected: Summary,
    /// The same again from the same process (warm code and memory).
    pub warm_connected: Summary,
    /// `Client::attach_and_connect` (connect written with the Hello) until
    /// `onConnected`, inside a new process.
    #[serde(default)]
    pub pipelined: Summary,
    /// The same again from the same process.
    #[serde(default)]
    pub pipelined_warm: Summary,
    /// Process start to exit, for the same processes.
    pub process_wall: Summary,
    /// `rcimctl status` wall time (process start to exit).
    pub ctl_status: Summary,
    /// Raw UDS ping-pong round trip, same run.
    pub raw_rtt: Summary,
    /// Raw UDS new connection + two round trips + close, same run.
    #[serde(default)]
    pub raw_new_connection: Summary,
    /// The same, first thing in a new process (`bench-subscriber raw-attach`,
    /// alternating with the rcimd processes): the raw floor of "new process".
    #[serde(default)]
    pub raw_new_process: Summary,
    /// The same again from that process.
    #[serde(default)]
    pub raw_new_process_warm: Summary,
}

/// The idle scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IdleResult {
    /// Idle window, seconds.
    pub window_s: u64,
    /// VmRSS right after connecting, KiB.
    pub rss_connected_kib: u64,
    /// VmRSS at the end of the idle window, KiB.
    pub rss_idle_kib: u64,
    /// Of which anonymous memory (heap, stacks), KiB.
    pub rss_anon_kib: u64,
    /// Of which file-backed pages (the binary's code and data), KiB.
    pub rss_file_kib: u64,
    /// Clients attached for the per-client figure.
    pub clients: usize,
    /// VmRSS with them attached, KiB.
    pub rss_with_clients_kib: u64,
    /// (with clients − idle) / clients, KiB.
    pub per_client_kib: f64,
    /// CPU over the idle window from /proc/PID/stat (tick resolution), ms.
    pub cpu_stat_ms: f64,
    /// CPU over the idle window from every thread's schedstat (ns resolution), ms.
    pub cpu_sched_ms: f64,
    /// The same, scaled to 60 s.
    pub cpu_per_60s_ms: f64,
    /// Threads of rcimd.
    pub threads: u64,
}

/// The reconnect scenario.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ReconnectResult {
    /// Server ready line → daemon connected, ms, per restart.
    pub up_to_connected_ms: Vec<f64>,
    /// Server killed → daemon connected, ms, per restart.
    pub kill_to_connected_ms: Vec<f64>,
    /// The daemon's attempt number that succeeded, per restart.
    pub attempts: Vec<u32>,
}

/// Everything one run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Format version of this JSON.
    pub schema: u32,
    /// The plan that was run.
    pub plan: Option<Plan>,
    /// nproc, CPU model, kernel.
    pub machine: serde_json::Value,
    /// The command line.
    pub command: String,
    /// Wall time of the whole run, seconds.
    pub total_seconds: f64,
    /// Why Mosquitto ratios are missing, if they are.
    pub mosquitto_skipped: Option<String>,
    /// Scenario 1.
    pub fanout: Vec<FanoutRow>,
    /// Scenario 2.
    pub latency: Vec<LatencyRow>,
    /// Scenario 3.
    pub sync: Option<SyncResult>,
    /// Scenario 4.
    pub attach: Option<AttachResult>,
    /// Scenario 5.
    pub idle: Option<IdleResult>,
    /// Scenario 6.
    pub reconnect: Option<ReconnectResult>,
    /// Scenario 7 (encryption at rest, token stores), when it ran.
    #[serde(default)]
    pub encryption: Option<crate::encryption::EncryptionResult>,
    /// Problems met along the way (a scenario that failed, lost messages).
    pub notes: Vec<String>,
    /// The targets, met or missed.
    pub targets: Vec<crate::report::Target>,
}

/// A scratch directory per run, removed afterwards.
fn scratch(root: &Path, name: &str) -> anyhow::Result<tempfile::TempDir> {
    std::fs::create_dir_all(root)?;
    let mut dir = tempfile::Builder::new()
        .prefix(&format!("{name}-"))
        .tempdir_in(root)?;
    dir.disable_cleanup(std::env::var_os("RCIM_BENCH_KEEP").is_some());
    Ok(dir)
}

/// At most this many messages per saturated rcimd run: at N=1 its commit path,
/// not the fan-out, sets the pace, and more messages would only make the run
/// longer.
const RCIMD_MAX_MESSAGES: u64 = 300_000;

fn count_for(deliveries: u64, n: usize) -> u64 {
    (deliveries / n as u64).max(2_000)
}

/// Scenario 1: saturated fan-out for every N, through rcimd, raw (both write
/// modes) and Mosquitto.
pub async fn fanout(
    bins: &Bins,
    plan: &Plan,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    let mq_dir = scratch(work, "mosquitto")?;
    let mosquitto = match Mosquitto::start(mq_dir.path()) {
        Ok(m) => Some(m),
        Err(e) => {
            let why = format!("Mosquitto skipped: {e:#}");
            eprintln!("{why}");
            results.mosquitto_skipped = Some(why);
            None
        }
    };
    for &n in &plan.fanout_ns {
        let mut row = FanoutRow {
            n,
            ..FanoutRow::default()
        };
        eprintln!("fan-out N={n}: rcimd…");
        let dir = scratch(work, &format!("fanout-rcimd-{n}"))?;
        row.rcimd = note(
            results,
            fanout::rcimd_fanout(
                bins,
                dir.path(),
                n,
                count_for(plan.rcimd_deliveries, n).min(RCIMD_MAX_MESSAGES),
                Pace::Saturated,
                plan.window,
            )
            .await,
        );
        eprintln!("fan-out N={n}: raw coalesced…");
        let dir = scratch(work, &format!("fanout-raw64-{n}"))?;
        row.raw_coalesced = note(
            results,
            tokio::task::block_in_place(|| {
                baseline::raw_fanout(
                    bins,
                    dir.path(),
                    n,
                    count_for(plan.raw_coalesced_deliveries, n),
                    RawWrites::Coalesced(64),
                    Pace::Saturated,
                )
            }),
        );
        eprintln!("fan-out N={n}: raw one write per message…");
        let dir = scratch(work, &format!("fanout-raw1-{n}"))?;
        row.raw_per_message = note(
            results,
            tokio::task::block_in_place(|| {
                baseline::raw_fanout(
                    bins,
                    dir.path(),
                    n,
                    count_for(plan.raw_per_message_deliveries, n),
                    RawWrites::PerMessage,
                    Pace::Saturated,
                )
            }),
        );
        if let Some(mosquitto) = &mosquitto {
            eprintln!("fan-out N={n}: mosquitto…");
            let dir = scratch(work, &format!("fanout-mqtt-{n}"))?;
            row.mosquitto = note(
                results,
                tokio::task::block_in_place(|| {
                    mosquitto.fanout(bins, dir.path(), n, count_for(plan.mosquitto_deliveries, n))
                }),
            );
        }
        if let Some(run) = &row.rcimd {
            eprintln!(
                "  rcimd N={n}: {} messages to every subscriber, {} deliveries, lost {}",
                crate::stats::fmt_rate(run.msgs_per_s),
                crate::stats::fmt_rate(run.deliveries_per_s),
                run.lost
            );
        }
        results.fanout.push(row);
    }
    Ok(())
}

/// Scenario 2: paced fan-out, through rcimd and raw.
pub async fn latency(
    bins: &Bins,
    plan: &Plan,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    for &rate in &plan.rates {
        for &n in &plan.latency_ns {
            let count = (rate * plan.latency_secs) as u64;
            eprintln!("latency {rate} msg/s N={n}: rcimd…");
            let dir = scratch(work, &format!("latency-rcimd-{rate}-{n}"))?;
            let rcimd = note(
                results,
                fanout::rcimd_fanout(bins, dir.path(), n, count, Pace::Rate(rate), plan.window)
                    .await,
            );
            eprintln!("latency {rate} msg/s N={n}: raw…");
            let dir = scratch(work, &format!("latency-raw-{rate}-{n}"))?;
            let raw = note(
                results,
                tokio::task::block_in_place(|| {
                    baseline::raw_fanout(
                        bins,
                        dir.path(),
                        n,
                        count,
                        RawWrites::PerMessage,
                        Pace::Rate(rate),
                    )
                }),
            );
            results.latency.push(LatencyRow {
                rate,
                n,
                rcimd,
                raw,
            });
        }
    }
    Ok(())
}

/// Scenario 3: a backlog pulled and committed after `connect`.
pub async fn sync(
    bins: &Bins,
    plan: &Plan,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    eprintln!("sync: raw SQLite…");
    let dir = scratch(work, "sync-sqlite")?;
    let raw = tokio::task::block_in_place(|| {
        baseline::sqlite_insert(dir.path(), plan.sync_backlog, 1_000)
    })?;
    eprintln!("sync: rcimd, {} messages…", plan.sync_backlog);
    let dir = scratch(work, "sync-rcimd")?;
    let upstream = crate::upstream::Upstream::start(USER, plan.sync_backlog).await?;
    let daemon = tokio::task::block_in_place(|| Daemon::start(bins, dir.path(), &upstream.url()))?;
    let client = connect_client(&daemon.socket, &procs::token(USER)).await?;
    let acked_at = upstream
        .wait_acked(plan.sync_backlog, Duration::from_secs(300))
        .await?;
    let (first_sync, _) = upstream.sync_window().context("the daemon never synced")?;
    let seconds = (acked_at - first_sync).as_secs_f64();
    drop(client);
    drop(daemon);
    results.sync = Some(SyncResult {
        messages: plan.sync_backlog,
        seconds,
        msgs_per_s: plan.sync_backlog as f64 / seconds,
        raw_sqlite_rows_per_s: raw,
    });
    Ok(())
}

/// Attaches a client in this process and connects it; returns it with its events.
pub async fn connect_client(
    socket: &Path,
    token: &str,
) -> anyhow::Result<(Client, rcim_client::Events)> {
    let options = ClientOptions {
        socket: Some(socket.to_owned()),
        ..ClientOptions::named("bench-driver")
    };
    let (client, events) = Client::attach_with_events(options).await?;
    let call = client.connect(Token::new(token), 30).await?;
    if call.code() != 0 {
        bail!("connect rejected: {}", call.code());
    }
    let connected = call.connected().await;
    if connected.code != 0 {
        bail!("onConnected({})", connected.code);
    }
    Ok((client, events))
}

/// Scenario 4: a new process attaches and connects to an already connected
/// daemon; and `rcimctl status`.
pub async fn attach(
    bins: &Bins,
    plan: &Plan,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    eprintln!("attach: raw ping-pong…");
    let dir = scratch(work, "pingpong")?;
    let raw_rtt = tokio::task::block_in_place(|| {
        baseline::ping_pong(bins, dir.path(), plan.ping_pongs / 10, plan.ping_pongs)
    })?;
    let raw_new_connection = tokio::task::block_in_place(|| {
        baseline::new_connection(dir.path(), plan.ping_pongs / 100, plan.ping_pongs / 10)
    })?;
    eprintln!(
        "attach: rcimd against rcim-server, {} processes…",
        plan.attach_samples
    );
    let dir = scratch(work, "attach")?;
    let server = tokio::task::block_in_place(|| Server::start(bins, dir.path()))?;
    let daemon = tokio::task::block_in_place(|| Daemon::start(bins, dir.path(), &server.url()))?;
    let token = procs::token(USER);
    let _driver = connect_client(&daemon.socket, &token).await?;
    let (mut attach_ns, mut connected_ns, mut wall_ns) = (Vec::new(), Vec::new(), Vec::new());
    let mut warm_ns = Vec::new();
    let (mut pipelined_ns, mut pipelined_warm_ns) = (Vec::new(), Vec::new());
    let (mut raw_process_ns, mut raw_process_warm_ns) = (Vec::new(), Vec::new());
    let raw_sock = dir.path().join("raw-attach.sock");
    let raw_echo = baseline::EchoServer::start(&raw_sock, 2 * plan.attach_samples)?;
    // Alternate the two ways of attaching and connecting and the raw process, so
    // all three see the same conditions.
    for i in 0..3 * plan.attach_samples {
        let (raw, pipelined) = (i % 3 == 2, i % 3 == 1);
        let start = Instant::now();
        let mut command = Command::new(bins.path("bench-subscriber"));
        if raw {
            command.arg("raw-attach").arg("--socket").arg(&raw_sock);
        } else {
            command.arg("attach").arg("--socket").arg(&daemon.socket);
        }
        if pipelined {
            command.arg("--pipelined");
        }
        let out = command.env("BENCH_TOKEN", &token).output()?;
        let wall = nanos(start.elapsed());
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "attach printed no result: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if line["code"] != 0 {
            bail!("attach + connect answered {line}");
        }
        let us = |key: &str| (line[key].as_f64().unwrap_or(0.0) * 1e3) as u64;
        if raw {
            raw_process_ns.push(us("connected_us"));
            raw_process_warm_ns.push(us("warm_connected_us"));
        } else if pipelined {
            pipelined_ns.push(us("connected_us"));
            pipelined_warm_ns.push(us("warm_connected_us"));
        } else {
            wall_ns.push(wall);
            attach_ns.push(us("attach_us"));
            connected_ns.push(us("connected_us"));
            warm_ns.push(us("warm_connected_us"));
        }
    }
    tokio::task::block_in_place(|| raw_echo.join())?;
    let mut ctl_ns = Vec::new();
    for _ in 0..plan.attach_samples.min(20) {
        let start = Instant::now();
        let status = Command::new(bins.path("rcimctl"))
            .arg("status")
            .env("RCIM_SOCKET", &daemon.socket)
            .stdout(std::process::Stdio::null())
            .status()?;
        ctl_ns.push(nanos(start.elapsed()));
        if !status.success() {
            bail!("rcimctl status failed: {status}");
        }
    }
    results.attach = Some(AttachResult {
        attach: Summary::of(&mut attach_ns),
        connected: Summary::of(&mut connected_ns),
        warm_connected: Summary::of(&mut warm_ns),
        pipelined: Summary::of(&mut pipelined_ns),
        pipelined_warm: Summary::of(&mut pipelined_warm_ns),
        process_wall: Summary::of(&mut wall_ns),
        ctl_status: Summary::of(&mut ctl_ns),
        raw_rtt,
        raw_new_connection,
        raw_new_process: Summary::of(&mut raw_process_ns),
        raw_new_process_warm: Summary::of(&mut raw_process_warm_ns),
    });
    Ok(())
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Scenario 5: rcimd's memory and CPU when connected and idle, and per attached
/// idle client.
pub async fn idle(
    bins: &Bins,
    plan: &Plan,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    eprintln!(
        "idle: rcimd connected to rcim-server, idle for {} s…",
        plan.idle_secs
    );
    let dir = scratch(work, "idle")?;
    let server = tokio::task::block_in_place(|| Server::start(bins, dir.path()))?;
    let mut daemon =
        tokio::task::block_in_place(|| Daemon::start(bins, dir.path(), &server.url()))?;
    let pid = daemon.proc.pid();
    // An app connects and goes away: the daemon stays connected, with no client.
    drop(connect_client(&daemon.socket, &procs::token(USER)).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected_kib = procs::rss_kib(pid)?;
    let (stat0, sched0) = (procs::cpu_stat_ms(pid)?, procs::cpu_sched_ms(pid)?);
    tokio::time::sleep(Duration::from_secs(plan.idle_secs)).await;
    daemon.proc.alive()?;
    let (stat1, sched1) = (procs::cpu_stat_ms(pid)?, procs::cpu_sched_ms(pid)?);
    let rss_idle_kib = procs::rss_kib(pid)?;
    let rss_anon_kib = procs::status_kib(pid, "RssAnon")?;
    let rss_file_kib = procs::status_kib(pid, "RssFile")?;
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))?.count() as u64;
    eprintln!(
        "idle: attaching {} idle clients from one process…",
        plan.idle_clients
    );
    let mut command = Command::new(bins.path("bench-subscriber"));
    command
        .arg("idle-clients")
        .arg("--socket")
        .arg(&daemon.socket)
        .args(["--count", &plan.idle_clients.to_string()]);
    let mut holder = procs::Proc::spawn(
        "idle-clients",
        command,
        &dir.path().join("idle-clients.log"),
    )?;
    let ready = tokio::task::block_in_place(|| holder.read_line())?;
    if ready != "ready" {
        bail!("idle-clients said {ready:?}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_with_clients_kib = procs::rss_kib(pid)?;
    drop(holder);
    let cpu_sched_ms = sched1 - sched0;
    results.idle = Some(IdleResult {
        window_s: plan.idle_secs,
        rss_connected_kib,
        rss_idle_kib,
        rss_anon_kib,
        rss_file_kib,
        clients: plan.idle_clients,
        rss_with_clients_kib,
        per_client_kib: rss_with_clients_kib.saturating_sub(rss_idle_kib) as f64
            / plan.idle_clients as f64,
        cpu_stat_ms: stat1 - stat0,
        cpu_sched_ms,
        cpu_per_60s_ms: cpu_sched_ms * 60.0 / plan.idle_secs as f64,
        threads,
    });
    Ok(())
}

/// Scenario 6: the server is killed and restarted at once; how long from the
/// server being back up to the daemon being connected.
pub async fn reconnect(
    bins: &Bins,
    plan: &Plan,
    work: &Path,
    results: &mut Results,
) -> anyhow::Result<()> {
    eprintln!("reconnect: {} restarts of rcim-server…", plan.reconnects);
    let dir = scratch(work, "reconnect")?;
    let mut server = tokio::task::block_in_place(|| Server::start(bins, dir.path()))?;
    let daemon = tokio::task::block_in_place(|| Daemon::start(bins, dir.path(), &server.url()))?;
    let (_client, mut events) = connect_client(&daemon.socket, &procs::token(USER)).await?;
    let mut result = ReconnectResult::default();
    for _ in 0..plan.reconnects {
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Forget older status events, so only this restart's count.
        while events.next().now_or_never().flatten().is_some() {}
        let killed = Instant::now();
        server.kill();
        wait_status(&mut events, |s| s == ConnectionStatus::Suspend).await?;
        tokio::task::block_in_place(|| server.restart(bins))?;
        let up = Instant::now();
        let attempt = wait_status(&mut events, |s| s == ConnectionStatus::Connected).await?;
        let connected = Instant::now();
        result
            .up_to_connected_ms
            .push((connected - up).as_secs_f64() * 1e3);
        result
            .kill_to_connected_ms
            .push((connected - killed).as_secs_f64() * 1e3);
        result.attempts.push(attempt);
    }
    drop(daemon);
    results.reconnect = Some(result);
    Ok(())
}

/// Waits for a status change matching `want`; returns the highest attempt
/// number seen on the way.
async fn wait_status(
    events: &mut rcim_client::Events,
    want: impl Fn(ConnectionStatus) -> bool,
) -> anyhow::Result<u32> {
    let mut attempt = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(Event::StatusChanged(state)))) => {
                attempt = attempt.max(state.attempt);
                if want(state.status) {
                    return Ok(attempt);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("rcimd closed the connection"),
            Err(_) => bail!("no expected status change within 30 s"),
        }
    }
}

/// Keeps a run's outcome, or notes why there is none.
fn note(results: &mut Results, run: anyhow::Result<FanoutRun>) -> Option<FanoutRun> {
    match run {
        Ok(run) => {
            for e in &run.errors {
                results.notes.push(format!("N={}: {e}", run.n));
            }
            Some(run)
        }
        Err(e) => {
            eprintln!("  failed: {e:#}");
            results.notes.push(format!("{e:#}"));
            None
        }
    }
}

/// The default output directory: `target/bench`, next to the profile directory
/// this binary runs from.
pub fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}
