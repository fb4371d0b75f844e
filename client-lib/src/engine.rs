//! [`Engine`]: the RC-shaped, blocking, callback-based API, for apps ported from the
//! RC SDK and for code that is not async.
//!
//! It owns a one-worker tokio runtime and a callback thread. Calls block the caller
//! only until the daemon has answered (RC's immediate return code); the callbacks
//! then run on the `rcim-callbacks` thread, one at a time and in the order they
//! happened, never on the runtime, so a slow callback delays other callbacks but not
//! the connection. The engine attaches to `rcimd` lazily, on the first call, and
//! attaches again on the next call after the daemon went away.

use crate::client::{Client, ClientOptions, Events, Lagged};
use crate::error::ClientError;
use futures_util::StreamExt;
use rcim_proto::ipc::{Callback, Event};
use rcim_proto::{ConnectionStatus, RcCode, Token};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak, mpsc};
use std::time::Duration;

/// How [`Engine::create`] finds the daemon (RC's `RCIMIWEngineOptions`, reduced to
/// what a local client needs: the server settings live in `rcimd`).
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The daemon's socket; `None` means
    /// [`default_socket_path`](rcim_proto::paths::default_socket_path) (honours
    /// `RCIM_SOCKET`).
    pub socket: Option<PathBuf>,
    /// A name for the daemon's logs and `rcimctl status`.
    pub client_name: String,
    /// How long each attach keeps retrying while nothing listens on the socket; zero
    /// (the default) fails at once. Set a couple of seconds when the app may start
    /// together with `rcimd`.
    pub wait_for_daemon: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            socket: None,
            client_name: "rcim-engine".to_owned(),
            wait_for_daemon: Duration::ZERO,
        }
    }
}

type OnDatabaseOpened = Box<dyn FnOnce(i32) + Send>;
type OnConnected = Box<dyn FnOnce(i32, Option<String>) + Send>;
type StatusListener = Arc<dyn Fn(ConnectionStatus) + Send + Sync>;
type Job = Box<dyn FnOnce() + Send>;

/// RC's `RCIMIWConnectCallback`: `onDatabaseOpened` (optional), then `onConnected`.
///
/// ```
/// use rcim_client::ConnectCallback;
/// let callback = ConnectCallback::new(|code, user_id| println!("connected: {code} {user_id:?}"))
///     .on_database_opened(|code| println!("database opened: {code}"));
/// # drop(callback);
/// ```
pub struct ConnectCallback {
    /// `onDatabaseOpened(code)`: 0, or 33002 when the local database failed.
    pub on_database_opened: Option<OnDatabaseOpened>,
    /// `onConnected(code, userId)`: 0 and the user on success, else the RC error.
    pub on_connected: OnConnected,
}

impl ConnectCallback {
    /// A callback with this `onConnected` and no `onDatabaseOpened`.
    pub fn new(on_connected: impl FnOnce(i32, Option<String>) + Send + 'static) -> Self {
        Self {
            on_database_opened: None,
            on_connected: Box::new(on_connected),
        }
    }

    /// Adds an `onDatabaseOpened`.
    pub fn on_database_opened(mut self, f: impl FnOnce(i32) + Send + 'static) -> Self {
        self.on_database_opened = Some(Box::new(f));
        self
    }
}

impl std::fmt::Debug for ConnectCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectCallback")
            .field("on_database_opened", &self.on_database_opened.is_some())
            .finish_non_exhaustive()
    }
}

/// RC's `RCIMIWEngine`, backed by `rcimd`.
///
/// Every method blocks until the daemon answers; callbacks and the status listener
/// run on a background thread. Do not call it from async code (use
/// [`Client`](crate::Client) there): it works, but blocks an executor thread.
///
/// When `rcimd` cannot be reached, calls return 33001 (CLIENT_NOT_INIT), log the
/// typed error with `tracing`, and keep it for [`Engine::last_error`].
pub struct Engine {
    shared: Arc<Shared>,
    /// `None` when the runtime could not be built; every call then returns 33001.
    runtime: Option<tokio::runtime::Runtime>,
}

/// What the engine's tasks share with it.
struct Shared {
    app_key: String,
    options: ClientOptions,
    client: tokio::sync::Mutex<Option<Client>>,
    last_error: Mutex<Option<ClientError>>,
    status_listener: Mutex<Option<StatusListener>>,
    /// The callback thread's queue; `None` when the thread could not be started, and
    /// callbacks then run on the runtime instead.
    jobs: Option<Mutex<mpsc::Sender<Job>>>,
}

