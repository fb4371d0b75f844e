//! # rcimd
//!
//! The rcim daemon: one upstream IM connection, shared by every local app of one
//! user. Apps attach over a Unix socket (through `rcim-client` or `rcimctl`), call
//! RC's `connect`, and get RC's callbacks and status events; the server only ever
//! sees one connection.
//!
//! The daemon is a handful of actors (tokio tasks, each with a cloneable handle and a
//! private command enum), each named after what it owns:
//!
//! - [`listener`]: the socket, and who may attach (peer credentials);
//! - [`session`]: one attached client: handshake, requests, its outbound queue;
//! - [`hub`]: the set of attached clients and the fan-out of events to them;
//! - [`link`]: the upstream connection: connect, reconnect, heartbeat, RC's codes;
//! - [`store`]: the per-user SQLite database, on its own thread;
//! - [`vault`]: the token, in the OS keyring;
//! - [`netwatch`]: network changes and resume from sleep, which nudge the link;
//! - [`service`]: what a service manager sees: sd_notify, the watchdog, journald.
//!
//! Start-up binds the socket first, then opens the rest; shutdown stops the listener
//! and the sessions first and the link last. See `docs/ARCHITECTURE.md`.
//!
//! Each part reports failure with its own error type ([`StartError`] for start-up,
//! [`config::SettingsError`], [`vault::VaultError`], [`link::connector::TlsError`],
//! ...), whose message says what failed and what to do; the binary's `main.rs`
//! reports them.

pub mod config;
pub mod hub;
pub mod link;
pub mod listener;
pub mod netwatch;
pub mod service;
pub mod session;
pub mod store;
pub mod vault;

#[cfg(feature = "dev-server")]
pub mod dev;

use link::connector::{ConnectorConfig, TlsError, TlsTrust, Transport};
use link::nodes::ServerList;
use link::{LinkConfig, LinkDeps, LinkHandle};
use rcim_proto::status::StatusSnapshot;
use rcim_proto::{PROTOCOL_VERSION, Token};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vault::{TokenStoreKind, Vault, VaultOptions};

/// The daemon's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything the daemon needs to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The local socket.
    pub socket: PathBuf,
    /// Where per-user databases and the device id live.
    pub data_dir: PathBuf,
    /// The upstream servers: one, or several equivalent nodes to fail over
    /// between (see [`link::nodes`]).
    pub servers: ServerList,
    /// How the server's TLS certificate is checked (for `rcims://`).
    pub tls_trust: TlsTrust,
    /// The app key sent upstream.
    pub app_key: String,
    /// Where the token is kept.
    pub token_store: TokenStoreKind,
    /// Ping after this long without hearing from the server.
    pub ping_after: Duration,
    /// Reconnect when a ping gets no pong within this.
    pub pong_timeout: Duration,
    /// A token to connect with at start-up, beside the stored one (`--dev`).
    pub boot_token: Option<Token>,
    /// A client that takes longer than this to accept a write is dropped.
    pub client_stall_timeout: Duration,
}

/// The default for [`Config::client_stall_timeout`].
pub const DEFAULT_CLIENT_STALL: Duration = Duration::from_secs(30);

/// Shared by sessions: the handles they need and what the status shows.
pub struct Context {
    /// The link.
    pub link: LinkHandle,
    /// The hub.
    pub hub: hub::HubHandle,
    started: Instant,
    /// The token store in use, for the status.
    token_store: vault::StoreName,
    /// The database opener, whose last open the status shows.
    stores: store::StoreOpener,
    /// A client that takes longer than this to accept a write is dropped.
    pub client_stall_timeout: Duration,
}

impl Context {
    /// The status as `rcimctl status` shows it.
    pub fn snapshot(&self) -> StatusSnapshot {
        let report = self.link.report();
        StatusSnapshot {
            link: report.state,
            server: report.server.to_string(),
            clients: self.hub.clients(),
            unread_total: self
                .link
                .store()
                .map_or(0, |store| store.cached_unread_total()),
            uptime_s: self.started.elapsed().as_secs(),
            reconnects: report.reconnects,
            last_error: report.last_error,
            daemon_version: VERSION.into(),
            protocol: PROTOCOL_VERSION,
            token_store: self.token_store.to_string(),
            database: self.stores.info().map(Box::new),
        }
    }
}

