//! A blocking face for [`Client`](crate::Client), for tools and scripts that want
//! plain function calls and no async runtime of their own (`rcimctl` is one).
//!
//! Each [`Client`] owns a single-threaded tokio runtime and drives it only while one
//! of its methods runs; between calls, frames from the daemon wait in the socket.
//! Do not use it inside async code: dropping its runtime there panics. Use the
//! async [`Client`](crate::Client) instead.
//!
//! Because the runtime only runs inside a call, an [`Events`] iterator reads events
//! only while it is being iterated: in between, they wait in the socket (and in the
//! daemon's queue for this client) rather than in memory here. Likewise a
//! re-attach ([`ClientOptions::reattach`]) makes progress only while a call or an
//! iteration runs.

use crate::call::{self, Connected, SendStep, Sent};
use crate::client;
use crate::error::ClientError;
use crate::events::{self, Lagged};
use crate::options::ClientOptions;
use rcim_proto::ipc::{Callback, ClientEntry, Event, Welcome};
use rcim_proto::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use rcim_proto::{StatusSnapshot, Token};
use std::sync::Arc;
use std::time::Duration;

/// A blocking wait ran out of time; the call goes on (wait again if you like).
///
/// ```no_run
/// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
/// let mut events = client.events();
/// match events.next_timeout(std::time::Duration::from_secs(1)) {
///     Ok(Some(event)) => println!("{event:?}"),
///     Ok(None) => println!("rcimd went away"),
///     Err(rcim_client::blocking::TimedOut) => println!("nothing for a second"),
/// }
/// # Ok::<(), rcim_client::ClientError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("timed out waiting for rcimd")]
pub struct TimedOut;

