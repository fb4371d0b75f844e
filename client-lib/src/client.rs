//! The async [`Client`]: one attached session with `rcimd`, and the task that
//! demultiplexes what the daemon sends.
//!
//! It owns the socket. A writer task sends whole frames from a queue (so a caller
//! that gives up mid-request can never leave half a frame on the wire), and a reader
//! task routes every incoming frame by kind: a `Response` to the oneshot of the
//! request with its id, a `Callback` to the channel of the `connect` that registered
//! it (before the request was sent, so no callback can arrive unclaimed), an `Event`
//! to a broadcast that every [`Events`] stream reads. Responses and events are
//! distinct frame kinds, so an event is never taken for an answer.
//!
//! When the daemon goes away the reader fails every waiting request with
//! [`ClientError::Disconnected`], and every `connect` still waiting for its
//! `onConnected` receives a final `Connected { code: 30011 }` (RC_SOCKET_DISCONNECTED)
//! synthesized here, so RC's "exactly one onConnected" promise holds.

use crate::error::ClientError;
use futures_util::Stream;
use interprocess::local_socket::tokio::{Stream as LocalStream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use rcim_proto::frame::{self, MAX_IPC_FRAME};
use rcim_proto::ipc::{
    Callback, ClientFrame, DaemonFrame, Event, Hello, Op, Reply, Request, Response, Welcome,
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
    callbacks: HashMap<u64, mpsc::UnboundedSender<Callback>>,
    /// Taken (dropped) on close, which ends every [`Events`] stream.
    events: Option<broadcast::Sender<Event>>,
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
                // A rejected connect gets no callbacks: forget its channel now, so
                // its ConnectCall sees the end at once.
                if matches!(reply, Reply::Code(code) if code != 0) {
                    table.callbacks.remove(&id);
                }
                match table.replies.remove(&id) {
                    // The caller may have given up waiting; that is fine.
                    Some(tx) => drop(tx.send(reply)),
                    None => tracing::warn!(id, "rcimd answered a request we did not send"),
                }
            }
            DaemonFrame::Callback(cb) => {
                let mut table = self.lock();
                let last = matches!(cb.callback, Callback::Connected { .. });
                let tx = if last {
                    table.callbacks.remove(&cb.id)
                } else {
                    table.callbacks.get(&cb.id).cloned()
                };
                match tx {
                    Some(tx) => drop(tx.send(cb.callback)),
                    None => tracing::warn!(id = cb.id, "callback for no pending connect"),
                }
            }
            DaemonFrame::Event(event) => {
                if let Event::StatusChanged(state) = &event {
                    self.link.send_replace(state.clone());
                }
                if let Some(tx) = &self.lock().events {
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

    /// Ends the session: fails waiting requests and finishes waiting connects.
    fn close(&self) {
        let mut table = self.lock();
        table.open = false;
        // Dropping the senders makes every waiting request see Disconnected.
        table.replies.clear();
        for (_, tx) in table.callbacks.drain() {
            let _ = tx.send(disconnected_callback());
        }
        table.events = None;
    }
}

/// The `onConnected` a connect receives when the daemon goes away before its own.
fn disconnected_callback() -> Callback {
    Callback::Connected {
        code: RcCode::RC_SOCKET_DISCONNECTED.0,
        user_id: None,
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

    /// A receiver of the latest link state, that does not keep the session open.
    pub(crate) fn link_receiver(&self) -> watch::Receiver<LinkState> {
        self.session.routes.link.subscribe()
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
            return Ok(ConnectCall::rejected(RcCode::INVALID_PARAMETER.0, self));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let reply = self
            .request(
                Op::Connect {
                    token,
                    timeout_secs,
                },
                Some(tx),
            )
            .await?;
        match reply {
            Reply::Code(0) => Ok(ConnectCall {
                code: 0,
                callbacks: Some(rx),
                database_opened: false,
                _session: Arc::clone(&self.session),
            }),
            Reply::Code(code) => Ok(ConnectCall::rejected(code, self)),
            other => Err(unexpected("Connect", &other)),
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

    /// A stream of the daemon's events, from now on.
    ///
    /// Each subscriber has its own backlog of 256 events; one that falls further
    /// behind skips the oldest and receives `Err(Lagged)` saying how many it missed
    /// (call [`Client::status`] to resynchronise). A slow subscriber never stalls
    /// the reader or other subscribers. The stream ends when the daemon connection
    /// does.
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

    /// Sends one request and waits for its response. `callbacks` is registered
    /// before the request is written, so no callback can beat it.
    async fn request(
        &self,
        op: Op,
        callbacks: Option<mpsc::UnboundedSender<Callback>>,
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

/// One accepted (or rejected) `connect`: its immediate code, then its callbacks.
///
/// Holds the session open until dropped, so the callbacks still arrive when every
/// [`Client`] clone is gone.
#[derive(Debug)]
pub struct ConnectCall {
    code: i32,
    /// `None` once `Connected` was delivered, or from the start when rejected.
    callbacks: Option<mpsc::UnboundedReceiver<Callback>>,
    database_opened: bool,
    _session: Arc<Session>,
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
    fn rejected(code: i32, client: &Client) -> Self {
        Self {
            code,
            callbacks: None,
            database_opened: false,
            _session: Arc::clone(&client.session),
        }
    }

    /// The immediate result: 0 accepted (callbacks follow), otherwise the RC error
    /// and no callback will come.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the daemon accepted the call.
    pub fn is_accepted(&self) -> bool {
        self.code == 0
    }

    /// The next callback, in RC's order: at most one `DatabaseOpened`, then exactly
    /// one `Connected`; `None` after that, and from the start for a rejected call.
    ///
    /// If the daemon goes away first, the `Connected` is synthesized with code 30011
    /// (RC_SOCKET_DISCONNECTED). Cancel-safe.
    pub async fn next_callback(&mut self) -> Option<Callback> {
        let rx = self.callbacks.as_mut()?;
        loop {
            let callback = rx.recv().await.unwrap_or_else(disconnected_callback);
            match callback {
                Callback::DatabaseOpened { .. } if self.database_opened => {
                    tracing::warn!("rcimd sent onDatabaseOpened twice; ignoring the second");
                }
                Callback::DatabaseOpened { .. } => {
                    self.database_opened = true;
                    return Some(callback);
                }
                Callback::Connected { .. } => {
                    self.callbacks = None;
                    return Some(callback);
                }
                Callback::MessageSaved { .. } | Callback::MessageSent { .. } => {
                    tracing::warn!("rcimd sent a message callback for a connect; ignoring it");
                }
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
            code: self.code,
            user_id: None,
            database_opened,
        }
    }
}

/// The stream returned by [`Client::events`].
pub struct Events {
    inner: Pin<Box<dyn Stream<Item = Result<Event, Lagged>> + Send>>,
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
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Result<Event, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// An [`Events`] subscriber fell behind and skipped events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event stream fell behind and skipped {missed} events")]
pub struct Lagged {
    /// How many events were skipped.
    pub missed: u64,
}
