//! The async [`Client`]: one attached session with `rcimd`, and the task that
//! demultiplexes what the daemon sends.
//!
//! One driver task per client owns the socket. A writer task (one per connection)
//! sends whole frames from a queue, so a caller that gives up mid-request can never
//! leave half a frame on the wire; the driver reads and routes every incoming frame
//! by kind: a `Response` to the oneshot of the request with its id, a `Callback` to
//! the channel of the call that registered it (before the request was sent, so no
//! callback can arrive unclaimed), an `Event` through the [`Sequencer`] (which drops
//! repeated messages, see [`crate::sequence`]) to the engine's observer and to a
//! broadcast that every [`Events`] stream reads. Responses and events are distinct
//! frame kinds, so an event is never taken for an answer.
//!
//! Calls with callbacks (`connect`, `send_message`) share one mechanism: each
//! registers a [`CallbackRoute`] with its [`CallKind`] before its request is
//! written. The route checks every callback for the call in the reader (of the
//! call's kind, in RC's order, the optional first one at most once), delivers it as
//! a [`Step`] and is forgotten after the last one. A route delivers to the channel
//! of the call's handle ([`ConnectCall`], [`SendCall`]) or to a hook that the
//! [`Engine`](crate::Engine) registers so that its callbacks keep their order with
//! the events, which it sees through an [`EventObserver`] in the same reader.
//!
//! When the daemon goes away the reader fails every waiting request with
//! [`ClientError::Disconnected`] and gives every call still waiting its last
//! callback, synthesized with code 30011 (RC_SOCKET_DISCONNECTED):
//! `Connected { code: 30011 }` for a `connect`, `MessageSent { code: 30011,
//! message: <the saved message, if any> }` for a send. So RC's "exactly one
//! onConnected / onMessageSent" promise holds.
//!
//! **Re-attach** ([`ClientOptions::reattach`]): instead of ending, the driver then
//! emits a synthesized `StatusChanged` (status `suspend`, code 30011), reconnects to
//! the socket with backoff, does the handshake again, sends `Subscribe` from the
//! last message id it passed on (before it routes anything from the new
//! connection), and emits a `StatusChanged` with the new daemon's status. Frames
//! queued for the old connection are never written to the new one (each carries its
//! connection's generation), so a request the app was told failed can never run
//! later.

use crate::error::ClientError;
use crate::events::{Events, Item};
use crate::message::{MAX_CONVERSATIONS_PER_QUERY, MAX_MESSAGES_PER_QUERY};
use crate::sequence::{Class, Pending, Sequencer};
use interprocess::local_socket::tokio::{Stream as LocalStream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use rcim_proto::frame::{self, MAX_IPC_FRAME};
use rcim_proto::ipc::{
    Callback, CallbackFrame, ClientEntry, ClientFrame, DaemonFrame, Event, Hello, Op, Reply,
    Request, Response, Welcome,
};
use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Message, TimeOrder, check_outgoing,
};
use rcim_proto::status::LinkState;
use rcim_proto::{
    ConnectionStatus, FrameError, FrameReader, PROTOCOL_VERSION, RcCode, StatusSnapshot, Token,
};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

/// How many events a slow [`Events`] stream may fall behind before it skips some
/// (is told so with [`Lagged`](crate::Lagged), and pages the skipped messages from
/// the daemon's database). As many as the daemon queues for one client.
pub(crate) const EVENT_BACKLOG: usize = 1024;

/// Frames queued for the writer task before `request` waits for room.
const WRITE_QUEUE: usize = 64;

/// How long the daemon has to answer `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often to retry while waiting for the daemon to start.
const ATTACH_RETRY: Duration = Duration::from_millis(50);

/// How to attach to `rcimd`.
///
/// ```
/// use rcim_client::{ClientOptions, ReattachPolicy};
/// use std::time::Duration;
///
/// let options = ClientOptions {
///     wait_for_daemon: Duration::from_secs(2),
///     reattach: Some(ReattachPolicy::default()),
///     ..ClientOptions::named("my-app")
/// };
/// assert_eq!(options.client_name, "my-app");
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The daemon's socket; `None` means
    /// [`default_socket_path`](rcim_proto::paths::default_socket_path), which honours
    /// `RCIM_SOCKET`.
    pub socket: Option<PathBuf>,
    /// A name for the daemon's logs and `rcimctl status`, e.g. the app's name.
    pub client_name: String,
    /// How long to keep retrying while nothing listens on the socket yet (the daemon
    /// may be starting together with the app). The default, zero, tries once and
    /// fails at once with [`ClientError::DaemonNotRunning`].
    pub wait_for_daemon: Duration,
    /// Whether and how to re-attach when the daemon connection drops (rcimd stopped
    /// or restarted). `None` (the default for [`Client`]): the client closes, its
    /// event streams end, and the app attaches again itself. `Some`: the client
    /// reconnects by itself and resumes every event stream where it was, without
    /// loss or repeat; see [`ReattachPolicy`]. (The [`Engine`](crate::Engine)
    /// re-attaches by default.)
    pub reattach: Option<ReattachPolicy>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            socket: None,
            client_name: "rcim-client".to_owned(),
            wait_for_daemon: Duration::ZERO,
            reattach: None,
        }
    }
}

impl ClientOptions {
    /// Options with this client name and every other field at its default.
    ///
    /// ```
    /// let options = rcim_client::ClientOptions::named("tray");
    /// assert!(options.reattach.is_none());
    /// ```
    pub fn named(client_name: impl Into<String>) -> Self {
        Self {
            client_name: client_name.into(),
            ..Self::default()
        }
    }

    /// The socket these options point at.
    ///
    /// ```
    /// let options = rcim_client::ClientOptions {
    ///     socket: Some("/tmp/x/rcimd.sock".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(options.socket_path(), std::path::Path::new("/tmp/x/rcimd.sock"));
    /// ```
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(rcim_proto::paths::default_socket_path)
    }
}

/// How a client re-attaches after losing the daemon ([`ClientOptions::reattach`]).
///
/// After the connection drops, the client waits `first_delay`, tries to connect and
/// handshake, and doubles the wait after each failure up to `max_delay`. It gives up
/// after `give_up_after` (then the client closes as if re-attach were off), or never
/// with `None`. It also gives up at once when the new daemon refuses it (another
/// protocol version, another user): retrying cannot help.
///
/// What the app sees: every call waiting at the moment of the drop fails as without
/// re-attach ([`ClientError::Disconnected`]; a `connect` or `send_message` waiting
/// for its last callback gets it with 30011); new calls fail with
/// [`ClientError::Disconnected`] until the client is back. Event streams and the
/// engine's listeners do not end: they get a synthesized
/// `StatusChanged(suspend, code 30011)` at the drop and a `StatusChanged` with the
/// new daemon's status once re-attached ([`Client::reattach_count`] counts the
/// re-attaches); the client then subscribes from the last message id it passed on,
/// so the messages stored meanwhile arrive next, once each, in order. (A client that
/// has not received any message yet resumes live: it has no position to resume
/// from.)
///
/// ```
/// use rcim_client::ReattachPolicy;
/// use std::time::Duration;
///
/// let policy = ReattachPolicy::default();
/// assert_eq!(policy.first_delay, Duration::from_millis(50));
/// assert_eq!(policy.max_delay, Duration::from_secs(2));
/// assert_eq!(policy.give_up_after, None);
/// let bounded = ReattachPolicy { give_up_after: Some(Duration::from_secs(30)), ..policy };
/// # drop(bounded);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReattachPolicy {
    /// The wait before the first try (default 50 ms).
    pub first_delay: Duration,
    /// The longest wait between tries (default 2 s).
    pub max_delay: Duration,
    /// How long to keep trying; `None` (the default) tries forever.
    pub give_up_after: Option<Duration>,
}

impl Default for ReattachPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            give_up_after: None,
        }
    }
}

/// An attached session with `rcimd`.
///
/// Cheap to clone; all clones share one socket. The socket closes when the last
/// clone and the last [`ConnectCall`] / [`SendCall`] are dropped. Closing it is not
/// a `disconnect`: the daemon stays connected for every other app.
///
/// ```no_run
/// use rcim_client::{Client, ClientOptions};
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = Client::attach(ClientOptions::named("my-app")).await?;
/// let status = client.status().await?;
/// println!("{} as {:?}", status.link.status, status.link.user_id);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    session: Arc<Session>,
}

/// What every clone of a [`Client`] shares.
#[derive(Debug)]
struct Session {
    socket: PathBuf,
    /// Encoded frames for the writer task. Dropping it (with every handle) ends the
    /// writer, which ends the driver, which closes the socket.
    outbox: mpsc::Sender<Outgoing>,
    routes: Arc<Routes>,
}

