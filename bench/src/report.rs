//! Turning [`Results`] into what people read: the targets judged, a
//! markdown report, the JSON file and the PNG chart.
//!
//! The chart is drawn by `bench/plot.py` with matplotlib when python3 has it
//! (matplotlib ships its own fonts, so nothing depends on system fonts); without
//! it the run still succeeds and says why the chart is missing.

use crate::scenarios::{Ceiling, Results};
use crate::stats::{fmt_rate, fmt_ratio, fmt_us, ratio};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// One target of the issue, judged.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    /// What the issue asks.
    pub name: String,
    /// What was measured.
    pub measured: String,
    /// Met or not; `None` when the run did not measure it.
    pub met: Option<bool>,
}

fn target(name: &str, measured: String, met: Option<bool>) -> Target {
    Target {
        name: name.into(),
        measured,
        met,
    }
}

/// Fills every fan-out row's [`Ceiling`] from the same run's raw baselines
/// (leaves it `None` without the sync or the raw coalesced baseline).
pub fn add_ceilings(r: &mut Results) {
    let cores = r.machine["nproc"].as_f64().unwrap_or(1.0);
    let Some(sqlite_us) = r.sync.as_ref().map(|s| 1e6 / s.raw_sqlite_rows_per_s) else {
        return;
    };
    for row in &mut r.fanout {
        row.ceiling = row.raw_coalesced.as_ref().and_then(|raw| {
            let delivery_us = cores * 1e6 / raw.deliveries_per_s;
            let msgs_per_s = cores * 1e6 / (sqlite_us + row.n as f64 * delivery_us);
            msgs_per_s.is_finite().then_some(Ceiling {
                sqlite_us,
                delivery_us,
                msgs_per_s,
            })
        });
    }
}

/// Judges the targets from what was measured.
pub fn judge(r: &Results) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(row) = r.fanout.iter().find(|row| row.n == 16)
        && let Some(ours) = &row.rcimd
    {
        let all_in = ours.lost == 0;
        let ceiling = row.ceiling.as_ref().map_or(String::new(), |c| {
            format!(
                "; the machine's physical ceiling with durable commits (raw SQLite insert + 16 raw deliveries, same run) is {}",
                fmt_rate(c.msgs_per_s)
            )
        });
        out.push(target(
            "fan-out N=16: ≥ 150 k msg/s committed and delivered to every subscriber",
            format!(
                "{} delivered to all 16, {} committed, {} lost{ceiling}",
                fmt_rate(ours.msgs_per_s),
                ours.committed_per_s.map_or("n/a".into(), fmt_rate),
                ours.lost
            ),
            Some(all_in && ours.msgs_per_s >= 150_000.0),
        ));
        let mq = ratio(
            ours.deliveries_per_s,
            row.mosquitto.as_ref().map(|m| m.deliveries_per_s),
        );
        out.push(target(
            "fan-out N=16: ≥ 15× Mosquitto's deliveries/s",
            fmt_ratio(mq),
            mq.map(|m| m >= 15.0),
        ));
        let raw = ratio(
            ours.deliveries_per_s,
            row.raw_coalesced.as_ref().map(|m| m.deliveries_per_s),
        );
        out.push(target(
            "fan-out N=16: ≥ 25% of raw coalesced fan-out",
            raw.map_or("n/a".into(), |r| format!("{:.1}%", r * 100.0)),
            raw.map(|r| r >= 0.25),
        ));
    }
    if let Some(row) = r
        .latency
        .iter()
        .find(|row| row.n == 16 && row.rate == 10_000.0)
        && let Some(ours) = &row.rcimd
    {
        let raw = row.raw.as_ref().map(|raw| raw.latency.p99_us);
        let rr = ratio(ours.latency.p99_us, raw);
        out.push(target(
            "p99 at 10,000 msg/s, N=16: ≤ 4× raw p99 (every message durable first)",
            format!(
                "{} vs raw {} = {}, {} lost",
                fmt_us(ours.latency.p99_us),
                raw.map_or("n/a".into(), fmt_us),
                fmt_ratio(rr),
                ours.lost
            ),
            rr.map(|rr| rr <= 4.0 && ours.lost == 0),
        ));
    }
    if let Some(sync) = &r.sync {
        let rr = ratio(sync.msgs_per_s, Some(sync.raw_sqlite_rows_per_s));
        out.push(target(
            "sync: ≥ 45% of raw batched SQLite insert",
            format!(
                "{} vs {} = {}",
                fmt_rate(sync.msgs_per_s),
                fmt_rate(sync.raw_sqlite_rows_per_s),
                rr.map_or("n/a".into(), |r| format!("{:.1}%", r * 100.0))
            ),
            rr.map(|r| r >= 0.45),
        ));
    }
    if let Some(a) = &r.attach {
        // The way an app attaches and connects first thing (the Engine's first
        // `connect` takes it too).
        let rr = ratio(a.pipelined.p50_us, Some(a.raw_rtt.p50_us));
        out.push(target(
            "attach + connect → onConnected: p50 ≤ 5× raw RTT",
            format!(
                "new process, `attach_and_connect`: {} vs RTT {} = {} (`attach` then `connect`: {}); the raw exchange itself, first thing in a new process: {} = {}",
                fmt_us(a.pipelined.p50_us),
                fmt_us(a.raw_rtt.p50_us),
                fmt_ratio(rr),
                fmt_ratio(ratio(a.connected.p50_us, Some(a.raw_rtt.p50_us))),
                fmt_us(a.raw_new_process.p50_us),
                fmt_ratio(ratio(a.raw_new_process.p50_us, Some(a.raw_rtt.p50_us)))
            ),
            rr.map(|r| r <= 5.0),
        ));
    }
    if let Some(i) = &r.idle {
        out.push(target(
            "idle: RSS ≤ 8 MiB connected and idle",
            format!("{:.2} MiB", i.rss_idle_kib as f64 / 1024.0),
            Some(i.rss_idle_kib <= 8 * 1024),
        ));
        out.push(target(
            "idle: ≤ 64 KiB per attached idle client",
            format!("{:.1} KiB ({} clients)", i.per_client_kib, i.clients),
            Some(i.per_client_kib <= 64.0),
        ));
        out.push(target(
            "idle: ≤ 10 ms CPU over 60 idle seconds",
            format!(
                "{:.2} ms per 60 s ({:.2} ms over {} s)",
                i.cpu_per_60s_ms, i.cpu_sched_ms, i.window_s
            ),
            Some(i.cpu_per_60s_ms <= 10.0),
        ));
    }
    if let Some(e) = &r.encryption {
        encryption_targets(e, &mut out);
    }
    out
}

