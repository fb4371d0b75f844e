//! The link: owns the one upstream connection and RC's connection semantics.
//!
//! Every local `connect` lands here. The link keeps a list of *waiters* (callers
//! whose `onConnected` is still due, each with its own deadline) and decides:
//!
//! - whether to dial: while any waiter, or the start-up auto-connect, still wants a
//!   connection, or at any time once a connection has succeeded (drops are always
//!   reconnected, as RC promises);
//! - when: at once for a fresh connect, then on RC's schedule ([`backoff`]);
//! - where: with several servers, each round of attempts starts at the one that
//!   last worked and each failed attempt moves on to the next ([`nodes`]); a
//!   terminal error is about the user or the app, not the server, so it is never
//!   tried elsewhere;
//! - what each caller hears: `DatabaseOpened` as soon as the user's database is open
//!   (the token names the user, so that is before the CONNACK), then exactly one
//!   `Connected` — success, a terminal error, or 34006 when its own timeout passed.
//!
//! Terminal errors stop the link and are told to every waiter once; transient ones
//! are retried. The state is published on a `watch` (for status snapshots) and as an
//! event to every attached client (for status listeners).
//!
//! The actor is a single task with a `select!` over commands, the current phase
//! (waiting, dialing, connected) and the earliest waiter deadline. Dialing is a
//! future held in the phase, so commands keep being served while a connect is in
//! flight.
//!
//! Messages are not the link's business: on a live connection it hands what comes
//! in to the connection's inbox (`inbox.rs`: sync, gaps, ordered commits, acks) and what
//! apps send to its outbox (`outbox.rs`), and gets back events to publish and, when
//! something failed, the [`Failure`] that ends the connection. Only the run loop
//! here reacts to a failure and publishes to the hub, so a message can be traced
//! from frame to event in one place: `Link::on_frame`, then `inbox.rs`.

pub mod backoff;
pub mod connector;
mod inbox;
pub mod nodes;
mod outbox;
mod requests;
mod typing;

use crate::hub::HubHandle;
use crate::store::{StoreError, StoreHandle, StoreOpener};
use crate::vault::Vault;
use connector::{ConnectorConfig, Failure, ServerAddr, Upstream, WriteError};
use inbox::Inbox;
use outbox::Outbox;
use rcim_proto::ipc::{Callback, Event, TypingUser, check_send_message};
use rcim_proto::message::{ConversationKey, ConversationType, TYPING_STATUS, typing_content};
use rcim_proto::status::{ConnectionStatus, ErrorInfo, LinkState};
use rcim_proto::token::TokenClaims;
use rcim_proto::upstream::StatusPublish;
use rcim_proto::upstream::{ClientMsg, ServerMsg};
use rcim_proto::{FrameError, RcCode, Token};
pub use requests::ANSWER_TIMEOUT;
use requests::{HistoryAnswer, Pending, RecallAnswer, Requests};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use typing::{TypingBoard, TypingLimiter};

/// How the link behaves; everything time-related is here so tests can shrink it.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// How to reach the server.
    pub connector: ConnectorConfig,
    /// Send a ping after this long without hearing from the server.
    pub ping_after: Duration,
    /// Give up on the connection when no pong comes within this after a ping.
    pub pong_timeout: Duration,
}

/// What the link reports for status snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkReport {
    /// The current state.
    pub state: LinkState,
    /// Automatic reconnections that succeeded.
    pub reconnects: u64,
    /// The last error met, with what happened.
    pub last_error: Option<ErrorInfo>,
    /// The server in use: the one connected to, else the one being (or last)
    /// tried, else the first of the list.
    pub server: ServerAddr,
}

/// The answer to a call with callbacks (`connect`, `sendMessage`): the immediate
/// code and, when it is 0, the callbacks in RC's order.
#[derive(Debug)]
pub struct Call {
    /// 0 accepted, otherwise the rejection (and no callback will come).
    pub code: RcCode,
    /// For `connect`: `DatabaseOpened` (when the database was opened or tried),
    /// then one `Connected`. For `sendMessage`: `MessageSaved`, then one
    /// `MessageSent` (which may come after a reconnect, or never if the daemon
    /// stops first: the message then waits in the outbox). Closed at once when the
    /// call was rejected.
    pub callbacks: mpsc::Receiver<Callback>,
}

impl Call {
    fn rejected(code: RcCode) -> Self {
        let (_, callbacks) = mpsc::channel(1);
        Self { code, callbacks }
    }
}

enum Command {
    Connect {
        token: Token,
        timeout: Option<Duration>,
        reply: oneshot::Sender<Call>,
    },
    Disconnect {
        keep_push: bool,
        forget_token: bool,
        reply: oneshot::Sender<RcCode>,
    },
    Nudge(Nudge),
    SendMessage {
        conversation: ConversationKey,
        object_name: String,
        content: String,
        reply: oneshot::Sender<Call>,
    },
    Reconfigure {
        ping_after: Duration,
        pong_timeout: Duration,
    },
    Recall {
        uid: String,
        reply: oneshot::Sender<RecallAnswer>,
    },
    History {
        conversation: ConversationKey,
        before_time_ms: i64,
        count: u32,
        reply: oneshot::Sender<HistoryAnswer>,
    },
    MarkRead {
        conversation: ConversationKey,
        up_to_ms: i64,
        reply: oneshot::Sender<RcCode>,
    },
    SendStatus {
        status: OutgoingStatus,
        reply: oneshot::Sender<RcCode>,
    },
    SetNotificationLevel {
        conversation: ConversationKey,
        level: i32,
        reply: oneshot::Sender<RcCode>,
    },
}

/// A status message an app sends.
#[derive(Debug)]
pub enum OutgoingStatus {
    /// RC's `sendTypingStatus`: rate-limited per conversation.
    Typing {
        /// The private conversation.
        conversation: ConversationKey,
        /// The type name being typed.
        content_type: String,
    },
    /// Any other status message.
    Other {
        /// Where to.
        conversation: ConversationKey,
        /// The type name.
        object_name: String,
        /// The content.
        content: String,
    },
}

/// Something outside the link that makes a quick reconnect worth trying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nudge {
    /// A network interface, address or route changed.
    NetworkChanged,
    /// The machine woke up from sleep.
    Resumed,
}

