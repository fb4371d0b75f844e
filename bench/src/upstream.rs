//! The bench upstream: a minimal IM server inside the driver that speaks the
//! upstream wire protocol from pre-encoded frames, so the server is never what
//! limits a measurement of rcimd.
//!
//! It accepts any token (rcimd reads the user id from the token's claims before
//! the CONNACK, and the CONNACK names the same user), answers `Sync` from a
//! backlog encoded before the daemon connects, answers `Ping`, records every
//! cumulative `Ack` (the daemon sends it only after the commit, so the highest ack
//! is the number of messages durable in the daemon's database), and lets the
//! scenario push live messages through [`Upstream::push`]. One connection at a
//! time: a reconnect replaces the previous one.

use anyhow::{Context as _, bail};
use rcim_proto::code::ConnAckCode;
use rcim_proto::frame::{FrameReader, MAX_UPSTREAM_FRAME, encode};
use rcim_proto::message::{ConversationKey, SYNC_PACKAGE, WireMessage};
use rcim_proto::upstream::{ClientMsg, ConnAck, InboxEntry, PubAck, ServerMsg};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// The sender of every benchmark message.
pub const SENDER: &str = "bench-publisher";

/// Most bytes the writer puts in one write.
const WRITE_BATCH: usize = 256 * 1024;

/// State shared by the accept loop, the connections and the scenario.
struct Shared {
    user: String,
    /// Pre-encoded `SyncBatch` frames keyed by the `since_seq` they answer.
    batches: HashMap<u64, Vec<u8>>,
    backlog: u64,
    acked: AtomicU64,
    acked_changed: Notify,
    /// When the first `Sync` of the current connection arrived.
    first_sync: Mutex<Option<Instant>>,
    /// When the batch with `has_more: false` went out (the connection is live).
    live: Mutex<Option<Instant>>,
    live_changed: Notify,
    writer: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
}