/// A blocking [`Client`](crate::Client).
///
/// ```no_run
/// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
/// println!("{}", client.status()?.link.status);
/// # Ok::<(), rcim_client::ClientError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    // Declared before `runtime` so the session is dropped before the runtime.
    inner: client::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// Attaches to `rcimd`; see [`Client::attach`](crate::Client::attach).
    ///
    /// ```no_run
    /// use rcim_client::{ClientOptions, blocking::Client};
    /// let client = Client::attach(ClientOptions::named("script"))?;
    /// # drop(client);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn attach(options: ClientOptions) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Io {
                socket: options.socket_path(),
                source: Arc::new(e),
            })?;
        let inner = runtime.block_on(client::Client::attach(options))?;
        Ok(Client {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// The daemon's handshake answer; see
    /// [`Client::welcome`](crate::Client::welcome).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(Default::default())?;
    /// println!("rcimd {}", client.welcome().daemon_version);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn welcome(&self) -> Welcome {
        self.inner.welcome()
    }

    /// Has the daemon replay the messages after `since_seq`, then continue live; see
    /// [`Client::subscribe`](crate::Client::subscribe).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(Default::default())?;
    /// let mut events = client.events();
    /// assert_eq!(client.subscribe(41)?, 0);
    /// for event in events.by_ref().take(10) {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn subscribe(&self, since_seq: i64) -> Result<i32, ClientError> {
        self.runtime.block_on(self.inner.subscribe(since_seq))
    }

    /// The id of the last message this client passed on; see
    /// [`Client::last_seq`](crate::Client::last_seq).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(Default::default())?;
    /// println!("{:?}", client.last_seq());
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn last_seq(&self) -> Option<i64> {
        self.inner.last_seq()
    }

    /// Who is attached to the daemon; see
    /// [`Client::clients`](crate::Client::clients).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(Default::default())?;
    /// for c in client.clients()? {
    ///     println!("{} {}", c.id, c.name);
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn clients(&self) -> Result<Vec<ClientEntry>, ClientError> {
        self.runtime.block_on(self.inner.clients())
    }

    /// Asks the daemon for its full status.
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let status = client.status()?;
    /// println!("{} ({} clients)", status.link.status, status.clients);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn status(&self) -> Result<StatusSnapshot, ClientError> {
        self.runtime.block_on(self.inner.status())
    }

    /// RC's `connect(token, timeout)`; see [`Client::connect`](crate::Client::connect).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30)?;
    /// if call.code() == 0 {
    ///     println!("{:?}", call.connected());
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn connect(&self, token: Token, timeout_secs: i32) -> Result<ConnectCall, ClientError> {
        let inner = self
            .runtime
            .block_on(self.inner.connect(token, timeout_secs))?;
        Ok(ConnectCall {
            inner,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// Signs out and deletes the stored token; returns the daemon's RC code.
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// assert_eq!(client.logout()?, 0);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn logout(&self) -> Result<i32, ClientError> {
        self.runtime.block_on(self.inner.logout())
    }

    /// RC's `disconnect(receivePush)`; returns the daemon's RC code.
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// assert_eq!(client.disconnect(true)?, 0);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn disconnect(&self, receive_push: bool) -> Result<i32, ClientError> {
        self.runtime.block_on(self.inner.disconnect(receive_push))
    }

    /// Whether the daemon connection is gone; see
    /// [`Client::is_closed`](crate::Client::is_closed).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// if client.is_closed() {
    ///     eprintln!("rcimd went away");
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// RC's `sendMessage`; see [`Client::send_message`](crate::Client::send_message).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
    /// println!("{}", call.sent().code);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn send_message(
        &self,
        conversation: ConversationKey,
        object_name: &str,
        content: &str,
    ) -> Result<SendCall, ClientError> {
        let inner =
            self.runtime
                .block_on(self.inner.send_message(conversation, object_name, content))?;
        Ok(SendCall {
            inner,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// RC's `getMessages`; see [`Client::get_messages`](crate::Client::get_messages).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TimeOrder};
    /// if let Ok(messages) = client.get_messages(ConversationKey::private("bob"), 0, TimeOrder::Before, 20)? {
    ///     println!("{} messages", messages.len());
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn get_messages(
        &self,
        conversation: ConversationKey,
        sent_time_ms: i64,
        order: TimeOrder,
        count: u32,
    ) -> Result<Result<Vec<Message>, i32>, ClientError> {
        self.runtime.block_on(
            self.inner
                .get_messages(conversation, sent_time_ms, order, count),
        )
    }

    /// [`crate::Client::recall_uid`]: recalls the message with server uid `uid`.
    pub fn recall_uid(&self, uid: impl Into<String>) -> Result<i32, ClientError> {
        self.runtime.block_on(self.inner.recall_uid(uid))
    }

    /// [`crate::Client::get_remote_history`]: a page of the server's copy of a
    /// conversation, newest first.
    pub fn get_remote_history(
        &self,
        conversation: ConversationKey,
        before_time_ms: i64,
        count: u32,
    ) -> Result<Result<Vec<Message>, i32>, ClientError> {
        self.runtime.block_on(
            self.inner
                .get_remote_history(conversation, before_time_ms, count),
        )
    }

    /// [`crate::Client::search_messages`]: a local full-text search, newest first.
    pub fn search_messages(
        &self,
        query: rcim_proto::ipc::SearchQuery,
    ) -> Result<Result<Vec<Message>, i32>, ClientError> {
        self.runtime.block_on(self.inner.search_messages(query))
    }

    /// RC's `getConversations`; see
    /// [`Client::get_conversations`](crate::Client::get_conversations).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// if let Ok(conversations) = client.get_conversations(&[], 0, 50)? {
    ///     println!("{} conversations", conversations.len());
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn get_conversations(
        &self,
        types: &[ConversationType],
        start_time_ms: i64,
        count: u32,
    ) -> Result<Result<Vec<Conversation>, i32>, ClientError> {
        self.runtime
            .block_on(self.inner.get_conversations(types, start_time_ms, count))
    }

    /// RC's `clearUnreadCount`; see
    /// [`Client::clear_unread_count`](crate::Client::clear_unread_count).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let code = client.clear_unread_count(rcim_client::ConversationKey::private("bob"), 0)?;
    /// assert_eq!(code, 0);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn clear_unread_count(
        &self,
        conversation: ConversationKey,
        timestamp_ms: i64,
    ) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.clear_unread_count(conversation, timestamp_ms))
    }

    /// RC's `getUnreadCount`; see
    /// [`Client::unread_count`](crate::Client::unread_count).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.unread_count(rcim_client::ConversationKey::private("bob"))?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn unread_count(
        &self,
        conversation: ConversationKey,
    ) -> Result<Result<u64, i32>, ClientError> {
        self.runtime.block_on(self.inner.unread_count(conversation))
    }

    /// RC's `getTotalUnreadCount`; see
    /// [`Client::total_unread_count`](crate::Client::total_unread_count).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.total_unread_count()?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn total_unread_count(&self) -> Result<Result<u64, i32>, ClientError> {
        self.runtime.block_on(self.inner.total_unread_count())
    }

    /// RC's `getUnreadCountByConversationTypes`; see
    /// [`Client::unread_count_by_types`](crate::Client::unread_count_by_types).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.unread_count_by_types(&[])?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn unread_count_by_types(
        &self,
        types: &[ConversationType],
    ) -> Result<Result<u64, i32>, ClientError> {
        self.runtime
            .block_on(self.inner.unread_count_by_types(types))
    }

    /// Marks a conversation read on every device; see
    /// [`Client::mark_read`](crate::Client::mark_read).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// assert_eq!(client.mark_read(rcim_client::ConversationKey::private("bob"), 0)?, 0);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn mark_read(
        &self,
        conversation: ConversationKey,
        up_to_time_ms: i64,
    ) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.mark_read(conversation, up_to_time_ms))
    }

    /// RC's `sendTypingStatus`; see
    /// [`Client::send_typing_status`](crate::Client::send_typing_status).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let bob = rcim_client::ConversationKey::private("bob");
    /// assert_eq!(client.send_typing_status(bob, "RC:TxtMsg")?, 0);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn send_typing_status(
        &self,
        conversation: ConversationKey,
        content_type: &str,
    ) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.send_typing_status(conversation, content_type))
    }

    /// Sends a status message; see
    /// [`Client::send_status_message`](crate::Client::send_status_message).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let team = rcim_client::ConversationKey::group("team");
    /// assert_eq!(client.send_status_message(team, "app:Presence", "{}")?, 0);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn send_status_message(
        &self,
        conversation: ConversationKey,
        object_name: &str,
        content: &str,
    ) -> Result<i32, ClientError> {
        self.runtime.block_on(
            self.inner
                .send_status_message(conversation, object_name, content),
        )
    }

    /// Pins or unpins a conversation; see [`Client::set_conversation_top`](crate::Client::set_conversation_top).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.set_conversation_top(rcim_client::ConversationKey::private("bob"), true)?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn set_conversation_top(
        &self,
        conversation: ConversationKey,
        top: bool,
    ) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.set_conversation_top(conversation, top))
    }

    /// Sets a conversation's do-not-disturb level; see [`Client::set_notification_level`](crate::Client::set_notification_level).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.set_notification_level(rcim_client::ConversationKey::private("bob"), 5)?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn set_notification_level(
        &self,
        conversation: ConversationKey,
        level: i32,
    ) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.set_notification_level(conversation, level))
    }

    /// Takes a conversation off the list; see [`Client::remove_conversation`](crate::Client::remove_conversation).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.remove_conversation(rcim_client::ConversationKey::private("bob"))?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn remove_conversation(&self, conversation: ConversationKey) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.remove_conversation(conversation))
    }

    /// Deletes messages by local id; see [`Client::delete_messages`](crate::Client::delete_messages).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.delete_messages(&[3])?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn delete_messages(&self, ids: &[i64]) -> Result<Result<u64, i32>, ClientError> {
        self.runtime.block_on(self.inner.delete_messages(ids))
    }

    /// Deletes a conversation's messages up to a time; see [`Client::delete_messages_before`](crate::Client::delete_messages_before).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.delete_messages_before(rcim_client::ConversationKey::private("bob"), 0)?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn delete_messages_before(
        &self,
        conversation: ConversationKey,
        before_ms: i64,
    ) -> Result<Result<u64, i32>, ClientError> {
        self.runtime
            .block_on(self.inner.delete_messages_before(conversation, before_ms))
    }

    /// Keeps a draft; see [`Client::save_draft`](crate::Client::save_draft).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.save_draft(rcim_client::ConversationKey::private("bob"), "later")?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn save_draft(
        &self,
        conversation: ConversationKey,
        draft: &str,
    ) -> Result<i32, ClientError> {
        self.runtime
            .block_on(self.inner.save_draft(conversation, draft))
    }

    /// A conversation's draft; see [`Client::draft`](crate::Client::draft).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// println!("{:?}", client.draft(rcim_client::ConversationKey::private("bob"))?);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn draft(&self, conversation: ConversationKey) -> Result<Result<String, i32>, ClientError> {
        self.runtime.block_on(self.inner.draft(conversation))
    }

    /// The daemon's events from now on, as a blocking iterator; see
    /// [`Client::events`](crate::Client::events).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// for event in client.events() {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn events(&self) -> Events {
        Events {
            inner: self.inner.events(),
            runtime: Arc::clone(&self.runtime),
        }
    }
}

