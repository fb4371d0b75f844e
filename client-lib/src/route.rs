//! The route table: where each frame from the daemon goes, and the broadcast every
//! event stream reads.
//!
//! The driver's reader hands every incoming frame to [`Routes::route`], which
//! routes it by kind: a `Response` to the oneshot of the request with its id, a
//! `Callback` to the call that registered it (before the request was sent, so no
//! callback can arrive unclaimed), an `Event` through the [`Sequencer`] (which drops
//! repeated messages, see [`crate::sequence`]) to the engine's observer and to the
//! broadcast of [`Item`]s that every [`Events`](crate::Events) stream reads. This
//! module owns that broadcast; the streams only read it. Responses and events are
//! distinct frame kinds, so an event is never taken for an answer.
//!
//! Calls with callbacks (`connect`, `send_message`) share one mechanism: each
//! registers a [`CallbackRoute`] with its [`CallKind`] before its request is
//! written. The route checks every callback for the call in the reader (of the
//! call's kind, in RC's order, the optional first one at most once), delivers it as
//! a [`Step`] and is forgotten after the last one. A route delivers to the channel
//! of the call's handle ([`ConnectCall`](crate::ConnectCall),
//! [`SendCall`](crate::SendCall)) or to a hook that the [`Engine`](crate::Engine)
//! registers so that its callbacks keep their order with the events, which it sees
//! through an [`EventObserver`] in the same reader.
//!
//! When the daemon goes away, [`Routes::connection_lost`] fails every waiting
//! request (its oneshot is dropped: `Disconnected`) and gives every call still
//! waiting its last callback, synthesized with code 30011 (RC_SOCKET_DISCONNECTED):
//! `Connected(30011)` for a `connect`, `Sent(30011, <the saved message, if any>)`
//! for a send. So RC's "exactly one onConnected / onMessageSent" promise holds.

use crate::error::ClientError;
use crate::sequence::{Class, Sequencer};
use rcim_proto::frame::{self, MAX_IPC_FRAME};
use rcim_proto::ipc::{
    Callback, CallbackFrame, ClientFrame, DaemonFrame, Event, Op, Reply, Request, Response, Welcome,
};
use rcim_proto::message::Message;
use rcim_proto::status::LinkState;
use rcim_proto::{ConnectionStatus, RcCode};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// How many events a slow [`Events`](crate::Events) stream may fall behind before it
/// skips some (is told so with [`Lagged`](crate::Lagged), and pages the skipped
/// messages from the daemon's database). As many as the daemon queues for one
/// client.
pub(crate) const EVENT_BACKLOG: usize = 1024;

/// What the reader broadcasts to every [`Events`](crate::Events) stream.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// Its number: items are numbered from 1 in the order they were broadcast.
    pub(crate) number: u64,
    /// How many app subscribes had been answered when this was sent.
    pub(crate) explicit: u64,
    /// The event, shared: the buffer drops its reference once every stream has
    /// read the item, so the last stream to read it (usually the only one) takes it
    /// without copying.
    pub(crate) event: Arc<Event>,
}

/// The request id of a call written in the same write as the Hello; every other
/// request gets a later one.
pub(crate) const FIRST_CALL_ID: u64 = 1;

/// One encoded frame for the writer, tagged with the connection it was meant for.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The number of the connection it was queued for (0 for the first).
    pub(crate) generation: u64,
    /// The encoded frame.
    pub(crate) bytes: Vec<u8>,
}

/// The daemon sent a frame the protocol does not allow after the handshake; the
/// session must end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Violation {
    /// A `Welcome` or `Refused` after the handshake.
    #[error("rcimd sent a second handshake frame ({0}) after its Welcome")]
    SecondHandshake(&'static str),
}

/// Where incoming frames go; shared by the session, its driver task and its event
/// streams.
#[derive(Debug)]
pub(crate) struct Routes {
    table: Mutex<RouteTable>,
    link: watch::Sender<LinkState>,
    /// Request ids: the app's requests and the library's own `Subscribe`s.
    next_id: AtomicU64,
    /// How many app subscribes were registered (the sequencer's count), lock-free.
    explicit_registered: AtomicU64,
    /// Successful re-attaches.
    reattaches: AtomicU64,
    /// The library's own requests (a lagged stream's `MessagesAfter`, the re-attach
    /// `Subscribe`, an app's `Subscribe`): unbounded, so they are queued at once,
    /// under the lock.
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
    /// Taken (dropped) when the session ends, which ends every
    /// [`Events`](crate::Events) stream.
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

/// A function the reader calls with every event, before the
/// [`Events`](crate::Events) streams get it. It runs inside the reader, so it must
/// be quick and must not block; in exchange it sees every event in order and can
/// never lag.
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
    /// `onMessageSent(code, message)`: the last step of a send. The message is
    /// `None` only in a synthesized 30011 before any `MessageSaved`.
    Sent(i32, Option<Message>),
}