/// One encoded frame for the writer, tagged with the connection it was meant for.
#[derive(Debug)]
struct Outgoing {
    generation: u64,
    bytes: Vec<u8>,
}

/// Where incoming frames go; shared by the session, its driver task and its event
/// streams.
#[derive(Debug)]
pub(crate) struct Routes {
    table: Mutex<RouteTable>,
    link: watch::Sender<LinkState>,
    /// Request ids: the app's requests and the library's own `Subscribe`s.
    next_id: AtomicU64,
    /// How many app subscribes were registered (`explicit_log.len()`), lock-free.
    explicit_registered: AtomicU64,
    /// Successful re-attaches.
    reattaches: AtomicU64,
    /// The library's own requests (a lagged stream's `MessagesAfter`, the re-attach
    /// `Subscribe`): unbounded, so they are queued at once, under the lock.
    control: mpsc::UnboundedSender<Outgoing>,
}

#[derive(Debug)]
struct RouteTable {
    /// False while there is no daemon connection; nothing new may register.
    open: bool,
    /// True once the session is over for good (no re-attach will come).
    ended: bool,
    /// The current connection's number (0 for the first).
    generation: u64,
    /// The current connection's handshake answer.
    welcome: Welcome,
    replies: HashMap<u64, oneshot::Sender<Reply>>,
    callbacks: HashMap<u64, CallbackRoute>,
    /// Taken (dropped) when the session ends, which ends every [`Events`] stream.
    events: Option<broadcast::Sender<Item>>,
    /// Sees every event first, in the reader, in order (the [`Engine`]'s listeners).
    ///
    /// [`Engine`]: crate::Engine
    observer: Option<EventObserver>,
    /// Which messages to pass on.
    seq: Sequencer,
    /// Items broadcast so far (the number of the last one).
    broadcasts: u64,
}

/// A function the reader calls with every event, before the [`Events`] streams get
/// it. It runs inside the reader, so it must be quick and must not block; in
/// exchange it sees every event in order and can never lag.
pub(crate) struct EventObserver(pub(crate) Box<dyn FnMut(&Event) + Send>);

impl std::fmt::Debug for EventObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventObserver")
    }
}

/// The requests that take callbacks, and which callbacks each one takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// `connect`: at most one `DatabaseOpened`, then one `Connected`.
    Connect,
    /// `sendMessage`: at most one `MessageSaved`, then one `MessageSent`.
    SendMessage,
}

/// One callback of a call after the reader's checks: of the call's kind, in RC's
/// order, at most one of the first kind, exactly one last (synthesized with 30011
/// when the daemon goes away first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// `onDatabaseOpened(code)`.
    DatabaseOpened(i32),
    /// `onConnected(code, userId)`: the last step of a connect.
    Connected(i32, Option<String>),
    /// `onMessageSaved(message)`.
    Saved(Message),
    /// `onMessageSent(code, message)`: the last step of a send.
    Sent(Sent),
}

impl Step {
    fn is_last(&self) -> bool {
        matches!(self, Self::Connected(..) | Self::Sent(_))
    }
}

/// A function the reader calls with each [`Step`] of one call; like an
/// [`EventObserver`] it runs in the reader and must not block.
pub(crate) type StepHook = Box<dyn FnMut(Step) + Send>;

/// Where the steps of one call go: the channel of its handle ([`ConnectCall`],
/// [`SendCall`]), or a hook (the [`Engine`]'s callbacks, which must keep the order
/// of events and callbacks together).
///
/// [`Engine`]: crate::Engine
enum Sink {
    Channel(mpsc::UnboundedSender<Step>),
    Hook(StepHook),
}

impl Sink {
    /// Delivers `step`; false when nobody wants it any more (the handle was dropped).
    fn deliver(&mut self, step: Step) -> bool {
        match self {
            Self::Channel(tx) => tx.send(step).is_ok(),
            Self::Hook(hook) => {
                hook(step);
                true
            }
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Channel(_) => "Channel",
            Self::Hook(_) => "Hook",
        })
    }
}

/// The callbacks of one call: where they go and what the call has seen so far.
/// One mechanism for every kind of call; the kind only decides which callbacks fit.
#[derive(Debug)]
struct CallbackRoute {
    kind: CallKind,
    sink: Sink,
    /// Whether the first, optional callback (`DatabaseOpened`, `MessageSaved`) came.
    first_seen: bool,
    /// The `MessageSaved` message, for a synthesized `MessageSent`.
    saved: Option<Message>,
}

impl CallbackRoute {
    fn new(kind: CallKind, sink: Sink) -> Self {
        Self {
            kind,
            sink,
            first_seen: false,
            saved: None,
        }
    }

    /// Checks `callback` against the call's kind and order, and delivers it. True
    /// when the call is over: its last callback went out, or nobody listens.
    fn deliver(&mut self, id: u64, callback: Callback) -> bool {
        let step = match (self.kind, callback) {
            (CallKind::Connect, Callback::DatabaseOpened { code }) if !self.first_seen => {
                self.first_seen = true;
                Step::DatabaseOpened(code)
            }
            (CallKind::Connect, Callback::Connected { code, user_id }) => {
                Step::Connected(code, user_id)
            }
            (CallKind::SendMessage, Callback::MessageSaved { message }) if !self.first_seen => {
                self.first_seen = true;
                self.saved = Some(message.clone());
                Step::Saved(message)
            }
            (CallKind::SendMessage, Callback::MessageSent { code, message }) => Step::Sent(Sent {
                code,
                message: Some(message),
            }),
            (kind, callback) => {
                tracing::warn!(
                    id,
                    ?kind,
                    ?callback,
                    "rcimd sent a repeated callback, or one of another kind of call; ignoring it"
                );
                return false;
            }
        };
        let last = step.is_last();
        !self.sink.deliver(step) || last
    }

    /// The daemon went away before the last callback: delivers it, synthesized with
    /// 30011 (RC_SOCKET_DISCONNECTED).
    fn lost(mut self) {
        let code = RcCode::RC_SOCKET_DISCONNECTED.0;
        let step = match self.kind {
            CallKind::Connect => Step::Connected(code, None),
            CallKind::SendMessage => Step::Sent(Sent {
                code,
                message: self.saved.take(),
            }),
        };
        self.sink.deliver(step);
    }
}

impl Routes {
    fn lock(&self) -> MutexGuard<'_, RouteTable> {
        // A panic while holding the lock leaves the maps consistent (every operation
        // is a single insert or remove), so a poisoned lock is still usable.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Routes one frame from the daemon. `Err` means the session must end.
    fn route(&self, frame: DaemonFrame) -> Result<(), String> {
        match frame {
            DaemonFrame::Response(Response { id, reply }) => {
                let mut table = self.lock();
                // A rejected call gets no callbacks: forget its route now, so its
                // handle sees the end at once.
                if matches!(reply, Reply::Code(code) if code != 0) {
                    table.callbacks.remove(&id);
                }
                let subscribed = match &reply {
                    Reply::Code(code) => table.seq.answered(id, *code),
                    _ => None,
                };
                match table.replies.remove(&id) {
                    // The caller may have given up waiting; that is fine.
                    Some(tx) => drop(tx.send(reply)),
                    // The library's own Subscribe has no waiter.
                    None if subscribed.is_some() => {}
                    None => tracing::warn!(id, "rcimd answered a request we did not send"),
                }
            }
            DaemonFrame::Callback(CallbackFrame { id, callback }) => {
                let mut table = self.lock();
                let Some(route) = table.callbacks.get_mut(&id) else {
                    tracing::warn!(id, ?callback, "callback for no pending call; ignoring it");
                    return Ok(());
                };
                if route.deliver(id, callback) {
                    table.callbacks.remove(&id);
                }
            }
            DaemonFrame::Event(event) => {
                if let Event::StatusChanged(state) = &event {
                    self.link.send_replace(state.clone());
                }
                self.lock().event(event);
            }
            DaemonFrame::Welcome(_) | DaemonFrame::Refused(_) => {
                return Err("sent a second handshake frame".to_owned());
            }
        }
        Ok(())
    }

    /// The connection is gone: fails waiting requests and gives every call still
    /// waiting its last callback (synthesized, 30011). Without `reattaching` the
    /// session is over: every event stream ends. With it, the streams and the
    /// observer stay and get a synthesized `StatusChanged(suspend, 30011)`.
    fn connection_lost(&self, reattaching: bool) {
        let (routes, observer) = {
            let mut table = self.lock();
            let was_open = table.open;
            table.open = false;
            // Dropping the senders makes every waiting request see Disconnected.
            table.replies.clear();
            table.seq.connection_lost();
            let routes = table.callbacks.drain().collect::<Vec<_>>();
            if reattaching {
                if was_open {
                    let state = LinkState {
                        status: ConnectionStatus::Suspend,
                        code: RcCode::RC_SOCKET_DISCONNECTED.0,
                        attempt: 0,
                        retry_in_ms: None,
                        ..self.link.borrow().clone()
                    };
                    self.link.send_replace(state.clone());
                    table.event(Event::StatusChanged(state));
                }
                (routes, None)
            } else {
                table.ended = true;
                table.events = None;
                (routes, table.observer.take())
            }
        };
        // Outside the lock: hooks may drop the last handle of the session.
        for (_, route) in routes {
            route.lost();
        }
        drop(observer);
    }