/// A blocking [`SendCall`](crate::SendCall).
///
/// ```no_run
/// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
/// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
/// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
/// while let Some(step) = call.next_callback() {
///     println!("{step:?}");
/// }
/// # Ok::<(), rcim_client::ClientError>(())
/// ```
#[derive(Debug)]
pub struct SendCall {
    inner: call::SendCall,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl SendCall {
    /// The immediate result: 0 accepted, otherwise the RC error (no callbacks).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
    /// if call.code() != 0 {
    ///     eprintln!("rejected: {}", rcim_client::RcCode(call.code()));
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn code(&self) -> i32 {
        self.inner.code()
    }

    /// Waits for the next callback; see
    /// [`SendCall::next_callback`](crate::SendCall::next_callback).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
    /// if let Some(step) = call.next_callback() {
    ///     println!("{step:?}");
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn next_callback(&mut self) -> Option<SendStep> {
        self.runtime.block_on(self.inner.next_callback())
    }

    /// Waits at most `timeout` for the next callback; on [`TimedOut`] the call goes
    /// on and nothing was lost.
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
    /// match call.next_callback_timeout(std::time::Duration::from_secs(5)) {
    ///     Ok(step) => println!("{step:?}"),
    ///     Err(_) => println!("still waiting; the message is in the outbox"),
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn next_callback_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<SendStep>, TimedOut> {
        // The timer must be made inside the runtime, so inside the future.
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.inner.next_callback()).await })
            .map_err(|_| TimedOut)
    }

    /// Waits for `onMessageSaved`; see [`SendCall::saved`](crate::SendCall::saved).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
    /// if let Some(saved) = call.saved() {
    ///     println!("local id {}", saved.id);
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn saved(&mut self) -> Option<Message> {
        self.runtime.block_on(self.inner.saved())
    }

    /// Waits for the end of the call; see [`SendCall::sent`](crate::SendCall::sent).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// use rcim_client::{ConversationKey, TEXT_MESSAGE, text_content};
    /// let mut call = client.send_message(ConversationKey::private("bob"), TEXT_MESSAGE, &text_content("hi"))?;
    /// println!("{}", call.sent().code);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn sent(self) -> Sent {
        self.runtime.block_on(self.inner.sent())
    }
}