/// A cloneable handle to the link actor.
#[derive(Clone, Debug)]
pub struct LinkHandle {
    commands: mpsc::Sender<Command>,
    report: watch::Receiver<LinkReport>,
    store: watch::Receiver<Option<StoreHandle>>,
}

impl LinkHandle {
    /// RC's `connect(token, timeout)`; `timeout_secs` ≤ 0 waits until success or a
    /// terminal error.
    pub async fn connect(&self, token: Token, timeout_secs: i32) -> Call {
        let timeout = u64::try_from(timeout_secs)
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let (reply, answer) = oneshot::channel();
        let sent = self.commands.send(Command::Connect {
            token,
            timeout,
            reply,
        });
        if sent.await.is_err() {
            return Call::rejected(RcCode::CONNECTION_CLOSING);
        }
        answer
            .await
            .unwrap_or_else(|_| Call::rejected(RcCode::CONNECTION_CLOSING))
    }

    /// RC's `disconnect(receivePush)`: signs the device out for every local app.
    /// With `forget_token` (`rcimctl logout`) the stored token is deleted too.
    pub async fn disconnect(&self, keep_push: bool, forget_token: bool) -> RcCode {
        let (reply, answer) = oneshot::channel();
        let command = Command::Disconnect {
            keep_push,
            forget_token,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return RcCode::CONNECTION_CLOSING;
        }
        answer.await.unwrap_or(RcCode::CONNECTION_CLOSING)
    }

    /// Tells the link the network changed or the machine resumed. Never blocks: if
    /// the link is busy, a nudge already queued does the same job.
    pub fn nudge(&self, nudge: Nudge) {
        let _ = self.commands.try_send(Command::Nudge(nudge));
    }

    /// RC's `sendMessage`: stores the message in the outbox and sends it as soon as
    /// the link is connected.
    pub async fn send_message(
        &self,
        conversation: ConversationKey,
        object_name: String,
        content: String,
    ) -> Call {
        let (reply, answer) = oneshot::channel();
        let command = Command::SendMessage {
            conversation,
            object_name,
            content,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return Call::rejected(RcCode::CONNECTION_CLOSING);
        }
        answer
            .await
            .unwrap_or_else(|_| Call::rejected(RcCode::CONNECTION_CLOSING))
    }

    /// RC's `recallMessage`, by the message's server uid: asks the server (the
    /// link must be connected: 30002 otherwise) and, once it agrees, replaces
    /// the stored copy (every attached app gets `MessageRecalled`). Returns 0,
    /// or 25101 (no such message of this user's), 30002, 30003 (no answer within
    /// [`ANSWER_TIMEOUT`]) or 30011 (the connection ended first).
    pub async fn recall(&self, uid: String) -> RcCode {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::Recall { uid, reply })
            .await
            .is_err()
        {
            return RcCode::CONNECTION_CLOSING;
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok((code, _))) => code,
            Ok(Err(_)) => RcCode::RC_SOCKET_DISCONNECTED,
            Err(_) => RcCode::RC_MSG_RESPONSE_TIMEOUT,
        }
    }

    /// RC's `getRemoteHistoryMessages`: a page of the server's copy of
    /// `conversation`, newest first, as messages this user would see (a
    /// message's `id` is its local id when stored here, 0 otherwise). Err: the
    /// RC code (33003, 22406 from the server; 30002 not connected; 30003 no
    /// answer in time; 30011 the connection ended first).
    pub async fn remote_history(
        &self,
        conversation: ConversationKey,
        before_time_ms: i64,
        count: u32,
    ) -> Result<Vec<rcim_proto::message::Message>, RcCode> {
        let (reply, answer) = oneshot::channel();
        let command = Command::History {
            conversation,
            before_time_ms,
            count,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return Err(RcCode::CONNECTION_CLOSING);
        }
        let (page, _has_more) = match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
            Ok(Ok(answer)) => answer?,
            Ok(Err(_)) => return Err(RcCode::RC_SOCKET_DISCONNECTED),
            Err(_) => return Err(RcCode::RC_MSG_RESPONSE_TIMEOUT),
        };
        let me = self.report().state.user_id.unwrap_or_default();
        let store = self.store();
        let mut out = Vec::with_capacity(page.len());
        for wire in page {
            let local = match &store {
                Some(store) => store
                    .message_by_uid(wire.uid.clone())
                    .await
                    .map_err(|_| RcCode::DATABASE_ERROR)?,
                None => None,
            };
            out.push(remote_message(wire, local, &me));
        }
        Ok(out)
    }

    /// Marks a conversation read up to `up_to_ms` (0: its newest message) on every
    /// device: see `Op::MarkRead`. The arguments are checked by the caller
    /// (`Op::check`). 0, or 33002 when no database is open, 33000 when it failed.
    pub async fn mark_read(&self, conversation: ConversationKey, up_to_ms: i64) -> RcCode {
        let (reply, answer) = oneshot::channel();
        let command = Command::MarkRead {
            conversation,
            up_to_ms,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return RcCode::CONNECTION_CLOSING;
        }
        answer.await.unwrap_or(RcCode::CONNECTION_CLOSING)
    }

    /// Sends a status message (typing status rate-limited as RC does): 0 sent or
    /// rate-limited, 30002 when not connected.
    pub async fn send_status(&self, status: OutgoingStatus) -> RcCode {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::SendStatus { status, reply })
            .await
            .is_err()
        {
            return RcCode::CONNECTION_CLOSING;
        }
        answer.await.unwrap_or(RcCode::CONNECTION_CLOSING)
    }

    /// RC's `changeConversationNotificationLevel`: kept and queued for the server
    /// in one transaction, sent now or after the next connect. The level is
    /// checked by the caller (`Op::check`). 0, 33002 no database, 33000 failed.
    pub async fn set_notification_level(
        &self,
        conversation: ConversationKey,
        level: i32,
    ) -> RcCode {
        let (reply, answer) = oneshot::channel();
        let command = Command::SetNotificationLevel {
            conversation,
            level,
            reply,
        };
        if self.commands.send(command).await.is_err() {
            return RcCode::CONNECTION_CLOSING;
        }
        answer.await.unwrap_or(RcCode::CONNECTION_CLOSING)
    }

    /// The open database of the current user, for queries that need not go
    /// through the link.
    pub fn store(&self) -> Option<StoreHandle> {
        self.store.borrow().clone()
    }

    /// Changes the heartbeat (SIGHUP reload); takes effect from the next ping.
    pub async fn set_heartbeat(&self, ping_after: Duration, pong_timeout: Duration) {
        let command = Command::Reconfigure {
            ping_after,
            pong_timeout,
        };
        let _ = self.commands.send(command).await;
    }

    /// The latest report.
    pub fn report(&self) -> LinkReport {
        self.report.borrow().clone()
    }

    /// A receiver that sees every new report (for waiting on a state in tests and in
    /// `--dev`).
    pub fn watch(&self) -> watch::Receiver<LinkReport> {
        self.report.clone()
    }
}