    /// A new connection (number `generation`) completed its handshake: opens the
    /// table again, tells the streams and the observer, and returns the `Subscribe`
    /// to send first, when there is a position to resume from. Call before anything
    /// from the new connection is routed.
    fn reattached(&self, welcome: Welcome, generation: u64) -> Option<Outgoing> {
        let mut table = self.lock();
        table.open = true;
        table.generation = generation;
        let state = welcome.status.link.clone();
        table.welcome = welcome;
        self.reattaches.fetch_add(1, Ordering::Relaxed);
        let (since, explicit) = table.seq.resume_point();
        let subscribe = since.and_then(|since| {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            table.seq.pending.insert(id, Pending { since, explicit });
            encode_request(id, Op::Subscribe { since_seq: since })
                .map(|bytes| Outgoing { generation, bytes })
        });
        self.link.send_replace(state.clone());
        table.event(Event::StatusChanged(state));
        subscribe
    }

    /// A new event stream: its starting position and the app subscribes it counts
    /// as applied.
    pub(crate) fn stream_start(&self) -> (Option<i64>, u64) {
        let table = self.lock();
        (table.seq.last, table.seq.explicit_log.len() as u64)
    }

    /// The `since_seq` of the app subscribes with ordinals in `(from, to]`.
    pub(crate) fn explicit_sinces(&self, from: u64, to: u64) -> Vec<i64> {
        let table = self.lock();
        let log = &table.seq.explicit_log;
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(log.len());
        let to = usize::try_from(to).unwrap_or(usize::MAX).min(log.len());
        log.get(from..to).map(<[i64]>::to_vec).unwrap_or_default()
    }

    /// Whether an app subscribe registered after ordinal `after` will move a stream
    /// at `position` forward or back (so the stream must drop older messages and
    /// take them from that subscribe's replay).
    pub(crate) fn subscribe_ahead(&self, after: u64, position: Option<i64>) -> bool {
        if self.explicit_registered.load(Ordering::Acquire) <= after {
            return false;
        }
        self.explicit_sinces(after, u64::MAX)
            .into_iter()
            .any(|since| since != i64::MIN && position.is_none_or(|p| p < since))
    }

    /// The first message id the client ever passed on.
    pub(crate) fn first_message(&self) -> Option<i64> {
        self.lock().seq.first
    }

    /// How many app subscribes have been answered.
    pub(crate) fn explicit_answered(&self) -> u64 {
        self.lock().seq.explicit_answered
    }

    /// The daemon's connection status as last reported, and the number of the last
    /// item broadcast: every status event up to that number is older than it.
    pub(crate) fn link_state(&self) -> (LinkState, u64) {
        let table = self.lock();
        (self.link.borrow().clone(), table.broadcasts)
    }

    /// Asks the daemon for up to `limit` stored messages after `since` (for a
    /// stream that lagged), on the library's own queue.
    pub(crate) fn messages_after(&self, since: i64, limit: u32) -> Pull {
        let mut table = self.lock();
        if table.ended {
            return Pull::Ended;
        }
        if !table.open {
            return Pull::Detached;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let Some(bytes) = encode_request(
            id,
            Op::MessagesAfter {
                since_seq: since,
                limit,
            },
        ) else {
            return Pull::Ended;
        };
        let (tx, rx) = oneshot::channel();
        table.replies.insert(id, tx);
        let _ = self.control.send(Outgoing {
            generation: table.generation,
            bytes,
        });
        Pull::Sent(rx)
    }
}

/// What [`Routes::messages_after`] did.
#[derive(Debug)]
pub(crate) enum Pull {
    /// Sent; the answer comes on this channel (dropped if the connection goes).
    Sent(oneshot::Receiver<Reply>),
    /// No daemon connection now; a re-attach may bring one.
    Detached,
    /// The session is over.
    Ended,
}

impl RouteTable {
    /// Passes one event on: through the sequencer for messages, then to the
    /// observer and the streams.
    fn event(&mut self, event: Event) {
        let mut to_observer = true;
        match &event {
            Event::MessageReceived { message, .. } => match self.seq.classify(message.id) {
                Class::New => {}
                Class::Replay => to_observer = false,
                Class::Drop => return,
            },
            // The daemon replays what this client missed after `resume_from`.
            Event::Lagged { resume_from } => self.seq.open_window(*resume_from),
            Event::StatusChanged(_) | Event::OfflineSyncCompleted => {}
        }
        if to_observer && let Some(EventObserver(observe)) = &mut self.observer {
            observe(&event);
        }
        self.broadcast(event);
    }

    fn broadcast(&mut self, event: Event) {
        if let Some(tx) = &self.events {
            self.broadcasts += 1;
            // No subscriber is not an error; a lagging one skips, never blocks.
            let _ = tx.send(Item {
                number: self.broadcasts,
                explicit: self.seq.explicit_answered,
                event: Arc::new(event),
            });
        }
    }
}

/// Encodes a request frame; `None` (logged) if it cannot be (never for the small
/// frames the library sends by itself).
fn encode_request(id: u64, op: Op) -> Option<Vec<u8>> {
    frame::encode(&ClientFrame::Request(Request { id, op }), MAX_IPC_FRAME)
        .inspect_err(|e| tracing::error!(error = %e, "cannot encode a request"))
        .ok()
}

/// The socket shared by the reader and the writer task: `&LocalStream` reads and
/// writes, so an [`Arc`] gives each task its own handle without splitting.
#[derive(Clone, Debug)]
struct SharedStream(Arc<LocalStream>);

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut &*self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut &*self.0).poll_shutdown(cx)
    }
}

impl Client {
    /// Attaches to `rcimd`: connects to its socket and does the Hello/Welcome
    /// handshake.
    ///
    /// Fails with [`ClientError::DaemonNotRunning`] when nothing listens (after
    /// retrying for [`ClientOptions::wait_for_daemon`]), [`ClientError::AccessDenied`]
    /// when the socket is not ours, [`ClientError::ProtocolMismatch`] or
    /// [`ClientError::Refused`] when the daemon will not talk to us.
    ///
    /// Must be called inside a tokio runtime: it spawns the driver task.
    ///
    /// ```no_run
    /// use rcim_client::{Client, ClientError, ClientOptions};
    /// # async fn run() {
    /// match Client::attach(ClientOptions::named("my-app")).await {
    ///     Ok(client) => println!("attached to rcimd {}", client.welcome().daemon_version),
    ///     Err(err @ ClientError::DaemonNotRunning { .. }) => eprintln!("{err}"),
    ///     Err(err) => eprintln!("cannot use rcimd: {err}"),
    /// }
    /// # }
    /// ```
    pub async fn attach(options: ClientOptions) -> Result<Client, ClientError> {
        Ok(Self::attach_with_events(options).await?.0)
    }