/// A blocking [`Events`](crate::Events): an iterator that waits for each event and
/// ends when the daemon connection does.
///
/// ```no_run
/// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
/// let mut events = client.events();
/// while let Some(event) = events.next() {
///     println!("{event:?} (at {:?})", events.last_message_id());
/// }
/// # Ok::<(), rcim_client::ClientError>(())
/// ```
#[derive(Debug)]
pub struct Events {
    inner: events::Events,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Events {
    /// Waits at most `timeout` for the next event; `Ok(None)` when the daemon
    /// connection ended.
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let mut events = client.events();
    /// if let Ok(Some(event)) = events.next_timeout(std::time::Duration::from_millis(500)) {
    ///     println!("{event:?}");
    /// }
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn next_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<Result<Event, Lagged>>, TimedOut> {
        use futures_util::StreamExt;
        // The timer must be made inside the runtime, so inside the future.
        self.runtime
            .block_on(async { tokio::time::timeout(timeout, self.inner.next()).await })
            .map_err(|_| TimedOut)
    }

    /// See [`Events::last_message_id`](crate::Events::last_message_id).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let events = client.events();
    /// println!("{:?}", events.last_message_id());
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn last_message_id(&self) -> Option<i64> {
        self.inner.last_message_id()
    }
}

impl Iterator for Events {
    type Item = Result<Event, Lagged>;

    fn next(&mut self) -> Option<Self::Item> {
        use futures_util::StreamExt;
        self.runtime.block_on(self.inner.next())
    }
}

/// A blocking [`ConnectCall`](crate::ConnectCall).
///
/// ```no_run
/// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
/// let mut call = client.connect(rcim_client::Token::new("token"), 30)?;
/// while let Some(callback) = call.next_callback() {
///     println!("{callback:?}");
/// }
/// # Ok::<(), rcim_client::ClientError>(())
/// ```
#[derive(Debug)]
pub struct ConnectCall {
    inner: call::ConnectCall,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl ConnectCall {
    /// The immediate result: 0 accepted, otherwise the RC error (no callbacks).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let call = client.connect(rcim_client::Token::new("token"), 30)?;
    /// println!("connect returned {}", call.code());
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn code(&self) -> i32 {
        self.inner.code()
    }

    /// Waits for the next callback; see
    /// [`ConnectCall::next_callback`](crate::ConnectCall::next_callback).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let mut call = client.connect(rcim_client::Token::new("token"), 30)?;
    /// println!("{:?}", call.next_callback());
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn next_callback(&mut self) -> Option<Callback> {
        self.runtime.block_on(self.inner.next_callback())
    }

    /// Waits for the end of the call; see
    /// [`ConnectCall::connected`](crate::ConnectCall::connected).
    ///
    /// ```no_run
    /// let client = rcim_client::blocking::Client::attach(rcim_client::ClientOptions::default())?;
    /// let mut call = client.connect(rcim_client::Token::new("token"), 30)?;
    /// let done = call.connected();
    /// println!("{} {:?}", done.code, done.user_id);
    /// # Ok::<(), rcim_client::ClientError>(())
    /// ```
    pub fn connected(self) -> Connected {
        self.runtime.block_on(self.inner.connected())
    }
}
