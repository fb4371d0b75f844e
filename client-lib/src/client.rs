//! The async [`Client`]: one attached session with `rcimd`, and the task that
//! demultiplexes what the daemon sends.
//!
//! It owns the socket. A writer task sends whole frames from a queue (so a caller
//! that gives up mid-request can never leave half a frame on the wire), and a reader
//! task routes every incoming frame by kind: a `Response` to the oneshot of the
//! request with its id, a `Callback` to the channel of the call that registered it
//! (before the request was sent, so no callback can arrive unclaimed), an `Event`
//! to a broadcast that every [`Events`] stream reads. Responses and events are
//! distinct frame kinds, so an event is never taken for an answer.
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

use crate::error::ClientError;
use crate::message::{MAX_CONVERSATIONS_PER_QUERY, MAX_MESSAGES_PER_QUERY};
use futures_util::Stream;
use interprocess::local_socket::tokio::{Stream as LocalStream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use rcim_proto::frame::{self, MAX_IPC_FRAME};
use rcim_proto::ipc::{
    Callback, CallbackFrame, ClientFrame, DaemonFrame, Event, Hello, Op, Reply, Request, Response,
    Welcome,
};
use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Message, TimeOrder, check_outgoing,
};
use rcim_proto::status::LinkState;
use rcim_proto::{FrameReader, PROTOCOL_VERSION, RcCode, StatusSnapshot, Token};
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
/// (and is told so with [`Lagged`]).
const EVENT_BACKLOG: usize = 256;

/// Frames queued for the writer task before `request` waits for room.
const WRITE_QUEUE: usize = 64;

/// How long the daemon has to answer `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often to retry while waiting for the daemon to start.
const ATTACH_RETRY: Duration = Duration::from_millis(50);

/// How to attach to `rcimd`.
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
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            socket: None,
            client_name: "rcim-client".to_owned(),
            wait_for_daemon: Duration::ZERO,
        }
    }
}

impl ClientOptions {
    /// Options with this client name and every other field at its default.
    pub fn named(client_name: impl Into<String>) -> Self {
        Self {
            client_name: client_name.into(),
            ..Self::default()
        }
    }

    /// The socket these options point at.
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(rcim_proto::paths::default_socket_path)
    }
}

/// An attached session with `rcimd`.
///
/// Cheap to clone; all clones share one socket. The socket closes when the last
/// clone and the last [`ConnectCall`] are dropped. Closing it is not a `disconnect`:
/// the daemon stays connected for every other app.
#[derive(Clone, Debug)]
pub struct Client {
    session: Arc<Session>,
}

/// What every clone of a [`Client`] shares.
#[derive(Debug)]
struct Session {
    socket: PathBuf,
    welcome: Welcome,
    next_id: AtomicU64,
    /// Encoded frames for the writer task. Dropping it ends the writer, which ends
    /// the reader, which closes the socket.
    outbox: mpsc::Sender<Vec<u8>>,
    routes: Arc<Routes>,
}

/// Where incoming frames go; shared by the session and its reader task.
#[derive(Debug)]
struct Routes {
    table: Mutex<RouteTable>,
    link: watch::Sender<LinkState>,
}