/// What the link needs from the rest of the daemon.
pub struct LinkDeps {
    /// Opens per-user databases.
    pub stores: StoreOpener,
    /// Keeps the token.
    pub vault: Vault,
    /// Receives status events for every client.
    pub hub: HubHandle,
}

/// Starts the link actor. With `boot_token`, it connects at once as an
/// infinite-timeout caller of its own (the start-up auto-connect).
pub fn spawn(
    config: LinkConfig,
    deps: LinkDeps,
    boot_token: Option<Token>,
    shutdown: CancellationToken,
) -> (LinkHandle, tokio::task::JoinHandle<()>) {
    let (commands, inbox) = mpsc::channel(64);
    let (report_tx, report) = watch::channel(LinkReport {
        state: LinkState::idle(),
        reconnects: 0,
        last_error: None,
        server: config.connector.servers.first().clone(),
    });
    let (store_tx, store) = watch::channel(None);
    let link = Link {
        config,
        deps,
        report: report_tx,
        database: UserDatabase {
            user_id: None,
            slot: StoreSlot::Closed,
            shared: store_tx,
        },
        outbox: Outbox::default(),
        typing_sent: TypingLimiter::default(),
        typing: TypingBoard::default(),
        token: None,
        waiters: Vec::new(),
        persistent: false,
        recovering: false,
        attempt: 0,
        node: 0,
        last_worked: 0,
        phase: Phase::Idle,
    };
    let task = tokio::spawn(link.run(inbox, boot_token, shutdown));
    (
        LinkHandle {
            commands,
            report,
            store,
        },
        task,
    )
}

/// A caller whose `onConnected` is still due.
struct Waiter {
    callbacks: mpsc::Sender<Callback>,
    deadline: Option<Instant>,
    database_told: bool,
}

impl Waiter {
    fn tell(&self, callback: Callback) {
        // Capacity 4 and at most two callbacks per waiter: never full. A closed
        // channel means the caller went away, which is fine.
        let _ = self.callbacks.try_send(callback);
    }
}

/// Who the link is for, and that user's database.
struct UserDatabase {
    /// The user (from the token's claims or the CONNACK).
    user_id: Option<String>,
    slot: StoreSlot,
    /// The open database, shared with the sessions for their queries.
    shared: watch::Sender<Option<StoreHandle>>,
}

impl UserDatabase {
    /// The open database, if any.
    fn handle(&self) -> Option<StoreHandle> {
        self.slot.handle()
    }

    /// What `onDatabaseOpened` says, once an open was tried.
    fn code(&self) -> Option<RcCode> {
        self.slot.code()
    }

    /// Whether `user`'s database is the one open.
    fn is_open_for(&self, user: &str) -> bool {
        self.user_id.as_deref() == Some(user) && matches!(self.slot, StoreSlot::Open(_))
    }

    /// Makes `user`'s database the open one (closing another user's), and returns
    /// what `onDatabaseOpened` says.
    async fn open(&mut self, user: &str, stores: &StoreOpener) -> RcCode {
        self.user_id = Some(user.to_owned());
        self.slot = match stores.open(user).await {
            Ok(handle) => {
                // Status snapshots read the unread total from the handle's cache.
                if let Err(e) = handle.refresh_unread_total().await {
                    tracing::warn!("cannot read the unread total: {e}");
                }
                StoreSlot::Open(handle)
            }
            Err(e) => {
                tracing::error!("cannot open the database of {user}: {e}");
                StoreSlot::Failed
            }
        };
        self.shared.send_replace(self.slot.handle());
        self.slot.code().unwrap_or(RcCode::DATABASE_ERROR)
    }

    /// Forgets the user: a token that does not name one is being tried, and the
    /// database opens once the CONNACK names the user.
    fn forget(&mut self) {
        if self.user_id.is_some() {
            self.user_id = None;
            self.slot = StoreSlot::Closed;
            self.shared.send_replace(None);
        }
    }
}

/// The state of the user's database.
enum StoreSlot {
    Closed,
    Open(StoreHandle),
    Failed,
}

impl StoreSlot {
    fn handle(&self) -> Option<StoreHandle> {
        match self {
            StoreSlot::Open(handle) => Some(handle.clone()),
            StoreSlot::Closed | StoreSlot::Failed => None,
        }
    }

    fn code(&self) -> Option<RcCode> {
        match self {
            StoreSlot::Closed => None,
            StoreSlot::Open(_) => Some(RcCode::SUCCESS),
            StoreSlot::Failed => Some(RcCode::DATABASE_ERROR),
        }
    }
}

type Attempt = Pin<Box<dyn Future<Output = Result<Upstream, Failure>> + Send>>;

enum Phase {
    /// Not connected and not trying.
    Idle,
    /// Waiting to retry.
    Waiting { until: Instant },
    /// An attempt is in flight.
    Dialing { attempt: Attempt },
    /// Connected (boxed: the live state is much larger than the other phases).
    Connected(Box<Live>),
}

struct Live {
    upstream: Upstream,
    user_id: String,
    last_heard: Instant,
    ping_sent: Option<Instant>,
    /// The inbox of this connection; `None` when the user's database is not open
    /// (then nothing can be received on it).
    inbox: Option<Inbox>,
    /// Recall and history requests waiting for the server's answer.
    requests: Requests,
}

/// A frame read from the server, or why none could be.
type Frame = Result<Option<ServerMsg>, FrameError>;

/// What the current phase produced.
enum Step {
    RetryDue,
    Dialed(Result<Upstream, Failure>),
    Frame(Frame),
    HeartbeatDue,
}

