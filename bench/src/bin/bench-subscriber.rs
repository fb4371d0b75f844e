//! `bench-subscriber`: the processes on the receiving side of every benchmark.
//!
//! One binary, one subcommand per role, so each system is measured with the same
//! accounting: `rcim` is an app linking `rcim-client` (attach, `connect`, then the
//! `events()` stream, the async form of RC's `onMessageReceived`), `raw` reads the
//! raw Unix-socket baseline's frames, `mqtt` subscribes to Mosquitto, `echo` is the
//! far end of the ping-pong baseline, `attach` times one attach + `connect` to
//! `onConnected`, and `idle-clients` holds many attached idle clients in one
//! process. Receivers stamp each message when it reaches them, report to the
//! driver's control socket and write their latency samples to a file (see
//! `rcim_bench::control`). The token comes from `BENCH_TOKEN`, never argv.

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::{FutureExt as _, StreamExt as _};
use rcim_bench::control::{ControlClient, PROGRESS_EVERY, Report, write_latencies};
use rcim_bench::payload::{self, PAYLOAD, now_ns};
use rcim_client::{Client, ClientOptions, Event, Token};
use std::io::{BufReader, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "receiving side of the rcim benchmarks (started by rcim-bench)")]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// An app on rcimd: attach, connect, count MessageReceived events.
    Rcim(Receive),
    /// A raw Unix-socket reader of 4-byte-length frames.
    Raw(Receive),
    /// A Mosquitto subscriber (MQTT 3.1.1, QoS 0).
    Mqtt(Receive),
    /// Echo 200-byte messages back until the socket closes.
    Echo {
        #[arg(long)]
        socket: PathBuf,
    },
    /// Attach and connect once; print the times as JSON.
    Attach {
        #[arg(long)]
        socket: PathBuf,
        /// Use `Client::attach_and_connect` (the connect request written with the
        /// Hello) instead of `attach` then `connect`.
        #[arg(long)]
        pipelined: bool,
    },
    /// The raw counterpart of `attach`: connect to a raw echo socket, two 200-byte
    /// round trips, close; twice (the first in a fresh process, then again); print
    /// the times as JSON.
    RawAttach {
        #[arg(long)]
        socket: PathBuf,
    },
    /// Attach COUNT idle clients, print `ready`, and wait to be killed.
    IdleClients {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        count: usize,
    },
}

#[derive(Args)]
struct Receive {
    /// The socket to receive from (rcimd, the raw producer, or mosquitto).
    #[arg(long)]
    socket: PathBuf,
    /// The driver's control socket.
    #[arg(long)]
    control: PathBuf,
    /// This subscriber's index.
    #[arg(long)]
    index: usize,
    /// Messages to expect.
    #[arg(long)]
    count: u64,
    /// Where to write latency samples.
    #[arg(long)]
    dir: PathBuf,
    /// Stop after this long without a message (once the first one came).
    #[arg(long, default_value_t = 3.0)]
    idle_secs: f64,
}

/// Counts, stamps and reports what one subscriber receives.
struct Tally {
    control: ControlClient,
    report: Report,
    latencies: Vec<u64>,
    expected: u64,
    /// Report progress for the driver's flow control (rcimd runs only: raw and
    /// MQTT senders are held back by the socket itself).
    progress: bool,
    /// The next sequence number expected, to spot duplicates.
    next_seq: u64,
    /// This process's CPU time at `ready`, ms.
    cpu_at_ready_ms: f64,
}

impl Tally {
    fn new(control: ControlClient, index: usize, expected: u64, progress: bool) -> Self {
        Self {
            control,
            report: Report {
                index,
                ..Report::default()
            },
            latencies: Vec::with_capacity(usize::try_from(expected).unwrap_or(0).min(4_000_000)),
            expected,
            progress,
            next_seq: 0,
            cpu_at_ready_ms: 0.0,
        }
    }

    /// Tells the driver this subscriber can receive; CPU is counted from here.
    fn ready(&mut self) -> anyhow::Result<()> {
        self.cpu_at_ready_ms = own_cpu_ms();
        self.control.ready()
    }