/// Issue 18's targets: encryption's cost against plain, and idle per store.
fn encryption_targets(e: &crate::encryption::EncryptionResult, out: &mut Vec<Target>) {
    use crate::encryption::median;
    out.push(target(
        "encrypted sync: ≥ 70% of the plain sync of this build",
        format!(
            "{:.0}% ({} encrypted, {} plain, medians of {} runs each)",
            e.sync_ratio() * 100.0,
            fmt_rate(median(&e.sync_encrypted)),
            fmt_rate(median(&e.sync_plain)),
            e.sync_plain.len()
        ),
        Some(e.sync_ratio() >= 0.70),
    ));
    out.push(target(
        "encrypted fan-out N=16: within 15% of plain",
        format!(
            "{:.0}% ({} encrypted, {} plain)",
            e.fanout_ratio() * 100.0,
            fmt_rate(median(&e.fanout_encrypted)),
            fmt_rate(median(&e.fanout_plain))
        ),
        Some(e.fanout_ratio() >= 0.85),
    ));
    out.push(target(
        "encrypted p99 at 10 k msg/s N=16: within 15% of plain",
        format!(
            "{:.0}% ({} encrypted, {} plain)",
            e.p99_ratio() * 100.0,
            fmt_us(median(&e.p99_encrypted_us)),
            fmt_us(median(&e.p99_plain_us))
        ),
        Some(e.p99_ratio() <= 1.15),
    ));
    for idle in &e.idle {
        let (limit_kib, threads_too) = match idle.store.as_str() {
            "secret-service" => (8 * 1024 + 512, true),
            "keyutils" => (8 * 1024, false),
            _ => continue,
        };
        let other_threads = idle.threads - idle.blocking_pool_threads;
        out.push(target(
            &format!(
                "idle with {}: RSS ≤ {:.1} MiB{}",
                idle.store,
                limit_kib as f64 / 1024.0,
                if threads_too {
                    ", 1 thread besides the blocking pool's"
                } else {
                    ""
                }
            ),
            format!(
                "{:.2} MiB, {} threads ({} of the blocking pool)",
                idle.rss_kib as f64 / 1024.0,
                idle.threads,
                idle.blocking_pool_threads
            ),
            Some(idle.rss_kib <= limit_kib && (!threads_too || other_threads <= 1)),
        ));
    }
}

