//! `decode-bench`: what decoding one `MessageReceived` event costs a client, in one
//! process, next to the floor of walking the same frames, in the same run.
//!
//! The fan-out bench shows each `rcim-client` subscriber spending 1.3–2.4 µs of
//! CPU per delivery, about a fifth of it in allocating, copying and freeing the
//! five owned `String`s of a decoded `Message`. This measures how much of that an
//! API with borrowed (or shared-buffer) strings could take back, before anyone
//! changes the public `Message` type for it:
//!
//! - **walk**: find each frame in the buffer and touch its body (the floor);
//! - **owned**: `frame::decode_body::<DaemonFrame>` into the real, owned types
//!   (what `rcim-client` does), then drop it;
//! - **borrowed**: the same bytes into a mirror of those types whose strings are
//!   `&str` into the buffer (UTF-8 still checked), then drop it.
//!
//! The mirror is checked against the owned decode of every frame before timing.
//!
//! ```sh
//! cargo run --release -p rcim-bench --bin decode-bench -- --messages 200000
//! ```

use clap::Parser;
use rcim_bench::payload::{content, now_ns};
use rcim_proto::frame::{LEN_PREFIX, MAX_IPC_FRAME, decode_body, encode_into};
use rcim_proto::ipc;
use rcim_proto::ipc::{DaemonFrame, Event};
use rcim_proto::message::{ConversationKey, ConversationType, Direction, Message, SentStatus};
use rcim_proto::status::LinkState;
use serde::Deserialize;
use std::hint::black_box;
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    /// Frames per round.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..=50_000_000))]
    messages: u64,
    /// Frames in the buffer, decoded again and again: 200 (~58 KiB) is about what
    /// one 64 KiB read of a committed batch brings, and stays in the cache as it
    /// does in a client.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch: u64,
    /// Rounds of each way, alternating; the median is reported.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=100))]
    rounds: u64,
}

/// `Message` with borrowed strings, field for field (postcard is positional).
#[derive(Deserialize)]
struct MessageRef<'a> {
    id: i64,
    #[serde(borrow)]
    uid: Option<&'a str>,
    #[serde(borrow)]
    conversation: ConversationKeyRef<'a>,
    sender: &'a str,
    object_name: &'a str,
    content: &'a str,
    sent_time_ms: i64,
    received_time_ms: i64,
    direction: Direction,
    sent_status: SentStatus,
    #[serde(borrow)]
    client_msg_id: Option<&'a str>,
}

#[derive(Deserialize)]
struct ConversationKeyRef<'a> {
    kind: ConversationType,
    target_id: &'a str,
}

/// `Event`, variant for variant.
#[derive(Deserialize)]
enum EventRef<'a> {
    #[allow(dead_code)]
    StatusChanged(LinkState),
    MessageReceived {
        #[serde(borrow)]
        message: MessageRef<'a>,
        left: u32,
        offline: bool,
        has_package: bool,
    },
    OfflineSyncCompleted,
    #[allow(dead_code)]
    Lagged {
        resume_from: i64,
    },
}

/// `DaemonFrame`, variant for variant.
#[derive(Deserialize)]
#[allow(dead_code)]
enum FrameRef<'a> {
    Welcome(ipc::Welcome),
    Refused(ipc::Refused),
    Response(ipc::Response),
    Callback(ipc::CallbackFrame),
    #[serde(borrow)]
    Event(EventRef<'a>),
}

/// The frame bodies in `buf` (length-prefixed frames, back to back).
fn bodies(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let (prefix, tail) = rest.split_first_chunk::<LEN_PREFIX>()?;
        let len = u32::from_be_bytes(*prefix) as usize;
        let (body, tail) = tail.split_at(len);
        rest = tail;
        Some(body)
    })
}