impl Step {
    /// Whether this is the call's last step.
    pub(crate) fn is_last(&self) -> bool {
        matches!(self, Self::Connected(..) | Self::Sent(..))
    }
}

/// A function the reader calls with each [`Step`] of one call; like an
/// [`EventObserver`] it runs in the reader and must not block.
pub(crate) type StepHook = Box<dyn FnMut(Step) + Send>;

/// Where the steps of one call go: the channel of its handle
/// ([`ConnectCall`](crate::ConnectCall), [`SendCall`](crate::SendCall)), or a hook
/// (the [`Engine`]'s callbacks, which must keep the order of events and callbacks
/// together).
///
/// [`Engine`]: crate::Engine
pub(crate) enum Sink {
    /// The channel a call handle reads.
    Channel(mpsc::UnboundedSender<Step>),
    /// A hook run in the reader.
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
pub(crate) struct CallbackRoute {
    kind: CallKind,
    sink: Sink,
    /// Whether the first, optional callback (`DatabaseOpened`, `MessageSaved`) came.
    first_seen: bool,
    /// The `MessageSaved` message, for a synthesized `MessageSent`.
    saved: Option<Message>,
}

impl CallbackRoute {
    /// A route for a call of `kind` whose steps go to `sink`.
    pub(crate) fn new(kind: CallKind, sink: Sink) -> Self {
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
            (CallKind::SendMessage, Callback::MessageSent { code, message }) => {
                Step::Sent(code, Some(message))
            }
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
            CallKind::SendMessage => Step::Sent(code, self.saved.take()),
        };
        self.sink.deliver(step);
    }
}