/// Scenario 7's table: plain against encrypted, then idle per token store.
fn encryption_markdown(e: &crate::encryption::EncryptionResult, md: &mut String) {
    use crate::encryption::median;
    let list =
        |v: &[f64], f: fn(f64) -> String| v.iter().map(|&x| f(x)).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        md,
        "### 7. Encryption at rest (key in {}), plain against encrypted, alternated\n",
        e.key_store
    );
    md.push_str(
        "| figure | plain | encrypted | encrypted ÷ plain (medians) |\n|---|---|---|---|\n",
    );
    let _ = writeln!(
        md,
        "| sync of {} messages, msgs/s | {} | {} | {:.2} |",
        e.sync_messages,
        list(&e.sync_plain, fmt_rate),
        list(&e.sync_encrypted, fmt_rate),
        e.sync_ratio()
    );
    let _ = writeln!(
        md,
        "| fan-out N=16 saturated, msgs/s to every subscriber | {} | {} | {:.2} |",
        list(&e.fanout_plain, fmt_rate),
        list(&e.fanout_encrypted, fmt_rate),
        e.fanout_ratio()
    );
    let _ = writeln!(
        md,
        "| p99 at 10 k msg/s, N=16 | {} | {} | {:.2} |",
        list(&e.p99_plain_us, fmt_us),
        list(&e.p99_encrypted_us, fmt_us),
        e.p99_ratio()
    );
    let _ = writeln!(
        md,
        "\nLost or duplicated over every run: {}. Medians: sync {} / {}.\n",
        e.lost_or_duplicated,
        fmt_rate(median(&e.sync_plain)),
        fmt_rate(median(&e.sync_encrypted))
    );
    md.push_str("| token store | database | VmRSS idle | of it libcrypto | PSS | threads (blocking pool) | thread names | CPU over the window |\n|---|---|---|---|---|---|---|---|\n");
    for i in &e.idle {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} MiB | {:.2} MiB | {:.2} MiB | {} ({}) | {} | {:.0} ms over {} s |",
            i.store,
            if i.encrypted { "encrypted" } else { "plain" },
            i.rss_kib as f64 / 1024.0,
            i.libcrypto_rss_kib as f64 / 1024.0,
            i.pss_kib as f64 / 1024.0,
            i.threads,
            i.blocking_pool_threads,
            i.thread_names.join(", "),
            i.cpu_ms,
            i.window_s
        );
    }
    md.push('\n');
}

fn opt<T>(v: Option<&T>, f: impl Fn(&T) -> String) -> String {
    v.map_or_else(|| "–".into(), f)
}

fn lat(s: &crate::stats::Summary) -> String {
    format!(
        "{} / {} / {}",
        fmt_us(s.p50_us),
        fmt_us(s.p99_us),
        fmt_us(s.p999_us)
    )
}