    /// [`Client::attach`], plus an event stream made before the reader starts: it
    /// misses no event sent after the Welcome, so a status listener that starts from
    /// [`Welcome::status`] sees every change.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use rcim_client::{Client, ClientOptions, Event};
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let (client, mut events) = Client::attach_with_events(ClientOptions::named("tray")).await?;
    /// let mut status = client.welcome().status.link.status;
    /// while let Some(Ok(event)) = events.next().await {
    ///     if let Event::StatusChanged(state) = event {
    ///         status = state.status;
    ///         println!("status: {status}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn attach_with_events(
        options: ClientOptions,
    ) -> Result<(Client, Events), ClientError> {
        Self::attach_observed(options, |_| None).await
    }

    /// [`Client::attach_with_events`] and [`Client::connect`] in one round trip to
    /// the daemon: the `connect` request goes out in the same write as the Hello,
    /// so an app that connects first thing (the usual start) waits for one answer
    /// instead of two. The call is the same as `connect` after `attach`: its code,
    /// then `onDatabaseOpened` and `onConnected`. A token that fails the local
    /// argument check attaches anyway and returns a call rejected with 33003,
    /// without sending the token.
    ///
    /// ```no_run
    /// use rcim_client::{Client, ClientOptions, Token};
    /// # async fn run(token: Token) -> Result<(), rcim_client::ClientError> {
    /// let (client, _events, call) =
    ///     Client::attach_and_connect(ClientOptions::named("my-app"), token, 30).await?;
    /// let connected = call.connected().await;
    /// println!("onConnected({}) as {:?}", connected.code, connected.user_id);
    /// # drop(client);
    /// # Ok(()) }
    /// ```
    pub async fn attach_and_connect(
        options: ClientOptions,
        token: Token,
        timeout_secs: i32,
    ) -> Result<(Client, Events, ConnectCall), ClientError> {
        if let Err(why) = token.check_argument() {
            tracing::debug!(why, "connect refused locally");
            let (client, events) = Self::attach_with_events(options).await?;
            let call = ConnectCall::new(client.rejected(RcCode::INVALID_PARAMETER.0));
            return Ok((client, events, call));
        }
        let op = Op::Connect {
            token,
            timeout_secs,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (client, events, answer) =
            Self::attach_calling(options, |_| None, op, CallKind::Connect, Sink::Channel(tx))
                .await?;
        let code = answer.code().await?;
        let call = ConnectCall::new(client.answered(code, rx));
        Ok((client, events, call))
    }

    /// [`Client::attach_with_events`], with an observer (made from the Welcome) that
    /// sees every event in the reader before any stream does.
    pub(crate) async fn attach_observed(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
    ) -> Result<(Client, Events), ClientError> {
        Self::attach_inner(options, observer, None).await
    }

    /// [`Client::attach_observed`] that also makes a call with callbacks, written
    /// in the same write as the Hello (see [`Client::attach_calling`]); its steps go
    /// to `hook`, as with [`Client::call_with_hook`]. Returns once attached; the
    /// call's immediate code comes from the [`FirstAnswer`].
    pub(crate) async fn attach_observed_calling(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
        op: Op,
        kind: CallKind,
        hook: StepHook,
    ) -> Result<(Client, FirstAnswer), ClientError> {
        let (client, _events, answer) =
            Self::attach_calling(options, observer, op, kind, Sink::Hook(hook)).await?;
        Ok((client, answer))
    }

    /// Attaches and makes a call with callbacks, written in the same write as the
    /// Hello: attach and the call's answer cost one round trip to the daemon
    /// instead of two. Its steps go to `sink`.
    async fn attach_calling(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
        op: Op,
        kind: CallKind,
        sink: Sink,
    ) -> Result<(Client, Events, FirstAnswer), ClientError> {
        let socket = options.socket_path();
        let bytes = frame::encode(
            &ClientFrame::Request(Request {
                id: FIRST_CALL_ID,
                op,
            }),
            MAX_IPC_FRAME,
        )
        .map_err(|e| ClientError::from_frame(&socket, e))?;
        let (reply, answer) = oneshot::channel();
        let first = FirstCall {
            bytes,
            reply,
            route: CallbackRoute::new(kind, sink),
        };
        let (client, events) = Self::attach_inner(options, observer, Some(first)).await?;
        Ok((client, events, FirstAnswer { kind, answer }))
    }

    async fn attach_inner(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
        first: Option<FirstCall>,
    ) -> Result<(Client, Events), ClientError> {
        let dial = Dial {
            socket: options.socket_path(),
            client_name: options.client_name,
            reattach: options.reattach,
        };
        let (connection, welcome) = dial
            .connect(
                options.wait_for_daemon,
                first.as_ref().map(|f| f.bytes.as_slice()),
            )
            .await?;
        let mut replies = HashMap::new();
        let mut callbacks = HashMap::new();
        if let Some(first) = first {
            replies.insert(FIRST_CALL_ID, first.reply);
            callbacks.insert(FIRST_CALL_ID, first.route);
        }

        let (events, first_subscriber) = broadcast::channel(EVENT_BACKLOG);
        let (control, control_rx) = mpsc::unbounded_channel();
        let routes = Arc::new(Routes {
            table: Mutex::new(RouteTable {
                open: true,
                ended: false,
                generation: 0,
                observer: observer(&welcome),
                welcome: welcome.clone(),
                replies,
                callbacks,
                events: Some(events),
                seq: Sequencer::default(),
                broadcasts: 0,
            }),
            link: watch::Sender::new(welcome.status.link.clone()),
            next_id: AtomicU64::new(FIRST_CALL_ID + 1),
            explicit_registered: AtomicU64::new(0),
            reattaches: AtomicU64::new(0),
            control,
        });
        let (outbox, queue) = mpsc::channel(WRITE_QUEUE);
        let events = Events::new(Some((first_subscriber, Arc::clone(&routes))));
        let queues = Queues {
            queue,
            control: control_rx,
        };
        let socket = dial.socket.clone();
        tokio::spawn(drive(connection, queues, Arc::clone(&routes), dial));
        let client = Client {
            session: Arc::new(Session {
                socket,
                outbox,
                routes,
            }),
        };
        Ok((client, events))
    }

    /// The daemon's handshake answer: its version, protocol, and the status at the
    /// moment of attaching (of the last re-attach, with [`ClientOptions::reattach`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let welcome = client.welcome();
    /// println!("rcimd {} (protocol {})", welcome.daemon_version, welcome.protocol);
    /// # Ok(()) }
    /// ```
    pub fn welcome(&self) -> Welcome {
        self.session.routes.lock().welcome.clone()
    }

    /// How many times this client re-attached after losing the daemon (always 0
    /// without [`ClientOptions::reattach`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.reattach_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn reattach_count(&self) -> u64 {
        self.session.routes.reattaches.load(Ordering::Relaxed)
    }

    /// The id of the last `MessageReceived` this client passed on (to the engine's
    /// listener and its event streams), or the `since_seq` of a later
    /// [`Client::subscribe`] that skipped forward; `None` before any.
    ///
    /// Message ids are the daemon's local sequence numbers: they only grow, so a
    /// message with an id at or below this one was passed on already (or skipped on
    /// request) and is never passed on again. Keep it to resume in a later run with
    /// [`Client::subscribe`]. Each [`Events`] stream has its own position too
    /// ([`Events::last_message_id`]), which is this one unless the stream lags
    /// behind.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if let Some(seq) = client.last_seq() {
    ///     std::fs::write("last-seq", seq.to_string()).ok();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn last_seq(&self) -> Option<i64> {
        self.session.routes.lock().seq.last
    }

    /// Has the daemon replay every stored received message with an id above
    /// `since_seq` (its local sequence number; 0 replays everything), then continue
    /// live: the app gets what arrived while it was not running, with no gap and no
    /// repeat at the seam. Returns the daemon's code (0) once it has started the
    /// replay; the messages come as `MessageReceived` events on [`Client::events`]
    /// streams and the engine's listener.
    ///
    /// Every event stream whose position is below `since_seq` (a stream made at
    /// attach, before any message) moves to it: it drops what its buffer still holds
    /// from before and yields the replay, each message once, in order. A stream
    /// already past `since_seq` goes on where it is (nothing it yielded comes again).
    /// So call it right after attaching, with the id the app last processed:
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use rcim_client::{Client, ClientOptions, Event};
    /// # async fn run(saved_seq: i64) -> Result<(), rcim_client::ClientError> {
    /// let (client, mut events) = Client::attach_with_events(ClientOptions::named("bot")).await?;
    /// assert_eq!(client.subscribe(saved_seq).await?, 0);
    /// while let Some(Ok(event)) = events.next().await {
    ///     if let Event::MessageReceived { message, .. } = event {
    ///         // Ids only grow: saved_seq + 1 and later, each once.
    ///         println!("{}", message.id);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, since_seq: i64) -> Result<i32, ClientError> {
        let since = since_seq.max(0);
        let routes = &self.session.routes;
        let id = routes.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = frame::encode(
            &ClientFrame::Request(Request {
                id,
                op: Op::Subscribe { since_seq: since },
            }),
            MAX_IPC_FRAME,
        )
        .map_err(|e| ClientError::from_frame(&self.session.socket, e))?;
        let (tx, rx) = oneshot::channel();
        {
            // Registered and queued under one lock, so the reader knows of it before
            // anything it causes can arrive, and a caller giving up cannot leave it
            // registered but unsent.
            let mut table = routes.lock();
            if !table.open {
                return Err(ClientError::Disconnected);
            }
            table.replies.insert(id, tx);
            table.seq.register_explicit(id, since);
            routes
                .explicit_registered
                .store(table.seq.explicit_log.len() as u64, Ordering::Release);
            let generation = table.generation;
            if routes.control.send(Outgoing { generation, bytes }).is_err() {
                return Err(ClientError::Disconnected);
            }
        }
        match rx.await.map_err(|_| ClientError::Disconnected)? {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected("Subscribe", &other)),
        }
    }

    /// Who is attached to the daemon: each client's session number, name, process
    /// id, whether it lags, and the last message id queued for it.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// for c in client.clients().await? {
    ///     println!("#{} {} pid {:?} lagged {} last {}", c.id, c.name, c.pid, c.lagged, c.last_seq);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn clients(&self) -> Result<Vec<ClientEntry>, ClientError> {
        match self.request(Op::Clients, None).await? {
            Reply::Clients(clients) => Ok(clients),
            other => Err(unexpected("Clients", &other)),
        }
    }

    /// The socket this client is attached to.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// println!("attached to {}", client.socket().display());
    /// # Ok(()) }
    /// ```
    pub fn socket(&self) -> &Path {
        &self.session.socket
    }

    /// The latest link state known to this client: the one in the Welcome, then
    /// each `StatusChanged` event as the reader task sees it. No round trip.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let link = client.link_state();
    /// println!("{} (code {})", link.status, link.code);
    /// # Ok(()) }
    /// ```
    pub fn link_state(&self) -> LinkState {
        self.session.routes.link.borrow().clone()
    }

    /// Whether the daemon connection is gone; every call then fails with
    /// [`ClientError::Disconnected`]. Without [`ClientOptions::reattach`] that is
    /// for good and a new [`Client::attach`] is needed; with it, the client is
    /// re-attaching (see [`Client::is_ended`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if client.is_closed() {
    ///     eprintln!("rcimd went away");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_closed(&self) -> bool {
        !self.session.routes.lock().open
    }

    /// Whether the session is over for good: the daemon went away and the client
    /// will not re-attach (re-attach is off, or it gave up). Its event streams have
    /// ended.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert!(!client.is_ended());
    /// # Ok(()) }
    /// ```
    pub fn is_ended(&self) -> bool {
        self.session.routes.lock().ended
    }

    /// Asks the daemon for its full status.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let status = client.status().await?;
    /// println!("rcimd {}: {} to {}", status.daemon_version, status.link.status, status.server);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<StatusSnapshot, ClientError> {
        match self.request(Op::Status, None).await? {
            Reply::Status(snapshot) => Ok(snapshot),
            other => Err(unexpected("Status", &other)),
        }
    }

    /// RC's `connect(token, timeout)`.
    ///
    /// Returns once the daemon has answered: [`ConnectCall::code`] is 0 when the
    /// connect was accepted (callbacks follow, read them with
    /// [`ConnectCall::next_callback`] or [`ConnectCall::connected`]) and an RC error
    /// code when it was rejected (no callback will come). A token that is empty,
    /// blank, longer than 2048 bytes or contains whitespace is rejected here with
    /// 33003 (INVALID_PARAMETER) without asking the daemon.
    ///
    /// `timeout_secs` ≤ 0 keeps trying until success or a terminal error; > 0 gives up
    /// with 34006 after that many seconds.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// if call.is_accepted() {
    ///     let done = call.connected().await;
    ///     println!("onConnected {} {:?}", done.code, done.user_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        &self,
        token: Token,
        timeout_secs: i32,
    ) -> Result<ConnectCall, ClientError> {
        if let Err(why) = token.check_argument() {
            tracing::debug!(why, "connect refused locally");
            return Ok(ConnectCall::new(self.rejected(RcCode::INVALID_PARAMETER.0)));
        }
        let op = Op::Connect {
            token,
            timeout_secs,
        };
        Ok(ConnectCall::new(self.call(op, CallKind::Connect).await?))
    }

    /// RC's `sendMessage(message, callback)`.
    ///
    /// Returns once the daemon has answered: [`SendCall::code`] is 0 when the message
    /// was accepted, and then the callbacks follow: `MessageSaved` (the message is in
    /// the daemon's outbox, status sending, with its local id) and exactly one
    /// `MessageSent` (0 with the server's uid and sent time, or the RC error). Read
    /// them with [`SendCall::next_callback`], [`SendCall::saved`] and
    /// [`SendCall::sent`]. A non-zero code means the message was rejected and no
    /// callback will come: 33003 (INVALID_PARAMETER) here, without asking the
    /// daemon, when [`check_outgoing`] refuses the arguments (an unsendable
    /// conversation type, a bad target id or object name, content over 128 KB);
    /// otherwise the daemon's code (33002: no database, e.g. before the first
    /// `connect`).
    ///
    /// The daemon keeps the message in its outbox until the server has it: a send
    /// while disconnected is saved at once and sent after the next (re)connect, even
    /// across a daemon restart. If this client loses the daemon before
    /// `MessageSent`, the call ends with a synthesized `MessageSent` with code 30011
    /// (RC_SOCKET_DISCONNECTED) carrying the saved message if `MessageSaved` came,
    /// and no message otherwise. That 30011 means "this app will not hear how it
    /// ended", not "it failed": a saved message is still in the outbox.
    ///
    /// ```no_run
    /// use rcim_client::{Client, ClientOptions, ConversationKey, TEXT_MESSAGE, text_content};
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = Client::attach(ClientOptions::named("my-app")).await?;
    /// let mut call = client
    ///     .send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))
    ///     .await?;
    /// if let Some(saved) = call.saved().await {
    ///     println!("saved as local message {}", saved.id);
    /// }
    /// let sent = call.sent().await;
    /// match sent.code {
    ///     0 => println!("sent: {:?}", sent.message.and_then(|m| m.uid)),
    ///     code => println!("not sent: {}", rcim_client::RcCode(code)),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn send_message(
        &self,
        conversation: ConversationKey,
        object_name: &str,
        content: &str,
    ) -> Result<SendCall, ClientError> {
        if let Err(why) = check_outgoing(&conversation, object_name, content) {
            tracing::debug!(why, "sendMessage refused locally");
            return Ok(SendCall::new(self.rejected(RcCode::INVALID_PARAMETER.0)));
        }
        let op = Op::SendMessage {
            conversation,
            object_name: object_name.to_owned(),
            content: content.to_owned(),
        };
        Ok(SendCall::new(self.call(op, CallKind::SendMessage).await?))
    }

    /// RC's `getMessages`: up to `count` messages of one conversation from the
    /// daemon's database.
    ///
    /// With [`TimeOrder::Before`], messages sent before `sent_time_ms`, newest first
    /// (0 means "from the newest"); with [`TimeOrder::After`], messages sent after
    /// it, oldest first. The outer `Result` is about reaching the daemon; the inner
    /// one is the daemon's answer: the messages, or an RC code (33003 bad argument,
    /// 33002 no database). A `count` outside 1..=20 or an empty target id is
    /// `Ok(Err(33003))` at once, without asking the daemon.
    ///
    /// ```no_run
    /// use rcim_client::{Client, ClientOptions, ConversationKey, TimeOrder, text_of};
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = Client::attach(ClientOptions::named("my-app")).await?;
    /// match client.get_messages(ConversationKey::private("bob"), 0, TimeOrder::Before, 20).await? {
    ///     Ok(messages) => {
    ///         for m in messages {
    ///             println!("{}: {}", m.sender, text_of(&m).unwrap_or_else(|| m.object_name.clone()));
    ///         }
    ///     }
    ///     Err(code) => println!("getMessages failed: {}", rcim_client::RcCode(code)),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_messages(
        &self,
        conversation: ConversationKey,
        sent_time_ms: i64,
        order: TimeOrder,
        count: u32,
    ) -> Result<Result<Vec<Message>, i32>, ClientError> {
        if !(1..=MAX_MESSAGES_PER_QUERY).contains(&count) || conversation.target_id.is_empty() {
            tracing::debug!(count, "getMessages refused locally");
            return Ok(Err(RcCode::INVALID_PARAMETER.0));
        }
        let op = Op::GetMessages {
            conversation,
            sent_time_ms,
            order,
            count,
        };
        match self.request(op, None).await? {
            Reply::Messages(messages) => Ok(Ok(messages)),
            Reply::Code(code) if code != 0 => Ok(Err(code)),
            other => Err(unexpected("GetMessages", &other)),
        }
    }

    /// RC's `getConversations`: up to `count` conversations of the given types
    /// (empty: all), most recent first, whose newest message is older than
    /// `start_time_ms` (0: from the most recent), each with its unread count and
    /// last message.
    ///
    /// Results as for [`Client::get_messages`]; a `count` outside 1..=50 is
    /// `Ok(Err(33003))` at once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if let Ok(conversations) = client.get_conversations(&[], 0, 50).await? {
    ///     for c in conversations {
    ///         println!("{} unread with {}", c.unread_count, c.key.target_id);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_conversations(
        &self,
        types: &[ConversationType],
        start_time_ms: i64,
        count: u32,
    ) -> Result<Result<Vec<Conversation>, i32>, ClientError> {
        if !(1..=MAX_CONVERSATIONS_PER_QUERY).contains(&count) {
            tracing::debug!(count, "getConversations refused locally");
            return Ok(Err(RcCode::INVALID_PARAMETER.0));
        }
        let op = Op::GetConversations {
            types: types.to_vec(),
            start_time_ms,
            count,
        };
        match self.request(op, None).await? {
            Reply::Conversations(conversations) => Ok(Ok(conversations)),
            Reply::Code(code) if code != 0 => Ok(Err(code)),
            other => Err(unexpected("GetConversations", &other)),
        }
    }

    /// RC's `clearUnreadCount`: the messages of `conversation` received up to
    /// `timestamp_ms` (0: all of them) count as read. Returns the daemon's RC code
    /// (0 on success); an empty target id is 33003 at once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let code = client.clear_unread_count(rcim_client::ConversationKey::private("bob"), 0).await?;
    /// assert_eq!(code, 0);
    /// # Ok(()) }
    /// ```
    pub async fn clear_unread_count(
        &self,
        conversation: ConversationKey,
        timestamp_ms: i64,
    ) -> Result<i32, ClientError> {
        if conversation.target_id.is_empty() {
            return Ok(RcCode::INVALID_PARAMETER.0);
        }
        let op = Op::ClearUnreadCount {
            conversation,
            timestamp_ms,
        };
        match self.request(op, None).await? {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected("ClearUnreadCount", &other)),
        }
    }

    /// RC's `disconnect(receivePush)`: signs this device out for every local app.
    /// Returns the daemon's RC code (0 on success).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.disconnect(true).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn disconnect(&self, receive_push: bool) -> Result<i32, ClientError> {
        match self.request(Op::Disconnect { receive_push }, None).await? {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected("Disconnect", &other)),
        }
    }

    /// Signs this device out (no push) and deletes the token the daemon stored, so it
    /// does not connect again at its next start. Returns the daemon's RC code.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.logout().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn logout(&self) -> Result<i32, ClientError> {
        match self.request(Op::Logout, None).await? {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected("Logout", &other)),
        }
    }

    /// A stream of the daemon's events, from now on: `StatusChanged`,
    /// `MessageReceived` (RC's `onMessageReceived(message, left, offline,
    /// hasPackage)`, after the message is committed to the daemon's database),
    /// `OfflineSyncCompleted`, and `Lagged` when the daemon found this client too
    /// slow (it then replays what the client missed by itself; the replay is
    /// invisible except for that notice).
    ///
    /// Every stream gets every message exactly once and in order of `message.id`:
    /// messages repeated by a replay are dropped. Each stream has its own buffer of
    /// 1,024 events; one that falls further behind skips them, yields
    /// `Err(`[`Lagged`](crate::Lagged)`)` saying how many, and then pages the
    /// messages it skipped from the daemon's database at the pace it is read, so it
    /// still gets all of them (status changes are not stored; the stream yields the
    /// current status once it has caught up). A slow stream never stalls the reader,
    /// the answers to requests, or the other streams.
    ///
    /// The stream ends when the session does: when the daemon goes away, or, with
    /// [`ClientOptions::reattach`], when re-attaching gives up. While re-attaching it
    /// yields a synthesized `StatusChanged` (`suspend`, code 30011) and, once back,
    /// one with the new daemon's status, then the messages stored meanwhile.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use rcim_client::{Client, ClientOptions, Event};
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = Client::attach(ClientOptions::named("notifier")).await?;
    /// let mut events = client.events();
    /// while let Some(item) = events.next().await {
    ///     match item {
    ///         Ok(Event::MessageReceived { message, .. }) => println!("new message {}", message.id),
    ///         Ok(Event::StatusChanged(state)) => println!("status {}", state.status),
    ///         Ok(_) => {}
    ///         Err(lagged) => eprintln!("{lagged} (the messages are replayed)"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Events {
        let routes = &self.session.routes;
        let rx = routes
            .lock()
            .events
            .as_ref()
            .map(broadcast::Sender::subscribe);
        Events::new(rx.map(|rx| (rx, Arc::clone(routes))))
    }

    /// Sends a request that takes callbacks of `kind`, registering their channel
    /// first, and interprets the daemon's immediate `Reply::Code`.
    async fn call(&self, op: Op, kind: CallKind) -> Result<CallState, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let code = self.start_call(op, kind, Sink::Channel(tx)).await?;
        Ok(self.answered(code, rx))
    }

    /// The state of a call the daemon answered with `code`: its steps come on
    /// `steps` when it was accepted, none otherwise.
    fn answered(&self, code: i32, steps: mpsc::UnboundedReceiver<Step>) -> CallState {
        CallState {
            code,
            steps: (code == 0).then_some(steps),
            _session: Arc::clone(&self.session),
        }
    }

    /// Sends a request that takes callbacks of `kind` and hands each of its
    /// [`Step`]s to `hook`, in the reader, in the order of every other frame.
    /// Returns the daemon's immediate code; no step follows a non-zero one.
    /// The caller checks the arguments first.
    pub(crate) async fn call_with_hook(
        &self,
        op: Op,
        kind: CallKind,
        hook: StepHook,
    ) -> Result<i32, ClientError> {
        self.start_call(op, kind, Sink::Hook(hook)).await
    }

    /// The shared part of every call with callbacks: registers the route, sends, and
    /// reads the immediate `Reply::Code`.
    async fn start_call(&self, op: Op, kind: CallKind, sink: Sink) -> Result<i32, ClientError> {
        let reply = self
            .request(op, Some(CallbackRoute::new(kind, sink)))
            .await?;
        call_code(kind, reply)
    }

    /// The state of a call rejected with `code`: no callback will come.
    fn rejected(&self, code: i32) -> CallState {
        CallState {
            code,
            steps: None,
            _session: Arc::clone(&self.session),
        }
    }

    /// Sends one request and waits for its response. `callbacks` is registered
    /// before the request is written, so no callback can beat it.
    async fn request(
        &self,
        op: Op,
        callbacks: Option<CallbackRoute>,
    ) -> Result<Reply, ClientError> {
        let session = &self.session;
        let id = session.routes.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = frame::encode(&ClientFrame::Request(Request { id, op }), MAX_IPC_FRAME)
            .map_err(|e| ClientError::from_frame(&session.socket, e))?;
        let (tx, rx) = oneshot::channel();
        let generation = {
            let mut table = session.routes.lock();
            if !table.open {
                return Err(ClientError::Disconnected);
            }
            table.replies.insert(id, tx);
            if let Some(route) = callbacks {
                table.callbacks.insert(id, route);
            }
            table.generation
        };
        let outgoing = Outgoing { generation, bytes };
        if session.outbox.send(outgoing).await.is_err() {
            return Err(ClientError::Disconnected);
        }
        rx.await.map_err(|_| ClientError::Disconnected)
    }
}