impl Shared {
    fn record(&self, err: &ClientError) {
        tracing::warn!(error = %err, "rcimd cannot be used");
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(err.clone());
    }

    /// Runs `job` on the callback thread, after every job queued before it.
    fn dispatch(&self, job: impl FnOnce() + Send + 'static) {
        let job: Job = Box::new(job);
        let job = match &self.jobs {
            Some(jobs) => match jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(job)
            {
                Ok(()) => return,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        run_callback(job);
    }

    /// The attached client, attaching first when there is none or it is closed.
    async fn client(self: &Arc<Self>) -> Result<Client, ClientError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        match Client::attach_with_events(self.options.clone()).await {
            Ok((client, events)) => {
                let status = StatusFeed {
                    last: client.welcome().status.link.status,
                    latest: client.link_receiver(),
                    events,
                };
                tokio::spawn(status.forward(Arc::downgrade(self)));
                *slot = Some(client.clone());
                Ok(client)
            }
            Err(err) => {
                self.record(&err);
                Err(err)
            }
        }
    }
}

/// Runs one user callback; a panic in it is logged, not spread to the engine.
fn run_callback(job: Job) {
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        tracing::error!("an rcim callback panicked");
    }
}

/// One attached client's status changes, on their way to the status listener.
struct StatusFeed {
    /// The status the listener last heard of (the Welcome's to begin with).
    last: ConnectionStatus,
    /// The client's latest state, to resynchronise after a lag.
    latest: tokio::sync::watch::Receiver<rcim_proto::status::LinkState>,
    events: Events,
}

impl StatusFeed {
    /// Calls the listener each time the status actually changes, until the session
    /// ends or the engine is gone. After a lag it reports the latest status.
    async fn forward(mut self, shared: Weak<Shared>) {
        while let Some(item) = self.events.next().await {
            let status = match item {
                Ok(Event::StatusChanged(state)) => state.status,
                Ok(_) => continue,
                Err(Lagged { .. }) => self.latest.borrow().status,
            };
            if status == self.last {
                continue;
            }
            self.last = status;
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let listener = shared
                .status_listener
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(listener) = listener {
                shared.dispatch(move || listener(status));
            }
        }
    }
}

impl Engine {
    /// RC's `RCIMIWEngine.create(appKey, options)`. Does not touch the daemon yet:
    /// the first call attaches.
    pub fn create(app_key: &str, options: EngineOptions) -> Engine {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("rcim-engine")
            .enable_all()
            .build();
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("rcim-callbacks".to_owned())
            .spawn(move || queue.into_iter().for_each(run_callback));
        let shared = Arc::new(Shared {
            app_key: app_key.to_owned(),
            options: ClientOptions {
                socket: options.socket.clone(),
                client_name: options.client_name,
                wait_for_daemon: options.wait_for_daemon,
            },
            client: tokio::sync::Mutex::new(None),
            last_error: Mutex::new(None),
            status_listener: Mutex::new(None),
            jobs: thread.ok().map(|_| Mutex::new(jobs)),
        });
        let runtime = match runtime {
            Ok(runtime) => Some(runtime),
            Err(e) => {
                shared.record(&ClientError::Io {
                    socket: shared.options.socket_path(),
                    source: Arc::new(e),
                });
                None
            }
        };
        Engine { shared, runtime }
    }

    /// The app key given to [`Engine::create`]. (The daemon connects with the app
    /// key in its own configuration.)
    pub fn app_key(&self) -> &str {
        &self.shared.app_key
    }