/// The markdown report.
pub fn markdown(r: &Results) -> String {
    let mut md = String::new();
    let m = &r.machine;
    let _ = writeln!(
        md,
        "Machine: {} × {} ({} GiB), kernel {}. Run `{}` took {:.0} s. 200-byte payloads. \
         Ratios are rcimd ÷ baseline, both measured in this run.\n",
        m["nproc"],
        m["cpu_model"].as_str().unwrap_or("?"),
        m["mem_gib"],
        m["kernel"].as_str().unwrap_or("?"),
        r.command,
        r.total_seconds
    );
    if !r.fanout.is_empty() {
        md.push_str("### 1. Fan-out throughput (saturated)\n\n");
        md.push_str("| N | rcimd: msgs/s to every sub | rcimd deliveries/s | committed/s | lost / lag events | raw coalesced deliveries/s | rcimd ÷ raw coalesced | raw 1 write/msg | rcimd ÷ raw 1 write/msg | Mosquitto deliveries/s | rcimd ÷ Mosquitto |\n");
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
        for row in &r.fanout {
            let ours = row.rcimd.as_ref();
            let d = ours.map(|o| o.deliveries_per_s);
            let vs = |b: Option<&crate::fanout::FanoutRun>| {
                fmt_ratio(d.and_then(|d| ratio(d, b.map(|b| b.deliveries_per_s))))
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                row.n,
                opt(ours, |o| fmt_rate(o.msgs_per_s)),
                opt(ours, |o| fmt_rate(o.deliveries_per_s)),
                opt(ours.and_then(|o| o.committed_per_s.as_ref()), |c| fmt_rate(
                    *c
                )),
                opt(ours, |o| format!("{} / {}", o.lost, o.lag_events)),
                opt(row.raw_coalesced.as_ref(), |o| fmt_rate(o.deliveries_per_s)),
                vs(row.raw_coalesced.as_ref()),
                opt(row.raw_per_message.as_ref(), |o| fmt_rate(
                    o.deliveries_per_s
                )),
                vs(row.raw_per_message.as_ref()),
                opt(row.mosquitto.as_ref(), |o| fmt_rate(o.deliveries_per_s)),
                vs(row.mosquitto.as_ref()),
            );
        }
        if let Some(why) = &r.mosquitto_skipped {
            let _ = writeln!(md, "\n{why}");
        }
        md.push_str(
            "\nCPU per message in the rcimd runs (schedstat of every thread, over the run; \
             the subscribers' from `ready` to their report). The CPU-bound ceiling is what \
             the machine's cores could carry at these costs if nothing else ran: \
             cores ÷ (rcimd + N × subscriber).\n\n",
        );
        md.push_str("| N | rcimd µs CPU per message | one subscriber µs CPU per message | CPU-bound ceiling, msgs/s to every sub | measured ÷ ceiling |\n|---|---|---|---|---|\n");
        let cores = r.machine["nproc"].as_f64().unwrap_or(1.0);
        for row in &r.fanout {
            let Some(ours) = row.rcimd.as_ref() else {
                continue;
            };
            let (daemon, sub) = (
                ours.rcimd_cpu_us_per_msg(),
                ours.subscriber_cpu_us_per_msg(),
            );
            let ceiling = daemon
                .zip(sub)
                .map(|(d, s)| cores * 1e6 / (d + row.n as f64 * s));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                row.n,
                opt(daemon.as_ref(), |d| format!("{d:.2}")),
                opt(sub.as_ref(), |s| format!("{s:.2}")),
                opt(ceiling.as_ref(), |c| fmt_rate(*c)),
                fmt_ratio(ratio(ours.msgs_per_s, ceiling)),
            );
        }
        if r.fanout.iter().any(|row| row.ceiling.is_some()) {
            md.push_str(
                "\nThe physical ceiling with every message durable before delivery, from raw \
                 figures of this run: one raw SQLite insert (µs of one core, the sync \
                 baseline) plus N raw coalesced deliveries (cores ÷ raw coalesced \
                 deliveries/s: writing and reading only, no decoding or routing).\n\n\
                 | N | raw SQLite insert, µs per row | raw delivery, µs CPU | ceiling, msgs/s to every sub | rcimd ÷ ceiling |\n|---|---|---|---|---|\n",
            );
            for row in &r.fanout {
                let Some(Ceiling {
                    sqlite_us,
                    delivery_us,
                    msgs_per_s: ceiling,
                }) = row.ceiling
                else {
                    continue;
                };
                let _ = writeln!(
                    md,
                    "| {} | {sqlite_us:.2} | {delivery_us:.2} | {} | {} |",
                    row.n,
                    fmt_rate(ceiling),
                    fmt_ratio(ratio(
                        row.rcimd.as_ref().map_or(0.0, |o| o.msgs_per_s),
                        Some(ceiling)
                    )),
                );
            }
        }
        md.push('\n');
    }
    if !r.latency.is_empty() {
        md.push_str("### 2. Fan-out latency (paced; upstream send stamp → subscriber callback, per delivery)\n\n");
        md.push_str("| msg/s in | N | rcimd p50 / p99 / p99.9 | raw p50 / p99 / p99.9 | p50 ratio | p99 ratio | rcimd lost / lag events |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        for row in &r.latency {
            let ours = row.rcimd.as_ref();
            let raw = row.raw.as_ref();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.rate,
                row.n,
                opt(ours, |o| lat(&o.latency)),
                opt(raw, |o| lat(&o.latency)),
                fmt_ratio(
                    ours.and_then(|o| ratio(o.latency.p50_us, raw.map(|r| r.latency.p50_us)))
                ),
                fmt_ratio(
                    ours.and_then(|o| ratio(o.latency.p99_us, raw.map(|r| r.latency.p99_us)))
                ),
                opt(ours, |o| format!("{} / {}", o.lost, o.lag_events)),
            );
        }
        md.push('\n');
    }
    if let Some(s) = &r.sync {
        md.push_str("### 3. Sync (backlog pulled and committed after connect)\n\n");
        md.push_str("| backlog | rcimd msgs/s | raw SQLite rows/s (txn 1000, WAL, NORMAL) | ratio |\n|---|---|---|---|\n");
        let _ = writeln!(
            md,
            "| {} | {} ({:.2} s) | {} | {} |\n",
            s.messages,
            fmt_rate(s.msgs_per_s),
            s.seconds,
            fmt_rate(s.raw_sqlite_rows_per_s),
            fmt_ratio(ratio(s.msgs_per_s, Some(s.raw_sqlite_rows_per_s)))
        );
    }
    if let Some(a) = &r.attach {
        md.push_str("### 4. Attach + connect (rcimd already connected)\n\n");
        md.push_str("| what | samples | p50 | p99 | p50 ÷ raw RTT p50 |\n|---|---|---|---|---|\n");
        for (name, s) in [
            ("raw UDS ping-pong RTT (baseline)", &a.raw_rtt),
            (
                "raw UDS new connection + 2 round trips + close",
                &a.raw_new_connection,
            ),
            (
                "the same, raw, first thing in a new process",
                &a.raw_new_process,
            ),
            (
                "the same, raw, again in that process",
                &a.raw_new_process_warm,
            ),
            ("attach (connect socket + Hello/Welcome)", &a.attach),
            ("attach + connect → onConnected (new process)", &a.connected),
            (
                "attach + connect → onConnected (again, same process)",
                &a.warm_connected,
            ),
            (
                "`attach_and_connect` → onConnected (new process)",
                &a.pipelined,
            ),
            (
                "`attach_and_connect` → onConnected (again, same process)",
                &a.pipelined_warm,
            ),
            ("attach then connect, process start → exit", &a.process_wall),
            ("`rcimctl status`, process start → exit", &a.ctl_status),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {} | {} | {} |",
                s.count,
                fmt_us(s.p50_us),
                fmt_us(s.p99_us),
                fmt_ratio(ratio(s.p50_us, Some(a.raw_rtt.p50_us)))
            );
        }
        let _ = writeln!(
            md,
            "\nAgainst a raw new connection with two round trips (p50): attach then connect from a new process {}, the same process again {}; `attach_and_connect` from a new process {}, again {}.",
            fmt_ratio(ratio(a.connected.p50_us, Some(a.raw_new_connection.p50_us))),
            fmt_ratio(ratio(
                a.warm_connected.p50_us,
                Some(a.raw_new_connection.p50_us)
            )),
            fmt_ratio(ratio(a.pipelined.p50_us, Some(a.raw_new_connection.p50_us))),
            fmt_ratio(ratio(
                a.pipelined_warm.p50_us,
                Some(a.raw_new_connection.p50_us)
            ))
        );
        let _ = writeln!(
            md,
            "\nAgainst the same raw exchange first thing in a new process (p50): `attach_and_connect` {}, attach then connect {}; again in the process {} and {} against the raw one again.",
            fmt_ratio(ratio(a.pipelined.p50_us, Some(a.raw_new_process.p50_us))),
            fmt_ratio(ratio(a.connected.p50_us, Some(a.raw_new_process.p50_us))),
            fmt_ratio(ratio(
                a.pipelined_warm.p50_us,
                Some(a.raw_new_process_warm.p50_us)
            )),
            fmt_ratio(ratio(
                a.warm_connected.p50_us,
                Some(a.raw_new_process_warm.p50_us)
            ))
        );
        md.push('\n');
    }
    if let Some(i) = &r.idle {
        md.push_str("### 5. Idle cost (rcimd connected to rcim-server)\n\n");
        md.push_str("| figure | value |\n|---|---|\n");
        let _ = writeln!(
            md,
            "| VmRSS right after connecting | {:.2} MiB |",
            i.rss_connected_kib as f64 / 1024.0
        );
        let _ = writeln!(
            md,
            "| VmRSS after {} s idle | {:.2} MiB (anonymous {:.2} MiB, file-backed {:.2} MiB) |",
            i.window_s,
            i.rss_idle_kib as f64 / 1024.0,
            i.rss_anon_kib as f64 / 1024.0,
            i.rss_file_kib as f64 / 1024.0
        );
        let _ = writeln!(
            md,
            "| VmRSS with {} idle clients attached (one process) | {:.2} MiB = {:.1} KiB per client |",
            i.clients,
            i.rss_with_clients_kib as f64 / 1024.0,
            i.per_client_kib
        );
        let _ = writeln!(
            md,
            "| CPU over {} idle s (schedstat; /proc/PID/stat ticks) | {:.2} ms; {:.0} ms → {:.2} ms per 60 s |",
            i.window_s, i.cpu_sched_ms, i.cpu_stat_ms, i.cpu_per_60s_ms
        );
        let _ = writeln!(md, "| threads | {} |\n", i.threads);
    }
    if let Some(e) = &r.encryption {
        encryption_markdown(e, &mut md);
    }
    if let Some(rc) = &r.reconnect {
        md.push_str("### 6. Reconnect (rcim-server killed, restarted at once)\n\n");
        md.push_str("| restart | server up → connected | kill → connected | attempt that succeeded |\n|---|---|---|---|\n");
        for (i, ((up, kill), attempt)) in rc
            .up_to_connected_ms
            .iter()
            .zip(&rc.kill_to_connected_ms)
            .zip(&rc.attempts)
            .enumerate()
        {
            let _ = writeln!(md, "| {} | {up:.1} ms | {kill:.1} ms | {attempt} |", i + 1);
        }
        md.push('\n');
    }
    if !r.targets.is_empty() {
        md.push_str("### Targets of issue 7\n\n| target | measured | met |\n|---|---|---|\n");
        for t in &r.targets {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "not measured",
            };
            let _ = writeln!(md, "| {} | {} | {met} |", t.name, t.measured);
        }
        md.push('\n');
    }
    if !r.notes.is_empty() {
        md.push_str("Notes:\n\n");
        for n in &r.notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    md
}