fn unexpected(op: &str, reply: &Reply) -> ClientError {
    ClientError::Protocol(format!("answered {op} with {reply:?}"))
}

/// Connects to the socket, retrying while nothing listens until `wait` has passed.
async fn connect_with_retry(socket: &Path, wait: Duration) -> Result<LocalStream, ClientError> {
    let deadline = Instant::now() + wait;
    loop {
        let attempt = match socket.to_fs_name::<GenericFilePath>() {
            Ok(name) => LocalStream::connect(name).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                let err = ClientError::from_connect(socket.to_owned(), e);
                let starting = matches!(err, ClientError::DaemonNotRunning { .. });
                if !starting || Instant::now() + ATTACH_RETRY > deadline {
                    return Err(err);
                }
                tokio::time::sleep(ATTACH_RETRY).await;
            }
        }
    }
}

/// Reads the daemon's answer to Hello.
async fn handshake(
    reader: &mut FrameReader<SharedStream>,
    socket: &Path,
) -> Result<Welcome, ClientError> {
    let first = reader
        .read::<DaemonFrame>()
        .await
        .map_err(|e| ClientError::from_frame(socket, e))?;
    match first {
        Some(DaemonFrame::Welcome(welcome)) if welcome.protocol == PROTOCOL_VERSION => Ok(welcome),
        Some(DaemonFrame::Welcome(welcome)) => Err(ClientError::ProtocolMismatch {
            client: PROTOCOL_VERSION,
            daemon: welcome.protocol,
        }),
        Some(DaemonFrame::Refused(refused)) if refused.protocol != PROTOCOL_VERSION => {
            Err(ClientError::ProtocolMismatch {
                client: PROTOCOL_VERSION,
                daemon: refused.protocol,
            })
        }
        Some(DaemonFrame::Refused(refused)) => Err(ClientError::Refused(refused.reason)),
        Some(other) => Err(ClientError::Protocol(format!(
            "sent {other:?} before Welcome"
        ))),
        None => Err(ClientError::Disconnected),
    }
}

