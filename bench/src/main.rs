//! `rcim-bench`: runs the benchmarks of issue 7 and writes the report.
//!
//! `all` runs every scenario at full size (under 10 minutes on two cores),
//! `quick` a one-minute smoke version, and each scenario can run alone. The
//! markdown report is printed and written with the JSON next to it.

use clap::{Parser, ValueEnum};
use rcim_bench::procs::{self, Bins};
use rcim_bench::scenarios::{self, Plan, Results};
use std::path::PathBuf;
use std::time::Instant;

/// Benchmarks of rcimd against raw Unix sockets, raw SQLite and Mosquitto,
/// measured in the same run.
#[derive(Parser)]
#[command(after_help = "Example: cargo run --release -p rcim-bench -- all")]
struct Cli {
    /// What to run.
    what: What,
    /// Where to write results.json, results.md and chart.png [default: target/bench].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run a scenario alone at the quick size instead of the full one.
    #[arg(long)]
    small: bool,
    /// Idle window in seconds (overrides the plan's).
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Saturated rcimd runs keep at most this many messages ahead of the slowest
    /// subscriber [default: 768, below rcim-client's 1,024-event backlog, so the
    /// run measures delivery rather than lag and replay].
    #[arg(long)]
    window: Option<u64>,
    /// Fan-out and latency runs at these subscriber counts only (repeat it, or
    /// comma-separate: `--n 16`), for A/B runs and profiling.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=1024))]
    n: Vec<u64>,
    /// Exit with status 1 if a scenario failed, or a run through rcimd lost or
    /// duplicated a message or reported an error (CI runs `quick --check` on a debug
    /// build: the figures mean nothing there, that the bench still runs does).
    #[arg(long)]
    check: bool,
    /// Token stores for the encryption scenario (comma-separated: memory,
    /// keyutils, secret-service): the first OS keyring holds the key of the
    /// encrypted runs, and each store gets an idle measurement. Run inside those
    /// keyrings' sessions (see docs/PERFORMANCE.md). `all` and `quick` run the
    /// scenario only when this names an OS keyring.
    #[arg(long, value_delimiter = ',')]
    token_store: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum What {
    /// Every scenario, full size.
    All,
    /// Every scenario, smoke size (about a minute).
    Quick,
    /// 1. Fan-out throughput, saturated, against raw and Mosquitto.
    Fanout,
    /// 2. Fan-out latency at 1,000 and 10,000 msg/s, against raw.
    Latency,
    /// 3. Sync of a backlog, against raw SQLite.
    Sync,
    /// 4. Attach + connect, against raw ping-pong; rcimctl status.
    Attach,
    /// 5. Idle RSS and CPU.
    Idle,
    /// 6. Reconnect after a server restart.
    Reconnect,
    /// 7. Encryption at rest: sync, fan-out and latency encrypted against plain,
    ///    and idle per token store (needs --token-store with an OS keyring).
    Encryption,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut plan = match (cli.what, cli.small) {
        (What::All, _) => Plan::all(),
        (What::Quick, _) | (_, true) => Plan::quick(),
        _ => Plan::all(),
    };
    if cli.what != What::All && cli.what != What::Quick {
        plan.name = cli
            .what
            .to_possible_value()
            .map_or("?".into(), |v| v.get_name().to_owned());
    }
    if let Some(secs) = cli.idle_secs {
        plan.idle_secs = secs;
    }
    if let Some(window) = cli.window {
        plan.window = window;
    }
    if !cli.n.is_empty() {
        plan.fanout_ns = cli.n.iter().map(|&n| n as usize).collect();
        plan.latency_ns.clone_from(&plan.fanout_ns);
    }
    let out = cli.out.clone().unwrap_or_else(scenarios::default_out_dir);
    let fd_limit = procs::raise_nofile();
    let bins = Bins::build()?;
    let mut work = tempfile::Builder::new().prefix("rcim-bench-").tempdir()?;
    if std::env::var_os("RCIM_BENCH_KEEP").is_some() {
        // Logs, databases and latency samples of every run, for a closer look.
        work.disable_cleanup(true);
        eprintln!("keeping the work dir {}", work.path().display());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut results = Results {
        schema: 1,
        machine: procs::machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        ..Results::default()
    };
    if fd_limit < plan.idle_clients as u64 + 64 {
        plan.idle_clients = usize::try_from(fd_limit.saturating_sub(64))
            .unwrap_or(0)
            .max(1);
        results.notes.push(format!(
            "the open-file limit is {fd_limit}: idle clients reduced to {}",
            plan.idle_clients
        ));
    }
    let every = matches!(cli.what, What::All | What::Quick);
    let mut failed = Vec::new();
    runtime.block_on(async {
        let w = work.path();
        let steps: [(What, &str); 7] = [
            (What::Attach, "attach"),
            (What::Sync, "sync"),
            (What::Reconnect, "reconnect"),
            (What::Fanout, "fanout"),
            (What::Latency, "latency"),
            (What::Idle, "idle"),
            (What::Encryption, "encryption"),
        ];
        for (what, name) in steps {
            if !every && cli.what != what {
                continue;
            }
            let keyring_given = cli.token_store.iter().any(|s| s != "memory");
            if what == What::Encryption && every && !keyring_given {
                results
                    .notes
                    .push("encryption skipped: no --token-store with an OS keyring".to_owned());
                continue;
            }
            let outcome = match what {
                What::Attach => scenarios::attach(&bins, &plan, w, &mut results).await,
                What::Sync => scenarios::sync(&bins, &plan, w, &mut results).await,
                What::Reconnect => scenarios::reconnect(&bins, &plan, w, &mut results).await,
                What::Fanout => scenarios::fanout(&bins, &plan, w, &mut results).await,
                What::Latency => scenarios::latency(&bins, &plan, w, &mut results).await,
                What::Idle => scenarios::idle(&bins, &plan, w, &mut results).await,
                What::Encryption => rcim_bench::encryption::run(&bins, &plan, &cli.token_store, w)
                    .await
                    .map(|r| results.encryption = Some(r)),
                What::All | What::Quick => Ok(()),
            };
            if let Err(e) = outcome {
                eprintln!("{name} failed: {e:#}");
                results.notes.push(format!("{name} failed: {e:#}"));
                failed.push(format!("{name} failed: {e:#}"));
            }
        }
    });
    results.total_seconds = started.elapsed().as_secs_f64();
    results.plan = Some(plan);
    rcim_bench::report::add_ceilings(&mut results);
    results.targets = rcim_bench::report::judge(&results);
    let chart = rcim_bench::report::write(&results, &out)?;
    println!("{}", rcim_bench::report::markdown(&results));
    println!("results: {}", out.join("results.json").display());
    println!("{chart}");
    if cli.check {
        failed.extend(rcimd_run_failures(&results));
        if !failed.is_empty() {
            eprintln!("--check: {}", failed.join("; "));
            std::process::exit(1);
        }
    }
    Ok(())
}

/// The rcimd runs that did not deliver every message exactly once, or reported
/// an error (a baseline that could not run, such as a missing Mosquitto, is not
/// one: its ratios are skipped with a message).
fn rcimd_run_failures(results: &Results) -> Vec<String> {
    let fanout = results
        .fanout
        .iter()
        .map(|row| ("fan-out", row.n, &row.rcimd));
    let latency = results
        .latency
        .iter()
        .map(|row| ("latency", row.n, &row.rcimd));
    let mut out = Vec::new();
    if let Some(e) = &results.encryption
        && e.lost_or_duplicated > 0
    {
        out.push(format!(
            "encryption: {} messages lost or duplicated",
            e.lost_or_duplicated
        ));
    }
    for (what, n, run) in fanout.chain(latency) {
        match run {
            None => out.push(format!("{what} N={n}: the rcimd run did not complete")),
            Some(run) if run.lost > 0 || run.duplicates > 0 || !run.errors.is_empty() => {
                out.push(format!(
                    "{what} N={n}: {} lost, {} duplicated, errors: {:?}",
                    run.lost, run.duplicates, run.errors
                ));
            }
            Some(_) => {}
        }
    }
    out
}