impl Phase {
    /// Waits for the current phase to produce something. Cancel-safe: the attempt
    /// lives in the phase and the frame reader keeps partial frames.
    async fn step(&mut self, config: &LinkConfig) -> Step {
        match self {
            Phase::Idle => std::future::pending().await,
            Phase::Waiting { until } => {
                tokio::time::sleep_until(*until).await;
                Step::RetryDue
            }
            Phase::Dialing { attempt } => Step::Dialed(attempt.as_mut().await),
            Phase::Connected(live) => {
                let due = match live.ping_sent {
                    Some(sent) => sent + config.pong_timeout,
                    None => live.last_heard + config.ping_after,
                };
                tokio::select! {
                    frame = live.upstream.reader.read::<ServerMsg>() => Step::Frame(frame),
                    () = tokio::time::sleep_until(due) => Step::HeartbeatDue,
                }
            }
        }
    }
}

struct Link {
    config: LinkConfig,
    deps: LinkDeps,
    report: watch::Sender<LinkReport>,
    /// The user and their database.
    database: UserDatabase,
    /// Messages sent by apps, until the server has them.
    outbox: Outbox,
    /// Which typing statuses this device may send now.
    typing_sent: TypingLimiter,
    /// Who is typing where, as received.
    typing: TypingBoard,
    /// The token to connect with.
    token: Option<Token>,
    waiters: Vec<Waiter>,
    /// Keep the connection up with no waiter: set by a success or the boot token.
    persistent: bool,
    /// A live connection dropped and has not come back yet.
    recovering: bool,
    /// Attempts since the last success (the current one included).
    attempt: u32,
    /// The index of the server in use (connected, or dialed last).
    node: usize,
    /// The index of the server the last success was with; each round of attempts
    /// starts there ([`nodes::pick`]).
    last_worked: usize,
    phase: Phase,
}

