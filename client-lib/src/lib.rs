//! # rcim-client
//!
//! What apps link to use the IM connection that `rcimd` holds for every app of the
//! user. The daemon owns the one upstream connection (RC semantics: reconnects,
//! heartbeat, error codes); this crate attaches to it over a Unix socket and gives
//! you the RC SDK's calls. It never touches the network, the keyring or the
//! database itself.
//!
//! Three ways in:
//!
//! - [`Client`]: async (tokio). [`Client::attach`], then [`Client::status`],
//!   [`Client::connect`], [`Client::disconnect`], [`Client::send_message`],
//!   [`Client::get_messages`], [`Client::get_conversations`],
//!   [`Client::clear_unread_count`], [`Client::events`], [`Client::subscribe`] and
//!   [`Client::clients`]. [`Client::attach_and_connect`] attaches and connects in
//!   one round trip to the daemon, for an app that connects first thing.
//! - [`Engine`]: RC's `RCIMIWEngine` shape for ported apps and non-async code:
//!   `connect(token, timeout, callback) -> i32` with `onDatabaseOpened` /
//!   `onConnected` callbacks on a background thread, `send_message(message,
//!   callback)` with `onMessageSaved` / `onMessageSent`, the queries with
//!   `onSuccess` / `onError`-style callbacks, and the `onMessageReceived` /
//!   `onOfflineMessageSyncCompleted` / `onConnectionStatusChanged` listeners.
//! - [`blocking::Client`]: the async client's calls as plain blocking functions.
//!
//! ## Connecting, async
//!
//! ```no_run
//! use rcim_client::{Client, ClientOptions};
//! use rcim_proto::Token;
//!
//! # async fn run() -> Result<(), rcim_client::ClientError> {
//! let client = Client::attach(ClientOptions::named("my-app")).await?;
//! println!("rcimd {} is {}", client.welcome().daemon_version, client.link_state().status);
//! let call = client.connect(Token::new("token-from-your-app-server"), 30).await?;
//! if call.code() != 0 {
//!     // Rejected at once (RC: "non-zero: no callback will fire").
//!     return Ok(());
//! }
//! let done = call.connected().await; // skips past onDatabaseOpened
//! match done.code {
//!     0 => println!("connected as {:?}", done.user_id),
//!     code => println!("connect failed: {}", rcim_proto::RcCode(code)),
//! }
//! # Ok(()) }
//! ```
//!
//! ## Connecting, RC-style
//!
//! ```no_run
//! use rcim_client::{ConnectCallback, Engine, EngineOptions};
//!
//! let engine = Engine::create("app-key", EngineOptions::default());
//! engine.set_on_connection_status_changed(|status| println!("status: {status}"));
//! let code = engine.connect(
//!     "token-from-your-app-server",
//!     30,
//!     ConnectCallback::new(|code, user_id| println!("onConnected {code} {user_id:?}"))
//!         .on_database_opened(|code| println!("onDatabaseOpened {code}")),
//! );
//! if code == 33001 {
//!     eprintln!("{}", engine.last_error().map(|e| e.to_string()).unwrap_or_default());
//! }
//! ```
//!
//! ## Sending and reading messages
//!
//! The daemon is the local database: every message received is committed there
//! before any app sees it, and every message sent goes to its outbox first. A text
//! message is object name [`TEXT_MESSAGE`] (`RC:TxtMsg`) with content
//! [`text_content`]`(text)` (`{"content":"..."}`); [`text_of`] reads it back.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use rcim_client::{Client, ClientOptions, ConversationKey, Event, TEXT_MESSAGE, TimeOrder};
//! use rcim_client::{text_content, text_of};
//!
//! # async fn run() -> Result<(), rcim_client::ClientError> {
//! let client = Client::attach(ClientOptions::named("my-app")).await?;
//! let mut events = client.events();
//!
//! // Send: 0 accepted, then onMessageSaved (local id), then one onMessageSent.
//! let bob = ConversationKey::private("bob");
//! let mut call = client.send_message(bob.clone(), TEXT_MESSAGE, &text_content("hi")).await?;
//! if call.code() == 0 {
//!     let saved = call.saved().await; // in rcimd's outbox, even if offline
//!     let sent = call.sent().await; // 0 with the server's uid, or the RC error
//!     println!("{saved:?} -> {}", sent.code);
//! }
//!
//! // Read: the newest 20 messages with bob, newest first.
//! if let Ok(messages) = client.get_messages(bob, 0, TimeOrder::Before, 20).await? {
//!     for m in &messages {
//!         println!("{}: {:?}", m.sender, text_of(m));
//!     }
//! }
//!
//! // Receive: live and offline (after a reconnect) messages, then the end of the sync.
//! while let Some(Ok(event)) = events.next().await {
//!     match event {
//!         Event::MessageReceived { message, offline, .. } => {
//!             println!("{} (offline: {offline}): {:?}", message.sender, text_of(&message));
//!         }
//!         Event::OfflineSyncCompleted => println!("caught up"),
//!         Event::StatusChanged(state) => println!("status: {}", state.status),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! With the [`Engine`]: [`Engine::create_text_message`] (or [`OutgoingMessage`]),
//! [`Engine::send_message`] with a [`SendMessageCallback`],
//! [`Engine::set_on_message_received`], [`Engine::get_messages`] and friends.
//! Argument errors (an unsendable conversation, a bad target id, content over
//! 128 KB, a query `count` outside 1..=20 or 1..=50) are 33003 at once, without
//! asking the daemon, and no callback fires: the library checks every request with
//! the daemon's own check, [`rcim_proto::ipc::Op::check`] (why is in
//! [`InvalidArgument`], as [`OutgoingMessage::check`] returns it).
//!
//! ## What to expect
//!
//! - **Codes are values.** RC result codes (31004 token incorrect, 34006 timeout, …)
//!   come back as numbers, exactly as the RC SDK returns them; [`ClientError`] is only
//!   for not being able to talk to the daemon, and its message says what to do
//!   (for example how to start `rcimd`).
//! - **Many apps, one connection.** `connect` from a second app for the same user
//!   does not open a second connection; it gets its callbacks from the one the
//!   daemon holds. `disconnect` signs the device out for every app; dropping a
//!   [`Client`] (or an app exiting) is not a disconnect.
//! - **The daemon going away.** Every request still waiting fails with
//!   [`ClientError::Disconnected`]; every `connect` still waiting for `onConnected`
//!   receives one with code 30011 (RC_SOCKET_DISCONNECTED), synthesized by this
//!   library, so "exactly one onConnected" always holds; likewise every send still
//!   waiting gets one `onMessageSent` with 30011 (with the saved message if
//!   `onMessageSaved` came: it stays in the daemon's outbox and is sent after the
//!   daemon is back). Then, by default, a [`Client`] closes and its event streams
//!   end; with [`ClientOptions::reattach`] (the [`Engine`]'s default) it
//!   **re-attaches** by itself: it reconnects with backoff (50 ms doubling to 2 s),
//!   handshakes again, subscribes from the last message id it passed on, and the
//!   app sees the blip as a `StatusChanged` to `suspend` (code 30011) followed by
//!   the new daemon's status, and then the messages stored meanwhile, without loss
//!   or repeat. See [`ReattachPolicy`].
//! - **Events, exactly once, in order.** [`Client::events`] streams
//!   `StatusChanged` for every status change, whoever caused it, `MessageReceived`
//!   for every message stored, `OfflineSyncCompleted`, and the daemon's `Lagged`
//!   notice. A message's `id` is the daemon's local sequence number and only grows;
//!   the library never passes on a message at or below the last id it passed on,
//!   so a replay overlapping live traffic is invisible. [`Client::subscribe`]
//!   `(since)` replays what an app missed while it was not running (keep
//!   [`Client::last_seq`] or [`Events::last_message_id`] between runs). A stream
//!   that falls more than 1,024 events behind gets `Err(`[`Lagged`]`)` and then
//!   pages the messages it skipped from the daemon's database, at the pace the app
//!   reads them: none is lost, none repeated; a slow stream never slows the others.
//! - **Finding the daemon.** The socket is `RCIM_SOCKET`, else
//!   `$XDG_RUNTIME_DIR/rcim/rcimd.sock` (see [`rcim_proto::paths`]). By default an
//!   attach fails at once when nothing listens; set `wait_for_daemon` to retry while
//!   the daemon starts.
//!
//! ## Resuming after a restart of the app
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use rcim_client::{Client, ClientOptions, Event, ReattachPolicy};
//!
//! # async fn run() -> Result<(), rcim_client::ClientError> {
//! let saved: i64 = std::fs::read_to_string("last-seq").ok()
//!     .and_then(|s| s.trim().parse().ok())
//!     .unwrap_or(0);
//! let options = ClientOptions {
//!     reattach: Some(ReattachPolicy::default()),
//!     ..ClientOptions::named("bot")
//! };
//! let (client, mut events) = Client::attach_with_events(options).await?;
//! client.subscribe(saved).await?;
//! while let Some(Ok(event)) = events.next().await {
//!     if let Event::MessageReceived { message, .. } = event {
//!         println!("{}", message.id); // saved + 1 onwards, each once, in order
//!         std::fs::write("last-seq", message.id.to_string()).ok();
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! A program to try against `rcimd --dev`: `examples/chat.rs`
//! (`cargo run -p rcim-client --example chat`).
#![deny(missing_docs)]