#[derive(Debug)]
struct RouteTable {
    /// False once the daemon connection is gone; nothing new may register.
    open: bool,
    replies: HashMap<u64, oneshot::Sender<Reply>>,
    callbacks: HashMap<u64, CallbackRoute>,
    /// Taken (dropped) on close, which ends every [`Events`] stream.
    events: Option<broadcast::Sender<Event>>,
    /// Sees every event first, in the reader, in order (the [`Engine`]'s listeners).
    ///
    /// [`Engine`]: crate::Engine
    observer: Option<EventObserver>,
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
                match table.replies.remove(&id) {
                    // The caller may have given up waiting; that is fine.
                    Some(tx) => drop(tx.send(reply)),
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
                let mut table = self.lock();
                if let Some(EventObserver(observe)) = &mut table.observer {
                    observe(&event);
                }
                if let Some(tx) = &table.events {
                    // No subscriber is not an error; a lagging one skips, never blocks.
                    let _ = tx.send(event);
                }
            }
            DaemonFrame::Welcome(_) | DaemonFrame::Refused(_) => {
                return Err("sent a second handshake frame".to_owned());
            }
        }
        Ok(())
    }

    /// Ends the session: fails waiting requests, gives every call still waiting its
    /// last callback (synthesized, 30011), and ends every event stream.
    fn close(&self) {
        let (routes, observer) = {
            let mut table = self.lock();
            table.open = false;
            // Dropping the senders makes every waiting request see Disconnected.
            table.replies.clear();
            table.events = None;
            (
                table.callbacks.drain().collect::<Vec<_>>(),
                table.observer.take(),
            )
        };
        // Outside the lock: hooks may drop the last handle of the session.
        for (_, route) in routes {
            route.lost();
        }
        drop(observer);
    }
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
    /// Must be called inside a tokio runtime: it spawns the reader and writer tasks.
    pub async fn attach(options: ClientOptions) -> Result<Client, ClientError> {
        Ok(Self::attach_with_events(options).await?.0)
    }

    /// [`Client::attach`], plus an event stream subscribed before the reader task
    /// starts: it misses no event sent after the Welcome, so a status listener that
    /// starts from [`Welcome::status`] sees every change.
    pub async fn attach_with_events(
        options: ClientOptions,
    ) -> Result<(Client, Events), ClientError> {
        Self::attach_observed(options, |_| None).await
    }

    /// [`Client::attach_with_events`], with an observer (made from the Welcome) that
    /// sees every event in the reader before any stream does.
    pub(crate) async fn attach_observed(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
    ) -> Result<(Client, Events), ClientError> {
        let socket = options.socket_path();
        let stream = SharedStream(Arc::new(
            connect_with_retry(&socket, options.wait_for_daemon).await?,
        ));
        let mut reader = FrameReader::new(stream.clone(), MAX_IPC_FRAME);
        let hello = ClientFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            client_name: options.client_name,
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
        });
        let welcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            frame::write_frame(&mut stream.clone(), &hello, MAX_IPC_FRAME)
                .await
                .map_err(|e| ClientError::from_frame(&socket, e))?;
            handshake(&mut reader, &socket).await
        })
        .await
        .map_err(|_| ClientError::HandshakeTimeout {
            socket: socket.clone(),
            after_ms: u64::try_from(HANDSHAKE_TIMEOUT.as_millis()).unwrap_or(u64::MAX),
        })??;

        let (events, first_subscriber) = broadcast::channel(EVENT_BACKLOG);
        let routes = Arc::new(Routes {
            table: Mutex::new(RouteTable {
                open: true,
                replies: HashMap::new(),
                callbacks: HashMap::new(),
                events: Some(events),
                observer: observer(&welcome),
            }),
            link: watch::Sender::new(welcome.status.link.clone()),
        });
        let (outbox, queue) = mpsc::channel(WRITE_QUEUE);
        let (writer_done, writer_gone) = oneshot::channel();
        tokio::spawn(write_loop(stream, queue, writer_done));
        tokio::spawn(read_loop(reader, Arc::clone(&routes), writer_gone));
        let client = Client {
            session: Arc::new(Session {
                socket,
                welcome,
                next_id: AtomicU64::new(1),
                outbox,
                routes,
            }),
        };
        Ok((client, Events::new(Some(first_subscriber))))
    }

    /// The daemon's handshake answer: its version, protocol, and the status at the
    /// moment of attaching.
    pub fn welcome(&self) -> &Welcome {
        &self.session.welcome
    }

    /// The socket this client is attached to.
    pub fn socket(&self) -> &Path {
        &self.session.socket
    }

    /// The latest link state known to this client: the one in the Welcome, then
    /// each `StatusChanged` event as the reader task sees it. No round trip.
    pub fn link_state(&self) -> LinkState {
        self.session.routes.link.borrow().clone()
    }

    /// Whether the daemon connection is gone; every call then fails with
    /// [`ClientError::Disconnected`], and a new [`Client::attach`] is needed.
    pub fn is_closed(&self) -> bool {
        !self.session.routes.lock().open
    }

    /// Asks the daemon for its full status.
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
    pub async fn disconnect(&self, receive_push: bool) -> Result<i32, ClientError> {
        match self.request(Op::Disconnect { receive_push }, None).await? {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected("Disconnect", &other)),
        }
    }

    /// Signs this device out (no push) and deletes the token the daemon stored, so it
    /// does not connect again at its next start. Returns the daemon's RC code.
    pub async fn logout(&self) -> Result<i32, ClientError> {
        match self.request(Op::Logout, None).await? {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected("Logout", &other)),
        }
    }

    /// A stream of the daemon's events, from now on: `StatusChanged`,
    /// `MessageReceived` (RC's `onMessageReceived(message, left, offline,
    /// hasPackage)`, after the message is committed to the daemon's database) and
    /// `OfflineSyncCompleted`.
    ///
    /// Each subscriber has its own backlog of 256 events; one that falls further
    /// behind skips the oldest and receives `Err(Lagged)` saying how many it missed
    /// (call [`Client::status`] to resynchronise the status; skipped messages are in
    /// the daemon's database, see [`Events::last_message_id`]). A slow subscriber
    /// never stalls the reader or other subscribers. The stream ends when the daemon
    /// connection does.
    pub fn events(&self) -> Events {
        let rx = self
            .session
            .routes
            .lock()
            .events
            .as_ref()
            .map(broadcast::Sender::subscribe);
        Events::new(rx)
    }

    /// Sends a request that takes callbacks of `kind`, registering their channel
    /// first, and interprets the daemon's immediate `Reply::Code`.
    async fn call(&self, op: Op, kind: CallKind) -> Result<CallState, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let code = self.start_call(op, kind, Sink::Channel(tx)).await?;
        Ok(CallState {
            code,
            steps: (code == 0).then_some(rx),
            _session: Arc::clone(&self.session),
        })
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
        match self
            .request(op, Some(CallbackRoute::new(kind, sink)))
            .await?
        {
            Reply::Code(code) => Ok(code),
            other => Err(unexpected(&format!("{kind:?}"), &other)),
        }
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
        let id = session.next_id.fetch_add(1, Ordering::Relaxed);
        let bytes = frame::encode(&ClientFrame::Request(Request { id, op }), MAX_IPC_FRAME)
            .map_err(|e| ClientError::from_frame(&session.socket, e))?;
        let (tx, rx) = oneshot::channel();
        {
            let mut table = session.routes.lock();
            if !table.open {
                return Err(ClientError::Disconnected);
            }
            table.replies.insert(id, tx);
            if let Some(cb) = callbacks {
                table.callbacks.insert(id, cb);
            }
        }
        if session.outbox.send(bytes).await.is_err() {
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

/// Writes queued frames until the queue closes (every handle dropped) or the socket
/// fails. Dropping `done` on the way out tells the reader to stop.
async fn write_loop(
    mut stream: SharedStream,
    mut queue: mpsc::Receiver<Vec<u8>>,
    done: oneshot::Sender<()>,
) {
    while let Some(bytes) = queue.recv().await {
        if let Err(e) = stream.write_all(&bytes).await {
            tracing::debug!(error = %e, "writing to rcimd failed");
            break;
        }
    }
    drop(done);
}

/// Routes frames until the daemon closes, breaks the protocol, or the writer ends.
async fn read_loop(
    mut reader: FrameReader<SharedStream>,
    routes: Arc<Routes>,
    mut writer_gone: oneshot::Receiver<()>,
) {
    loop {
        let frame = tokio::select! {
            frame = reader.read::<DaemonFrame>() => frame,
            _ = &mut writer_gone => break,
        };
        match frame {
            Ok(Some(frame)) => {
                if let Err(why) = routes.route(frame) {
                    tracing::warn!(%why, "rcimd broke the protocol; closing the session");
                    break;
                }
            }
            Ok(None) => {
                tracing::debug!("rcimd closed the connection");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading from rcimd failed; closing the session");
                break;
            }
        }
    }
    routes.close();
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
#[derive(Debug)]
pub struct ConnectCall {
    state: CallState,
}

/// How a `connect` ended: its `onConnected`, plus the `onDatabaseOpened` before it.
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
    pub fn code(&self) -> i32 {
        self.state.code
    }

    /// Whether the daemon accepted the call.
    pub fn is_accepted(&self) -> bool {
        self.state.code == 0
    }

    /// The next callback, in RC's order: at most one `DatabaseOpened`, then exactly
    /// one `Connected`; `None` after that, and from the start for a rejected call.
    ///
    /// If the daemon goes away first, the `Connected` is synthesized with code 30011
    /// (RC_SOCKET_DISCONNECTED). Cancel-safe.
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendStep {
    /// `onMessageSaved(message)`: in the daemon's outbox, status sending, with its
    /// local id.
    Saved(Message),
    /// `onMessageSent(code, message)`: the last callback.
    Sent(Sent),
}

/// How a `send_message` ended: RC's `onMessageSent(code, message)`.
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
    pub fn code(&self) -> i32 {
        self.state.code
    }

    /// Whether the daemon accepted the message.
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
    pub async fn saved(&mut self) -> Option<Message> {
        while self.saved.is_none() && self.outcome.is_none() {
            self.advance().await?;
        }
        self.saved.clone()
    }

    /// Waits for the end of the call and reports it (`onMessageSent`). For a
    /// rejected call this is the immediate code at once, with no message.
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

/// The stream returned by [`Client::events`].
///
/// It remembers the local id of the last `MessageReceived` it yielded
/// ([`Events::last_message_id`]): that id is the daemon's sequence number, the point
/// from which a replay (issue 5: subscribe with `since_seq`) will resume after a
/// [`Lagged`] or a re-attach.
pub struct Events {
    inner: Pin<Box<dyn Stream<Item = Result<Event, Lagged>> + Send>>,
    last_message_id: Option<i64>,
}

impl Events {
    /// A stream over `rx`; `None` gives a stream that has already ended.
    fn new(rx: Option<broadcast::Receiver<Event>>) -> Self {
        let stream = futures_util::stream::unfold(rx, |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Ok(event) => Some((Ok(event), Some(rx))),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some((Err(Lagged { missed }), Some(rx)))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Events {
            inner: Box::pin(stream),
            last_message_id: None,
        }
    }

    /// The local id (the daemon's sequence number) of the last `MessageReceived`
    /// this stream yielded, if any. After a [`Lagged`], messages newer than this
    /// may have been skipped; they are in the daemon's database
    /// ([`Client::get_conversations`], [`Client::get_messages`]).
    pub fn last_message_id(&self) -> Option<i64> {
        self.last_message_id
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("last_message_id", &self.last_message_id)
            .finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Result<Event, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(Event::MessageReceived { message, .. }))) = &item {
            self.last_message_id = Some(message.id);
        }
        item
    }
}

/// An [`Events`] subscriber fell behind and skipped events.
///
/// Today the skipped events are gone from the stream (status: ask
/// [`Client::status`]; messages: they are in the daemon's database, newer than
/// [`Events::last_message_id`]). Issue 5 adds replay from the daemon's database, so
/// that a lagged subscriber resumes without a gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event stream fell behind and skipped {missed} events")]
pub struct Lagged {
    /// How many events were skipped.
    pub missed: u64,
}