/// A running bench upstream.
pub struct Upstream {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Starts an upstream for `user` whose inbox already holds `backlog` messages
    /// (sequence numbers 1..=backlog); live pushes continue after them.
    pub async fn start(user: &str, backlog: u64) -> anyhow::Result<Self> {
        let mut batches = HashMap::new();
        let mut since = 0;
        while since < backlog {
            let end = (since + SYNC_PACKAGE as u64).min(backlog);
            let entries = (since + 1..=end)
                .map(|seq| entry(seq, crate::payload::now_ns()))
                .collect();
            let frame = ServerMsg::SyncBatch {
                entries,
                has_more: end < backlog,
            };
            batches.insert(since, encode(&frame, MAX_UPSTREAM_FRAME)?);
            since = end;
        }
        let empty = ServerMsg::SyncBatch {
            entries: Vec::new(),
            has_more: false,
        };
        batches.insert(backlog, encode(&empty, MAX_UPSTREAM_FRAME)?);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            user: user.to_owned(),
            batches,
            backlog,
            acked: AtomicU64::new(0),
            acked_changed: Notify::new(),
            first_sync: Mutex::new(None),
            live: Mutex::new(None),
            live_changed: Notify::new(),
            writer: Mutex::new(None),
        });
        let accept_shared = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&accept_shared)));
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The daemon's `--server` URL.
    pub fn url(&self) -> String {
        format!("rcim://{}", self.addr)
    }

    /// The first live sequence number (after the backlog).
    pub fn first_live_seq(&self) -> u64 {
        self.shared.backlog + 1
    }

    /// Waits until the current connection has synced and is live.
    pub async fn wait_live(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.shared.live_changed.notified();
            if self
                .shared
                .live
                .lock()
                .map(|l| l.is_some())
                .unwrap_or(false)
            {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                bail!("the daemon did not sync with the bench upstream within {limit:?}");
            }
        }
    }

    /// When the first `Sync` and the last batch of the current connection came and
    /// went.
    pub fn sync_window(&self) -> Option<(Instant, Instant)> {
        let first = (*self.shared.first_sync.lock().ok()?)?;
        let live = (*self.shared.live.lock().ok()?)?;
        Some((first, live))
    }

    /// The highest sequence number the daemon acknowledged (= committed).
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Acquire)
    }

    /// Waits until the daemon acknowledged `seq`; returns when that was seen.
    pub async fn wait_acked(&self, seq: u64, limit: Duration) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + limit;
        loop {
            let notified = self.shared.acked_changed.notified();
            if self.acked() >= seq {
                return Ok(Instant::now());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                bail!(
                    "the daemon acknowledged only {} of {seq} within {limit:?}",
                    self.acked()
                );
            }
        }
    }

    /// The live connection's write queue, for a pacer on its own thread.
    pub fn writer(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        self.shared.writer.lock().ok().and_then(|w| w.clone())
    }

    /// Queues already-encoded frames for the live connection.
    pub async fn push(&self, frames: Vec<u8>) -> anyhow::Result<()> {
        let writer = self.writer().context("no live connection to push on")?;
        writer
            .send(frames)
            .await
            .ok()
            .context("the daemon's connection closed")
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Appends the `Push` frame of `seq` (content stamped `ts_ns`) to `out`.
pub fn encode_push(seq: u64, ts_ns: u64, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let frame = ServerMsg::Push(entry(seq, ts_ns));
    rcim_proto::frame::encode_into(&frame, MAX_UPSTREAM_FRAME, out)?;
    Ok(())
}

/// Inbox entry `seq`: a 200-byte text content stamped `ts_ns`, with a
/// time-ordered uid (the order SQLite's unique index likes).
pub fn entry(seq: u64, ts_ns: u64) -> InboxEntry {
    InboxEntry {
        seq,
        message: WireMessage {
            uid: format!("BENCH-{:013X}-{seq:012X}", ts_ns / 1_000_000),
            conversation: ConversationKey::private(SENDER),
            sender: SENDER.into(),
            object_name: "RC:TxtMsg".into(),
            content: crate::payload::content(seq, ts_ns),
            sent_time_ms: i64::try_from(ts_ns / 1_000_000).unwrap_or(0),
        },
    }
}

async fn serve(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = FrameReader::new(read, MAX_UPSTREAM_FRAME);
    match reader.read::<ClientMsg>().await {
        Ok(Some(ClientMsg::Connect(_))) => {}
        _ => return,
    }
    let connack = ServerMsg::ConnAck(ConnAck {
        code: ConnAckCode::ACCEPTED,
        user_id: Some(shared.user.clone()),
        server_time_ms: i64::try_from(crate::payload::now_ns() / 1_000_000).unwrap_or(0),
    });
    let Ok(bytes) = encode(&connack, MAX_UPSTREAM_FRAME) else {
        return;
    };
    if write.write_all(&bytes).await.is_err() {
        return;
    }
    let (tx, mut queue) = mpsc::channel::<Vec<u8>>(1024);
    if let Ok(mut first) = shared.first_sync.lock() {
        *first = None;
    }
    if let Ok(mut live) = shared.live.lock() {
        *live = None;
    }
    if let Ok(mut writer) = shared.writer.lock() {
        *writer = Some(tx.clone());
    }
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64 * 1024);
        while let Some(first) = queue.recv().await {
            batch.extend_from_slice(&first);
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(more) => batch.extend_from_slice(&more),
                    Err(_) => break,
                }
            }
            if write.write_all(&batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    });
    while let Ok(Some(msg)) = reader.read::<ClientMsg>().await {
        match msg {
            ClientMsg::Sync { since_seq } => {
                if let Ok(mut first) = shared.first_sync.lock() {
                    first.get_or_insert_with(Instant::now);
                }
                let frame = match shared.batches.get(&since_seq) {
                    Some(frame) => frame.clone(),
                    None => {
                        // Not on a package boundary (never happens with rcimd,
                        // which commits whole packages): answer from the backlog.
                        let end = (since_seq + SYNC_PACKAGE as u64).min(shared.backlog);
                        let entries = (since_seq + 1..=end)
                            .map(|seq| entry(seq, crate::payload::now_ns()))
                            .collect();
                        let batch = ServerMsg::SyncBatch {
                            entries,
                            has_more: end < shared.backlog,
                        };
                        encode(&batch, MAX_UPSTREAM_FRAME).unwrap_or_default()
                    }
                };
                let last = since_seq + SYNC_PACKAGE as u64 >= shared.backlog;
                if tx.send(frame).await.is_err() {
                    break;
                }
                if last {
                    if let Ok(mut live) = shared.live.lock() {
                        live.get_or_insert_with(Instant::now);
                    }
                    shared.live_changed.notify_waiters();
                }
            }
            ClientMsg::Ack { seq } => {
                shared.acked.fetch_max(seq, Ordering::AcqRel);
                shared.acked_changed.notify_waiters();
            }
            ClientMsg::Ping => {
                if let Ok(bytes) = encode(&ServerMsg::Pong, MAX_UPSTREAM_FRAME) {
                    let _ = tx.send(bytes).await;
                }
            }
            ClientMsg::Publish(publish) => {
                let ack = ServerMsg::PubAck(PubAck {
                    req_id: publish.req_id,
                    code: 0,
                    message_uid: Some(format!("BENCH-OUT-{}", publish.req_id)),
                    sent_time_ms: i64::try_from(crate::payload::now_ns() / 1_000_000).unwrap_or(0),
                });
                if let Ok(bytes) = encode(&ack, MAX_UPSTREAM_FRAME) {
                    let _ = tx.send(bytes).await;
                }
            }
            // The bench never recalls or reads remote history; a server that
            // does not know the request says so rather than leaving it hanging.
            ClientMsg::Recall { req_id, .. } => {
                let refused = ServerMsg::RecallAck {
                    req_id,
                    code: rcim_proto::RcCode::RC_RECALLMESSAGE_PARAMETER_INVALID.0,
                    message: None,
                };
                if let Ok(bytes) = encode(&refused, MAX_UPSTREAM_FRAME) {
                    let _ = tx.send(bytes).await;
                }
            }
            ClientMsg::History { req_id, .. } => {
                let empty = ServerMsg::HistoryPage {
                    req_id,
                    code: 0,
                    messages: Vec::new(),
                    has_more: false,
                };
                if let Ok(bytes) = encode(&empty, MAX_UPSTREAM_FRAME) {
                    let _ = tx.send(bytes).await;
                }
            }
            ClientMsg::Disconnect { .. } | ClientMsg::Connect(_) => break,
            // The bench never sends status messages; a fake server has no one to
            // deliver them to.
            ClientMsg::PublishStatus(_) => {}
            // Nor conversation settings.
            ClientMsg::SetNotificationLevel { .. } => {}
        }
    }
    drop(tx);
    writer.abort();
}
