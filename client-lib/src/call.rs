//! The handles of calls with callbacks: [`ConnectCall`] and [`SendCall`], with what
//! they end in ([`Connected`], [`Sent`]).
//!
//! A handle holds the call's immediate code and the channel its checked [`Step`]s
//! come on (the route table delivers them, see [`crate::route`]), and presents them
//! in its own types, in RC's order. Each handle keeps the session open
//! until it is dropped, so the callbacks still arrive when every
//! [`Client`](crate::Client) clone is gone. [`FirstAnswer`] is the immediate answer
//! of a call written with the Hello, for `attach_and_connect` and the engine's
//! first call.

use crate::driver::Session;
use crate::error::ClientError;
use crate::route::{CallKind, Step};
use rcim_proto::RcCode;
use rcim_proto::ipc::{Callback, Reply};
use rcim_proto::message::Message;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// What every call handle holds: its immediate code and the channel of its checked
/// [`Step`]s. The kind-specific handles ([`ConnectCall`], [`SendCall`]) present the
/// steps in their own types.
#[derive(Debug)]
pub(crate) struct CallState {
    code: i32,
    /// `None` once the last step was delivered, and from the start for a rejected
    /// call.
    steps: Option<mpsc::UnboundedReceiver<Step>>,
    /// Keeps the session open until the handle is dropped.
    _session: Arc<Session>,
}

impl CallState {
    /// The state of a call the daemon answered with `code`: its steps come on
    /// `steps` when it was accepted, none otherwise.
    pub(crate) fn answered(
        code: i32,
        steps: mpsc::UnboundedReceiver<Step>,
        session: Arc<Session>,
    ) -> Self {
        Self {
            code,
            steps: (code == 0).then_some(steps),
            _session: session,
        }
    }

    /// The state of a call rejected with `code`: no callback will come.
    pub(crate) fn rejected(code: i32, session: Arc<Session>) -> Self {
        Self {
            code,
            steps: None,
            _session: session,
        }
    }

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
/// [`Client`](crate::Client) clone is gone.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// let mut call = client.connect(rcim_client::Token::new("token"), 30).await?;
/// while let Some(callback) = call.next_callback().await {
///     println!("{callback:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConnectCall {
    state: CallState,
}

/// How a `connect` ended: its `onConnected`, plus the `onDatabaseOpened` before it.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
/// let rcim_client::Connected { code, user_id, database_opened } = call.connected().await;
/// println!("{code} {user_id:?} {database_opened:?}");
/// # Ok(()) }
/// ```
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
    pub(crate) fn new(state: CallState) -> Self {
        Self { state }
    }

    /// The immediate result: 0 accepted (callbacks follow), otherwise the RC error
    /// and no callback will come.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// println!("connect returned {}", call.code());
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> i32 {
        self.state.code
    }

    /// Whether the daemon accepted the call.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// if !call.is_accepted() {
    ///     eprintln!("{}", rcim_client::RcCode(call.code()));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_accepted(&self) -> bool {
        self.state.code == 0
    }

    /// The next callback, in RC's order: at most one `DatabaseOpened`, then exactly
    /// one `Connected`; `None` after that, and from the start for a rejected call.
    ///
    /// If the daemon goes away first, the `Connected` is synthesized with code 30011
    /// (RC_SOCKET_DISCONNECTED). Cancel-safe.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let mut call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// if let Some(rcim_client::Callback::DatabaseOpened { code }) = call.next_callback().await {
    ///     println!("onDatabaseOpened {code}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_callback(&mut self) -> Option<Callback> {
        let lost = || Step::Connected(RcCode::RC_SOCKET_DISCONNECTED.0, None);
        loop {
            match self.state.recv(lost).await? {
                Step::DatabaseOpened(code) => return Some(Callback::DatabaseOpened { code }),
                Step::Connected(code, user_id) => {
                    return Some(Callback::Connected { code, user_id });
                }
                // The reader routes only this call's kind here.
                Step::Saved(_) | Step::Sent(..) => {}
            }
        }
    }

    /// Waits for the end of the call and reports it. For a rejected call this is the
    /// immediate code at once (no callback came).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30).await?;
    /// let done = call.connected().await;
    /// println!("{}", rcim_client::RcCode(done.code));
    /// # Ok(()) }
    /// ```
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
/// [`Client`](crate::Client) clone is gone. Dropping it does not cancel the send:
/// the message is in the daemon's outbox.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
/// while let Some(step) = call.next_callback().await {
///     println!("{step:?}");
/// }
/// # Ok(()) }
/// ```
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
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
/// match call.next_callback().await {
///     Some(rcim_client::SendStep::Saved(m)) => println!("saved as {}", m.id),
///     Some(rcim_client::SendStep::Sent(sent)) => println!("sent: {}", sent.code),
///     None => println!("rejected: {}", call.code()),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendStep {
    /// `onMessageSaved(message)`: in the daemon's outbox, status sending, with its
    /// local id.
    Saved(Message),
    /// `onMessageSent(code, message)`: the last callback.
    Sent(Sent),
}

