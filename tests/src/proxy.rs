//! A fault-injecting TCP proxy: put it between `rcimd` and `rcim-server` and make
//! the network misbehave on command.
//!
//! [`FaultProxy`] owns one loopback listener, the connections it accepted and the
//! upstream connections it opened for them. The daemon's reconnect, heartbeat and
//! timeout paths can only be tested against a network that refuses, stalls, lags
//! or cuts connections, and a real server does none of that on demand.
//!
//! The testkit is synchronous, so the proxy runs on its own thread with its own
//! current-thread tokio runtime. The handle talks to it over a channel and waits
//! for answers on std channels, never with `block_on`, so it is equally usable from
//! a plain `#[test]` and from inside another runtime (`#[tokio::test]`).
//!
//! ```no_run
//! use rcim_tests::proxy::{FaultProxy, Mode};
//! # let server = rcim_tests::TestServer::start();
//! let upstream = server.im_addr.parse().expect("im_addr");
//! let proxy = FaultProxy::start(upstream);
//! let daemon = rcim_tests::TestDaemon::start(&proxy.url(), &[]);
//! // ... connect, then make the server vanish without a word:
//! proxy.set_mode(Mode::BlackHole);
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The most bytes read from a socket at once.
const CHUNK: usize = 16 * 1024;
/// Chunks queued per direction; with [`CHUNK`] this bounds a direction's buffer to
/// 256 KiB, after which the proxy stops reading and the sender's kernel buffers fill.
const QUEUE: usize = 16;
/// How long a control call waits for the proxy thread before giving up.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// How the proxy treats traffic. Set with [`FaultProxy::set_mode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Forward bytes both ways as they come.
    #[default]
    Pass,
    /// The port is closed: the listener is dropped, so the kernel answers new
    /// connections with a reset (`ECONNREFUSED`), like a host whose server is not
    /// running. Connections already open keep flowing as in [`Mode::Pass`]; add
    /// [`FaultProxy::drop_all`] to model a server that died. Leaving `Refuse`
    /// reopens the same port.
    Refuse,
    /// A silently dead network: no byte moves in either direction, and no FIN or
    /// reset is passed on either, so only a timeout can notice. New connections are
    /// still accepted (a listener cannot ignore a SYN) but reach upstream only when
    /// the hole ends. Bytes are held, not discarded: they wait in the proxy's
    /// bounded queue and then in the sender's kernel buffers (whose writes
    /// eventually block), and are delivered in order when the mode changes, which is
    /// what TCP's retransmission does after a real outage. A stream with a gap in
    /// it is something TCP never produces, so the proxy does not either.
    BlackHole,
    /// Every chunk read is written on only after this delay, in order. The delay
    /// applies per direction, so a request and its answer are late twice.
    Delay(Duration),
}

impl Mode {
    /// The delay a chunk read now must wait before it is written.
    fn delay(self) -> Duration {
        match self {
            Mode::Delay(delay) => delay,
            Mode::Pass | Mode::Refuse | Mode::BlackHole => Duration::ZERO,
        }
    }
}