    /// Message `seq` sent at `ts_ns`, received now. Sequence numbers only grow
    /// (every sender sends in order), so one below the next expected is a
    /// duplicate.
    fn got(&mut self, seq: u64, ts_ns: u64) -> anyhow::Result<()> {
        let now = now_ns();
        if self.report.received > 0 && seq < self.next_seq {
            self.report.duplicates += 1;
            return Ok(());
        }
        self.next_seq = seq + 1;
        if self.report.received == 0 {
            self.report.first_ns = now;
        }
        self.report.last_ns = now;
        self.report.received += 1;
        self.latencies.push(now.saturating_sub(ts_ns));
        if self.progress && self.report.received.is_multiple_of(PROGRESS_EVERY) {
            self.control.progress(self.report.received)?;
        }
        Ok(())
    }

    fn complete(&self) -> bool {
        self.report.received >= self.expected
    }

    fn finish(mut self, dir: &std::path::Path, error: Option<String>) -> anyhow::Result<()> {
        self.report.error = error;
        self.report.cpu_ms = own_cpu_ms() - self.cpu_at_ready_ms;
        write_latencies(dir, self.report.index, &self.latencies)?;
        self.control.done(&self.report)
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().role {
        Role::Rcim(args) => runtime()?.block_on(rcim(args)),
        Role::Raw(args) => raw(args),
        Role::Mqtt(args) => mqtt(args),
        Role::Echo { socket } => echo(&socket),
        Role::Attach { socket, pipelined } => {
            let rt = runtime()?;
            rt.block_on(attach_once(socket, pipelined))
        }
        Role::RawAttach { socket } => raw_attach(&socket),
        Role::IdleClients { socket, count } => runtime()?.block_on(idle_clients(socket, count)),
    }
}

/// CPU time of this process (every thread), ms.
fn own_cpu_ms() -> f64 {
    rcim_bench::procs::cpu_sched_ms(std::process::id()).unwrap_or(0.0)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn token() -> anyhow::Result<Token> {
    Ok(Token::new(
        std::env::var("BENCH_TOKEN").context("BENCH_TOKEN is not set")?,
    ))
}

fn options(socket: PathBuf, name: &str) -> ClientOptions {
    ClientOptions {
        socket: Some(socket),
        ..ClientOptions::named(name)
    }
}

async fn rcim(args: Receive) -> anyhow::Result<()> {
    let control = ControlClient::connect(&args.control, args.index)?;
    let (client, mut events) = Client::attach_with_events(options(
        args.socket.clone(),
        &format!("bench-sub-{}", args.index),
    ))
    .await?;
    let call = client.connect(token()?, 30).await?;
    if call.code() != 0 {
        bail!("connect was rejected: {}", call.code());
    }
    let connected = call.connected().await;
    if connected.code != 0 {
        bail!("onConnected({})", connected.code);
    }
    let mut tally = Tally::new(control, args.index, args.count, true);
    tally.ready()?;
    let idle = Duration::from_secs_f64(args.idle_secs);
    let mut error = None;
    while !tally.complete() {
        let wait = if tally.report.received == 0 {
            Duration::from_secs(120)
        } else {
            idle
        };
        // An event already buffered needs no timer (a timer per event was a
        // visible part of the subscriber's cost).
        let next = match events.next().now_or_never() {
            Some(next) => Ok(next),
            None => tokio::time::timeout(wait, events.next()).await,
        };
        match next {
            Ok(Some(Ok(Event::MessageReceived { message, .. }))) => {
                match payload::parse_content(&message.content) {
                    Some((seq, ts)) => tally.got(seq, ts)?,
                    None => continue,
                }
            }
            Ok(Some(Ok(_))) => {}
            // The client library has the daemon replay what was skipped.
            Ok(Some(Err(_lagged))) => tally.report.lag_events += 1,
            Ok(None) => {
                error = Some("rcimd closed the connection".into());
                break;
            }
            Err(_) => {
                error = Some(format!("no message for {wait:?}"));
                break;
            }
        }
    }
    drop(client);
    tally.finish(&args.dir, error)
}

fn raw(args: Receive) -> anyhow::Result<()> {
    let control = ControlClient::connect(&args.control, args.index)?;
    let stream = UnixStream::connect(&args.socket)
        .with_context(|| format!("cannot reach the raw producer at {}", args.socket.display()))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut tally = Tally::new(control, args.index, args.count, false);
    tally.ready()?;
    let mut frame = [0u8; payload::RAW_FRAME];
    let mut error = None;
    while !tally.complete() {
        if let Err(e) = reader.read_exact(&mut frame) {
            error = Some(format!("the raw producer closed: {e}"));
            break;
        }
        match payload::read_binary(&frame[4..]) {
            Some((seq, ts)) => tally.got(seq, ts)?,
            None => bail!("malformed raw frame"),
        }
    }
    tally.finish(&args.dir, error)
}

fn mqtt(args: Receive) -> anyhow::Result<()> {
    use rcim_bench::mqtt::{Mqtt, publish_payload};
    let control = ControlClient::connect(&args.control, args.index)?;
    let mut client = Mqtt::connect(&args.socket, &format!("bench-sub-{}", args.index))?;
    client.subscribe()?;
    client
        .stream
        .set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut tally = Tally::new(control, args.index, args.count, false);
    tally.ready()?;
    let mut error = None;
    while !tally.complete() {
        match client.read_packet() {
            Ok(Some((kind, body))) if kind >> 4 == 3 => {
                match publish_payload(&body).and_then(payload::read_binary) {
                    Some((seq, ts)) => tally.got(seq, ts)?,
                    None => bail!("malformed PUBLISH"),
                }
                if tally.report.received == 1 {
                    client
                        .stream
                        .set_read_timeout(Some(Duration::from_secs_f64(args.idle_secs)))?;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                error = Some("mosquitto closed the connection".into());
                break;
            }
            Err(e) => {
                error = Some(format!("reading from mosquitto: {e}"));
                break;
            }
        }
    }
    let _ = client.stream.write_all(&rcim_bench::mqtt::DISCONNECT);
    tally.finish(&args.dir, error)
}

fn echo(socket: &std::path::Path) -> anyhow::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    let mut buf = [0u8; PAYLOAD];
    while stream.read_exact(&mut buf).is_ok() {
        stream.write_all(&buf)?;
    }
    Ok(())
}

fn raw_attach(socket: &Path) -> anyhow::Result<()> {
    let cold = rcim_bench::baseline::connect_two_round_trips(socket)?;
    let warm = rcim_bench::baseline::connect_two_round_trips(socket)?;
    println!(
        "{{\"connected_us\":{},\"warm_connected_us\":{},\"code\":0}}",
        cold.as_secs_f64() * 1e6,
        warm.as_secs_f64() * 1e6,
    );
    Ok(())
}

async fn attach_once(socket: PathBuf, pipelined: bool) -> anyhow::Result<()> {
    let token = token()?;
    // The first attach in a fresh process pays for cold code and first-touch
    // memory; the second shows the steady-state cost.
    let (cold_attach, cold_connected) = attach_and_connect(&socket, &token, pipelined).await?;
    let (warm_attach, warm_connected) = attach_and_connect(&socket, &token, pipelined).await?;
    println!(
        "{{\"attach_us\":{},\"connected_us\":{},\"warm_attach_us\":{},\"warm_connected_us\":{},\"code\":0}}",
        cold_attach.as_secs_f64() * 1e6,
        cold_connected.as_secs_f64() * 1e6,
        warm_attach.as_secs_f64() * 1e6,
        warm_connected.as_secs_f64() * 1e6,
    );
    Ok(())
}

/// Attaches and connects; returns the time to Welcome and to `onConnected`.
/// `pipelined` uses `Client::attach_and_connect` (the connect request leaves with
/// the Hello), whose attach has no time of its own: zero.
async fn attach_and_connect(
    socket: &Path,
    token: &Token,
    pipelined: bool,
) -> anyhow::Result<(Duration, Duration)> {
    let start = Instant::now();
    let options = options(socket.to_owned(), "bench-attach");
    let (_client, attached, call) = if pipelined {
        let (client, _events, call) =
            Client::attach_and_connect(options, token.clone(), 10).await?;
        (client, Duration::ZERO, call)
    } else {
        let client = Client::attach(options).await?;
        let attached = start.elapsed();
        let call = client.connect(token.clone(), 10).await?;
        (client, attached, call)
    };
    // A rejected call's `connected()` is its immediate code.
    let code = call.connected().await.code;
    let connected = start.elapsed();
    if code != 0 {
        bail!("onConnected({code})");
    }
    Ok((attached, connected))
}

async fn idle_clients(socket: PathBuf, count: usize) -> anyhow::Result<()> {
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let client = Client::attach(options(socket.clone(), "bench-idle"))
            .await
            .with_context(|| format!("attaching idle client {i}"))?;
        clients.push(client);
    }
    println!("ready");
    std::io::stdout().flush()?;
    // Hold them until the driver kills this process.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
