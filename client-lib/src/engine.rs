//! [`Engine`]: the RC-shaped, blocking, callback-based API, for apps ported from the
//! RC SDK and for code that is not async.
//!
//! It owns a one-worker tokio runtime and a callback thread. Calls block the caller
//! only until the daemon has answered (RC's immediate return code); the callbacks
//! then run on the `rcim-callbacks` thread, one at a time and in the order they
//! happened, never on the runtime, so a slow callback delays other callbacks but not
//! the connection. The engine attaches to `rcimd` lazily, on the first call. If the
//! daemon goes away (rcimd restarted), it re-attaches by itself
//! ([`ClientOptions::reattach`] in [`EngineOptions`], on by default): the status
//! listener hears `Suspend` and then the new status, the message listener resumes
//! after the last message it got (the daemon replays what was stored meanwhile;
//! nothing twice), and calls made during the gap return 33001. With re-attach off
//! (or after it gave up) the engine attaches again on its next call.
//!
//! "In the order they happened" holds across calls and listeners: the client's
//! reader task hands the engine each call's callbacks (through a hook registered
//! with the request, [`Engine::call_with_callbacks`]) and every event (through one
//! observer per attached session, [`EventFeed`]) as it reads the frames, and both
//! only queue a job for the callback thread. So an `onMessageReceived` that the
//! daemon sent before an `onMessageSent` runs before it, and the engine can never
//! fall behind the event stream. Queries share another path ([`Engine::query`]):
//! wait for the answer, return 0, and hand the answer to the callback.
//!
//! Every call builds its request and checks it once, with the client's
//! [`check_locally`] (the contract's `Op::check`): a refused argument returns 33003
//! at once, without attaching; a checked request then takes the client's unchecked
//! path, so nothing is checked twice.

use crate::client::{Client, check_locally};
use crate::error::ClientError;
use crate::message::OutgoingMessage;
use crate::options::{ClientOptions, EngineOptions};
use crate::route::{CallKind, EventObserver, Step, StepHook};
use rcim_proto::ipc::{Event, Op, TypingUser, Welcome};
use rcim_proto::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use rcim_proto::{ConnectionStatus, RcCode, Token};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError, Weak, mpsc};

type OnDatabaseOpened = Box<dyn FnOnce(i32) + Send>;
type OnConnected = Box<dyn FnOnce(i32, Option<String>) + Send>;
type OnMessageSaved = Box<dyn FnOnce(Message) + Send>;
type OnMessageSent = Box<dyn FnOnce(i32, Option<Message>) + Send>;
type StatusListener = Arc<dyn Fn(ConnectionStatus) + Send + Sync>;
type MessageListener = Arc<dyn Fn(Message, u32, bool, bool) + Send + Sync>;
type SyncListener = Arc<dyn Fn() + Send + Sync>;
type ReadReceiptListener = Arc<dyn Fn(String, i64) + Send + Sync>;
type ReadSyncListener = Arc<dyn Fn(ConversationKey, i64) + Send + Sync>;
type TypingListener = Arc<dyn Fn(ConversationKey, Vec<TypingUser>) + Send + Sync>;
type RecallListener = Arc<dyn Fn(Message) + Send + Sync>;
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
    ///
    /// ```
    /// let callback = rcim_client::ConnectCallback::new(|code, user_id| println!("{code} {user_id:?}"));
    /// # drop(callback);
    /// ```
    pub fn new(on_connected: impl FnOnce(i32, Option<String>) + Send + 'static) -> Self {
        Self {
            on_database_opened: None,
            on_connected: Box::new(on_connected),
        }
    }

    /// Adds an `onDatabaseOpened`.
    ///
    /// ```
    /// let callback = rcim_client::ConnectCallback::new(|_, _| {})
    ///     .on_database_opened(|code| println!("onDatabaseOpened {code}"));
    /// assert!(callback.on_database_opened.is_some());
    /// ```
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

/// RC's `RCIMIWSendMessageCallback`: `onMessageSaved` (optional), then
/// `onMessageSent`.
///
/// ```
/// use rcim_client::SendMessageCallback;
/// let callback = SendMessageCallback::new(|code, message| {
///     println!("sent: {code}, uid {:?}", message.and_then(|m| m.uid));
/// })
/// .on_message_saved(|message| println!("saved as local message {}", message.id));
/// # drop(callback);
/// ```
pub struct SendMessageCallback {
    /// `onMessageSaved(message)`: the message is in the daemon's outbox, status
    /// sending, with its local id.
    pub on_message_saved: Option<OnMessageSaved>,
    /// `onMessageSent(code, message)`: 0 with the server's uid and sent time, or the
    /// RC error. The message is `None` only when the daemon went away (30011)
    /// before `onMessageSaved`.
    pub on_message_sent: OnMessageSent,
}

