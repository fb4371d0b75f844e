//! The hub: owns the set of attached clients and fans events out to them.
//!
//! Each event is encoded once and offered to every live client's outbound queue
//! without waiting: a client whose queue is full (in frames, or over
//! [`MAX_QUEUED_BYTES`]) is marked *lagged* and gets nothing more from the hub; it
//! never blocks the link or the other clients. The link publishes a committed
//! batch with [`HubHandle::publish_all`]: one command, every frame encoded once
//! into one shared buffer, and one queue item per client for the whole batch
//! (a slice of that buffer), so a client's writer wakes once per batch, not once
//! per message. Its session, once the client has
//! drained what was queued, sends it `Lagged{resume_from}` and replays the missed
//! messages from the database.
//!
//! Replay (for a lagged client, or a client that asks with `Subscribe{since}`) has
//! no gap and no duplicate at the seam because the hub decides the switch back to
//! live: the session replays from the database up to the last message the hub has
//! published, asks again, and the hub turns the client live only when nothing newer
//! was published meanwhile ([`HubHandle::replay_step`]). Every message event is
//! committed to the database before it is published, so the database always holds
//! what the hub withheld.

use bytes::Bytes;
use rcim_proto::frame::{MAX_IPC_FRAME, encode_into};
use rcim_proto::ipc::{ClientEntry, DaemonFrame, Event};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};

/// Bytes queued for one client before it counts as lagged (4 MiB).
pub const MAX_QUEUED_BYTES: usize = 4 << 20;

/// Frames queued for one client before it counts as lagged.
pub const OUTBOUND_QUEUE: usize = 1024;

/// Who a client is, for logs and status.
#[derive(Clone, Debug)]
pub struct ClientInfo {
    /// Session number, unique for the daemon's life.
    pub id: u64,
    /// The name the client gave in its Hello.
    pub name: String,
    /// Its process id, when the OS tells.
    pub pid: Option<i64>,
}

impl std::fmt::Display for ClientInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "client #{} '{}' (pid {pid})", self.id, self.name),
            None => write!(f, "client #{} '{}'", self.id, self.name),
        }
    }
}

/// One client's outbound queue, counted in bytes as well as frames. Shared by the
/// hub (events), the session (responses, callbacks, replay) and the writer.
#[derive(Clone, Debug)]
pub struct Outbound {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
    /// Notified by the writer after each write, and when it ends.
    room: Arc<Notify>,
}

impl Outbound {
    /// A queue and the receiving end for the writer.
    pub fn channel() -> (Self, OutboundRx) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        let queued = Arc::new(AtomicUsize::new(0));
        let room = Arc::new(Notify::new());
        (
            Self {
                tx,
                queued: Arc::clone(&queued),
                room: Arc::clone(&room),
            },
            OutboundRx { rx, queued, room },
        )
    }

    /// Queues `bytes`, waiting for room (for the client's own replies): in frames,
    /// and in bytes, so a client that asks for big answers and does not read them
    /// holds at most [`MAX_QUEUED_BYTES`] of them here (one answer bigger than that
    /// still goes, alone). False when the client is gone.
    pub async fn send(&self, bytes: Bytes) -> bool {
        let len = bytes.len();
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let queued = self.queued.load(Ordering::Relaxed);
            if queued == 0 || queued + len <= MAX_QUEUED_BYTES {
                break;
            }
            if self.tx.is_closed() {
                return false;
            }
            room.await;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        if self.tx.send(bytes).await.is_err() {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Whether nothing is queued or being written.
    pub fn is_empty(&self) -> bool {
        self.queued.load(Ordering::Relaxed) == 0
    }

    /// Queues `bytes` if there is room in frames and bytes; never waits.
    fn try_send(&self, bytes: Bytes) -> Result<(), TrySendError<Bytes>> {
        let len = bytes.len();
        if self.queued.load(Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
            return Err(TrySendError::Full(bytes));
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        self.tx.try_send(bytes).inspect_err(|_| {
            self.queued.fetch_sub(len, Ordering::Relaxed);
        })
    }
}

/// The writer's end of an [`Outbound`] queue.
pub struct OutboundRx {
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
    room: Arc<Notify>,
}

impl Drop for OutboundRx {
    /// A sender waiting for room learns that the writer is gone.
    fn drop(&mut self) {
        self.rx.close();
        self.room.notify_waiters();
    }
}

impl OutboundRx {
    /// The next frame, waiting for one.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// The next frame if one is queued now.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.rx.try_recv().ok()
    }

    /// Marks `bytes` as written.
    pub fn written(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::Relaxed);
        self.room.notify_waiters();
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.load(Ordering::Relaxed) == 0
    }
}