/// How a `send_message` ended: RC's `onMessageSent(code, message)`.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
/// let rcim_client::Sent { code, message } = call.sent().await;
/// println!("{code}: {:?}", message.and_then(|m| m.uid));
/// # Ok(()) }
/// ```
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
    pub(crate) fn new(state: CallState) -> Self {
        Self {
            state,
            saved: None,
            outcome: None,
            outcome_delivered: false,
        }
    }

    /// The immediate result: 0 accepted (callbacks follow), otherwise the RC error
    /// (33003 bad argument, 33002 no database, …) and no callback will come.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// println!("sendMessage returned {}", call.code());
    /// # Ok(()) }
    /// ```
    pub fn code(&self) -> i32 {
        self.state.code
    }

    /// Whether the daemon accepted the message.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// assert!(call.is_accepted());
    /// # Ok(()) }
    /// ```
    pub fn is_accepted(&self) -> bool {
        self.state.code == 0
    }

    /// Reads the next step into `saved` / `outcome`; `None` when the call is over
    /// (or was rejected). Returns the saved message when that was the step.
    async fn advance(&mut self) -> Option<Option<Message>> {
        let saved = self.saved.clone();
        let lost = move || Step::Sent(RcCode::RC_SOCKET_DISCONNECTED.0, saved);
        match self.state.recv(lost).await? {
            Step::Saved(message) => {
                self.saved = Some(message.clone());
                Some(Some(message))
            }
            Step::Sent(code, message) => {
                self.outcome = Some(Sent { code, message });
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
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// while let Some(step) = call.next_callback().await {
    ///     println!("{step:?}");
    /// }
    /// # Ok(()) }
    /// ```
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
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// if let Some(saved) = call.saved().await {
    ///     println!("in the outbox as {}", saved.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn saved(&mut self) -> Option<Message> {
        while self.saved.is_none() && self.outcome.is_none() {
            self.advance().await?;
        }
        self.saved.clone()
    }

    /// Waits for the end of the call and reports it (`onMessageSent`). For a
    /// rejected call this is the immediate code at once, with no message.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi")).await?;
    /// let sent = call.sent().await;
    /// println!("{}", sent.code);
    /// # Ok(()) }
    /// ```
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

/// The immediate answer to a call written with the Hello, still to come.
pub(crate) struct FirstAnswer {
    kind: CallKind,
    answer: oneshot::Receiver<Reply>,
}

impl FirstAnswer {
    /// The answer of a first call of `kind`, to come on `answer`.
    pub(crate) fn new(kind: CallKind, answer: oneshot::Receiver<Reply>) -> Self {
        Self { kind, answer }
    }

    /// The call's immediate code (`Disconnected` if the daemon went away first).
    pub(crate) async fn code(self) -> Result<i32, ClientError> {
        call_code(
            self.kind,
            self.answer.await.map_err(|_| ClientError::Disconnected)?,
        )
    }
}

/// The immediate code of a call with callbacks of `kind`, from the daemon's reply.
pub(crate) fn call_code(kind: CallKind, reply: Reply) -> Result<i32, ClientError> {
    match reply {
        Reply::Code(code) => Ok(code),
        other => Err(ClientError::unexpected(&format!("{kind:?}"), &other)),
    }
}
