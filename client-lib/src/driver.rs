//! The driver: the task that owns the socket to `rcimd`, and re-attaches when it
//! is lost.
//!
//! [`Session::start`] dials the socket ([`Dial`]), does the Hello/Welcome handshake
//! and spawns [`drive`]. Per connection a writer task sends whole frames from two
//! queues (the library's own requests first, then the app's), so a caller that gives
//! up mid-request can never leave half a frame on the wire; the reader hands every
//! frame to the route table ([`crate::route`]). The [`Session`] is the app's end of
//! it: every [`Client`](crate::Client) clone and call handle holds it, and dropping
//! the last one closes the app's queue, which ends the writer, the driver and the
//! socket.
//!
//! **Re-attach** ([`ClientOptions::reattach`]): when a connection is lost, instead
//! of ending, the driver has the route table emit a synthesized `StatusChanged`
//! (status `suspend`, code 30011), reconnects to the socket with backoff, does the
//! handshake again, queues `Subscribe` from the last message id it passed on
//! (before it routes anything from the new connection), and emits a `StatusChanged`
//! with the new daemon's status. Frames queued for the old connection are never
//! written to the new one (each carries its connection's generation), so a request
//! the app was told failed can never run later.

use crate::error::ClientError;
use crate::events::Events;
use crate::options::{ClientOptions, ReattachPolicy};
use crate::route::{CallbackRoute, EventObserver, FIRST_CALL_ID, Outgoing, Routes};
use interprocess::local_socket::tokio::{Stream as LocalStream, prelude::*};
use interprocess::local_socket::{GenericFilePath, ToFsName};
use rcim_proto::frame::{self, MAX_IPC_FRAME};
use rcim_proto::ipc::{ClientFrame, DaemonFrame, Hello, Op, Reply, Request, Welcome};
use rcim_proto::{FrameError, FrameReader, PROTOCOL_VERSION};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Frames queued for the writer task before `request` waits for room.
const WRITE_QUEUE: usize = 64;

/// How long the daemon has to answer `Hello`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often to retry while waiting for the daemon to start.
const ATTACH_RETRY: Duration = Duration::from_millis(50);

/// What every clone of a [`Client`](crate::Client) and every call handle shares:
/// the app's end of one driver.
#[derive(Debug)]
pub(crate) struct Session {
    socket: PathBuf,
    /// Encoded frames for the writer task. Dropping it (with every handle) ends the
    /// writer, which ends the driver, which closes the socket.
    outbox: mpsc::Sender<Outgoing>,
    routes: Arc<Routes>,
}

/// A call written in the same write as the Hello, so that attaching and the call's
/// answer cost one round trip to the daemon instead of two.
pub(crate) struct FirstCall {
    /// The encoded request, id [`FIRST_CALL_ID`].
    bytes: Vec<u8>,
    reply: oneshot::Sender<Reply>,
    route: CallbackRoute,
}

impl FirstCall {
    /// Encodes `op` as the first call, with its callbacks going to `route`; the
    /// receiver gets the daemon's immediate answer.
    pub(crate) fn new(
        op: Op,
        route: CallbackRoute,
        socket: &Path,
    ) -> Result<(FirstCall, oneshot::Receiver<Reply>), ClientError> {
        let bytes = frame::encode(
            &ClientFrame::Request(Request {
                id: FIRST_CALL_ID,
                op,
            }),
            MAX_IPC_FRAME,
        )
        .map_err(|e| ClientError::from_frame(socket, e))?;
        let (reply, answer) = oneshot::channel();
        Ok((
            FirstCall {
                bytes,
                reply,
                route,
            },
            answer,
        ))
    }
}

impl Session {
    /// Attaches: connects to the socket (retrying for `wait_for_daemon`), does the
    /// handshake (with `first` in the Hello's write), and spawns the driver. The
    /// observer is made from the Welcome; the returned stream is the broadcast's
    /// first subscriber, so it misses no event sent after the Welcome.
    ///
    /// Must be called inside a tokio runtime.
    pub(crate) async fn start(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
        first: Option<FirstCall>,
    ) -> Result<(Arc<Session>, Events), ClientError> {
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
        let first = first.map(|f| (f.reply, f.route));
        let (routes, first_subscriber, control) = Routes::new(&welcome, observer(&welcome), first);
        let (outbox, queue) = mpsc::channel(WRITE_QUEUE);
        let events = Events::new(Some((first_subscriber, Arc::clone(&routes))));
        let queues = Queues { queue, control };
        let socket = dial.socket.clone();
        tokio::spawn(drive(connection, queues, Arc::clone(&routes), dial));
        let session = Session {
            socket,
            outbox,
            routes,
        };
        Ok((Arc::new(session), events))
    }

    /// The socket this session is attached to.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The session's route table.
    pub(crate) fn routes(&self) -> &Arc<Routes> {
        &self.routes
    }

    /// Encodes `op` as a request with a new id.
    fn encode(&self, op: Op) -> Result<(u64, Vec<u8>), ClientError> {
        let id = self.routes.next_id();
        let bytes = frame::encode(&ClientFrame::Request(Request { id, op }), MAX_IPC_FRAME)
            .map_err(|e| ClientError::from_frame(&self.socket, e))?;
        Ok((id, bytes))
    }

    /// Sends one request and waits for its response. `callbacks` is registered
    /// before the request is written, so no callback can beat it.
    pub(crate) async fn request(
        &self,
        op: Op,
        callbacks: Option<CallbackRoute>,
    ) -> Result<Reply, ClientError> {
        let (id, bytes) = self.encode(op)?;
        let (tx, rx) = oneshot::channel();
        let generation = self.routes.register(id, tx, callbacks)?;
        let outgoing = Outgoing { generation, bytes };
        if self.outbox.send(outgoing).await.is_err() {
            return Err(ClientError::Disconnected);
        }
        rx.await.map_err(|_| ClientError::Disconnected)
    }

    /// Sends an app's `Subscribe` from `since` on the library's own queue and waits
    /// for its answer.
    pub(crate) async fn subscribe(&self, since: i64) -> Result<Reply, ClientError> {
        let (id, bytes) = self.encode(Op::Subscribe { since_seq: since })?;
        let (tx, rx) = oneshot::channel();
        self.routes.subscribe(id, since, bytes, tx)?;
        rx.await.map_err(|_| ClientError::Disconnected)
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
            routes.send_control(subscribe);
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