impl SendMessageCallback {
    /// A callback with this `onMessageSent` and no `onMessageSaved`.
    ///
    /// ```
    /// let callback = rcim_client::SendMessageCallback::new(|code, _| println!("onMessageSent {code}"));
    /// assert!(callback.on_message_saved.is_none());
    /// ```
    pub fn new(on_message_sent: impl FnOnce(i32, Option<Message>) + Send + 'static) -> Self {
        Self {
            on_message_saved: None,
            on_message_sent: Box::new(on_message_sent),
        }
    }

    /// Adds an `onMessageSaved`.
    ///
    /// ```
    /// let callback = rcim_client::SendMessageCallback::new(|_, _| {})
    ///     .on_message_saved(|message| println!("saved as {}", message.id));
    /// assert!(callback.on_message_saved.is_some());
    /// ```
    pub fn on_message_saved(mut self, f: impl FnOnce(Message) + Send + 'static) -> Self {
        self.on_message_saved = Some(Box::new(f));
        self
    }
}

impl std::fmt::Debug for SendMessageCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendMessageCallback")
            .field("on_message_saved", &self.on_message_saved.is_some())
            .finish_non_exhaustive()
    }
}

/// RC's `RCIMIWEngine`, backed by `rcimd`.
///
/// Every method blocks until the daemon answers; callbacks and the status listener
/// run on a background thread. Do not call it from async code (use
/// [`Client`] there): it works, but blocks an executor thread.
///
/// When `rcimd` cannot be reached, calls return 33001 (CLIENT_NOT_INIT), log the
/// typed error with `tracing`, and keep it for [`Engine::last_error`].
///
/// ```no_run
/// use rcim_client::{ConnectCallback, Engine, EngineOptions};
/// let engine = Engine::create("app-key", EngineOptions::default());
/// engine.set_on_message_received(|message, _, _, _| println!("{}", message.id));
/// let code = engine.connect("token", 30, ConnectCallback::new(|code, _| println!("onConnected {code}")));
/// println!("connect returned {code}");
/// ```
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
    message_listener: Mutex<Option<MessageListener>>,
    read_receipt_listener: Mutex<Option<ReadReceiptListener>>,
    read_sync_listener: Mutex<Option<ReadSyncListener>>,
    typing_listener: Mutex<Option<TypingListener>>,
    sync_listener: Mutex<Option<SyncListener>>,
    recall_listener: Mutex<Option<RecallListener>>,
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

    /// What feeds a newly attached session's events to the listeners.
    fn observer(self: &Arc<Self>) -> impl FnOnce(&Welcome) -> Option<EventObserver> + use<> {
        let shared = Arc::downgrade(self);
        |welcome: &Welcome| {
            let mut feed = EventFeed {
                last: welcome.status.link.status,
                shared,
            };
            Some(EventObserver(Box::new(move |event: &Event| {
                feed.observe(event)
            })))
        }
    }

    /// Makes a call with callbacks. With no attached client, attaches with the call
    /// written together with the Hello: an app's first `connect` costs one round
    /// trip to the daemon instead of two. Other calls wait for the attach only, not
    /// for this call's answer.
    async fn call_with_hook(
        self: &Arc<Self>,
        op: Op,
        kind: CallKind,
        hook: StepHook,
    ) -> Result<i32, ClientError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_ended()) {
            let client = client.clone();
            drop(slot);
            return client.call_with_hook(op, kind, hook).await;
        }
        *slot = None;
        let (client, answer) =
            Client::attach_observed_calling(self.options.clone(), self.observer(), op, kind, hook)
                .await?;
        *slot = Some(client);
        drop(slot);
        answer.code().await
    }

    /// The attached client, attaching first when there is none or it is closed.
    async fn client(self: &Arc<Self>) -> Result<Client, ClientError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_ended()) {
            return Ok(client.clone());
        }
        *slot = None;
        match Client::attach_observed(self.options.clone(), self.observer()).await {
            Ok((client, _events)) => {
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

/// Reads `slot`'s listener, if one is set.
fn listener<T: Clone>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// One attached session's events, on their way to the listeners: the session's
/// reader calls [`EventFeed::observe`] with each event, in order, whatever
/// listeners are set.
struct EventFeed {
    /// The status the listener last heard of (the Welcome's to begin with).
    last: ConnectionStatus,
    shared: Weak<Shared>,
}

impl EventFeed {
    /// Queues the listener call for `event`, if that listener is set: the status
    /// listener only when the status actually changes, the message listener for each
    /// message, the sync listener at the end of each offline sync. Never blocks.
    fn observe(&mut self, event: &Event) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        match event {
            Event::StatusChanged(state) => {
                let status = state.status;
                if status == self.last {
                    return;
                }
                self.last = status;
                if let Some(f) = listener(&shared.status_listener) {
                    shared.dispatch(move || f(status));
                }
            }
            Event::MessageReceived {
                message,
                left,
                offline,
                has_package,
            } => {
                if let Some(f) = listener(&shared.message_listener) {
                    let (message, left, offline, has_package) =
                        (message.clone(), *left, *offline, *has_package);
                    shared.dispatch(move || f(message, left, offline, has_package));
                }
            }
            // The daemon catches a lagging client up by itself; the
            // reader drops what the replay repeats, so the listener never hears of
            // it.
            Event::Lagged { .. } => {}
            Event::OfflineSyncCompleted => {
                if let Some(f) = listener(&shared.sync_listener) {
                    shared.dispatch(move || f());
                }
            }
            Event::MessageRecalled { message } => {
                if let Some(f) = listener(&shared.recall_listener) {
                    let message = message.clone();
                    shared.dispatch(move || f(message));
                }
            }
            Event::ReadReceipt {
                conversation,
                last_message_send_time_ms,
            } => {
                if let Some(f) = listener(&shared.read_receipt_listener) {
                    let (peer, time) = (conversation.target_id.clone(), *last_message_send_time_ms);
                    shared.dispatch(move || f(peer, time));
                }
            }
            Event::ConversationReadSynced {
                conversation,
                last_message_send_time_ms,
            } => {
                if let Some(f) = listener(&shared.read_sync_listener) {
                    let (key, time) = (conversation.clone(), *last_message_send_time_ms);
                    shared.dispatch(move || f(key, time));
                }
            }
            Event::TypingStatus {
                conversation,
                users,
            } => {
                if let Some(f) = listener(&shared.typing_listener) {
                    let (key, users) = (conversation.clone(), users.clone());
                    shared.dispatch(move || f(key, users));
                }
            }
            // RC hands a status message to `onMessageReceived` unstored: message
            // id 0, never offline.
            Event::StatusMessageReceived { message } => {
                if let Some(f) = listener(&shared.message_listener) {
                    let message = crate::message::unstored(message.clone());
                    shared.dispatch(move || f(message, 0, false, false));
                }
            }
        }
    }
}

impl Engine {
    /// RC's `RCIMIWEngine.create(appKey, options)`. Does not touch the daemon yet:
    /// the first call attaches.
    ///
    /// ```
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.app_key(), "app-key");
    /// ```
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
            options: options.client,
            client: tokio::sync::Mutex::new(None),
            last_error: Mutex::new(None),
            status_listener: Mutex::new(None),
            message_listener: Mutex::new(None),
            sync_listener: Mutex::new(None),
            read_receipt_listener: Mutex::new(None),
            read_sync_listener: Mutex::new(None),
            typing_listener: Mutex::new(None),
            recall_listener: Mutex::new(None),
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
    ///
    /// ```
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.app_key(), "app-key");
    /// ```
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
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// let code = engine.connect(
    ///     "token-from-your-app-server",
    ///     30,
    ///     rcim_client::ConnectCallback::new(|code, user_id| println!("onConnected {code} {user_id:?}")),
    /// );
    /// if code != 0 {
    ///     eprintln!("not accepted: {}", rcim_client::RcCode(code));
    /// }
    /// ```
    pub fn connect(&self, token: &str, timeout: i32, callback: ConnectCallback) -> i32 {
        let op = Op::Connect {
            token: Token::new(token),
            timeout_secs: timeout,
        };
        if let Err(code) = check_locally(&op) {
            return code;
        }
        let ConnectCallback {
            mut on_database_opened,
            on_connected,
        } = callback;
        let mut on_connected = Some(on_connected);
        self.call_with_callbacks(op, CallKind::Connect, move |step, shared| match step {
            Step::DatabaseOpened(code) => {
                if let Some(f) = on_database_opened.take() {
                    shared.dispatch(move || f(code));
                }
            }
            Step::Connected(code, user_id) => {
                if let Some(f) = on_connected.take() {
                    shared.dispatch(move || f(code, user_id));
                }
            }
            Step::Saved(_) | Step::Sent(..) => {}
        })
    }

    /// RC's `createTextMessage(type, targetId, channelId, text)`: a text message to
    /// pass to [`Engine::send_message`]. (Channels are for ultra groups, which rcim
    /// does not have.)
    ///
    /// ```
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// let message = engine.create_text_message(rcim_client::ConversationType::Group, "team-1", "hi all");
    /// assert_eq!(message.object_name, "RC:TxtMsg");
    /// ```
    pub fn create_text_message(
        &self,
        kind: ConversationType,
        target_id: &str,
        text: &str,
    ) -> OutgoingMessage {
        OutgoingMessage::text_to(kind, target_id, text)
    }

    /// RC's `sendMessage(message, callback)`.
    ///
    /// Returns 0 when the daemon accepted the message: `callback` then fires on the
    /// callback thread, `on_message_saved` (if set) once the message is in the
    /// daemon's outbox, then `on_message_sent` exactly once: 0 with the server's uid
    /// and sent time, the RC error, or 30011 (RC_SOCKET_DISCONNECTED) when the
    /// daemon went away first (with the saved message if `on_message_saved` came:
    /// the message stays in the outbox and goes out after the daemon restarts and
    /// reconnects). Any other return value means no callback will fire: 33003 at
    /// once when [`OutgoingMessage::check`] refuses the message; 33001 when `rcimd`
    /// cannot be reached (see [`Engine::last_error`]); otherwise the daemon's code
    /// (33002: no database yet, connect first).
    ///
    /// A message sent while disconnected is saved and sent after the next connect.
    ///
    /// ```no_run
    /// use rcim_client::{ConversationType, Engine, EngineOptions, SendMessageCallback};
    ///
    /// let engine = Engine::create("app-key", EngineOptions::default());
    /// let message = engine.create_text_message(ConversationType::Private, "bob", "hello");
    /// let code = engine.send_message(
    ///     message,
    ///     SendMessageCallback::new(|code, message| println!("onMessageSent {code} {message:?}"))
    ///         .on_message_saved(|message| println!("onMessageSaved {}", message.id)),
    /// );
    /// assert_eq!(code, 0);
    /// ```
    pub fn send_message(&self, message: OutgoingMessage, callback: SendMessageCallback) -> i32 {
        let op = Op::SendMessage {
            conversation: message.conversation,
            object_name: message.object_name,
            content: message.content,
        };
        if let Err(code) = check_locally(&op) {
            return code;
        }
        let SendMessageCallback {
            mut on_message_saved,
            on_message_sent,
        } = callback;
        let mut on_message_sent = Some(on_message_sent);
        self.call_with_callbacks(op, CallKind::SendMessage, move |step, shared| match step {
            Step::Saved(message) => {
                if let Some(f) = on_message_saved.take() {
                    shared.dispatch(move || f(message));
                }
            }
            Step::Sent(code, message) => {
                if let Some(f) = on_message_sent.take() {
                    shared.dispatch(move || f(code, message));
                }
            }
            Step::DatabaseOpened(_) | Step::Connected(..) => {}
        })
    }

    /// RC's `getMessages(type, targetId, channelId, sentTime, order, policy, count,
    /// callback)`, from the daemon's database (RC's LOCAL policy).
    ///
    /// Returns 0 when the daemon answered: `callback` then runs on the callback
    /// thread with `Ok(messages)` (RC's `onSuccess`: with
    /// [`TimeOrder::Before`] older than `sent_time_ms`, newest first, 0 meaning "from
    /// the newest"; with [`TimeOrder::After`] newer, oldest first) or `Err(code)`
    /// (RC's `onError`, e.g. 33002 no database). Any other return value means no
    /// callback will fire: 33003 at once for a `count` outside 1..=20 or an empty
    /// target id, 33001 when `rcimd` cannot be reached.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// use rcim_client::{ConversationKey, TimeOrder};
    /// let code = engine.get_messages(ConversationKey::private("bob"), 0, TimeOrder::Before, 20, |answer| {
    ///     match answer {
    ///         Ok(messages) => println!("{} messages", messages.len()),
    ///         Err(code) => println!("onError {code}"),
    ///     }
    /// });
    /// assert_eq!(code, 0);
    /// ```
    pub fn get_messages(
        &self,
        conversation: ConversationKey,
        sent_time_ms: i64,
        order: TimeOrder,
        count: u32,
        callback: impl FnOnce(Result<Vec<Message>, i32>) + Send + 'static,
    ) -> i32 {
        let op = Op::GetMessages {
            conversation,
            sent_time_ms,
            order,
            count,
        };
        self.messages_query(op, callback)
    }

    /// RC's `getConversations(types, channelId, startTime, count, callback)`:
    /// conversations of the given types (empty: all) whose newest message is older
    /// than `start_time_ms` (0: from the most recent), most recent first, with their
    /// unread counts and last messages.
    ///
    /// Returns and calls back as [`Engine::get_messages`] does; 33003 at once for a
    /// `count` outside 1..=50.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// let code = engine.get_conversations(&[], 0, 50, |answer| println!("{:?}", answer.map(|c| c.len())));
    /// assert_eq!(code, 0);
    /// ```
    pub fn get_conversations(
        &self,
        types: &[ConversationType],
        start_time_ms: i64,
        count: u32,
        callback: impl FnOnce(Result<Vec<Conversation>, i32>) + Send + 'static,
    ) -> i32 {
        let op = Op::GetConversations {
            types: types.to_vec(),
            start_time_ms,
            count,
        };
        if let Err(code) = check_locally(&op) {
            return code;
        }
        self.query(
            move |client| async move { client.conversations(op).await },
            callback,
        )
    }

    /// RC's `recallMessage(message, pushContent, callback)`: recalls `message`,
    /// which this user sent. The callback (RC's `onMessageRecalled`) gets
    /// `Ok(())` once every device of both sides is told (attached apps then get
    /// the remote-recall listener's call for this device's copy), or `Err(code)`:
    /// 25101 no such message or not this user's, 30002 not connected, 30003 no
    /// answer in time. Any other return value means no callback will fire: 33003
    /// at once for a message without a uid (not sent yet), 33001 when `rcimd`
    /// cannot be reached.
    ///
    /// ```no_run
    /// # fn sent() -> rcim_client::Message { unimplemented!() }
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// let code = engine.recall_message(&sent(), |answer| println!("recalled: {answer:?}"));
    /// assert_eq!(code, 0);
    /// ```
    pub fn recall_message(
        &self,
        message: &Message,
        callback: impl FnOnce(Result<(), i32>) + Send + 'static,
    ) -> i32 {
        let Some(uid) = message.uid.clone() else {
            return RcCode::INVALID_PARAMETER.0;
        };
        let op = Op::RecallMessage { uid };
        if let Err(code) = check_locally(&op) {
            return code;
        }
        self.query(
            move |client| async move {
                let code = client.code(op, "RecallMessage").await?;
                Ok(if code == 0 { Ok(()) } else { Err(code) })
            },
            callback,
        )
    }

    /// RC's `getRemoteHistoryMessages(type, targetId, channelId, sentTime, count,
    /// callback)`: up to `count` (1 to 100) messages of the server's copy of
    /// `conversation` sent before `before_time_ms` (0: the newest), newest first,
    /// including what this user sent from other devices. Returns and calls back as
    /// [`Engine::get_messages`] does; 33003 at once for a `count` outside 1..=100.
    pub fn get_remote_history_messages(
        &self,
        conversation: ConversationKey,
        before_time_ms: i64,
        count: u32,
        callback: impl FnOnce(Result<Vec<Message>, i32>) + Send + 'static,
    ) -> i32 {
        let op = Op::GetRemoteHistory {
            conversation,
            before_time_ms,
            count,
        };
        self.messages_query(op, callback)
    }

    /// RC's `searchMessages`: a full-text search of the local database (see
    /// [`SearchQuery`](rcim_proto::ipc::SearchQuery); its text is always taken
    /// literally), newest first. Returns and calls back as
    /// [`Engine::get_messages`] does; 33003 at once for a query it refuses.
    pub fn search_messages(
        &self,
        query: rcim_proto::ipc::SearchQuery,
        callback: impl FnOnce(Result<Vec<Message>, i32>) + Send + 'static,
    ) -> i32 {
        let op = Op::SearchMessages(query);
        self.messages_query(op, callback)
    }

    /// RC's `clearUnreadCount(type, targetId, channelId, timestamp)`: the messages
    /// received up to `timestamp_ms` (0: all) count as read.
    ///
    /// RC reports the result through a callback; this returns it instead, once the
    /// daemon has answered: 0 done, the daemon's RC code, 33003 at once for an
    /// empty target id, or 33001 when `rcimd` cannot be reached.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.clear_unread_count(rcim_client::ConversationKey::private("bob"), 0), 0);
    /// ```
    pub fn clear_unread_count(&self, conversation: ConversationKey, timestamp_ms: i64) -> i32 {
        let op = Op::ClearUnreadCount {
            conversation,
            timestamp_ms,
        };
        if let Err(code) = check_locally(&op) {
            return code;
        }
        self.block_on(|shared| async move {
            let result = match shared.client().await {
                Ok(client) => client.code(op, "ClearUnreadCount").await,
                Err(err) => Err(err),
            };
            result.unwrap_or_else(|err| {
                shared.record(&err);
                err.rc_code().0
            })
        })
        .unwrap_or(RcCode::CLIENT_NOT_INIT.0)
    }

    /// RC's `disconnect(receivePush)`: signs this device out for every local app.
    /// Returns the daemon's code, or 33001 when it cannot be reached.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.disconnect(true), 0);
    /// ```
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
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{}", engine.get_connection_status());
    /// ```
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
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.set_on_connection_status_changed(|status| println!("status: {status}"));
    /// ```
    pub fn set_on_connection_status_changed(
        &self,
        f: impl Fn(ConnectionStatus) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .status_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `onMessageReceived(message, left, offline, hasPackage)` listener: called
    /// on the callback thread for each message the daemon has committed to its
    /// database, in order. `left` is how many more of the current sync package
    /// follow, `offline` whether it came through the offline sync after a
    /// (re)connect, `has_package` whether more packages wait on the server.
    /// Replaces any earlier listener; attaches in the background like
    /// [`Engine::set_on_connection_status_changed`].
    ///
    /// ```no_run
    /// use rcim_client::{Engine, EngineOptions, text_of};
    /// let engine = Engine::create("app-key", EngineOptions::default());
    /// engine.set_on_message_received(|message, left, offline, _has_package| {
    ///     let text = text_of(&message).unwrap_or_else(|| format!("[{}]", message.object_name));
    ///     println!("{}: {text} (left {left}, offline {offline})", message.sender);
    /// });
    /// engine.set_on_offline_message_sync_completed(|| println!("caught up"));
    /// ```
    pub fn set_on_message_received(
        &self,
        f: impl Fn(Message, u32, bool, bool) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .message_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `onRemoteMessageRecalled` listener: called on the callback thread
    /// once for each stored message that was recalled (by its sender on any
    /// device, or by the app server), with the message as stored now: same id,
    /// uid and sent time, object name `RC:RcNtf`, no original content. Replaces
    /// any earlier listener; attaches in the background.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.set_on_remote_message_recalled(|message| println!("recalled: {}", message.id));
    /// ```
    pub fn set_on_remote_message_recalled(&self, f: impl Fn(Message) + Send + Sync + 'static) {
        *self
            .shared
            .recall_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `onOfflineMessageSyncCompleted` listener: called on the callback thread
    /// after the last message of the backlog that followed a (re)connect. Replaces
    /// any earlier listener; attaches in the background.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.set_on_offline_message_sync_completed(|| println!("caught up"));
    /// ```
    pub fn set_on_offline_message_sync_completed(&self, f: impl Fn() + Send + Sync + 'static) {
        *self
            .shared
            .sync_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `onPrivateReadReceiptReceived(targetId, channelId, timestamp)`
    /// listener: the peer of a private conversation read this user's messages sent
    /// up to `timestamp` (ms); they are stored with sent status `read` already.
    /// Called on the callback thread with the peer's id and the time. Replaces any
    /// earlier listener; attaches in the background.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.set_on_private_read_receipt_received(|peer, time| println!("{peer} read up to {time}"));
    /// ```
    pub fn set_on_private_read_receipt_received(
        &self,
        f: impl Fn(String, i64) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .read_receipt_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `onConversationReadStatusSyncMessageReceived(type, targetId,
    /// timestamp)` listener: another device of this user read the conversation up
    /// to `timestamp` (ms), and its unread count here is cleared up to there.
    /// Replaces any earlier listener; attaches in the background.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.set_on_conversation_read_status_sync_message_received(|conversation, time| {
    ///     println!("{} read elsewhere up to {time}", conversation.target_id)
    /// });
    /// ```
    pub fn set_on_conversation_read_status_sync_message_received(
        &self,
        f: impl Fn(ConversationKey, i64) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .read_sync_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `onTypingStatusChanged(type, targetId, channelId, userTypingStatus)`
    /// listener: who is typing in a private conversation now; called when a typing
    /// status arrives and again when it runs out after 6 s without a new one (an
    /// empty list: nobody is typing). Replaces any earlier listener; attaches in
    /// the background.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.set_on_typing_status_changed(|conversation, users| {
    ///     println!("{} typing in {}", users.len(), conversation.target_id)
    /// });
    /// ```
    pub fn set_on_typing_status_changed(
        &self,
        f: impl Fn(ConversationKey, Vec<TypingUser>) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .typing_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
        self.attach_in_background();
    }

    /// RC's `getTotalUnreadCount`: the unread count over every conversation, or
    /// the daemon's RC code (33002 no database, 33001 when `rcimd` cannot be
    /// reached). RC reports it through a callback; this returns it.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{:?}", engine.get_total_unread_count());
    /// ```
    pub fn get_total_unread_count(&self) -> Result<u64, i32> {
        self.count(Op::GetTotalUnreadCount, "GetTotalUnreadCount")
    }

    /// RC's `getUnreadCount(type, targetId, channelId)`: one conversation's
    /// unread count, or the RC code (33003 at once for an empty target id).
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{:?}", engine.get_unread_count(rcim_client::ConversationKey::private("bob")));
    /// ```
    pub fn get_unread_count(&self, conversation: ConversationKey) -> Result<u64, i32> {
        self.count(Op::GetUnreadCount { conversation }, "GetUnreadCount")
    }

    /// RC's `getUnreadCountByConversationTypes(types, channelId, contain)`: the
    /// unread count over the conversations of `types` (empty: all), or the RC
    /// code.
    ///
    /// ```no_run
    /// use rcim_client::ConversationType;
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{:?}", engine.get_unread_count_by_conversation_types(&[ConversationType::Group]));
    /// ```
    pub fn get_unread_count_by_conversation_types(
        &self,
        types: &[ConversationType],
    ) -> Result<u64, i32> {
        let op = Op::GetUnreadCountByTypes {
            types: types.to_vec(),
        };
        self.count(op, "GetUnreadCountByTypes")
    }

    /// Marks a conversation read on every device (RC's
    /// `syncConversationReadStatus`, plus `sendPrivateReadReceiptMessage` for a
    /// private one): see [`Client::mark_read`]. Returns the code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.mark_read(rcim_client::ConversationKey::private("bob"), 0), 0);
    /// ```
    pub fn mark_read(&self, conversation: ConversationKey, up_to_time_ms: i64) -> i32 {
        let op = Op::MarkRead {
            conversation,
            up_to_time_ms,
        };
        self.code(op, "MarkRead")
    }

    /// RC's `sendTypingStatus(type, targetId, channelId, currentType)`: see
    /// [`Client::send_typing_status`]. Returns the code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// let bob = rcim_client::ConversationKey::private("bob");
    /// assert_eq!(engine.send_typing_status(bob, "RC:TxtMsg"), 0);
    /// ```
    pub fn send_typing_status(&self, conversation: ConversationKey, current_type: &str) -> i32 {
        let op = Op::SendTypingStatus {
            conversation,
            content_type: current_type.to_owned(),
        };
        self.code(op, "SendTypingStatus")
    }

    /// RC's `changeConversationTopStatus(type, targetId, channelId, top)`: see
    /// [`Client::set_conversation_top`]. Returns the code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.change_conversation_top_status(rcim_client::ConversationKey::private("bob"), true), 0);
    /// ```
    pub fn change_conversation_top_status(&self, conversation: ConversationKey, top: bool) -> i32 {
        self.code(
            Op::SetConversationTop { conversation, top },
            "SetConversationTop",
        )
    }

    /// RC's `changeConversationNotificationLevel(type, targetId, channelId,
    /// level)`: see [`Client::set_notification_level`]. Returns the code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.change_conversation_notification_level(rcim_client::ConversationKey::group("team"), 5), 0);
    /// ```
    pub fn change_conversation_notification_level(
        &self,
        conversation: ConversationKey,
        level: i32,
    ) -> i32 {
        let op = Op::SetNotificationLevel {
            conversation,
            level,
        };
        self.code(op, "SetNotificationLevel")
    }

    /// RC's `removeConversation(type, targetId, channelId)`. Returns the code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.remove_conversation(rcim_client::ConversationKey::private("bob")), 0);
    /// ```
    pub fn remove_conversation(&self, conversation: ConversationKey) -> i32 {
        self.code(
            Op::RemoveConversation { conversation },
            "RemoveConversation",
        )
    }

    /// RC's `deleteLocalMessageByIds`: how many were deleted, or the RC code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{:?}", engine.delete_local_messages(&[3, 4]));
    /// ```
    pub fn delete_local_messages(&self, ids: &[i64]) -> Result<u64, i32> {
        self.count(Op::DeleteMessages { ids: ids.to_vec() }, "DeleteMessages")
    }

    /// RC's `clearMessages(type, targetId, channelId, timestamp)` on this device:
    /// how many were deleted, or the RC code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{:?}", engine.clear_messages(rcim_client::ConversationKey::private("bob"), 0));
    /// ```
    pub fn clear_messages(
        &self,
        conversation: ConversationKey,
        timestamp_ms: i64,
    ) -> Result<u64, i32> {
        let op = Op::DeleteMessagesBefore {
            conversation,
            before_ms: timestamp_ms,
        };
        self.count(op, "DeleteMessagesBefore")
    }

    /// RC's `saveDraftMessage(type, targetId, channelId, draft)`. Returns the code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// assert_eq!(engine.save_draft_message(rcim_client::ConversationKey::private("bob"), "later"), 0);
    /// ```
    pub fn save_draft_message(&self, conversation: ConversationKey, draft: &str) -> i32 {
        let op = Op::SaveDraft {
            conversation,
            draft: draft.to_owned(),
        };
        self.code(op, "SaveDraft")
    }

    /// RC's `getDraftMessage(type, targetId, channelId)`: the draft (empty: none),
    /// or the RC code.
    ///
    /// ```no_run
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// println!("{:?}", engine.get_draft_message(rcim_client::ConversationKey::private("bob")));
    /// ```
    pub fn get_draft_message(&self, conversation: ConversationKey) -> Result<String, i32> {
        let op = Op::GetDraft { conversation };
        check_locally(&op)?;
        self.block_on(|shared| async move {
            let client = match shared.client().await {
                Ok(client) => client,
                Err(err) => {
                    shared.record(&err);
                    return Err(err.rc_code().0);
                }
            };
            let Op::GetDraft { conversation } = op else {
                return Err(RcCode::INVALID_PARAMETER.0);
            };
            client.draft(conversation).await.unwrap_or_else(|err| {
                shared.record(&err);
                Err(err.rc_code().0)
            })
        })
        .unwrap_or(Err(RcCode::CLIENT_NOT_INIT.0))
    }

    /// Runs a request answered with an RC code, checked locally first.
    fn code(&self, op: Op, name: &'static str) -> i32 {
        if let Err(code) = check_locally(&op) {
            return code;
        }
        self.block_on(|shared| async move {
            let result = match shared.client().await {
                Ok(client) => client.code(op, name).await,
                Err(err) => Err(err),
            };
            result.unwrap_or_else(|err| {
                shared.record(&err);
                err.rc_code().0
            })
        })
        .unwrap_or(RcCode::CLIENT_NOT_INIT.0)
    }

    /// Runs a request answered with a count, checked locally first.
    fn count(&self, op: Op, name: &'static str) -> Result<u64, i32> {
        check_locally(&op)?;
        self.block_on(|shared| async move {
            let result = match shared.client().await {
                Ok(client) => client.count(op, name).await,
                Err(err) => Err(err),
            };
            result.unwrap_or_else(|err| {
                shared.record(&err);
                Err(err.rc_code().0)
            })
        })
        .unwrap_or(Err(RcCode::CLIENT_NOT_INIT.0))
    }

    /// Attaches (if not attached) without waiting, so that listeners hear events
    /// caused by other apps without a call from this one.
    fn attach_in_background(&self) {
        let shared = Arc::clone(&self.shared);
        self.spawn(async move {
            let _ = shared.client().await;
        });
    }

    /// The last error met while trying to use `rcimd` (kept until a newer one
    /// replaces it), for calls that returned 33001.
    ///
    /// ```
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// if let Some(err) = engine.last_error() {
    ///     eprintln!("{err}");
    /// }
    /// ```
    pub fn last_error(&self) -> Option<ClientError> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// RC's `destroy()`: closes the session with the daemon (not a disconnect: the
    /// daemon stays connected for other apps). Callbacks not yet fired never fire.
    ///
    /// ```
    /// let engine = rcim_client::Engine::create("app-key", rcim_client::EngineOptions::default());
    /// engine.destroy();
    /// ```
    pub fn destroy(self) {
        drop(self);
    }

    /// The shared path of calls with callbacks: attaches, sends `op` with `on_step`
    /// registered for its callbacks, and returns the daemon's immediate code (33001
    /// when it cannot be reached). `on_step` then runs in the client's reader for
    /// each checked callback (the last one synthesized with 30011 if the daemon goes
    /// away), in order with the events; it only queues jobs for the callback thread.
    /// Callbacks that come after the engine is gone are dropped.
    fn call_with_callbacks(
        &self,
        op: Op,
        kind: CallKind,
        mut on_step: impl FnMut(Step, &Shared) + Send + 'static,
    ) -> i32 {
        let weak = Arc::downgrade(&self.shared);
        let hook = Box::new(move |step: Step| {
            if let Some(shared) = weak.upgrade() {
                on_step(step, &shared);
            }
        });
        self.block_on(|shared| async move {
            let result = shared.call_with_hook(op, kind, hook).await;
            result.unwrap_or_else(|err| {
                shared.record(&err);
                err.rc_code().0
            })
        })
        .unwrap_or(RcCode::CLIENT_NOT_INIT.0)
    }

    /// Checks `op` (one answered with messages) here, then [`Engine::query`]s it.
    fn messages_query(
        &self,
        op: Op,
        callback: impl FnOnce(Result<Vec<Message>, i32>) + Send + 'static,
    ) -> i32 {
        if let Err(code) = check_locally(&op) {
            return code;
        }
        self.query(
            move |client| async move { client.messages(op).await },
            callback,
        )
    }

    /// The shared path of queries: waits for the daemon's answer, then returns 0 and
    /// hands the answer (`Ok` data or `Err` RC code) to `callback` on the callback
    /// thread. 33001, and no callback, when the daemon cannot be reached.
    fn query<T, S, Fut>(
        &self,
        start: S,
        callback: impl FnOnce(Result<T, i32>) + Send + 'static,
    ) -> i32
    where
        T: Send + 'static,
        S: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Result<T, i32>, ClientError>> + Send + 'static,
    {
        let answer = self.block_on(|shared| async move {
            let result = match shared.client().await {
                Ok(client) => start(client).await,
                Err(err) => Err(err),
            };
            result.map_err(|err| {
                shared.record(&err);
                err.rc_code().0
            })
        });
        match answer {
            Some(Ok(answer)) => {
                self.shared.dispatch(move || callback(answer));
                0
            }
            Some(Err(code)) => code,
            None => RcCode::CLIENT_NOT_INIT.0,
        }
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
