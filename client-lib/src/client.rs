//! The async [`Client`]: one attached session with `rcimd`, and its documented
//! calls.
//!
//! This file is the public API; the machinery under it lives in files named for
//! what each owns:
//!
//! - [`crate::options`]: what the app chooses ([`ClientOptions`],
//!   [`ReattachPolicy`](crate::ReattachPolicy)).
//! - [`crate::driver`]: the socket. One driver task per client dials, does the
//!   handshake, writes queued frames, reads every frame, and re-attaches after the
//!   daemon went away when the options say so.
//! - [`crate::route`]: where each frame from the daemon goes (the answer to a
//!   request, a call's callbacks, an event through the [`crate::sequence`]r to the
//!   engine's observer and the broadcast every [`Events`] stream reads), and the
//!   synthesized last callbacks (30011) when the daemon goes away.
//! - [`crate::call`]: the handles of calls with callbacks ([`ConnectCall`],
//!   [`SendCall`]).
//! - [`crate::events`]: the [`Events`] stream, which reads the route table's
//!   broadcast.
//!
//! Every call builds its [`Op`] and checks it with [`check_locally`] (the contract's
//! [`Op::check`], the same check the daemon makes) before anything is sent: a
//! refused argument is 33003 at once, without asking the daemon. The
//! [`Engine`](crate::Engine) checks with the same function and then calls the
//! unchecked paths here, so each request is checked once.

use crate::call::{CallState, ConnectCall, FirstAnswer, SendCall, call_code};
use crate::driver::{FirstCall, Session};
use crate::error::ClientError;
use crate::events::Events;
use crate::options::ClientOptions;
use crate::route::{CallKind, CallbackRoute, EventObserver, Sink, Step, StepHook};
use rcim_proto::ipc::{ClientEntry, InvalidArgument, Op, Reply, Welcome};
use rcim_proto::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use rcim_proto::status::LinkState;
use rcim_proto::{RcCode, StatusSnapshot, Token};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// An attached session with `rcimd`.
///
/// Cheap to clone; all clones share one socket. The socket closes when the last
/// clone and the last [`ConnectCall`] / [`SendCall`] are dropped. Closing it is not
/// a `disconnect`: the daemon stays connected for every other app.
///
/// ```no_run
/// use rcim_client::{Client, ClientOptions};
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = Client::attach(ClientOptions::named("my-app")).await?;
/// let status = client.status().await?;
/// println!("{} as {:?}", status.link.status, status.link.user_id);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    session: Arc<Session>,
}