/// The request id of a call written with the Hello ([`Client::attach_calling`]).
const FIRST_CALL_ID: u64 = 1;

/// A call written with the Hello, and where its answer and steps go.
struct FirstCall {
    /// The encoded request, id [`FIRST_CALL_ID`].
    bytes: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    route: CallbackRoute,
}

/// The immediate answer to a call written with the Hello, still to come.
pub(crate) struct FirstAnswer {
    kind: CallKind,
    answer: oneshot::Receiver<Reply>,
}

impl FirstAnswer {
    /// The call's immediate code (`Disconnected` if the daemon went away first).
    pub(crate) async fn code(self) -> Result<i32, ClientError> {
        call_code(
            self.kind,
            self.answer.await.map_err(|_| ClientError::Disconnected)?,
        )
    }
}

/// The immediate code of a call with callbacks of `kind`, from the daemon's reply.
fn call_code(kind: CallKind, reply: Reply) -> Result<i32, ClientError> {
    match reply {
        Reply::Code(code) => Ok(code),
        other => Err(unexpected(&format!("{kind:?}"), &other)),
    }
}

/// Where the client attaches, and whether it re-attaches.
#[derive(Debug)]
struct Dial {
    socket: PathBuf,
    client_name: String,
    reattach: Option<ReattachPolicy>,
}