/// Writes `results.json` and `results.md`, then tries the chart; returns a line
/// saying where the chart is or why there is none.
pub fn write(r: &Results, out: &Path) -> anyhow::Result<String> {
    std::fs::create_dir_all(out)?;
    let json = out.join("results.json");
    std::fs::write(&json, serde_json::to_string_pretty(r)?)?;
    std::fs::write(out.join("results.md"), markdown(r))?;
    let chart = out.join("chart.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("plot.py");
    let status = std::process::Command::new("python3")
        .arg(&script)
        .arg(&json)
        .arg(&chart)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output();
    Ok(match status {
        Ok(o) if o.status.success() => format!("chart: {}", chart.display()),
        Ok(o) => format!(
            "chart skipped: {} (pip install matplotlib to get it)",
            String::from_utf8_lossy(&o.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("plot.py failed")
        ),
        Err(e) => format!("chart skipped: python3 is not available ({e})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::FanoutRun;
    use crate::scenarios::{FanoutRow, SyncResult};

    fn row(n: usize, raw_deliveries_per_s: Option<f64>) -> FanoutRow {
        FanoutRow {
            n,
            raw_coalesced: raw_deliveries_per_s.map(|deliveries_per_s| FanoutRun {
                deliveries_per_s,
                ..FanoutRun::default()
            }),
            ..FanoutRow::default()
        }
    }

    #[test]
    fn the_ceiling_is_one_insert_and_n_raw_deliveries_on_every_core() {
        let mut r = Results {
            machine: serde_json::json!({ "nproc": 2 }),
            fanout: vec![row(16, Some(4e6)), row(4, None)],
            ..Results::default()
        };
        add_ceilings(&mut r);
        assert!(
            r.fanout.iter().all(|row| row.ceiling.is_none()),
            "no sync baseline"
        );
        r.sync = Some(SyncResult {
            raw_sqlite_rows_per_s: 200_000.0,
            ..SyncResult::default()
        });
        add_ceilings(&mut r);
        // 5 µs per insert, 2 cores ÷ 4 M = 0.5 µs per delivery: 2 s ÷ (5 + 16 × 0.5) µs.
        let c = r.fanout[0].ceiling.as_ref().expect("a ceiling at N=16");
        assert!((c.sqlite_us - 5.0).abs() < 1e-9, "{c:?}");
        assert!((c.delivery_us - 0.5).abs() < 1e-9, "{c:?}");
        assert!((c.msgs_per_s - 2e6 / 13.0).abs() < 1e-6, "{c:?}");
        assert!(r.fanout[1].ceiling.is_none(), "no raw baseline at N=4");
    }
}
