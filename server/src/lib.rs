//! # rcim-server
//!
//! The reference IM server for rcim: one process that hosts one app (one app key and
//! its secret) and offers
//!
//! - the **IM endpoint**: TCP, optionally TLS, speaking the upstream wire protocol of
//!   [`rcim_proto::upstream`] (CONNECT/CONNACK with RC's codes, PING/PONG, DISCONNECT,
//!   a heartbeat timeout, kicks, blocks; PUBLISH/PUBACK, SYNC/SYNCBATCH, PUSH, ACK),
//!   which is what `rcimd` connects to;
//! - the **Server API**: HTTP, compatible with RC's v1 Server API (form-encoded POSTs
//!   signed with `App-Key`/`Nonce`/`Timestamp`/`Signature`, JSON answers with RC's
//!   codes), which is what an app's backend calls to register users, get tokens,
//!   manage groups and send messages.
//!
//! State (users, moderation, messages, inboxes, groups) lives in SQLite at
//! `DATA_DIR/server.db`. The binary `rcim-server` is a thin
//! wrapper around [`start`]; the daemon's `--dev` mode and the integration tests embed
//! the server in-process the same way, and [`RunningServer::serve_stream`] runs the
//! connection handler on any byte stream (e.g. `tokio::io::duplex` under paused
//! time).
//!
//! ## Surface
//!
//! Server API endpoints (all `POST`, signed; errors: 1002 parameter, 401/1001
//! unknown App-Key, 401/1004 signature — including a `Timestamp` more than 5 minutes
//! off and a `Nonce` used twice within that window —, 429/1008 too many signed
//! requests in the window, 1000 internal, 1508 body over 100 KB;
//! [`check_request`] runs the same checks without a server):
//!
//! | Endpoint | Form | Answer |
//! |---|---|---|
//! | `/user/getToken.json` | `userId`, `name`, `portraitUri`? | `{"code":200,"userId","token"}`; the token expires after `--token-lifetime` (0 = never) |
//! | `/user/checkOnline.json` | `userId` | `{"code":200,"status":"1"\|"0"}` |
//! | `/user/token/expire.json` | `userId` (repeatable, 1–20), `time` (ms since the epoch, integer ≥ 0) | `{"code":200}`; tokens of those users issued before `time` get CONNACK 10 at their next CONNECT; live connections stay |
//! | `/user/block.json` | `userId` (repeatable, 1–20), `minute` (1–43200) | `{"code":200}`; live connections get DISCONNECT 2 (USER_BLOCKED), CONNECTs get CONNACK 9 until unblocked or the minutes pass |
//! | `/user/unblock.json` | `userId` (repeatable, 1–20) | `{"code":200}` |
//! | `/user/block/query.json` | (none) | `{"code":200,"users":[{"userId","blockEndTime":"YYYY-MM-DD HH:MM:SS"}]}` (UTC) |
//! | `/message/private/publish.json` | `fromUserId`, `toUserId` (repeatable, 1–1000), `objectName`, `content` (RC's optional push fields are ignored) | `{"code":200}`; one message per distinct recipient, in its private conversation with `fromUserId` |
//! | `/message/system/publish.json` | `fromUserId`, `toUserId` (repeatable, 1–100), `objectName`, `content` | `{"code":200}`; one message per distinct recipient, in its system conversation with `fromUserId` |
//! | `/message/group/publish.json` | `fromUserId`, `toGroupId` (repeatable, 1–3), `objectName`, `content` | `{"code":200}`; one message per group, to every member but `fromUserId`, who (as on RC) need not be a member |
//! | `/message/recall.json` | `fromUserId`, `conversationType` (1 private, 3 group, 6 system: the Server API's numbers), `targetId`, `messageUID`, `sentTime`, `isAdmin`?, `isDelete`? | `{"code":200}`; the message becomes `RC:RcNtf` and every device of both sides gets an `RC:RcCmd` inbox entry; 1002 when no message of `fromUserId`'s matches |
//! | `/group/create.json` | `userId` (repeatable, 1–1000), `groupId`, `groupName` | `{"code":200}`; an existing group is renamed and gets the members added |
//! | `/group/join.json` | `userId` (repeatable, 1–1000), `groupId`, `groupName`? | `{"code":200}`; creates the group if needed |
//! | `/group/quit.json` | `userId` (repeatable, 1–1000), `groupId` | `{"code":200}` |
//! | `/group/dismiss.json` | `userId` (the operator), `groupId` | `{"code":200}`; the group and its memberships are deleted |
//! | `/stats.json` | (none) | `{"code":200,"connects_accepted","connects_rejected","online","messages","kicks"}` |
//! | `/rcim/inbox/query.json` | `userId` | `{"code":200,"entries":[{"seq","uid"}]}`: the user's inbox (rcim, for tests) |
//! | `/rcim/message/sent.json` | `fromUserId` | `{"code":200,"messages":[{"clientMsgId","uid"}]}`: what the user published as an IM client (rcim, for tests) |
//! | `/rcim/message/bulk.json` | `fromUserId`, `toUserId`, `count`, `objectName`, `contentPrefix` | `{"code":200,"count"}`: `count` private messages in transactions of 1,000 (rcim, for tests) |
//!
//! `rcim-server` flags: `--im-listen`, `--api-listen`, `--data-dir`, `--app-key`,
//! `--app-secret` (or `RCIM_APP_SECRET`), `--heartbeat-timeout SECS` (90),
//! `--token-lifetime SECS` (0 = never), `--tls-cert PEM --tls-key PEM` (both or
//! neither; the IM endpoint then speaks TLS), `--log`. The ready line on stdout is
//! `{"event":"ready","im_addr","im_url","api_url","tls":true|false}`.
//!
//! CONNACK codes the server sends, in the order the checks run: 1 wire version
//! unsupported; 4 app key unknown, token malformed, bad signature or issued for
//! another app key; 10 token expired (its own expiry, or issued before the user's
//! `token/expire` cut-off); 9 user blocked; 3 the database failed during the checks;
//! otherwise 0 (and every older connection of the same user on the same platform is
//! kicked; other platforms coexist).
//!
//! ## Messaging
//!
//! Every accepted message is stored once (a time-ordered UUID v7 uid, the sender,
//! the conversation as addressed, type name, content, time, the client's message
//! id) and appended to each recipient's **inbox**, numbered 1, 2, 3, … per user
//! with no gaps, with the conversation as that recipient sees it: a private
//! message from alice is (private, alice) for bob, a group message (group, id), a
//! system message from `news` (system, news). A publish is one transaction, fan-out
//! included. What the IM endpoint does with each client frame:
//!
//! - `Publish`: checked (33003 bad argument or a system conversation — those come
//!   only from the Server API; 30016 content over 128 KB; 22406 a group the sender
//!   is not in), de-duplicated on (sender, client message id) — a resend gets
//!   PubAck 0 with the first uid and time and stores nothing — then stored and
//!   answered PubAck 0 with the uid and time. The recipients' live connections
//!   are woken to push it.
//! - `Sync{since_seq}`: the next at most 200 inbox entries after `since_seq` (fewer
//!   when they would not fit in one frame) and `has_more`. After a batch with
//!   `has_more: false` the connection is live: every new inbox entry is pushed as
//!   `Push`, in order, exactly once per connection, with nothing lost between the
//!   last batch and the first push. A `Sync` while live is answered the same way;
//!   pushes resume once it has caught up.
//! - `Recall{req_id, message_uid}`: `RecallAck` 0 with the message as stored now
//!   (`RC:RcNtf`), or 25101 when the caller sent no such message (module `recall`).
//! - `History{req_id, conversation, before_time_ms, count}`: `HistoryPage`, newest
//!   first, 33003 for a count outside 1..=100, 22406 for a group the user is not in.
//! - `Ack{seq}`: recorded (the user's acknowledged sequence number only moves
//!   forward); beyond the user's last sequence number it is DISCONNECT 4.
//!
//! DISCONNECT reasons the server sends: 1 KICKED (a newer connection of the same
//! user and platform), 2 USER_BLOCKED (`/user/block.json`), 3 SERVER_SHUTDOWN, 4
//! PROTOCOL_ERROR (malformed frame, a non-CONNECT first frame, a second CONNECT, an
//! ack beyond the inbox), 5 HEARTBEAT_TIMEOUT. A database failure while serving a
//! client frame ends that connection with 3 (the client reconnects).
//!
//! ## Layout
//!
//! [`config`] (what to start), `state` (what every part shares), `im` (the accept
//! loop, TLS, one task per connection, and each connection's delivery cursor),
//! [`registry`] (live connections and per-user inbox signals), `messaging`
//! (publishing), `recall` (recalls), `groups` (membership), `moderation` (token expiry and blocks),
//! `api` (the HTTP routes and signing),
//! [`token`] (issuing and verifying tokens), [`users`] (RC's user field rules),
//! [`db`] (SQLite), `tls` (loading the certificate), [`api_client`] (a minimal
//! signed HTTP client for tests and tools), `testca` (feature `testca`: a test CA),
//! `testpg` (feature `testpg`: a throw-away PostgreSQL cluster for tests),
//! [`error`] (what an operation can fail with).
//!
//! ## Errors
//!
//! Typed, one enum per kind of failure: [`StartError`] from [`start`] (with
//! [`ConfigError`], [`TlsError`] and [`db::OpenError`] inside), [`Error`] from
//! every [`RunningServer`] method (an [`InvalidArgument`] with the same text the
//! Server API answers with code 1002, a refused message, or a database failure),
//! and [`api_client::ApiClientError`]. Each message is complete on one line: it
//! says what could not be done and ends with the underlying cause.