/// Checks a request before it is sent: the contract's [`Op::check`] (exactly what
/// the daemon refuses with 33003), and, beyond it, an empty target id for
/// `getMessages` and `clearUnreadCount`: no conversation has one, so the library
/// refuses it as an argument error (the daemon would accept it and find nothing).
/// `Err` is the code to return at once, 33003 (INVALID_PARAMETER), without asking
/// the daemon; why is logged.
pub(crate) fn check_locally(op: &Op) -> Result<(), i32> {
    let checked = op.check().and_then(|()| match op {
        Op::GetMessages { conversation, .. }
        | Op::ClearUnreadCount { conversation, .. }
        | Op::GetUnreadCount { conversation }
        | Op::SetConversationTop { conversation, .. }
        | Op::SetNotificationLevel { conversation, .. }
        | Op::RemoveConversation { conversation }
        | Op::SaveDraft { conversation, .. }
        | Op::GetDraft { conversation }
        | Op::DeleteMessagesBefore { conversation, .. }
            if conversation.target_id.is_empty() =>
        {
            Err(InvalidArgument::new(
                "conversation",
                "the target id is empty: name the user or group",
            ))
        }
        _ => Ok(()),
    });
    checked.map_err(|why| {
        tracing::debug!(%why, "request refused locally");
        RcCode::INVALID_PARAMETER.0
    })
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
    /// Must be called inside a tokio runtime: it spawns the driver task.
    ///
    /// ```no_run
    /// use rcim_client::{Client, ClientError, ClientOptions};
    /// # async fn run() {
    /// match Client::attach(ClientOptions::named("my-app")).await {
    ///     Ok(client) => println!("attached to rcimd {}", client.welcome().daemon_version),
    ///     Err(err @ ClientError::DaemonNotRunning { .. }) => eprintln!("{err}"),
    ///     Err(err) => eprintln!("cannot use rcimd: {err}"),
    /// }
    /// # }
    /// ```
    pub async fn attach(options: ClientOptions) -> Result<Client, ClientError> {
        Ok(Self::attach_with_events(options).await?.0)
    }

    /// [`Client::attach`], plus an event stream made before the reader starts: it
    /// misses no event sent after the Welcome, so a status listener that starts from
    /// [`Welcome::status`] sees every change.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use rcim_client::{Client, ClientOptions, Event};
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let (client, mut events) = Client::attach_with_events(ClientOptions::named("tray")).await?;
    /// let mut status = client.welcome().status.link.status;
    /// while let Some(Ok(event)) = events.next().await {
    ///     if let Event::StatusChanged(state) = event {
    ///         status = state.status;
    ///         println!("status: {status}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn attach_with_events(
        options: ClientOptions,
    ) -> Result<(Client, Events), ClientError> {
        Self::attach_observed(options, |_| None).await
    }

    /// [`Client::attach_with_events`] and [`Client::connect`] in one round trip to
    /// the daemon: the `connect` request goes out in the same write as the Hello,
    /// so an app that connects first thing (the usual start) waits for one answer
    /// instead of two. The call is the same as `connect` after `attach`: its code,
    /// then `onDatabaseOpened` and `onConnected`. A token that fails the local
    /// argument check attaches anyway and returns a call rejected with 33003,
    /// without sending the token.
    ///
    /// ```no_run
    /// use rcim_client::{Client, ClientOptions, Token};
    /// # async fn run(token: Token) -> Result<(), rcim_client::ClientError> {
    /// let (client, _events, call) =
    ///     Client::attach_and_connect(ClientOptions::named("my-app"), token, 30).await?;
    /// let connected = call.connected().await;
    /// println!("onConnected({}) as {:?}", connected.code, connected.user_id);
    /// # drop(client);
    /// # Ok(()) }
    /// ```
    pub async fn attach_and_connect(
        options: ClientOptions,
        token: Token,
        timeout_secs: i32,
    ) -> Result<(Client, Events, ConnectCall), ClientError> {
        let op = Op::Connect {
            token,
            timeout_secs,
        };
        if let Err(code) = check_locally(&op) {
            let (client, events) = Self::attach_with_events(options).await?;
            let call = ConnectCall::new(client.rejected(code));
            return Ok((client, events, call));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (client, events, answer) =
            Self::attach_calling(options, |_| None, op, CallKind::Connect, Sink::Channel(tx))
                .await?;
        let code = answer.code().await?;
        let call = ConnectCall::new(client.answered(code, rx));
        Ok((client, events, call))
    }

    /// [`Client::attach_with_events`], with an observer (made from the Welcome) that
    /// sees every event in the reader before any stream does.
    pub(crate) async fn attach_observed(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
    ) -> Result<(Client, Events), ClientError> {
        let (session, events) = Session::start(options, observer, None).await?;
        Ok((Client { session }, events))
    }

    /// [`Client::attach_observed`] that also makes a call with callbacks, written
    /// in the same write as the Hello (see [`Client::attach_calling`]); its steps go
    /// to `hook`, as with [`Client::call_with_hook`]. Returns once attached; the
    /// call's immediate code comes from the [`FirstAnswer`].
    pub(crate) async fn attach_observed_calling(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
        op: Op,
        kind: CallKind,
        hook: StepHook,
    ) -> Result<(Client, FirstAnswer), ClientError> {
        let (client, _events, answer) =
            Self::attach_calling(options, observer, op, kind, Sink::Hook(hook)).await?;
        Ok((client, answer))
    }

    /// Attaches and makes a call with callbacks, written in the same write as the
    /// Hello: attach and the call's answer cost one round trip to the daemon
    /// instead of two. Its steps go to `sink`.
    async fn attach_calling(
        options: ClientOptions,
        observer: impl FnOnce(&Welcome) -> Option<EventObserver>,
        op: Op,
        kind: CallKind,
        sink: Sink,
    ) -> Result<(Client, Events, FirstAnswer), ClientError> {
        let socket = options.socket_path();
        let (first, answer) = FirstCall::new(op, CallbackRoute::new(kind, sink), &socket)?;
        let (session, events) = Session::start(options, observer, Some(first)).await?;
        Ok((Client { session }, events, FirstAnswer::new(kind, answer)))
    }

    /// The daemon's handshake answer: its version, protocol, and the status at the
    /// moment of attaching (of the last re-attach, with [`ClientOptions::reattach`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let welcome = client.welcome();
    /// println!("rcimd {} (protocol {})", welcome.daemon_version, welcome.protocol);
    /// # Ok(()) }
    /// ```
    pub fn welcome(&self) -> Welcome {
        self.session.routes().welcome()
    }

    /// How many times this client re-attached after losing the daemon (always 0
    /// without [`ClientOptions::reattach`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.reattach_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn reattach_count(&self) -> u64 {
        self.session.routes().reattach_count()
    }

    /// The id of the last `MessageReceived` this client passed on (to the engine's
    /// listener and its event streams), or the `since_seq` of a later
    /// [`Client::subscribe`] that skipped forward; `None` before any.
    ///
    /// Message ids are the daemon's local sequence numbers: they only grow, so a
    /// message with an id at or below this one was passed on already (or skipped on
    /// request) and is never passed on again. Keep it to resume in a later run with
    /// [`Client::subscribe`]. Each [`Events`] stream has its own position too
    /// ([`Events::last_message_id`]), which is this one unless the stream lags
    /// behind.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if let Some(seq) = client.last_seq() {
    ///     std::fs::write("last-seq", seq.to_string()).ok();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn last_seq(&self) -> Option<i64> {
        self.session.routes().last_seq()
    }

    /// Has the daemon replay every stored received message with an id above
    /// `since_seq` (its local sequence number; 0 replays everything), then continue
    /// live: the app gets what arrived while it was not running, with no gap and no
    /// repeat at the seam. Returns the daemon's code (0) once it has started the
    /// replay; the messages come as `MessageReceived` events on [`Client::events`]
    /// streams and the engine's listener.
    ///
    /// Every event stream whose position is below `since_seq` (a stream made at
    /// attach, before any message) moves to it: it drops what its buffer still holds
    /// from before and yields the replay, each message once, in order. A stream
    /// already past `since_seq` goes on where it is (nothing it yielded comes again).
    /// So call it right after attaching, with the id the app last processed:
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use rcim_client::{Client, ClientOptions, Event};
    /// # async fn run(saved_seq: i64) -> Result<(), rcim_client::ClientError> {
    /// let (client, mut events) = Client::attach_with_events(ClientOptions::named("bot")).await?;
    /// assert_eq!(client.subscribe(saved_seq).await?, 0);
    /// while let Some(Ok(event)) = events.next().await {
    ///     if let Event::MessageReceived { message, .. } = event {
    ///         // Ids only grow: saved_seq + 1 and later, each once.
    ///         println!("{}", message.id);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(&self, since_seq: i64) -> Result<i32, ClientError> {
        match self.session.subscribe(since_seq.max(0)).await? {
            Reply::Code(code) => Ok(code),
            other => Err(ClientError::unexpected("Subscribe", &other)),
        }
    }

    /// Who is attached to the daemon: each client's session number, name, process
    /// id, whether it lags, and the last message id queued for it.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// for c in client.clients().await? {
    ///     println!("#{} {} pid {:?} lagged {} last {}", c.id, c.name, c.pid, c.lagged, c.last_seq);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn clients(&self) -> Result<Vec<ClientEntry>, ClientError> {
        match self.session.request(Op::Clients, None).await? {
            Reply::Clients(clients) => Ok(clients),
            other => Err(ClientError::unexpected("Clients", &other)),
        }
    }

    /// The socket this client is attached to.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// println!("attached to {}", client.socket().display());
    /// # Ok(()) }
    /// ```
    pub fn socket(&self) -> &Path {
        self.session.socket()
    }

    /// The latest link state known to this client: the one in the Welcome, then
    /// each `StatusChanged` event as the reader task sees it. No round trip.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let link = client.link_state();
    /// println!("{} (code {})", link.status, link.code);
    /// # Ok(()) }
    /// ```
    pub fn link_state(&self) -> LinkState {
        self.session.routes().link()
    }

    /// Whether the daemon connection is gone; every call then fails with
    /// [`ClientError::Disconnected`]. Without [`ClientOptions::reattach`] that is
    /// for good and a new [`Client::attach`] is needed; with it, the client is
    /// re-attaching (see [`Client::is_ended`]).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if client.is_closed() {
    ///     eprintln!("rcimd went away");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_closed(&self) -> bool {
        self.session.routes().is_closed()
    }

    /// Whether the session is over for good: the daemon went away and the client
    /// will not re-attach (re-attach is off, or it gave up). Its event streams have
    /// ended.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert!(!client.is_ended());
    /// # Ok(()) }
    /// ```
    pub fn is_ended(&self) -> bool {
        self.session.routes().is_ended()
    }

    /// Asks the daemon for its full status.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let status = client.status().await?;
    /// println!("rcimd {}: {} to {}", status.daemon_version, status.link.status, status.server);
    /// # Ok(()) }
    /// ```
    pub async fn status(&self) -> Result<StatusSnapshot, ClientError> {
        match self.session.request(Op::Status, None).await? {
            Reply::Status(snapshot) => Ok(snapshot),
            other => Err(ClientError::unexpected("Status", &other)),
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
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// if call.is_accepted() {
    ///     let done = call.connected().await;
    ///     println!("onConnected {} {:?}", done.code, done.user_id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        &self,
        token: Token,
        timeout_secs: i32,
    ) -> Result<ConnectCall, ClientError> {
        let op = Op::Connect {
            token,
            timeout_secs,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(ConnectCall::new(self.rejected(code)));
        }
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
    /// daemon, when the contract's check ([`Op::check`], the daemon's own) refuses
    /// the arguments (an unsendable conversation type, a system conversation, a bad
    /// target id or object name, content over 128 KB); otherwise the daemon's code
    /// (33002: no database, e.g. before the first `connect`).
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
        let op = Op::SendMessage {
            conversation,
            object_name: object_name.to_owned(),
            content: content.to_owned(),
        };
        if let Err(code) = check_locally(&op) {
            return Ok(SendCall::new(self.rejected(code)));
        }
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
        let op = Op::GetMessages {
            conversation,
            sent_time_ms,
            order,
            count,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.messages(op).await
    }

    /// RC's `getConversations`: up to `count` conversations of the given types
    /// (empty: all), most recent first, whose newest message is older than
    /// `start_time_ms` (0: from the most recent), each with its unread count and
    /// last message.
    ///
    /// Results as for [`Client::get_messages`]; a `count` outside 1..=50 is
    /// `Ok(Err(33003))` at once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if let Ok(conversations) = client.get_conversations(&[], 0, 50).await? {
    ///     for c in conversations {
    ///         println!("{} unread with {}", c.unread_count, c.key.target_id);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_conversations(
        &self,
        types: &[ConversationType],
        start_time_ms: i64,
        count: u32,
    ) -> Result<Result<Vec<Conversation>, i32>, ClientError> {
        let op = Op::GetConversations {
            types: types.to_vec(),
            start_time_ms,
            count,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.conversations(op).await
    }

    /// RC's `clearUnreadCount`: the messages of `conversation` received up to
    /// `timestamp_ms` (0: all of them) count as read. Returns the daemon's RC code
    /// (0 on success); an empty target id is 33003 at once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let code = client.clear_unread_count(rcim_client::ConversationKey::private("bob"), 0).await?;
    /// assert_eq!(code, 0);
    /// # Ok(()) }
    /// ```
    pub async fn clear_unread_count(
        &self,
        conversation: ConversationKey,
        timestamp_ms: i64,
    ) -> Result<i32, ClientError> {
        let op = Op::ClearUnreadCount {
            conversation,
            timestamp_ms,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "ClearUnreadCount").await
    }

    /// RC's `recallMessage`: recalls `message`, which this user sent (its server
    /// uid names it). The server replaces it with an `RC:RcNtf` notification on
    /// every device of both sides; attached apps then get
    /// [`Event::MessageRecalled`](rcim_proto::ipc::Event::MessageRecalled).
    /// Returns the RC code: 0 done; 25101 no such message, or not this user's;
    /// 30002 not connected; 30003 the server did not answer in time; 33003 a
    /// message without a uid (not sent yet).
    pub async fn recall(&self, message: &Message) -> Result<i32, ClientError> {
        let Some(uid) = message.uid.clone() else {
            return Ok(rcim_proto::RcCode::INVALID_PARAMETER.0);
        };
        self.recall_uid(uid).await
    }

    /// [`Client::recall`] by the message's server uid.
    pub async fn recall_uid(&self, uid: impl Into<String>) -> Result<i32, ClientError> {
        let op = Op::RecallMessage { uid: uid.into() };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "RecallMessage").await
    }

    /// RC's `getRemoteHistoryMessages`: up to `count` (1 to 100) messages of the
    /// server's copy of `conversation` sent before `before_time_ms` (0: the
    /// newest), newest first, including what this user sent from other devices;
    /// recalled ones are `RC:RcNtf`. A message's `id` is its local id when this
    /// device stores it, 0 otherwise. `Ok(Err(code))`: 33003 a bad count, 22406
    /// a group this user is not in, 30002 not connected, 30003 no answer in time.
    pub async fn get_remote_history(
        &self,
        conversation: ConversationKey,
        before_time_ms: i64,
        count: u32,
    ) -> Result<Result<Vec<Message>, i32>, ClientError> {
        let op = Op::GetRemoteHistory {
            conversation,
            before_time_ms,
            count,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.messages(op).await
    }

    /// Full-text search of the local database (see
    /// [`SearchQuery`](rcim_proto::ipc::SearchQuery): the text is always taken
    /// literally), newest first. `Ok(Err(33003))` for a query it refuses.
    pub async fn search_messages(
        &self,
        query: rcim_proto::ipc::SearchQuery,
    ) -> Result<Result<Vec<Message>, i32>, ClientError> {
        let op = Op::SearchMessages(query);
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.messages(op).await
    }

    /// RC's `getUnreadCount`: the unread count of one conversation, kept by the
    /// daemon as messages arrive and are read. The inner `Err` is the daemon's RC
    /// code (33002 no database); an empty target id is `Ok(Err(33003))` at once.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let unread = client.unread_count(rcim_client::ConversationKey::private("bob")).await?;
    /// println!("{unread:?}");
    /// # Ok(()) }
    /// ```
    pub async fn unread_count(
        &self,
        conversation: ConversationKey,
    ) -> Result<Result<u64, i32>, ClientError> {
        let op = Op::GetUnreadCount { conversation };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.count(op, "GetUnreadCount").await
    }

    /// RC's `getTotalUnreadCount`: the unread count over every conversation.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// if let Ok(total) = client.total_unread_count().await? {
    ///     println!("{total} unread");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn total_unread_count(&self) -> Result<Result<u64, i32>, ClientError> {
        self.count(Op::GetTotalUnreadCount, "GetTotalUnreadCount")
            .await
    }

    /// RC's `getUnreadCountByConversationTypes`: the unread count over every
    /// conversation of `types` (empty: all).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// use rcim_client::ConversationType;
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let groups = client.unread_count_by_types(&[ConversationType::Group]).await?;
    /// println!("{groups:?}");
    /// # Ok(()) }
    /// ```
    pub async fn unread_count_by_types(
        &self,
        types: &[ConversationType],
    ) -> Result<Result<u64, i32>, ClientError> {
        let op = Op::GetUnreadCountByTypes {
            types: types.to_vec(),
        };
        self.count(op, "GetUnreadCountByTypes").await
    }

    /// Marks `conversation` read up to the message sent at `up_to_time_ms` (0: its
    /// newest message) on every device of this user: the unread count is cleared
    /// up to there, the peer of a private conversation gets RC's read
    /// notification (`RC:ReadNtf`, its `read_receipt` event, its messages shown
    /// read) and this user's other devices RC's read sync (`RC:SRSMsg`). Queued
    /// durably and sent when connected. Returns the daemon's code: 0; 33003 for a
    /// position in the future (more than a minute past this machine's clock),
    /// negative, or an empty target id (at once); 33002 when no database is open.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.mark_read(rcim_client::ConversationKey::private("bob"), 0).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn mark_read(
        &self,
        conversation: ConversationKey,
        up_to_time_ms: i64,
    ) -> Result<i32, ClientError> {
        let op = Op::MarkRead {
            conversation,
            up_to_time_ms,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "MarkRead").await
    }

    /// RC's `sendTypingStatus(type, targetId, channelId, currentType)`: tells the
    /// peer of a private conversation that this user is typing a message of type
    /// `content_type` (e.g. `RC:TxtMsg`). At most one per conversation per 6 s
    /// goes out, as RC does; the others are answered 0 and dropped. Delivered to
    /// the peer's online devices only. Returns 0, 33003 for a conversation that
    /// is not private or a bad type name (at once), 30002 when not connected.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let bob = rcim_client::ConversationKey::private("bob");
    /// assert_eq!(client.send_typing_status(bob, "RC:TxtMsg").await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn send_typing_status(
        &self,
        conversation: ConversationKey,
        content_type: &str,
    ) -> Result<i32, ClientError> {
        let op = Op::SendTypingStatus {
            conversation,
            content_type: content_type.to_owned(),
        };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "SendTypingStatus").await
    }

    /// Sends a status message: delivered to the recipients' devices online now,
    /// never stored, never counted as unread, never in history. Returns 0, 33003
    /// for a bad argument (at once), 30002 when not connected.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let team = rcim_client::ConversationKey::group("team");
    /// assert_eq!(client.send_status_message(team, "app:Presence", r#"{"away":true}"#).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn send_status_message(
        &self,
        conversation: ConversationKey,
        object_name: &str,
        content: &str,
    ) -> Result<i32, ClientError> {
        let op = Op::SendStatusMessage {
            conversation,
            object_name: object_name.to_owned(),
            content: content.to_owned(),
        };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "SendStatusMessage").await
    }

    /// RC's `changeConversationTopStatus`: pins (or unpins) a conversation, on
    /// this device. Returns the daemon's code.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.set_conversation_top(rcim_client::ConversationKey::private("bob"), true).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn set_conversation_top(
        &self,
        conversation: ConversationKey,
        top: bool,
    ) -> Result<i32, ClientError> {
        let op = Op::SetConversationTop { conversation, top };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "SetConversationTop").await
    }

    /// RC's `changeConversationNotificationLevel` (do-not-disturb): `level` is
    /// one of RC's -1, 0, 1, 2, 4, 5 (5: nothing notifies). Kept on this device and
    /// synced to the server (durably: sent after a reconnect if need be). Returns
    /// the daemon's code; 33003 at once for another level.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let team = rcim_client::ConversationKey::group("team");
    /// assert_eq!(client.set_notification_level(team, 5).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn set_notification_level(
        &self,
        conversation: ConversationKey,
        level: i32,
    ) -> Result<i32, ClientError> {
        let op = Op::SetNotificationLevel {
            conversation,
            level,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "SetNotificationLevel").await
    }

    /// RC's `removeConversation`: takes it off the list (its messages stay, read);
    /// a new message brings it back. Returns the daemon's code.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.remove_conversation(rcim_client::ConversationKey::private("bob")).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn remove_conversation(
        &self,
        conversation: ConversationKey,
    ) -> Result<i32, ClientError> {
        let op = Op::RemoveConversation { conversation };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "RemoveConversation").await
    }

    /// RC's `deleteLocalMessageByIds`: deletes messages from this device's
    /// database, 1 to 100 ids. The inner result is how many were deleted, or the
    /// daemon's code (33003 at once for 0 or over 100 ids).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// println!("{:?}", client.delete_messages(&[3, 4]).await?);
    /// # Ok(()) }
    /// ```
    pub async fn delete_messages(&self, ids: &[i64]) -> Result<Result<u64, i32>, ClientError> {
        let op = Op::DeleteMessages { ids: ids.to_vec() };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.count(op, "DeleteMessages").await
    }

    /// RC's `clearMessages(type, targetId, timestamp)` on this device: deletes the
    /// conversation's messages sent at or before `before_ms` (0: all).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// println!("{:?}", client.delete_messages_before(rcim_client::ConversationKey::private("bob"), 0).await?);
    /// # Ok(()) }
    /// ```
    pub async fn delete_messages_before(
        &self,
        conversation: ConversationKey,
        before_ms: i64,
    ) -> Result<Result<u64, i32>, ClientError> {
        let op = Op::DeleteMessagesBefore {
            conversation,
            before_ms,
        };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        self.count(op, "DeleteMessagesBefore").await
    }

    /// RC's `saveDraftMessage`: keeps a draft on this device (empty clears it; at
    /// most 4 KB). Returns the daemon's code.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.save_draft(rcim_client::ConversationKey::private("bob"), "later…").await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn save_draft(
        &self,
        conversation: ConversationKey,
        draft: &str,
    ) -> Result<i32, ClientError> {
        let op = Op::SaveDraft {
            conversation,
            draft: draft.to_owned(),
        };
        if let Err(code) = check_locally(&op) {
            return Ok(code);
        }
        self.code(op, "SaveDraft").await
    }

    /// RC's `getDraftMessage`: the draft kept for a conversation (empty: none),
    /// or the daemon's code.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// println!("{:?}", client.draft(rcim_client::ConversationKey::private("bob")).await?);
    /// # Ok(()) }
    /// ```
    pub async fn draft(
        &self,
        conversation: ConversationKey,
    ) -> Result<Result<String, i32>, ClientError> {
        let op = Op::GetDraft { conversation };
        if let Err(code) = check_locally(&op) {
            return Ok(Err(code));
        }
        match self.session.request(op, None).await? {
            Reply::Draft(draft) => Ok(Ok(draft)),
            Reply::Code(code) if code != 0 => Ok(Err(code)),
            other => Err(ClientError::unexpected("GetDraft", &other)),
        }
    }

    /// RC's `disconnect(receivePush)`: signs this device out for every local app.
    /// Returns the daemon's RC code (0 on success).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.disconnect(true).await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn disconnect(&self, receive_push: bool) -> Result<i32, ClientError> {
        self.code(Op::Disconnect { receive_push }, "Disconnect")
            .await
    }

    /// Signs this device out (no push) and deletes the token the daemon stored, so it
    /// does not connect again at its next start. Returns the daemon's RC code.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// assert_eq!(client.logout().await?, 0);
    /// # Ok(()) }
    /// ```
    pub async fn logout(&self) -> Result<i32, ClientError> {
        self.code(Op::Logout, "Logout").await
    }

    /// A stream of the daemon's events, from now on: `StatusChanged`,
    /// `MessageReceived` (RC's `onMessageReceived(message, left, offline,
    /// hasPackage)`, after the message is committed to the daemon's database),
    /// `OfflineSyncCompleted`, and `Lagged` when the daemon found this client too
    /// slow (it then replays what the client missed by itself; the replay is
    /// invisible except for that notice).
    ///
    /// Every stream gets every message exactly once and in order of `message.id`:
    /// messages repeated by a replay are dropped. Each stream has its own buffer of
    /// 1,024 events; one that falls further behind skips them, yields
    /// `Err(`[`Lagged`](crate::Lagged)`)` saying how many, and then pages the
    /// messages it skipped from the daemon's database at the pace it is read, so it
    /// still gets all of them (status changes are not stored; the stream yields the
    /// current status once it has caught up). A slow stream never stalls the reader,
    /// the answers to requests, or the other streams.
    ///
    /// The stream ends when the session does: when the daemon goes away, or, with
    /// [`ClientOptions::reattach`], when re-attaching gives up. While re-attaching it
    /// yields a synthesized `StatusChanged` (`suspend`, code 30011) and, once back,
    /// one with the new daemon's status, then the messages stored meanwhile.
    ///
    /// ```no_run
    /// use futures_util::StreamExt;
    /// use rcim_client::{Client, ClientOptions, Event};
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = Client::attach(ClientOptions::named("notifier")).await?;
    /// let mut events = client.events();
    /// while let Some(item) = events.next().await {
    ///     match item {
    ///         Ok(Event::MessageReceived { message, .. }) => println!("new message {}", message.id),
    ///         Ok(Event::StatusChanged(state)) => println!("status {}", state.status),
    ///         Ok(_) => {}
    ///         Err(lagged) => eprintln!("{lagged} (the messages are replayed)"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> Events {
        let routes = self.session.routes();
        let rx = routes.subscribe_events();
        Events::new(rx.map(|rx| (rx, Arc::clone(routes))))
    }

    /// Sends a request that takes callbacks of `kind`, registering their channel
    /// first, and interprets the daemon's immediate `Reply::Code`.
    async fn call(&self, op: Op, kind: CallKind) -> Result<CallState, ClientError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let code = self.start_call(op, kind, Sink::Channel(tx)).await?;
        Ok(self.answered(code, rx))
    }

    /// The state of a call the daemon answered with `code`: its steps come on
    /// `steps` when it was accepted, none otherwise.
    fn answered(&self, code: i32, steps: mpsc::UnboundedReceiver<Step>) -> CallState {
        CallState::answered(code, steps, Arc::clone(&self.session))
    }

    /// Sends a request that takes callbacks of `kind` and hands each of its
    /// [`Step`]s to `hook`, in the reader, in the order of every other frame.
    /// Returns the daemon's immediate code; no step follows a non-zero one.
    /// The caller checks the arguments first ([`check_locally`]).
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
        let reply = self
            .session
            .request(op, Some(CallbackRoute::new(kind, sink)))
            .await?;
        call_code(kind, reply)
    }

    /// The state of a call rejected with `code`: no callback will come.
    fn rejected(&self, code: i32) -> CallState {
        CallState::rejected(code, Arc::clone(&self.session))
    }

    /// Sends a checked `GetMessages` and interprets the answer: the messages, or the
    /// daemon's RC code.
    pub(crate) async fn messages(&self, op: Op) -> Result<Result<Vec<Message>, i32>, ClientError> {
        match self.session.request(op, None).await? {
            Reply::Messages(messages) => Ok(Ok(messages)),
            Reply::Code(code) if code != 0 => Ok(Err(code)),
            other => Err(ClientError::unexpected("GetMessages", &other)),
        }
    }

    /// Sends a checked `GetConversations` and interprets the answer: the
    /// conversations, or the daemon's RC code.
    pub(crate) async fn conversations(
        &self,
        op: Op,
    ) -> Result<Result<Vec<Conversation>, i32>, ClientError> {
        match self.session.request(op, None).await? {
            Reply::Conversations(conversations) => Ok(Ok(conversations)),
            Reply::Code(code) if code != 0 => Ok(Err(code)),
            other => Err(ClientError::unexpected("GetConversations", &other)),
        }
    }

    /// Sends a checked request (`name` for errors) answered with a count, or the
    /// daemon's RC code.
    pub(crate) async fn count(&self, op: Op, name: &str) -> Result<Result<u64, i32>, ClientError> {
        match self.session.request(op, None).await? {
            Reply::Count(count) => Ok(Ok(count)),
            Reply::Code(code) if code != 0 => Ok(Err(code)),
            other => Err(ClientError::unexpected(name, &other)),
        }
    }

    /// Sends a checked request (`name` for errors) answered with an RC code, and
    /// returns the code.
    pub(crate) async fn code(&self, op: Op, name: &str) -> Result<i32, ClientError> {
        match self.session.request(op, None).await? {
            Reply::Code(code) => Ok(code),
            other => Err(ClientError::unexpected(name, &other)),
        }
    }
}