pub mod blocking;
mod call;
mod client;
mod driver;
mod engine;
mod error;
mod events;
mod message;
mod options;
mod route;
mod sequence;

pub use call::{ConnectCall, Connected, SendCall, SendStep, Sent};
pub use client::Client;
pub use engine::{ConnectCallback, Engine, SendMessageCallback};
pub use error::ClientError;
pub use events::{Events, Lagged};
pub use message::{
    MAX_CONVERSATIONS_PER_QUERY, MAX_MESSAGES_PER_QUERY, OutgoingMessage, TEXT_MESSAGE,
    text_content, text_of, unstored,
};
pub use options::{ClientOptions, EngineOptions, ReattachPolicy};
pub use rcim_proto::ipc::{
    Callback, ClientEntry, Event, InvalidArgument, TYPING_INTERVAL_MS, TypingUser, Welcome,
};
pub use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Direction, Message, SentStatus, TimeOrder,
};
pub use rcim_proto::status::LinkState;
pub use rcim_proto::{ConnectionStatus, RcCode, StatusSnapshot, Token};

#[cfg(test)]
mod tests {
    /// Apps share these across threads and tasks; keep it that way.
    #[test]
    fn handles_are_thread_safe() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<crate::Client>();
        send_sync::<crate::Engine>();
        send_sync::<crate::ClientError>();
        send::<crate::ConnectCall>();
        send::<crate::SendCall>();
        send::<crate::Events>();
        send::<crate::ConnectCallback>();
        send::<crate::SendMessageCallback>();
        send::<crate::blocking::SendCall>();
        send::<crate::blocking::Events>();
        send_sync::<crate::blocking::Client>();
    }
}