pub mod api_client;
pub mod cluster;
pub mod config;
pub mod db;
pub mod error;
pub mod registry;
#[cfg(feature = "testca")]
pub mod testca;
#[cfg(feature = "testpg")]
pub mod testpg;
pub mod token;
pub mod users;

mod api;
mod groups;
mod im;
mod messaging;
mod moderation;
mod recall;
mod state;
mod tls;

pub use api::request::{Rejection, check_request};
pub use api::signature::{REPLAY_WINDOW, ReplayGuard};
pub use config::{ConfigError, DEFAULT_HEARTBEAT_TIMEOUT, ServerConfig, TlsFiles};
pub use error::{Error, InvalidArgument};
pub use groups::MAX_MEMBERS_PER_CALL;
pub use messaging::{
    BULK_TRANSACTION, MAX_GROUPS_PER_PUBLISH, MAX_PRIVATE_RECIPIENTS, MAX_SYSTEM_RECIPIENTS,
};
pub use moderation::{MAX_BLOCK_MINUTES, MAX_USERS_PER_CALL};
pub use state::Stats;
pub use tls::TlsError;

use rcim_proto::code::DisconnectReason;
use rcim_proto::message::ConversationType;
use registry::online::{Control, OnlineRegistry};
use state::{Counters, Shared};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::Zeroizing;

