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
//! With `--words` the messages are text in words of a fixed vocabulary, and
//! `--search N` then times N one-word searches (`StoreHandle::search`, 20
//! results, newest first) over what was stored; the first of them, which
//! indexes whatever the background indexer has not reached yet, is timed apart.
//!
//! ```sh
//! cargo build --release -p rcim-bench --bin store-bench
//! target/release/store-bench --messages 20000 --batch 200
//! target/release/store-bench --messages 100000 --batch 200 --words --search 2000 --no-raw
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
    /// Messages are eight words of a 5,000-word vocabulary (instead of the
    /// fixed-size bench payload).
    #[arg(long)]
    words: bool,
    /// After storing, time this many one-word searches (needs --words).
    #[arg(long, requires = "words")]
    search: Option<u64>,
}

/// Words of the `--words` vocabulary.
const VOCABULARY: u64 = 5_000;

/// A word of the vocabulary: `w` and a base-26 spelling of `n`.
fn word(n: u64) -> String {
    let mut out = String::from("w");
    let mut n = n % VOCABULARY;
    loop {
        out.push(char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return out;
        }
    }
}

/// A deterministic xorshift for picking words.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Message `seq` of the `--words` corpus: eight words, skewed towards the start
/// of the vocabulary as real text is.
fn words_content(seq: u64) -> String {
    let mut state = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let text: Vec<String> = (0..8)
        .map(|_| {
            let a = next(&mut state) % VOCABULARY;
            let b = next(&mut state) % VOCABULARY;
            word(a.min(b))
        })
        .collect();
    format!("{{\"content\":\"{}\"}}", text.join(" "))
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
                        if cli.words {
                            entry.message.content = words_content(seq);
                        }
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
        let elapsed = start.elapsed().as_secs_f64();
        if let Some(searches) = cli.search {
            // The first search indexes whatever the background indexer has not
            // reached yet (all of it, right after a burst): timed on its own.
            let t = Instant::now();
            store
                .search(rcim_proto::ipc::SearchQuery::new(word(0), 20))
                .await?;
            println!(
                "first search, indexing what was pending: {:.0} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
            let mut state = 0x2545_F491_4F6C_DD1D_u64;
            let mut latencies = Vec::with_capacity(searches as usize);
            let mut hits = 0;
            for _ in 0..searches {
                let query = rcim_proto::ipc::SearchQuery::new(word(next(&mut state)), 20);
                let t = Instant::now();
                hits += store.search(query).await?.len();
                latencies.push(t.elapsed().as_nanos() as u64);
            }
            let s = rcim_bench::stats::Summary::of(&mut latencies);
            println!(
                "one-word search over {} messages, 20 results: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs ({searches} queries, {:.1} results each)",
                cli.messages,
                s.p50_us,
                s.p99_us,
                s.max_us,
                hits as f64 / searches as f64
            );
        }
        anyhow::Ok((elapsed, stored))
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