/// One daemon connection after its handshake.
struct Connection {
    stream: SharedStream,
    reader: FrameReader<SharedStream>,
}

impl Dial {
    /// Connects (retrying for `wait` while nothing listens) and does the handshake.
    /// `first` (an encoded request) goes out in the Hello's write: the daemon reads
    /// it after the Hello, so its answer follows the Welcome; a daemon that refuses
    /// the Hello closes the connection without reading it.
    async fn connect(
        &self,
        wait: Duration,
        first: Option<&[u8]>,
    ) -> Result<(Connection, Welcome), ClientError> {
        let socket = &self.socket;
        let stream = SharedStream(Arc::new(connect_with_retry(socket, wait).await?));
        // Events come in bursts (a committed batch is one write of hundreds of
        // frames): one read takes up to 64 KiB of them.
        let mut reader = FrameReader::new(stream.clone(), MAX_IPC_FRAME).read_chunk(64 * 1024);
        let hello = ClientFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client_name: self.client_name.clone(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        });
        let mut bytes =
            frame::encode(&hello, MAX_IPC_FRAME).map_err(|e| ClientError::from_frame(socket, e))?;
        bytes.extend_from_slice(first.unwrap_or_default());
        let welcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            stream
                .clone()
                .write_all(&bytes)
                .await
                .map_err(|e| ClientError::from_frame(socket, FrameError::Io(e)))?;
            handshake(&mut reader, socket).await
        })
        .await
        .map_err(|_| ClientError::HandshakeTimeout {
            socket: socket.clone(),
            after_ms: u64::try_from(HANDSHAKE_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        })??;
        Ok((Connection { stream, reader }, welcome))
    }

    /// Tries to attach again with `policy`'s backoff. `None` when it gives up, or
    /// when every handle of the client is gone (nobody needs it any more).
    async fn reattach(
        &self,
        policy: ReattachPolicy,
        queues: &mut Queues,
    ) -> Option<(Connection, Welcome)> {
        let started = Instant::now();
        let mut delay = policy.first_delay;
        loop {
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    // Frames queued for the lost connection are dropped unsent.
                    frame = queues.queue.recv() => {
                        frame?;
                    }
                }
            }
            match self.connect(Duration::ZERO, None).await {
                Ok(attached) => {
                    tracing::info!(socket = %self.socket.display(), "re-attached to rcimd");
                    return Some(attached);
                }
                Err(
                    err @ (ClientError::DaemonNotRunning { .. }
                    | ClientError::Disconnected
                    | ClientError::HandshakeTimeout { .. }
                    | ClientError::Io { .. }
                    | ClientError::Frame(_)),
                ) => {
                    tracing::debug!(error = %err, ?delay, "rcimd is not back yet");
                }
                Err(err) => {
                    tracing::error!(error = %err, "cannot re-attach to rcimd; giving up");
                    return None;
                }
            }
            if policy
                .give_up_after
                .is_some_and(|limit| started.elapsed() >= limit)
            {
                tracing::warn!(
                    socket = %self.socket.display(),
                    "rcimd did not come back; giving up re-attaching"
                );
                return None;
            }
            delay = (delay * 2).min(policy.max_delay.max(policy.first_delay));
        }
    }
}

/// The writer's queues, handed from one connection to the next.
struct Queues {
    /// The app's requests; ends when every handle is dropped.
    queue: mpsc::Receiver<Outgoing>,
    /// The library's own requests; written first.
    control: mpsc::UnboundedReceiver<Outgoing>,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The daemon went away, broke the protocol, or a write failed.
    Lost,
    /// Every handle of the client is gone.
    HandlesGone,
}

/// The client's driver: runs each connection, and re-attaches after one is lost
/// when the options say so. Ends the session when it returns.
async fn drive(mut connection: Connection, mut queues: Queues, routes: Arc<Routes>, dial: Dial) {
    let mut generation = 0;
    loop {
        let (returned, end) = run_connection(connection, queues, &routes, generation).await;
        let Some(returned) = returned else { break };
        queues = returned;
        if end == End::HandlesGone {
            break;
        }
        let Some(policy) = dial.reattach else { break };
        routes.connection_lost(true);
        let Some((next, welcome)) = dial.reattach(policy, &mut queues).await else {
            break;
        };
        generation += 1;
        connection = next;
        if let Some(subscribe) = routes.reattached(welcome, generation) {
            let _ = routes.control.send(subscribe);
        }
    }
    routes.connection_lost(false);
}

/// Runs one connection: a writer task for the queues, the reader here. Returns the
/// queues (`None` if the writer panicked) and why the connection ended.
async fn run_connection(
    connection: Connection,
    queues: Queues,
    routes: &Routes,
    generation: u64,
) -> (Option<Queues>, End) {
    let Connection { stream, reader } = connection;
    let (stop, stopped) = oneshot::channel::<()>();
    let mut writer = tokio::spawn(write_loop(stream, queues, generation, stopped));
    let read = read_loop(reader, routes);
    tokio::pin!(read);
    let finished = tokio::select! {
        () = &mut read => {
            drop(stop);
            match (&mut writer).await {
                Ok((queues, End::HandlesGone)) => return (Some(queues), End::HandlesGone),
                Ok((queues, End::Lost)) => return (Some(queues), End::Lost),
                Err(_) => None,
            }
        }
        finished = &mut writer => finished.ok(),
    };
    match finished {
        Some((queues, end)) => (Some(queues), end),
        None => (None, End::Lost),
    }
}

/// Writes queued frames of this connection's `generation` (the library's own
/// first) until the app's queue closes (every handle dropped), the socket fails, or
/// the reader says stop. Returns the queues for the next connection.
async fn write_loop(
    mut stream: SharedStream,
    mut queues: Queues,
    generation: u64,
    mut stop: oneshot::Receiver<()>,
) -> (Queues, End) {
    let end = loop {
        let outgoing = tokio::select! {
            biased;
            _ = &mut stop => break End::Lost,
            Some(outgoing) = queues.control.recv() => outgoing,
            outgoing = queues.queue.recv() => match outgoing {
                Some(outgoing) => outgoing,
                None => break End::HandlesGone,
            },
        };
        if outgoing.generation != generation {
            // Meant for a connection that is gone: its caller was told so.
            continue;
        }
        if let Err(e) = stream.write_all(&outgoing.bytes).await {
            tracing::debug!(error = %e, "writing to rcimd failed");
            break End::Lost;
        }
    };
    (queues, end)
}

/// Routes frames until the daemon closes or breaks the protocol.
async fn read_loop(mut reader: FrameReader<SharedStream>, routes: &Routes) {
    loop {
        match reader.read::<DaemonFrame>().await {
            Ok(Some(frame)) => {
                if let Err(why) = routes.route(frame) {
                    tracing::warn!(%why, "rcimd broke the protocol; closing the session");
                    return;
                }
            }
            Ok(None) => {
                tracing::debug!("rcimd closed the connection");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading from rcimd failed; closing the session");
                return;
            }
        }
    }
}

/// What every call handle holds: its immediate code and the channel of its checked
/// [`Step`]s. The kind-specific handles ([`ConnectCall`], [`SendCall`]) present the
/// steps in their own types.
#[derive(Debug)]
struct CallState {
    code: i32,
    /// `None` once the last step was delivered, and from the start for a rejected
    /// call.
    steps: Option<mpsc::UnboundedReceiver<Step>>,
    /// Keeps the session open until the handle is dropped.
    _session: Arc<Session>,
}