/// How a session learns that its client lagged.
#[derive(Debug, Default)]
pub struct LagSignal {
    notify: Notify,
    resume_from: AtomicI64,
}

impl LagSignal {
    /// Waits until the hub marks the client lagged; returns the last message id
    /// that was queued for it.
    pub async fn lagged(&self) -> i64 {
        self.notify.notified().await;
        self.resume_from.load(Ordering::Relaxed)
    }
}

/// The answer to [`HubHandle::replay_step`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayStep {
    /// The client is live again: nothing was published after the point reached.
    Live,
    /// Replay from the database up to this message id, then ask again.
    UpTo(i64),
}

enum Command {
    Attach {
        info: ClientInfo,
        outbound: Outbound,
        lag: Arc<LagSignal>,
    },
    Detach {
        id: u64,
    },
    Publish(Vec<Event>),
    Withhold {
        id: u64,
        done: oneshot::Sender<()>,
    },
    ReplayStep {
        id: u64,
        reached: i64,
        reply: oneshot::Sender<ReplayStep>,
    },
    Clients {
        reply: oneshot::Sender<Vec<ClientEntry>>,
    },
}

/// A cloneable handle to the hub actor.
#[derive(Clone, Debug)]
pub struct HubHandle {
    commands: mpsc::UnboundedSender<Command>,
    attached: Arc<AtomicU32>,
}

impl HubHandle {
    /// Adds a live client; events are offered to `outbound` from now on, and `lag`
    /// is notified if it falls behind.
    pub fn attach(&self, info: ClientInfo, outbound: Outbound, lag: Arc<LagSignal>) {
        self.attached.fetch_add(1, Ordering::Relaxed);
        let _ = self.commands.send(Command::Attach {
            info,
            outbound,
            lag,
        });
    }

    /// Removes a client.
    pub fn detach(&self, id: u64) {
        self.attached.fetch_sub(1, Ordering::Relaxed);
        let _ = self.commands.send(Command::Detach { id });
    }

    /// Sends `event` to every live client.
    pub fn publish(&self, event: Event) {
        let _ = self.commands.send(Command::Publish(vec![event]));
    }

    /// Sends `events`, in order, to every live client: one command for the hub,
    /// the frames encoded once into one buffer, and one queue item per client
    /// (so one wake-up of its writer) for the whole batch.
    pub fn publish_all(&self, events: Vec<Event>) {
        if !events.is_empty() {
            let _ = self.commands.send(Command::Publish(events));
        }
    }

    /// Stops live events to a client that is about to be replayed to. Returns once
    /// the hub has done it, so every live event queued for the client before the
    /// replay is already in its queue (ahead of the replay), none after.
    pub async fn withhold(&self, id: u64) {
        let (done, ack) = oneshot::channel();
        let _ = self.commands.send(Command::Withhold { id, done });
        let _ = ack.await;
    }

    /// During a replay: the client has everything up to message id `reached`.
    /// Either turns it live (nothing newer was published) or says how far to
    /// replay next.
    pub async fn replay_step(&self, id: u64, reached: i64) -> ReplayStep {
        let (reply, answer) = oneshot::channel();
        let _ = self
            .commands
            .send(Command::ReplayStep { id, reached, reply });
        answer.await.unwrap_or(ReplayStep::Live)
    }

    /// The attached clients.
    pub async fn clients_list(&self) -> Vec<ClientEntry> {
        let (reply, answer) = oneshot::channel();
        let _ = self.commands.send(Command::Clients { reply });
        answer.await.unwrap_or_default()
    }

    /// Clients attached now.
    pub fn clients(&self) -> u32 {
        self.attached.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Gets events as they are published.
    Live,
    /// Fell behind; gets nothing until its session has replayed it.
    Lagged,
    /// Being replayed to from the database.
    Replaying,
}

struct Slot {
    info: ClientInfo,
    outbound: Outbound,
    lag: Arc<LagSignal>,
    mode: Mode,
    /// The last message id queued for this client.
    cursor: i64,
}

struct Hub {
    clients: HashMap<u64, Slot>,
    /// The last message id published.
    last_message: i64,
}

/// Starts the hub. It stops when every handle is gone.
pub fn spawn() -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (commands, mut inbox) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut hub = Hub {
            clients: HashMap::new(),
            last_message: 0,
        };
        while let Some(command) = inbox.recv().await {
            hub.handle(command);
        }
    });
    (
        HubHandle {
            commands,
            attached: Arc::default(),
        },
        task,
    )
}