    /// RC's `connect(token, timeout, callback)`.
    ///
    /// Returns 0 when the daemon accepted the call: `callback` then fires on the
    /// callback thread, `on_database_opened` (if set) before `on_connected`, each at
    /// most once, `on_connected` exactly once (with 30011 if the daemon goes away
    /// first). Any other return value means no callback will fire: 33003 at once for
    /// an empty, blank, oversized or whitespace-containing token; 33001 when `rcimd`
    /// cannot be reached (see [`Engine::last_error`]); otherwise the daemon's code.
    pub fn connect(&self, token: &str, timeout: i32, callback: ConnectCallback) -> i32 {
        let token = Token::new(token);
        if let Err(why) = token.check_argument() {
            tracing::debug!(why, "connect refused: invalid token argument");
            return RcCode::INVALID_PARAMETER.0;
        }
        let shared = Arc::clone(&self.shared);
        let (code_tx, code_rx) = mpsc::channel();
        let spawned = self.spawn(async move {
            let call = match shared.client().await {
                Ok(client) => client.connect(token, timeout).await,
                Err(err) => Err(err),
            };
            let mut call = match call {
                Ok(call) => call,
                Err(err) => {
                    shared.record(&err);
                    let _ = code_tx.send(err.rc_code().0);
                    return;
                }
            };
            let _ = code_tx.send(call.code());
            let ConnectCallback {
                mut on_database_opened,
                on_connected,
            } = callback;
            while let Some(event) = call.next_callback().await {
                match event {
                    Callback::DatabaseOpened { code } => {
                        if let Some(f) = on_database_opened.take() {
                            shared.dispatch(move || f(code));
                        }
                    }
                    Callback::Connected { code, user_id } => {
                        shared.dispatch(move || on_connected(code, user_id));
                        return;
                    }
                    Callback::MessageSaved { .. } | Callback::MessageSent { .. } => {}
                }
            }
        });
        if !spawned {
            return RcCode::CLIENT_NOT_INIT.0;
        }
        code_rx.recv().unwrap_or(RcCode::CLIENT_NOT_INIT.0)
    }

    /// RC's `disconnect(receivePush)`: signs this device out for every local app.
    /// Returns the daemon's code, or 33001 when it cannot be reached.
    pub fn disconnect(&self, receive_push: bool) -> i32 {
        self.block_on(|shared| async move {
            let result = match shared.client().await {
                Ok(client) => client.disconnect(receive_push).await,
                Err(err) => Err(err),
            };
            result.unwrap_or_else(|err| {
                shared.record(&err);
                err.rc_code().0
            })
        })
        .unwrap_or(RcCode::CLIENT_NOT_INIT.0)
    }

    /// RC's `getConnectionStatus()`: the status as last reported by the daemon, or
    /// `Unconnected` when it cannot be reached.
    pub fn get_connection_status(&self) -> ConnectionStatus {
        self.block_on(|shared| async move {
            match shared.client().await {
                Ok(client) => client.link_state().status,
                Err(_) => ConnectionStatus::Unconnected,
            }
        })
        .unwrap_or(ConnectionStatus::Unconnected)
    }

    /// RC's `onConnectionStatusChanged` listener: called on the callback thread each
    /// time the daemon reports a different status. Replaces any earlier listener.
    ///
    /// Setting it attaches in the background, so status changes caused by other apps
    /// arrive without a call from this one. If the daemon goes away, the listener
    /// resumes after the next call that re-attaches.
    pub fn set_on_connection_status_changed(
        &self,
        f: impl Fn(ConnectionStatus) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .status_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        let shared = Arc::clone(&self.shared);
        self.spawn(async move {
            let _ = shared.client().await;
        });
    }

    /// The last error met while trying to use `rcimd` (kept until a newer one
    /// replaces it), for calls that returned 33001.
    pub fn last_error(&self) -> Option<ClientError> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// RC's `destroy()`: closes the session with the daemon (not a disconnect: the
    /// daemon stays connected for other apps). Callbacks not yet fired never fire.
    pub fn destroy(self) {
        drop(self);
    }

    /// Spawns `fut` on the engine's runtime; false when there is none.
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> bool {
        match &self.runtime {
            Some(runtime) => {
                runtime.spawn(fut);
                true
            }
            None => false,
        }
    }

    /// Runs `f` on the runtime and waits for its result. Uses a channel rather than
    /// `Runtime::block_on` so that it cannot panic when called from async code.
    fn block_on<T, F, Fut>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let (tx, rx) = mpsc::channel();
        let fut = f(shared);
        let spawned = self.spawn(async move {
            let _ = tx.send(fut.await);
        });
        if !spawned {
            return None;
        }
        rx.recv().ok()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Never blocks, so dropping an engine is safe anywhere, even in async code.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("app_key", &self.shared.app_key)
            .field("socket", &self.shared.options.socket_path())
            .finish_non_exhaustive()
    }
}