impl Routes {
    /// The table for a session whose first connection was welcomed with `welcome`.
    /// `first` is the request already written with the Hello, id [`FIRST_CALL_ID`]
    /// (where its answer goes, its callbacks). Returns the routes, the first subscriber of the event
    /// broadcast (made before anything is routed, so it misses nothing), and the
    /// receiving end of the library's own request queue, for the writer.
    pub(crate) fn new(
        welcome: &Welcome,
        observer: Option<EventObserver>,
        first: Option<(oneshot::Sender<Reply>, CallbackRoute)>,
    ) -> (
        Arc<Routes>,
        broadcast::Receiver<Item>,
        mpsc::UnboundedReceiver<Outgoing>,
    ) {
        let mut replies = HashMap::new();
        let mut callbacks = HashMap::new();
        if let Some((reply, route)) = first {
            replies.insert(FIRST_CALL_ID, reply);
            callbacks.insert(FIRST_CALL_ID, route);
        }
        let (events, first_subscriber) = broadcast::channel(EVENT_BACKLOG);
        let (control, control_rx) = mpsc::unbounded_channel();
        let routes = Arc::new(Routes {
            table: Mutex::new(RouteTable {
                open: true,
                ended: false,
                generation: 0,
                observer,
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
        (routes, first_subscriber, control_rx)
    }

    fn lock(&self) -> MutexGuard<'_, RouteTable> {
        // A panic while holding the lock leaves the maps consistent (every operation
        // is a single insert or remove), so a poisoned lock is still usable.
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new request id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers where the answer to request `id` (and its callbacks, if it takes
    /// any) go, before it is written, so nothing it causes can arrive unclaimed.
    /// Returns the connection it must be written to; `Disconnected` while there is
    /// no daemon connection.
    pub(crate) fn register(
        &self,
        id: u64,
        reply: oneshot::Sender<Reply>,
        callbacks: Option<CallbackRoute>,
    ) -> Result<u64, ClientError> {
        let mut table = self.lock();
        if !table.open {
            return Err(ClientError::Disconnected);
        }
        table.replies.insert(id, reply);
        if let Some(route) = callbacks {
            table.callbacks.insert(id, route);
        }
        Ok(table.generation)
    }

    /// Registers an app's `Subscribe` from `since` (request `id`, encoded as
    /// `bytes`) with the sequencer and queues it on the library's own queue.
    /// Registered and queued under one lock, so the reader knows of it before
    /// anything it causes can arrive, and a caller giving up cannot leave it
    /// registered but unsent.
    pub(crate) fn subscribe(
        &self,
        id: u64,
        since: i64,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Reply>,
    ) -> Result<(), ClientError> {
        let mut table = self.lock();
        if !table.open {
            return Err(ClientError::Disconnected);
        }
        table.replies.insert(id, reply);
        table.seq.register_explicit(id, since);
        self.explicit_registered
            .store(table.seq.explicit_registered(), Ordering::Release);
        let generation = table.generation;
        self.control
            .send(Outgoing { generation, bytes })
            .map_err(|_| ClientError::Disconnected)
    }

    /// Routes one frame from the daemon. `Err` means the session must end.
    pub(crate) fn route(&self, frame: DaemonFrame) -> Result<(), Violation> {
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
            DaemonFrame::Welcome(_) => return Err(Violation::SecondHandshake("Welcome")),
            DaemonFrame::Refused(_) => return Err(Violation::SecondHandshake("Refused")),
        }
        Ok(())
    }

    /// The connection is gone: fails waiting requests and gives every call still
    /// waiting its last callback (synthesized, 30011). Without `reattaching` the
    /// session is over: every event stream ends. With it, the streams and the
    /// observer stay and get a synthesized `StatusChanged(suspend, 30011)`.
    pub(crate) fn connection_lost(&self, reattaching: bool) {
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
    pub(crate) fn reattached(&self, welcome: Welcome, generation: u64) -> Option<Outgoing> {
        let mut table = self.lock();
        table.open = true;
        table.generation = generation;
        let state = welcome.status.link.clone();
        table.welcome = welcome;
        self.reattaches.fetch_add(1, Ordering::Relaxed);
        let (since, explicit) = table.seq.resume_point();
        let subscribe = since.and_then(|since| {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            table.seq.register_resume(id, since, explicit);
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
        (table.seq.last(), table.seq.explicit_registered())
    }

    /// The `since_seq` of the app subscribes with ordinals in `(from, to]`.
    pub(crate) fn explicit_sinces(&self, from: u64, to: u64) -> Vec<i64> {
        self.lock().seq.explicit_sinces(from, to).to_vec()
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
        self.lock().seq.first()
    }

    /// How many app subscribes have been answered.
    pub(crate) fn explicit_answered(&self) -> u64 {
        self.lock().seq.explicit_answered()
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

    /// Queues one of the library's own requests for the writer (the re-attach
    /// `Subscribe`), ahead of the app's.
    pub(crate) fn send_control(&self, outgoing: Outgoing) {
        // Fails only when the writer's queues are gone, and then so is the session.
        let _ = self.control.send(outgoing);
    }

    /// A new subscriber of the event broadcast; `None` once the session is over.
    pub(crate) fn subscribe_events(&self) -> Option<broadcast::Receiver<Item>> {
        self.lock()
            .events
            .as_ref()
            .map(broadcast::Sender::subscribe)
    }

    /// The current connection's handshake answer.
    pub(crate) fn welcome(&self) -> Welcome {
        self.lock().welcome.clone()
    }

    /// How many times the session re-attached.
    pub(crate) fn reattach_count(&self) -> u64 {
        self.reattaches.load(Ordering::Relaxed)
    }

    /// The id of the last message passed on (or skipped to by a subscribe).
    pub(crate) fn last_seq(&self) -> Option<i64> {
        self.lock().seq.last()
    }

    /// The daemon's connection status as last reported.
    pub(crate) fn link(&self) -> LinkState {
        self.link.borrow().clone()
    }

    /// Whether there is no daemon connection now.
    pub(crate) fn is_closed(&self) -> bool {
        !self.lock().open
    }

    /// Whether the session is over for good.
    pub(crate) fn is_ended(&self) -> bool {
        self.lock().ended
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
            Event::StatusChanged(_)
            | Event::OfflineSyncCompleted
            | Event::MessageRecalled { .. }
            | Event::ReadReceipt { .. }
            | Event::ConversationReadSynced { .. }
            | Event::TypingStatus { .. }
            | Event::StatusMessageReceived { .. } => {}
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
                explicit: self.seq.explicit_answered(),
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