/// An event like the ones rcimd publishes in the fan-out bench.
fn event(seq: u64, ts: u64) -> DaemonFrame {
    let sender = "bench-sender";
    DaemonFrame::Event(Event::MessageReceived {
        message: Message {
            id: i64::try_from(seq).unwrap_or(i64::MAX),
            uid: Some(format!("BENCH-{seq:016X}")),
            conversation: ConversationKey::private(sender),
            sender: sender.into(),
            object_name: "RC:TxtMsg".into(),
            content: content(seq, ts),
            sent_time_ms: i64::try_from(ts / 1_000_000).unwrap_or(0),
            received_time_ms: i64::try_from(ts / 1_000_000).unwrap_or(0),
            direction: Direction::Receive,
            sent_status: SentStatus::Received,
            client_msg_id: None,
        },
        left: 0,
        offline: false,
        has_package: false,
    })
}

/// Checks that the mirror reads what the real types read.
fn same(owned: &DaemonFrame, borrowed: &FrameRef<'_>) -> bool {
    let (
        DaemonFrame::Event(Event::MessageReceived {
            message: m,
            left,
            offline,
            has_package,
        }),
        FrameRef::Event(EventRef::MessageReceived {
            message: r,
            left: rl,
            offline: ro,
            has_package: rh,
        }),
    ) = (owned, borrowed)
    else {
        return false;
    };
    m.id == r.id
        && m.uid.as_deref() == r.uid
        && m.conversation.kind == r.conversation.kind
        && m.conversation.target_id == r.conversation.target_id
        && m.sender == r.sender
        && m.object_name == r.object_name
        && m.content == r.content
        && m.sent_time_ms == r.sent_time_ms
        && m.received_time_ms == r.received_time_ms
        && m.direction == r.direction
        && m.sent_status == r.sent_status
        && m.client_msg_id.as_deref() == r.client_msg_id
        && (left, offline, has_package) == (rl, ro, rh)
}

/// ns per frame of `times` passes of `decode` over every body of `buf`, which
/// holds `batch` frames.
fn pass(buf: &[u8], batch: u64, times: u64, mut decode: impl FnMut(&[u8])) -> f64 {
    let start = Instant::now();
    for _ in 0..times {
        for body in bodies(buf) {
            decode(body);
        }
    }
    start.elapsed().as_nanos() as f64 / (batch * times) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let ts = now_ns();
    let mut buf = Vec::new();
    let batch = cli.batch.min(cli.messages);
    let times = cli.messages / batch;
    for seq in 1..=batch {
        encode_into(&event(seq, ts), MAX_IPC_FRAME, &mut buf)?;
    }
    for body in bodies(&buf) {
        let owned: DaemonFrame = decode_body(body)?;
        let borrowed: FrameRef<'_> = postcard::from_bytes(body)?;
        anyhow::ensure!(
            same(&owned, &borrowed),
            "the borrowed mirror disagrees with the owned types"
        );
    }
    let (mut walk, mut owned, mut borrowed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..cli.rounds {
        walk.push(pass(&buf, batch, times, |body| {
            black_box(body.first().copied().unwrap_or(0) ^ body.last().copied().unwrap_or(0));
        }));
        owned.push(pass(&buf, batch, times, |body| {
            let frame: Result<DaemonFrame, _> = decode_body(body);
            drop(black_box(frame));
        }));
        borrowed.push(pass(&buf, batch, times, |body| {
            let frame: Result<FrameRef<'_>, _> = postcard::from_bytes(body);
            drop(black_box(frame));
        }));
    }
    let (walk, owned, borrowed) = (median(walk), median(owned), median(borrowed));
    println!(
        "{} frames of {} bytes ({} passes over a buffer of {}), median of {} rounds",
        batch * times,
        buf.len() as u64 / batch,
        times,
        batch,
        cli.rounds
    );
    println!("| way | ns per frame | ÷ walk |\n|---|---|---|");
    for (name, ns) in [
        ("walk (floor)", walk),
        ("owned (rcim-client today)", owned),
        ("borrowed strings", borrowed),
    ] {
        println!("| {name} | {ns:.1} | ×{:.1} |", ns / walk.max(0.001));
    }
    println!(
        "owned − borrowed: {:.1} ns per frame ({:.0} % of the owned decode)",
        owned - borrowed,
        100.0 * (owned - borrowed) / owned
    );
    Ok(())
}