impl CallState {
    /// The next step; `None` once the call is over. The reader always delivers a
    /// last step (synthesized when the daemon goes away), but should the channel
    /// end without one, `lost` is that last step. Cancel-safe.
    async fn recv(&mut self, lost: impl FnOnce() -> Step) -> Option<Step> {
        let rx = self.steps.as_mut()?;
        let step = rx.recv().await.unwrap_or_else(lost);
        if step.is_last() {
            self.steps = None;
        }
        Some(step)
    }
}

/// One accepted (or rejected) `connect`: its immediate code, then its callbacks.
///
/// Holds the session open until dropped, so the callbacks still arrive when every
/// [`Client`] clone is gone.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// let mut call = client.connect(rcim_client::Token::new("token"), 30).await?;
/// while let Some(callback) = call.next_callback().await {
///     println!("{callback:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConnectCall {
    state: CallState,
}

/// How a `connect` ended: its `onConnected`, plus the `onDatabaseOpened` before it.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
/// let rcim_client::Connected { code, user_id, database_opened } = call.connected().await;
/// println!("{code} {user_id:?} {database_opened:?}");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connected {
    /// 0 when connected, otherwise the RC error (the immediate code for a rejected
    /// call, 30011 when the daemon went away).
    pub code: i32,
    /// The connected user, on success.
    pub user_id: Option<String>,
    /// The `onDatabaseOpened` code, if that callback came.
    pub database_opened: Option<i32>,
}

impl ConnectCall {
    fn new(state: CallState) -> Self {
        Self { state }
    }

    /// The immediate result: 0 accepted (callbacks follow), otherwise the RC error
    /// and no callback will come.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// println!("connect returned {}", call.code());
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> i32 {
        self.state.code
    }

    /// Whether the daemon accepted the call.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// if !call.is_accepted() {
    ///     eprintln!("{}", rcim_client::RcCode(call.code()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_accepted(&self) -> bool {
        self.state.code == 0
    }

    /// The next callback, in RC's order: at most one `DatabaseOpened`, then exactly
    /// one `Connected`; `None` after that, and from the start for a rejected call.
    ///
    /// If the daemon goes away first, the `Connected` is synthesized with code 30011
    /// (RC_SOCKET_DISCONNECTED). Cancel-safe.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let mut call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// if let Some(rcim_client::Callback::DatabaseOpened { code }) = call.next_callback().await {
    ///     println!("onDatabaseOpened {code}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_callback(&mut self) -> Option<Callback> {
        let lost = || Step::Connected(RcCode::RC_SOCKET_DISCONNECTED.0, None);
        loop {
            match self.state.recv(lost).await? {
                Step::DatabaseOpened(code) => return Some(Callback::DatabaseOpened { code }),
                Step::Connected(code, user_id) => {
                    return Some(Callback::Connected { code, user_id });
                }
                // The reader routes only this call's kind here.
                Step::Saved(_) | Step::Sent(_) => {}
            }
        }
    }

    /// Waits for the end of the call and reports it. For a rejected call this is the
    /// immediate code at once (no callback came).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// let done = call.connected().await;
    /// println!("{}", rcim_client::RcCode(done.code));
    /// # Ok(()) }
    /// ```
    pub async fn connected(mut self) -> Connected {
        let mut database_opened = None;
        while let Some(callback) = self.next_callback().await {
            match callback {
                Callback::DatabaseOpened { code } => database_opened = Some(code),
                Callback::Connected { code, user_id } => {
                    return Connected {
                        code,
                        user_id,
                        database_opened,
                    };
                }
                Callback::MessageSaved { .. } | Callback::MessageSent { .. } => {}
            }
        }
        Connected {
            code: self.state.code,
            user_id: None,
            database_opened,
        }
    }
}

/// One accepted (or rejected) `send_message`: its immediate code, then
/// `onMessageSaved` and `onMessageSent`.
///
/// Holds the session open until dropped, so the callbacks still arrive when every
/// [`Client`] clone is gone. Dropping it does not cancel the send: the message is in
/// the daemon's outbox.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
/// while let Some(step) = call.next_callback().await {
///     println!("{step:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SendCall {
    state: CallState,
    /// The `MessageSaved` message, once it came.
    saved: Option<Message>,
    /// The outcome, once `MessageSent` came (or was synthesized).
    outcome: Option<Sent>,
    /// Whether [`SendCall::next_callback`] has handed out the outcome.
    outcome_delivered: bool,
}

/// One callback of a [`SendCall`], in RC's order.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
/// match call.next_callback().await {
///     Some(rcim_client::SendStep::Saved(m)) => println!("saved as {}", m.id),
///     Some(rcim_client::SendStep::Sent(sent)) => println!("sent: {}", sent.code),
///     None => println!("rejected: {}", call.code()),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendStep {
    /// `onMessageSaved(message)`: in the daemon's outbox, status sending, with its
    /// local id.
    Saved(Message),
    /// `onMessageSent(code, message)`: the last callback.
    Sent(Sent),
}

/// How a `send_message` ended: RC's `onMessageSent(code, message)`.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
/// let rcim_client::Sent { code, message } = call.sent().await;
/// println!("{code}: {:?}", message.and_then(|m| m.uid));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// 0 when the server has the message; otherwise the RC error: the immediate
    /// code for a rejected call, 30011 (RC_SOCKET_DISCONNECTED) when this client
    /// lost the daemon first (synthesized; a saved message stays in the outbox), or
    /// the daemon's code.
    pub code: i32,
    /// The message as stored now: on success with the server's uid and sent time.
    /// `None` for a rejected call, and for a synthesized 30011 when no
    /// `MessageSaved` came.
    pub message: Option<Message>,
}

impl SendCall {
    fn new(state: CallState) -> Self {
        Self {
            state,
            saved: None,
            outcome: None,
            outcome_delivered: false,
        }
    }

    /// The immediate result: 0 accepted (callbacks follow), otherwise the RC error
    /// (33003 bad argument, 33002 no database, …) and no callback will come.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// println!("sendMessage returned {}", call.code());
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> i32 {
        self.state.code
    }

    /// Whether the daemon accepted the message.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// assert!(call.is_accepted());
    /// # Ok(()) }
    /// ```
    pub fn is_accepted(&self) -> bool {
        self.state.code == 0
    }

    /// Reads the next step into `saved` / `outcome`; `None` when the call is over
    /// (or was rejected). Returns the saved message when that was the step.
    async fn advance(&mut self) -> Option<Option<Message>> {
        let saved = self.saved.clone();
        let lost = move || {
            Step::Sent(Sent {
                code: RcCode::RC_SOCKET_DISCONNECTED.0,
                message: saved,
            })
        };
        match self.state.recv(lost).await? {
            Step::Saved(message) => {
                self.saved = Some(message.clone());
                Some(Some(message))
            }
            Step::Sent(sent) => {
                self.outcome = Some(sent);
                Some(None)
            }
            // The reader routes only this call's kind here.
            Step::DatabaseOpened(_) | Step::Connected(..) => Some(None),
        }
    }

    /// The next callback, in RC's order: at most one [`SendStep::Saved`], then
    /// exactly one [`SendStep::Sent`]; `None` after that, and from the start for a
    /// rejected call.
    ///
    /// If the daemon goes away first, the `Sent` is synthesized with code 30011 and
    /// the saved message (if any). Cancel-safe.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// while let Some(step) = call.next_callback().await {
    ///     println!("{step:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_callback(&mut self) -> Option<SendStep> {
        loop {
            if let Some(outcome) = &self.outcome {
                if self.outcome_delivered {
                    return None;
                }
                self.outcome_delivered = true;
                return Some(SendStep::Sent(outcome.clone()));
            }
            if let Some(saved) = self.advance().await? {
                return Some(SendStep::Saved(saved));
            }
        }
    }

    /// Waits for `onMessageSaved` and returns its message (again, if it already
    /// came); `None` when the call ends without one (rejected, or the daemon went
    /// away first). A `MessageSent` met on the way is kept for
    /// [`SendCall::next_callback`] and [`SendCall::sent`]. Cancel-safe.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// if let Some(saved) = call.saved().await {
    ///     println!("in the outbox as {}", saved.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn saved(&mut self) -> Option<Message> {
        while self.saved.is_none() && self.outcome.is_none() {
            self.advance().await?;
        }
        self.saved.clone()
    }

    /// Waits for the end of the call and reports it (`onMessageSent`). For a
    /// rejected call this is the immediate code at once, with no message.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// let sent = call.sent().await;
    /// println!("{}", sent.code);
    /// # Ok(()) }
    /// ```
    pub async fn sent(mut self) -> Sent {
        while self.outcome.is_none() {
            if self.advance().await.is_none() {
                break;
            }
        }
        self.outcome.take().unwrap_or(Sent {
            code: self.state.code,
            message: None,
        })
    }
}