impl Hub {
    fn handle(&mut self, command: Command) {
        match command {
            Command::Attach {
                info,
                outbound,
                lag,
            } => {
                let cursor = self.last_message;
                let slot = Slot {
                    info,
                    outbound,
                    lag,
                    mode: Mode::Live,
                    cursor,
                };
                self.clients.insert(slot.info.id, slot);
            }
            Command::Detach { id } => {
                self.clients.remove(&id);
            }
            Command::Publish(events) => self.fan_out(events),
            Command::Withhold { id, done } => {
                if let Some(slot) = self.clients.get_mut(&id) {
                    slot.mode = Mode::Replaying;
                }
                let _ = done.send(());
            }
            Command::ReplayStep { id, reached, reply } => {
                let step = match self.clients.get_mut(&id) {
                    Some(slot) if reached >= self.last_message => {
                        slot.mode = Mode::Live;
                        slot.cursor = reached.max(slot.cursor);
                        ReplayStep::Live
                    }
                    Some(_) => ReplayStep::UpTo(self.last_message),
                    None => ReplayStep::Live,
                };
                let _ = reply.send(step);
            }
            Command::Clients { reply } => {
                let mut list: Vec<_> = self
                    .clients
                    .values()
                    .map(|slot| ClientEntry {
                        id: slot.info.id,
                        name: slot.info.name.clone(),
                        pid: slot.info.pid,
                        lagged: slot.mode != Mode::Live,
                        last_seq: slot.cursor,
                    })
                    .collect();
                list.sort_by_key(|c| c.id);
                let _ = reply.send(list);
            }
        }
    }

    fn fan_out(&mut self, events: Vec<Event>) {
        // Every frame once, back to back in one buffer; `frames` says where each
        // ends and which message (if any) it carries.
        let mut buf = Vec::with_capacity(events.len() * 384);
        let mut frames: Vec<(usize, Option<i64>)> = Vec::with_capacity(events.len());
        for event in events {
            let seq = match &event {
                Event::MessageReceived { message, .. } => Some(message.id),
                _ => None,
            };
            match encode_into(&DaemonFrame::Event(event), MAX_IPC_FRAME, &mut buf) {
                Ok(()) => {
                    if let Some(seq) = seq {
                        self.last_message = self.last_message.max(seq);
                    }
                    frames.push((buf.len(), seq));
                }
                Err(e) => tracing::error!("cannot encode an event: {e}"),
            }
        }
        if frames.is_empty() {
            return;
        }
        let bytes = Bytes::from(buf);
        let last_seq = frames.iter().filter_map(|f| f.1).max();
        self.clients.retain(|_, slot| {
            if slot.mode != Mode::Live {
                return true;
            }
            let Some(item) = frames_for(&bytes, &frames, slot.cursor) else {
                return true;
            };
            match slot.outbound.try_send(item) {
                Ok(()) => {
                    if let Some(seq) = last_seq {
                        slot.cursor = slot.cursor.max(seq);
                    }
                    true
                }
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(
                        "{} is not keeping up: events after message {} will be replayed from the database",
                        slot.info,
                        slot.cursor
                    );
                    slot.mode = Mode::Lagged;
                    slot.lag.resume_from.store(slot.cursor, Ordering::Relaxed);
                    slot.lag.notify.notify_one();
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            }
        });
    }
}