impl Link {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<Command>,
        boot_token: Option<Token>,
        shutdown: CancellationToken,
    ) {
        if let Some(token) = boot_token {
            tracing::info!("connecting with the stored token");
            self.persistent = true;
            self.begin(token).await;
            self.dial();
        }
        loop {
            let deadline = self.waiters.iter().filter_map(|w| w.deadline).min();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                command = inbox.recv() => match command {
                    Some(command) => {
                        let handled = self.handle(command).await;
                        self.settle(handled).await;
                    }
                    None => break,
                },
                () = sleep_until_some(deadline) => self.expire_waiters(),
                () = sleep_until_some(self.typing.next_expiry()) => {
                    let expired = self.typing.expire(Instant::now());
                    self.deps.hub.publish_all(expired);
                }
                step = self.phase.step(&self.config) => {
                    let stepped = self.on_step(step).await;
                    self.settle(stepped).await;
                }
            }
        }
        if let Phase::Connected(live) = std::mem::replace(&mut self.phase, Phase::Idle) {
            // A daemon that stops is not a sign-out: say goodbye with push kept, so
            // the server knows at once that this device is offline.
            let _ = live.upstream.close(true, Duration::from_secs(1)).await;
        }
        tracing::debug!("link stopped");
    }

    /// The one place that reacts to a failure of the live connection or of an
    /// attempt: whatever step met it returned it here.
    async fn settle(&mut self, result: Result<(), Failure>) {
        if let Err(failure) = result {
            self.on_failure(failure).await;
        }
    }

    async fn handle(&mut self, command: Command) -> Result<(), Failure> {
        match command {
            Command::Connect {
                token,
                timeout,
                reply,
            } => {
                let call = self.connect(token, timeout).await;
                let _ = reply.send(call);
                Ok(())
            }
            Command::Disconnect {
                keep_push,
                forget_token,
                reply,
            } => {
                self.disconnect(keep_push).await;
                if forget_token {
                    self.token = None;
                    self.deps.vault.delete().await;
                    tracing::info!("the stored token was deleted (logout)");
                }
                let _ = reply.send(RcCode::SUCCESS);
                Ok(())
            }
            Command::Nudge(nudge) => self.on_nudge(nudge).await,
            Command::SendMessage {
                conversation,
                object_name,
                content,
                reply,
            } => {
                let (call, published) = self.send_message(conversation, object_name, content).await;
                let _ = reply.send(call);
                published
            }
            Command::Recall { uid, reply } => {
                let msg = |req_id| ClientMsg::Recall {
                    req_id,
                    message_uid: uid,
                };
                self.request(Pending::Recall(reply), msg).await
            }
            Command::History {
                conversation,
                before_time_ms,
                count,
                reply,
            } => {
                let msg = |req_id| ClientMsg::History {
                    req_id,
                    conversation,
                    before_time_ms,
                    count,
                };
                self.request(Pending::History(reply), msg).await
            }
            Command::Reconfigure {
                ping_after,
                pong_timeout,
            } => {
                tracing::info!(
                    "heartbeat: ping after {ping_after:?}, pong within {pong_timeout:?}"
                );
                self.config.ping_after = ping_after;
                self.config.pong_timeout = pong_timeout;
                if let Phase::Connected(live) = &mut self.phase {
                    live.upstream.write_limit = write_limit(&self.config);
                }
                Ok(())
            }
            Command::MarkRead {
                conversation,
                up_to_ms,
                reply,
            } => {
                let (code, published) = self.mark_read(conversation, up_to_ms).await;
                let _ = reply.send(code);
                published
            }
            Command::SendStatus { status, reply } => {
                let (code, sent) = self.send_status(status).await;
                let _ = reply.send(code);
                sent
            }
            Command::SetNotificationLevel {
                conversation,
                level,
                reply,
            } => {
                let (code, sent) = self.set_notification_level(conversation, level).await;
                let _ = reply.send(code);
                sent
            }
        }
    }

    /// A local app set a conversation's notification level: kept and queued in one
    /// transaction, sent at once when connected. The code, and whether sending
    /// failed the connection.
    async fn set_notification_level(
        &mut self,
        conversation: ConversationKey,
        level: i32,
    ) -> (RcCode, Result<(), Failure>) {
        let Some(store) = self.database.handle() else {
            return (RcCode::DATABASE_ERROR, Ok(()));
        };
        let queued = match store.set_notification_level(conversation, level).await {
            Ok(queued) => queued,
            Err(e) => {
                tracing::error!("cannot keep a notification level: {e}");
                return (RcCode::BIZ_SAVE_MESSAGE_ERROR, Ok(()));
            }
        };
        let sent = match &mut self.phase {
            Phase::Connected(live) => outbox::publish_command(&queued, &mut live.upstream).await,
            _ => Ok(()),
        };
        (RcCode::SUCCESS, sent)
    }

    /// A local app called `markRead`: cleared and queued in one transaction, then
    /// published at once when connected (otherwise after the next connect). The
    /// code, and whether publishing failed the connection.
    async fn mark_read(
        &mut self,
        conversation: ConversationKey,
        up_to_ms: i64,
    ) -> (RcCode, Result<(), Failure>) {
        let Some(store) = self.database.handle() else {
            tracing::info!("markRead refused: no database is open (connect first)");
            return (RcCode::DATABASE_ERROR, Ok(()));
        };
        let marked = match store.mark_read(conversation, up_to_ms).await {
            Ok(marked) => marked,
            Err(e) => {
                tracing::error!("cannot mark a conversation read: {e}");
                return (RcCode::BIZ_SAVE_MESSAGE_ERROR, Ok(()));
            }
        };
        if let Phase::Connected(live) = &mut self.phase {
            for command in &marked.queued {
                if let Err(failure) = outbox::publish_command(command, &mut live.upstream).await {
                    // Queued in the database: sent after the reconnect.
                    return (RcCode::SUCCESS, Err(failure));
                }
            }
        }
        (RcCode::SUCCESS, Ok(()))
    }

    /// A local app sent a status message: out at once when connected, never
    /// queued (a status message is for whoever is online now). The code, and
    /// whether sending failed the connection.
    async fn send_status(&mut self, status: OutgoingStatus) -> (RcCode, Result<(), Failure>) {
        let Phase::Connected(live) = &mut self.phase else {
            return (RcCode::RC_NETWORK_UNAVAILABLE, Ok(()));
        };
        let publish = match status {
            OutgoingStatus::Typing {
                conversation,
                content_type,
            } => {
                if !self.typing_sent.allow(&conversation, Instant::now()) {
                    tracing::debug!("typing status to {conversation:?} within 6 s: not sent");
                    return (RcCode::SUCCESS, Ok(()));
                }
                StatusPublish {
                    conversation,
                    object_name: TYPING_STATUS.to_owned(),
                    content: typing_content(&content_type),
                }
            }
            OutgoingStatus::Other {
                conversation,
                object_name,
                content,
            } => StatusPublish {
                conversation,
                object_name,
                content,
            },
        };
        let sent = live.upstream.send(&ClientMsg::PublishStatus(publish)).await;
        (RcCode::SUCCESS, sent)
    }

    /// A status message from the server: a typing status goes on the board (and
    /// to the apps as `TypingStatus`), anything else to the apps as it is.
    fn on_status(&mut self, message: rcim_proto::message::WireMessage) -> Event {
        if message.object_name == TYPING_STATUS
            && message.conversation.kind == ConversationType::Private
        {
            let content_type = rcim_proto::message::typing_type_of(&message.content)
                .unwrap_or_else(|| "RC:TxtMsg".to_owned());
            let user = TypingUser {
                user_id: message.sender.clone(),
                content_type,
                sent_time_ms: message.sent_time_ms,
            };
            return self
                .typing
                .on_typing(&message.conversation, user, Instant::now());
        }
        Event::StatusMessageReceived { message }
    }

    /// A local app called `sendMessage`: the message goes into the outbox, and out
    /// at once when the link is connected. The call, and whether publishing it
    /// failed the connection.
    async fn send_message(
        &mut self,
        conversation: ConversationKey,
        object_name: String,
        content: String,
    ) -> (Call, Result<(), Failure>) {
        // The session checked the request already (`Op::check`); the handle is a
        // public API, so the link holds to the same contract by itself.
        if let Err(why) = check_send_message(&conversation, &object_name, &content) {
            tracing::info!("sendMessage refused: {why}");
            return (Call::rejected(RcCode::INVALID_PARAMETER), Ok(()));
        }
        let (Some(store), Some(sender)) = (self.database.handle(), self.database.user_id.clone())
        else {
            tracing::info!("sendMessage refused: no database is open (connect first)");
            return (Call::rejected(RcCode::DATABASE_ERROR), Ok(()));
        };
        let saved = self
            .outbox
            .save(&store, sender, conversation, object_name, content)
            .await;
        match saved {
            Ok((call, message)) => {
                let published = match &mut self.phase {
                    Phase::Connected(live) => {
                        self.outbox.publish(&message, &mut live.upstream).await
                    }
                    _ => Ok(()),
                };
                (call, published)
            }
            Err(rejected) => (rejected, Ok(())),
        }
    }

    /// Sends a request that waits for the server's answer (`msg` builds it from
    /// its request id) on the live connection; without one, the caller hears
    /// 30002 at once.
    async fn request(
        &mut self,
        pending: Pending,
        msg: impl FnOnce(u64) -> ClientMsg,
    ) -> Result<(), Failure> {
        let Phase::Connected(live) = &mut self.phase else {
            let code = RcCode::RC_NETWORK_UNAVAILABLE;
            match pending {
                Pending::Recall(reply) => drop(reply.send((code, None))),
                Pending::History(reply) => drop(reply.send(Err(code))),
            }
            return Ok(());
        };
        let req_id = live.requests.add(pending);
        live.upstream.send(&msg(req_id)).await
    }

    /// The server answered a recall or history request.
    async fn on_answer(&mut self, msg: ServerMsg, events: &mut Vec<Event>) -> Result<(), Failure> {
        let Phase::Connected(live) = &mut self.phase else {
            return Ok(());
        };
        match msg {
            ServerMsg::RecallAck {
                req_id,
                code,
                message,
            } => {
                let Some(Pending::Recall(reply)) = live.requests.take(req_id) else {
                    tracing::debug!("RecallAck for unknown request {req_id}");
                    return Ok(());
                };
                if let (0, Some(wire), Some(store)) = (code, &message, self.database.handle()) {
                    let applied = store
                        .apply_recall(wire.uid.clone(), wire.content.clone())
                        .await
                        .map_err(store_failure)?;
                    if let Some(message) = applied {
                        events.push(Event::MessageRecalled { message });
                    }
                }
                let _ = reply.send((RcCode(code), message));
            }
            ServerMsg::HistoryPage {
                req_id,
                code,
                messages,
                has_more,
            } => {
                let Some(Pending::History(reply)) = live.requests.take(req_id) else {
                    tracing::debug!("HistoryPage for unknown request {req_id}");
                    return Ok(());
                };
                let answer = if code == 0 {
                    Ok((messages, has_more))
                } else {
                    Err(RcCode(code))
                };
                let _ = reply.send(answer);
            }
            _ => {}
        }
        Ok(())
    }

    /// A local app called `connect`.
    async fn connect(&mut self, token: Token, timeout: Option<Duration>) -> Call {
        if let Err(why) = token.check_argument() {
            tracing::info!("connect refused: {why}");
            return Call::rejected(RcCode::INVALID_PARAMETER);
        }
        let claimed_user = TokenClaims::peek(token.expose()).ok().map(|c| c.user_id);
        let active = !matches!(self.phase, Phase::Idle);
        if active {
            match (&self.database.user_id, &claimed_user) {
                (Some(current), Some(claimed)) if current != claimed => {
                    tracing::info!(
                        "connect as {claimed} refused: the link is in use for {current}"
                    );
                    return Call::rejected(RcCode::RC_CONNECTION_EXIST);
                }
                (Some(current), None) => {
                    tracing::info!(
                        "connect refused: the token is unreadable and the link is in use for {current}"
                    );
                    return Call::rejected(RcCode::RC_CONNECTION_EXIST);
                }
                _ => {}
            }
            if self.token.as_ref() != Some(&token) {
                tracing::info!("a newer token for the same user replaces the stored one");
                self.deps.vault.save(token.clone()).await;
                self.token = Some(token);
            }
        } else {
            self.begin(token).await;
        }

        let (tx, callbacks) = mpsc::channel(4);
        let mut waiter = Waiter {
            callbacks: tx,
            deadline: timeout.map(|t| Instant::now() + t),
            database_told: false,
        };
        if let Some(code) = self.database.code() {
            waiter.tell(Callback::DatabaseOpened { code: code.0 });
            waiter.database_told = true;
        }
        match &self.phase {
            Phase::Connected(live) => {
                waiter.tell(Callback::Connected {
                    code: 0,
                    user_id: Some(live.user_id.clone()),
                });
            }
            Phase::Idle => {
                self.waiters.push(waiter);
                self.dial();
            }
            Phase::Waiting { .. } | Phase::Dialing { .. } => self.waiters.push(waiter),
        }
        Call {
            code: RcCode::SUCCESS,
            callbacks,
        }
    }

    /// Takes `token` as the link's token, from idle: saves it and opens the user's
    /// database when the token names the user.
    async fn begin(&mut self, token: Token) {
        let claimed_user = TokenClaims::peek(token.expose()).ok().map(|c| c.user_id);
        self.deps.vault.save(token.clone()).await;
        self.token = Some(token);
        self.attempt = 0;
        self.recovering = false;
        match claimed_user {
            Some(user) => self.open_store(&user).await,
            None => self.database.forget(),
        }
    }

    /// Makes `user`'s database the open one (closing another user's).
    async fn open_store(&mut self, user: &str) {
        if self.database.is_open_for(user) {
            return;
        }
        let code = self.database.open(user, &self.deps.stores).await;
        for waiter in &mut self.waiters {
            if !waiter.database_told {
                waiter.tell(Callback::DatabaseOpened { code: code.0 });
                waiter.database_told = true;
            }
        }
    }

    /// Starts one connection attempt now.
    fn dial(&mut self) {
        let Some(token) = self.token.clone() else {
            return;
        };
        self.attempt = self.attempt.saturating_add(1);
        let config = self.config.connector.clone();
        // One dial per step whatever the list's length: each failed attempt of a
        // round moves on to the next server (module `nodes`).
        self.node = nodes::pick(self.last_worked, self.attempt, config.servers.len());
        let server = config.servers.get(self.node).clone();
        if config.servers.len() > 1 {
            tracing::debug!("attempt {} goes to {server}", self.attempt);
        }
        self.report.send_if_modified(|report| {
            let changed = report.server != server;
            report.server = server.clone();
            changed
        });
        self.phase = Phase::Dialing {
            attempt: Box::pin(async move { connector::connect(&config, &server, &token).await }),
        };
        self.publish(ConnectionStatus::Connecting, RcCode::SUCCESS, None);
    }

    /// Whether anyone still wants a connection.
    fn wanted(&self) -> bool {
        self.persistent || !self.waiters.is_empty()
    }

    async fn on_step(&mut self, step: Step) -> Result<(), Failure> {
        match step {
            Step::RetryDue => {
                self.dial();
                Ok(())
            }
            Step::Dialed(Ok(upstream)) => self.on_connected(upstream).await,
            Step::Dialed(Err(failure)) => Err(failure),
            Step::Frame(frame) => self.on_frame(frame).await,
            Step::HeartbeatDue => self.on_heartbeat().await,
        }
    }

    async fn on_connected(&mut self, mut upstream: Upstream) -> Result<(), Failure> {
        let user = upstream.ack.user_id.clone().unwrap_or_default();
        self.open_store(&user).await;
        if self.recovering {
            self.report.send_modify(|r| r.reconnects += 1);
        }
        tracing::info!(
            "connected to {} as {user} (attempt {})",
            self.report.borrow().server,
            self.attempt
        );
        self.last_worked = self.node;
        self.persistent = true;
        self.recovering = false;
        self.attempt = 0;
        for waiter in self.waiters.drain(..) {
            waiter.tell(Callback::Connected {
                code: 0,
                user_id: Some(user.clone()),
            });
        }
        upstream.write_limit = write_limit(&self.config);
        let now = Instant::now();
        self.phase = Phase::Connected(Box::new(Live {
            upstream,
            user_id: user,
            last_heard: now,
            ping_sent: None,
            inbox: None,
            requests: Requests::default(),
        }));
        self.publish(ConnectionStatus::Connected, RcCode::SUCCESS, None);
        // Ask for the backlog, then send what is queued.
        let Phase::Connected(live) = &mut self.phase else {
            return Ok(());
        };
        let Some(store) = self.database.handle() else {
            tracing::error!(
                "the database is not open: messages cannot be received or sent on this connection"
            );
            return Ok(());
        };
        live.inbox = Some(Inbox::start(store.clone(), &mut live.upstream).await?);
        self.outbox.resend(&store, &mut live.upstream).await
    }

    /// Frames from the live connection: each goes to its handler, a burst of pushes
    /// may bring the next frame along, and what the handlers report for clients is
    /// published after each.
    async fn on_frame(&mut self, frame: Frame) -> Result<(), Failure> {
        let mut next = Some(frame);
        let mut events = Vec::new();
        while let Some(frame) = next.take() {
            let handled = self.handle_frame(frame, &mut events).await;
            // A message from someone typing ends their typing status.
            let done_typing: Vec<Event> = events
                .iter()
                .filter_map(|event| match event {
                    Event::MessageReceived { message, .. } => self
                        .typing
                        .on_message(&message.conversation, &message.sender),
                    _ => None,
                })
                .collect();
            events.extend(done_typing);
            // What was committed is shown, even when the connection failed after.
            self.deps.hub.publish_all(std::mem::take(&mut events));
            next = handled?;
        }
        Ok(())
    }

    /// One frame from the live connection. Returns a frame read past it (after a
    /// burst of pushes), to be handled next.
    async fn handle_frame(
        &mut self,
        frame: Frame,
        events: &mut Vec<Event>,
    ) -> Result<Option<Frame>, Failure> {
        let Phase::Connected(live) = &mut self.phase else {
            return Ok(None);
        };
        if let Ok(Some(_)) = &frame {
            // Any frame proves the connection is alive.
            live.last_heard = Instant::now();
            live.ping_sent = None;
        }
        let failure = match frame {
            Ok(Some(ServerMsg::Pong)) => return Ok(None),
            Ok(Some(ServerMsg::PubAck(ack))) => {
                if let Some(store) = self.database.handle() {
                    self.outbox.on_pub_ack(ack, &store).await?;
                }
                return Ok(None);
            }
            Ok(Some(ServerMsg::Push(entry))) => {
                return match &mut live.inbox {
                    Some(inbox) => inbox.on_push(entry, &mut live.upstream, events).await,
                    None => Ok(None),
                };
            }
            Ok(Some(ServerMsg::SyncBatch { entries, has_more })) => {
                if let Some(inbox) = &mut live.inbox {
                    inbox
                        .on_sync_batch(entries, has_more, &mut live.upstream, events)
                        .await?;
                }
                return Ok(None);
            }
            Ok(Some(answer @ (ServerMsg::RecallAck { .. } | ServerMsg::HistoryPage { .. }))) => {
                self.on_answer(answer, events).await?;
                return Ok(None);
            }
            Ok(Some(ServerMsg::Status(message))) => {
                events.push(self.on_status(message));
                return Ok(None);
            }
            Ok(Some(ServerMsg::Disconnect { reason })) => Failure::with(
                reason.to_rc(),
                format!("the server ended the connection (reason {})", reason.0),
            ),
            Ok(Some(ServerMsg::ConnAck(_))) => Failure::with(
                RcCode::RC_MSG_DATA_INCOMPLETE,
                "a second CONNACK on a live connection",
            ),
            Ok(None) => Failure::with(
                RcCode::RC_SOCKET_DISCONNECTED,
                "the server closed the connection",
            ),
            Err(FrameError::Io(e)) => connector::io_failure(&e),
            Err(e) => Failure::with(RcCode::RC_MSG_DATA_INCOMPLETE, e),
        };
        Err(failure)
    }

    async fn on_heartbeat(&mut self) -> Result<(), Failure> {
        let Phase::Connected(live) = &self.phase else {
            return Ok(());
        };
        if live.ping_sent.is_some() {
            return Err(Failure::with(
                RcCode::RC_PONG_RECV_FAIL,
                format!("no pong within {:?}", self.config.pong_timeout),
            ));
        }
        self.ping().await
    }

    /// Sends a ping on the live connection; the pong deadline starts now.
    async fn ping(&mut self) -> Result<(), Failure> {
        let Phase::Connected(live) = &mut self.phase else {
            return Ok(());
        };
        let detail = match live
            .upstream
            .write(&ClientMsg::Ping, self.config.pong_timeout)
            .await
        {
            Ok(()) => {
                live.ping_sent = Some(Instant::now());
                return Ok(());
            }
            Err(WriteError::Failed(e)) => format!("sending the heartbeat failed: {e}"),
            Err(WriteError::TimedOut(_)) => "sending the heartbeat timed out".to_owned(),
        };
        Err(Failure::with(RcCode::RC_PING_SEND_FAIL, detail))
    }

    /// The network changed or the machine resumed: RC restarts its schedule from the
    /// first step. A connection that is up may be dead now, so it is checked at once
    /// with a ping (a dead one is noticed within the pong timeout, not the ping
    /// interval); a pending retry is brought forward to the first step.
    async fn on_nudge(&mut self, nudge: Nudge) -> Result<(), Failure> {
        let unchecked = matches!(&self.phase, Phase::Connected(live) if live.ping_sent.is_none());
        if unchecked {
            tracing::info!("{nudge:?}: checking the connection now");
            return self.ping().await;
        }
        if let Phase::Waiting { until } = self.phase {
            let now = Instant::now();
            let first = now + backoff::jittered(backoff::backoff(1), backoff::random_unit());
            if first < until {
                tracing::info!("{nudge:?}: retrying now instead of in {:?}", until - now);
                self.attempt = 0;
                self.phase = Phase::Waiting { until: first };
                self.publish_waiting(first - now);
            }
        }
        Ok(())
    }

    /// An attempt failed or a live connection was lost.
    async fn on_failure(&mut self, failure: Failure) {
        let code = failure.code;
        let was_connected = matches!(self.phase, Phase::Connected(_));
        self.phase = Phase::Idle;
        self.report.send_modify(|r| {
            r.last_error = Some(ErrorInfo {
                code: code.0,
                message: failure.message(),
            });
        });
        if code.is_terminal() {
            self.stop(code).await;
            return;
        }
        if !self.wanted() {
            // Unreachable in practice (waiters expiring stop the attempt), but never
            // leave a state that claims to be trying.
            self.publish(ConnectionStatus::Unconnected, code, None);
            return;
        }
        if was_connected {
            self.recovering = true;
        }
        // RC's schedule counts the waits of a round: a round that began with a
        // fresh connect dialed at once, so its first wait follows attempt 1; a round
        // that began with a lost connection waited once already before attempt 1.
        let waits = if self.recovering {
            self.attempt.saturating_add(1)
        } else {
            self.attempt
        };
        let wait = backoff::jittered(backoff::backoff(waits), backoff::random_unit());
        let server = self.report.borrow().server.clone();
        if was_connected {
            tracing::warn!("connection to {server} lost: {failure}; reconnecting in {wait:?}");
        } else {
            tracing::info!(
                "connection attempt {} to {server} failed: {failure}; retrying in {wait:?}",
                self.attempt
            );
        }
        self.phase = Phase::Waiting {
            until: Instant::now() + wait,
        };
        let status = if code == RcCode::RC_NETWORK_IS_DOWN_OR_UNREACHABLE {
            ConnectionStatus::NetworkUnavailable
        } else if self.recovering {
            ConnectionStatus::Suspend
        } else {
            ConnectionStatus::Connecting
        };
        self.publish(status, code, Some(wait));
    }

    /// A terminal error: tell every waiter once and stop trying.
    async fn stop(&mut self, code: RcCode) {
        tracing::warn!("connection refused for good: {code}");
        for waiter in self.waiters.drain(..) {
            waiter.tell(Callback::Connected {
                code: code.0,
                user_id: None,
            });
        }
        self.persistent = false;
        self.recovering = false;
        if code.rejects_token() {
            self.deps.vault.mark_rejected().await;
        }
        self.publish(terminal_status(code), code, None);
    }

    /// Waiters whose timeout passed get 34006; when nobody is left wanting a
    /// connection that never came, the link stops with status timeout.
    fn expire_waiters(&mut self) {
        let now = Instant::now();
        let before = self.waiters.len();
        self.waiters.retain(|waiter| {
            let expired = waiter.deadline.is_some_and(|d| d <= now);
            if expired {
                waiter.tell(Callback::Connected {
                    code: RcCode::RC_CONNECT_TIMEOUT.0,
                    user_id: None,
                });
            }
            !expired
        });
        if self.waiters.len() == before {
            return;
        }
        tracing::info!("{} connect call(s) timed out", before - self.waiters.len());
        if !self.wanted() && matches!(self.phase, Phase::Dialing { .. } | Phase::Waiting { .. }) {
            self.phase = Phase::Idle;
            self.report.send_modify(|r| {
                r.last_error = Some(ErrorInfo::from_code(RcCode::RC_CONNECT_TIMEOUT));
            });
            self.publish(ConnectionStatus::Timeout, RcCode::RC_CONNECT_TIMEOUT, None);
        }
    }

    /// A local app called `disconnect`: sign out for everyone.
    async fn disconnect(&mut self, keep_push: bool) {
        if let Phase::Connected(live) = std::mem::replace(&mut self.phase, Phase::Idle) {
            let closed = live
                .upstream
                .close(keep_push, self.config.pong_timeout)
                .await;
            if let Err(WriteError::Failed(e)) = closed {
                tracing::debug!("the goodbye to the server failed: {e}");
            }
        }
        self.phase = Phase::Idle;
        for waiter in self.waiters.drain(..) {
            waiter.tell(Callback::Connected {
                code: RcCode::CONNECTION_CLOSING.0,
                user_id: None,
            });
        }
        self.persistent = false;
        self.recovering = false;
        self.attempt = 0;
        tracing::info!("signed out (keep push: {keep_push})");
        self.publish(ConnectionStatus::SignOut, RcCode::SUCCESS, None);
    }

    /// Publishes the current status again with a new time to the next attempt.
    fn publish_waiting(&mut self, wait: Duration) {
        let state = self.report.borrow().state.clone();
        self.publish(state.status, RcCode(state.code), Some(wait));
    }

    /// Publishes a new state to the watch and, when it changed, to every client.
    fn publish(&mut self, status: ConnectionStatus, code: RcCode, retry_in: Option<Duration>) {
        let state = LinkState {
            status,
            code: code.0,
            user_id: self.database.user_id.clone(),
            attempt: if status == ConnectionStatus::Connected {
                0
            } else {
                self.attempt
            },
            retry_in_ms: retry_in.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let changed = self.report.send_if_modified(|report| {
            if report.state == state {
                return false;
            }
            report.state = state.clone();
            true
        });
        if changed {
            self.deps.hub.publish(Event::StatusChanged(state));
        }
    }
}