/// How long [`RunningServer::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "server.db";

/// Why [`start`] failed. Each message says what could not be done and ends with
/// the underlying cause, so it is complete on its own line (the binary prints it
/// as `rcim-server: error: …`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// A configuration value is unusable; fix it.
    #[error("invalid server configuration: {0}")]
    Config(#[from] ConfigError),
    /// The TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}: {cause}", .path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The database cannot be opened or migrated.
    #[error(transparent)]
    Db(#[from] db::OpenError),
    /// The blocking start-up task (TLS files, data directory, database) panicked
    /// or was cancelled.
    #[error("the startup task failed: {0}")]
    StartupTask(tokio::task::JoinError),
    /// The IM endpoint cannot listen on its address (in use, not local, no
    /// permission).
    #[error("cannot listen for IM connections on {addr}: {cause}")]
    ImListen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        cause: std::io::Error,
    },
    /// The Server API cannot listen on its address.
    #[error("cannot listen for the Server API on {addr}: {cause}")]
    ApiListen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the system said.
        cause: std::io::Error,
    },
    /// A bound listener cannot tell its address.
    #[error("{endpoint} listener address: {cause}")]
    ListenerAddress {
        /// `IM` or `API`.
        endpoint: &'static str,
        /// What the system said.
        cause: std::io::Error,
    },
}