/// What a client whose last queued message is `cursor` gets of an encoded batch:
/// every frame but the messages it already has (a replay may have read a message
/// from the database before the link published it; it is never sent twice).
/// Usually that is all of it, or a suffix (a slice of the shared buffer, no copy);
/// `None` when nothing is left.
fn frames_for(bytes: &Bytes, frames: &[(usize, Option<i64>)], cursor: i64) -> Option<Bytes> {
    let had = |seq: Option<i64>| seq.is_some_and(|seq| seq <= cursor);
    // Skip the leading frames the client has.
    let skip = frames.iter().take_while(|f| had(f.1)).count();
    let start = if skip == 0 { 0 } else { frames[skip - 1].0 };
    let rest = &frames[skip..];
    if rest.is_empty() {
        return None;
    }
    if !rest.iter().any(|f| had(f.1)) {
        return Some(bytes.slice(start..));
    }
    // A gap in the middle (a message it has after one it lacks): copy the frames
    // it needs. Message ids only grow within a batch, so this does not happen in
    // practice; it is here so the rule holds whatever the batch.
    let mut out = Vec::with_capacity(bytes.len() - start);
    let mut from = start;
    for &(end, seq) in rest {
        if !had(seq) {
            out.extend_from_slice(&bytes[from..end]);
        }
        from = end;
    }
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::message::{ConversationKey, Direction, Message, SentStatus};
    use rcim_proto::status::LinkState;

    fn info(id: u64) -> ClientInfo {
        ClientInfo {
            id,
            name: format!("c{id}"),
            pid: None,
        }
    }

    fn message(id: i64) -> Event {
        Event::MessageReceived {
            message: Message {
                id,
                uid: Some(format!("u{id}")),
                conversation: ConversationKey::private("bob"),
                sender: "bob".into(),
                object_name: "RC:TxtMsg".into(),
                content: "{}".into(),
                sent_time_ms: 0,
                received_time_ms: 0,
                direction: Direction::Receive,
                sent_status: SentStatus::Received,
                client_msg_id: None,
            },
            left: 0,
            offline: false,
            has_package: false,
        }
    }

    #[tokio::test]
    async fn a_full_client_lags_without_stopping_the_others() {
        let (hub, _task) = spawn();
        let (slow, mut slow_rx) = Outbound::channel();
        let (fast, mut fast_rx) = Outbound::channel();
        let slow_lag = Arc::new(LagSignal::default());
        hub.attach(info(1), slow, Arc::clone(&slow_lag));
        hub.attach(info(2), fast, Arc::default());
        assert_eq!(hub.clients(), 2);
        let total = OUTBOUND_QUEUE as i64 + 10;
        for id in 1..=total {
            hub.publish(message(id));
            // The fast client reads everything as it comes.
            let bytes = fast_rx.recv().await.unwrap();
            fast_rx.written(bytes.len());
        }
        let lagged =
            tokio::time::timeout(std::time::Duration::from_secs(5), slow_lag.lagged()).await;
        assert!(lagged.is_ok(), "the slow client was marked lagged");
        let clients = hub.clients_list().await;
        assert!(clients[0].lagged);
        assert_eq!(clients[0].last_seq, OUTBOUND_QUEUE as i64);
        assert!(!clients[1].lagged);
        assert_eq!(clients[1].last_seq, total);
        // Nothing more is queued for the lagged client.
        let mut queued = 0;
        while slow_rx.try_recv().is_some() {
            queued += 1;
        }
        assert_eq!(queued, OUTBOUND_QUEUE);
        hub.publish(Event::StatusChanged(LinkState::idle()));
        assert!(slow_rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn replay_turns_live_only_when_nothing_newer_was_published() {
        let (hub, _task) = spawn();
        let (out, _rx) = Outbound::channel();
        hub.attach(info(1), out, Arc::default());
        for id in 1..=3 {
            hub.publish(message(id));
        }
        hub.withhold(1).await;
        assert_eq!(hub.replay_step(1, 0).await, ReplayStep::UpTo(3));
        hub.publish(message(4));
        assert_eq!(hub.replay_step(1, 3).await, ReplayStep::UpTo(4));
        assert_eq!(hub.replay_step(1, 4).await, ReplayStep::Live);
        assert!(!hub.clients_list().await[0].lagged);
    }

    #[tokio::test]
    async fn the_byte_budget_counts() {
        let (out, mut rx) = Outbound::channel();
        let big = Bytes::from(vec![0u8; MAX_QUEUED_BYTES / 2 + 1]);
        assert!(out.try_send(big.clone()).is_ok());
        assert!(matches!(
            out.try_send(big.clone()),
            Err(TrySendError::Full(_))
        ));
        let got = rx.recv().await.unwrap();
        rx.written(got.len());
        assert!(out.try_send(big).is_ok());
    }

    /// The message ids of the event frames in one queued item.
    fn ids_in(bytes: &[u8]) -> Vec<Option<i64>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let frame: DaemonFrame = rcim_proto::frame::decode_body(&rest[4..4 + len]).unwrap();
            out.push(match frame {
                DaemonFrame::Event(Event::MessageReceived { message, .. }) => Some(message.id),
                _ => None,
            });
            rest = &rest[4 + len..];
        }
        out
    }

    #[tokio::test]
    async fn a_batch_is_one_queue_item_per_client_in_order() {
        let (hub, _task) = spawn();
        let (a, mut a_rx) = Outbound::channel();
        let (b, mut b_rx) = Outbound::channel();
        hub.attach(info(1), a, Arc::default());
        hub.attach(info(2), b, Arc::default());
        let mut batch: Vec<_> = (1..=5).map(message).collect();
        batch.push(Event::OfflineSyncCompleted);
        hub.publish_all(batch);
        hub.publish_all(Vec::new());
        for rx in [&mut a_rx, &mut b_rx] {
            let item = rx.recv().await.unwrap();
            assert_eq!(
                ids_in(&item),
                vec![Some(1), Some(2), Some(3), Some(4), Some(5), None]
            );
            rx.written(item.len());
            assert!(rx.try_recv().is_none(), "one item for the whole batch");
        }
        let clients = hub.clients_list().await;
        assert!(clients.iter().all(|c| c.last_seq == 5 && !c.lagged));
    }

    #[tokio::test]
    async fn a_client_replayed_into_a_batch_gets_only_what_it_lacks() {
        let (hub, _task) = spawn();
        let (out, mut rx) = Outbound::channel();
        hub.attach(info(1), out, Arc::default());
        hub.publish_all((1..=2).map(message).collect());
        let item = rx.recv().await.unwrap();
        rx.written(item.len());
        // The session replays; the database already has 3 and 4 when the hub turns
        // the client live again, then the link publishes 3..=6 (and a status).
        hub.withhold(1).await;
        hub.publish_all((3..=4).map(message).collect());
        assert_eq!(hub.replay_step(1, 4).await, ReplayStep::Live);
        let mut batch: Vec<_> = (3..=6).map(message).collect();
        batch.insert(1, Event::StatusChanged(LinkState::idle()));
        hub.publish_all(batch);
        let item = rx.recv().await.unwrap();
        assert_eq!(ids_in(&item), vec![None, Some(5), Some(6)]);
        // Nothing new for it at all: nothing queued.
        hub.withhold(1).await;
        assert_eq!(hub.replay_step(1, 9).await, ReplayStep::Live);
        hub.publish_all((7..=9).map(message).collect());
        hub.publish(Event::OfflineSyncCompleted);
        let item = rx.recv().await.unwrap();
        assert_eq!(ids_in(&item), vec![None]);
    }

    #[test]
    fn frames_for_skips_what_the_client_has() {
        let frames = [(10, Some(1)), (20, Some(2)), (30, None), (40, Some(3))];
        let bytes = Bytes::from((0..40u8).collect::<Vec<_>>());
        assert_eq!(frames_for(&bytes, &frames, 0).unwrap(), bytes);
        assert_eq!(frames_for(&bytes, &frames, 1).unwrap(), bytes.slice(10..));
        assert_eq!(frames_for(&bytes, &frames, 2).unwrap(), bytes.slice(20..));
        assert_eq!(frames_for(&bytes, &frames, 3).unwrap(), bytes.slice(20..30));
        // Out of order ids (never published so, but the rule holds).
        let odd = [(10, Some(5)), (20, Some(2)), (30, Some(6))];
        let got = frames_for(&bytes.slice(..30), &odd, 4).unwrap();
        assert_eq!(&got[..], &[&bytes[..10], &bytes[20..30]].concat()[..]);
        assert!(frames_for(&bytes.slice(..30), &odd, 6).is_none());
    }

    #[tokio::test]
    async fn a_batch_that_does_not_fit_lags_the_client_before_it() {
        let (hub, _task) = spawn();
        let (out, mut rx) = Outbound::channel();
        let lag = Arc::new(LagSignal::default());
        hub.attach(info(1), out, Arc::clone(&lag));
        hub.publish_all((1..=3).map(message).collect());
        // A batch over the byte budget on its own.
        let big: Vec<_> = (4..=1_000)
            .map(|id| match message(id) {
                Event::MessageReceived {
                    mut message,
                    left,
                    offline,
                    has_package,
                } => {
                    message.content = "x".repeat(8 * 1024);
                    Event::MessageReceived {
                        message,
                        left,
                        offline,
                        has_package,
                    }
                }
                other => other,
            })
            .collect();
        hub.publish_all(big);
        let resume = tokio::time::timeout(std::time::Duration::from_secs(5), lag.lagged())
            .await
            .unwrap();
        assert_eq!(resume, 3);
        let item = rx.recv().await.unwrap();
        assert_eq!(ids_in(&item), vec![Some(1), Some(2), Some(3)]);
        assert!(rx.try_recv().is_none());
    }
}
