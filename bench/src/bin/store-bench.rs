//! `store-bench`: rcimd's incoming commit path alone, next to raw SQLite, in one
//! process, so it can run under `valgrind --tool=callgrind` (instruction counts
//! are deterministic where wall time on a shared machine is not).
//!
//! It opens a fresh per-user database through rcimd's own `StoreOpener` (same
//! schema and pragmas as the daemon) and commits `--messages` bench-upstream
//! entries with `StoreHandle::insert_incoming` in batches of `--batch`, the
//! same call the link's inbox makes; then the raw SQLite baseline of the
//! sync scenario with the same batch size.
//!
//! ```sh
//! cargo build --release -p rcim-bench --bin store-bench
//! target/release/store-bench --messages 20000 --batch 200
//! valgrind --tool=callgrind target/release/store-bench --messages 5000 --batch 1 --no-raw
//! ```

use clap::Parser;
use rcim_bench::payload::now_ns;
use rcimd::store::StoreOpener;
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    /// Messages to commit.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Messages per transaction (200: a sync package; 1: a lone live push).
    #[arg(long, default_value_t = 200)]
    batch: u64,
    /// Conversations the messages are spread over (round robin).
    #[arg(long, default_value_t = 1)]
    conversations: u64,
    /// Skip the raw SQLite baseline.
    #[arg(long)]
    no_raw: bool,
    /// Offer one batch every 1/RATE s instead of back to back, and print the
    /// latency of each commit (call to answer).
    #[arg(long)]
    rate: Option<f64>,
    /// Run only the raw SQLite baseline.
    #[arg(long, conflicts_with = "no_raw")]
    raw_only: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = tempfile::Builder::new().prefix("store-bench-").tempdir()?;
    if cli.raw_only {
        let raw = rcim_bench::baseline::sqlite_insert(dir.path(), cli.messages, cli.batch)?;
        println!("raw SQLite, batches of {}: {raw:.0} rows/s", cli.batch);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (seconds, stored) = runtime.block_on(async {
        let store = StoreOpener::new(dir.path()).open("bench-user").await?;
        let ts = now_ns();
        let batches: Vec<Vec<_>> = (0..cli.messages.div_ceil(cli.batch))
            .map(|b| {
                let from = b * cli.batch + 1;
                let to = ((b + 1) * cli.batch).min(cli.messages);
                (from..=to)
                    .map(|seq| {
                        let mut entry = rcim_bench::upstream::entry(seq, ts);
                        if cli.conversations > 1 {
                            entry.message.conversation.target_id =
                                format!("peer-{}", seq % cli.conversations);
                        }
                        entry
                    })
                    .collect()
            })
            .collect();
        let start = Instant::now();
        let mut stored = 0;
        let mut latencies = Vec::with_capacity(batches.len());
        for (i, batch) in batches.into_iter().enumerate() {
            if let Some(rate) = cli.rate {
                let due = start + std::time::Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let t = Instant::now();
            let new = store.insert_incoming(batch, 1).await?;
            latencies.push(t.elapsed().as_nanos() as u64);
            stored += new.len();
        }
        if cli.rate.is_some() {
            let slow = latencies.iter().filter(|&&l| l > 2_000_000).count();
            println!("commits slower than 2 ms: {slow}");
            let s = rcim_bench::stats::Summary::of(&mut latencies);
            println!(
                "commit latency: p50 {:.0} µs, p99 {:.0} µs, p99.9 {:.0} µs, max {:.0} µs; {} background checkpoints",
                s.p50_us,
                s.p99_us,
                s.p999_us,
                s.max_us,
                store.checkpoints()
            );
        }
        anyhow::Ok((start.elapsed().as_secs_f64(), stored))
    })?;
    let rate = cli.messages as f64 / seconds;
    println!(
        "rcimd insert_incoming: {} messages in batches of {}: {:.0} msgs/s ({:.2} µs each), {stored} stored",
        cli.messages,
        cli.batch,
        rate,
        seconds * 1e6 / cli.messages as f64
    );
    if !cli.no_raw {
        let raw_dir = tempfile::Builder::new()
            .prefix("store-bench-raw-")
            .tempdir()?;
        let raw = rcim_bench::baseline::sqlite_insert(raw_dir.path(), cli.messages, cli.batch)?;
        println!(
            "raw SQLite, same batches: {raw:.0} rows/s; rcimd ÷ raw = {:.2}",
            rate / raw
        );
    }
    Ok(())
}
