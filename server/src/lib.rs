//! # rcim-server
//!
//! The reference IM server for rcim: one process that hosts one app (one app key and
//! its secret) and offers
//!
//! - the **IM endpoint**: TCP, speaking the upstream wire protocol of
//!   [`rcim_proto::upstream`] (CONNECT/CONNACK with RC's codes, PING/PONG, DISCONNECT,
//!   a heartbeat timeout), which is what `rcimd` connects to;
//! - the **Server API**: HTTP, compatible with RC's v1 Server API (form-encoded POSTs
//!   signed with `App-Key`/`Nonce`/`Timestamp`/`Signature`, JSON answers with RC's
//!   codes), which is what an app's backend calls to register users and get tokens.
//!
//! State lives in SQLite at `DATA_DIR/server.db`. The binary `rcim-server` is a thin
//! wrapper around [`start`]; the daemon's `--dev` mode and the integration tests embed
//! the server in-process the same way.
//!
//! Layout: [`config`] (what to start), `state` (what every part shares), `im` (the
//! accept loop and one task per connection), [`registry`] (live connections),
//! `api` (the HTTP routes and signing), [`token`] (issuing and verifying tokens),
//! [`users`] (RC's user field rules), [`db`] (SQLite), [`api_client`] (a minimal
//! signed HTTP client for tests and tools).

pub mod api_client;
pub mod config;
pub mod db;
pub mod registry;
pub mod token;
pub mod users;

mod api;
mod im;
mod state;

pub use config::{DEFAULT_HEARTBEAT_TIMEOUT, ServerConfig};
pub use state::Stats;

use anyhow::Context as _;
use rcim_proto::code::DisconnectReason;
use registry::online::{Control, OnlineRegistry};
use state::{Counters, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroizing;

/// How long [`RunningServer::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "server.db";

/// Starts a server: creates the data directory, opens and migrates the database,
/// binds both listeners, then serves in background tasks. Returns once both
/// listeners are bound, so their addresses are known and connections can be made.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    config.validate().context("invalid server configuration")?;

    let data_dir = config.data_dir.clone();
    let db = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
        db::Db::open(&data_dir.join(DB_FILE))
    })
    .await
    .context("the database task failed")??;

    let im_listener = TcpListener::bind(config.im_listen)
        .await
        .with_context(|| format!("cannot listen for IM connections on {}", config.im_listen))?;
    let api_listener = TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("cannot listen for the Server API on {}", config.api_listen))?;
    let im_addr = im_listener.local_addr().context("IM listener address")?;
    let api_addr = api_listener.local_addr().context("API listener address")?;

    let shared = Arc::new(Shared {
        tokens: token::TokenIssuer::new(&config.app_key, &config.app_secret),
        app_secret: Zeroizing::new(config.app_secret.clone()),
        heartbeat_timeout: config.heartbeat_timeout,
        db,
        online: Arc::new(OnlineRegistry::new()),
        counters: Counters::default(),
    });
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();

    tracker.spawn(im::accept_loop(
        im_listener,
        Arc::clone(&shared),
        cancel.clone(),
        tracker.clone(),
    ));
    let router = api::router(Arc::clone(&shared));
    let api_cancel = cancel.clone();
    tracker.spawn(async move {
        let serve = axum::serve(api_listener, router)
            .with_graceful_shutdown(async move { api_cancel.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!(error = %e, "the Server API stopped");
        }
    });
    tracing::info!(%im_addr, %api_addr, app_key = config.app_key.as_str(), "rcim-server started");

    Ok(RunningServer {
        shared,
        im_addr,
        api_addr,
        cancel,
        tracker,
    })
}

/// A started server. Dropping it stops accepting and ends every connection without
/// waiting; [`RunningServer::shutdown`] does the same politely and waits.
pub struct RunningServer {
    shared: Arc<Shared>,
    im_addr: SocketAddr,
    api_addr: SocketAddr,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("im_addr", &self.im_addr)
            .field("api_addr", &self.api_addr)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address of the IM endpoint.
    pub fn im_addr(&self) -> SocketAddr {
        self.im_addr
    }

    /// The base URL of the Server API, e.g. `http://127.0.0.1:8080`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The app key this server hosts.
    pub fn app_key(&self) -> &str {
        self.shared.app_key()
    }

    /// Registers (or updates) `user_id` with display name `name` and issues a
    /// non-expiring token for it, as `/user/getToken.json` does.
    ///
    /// Does one small blocking SQLite write; fine to call from async tests and tools.
    pub fn issue_token(&self, user_id: &str, name: &str) -> anyhow::Result<String> {
        let user = users::checked_user(user_id, name, "")?;
        self.shared.db.upsert_user_blocking(&user)?;
        Ok(users::issue(&self.shared, user_id).expose().to_owned())
    }

    /// Issues a token for `user_id` (which need not be registered) that expires at
    /// `expires_at_ms` (ms since the Unix epoch; 0 = never). For tests of expiry.
    pub fn issue_token_expiring(
        &self,
        user_id: &str,
        expires_at_ms: i64,
    ) -> anyhow::Result<String> {
        users::check_user_id(user_id).map_err(anyhow::Error::msg)?;
        let token = self
            .shared
            .tokens
            .issue(user_id, state::now_ms(), expires_at_ms);
        Ok(token.expose().to_owned())
    }

    /// A snapshot of the server's counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Whether `user_id` has a live IM connection.
    pub fn is_online(&self, user_id: &str) -> bool {
        self.shared.online.is_online(user_id)
    }

    /// Stops accepting, sends `Disconnect { SERVER_SHUTDOWN }` to every live IM
    /// connection, and waits (up to 5 s) for every connection and the HTTP server to
    /// finish.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let told = self
            .shared
            .online
            .broadcast(Control::Disconnect(DisconnectReason::SERVER_SHUTDOWN));
        tracing::info!(connections = told, "shutting down");
        self.tracker.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
        }
        tracing::info!("rcim-server stopped");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.shared
            .online
            .broadcast(Control::Disconnect(DisconnectReason::SERVER_SHUTDOWN));
    }
}