/// A message of the server's history as this user sees it: its local copy when
/// this device stores it (local id and state), otherwise the server's with id 0,
/// sent when `me` sent it, received otherwise.
fn remote_message(
    wire: rcim_proto::message::WireMessage,
    local: Option<rcim_proto::message::Message>,
    me: &str,
) -> rcim_proto::message::Message {
    use rcim_proto::message::{Direction, Message, SentStatus};
    if let Some(local) = local {
        return local;
    }
    let mine = wire.sender == me;
    Message {
        id: 0,
        uid: Some(wire.uid),
        conversation: wire.conversation,
        sender: wire.sender,
        object_name: wire.object_name,
        content: wire.content,
        sent_time_ms: wire.sent_time_ms,
        received_time_ms: 0,
        direction: if mine {
            Direction::Send
        } else {
            Direction::Receive
        },
        sent_status: if mine {
            SentStatus::Sent
        } else {
            SentStatus::Received
        },
        client_msg_id: None,
    }
}

/// How long a write to the server may take before the connection counts as lost.
fn write_limit(config: &LinkConfig) -> Duration {
    config.pong_timeout.max(Duration::from_secs(5))
}

/// The store failed: the connection is restarted, so that the server sends again
/// what was not committed (nothing uncommitted was acknowledged).
fn store_failure(e: StoreError) -> Failure {
    tracing::error!("the database failed: {e}; the connection is restarted");
    Failure::with(RcCode::BIZ_SAVE_MESSAGE_ERROR, e)
}

/// The status a terminal error leaves the link in.
fn terminal_status(code: RcCode) -> ConnectionStatus {
    match code {
        RcCode::RC_CONN_TOKEN_INCORRECT | RcCode::RC_CONN_TOKEN_EXPIRE => {
            ConnectionStatus::TokenIncorrect
        }
        RcCode::RC_CONN_USER_BLOCKED | RcCode::RC_DISCONN_EXCEPTION => {
            ConnectionStatus::ConnUserBlocked
        }
        RcCode::RC_DISCONN_KICK | RcCode::RC_CONN_OTHER_DEVICE_LOGIN => {
            ConnectionStatus::KickedOfflineByOtherClient
        }
        _ => ConnectionStatus::Unconnected,
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
#[cfg(test)]
mod tests;