/// A TCP proxy on `127.0.0.1` in front of one upstream address, with faults on
/// command. Stopped (every socket closed, thread joined) by [`FaultProxy::stop`] or
/// on drop.
///
/// All methods take `&self` and the type is `Send + Sync`, so it can be shared
/// with other threads through an `Arc`.
pub struct FaultProxy {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Command>,
    mode: watch::Receiver<Mode>,
    counters: Arc<Counters>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl FaultProxy {
    /// Starts a proxy in [`Mode::Pass`] on `127.0.0.1:0` that forwards every
    /// connection it accepts to `upstream`.
    ///
    /// # Panics
    /// If the thread, its runtime or the listener cannot be set up.
    pub fn start(upstream: SocketAddr) -> Self {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (mode_tx, mode) = watch::channel(Mode::Pass);
        let counters = Arc::new(Counters::default());
        let (ready_tx, ready_rx) = std_mpsc::channel();
        let relay = Relay {
            upstream,
            mode: mode_tx,
            counters: Arc::clone(&counters),
        };
        let thread = std::thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || relay.run_thread(command_rx, ready_tx))
            .expect("spawn the fault proxy thread");
        // Report a failed bind here, before there is a handle to misuse.
        let addr = match ready_rx.recv_timeout(ANSWER_LIMIT) {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("fault proxy cannot listen on 127.0.0.1: {e}"),
            Err(e) => panic!("fault proxy thread did not start: {e}"),
        };
        Self {
            addr,
            commands,
            mode,
            counters,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// The address to connect to instead of upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `rcim://127.0.0.1:PORT`, for `rcimd --server`.
    pub fn url(&self) -> String {
        format!("rcim://{}", self.addr)
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Switches the mode. When this returns, the listener is closed (entering
    /// [`Mode::Refuse`]) or open again (leaving it), and every connection follows
    /// the new mode from its next chunk on.
    ///
    /// # Panics
    /// If the port cannot be reopened after [`Mode::Refuse`] (another socket took
    /// it in the meantime), or the proxy is stopped.
    pub fn set_mode(&self, mode: Mode) {
        if let Err(e) = self.ask(|reply| Command::SetMode(mode, reply)) {
            panic!(
                "fault proxy cannot reopen {} to leave Refuse: {e}",
                self.addr
            );
        }
    }

    /// Closes every connection open now, on both sides: the client and upstream
    /// each see EOF, or a reset if they had unread bytes. Connections accepted
    /// afterwards follow the mode as usual. When this returns the sockets are
    /// closed and [`FaultProxy::live`] no longer counts them.
    ///
    /// # Panics
    /// If the proxy is stopped.
    pub fn drop_all(&self) {
        self.ask(Command::DropAll);
    }

    /// Connections accepted since start (connections refused by a closed port in
    /// [`Mode::Refuse`] never were).
    pub fn accepted(&self) -> u64 {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed by the proxy, including those held
    /// in a [`Mode::BlackHole`] before they reached upstream.
    pub fn live(&self) -> usize {
        self.counters.live.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection and joins the proxy thread. Calling
    /// it again, or dropping the proxy afterwards, does nothing.
    pub fn stop(&self) {
        let _ = self.commands.send(Command::Stop);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            // The thread only panics if its runtime could not be built, and that
            // was reported by `start`.
            let _ = thread.join();
        }
    }

    /// Sends a command and waits for its answer on a std channel: unlike
    /// `block_on` or `oneshot::blocking_recv`, that is allowed inside a runtime,
    /// and the proxy's own runtime runs on another thread, so it cannot deadlock.
    fn ask<T>(&self, command: impl FnOnce(Reply<T>) -> Command) -> T {
        let (reply, answer) = std_mpsc::channel();
        if self.commands.send(command(reply)).is_err() {
            panic!("fault proxy on {} is stopped", self.addr);
        }
        match answer.recv_timeout(ANSWER_LIMIT) {
            Ok(value) => value,
            Err(e) => panic!("fault proxy on {} did not answer: {e}", self.addr),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("mode", &self.mode())
            .field("accepted", &self.accepted())
            .field("live", &self.live())
            .finish()
    }
}

/// Where the proxy thread sends a command's answer.
type Reply<T> = std_mpsc::Sender<T>;

/// What the handle asks of the proxy thread.
enum Command {
    SetMode(Mode, Reply<io::Result<()>>),
    DropAll(Reply<()>),
    Stop,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    live: AtomicUsize,
}

/// Counts a connection as live for as long as its task holds this, however the
/// task ends (finished, cancelled by `drop_all`, dropped at shutdown).
struct LiveGuard(Arc<Counters>);

impl LiveGuard {
    fn new(counters: &Arc<Counters>) -> Self {
        counters.accepted.fetch_add(1, Ordering::SeqCst);
        counters.live.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counters))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The connections accepted since the last `drop_all`: one token cancels them
/// all, and the tracker tells when they have finished closing.
#[derive(Default)]
struct Batch {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// The proxy thread's state: the accept loop and what every connection shares.
struct Relay {
    upstream: SocketAddr,
    mode: watch::Sender<Mode>,
    counters: Arc<Counters>,
}

impl Relay {
    fn run_thread(
        self,
        commands: mpsc::UnboundedReceiver<Command>,
        ready: std_mpsc::Sender<io::Result<SocketAddr>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let listener = match runtime.block_on(async { listen(([127, 0, 0, 1], 0).into()) }) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok(addr)).is_err() {
            return;
        }
        runtime.block_on(self.run(addr, listener, commands));
        // Dropping the connection tasks closes their sockets; none of them blocks,
        // so this is quick, and the limit only guards against a surprise.
        runtime.shutdown_timeout(Duration::from_secs(1));
    }

    /// Accepts connections and obeys commands until told to stop or the handle is
    /// gone.
    async fn run(
        self,
        addr: SocketAddr,
        listener: TcpListener,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut listener = Some(listener);
        let mut batch = Batch::default();
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    None | Some(Command::Stop) => break,
                    Some(Command::SetMode(mode, reply)) => {
                        let _ = reply.send(self.switch(mode, addr, &mut listener));
                    }
                    Some(Command::DropAll(reply)) => {
                        let old = std::mem::take(&mut batch);
                        old.cancel.cancel();
                        old.tasks.close();
                        tokio::spawn(async move {
                            old.tasks.wait().await;
                            let _ = reply.send(());
                        });
                    }
                },
                accepted = accept(listener.as_ref()) => match accepted {
                    Ok(client) => {
                        let live = LiveGuard::new(&self.counters);
                        let cancel = batch.cancel.clone();
                        let connection = connection(client, self.upstream, self.mode.subscribe());
                        batch.tasks.spawn(async move {
                            cancel.run_until_cancelled(connection).await;
                            drop(live);
                        });
                    }
                    // A client that gave up while queued, or no file descriptors
                    // left: nothing to do but try again a little later.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                },
            }
        }
    }

    /// Applies a new mode, closing or reopening the port first so that the mode is
    /// in force when the handle's call returns.
    fn switch(
        &self,
        mode: Mode,
        addr: SocketAddr,
        listener: &mut Option<TcpListener>,
    ) -> io::Result<()> {
        if mode == Mode::Refuse {
            // Connections still in the accept queue are reset along with it.
            *listener = None;
        } else if listener.is_none() {
            *listener = Some(listen(addr)?);
        }
        self.mode.send_replace(mode);
        Ok(())
    }
}

/// Listens on `addr` with `SO_REUSEADDR`, so the port can be reopened after
/// [`Mode::Refuse`] while connections accepted on it are still open or in
/// `TIME_WAIT`.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(128)
}

/// The next connection, or never while the port is closed.
async fn accept(listener: Option<&TcpListener>) -> io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Proxies one accepted connection until both directions have ended. Any error
/// closes both sockets with a reset, as a middlebox that lost the flow would.
async fn connection(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // A connection accepted in a black hole has not "arrived" yet.
    if mode
        .wait_for(|mode| *mode != Mode::BlackHole)
        .await
        .is_err()
    {
        return;
    }
    // Upstream is down: closing the client tells it, as a refused connect would.
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    // Small frames (heartbeats) must not wait for Nagle; failing to set it only
    // costs latency.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let result = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        tokio::try_join!(
            pipe(client_read, server_write, mode.clone()),
            pipe(server_read, client_write, mode),
        )
    };
    if result.is_err() {
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// What a direction's reader hands its writer.
enum Chunk {
    /// Bytes to write.
    Data(Vec<u8>),
    /// The source sent FIN: half-close the destination.
    End,
    /// Reading the source failed (typically a reset): fail the connection.
    Failed(io::Error),
}

/// One direction of a connection. The reader stamps each chunk with the time it
/// may be written; the writer waits for that time and for the black hole to end.
/// Ends and errors travel through the same queue as data, so they are passed on in
/// order and never through a black hole.
async fn pipe(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    mut mode: watch::Receiver<Mode>,
) -> io::Result<()> {
    let (queue, mut queued) = mpsc::channel::<(Instant, Chunk)>(QUEUE);
    let read_mode = mode.clone();
    let read = async move {
        let mut buf = vec![0; CHUNK];
        loop {
            let read = from.read(&mut buf).await;
            let due = Instant::now() + read_mode.borrow().delay();
            let (chunk, last) = match read {
                Ok(0) => (Chunk::End, true),
                Ok(n) => (Chunk::Data(buf[..n].to_vec()), false),
                Err(e) => (Chunk::Failed(e), true),
            };
            // A closed queue means the writer failed; its error ends the pipe.
            if queue.send((due, chunk)).await.is_err() || last {
                return Ok::<_, io::Error>(());
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = queued.recv().await {
            wait_until_open(&mut mode, due).await?;
            match chunk {
                Chunk::Data(bytes) => to.write_all(&bytes).await?,
                Chunk::End => return to.shutdown().await,
                Chunk::Failed(e) => return Err(e),
            }
        }
        Ok(())
    };
    tokio::try_join!(read, write).map(|_| ())
}

/// Waits until `due` has passed while the mode is not [`Mode::BlackHole`].
async fn wait_until_open(mode: &mut watch::Receiver<Mode>, due: Instant) -> io::Result<()> {
    loop {
        if mode
            .wait_for(|mode| *mode != Mode::BlackHole)
            .await
            .is_err()
        {
            return Err(io::Error::other("the fault proxy stopped"));
        }
        if Instant::now() >= due {
            return Ok(());
        }
        // Re-check the mode after a delay: the hole may have opened meanwhile.
        tokio::time::sleep_until(due).await;
    }
}