/// Starts a server: loads the TLS certificate and key (if configured), creates the
/// data directory, opens and migrates the database, binds both listeners, then
/// serves in background tasks. Returns once both listeners are bound, so their
/// addresses are known and connections can be made.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    config.validate()?;

    let data_dir = config.data_dir.clone();
    let tls_files = config.tls.clone();
    let (db, tls) = tokio::task::spawn_blocking(move || {
        let tls = tls_files.as_ref().map(tls::server_config).transpose()?;
        std::fs::create_dir_all(&data_dir).map_err(|cause| StartError::DataDir {
            path: data_dir.clone(),
            cause,
        })?;
        let db = db::Db::open(&data_dir.join(DB_FILE))?;
        Ok::<_, StartError>((db, tls))
    })
    .await
    .map_err(StartError::StartupTask)??;
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let is_tls = tls.is_some();

    let (im, api) = (config.im_listen, config.api_listen);
    let im_listener = TcpListener::bind(im)
        .await
        .map_err(|cause| StartError::ImListen { addr: im, cause })?;
    let api_listener = TcpListener::bind(api)
        .await
        .map_err(|cause| StartError::ApiListen { addr: api, cause })?;
    let listener_address = |endpoint| move |cause| StartError::ListenerAddress { endpoint, cause };
    let im_addr = im_listener.local_addr().map_err(listener_address("IM"))?;
    let api_addr = api_listener.local_addr().map_err(listener_address("API"))?;

    let shared = Arc::new(Shared {
        tokens: token::TokenIssuer::new(&config.app_key, &config.app_secret),
        app_secret: Zeroizing::new(config.app_secret.clone()),
        heartbeat_timeout: config.heartbeat_timeout,
        token_lifetime: config.token_lifetime,
        db,
        online: Arc::new(OnlineRegistry::new()),
        inbox: Default::default(),
        status: Default::default(),
        counters: Counters::default(),
        block_epoch: Default::default(),
        echo_user: Default::default(),
    });
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();

    tracker.spawn(im::accept_loop(
        im_listener,
        tls,
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
    tracing::info!(
        %im_addr,
        %api_addr,
        tls = is_tls,
        app_key = config.app_key.as_str(),
        "rcim-server started"
    );

    Ok(RunningServer {
        shared,
        im_addr,
        api_addr,
        tls: is_tls,
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
    tls: bool,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("im_addr", &self.im_addr)
            .field("api_addr", &self.api_addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// The bound address of the IM endpoint.
    pub fn im_addr(&self) -> SocketAddr {
        self.im_addr
    }

    /// Whether the IM endpoint speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The IM endpoint as the daemon's server URL: `rcim://ADDR`, or `rcims://ADDR`
    /// with TLS.
    pub fn im_url(&self) -> String {
        let scheme = if self.tls { "rcims" } else { "rcim" };
        format!("{scheme}://{}", self.im_addr)
    }

    /// The base URL of the Server API, e.g. `http://127.0.0.1:8080`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The app key this server hosts.
    pub fn app_key(&self) -> &str {
        self.shared.app_key()
    }

    /// Registers (or updates) `user_id` with display name `name` and issues a token
    /// for it, as `/user/getToken.json` does (expiring after the configured token
    /// lifetime; never by default).
    ///
    /// Does one small blocking SQLite write; fine to call from async tests and tools.
    pub fn issue_token(&self, user_id: &str, name: &str) -> Result<String, Error> {
        let user = users::checked_user(user_id, name, "")?;
        self.shared.db.upsert_user_blocking(&user)?;
        Ok(users::issue(&self.shared, user_id).expose().to_owned())
    }

    /// Issues a token for `user_id` (which need not be registered) that expires at
    /// `expires_at_ms` (ms since the Unix epoch; 0 = never). For tests of expiry.
    pub fn issue_token_expiring(&self, user_id: &str, expires_at_ms: i64) -> Result<String, Error> {
        users::check_user_id(user_id)?;
        let token = self
            .shared
            .tokens
            .issue(user_id, rcim_proto::time::now_ms(), expires_at_ms);
        Ok(token.expose().to_owned())
    }

    /// Invalidates every token of `user_id` issued before `before_ms` (ms since the
    /// Unix epoch), as `/user/token/expire.json` does: the next CONNECT with such a
    /// token gets CONNACK 10; live connections stay up.
    pub async fn expire_tokens(&self, user_id: &str, before_ms: i64) -> Result<(), Error> {
        moderation::expire_tokens(&self.shared, vec![user_id.to_owned()], before_ms).await
    }

    /// Blocks `user_id` for `minutes` (1 to [`MAX_BLOCK_MINUTES`]), as
    /// `/user/block.json` does: its live connections get `Disconnect {
    /// USER_BLOCKED }` at once and its CONNECTs get CONNACK 9 until
    /// [`RunningServer::unblock`] or the minutes pass.
    pub async fn block(&self, user_id: &str, minutes: u32) -> Result<(), Error> {
        moderation::block(&self.shared, vec![user_id.to_owned()], minutes).await?;
        Ok(())
    }

    /// Lifts a block, as `/user/unblock.json` does.
    pub async fn unblock(&self, user_id: &str) -> Result<(), Error> {
        moderation::unblock(&self.shared, vec![user_id.to_owned()]).await
    }

    /// Sends one private message from `from` to each of `to` (repeats count once),
    /// as `/message/private/publish.json` does; each lands in the recipient's
    /// private conversation with `from`. Returns the uid of each message, in the
    /// order of `to`.
    pub async fn publish_private(
        &self,
        from: &str,
        to: &[&str],
        object_name: &str,
        content: &str,
    ) -> Result<Vec<String>, Error> {
        let kind = ConversationType::Private;
        messaging::publish_from_api(&self.shared, kind, from, owned(to), object_name, content).await
    }

    /// Sends one system message from `from` to each of `to`, as
    /// `/message/system/publish.json` does; each lands in the recipient's system
    /// conversation with `from`. Returns the uid of each message.
    pub async fn publish_system(
        &self,
        from: &str,
        to: &[&str],
        object_name: &str,
        content: &str,
    ) -> Result<Vec<String>, Error> {
        let kind = ConversationType::System;
        messaging::publish_from_api(&self.shared, kind, from, owned(to), object_name, content).await
    }

    /// Sends one message from `from` to group `group_id`, as
    /// `/message/group/publish.json` does: every member but `from` gets it; `from`
    /// need not be a member. Returns the message's uid.
    pub async fn publish_group(
        &self,
        from: &str,
        group_id: &str,
        object_name: &str,
        content: &str,
    ) -> Result<String, Error> {
        let kind = ConversationType::Group;
        let to = vec![group_id.to_owned()];
        let uids =
            messaging::publish_from_api(&self.shared, kind, from, to, object_name, content).await?;
        uids.into_iter()
            .next()
            .ok_or_else(|| Error::Db(db::DbError::other("the group publish stored no message")))
    }

    /// Stores `count` private messages from `from` to `to` (content
    /// `content_prefix` followed by 0, 1, …) in transactions of
    /// [`BULK_TRANSACTION`], waking `to`'s connections once per transaction, as
    /// `/rcim/message/bulk.json` does. Returns the uids in order. For tests that
    /// stream a large backlog.
    pub async fn publish_private_bulk(
        &self,
        from: &str,
        to: &str,
        count: u32,
        object_name: &str,
        content_prefix: &str,
    ) -> Result<Vec<String>, Error> {
        messaging::publish_bulk(&self.shared, from, to, count, object_name, content_prefix).await
    }

    /// Creates group `group_id` named `name` with `members` (an existing group is
    /// renamed and gets the members added), as `/group/create.json` does.
    pub async fn create_group(
        &self,
        group_id: &str,
        name: &str,
        members: &[&str],
    ) -> Result<(), Error> {
        let (group_id, name) = (group_id.to_owned(), Some(name.to_owned()));
        groups::join(&self.shared, group_id, name, owned(members), true).await
    }

    /// Adds `members` to group `group_id` (creating it if needed), as
    /// `/group/join.json` does.
    pub async fn join_group(&self, group_id: &str, members: &[&str]) -> Result<(), Error> {
        let group_id = group_id.to_owned();
        groups::join(&self.shared, group_id, None, owned(members), false).await
    }

    /// Removes `members` from group `group_id`, as `/group/quit.json` does.
    pub async fn quit_group(&self, group_id: &str, members: &[&str]) -> Result<(), Error> {
        groups::quit(&self.shared, group_id.to_owned(), owned(members)).await
    }

    /// The members of group `group_id`, sorted (empty for an unknown group).
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<String>, Error> {
        Ok(self.shared.db.group_members(group_id).await?)
    }

    /// Recalls message `uid` on behalf of its sender `from`, as `/message/recall.json`
    /// does (without the conversation and time check): `Ok(true)` when it is
    /// recalled now or was before, `Ok(false)` when `from` sent no such message.
    pub async fn recall(&self, from: &str, uid: &str) -> Result<bool, Error> {
        Ok(recall::recall(&self.shared, from, uid, None, false, false)
            .await?
            .is_some())
    }

    /// The uids of the recall commands (`RC:RcCmd`) in the inbox of `user_id`, in
    /// order: the entries a client applies instead of storing.
    pub async fn recall_commands(&self, user_id: &str) -> Result<Vec<String>, Error> {
        Ok(self.shared.db.recall_commands(user_id).await?)
    }

    /// The inbox of `user_id`: every (sequence number, message uid), in order. The
    /// authoritative list a client's database is compared with.
    pub async fn inbox_uids(&self, user_id: &str) -> Result<Vec<(u64, String)>, Error> {
        Ok(self.shared.db.inbox_uids(user_id).await?)
    }

    /// The last inbox sequence number of `user_id` and the highest one a client
    /// acknowledged (both 0 for a user that never received anything).
    pub async fn inbox_state(&self, user_id: &str) -> Result<(u64, u64), Error> {
        Ok(self.shared.db.inbox_state(user_id).await?)
    }

    /// Every (client message id, uid) that `sender` published as an IM client, in
    /// the order they were accepted: one entry per accepted message, however often
    /// it was resent.
    pub async fn messages_from(&self, sender: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(self.shared.db.messages_from(sender).await?)
    }

    /// Every (uid, object name) that `sender` published as an IM client, in the
    /// order they were accepted: tells its messages from its read notifications
    /// (`RC:ReadNtf`) and read syncs (`RC:SRSMsg`).
    pub async fn object_names_from(&self, sender: &str) -> Result<Vec<(String, String)>, Error> {
        Ok(self.shared.db.object_names_from(sender).await?)
    }

    /// Serves one IM connection on `stream` (the plain wire protocol, no TLS), as if
    /// it had been accepted on the IM endpoint: same handshake deadline (from now),
    /// same checks, tracked like TCP connections so that shutdown covers it. Must be
    /// called within a tokio runtime; returns at once.
    ///
    /// For in-process tests, e.g. with `tokio::io::duplex` under paused time: the
    /// connection's only off-task work (SQLite) runs on `spawn_blocking`, which
    /// paused time waits for.
    pub fn serve_stream<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let deadline = tokio::time::Instant::now() + im::session::HANDSHAKE_TIMEOUT;
        let span = tracing::info_span!("im", peer = "in-process", user = tracing::field::Empty);
        self.tracker.spawn(tracing::Instrument::instrument(
            im::session::run(
                stream,
                Arc::clone(&self.shared),
                self.cancel.clone(),
                deadline,
            ),
            span,
        ));
    }

    /// Runs an echo user, `user_id` (registered as "Echo"): from now on every
    /// private message an IM client sends to it comes straight back to the
    /// sender, from `user_id`, with the same type and content. One per server; a
    /// second call with another id is refused. For demos (`rcimd --dev`) and
    /// tests.
    pub fn start_echo_user(&self, user_id: &str) -> Result<(), Error> {
        users::check_id("userId", user_id)?;
        let now = rcim_proto::time::now_ms();
        let user = db::User {
            user_id: user_id.to_owned(),
            name: "Echo".to_owned(),
            portrait_uri: String::new(),
            created_ms: now,
            updated_ms: now,
        };
        self.shared.db.upsert_user_blocking(&user)?;
        let running = self.shared.echo_user.get_or_init(|| user_id.to_owned());
        if running != user_id {
            return Err(InvalidArgument::Message(format!(
                "this server already runs the echo user {running}"
            ))
            .into());
        }
        Ok(())
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

/// Owned copies of borrowed ids.
fn owned(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| (*id).to_owned()).collect()
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.shared
            .online
            .broadcast(Control::Disconnect(DisconnectReason::SERVER_SHUTDOWN));
    }
}