/// A daemon that has bound its socket and started its actors.
pub struct Running {
    /// The link, for callers that embed the daemon (`--dev`, tests).
    pub link: LinkHandle,
    /// The socket path.
    pub socket: PathBuf,
    /// The token store in use.
    pub token_store: vault::StoreName,
    /// Whether the link started connecting with a stored token.
    pub boot_connect: bool,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    link_task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops in order: listener and sessions first, the link last.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        if tokio::time::timeout(Duration::from_secs(5), self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some sessions did not end within 5 s");
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.link_task).await;
        tracing::info!("rcimd stopped");
    }

    /// Resolves once the daemon is ready to be announced (sd_notify READY=1): at
    /// once, or, when it connects with a stored token at start-up, once the link
    /// has taken that token (the user's database is then open) — at most 10 s.
    pub async fn ready(&self) {
        if !self.boot_connect {
            return;
        }
        let mut watch = self.link.watch();
        let started = watch.wait_for(|r| r.state != rcim_proto::status::LinkState::idle());
        let _ = tokio::time::timeout(Duration::from_secs(10), started).await;
    }

    /// A token that is cancelled when the daemon stops.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// Why the daemon could not start. Each message says what failed; for the data
/// dir and the device id, the OS error is the [`source`](std::error::Error::source)
/// (`rcimd` prints the chain), and the other variants show their part's own error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The TLS configuration for an `rcims://` server could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The socket could not be bound.
    #[error(transparent)]
    Bind(#[from] listener::BindError),
    /// The data dir could not be created.
    #[error("cannot create the data dir {path}")]
    DataDir {
        /// The data dir.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The device id file exists but cannot be read.
    #[error("cannot read {path}")]
    ReadDeviceId {
        /// The device id file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The device id file could not be written.
    #[error("cannot write {path}")]
    WriteDeviceId {
        /// The device id file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The token store could not be opened.
    #[error(transparent)]
    Vault(#[from] vault::VaultError),
}

/// Binds the socket and starts every actor. Returns once the daemon is serving.
pub async fn start(config: Config) -> Result<Running, StartError> {
    start_with(config, None).await
}

/// Like [`start`], on a listener the caller already holds (`inherited`, from socket
/// activation) instead of binding `config.socket`.
pub async fn start_with(
    config: Config,
    inherited: Option<listener::Bound>,
) -> Result<Running, StartError> {
    // One scheme for the whole list (`ServerList` checks it), so one transport.
    let transport = Transport::for_server(config.servers.first(), &config.tls_trust)?;
    let bound = match inherited {
        Some(bound) => bound,
        None => listener::bind(&config.socket)?,
    };
    store::create_private_dir(&config.data_dir).map_err(|source| StartError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let device_id = device_id(&config.data_dir)?;

    // The token is filed under the first server, so a single --server keeps the
    // entry it always had (docs/DECISIONS.md, failover).
    let vault = Vault::open(VaultOptions::new(
        config.token_store,
        &config.servers.first().to_string(),
        &config.app_key,
    ))
    .await?;
    let token_store = vault.store();
    let boot_token = match config.boot_token.clone() {
        Some(token) => Some(token),
        None => vault.usable_token().await,
    };
    let boot_connect = boot_token.is_some();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (hub, _hub_task) = hub::spawn();
    let link_config = LinkConfig {
        connector: ConnectorConfig {
            servers: config.servers.clone(),
            transport,
            app_key: config.app_key.clone(),
            device_id,
            dial_timeout: Duration::from_secs(10),
            connack_timeout: Duration::from_secs(10),
        },
        ping_after: config.ping_after,
        pong_timeout: config.pong_timeout,
    };
    let stores = store::StoreOpener::with_keys(&config.data_dir, store::Keys::from_vault(&vault));
    let deps = LinkDeps {
        stores: stores.clone(),
        vault,
        hub: hub.clone(),
    };
    let (link, link_task) = link::spawn(link_config, deps, boot_token, shutdown.clone());
    netwatch::spawn(link.clone(), shutdown.clone());
    let ctx = Arc::new(Context {
        link: link.clone(),
        hub,
        started: Instant::now(),
        token_store,
        stores,
        client_stall_timeout: config.client_stall_timeout,
    });
    let socket = bound.path().to_owned();
    tracker.spawn(listener::run(bound, ctx, shutdown.clone(), tracker.clone()));
    tracing::info!(
        "rcimd {VERSION} ready on {} (server {}, data {})",
        socket.display(),
        config.servers,
        config.data_dir.display()
    );
    Ok(Running {
        link,
        socket,
        token_store,
        boot_connect,
        shutdown,
        tracker,
        link_task,
    })
}

/// This device's stable id, created on first start.
fn device_id(data_dir: &Path) -> Result<String, StartError> {
    let path = data_dir.join("device-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(StartError::ReadDeviceId { path, source }),
    }
    let id = uuid::Uuid::new_v4().to_string();
    if let Err(source) = std::fs::write(&path, format!("{id}\n")) {
        return Err(StartError::WriteDeviceId { path, source });
    }
    Ok(id)
}

/// The default data dir: `$XDG_DATA_HOME/rcim`, else `~/.local/share/rcim`.
pub fn default_data_dir() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rcim")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn an_unwritable_device_id_names_the_file_and_keeps_the_os_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = device_id(&missing).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot write {}", missing.join("device-id").display())
        );
        assert!(err.source().is_some(), "the OS error is the source");
    }
}
