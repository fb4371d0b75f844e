//! The engine calls: destroy, connect, disconnect, status, the listeners, sending,
//! and the local queries (history, conversations, unread counts).
//!
//! Each engine is an [`rcim_client::Engine`] (which does the work and runs its
//! callbacks on its `rcim-callbacks` thread) plus what the C side needs: a
//! [`Gate`] that every call into C passes, so that after `rcim_destroy_engine` no
//! callback runs, and one worker thread, `rcim-ffi-calls`, for the calls RC makes
//! asynchronous but the engine answers by blocking (disconnect, the queries that
//! take several pages, immediate errors). So callbacks run on one of those two
//! library threads, never on the caller's, one at a time per engine, and a
//! callback may call the library again (even `rcim_destroy_engine`) without
//! deadlock. A callback must not wait for another callback of the same engine.

use crate::boundary::{Context, Gate, Registry, guard, optional_str, required_str};
use crate::boxes::{ConversationViews, MessageViews};
use crate::codes::{connection_status, conversation_type_in, engine_error};
use crate::types::{
    CEnum, RcimCodeMessageCb, RcimConnectCb, RcimConnectionStatus, RcimConnectionStatusLsr,
    RcimConversationIdentifier, RcimConversationTypeIn, RcimDatabaseStatus, RcimDatabaseStatusLsr,
    RcimDisconnectMode, RcimDisconnectModeIn, RcimEngineError, RcimEngineErrorCb, RcimEngineSync,
    RcimGetConversationCb, RcimGetConversationListCb, RcimGetCountCb, RcimGetMessageListCb,
    RcimMessageBox, RcimMessageCb, RcimMessageReceivedLsr, RcimOfflineMessageSyncCompletedLsr,
    RcimReceivedInfo, RcimSendMessageOption,
};
use rcim_client::{ConnectCallback, Engine, EngineOptions, OutgoingMessage, SendMessageCallback};
use rcim_proto::RcCode;
use rcim_proto::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::{Arc, Mutex, PoisonError, mpsc};

type Job = Box<dyn FnOnce() + Send>;

/// Most messages rcimd returns for one history query (its `MAX_MESSAGES_PER_QUERY`).
const MESSAGES_PER_PAGE: u32 = 20;
/// Most conversations rcimd returns for one query.
const CONVERSATIONS_PER_PAGE: u32 = 50;
/// RC's upper bound for `count` of `rcim_engine_get_local_conversations_by_page`.
const MAX_CONVERSATIONS: i32 = 1000;

pub(crate) static ENGINES: Registry<EngineEntry> = Registry::new();

/// One engine as C holds it.
pub(crate) struct EngineEntry {
    engine: Engine,
    gate: Arc<Gate>,
    database_listener: Arc<Mutex<Option<(Context, DatabaseListener)>>>,
    worker: Mutex<mpsc::Sender<Job>>,
}

type DatabaseListener = unsafe extern "C" fn(*const c_void, RcimDatabaseStatus);

impl EngineEntry {
    /// An engine for `app_key`, shown to rcimd as `client_name`, with its worker.
    pub(crate) fn create(app_key: &str, client_name: &str) -> Result<Self, RcimEngineError> {
        let (worker, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rcim-ffi-calls".to_owned())
            .spawn(move || jobs.into_iter().for_each(|job| guard((), job)))
            .map_err(|_| RcimEngineError::DatabaseThreadError)?;
        Ok(Self {
            engine: Engine::create(app_key, EngineOptions::named(client_name)),
            gate: Gate::new(),
            database_listener: Arc::new(Mutex::new(None)),
            worker: Mutex::new(worker),
        })
    }

    /// Runs `job` on the worker thread, after the jobs queued before it.
    fn later(&self, job: impl FnOnce() + Send + 'static) {
        let sent = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Box::new(job));
        if sent.is_err() {
            tracing::error!("the rcim-ffi-calls thread is gone; a callback was dropped");
        }
    }
}

/// Runs `job` (a callback telling C that its engine handle is not live) on a
/// library thread shared by all such reports, so that even then no callback runs
/// on the calling thread. When that thread cannot be started, it runs at once.
fn without_engine(job: impl FnOnce() + Send + 'static) {
    static QUEUE: std::sync::OnceLock<Option<Mutex<mpsc::Sender<Job>>>> =
        std::sync::OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rcim-ffi-errors".to_owned())
            .spawn(move || jobs.into_iter().for_each(|job| guard((), job)))
            .ok()
            .map(|_| Mutex::new(queue))
    });
    let job: Job = Box::new(job);
    let job = match queue {
        Some(queue) => match queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
        {
            Ok(()) => return,
            Err(mpsc::SendError(job)) => job,
        },
        None => job,
    };
    guard((), job);
}

/// The engine behind `engine`, or None (then the caller reports 34401).
fn entry(engine: *const RcimEngineSync) -> Option<Arc<EngineEntry>> {
    ENGINES.get(engine)
}

/// Reports `code` to a code-only callback, on the worker (or at once on the
/// caller's thread when there is no engine to own a thread).
fn report(
    entry: Option<&Arc<EngineEntry>>,
    context: Context,
    callback: RcimEngineErrorCb,
    code: RcimEngineError,
) {
    let Some(callback) = callback else { return };
    match entry {
        Some(entry) => {
            let gate = Arc::clone(&entry.gate);
            entry.later(move || {
                // SAFETY: RC's contract: the callback is callable with its context.
                gate.call(|| unsafe { callback(context.ptr(), code) })
            });
        }
        // SAFETY: as above.
        None => without_engine(move || unsafe { callback(context.ptr(), code) }),
    }
}

/// Destroys the engine: closes this app's session with rcimd (rcimd stays
/// connected for the user's other apps; call `rcim_engine_disconnect` first to
/// sign the device out). When it returns, no callback of this engine runs or will
/// run. 34401 when `engine` is not a live engine (NULL, destroyed, never made).
///
/// # Safety
/// None beyond passing any pointer value: handles are checked, never dereferenced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_destroy_engine(engine: *mut RcimEngineSync) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(entry) = ENGINES.remove(engine) else {
            return RcimEngineError::InvalidArgumentEngineSync;
        };
        entry.gate.close();
        // Calls still running on other threads hold their own reference; the
        // engine ends when the last one returns.
        drop(entry);
        RcimEngineError::Success
    })
}

/// Sets (or with NULL, clears) the database status listener: `OpenSuccess` or
/// `OpenFailed` when rcimd reports the user's database for a connect of this
/// engine, before that connect's callback. Runs on a library thread.
///
/// # Safety
/// `listener` is NULL or callable with `context` from any thread until the engine
/// is destroyed or the listener replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_set_database_status_listener(
    engine: *const RcimEngineSync,
    context: *const c_void,
    listener: RcimDatabaseStatusLsr,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(entry) = entry(engine) else {
            return RcimEngineError::InvalidArgumentEngineSync;
        };
        *entry
            .database_listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = listener.map(|f| (Context(context), f));
        RcimEngineError::Success
    })
}

/// Sets (or with NULL, clears) the connection status listener: called on a library
/// thread each time the status rcimd reports changes (including changes other apps
/// cause). Setting it attaches to rcimd in the background.
///
/// # Safety
/// `listener` is NULL or callable with `context` from any thread until the engine
/// is destroyed or the listener replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_set_connection_status_listener(
    engine: *const RcimEngineSync,
    context: *const c_void,
    listener: RcimConnectionStatusLsr,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(entry) = entry(engine) else {
            return RcimEngineError::InvalidArgumentEngineSync;
        };
        let gate = Arc::clone(&entry.gate);
        let context = Context(context);
        // rcim's Suspend and Connecting are both native Connecting: report once.
        let last = Mutex::new(None::<RcimConnectionStatus>);
        entry
            .engine
            .set_on_connection_status_changed(move |status| {
                let Some(listener) = listener else { return };
                let status = connection_status(status);
                let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
                if *last == Some(status) {
                    return;
                }
                *last = Some(status);
                drop(last);
                // SAFETY: the caller promised the listener is callable with context.
                gate.call(|| unsafe { listener(context.ptr(), status) });
            });
        RcimEngineError::Success
    })
}

/// Writes the status rcimd last reported to `*out_status` (`Idle` when rcimd
/// cannot be reached). Blocks until rcimd answers when not attached yet. 34423 for
/// a NULL `out_status`.
///
/// # Safety
/// `out_status` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_connection_status(
    engine: *const RcimEngineSync,
    out_status: *mut RcimConnectionStatus,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(entry) = entry(engine) else {
            return RcimEngineError::InvalidArgumentEngineSync;
        };
        if out_status.is_null() {
            return RcimEngineError::InvalidArgumentConnectionStatus;
        }
        let status = connection_status(entry.engine.get_connection_status());
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { out_status.write(status) };
        RcimEngineError::Success
    })
}

/// Connects through rcimd with `token`: `callback` (may be NULL) then runs once on
/// a library thread with 0 and the user id, or the error (user id NULL). Before
/// it, the database status listener hears whether rcimd opened the user's
/// database. The connection is rcimd's: another app of the user already connected
/// with the same user costs no second connection to the server.
///
/// `timeout_sec` 0 keeps trying until success or a terminal error; above 0, 34006
/// when it passes. Errors: 34407 for a NULL, non-UTF-8 or malformed token, 34001
/// when rcimd is connected as another user, 31014 when rcimd cannot be reached
/// (not running: `rcimctl status` says why).
///
/// # Safety
/// `token` is NULL or NUL-terminated and valid for the call; `callback` is NULL or
/// callable with `context` from any thread until it has run or the engine is
/// destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_connect(
    engine: *const RcimEngineSync,
    token: *const c_char,
    timeout_sec: i32,
    context: *const c_void,
    callback: RcimConnectCb,
) {
    let context = Context(context);
    guard((), || {
        let fail = |entry: Option<&Arc<EngineEntry>>, code| {
            let callback = callback.map(|f| {
                // The same function seen as a code-only callback: user_id NULL.
                move |context: Context, code| {
                    // SAFETY: the caller promised the callback is callable.
                    unsafe { f(context.ptr(), code, ptr::null()) }
                }
            });
            if let Some(callback) = callback {
                match entry {
                    Some(entry) => {
                        let gate = Arc::clone(&entry.gate);
                        entry.later(move || gate.call(|| callback(context, code)));
                    }
                    None => without_engine(move || callback(context, code)),
                }
            }
        };
        let Some(entry) = entry(engine) else {
            return fail(None, RcimEngineError::InvalidArgumentEngineSync);
        };
        // SAFETY: the caller promises a NUL-terminated token valid for the call.
        let Ok(token) = (unsafe { required_str(token) }) else {
            return fail(Some(&entry), RcimEngineError::InvalidArgumentToken);
        };
        let gate = Arc::clone(&entry.gate);
        let database = Arc::clone(&entry.database_listener);
        let database_gate = Arc::clone(&entry.gate);
        let on_connected = move |code: i32, user_id: Option<String>| {
            let Some(callback) = callback else { return };
            let code = engine_error(code, RcimEngineError::InvalidArgumentToken);
            let user_id = user_id.as_deref().map(crate::boundary::c_string);
            let user_id_ptr = user_id.as_ref().map_or(ptr::null(), |u| u.as_ptr());
            // SAFETY: the caller promised the callback is callable with context;
            // user_id lives until after the call.
            gate.call(|| unsafe { callback(context.ptr(), code, user_id_ptr) });
        };
        let on_database_opened = move |code: i32| {
            let listener = *database.lock().unwrap_or_else(PoisonError::into_inner);
            let Some((context, listener)) = listener else {
                return;
            };
            let status = if code == 0 {
                RcimDatabaseStatus::OpenSuccess
            } else {
                RcimDatabaseStatus::OpenFailed
            };
            // SAFETY: the listener's setter promised it is callable with context.
            database_gate.call(|| unsafe { listener(context.ptr(), status) });
        };
        let code = entry.engine.connect(
            token,
            timeout_sec,
            ConnectCallback::new(on_connected).on_database_opened(on_database_opened),
        );
        if code != 0 {
            fail(
                Some(&entry),
                engine_error(code, RcimEngineError::InvalidArgumentToken),
            );
        }
    });
}

/// Signs this device out, for every local app of the user (rcimd's connection is
/// shared): `KeepPush` keeps remote pushes, `NoPush` stops them. `callback` (may be
/// NULL) runs on a library thread with the result. 34225 for a mode that is no
/// `RcimDisconnectMode`.
///
/// # Safety
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_disconnect(
    engine: *const RcimEngineSync,
    mode: RcimDisconnectModeIn,
    context: *const c_void,
    callback: RcimEngineErrorCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(entry) = entry(engine) else {
            return report(
                None,
                context,
                callback,
                RcimEngineError::InvalidArgumentEngineSync,
            );
        };
        let receive_push = match mode {
            CEnum(m) if m == RcimDisconnectMode::KeepPush as i32 => true,
            CEnum(m) if m == RcimDisconnectMode::NoPush as i32 => false,
            _ => {
                return report(
                    Some(&entry),
                    context,
                    callback,
                    RcimEngineError::InvalidEnumOutOfRange,
                );
            }
        };
        let worker_entry = Arc::clone(&entry);
        entry.later(move || {
            let code = worker_entry.engine.disconnect(receive_push);
            let code = engine_error(code, RcimEngineError::InvalidEnumOutOfRange);
            if let Some(callback) = callback {
                // SAFETY: the caller promised the callback is callable with context.
                worker_entry
                    .gate
                    .call(|| unsafe { callback(context.ptr(), code) });
            }
        });
    });
}

/// Sets (or with NULL, clears) the message listener: called on a library thread
/// for each message rcimd stored for the user, in order, once each, with where it
/// sits in its sync package. The message is valid only during the call. Setting
/// it attaches to rcimd in the background.
///
/// # Safety
/// `listener` is NULL or callable with `context` from any thread until the engine
/// is destroyed or the listener replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_set_message_received_listener(
    engine: *const RcimEngineSync,
    context: *const c_void,
    listener: RcimMessageReceivedLsr,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(entry) = entry(engine) else {
            return RcimEngineError::InvalidArgumentEngineSync;
        };
        let gate = Arc::clone(&entry.gate);
        let context = Context(context);
        entry
            .engine
            .set_on_message_received(move |message, left, offline, has_package| {
                let Some(listener) = listener else { return };
                let views = MessageViews::new(std::slice::from_ref(&message), offline);
                let info = RcimReceivedInfo {
                    left: i32::try_from(left).unwrap_or(i32::MAX),
                    has_package,
                    is_offline: offline,
                };
                let (msg_box, _) = views.as_c();
                // SAFETY: the caller promised the listener is callable; msg_box
                // and info live until after the call.
                gate.call(|| unsafe { listener(context.ptr(), msg_box, &info) });
            });
        RcimEngineError::Success
    })
}

/// Sets (or with NULL, clears) the listener called on a library thread after the
/// last message of the backlog that follows each (re)connect.
///
/// # Safety
/// `listener` is NULL or callable with `context` from any thread until the engine
/// is destroyed or the listener replaced.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_set_offline_message_sync_completed_listener(
    engine: *const RcimEngineSync,
    context: *const c_void,
    listener: RcimOfflineMessageSyncCompletedLsr,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        let Some(entry) = entry(engine) else {
            return RcimEngineError::InvalidArgumentEngineSync;
        };
        let gate = Arc::clone(&entry.gate);
        let context = Context(context);
        entry.engine.set_on_offline_message_sync_completed(move || {
            if let Some(listener) = listener {
                // SAFETY: the caller promised the listener is callable with context.
                gate.call(|| unsafe { listener(context.ptr()) });
            }
        });
        RcimEngineError::Success
    })
}

/// What a message C passes in says, checked.
struct Outgoing {
    message: OutgoingMessage,
}

/// Reads and checks the fields of a message C wants to send.
///
/// # Safety
/// `msg_box` is NULL or points at a readable `RcimMessageBox` whose strings are
/// NULL or NUL-terminated, valid for the call.
unsafe fn read_outgoing(msg_box: *const RcimMessageBox) -> Result<Outgoing, RcimEngineError> {
    use RcimEngineError as E;
    if msg_box.is_null() {
        return Err(E::InvalidArgumentMessage);
    }
    // SAFETY: non-NULL and readable by the caller's promise. Fields are read one by
    // one through raw pointers: the bools are never read as Rust bools, and the
    // enum field is read as its int.
    let (conv_type, target_id, channel_id, object_name, content) = unsafe {
        (
            ptr::addr_of!((*msg_box).conv_type).read(),
            ptr::addr_of!((*msg_box).target_id).read(),
            ptr::addr_of!((*msg_box).channel_id).read(),
            ptr::addr_of!((*msg_box).object_name).read(),
            ptr::addr_of!((*msg_box).content).read(),
        )
    };
    let kind = conversation_type_in(conv_type).ok_or(E::InvalidArgumentConversationType)?;
    // SAFETY: NUL-terminated and valid for the call, by the caller's promise (the
    // same for the reads below).
    let target_id = unsafe { required_str(target_id) }.map_err(|_| E::InvalidArgumentTargetId)?;
    // SAFETY: as above.
    let channel_id =
        unsafe { optional_str(channel_id) }.map_err(|_| E::InvalidArgumentChannelId)?;
    if channel_id.is_some_and(|c| !c.is_empty()) {
        return Err(E::InvalidArgumentChannelId);
    }
    // SAFETY: as above.
    let object_name =
        unsafe { required_str(object_name) }.map_err(|_| E::InvalidArgumentObjectName)?;
    // SAFETY: as above.
    let content = unsafe { required_str(content) }.map_err(|_| E::InvalidArgumentMessageContent)?;
    Ok(Outgoing {
        message: OutgoingMessage {
            conversation: ConversationKey {
                kind,
                target_id: target_id.to_owned(),
            },
            object_name: object_name.to_owned(),
            content: content.to_owned(),
        },
    })
}

/// Sends a message through rcimd. `saved_cb` (may be NULL) runs once the message
/// is in rcimd's outbox (with its local id, status SENDING), then `ret_cb` (may be
/// NULL) once with the result and the message (server uid and sent time on
/// success). Both run on a library thread; the message is valid during the call.
///
/// C fills `conv_type` (private, group or system), `target_id`, `object_name` and
/// `content` of `msg_box`; `channel_id` must be NULL or empty. `option` may be
/// NULL; rcim sends no directed messages (a non-empty `user_ids`: 34296). Errors,
/// through `ret_cb` with a NULL message: 34243 NULL message, 34209 conversation
/// type, 34210 target id, 34211 channel, 34271 object name, 34205 content, 34301
/// no database yet (connect first), 31014 rcimd not reachable. A message sent while
/// disconnected waits in rcimd's outbox and goes out after the next connect.
///
/// # Safety
/// `msg_box` and `option` are NULL or readable with strings NULL or NUL-terminated,
/// valid for the call; the callbacks are NULL or callable with `context` from any
/// thread until they have run or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_send_message(
    engine: *const RcimEngineSync,
    msg_box: *const RcimMessageBox,
    option: *const RcimSendMessageOption,
    context: *const c_void,
    ret_cb: RcimCodeMessageCb,
    saved_cb: RcimMessageCb,
) {
    let context = Context(context);
    guard((), || {
        let fail = |entry: Option<&Arc<EngineEntry>>, code: RcimEngineError| {
            let Some(ret_cb) = ret_cb else { return };
            // SAFETY: the caller promised the callback is callable with context.
            let call = move || unsafe { ret_cb(context.ptr(), code, ptr::null()) };
            match entry {
                Some(entry) => {
                    let gate = Arc::clone(&entry.gate);
                    entry.later(move || gate.call(call));
                }
                None => without_engine(call),
            }
        };
        let Some(entry) = entry(engine) else {
            return fail(None, RcimEngineError::InvalidArgumentEngineSync);
        };
        if !option.is_null() {
            // SAFETY: non-NULL and readable by the caller's promise; read as an int.
            let directed = unsafe { ptr::addr_of!((*option).user_ids_len).read() };
            if directed != 0 {
                return fail(Some(&entry), RcimEngineError::DirectionalMessageNotSupport);
            }
        }
        // SAFETY: the caller's promise about msg_box, passed on.
        let outgoing = match unsafe { read_outgoing(msg_box) } {
            Ok(outgoing) => outgoing,
            Err(code) => return fail(Some(&entry), code),
        };
        let saved_gate = Arc::clone(&entry.gate);
        let sent_gate = Arc::clone(&entry.gate);
        let on_sent = move |code: i32, message: Option<Message>| {
            let Some(ret_cb) = ret_cb else { return };
            let code = engine_error(code, RcimEngineError::InvalidArgumentMessage);
            let views = MessageViews::new(message.as_slice(), false);
            let (msg_box, _) = views.as_c();
            // SAFETY: callable by the caller's promise; views outlive the call.
            sent_gate.call(|| unsafe { ret_cb(context.ptr(), code, msg_box) });
        };
        let on_saved = move |message: Message| {
            let Some(saved_cb) = saved_cb else { return };
            let views = MessageViews::new(std::slice::from_ref(&message), false);
            let (msg_box, _) = views.as_c();
            // SAFETY: callable by the caller's promise; views outlive the call.
            saved_gate.call(|| unsafe { saved_cb(context.ptr(), msg_box) });
        };
        let code = entry.engine.send_message(
            outgoing.message,
            SendMessageCallback::new(on_sent).on_message_saved(on_saved),
        );
        if code != 0 {
            fail(
                Some(&entry),
                engine_error(code, RcimEngineError::InvalidArgumentMessage),
            );
        }
    });
}

/// One page of history from rcimd, waited for (on the worker thread).
fn messages_page(
    engine: &Engine,
    conversation: &ConversationKey,
    time: i64,
    order: TimeOrder,
    count: u32,
) -> Result<Vec<Message>, i32> {
    let (tx, rx) = mpsc::channel();
    let code = engine.get_messages(conversation.clone(), time, order, count, move |answer| {
        let _ = tx.send(answer);
    });
    if code != 0 {
        return Err(code);
    }
    // The engine drops the callback unanswered only when it is gone.
    rx.recv().unwrap_or(Err(RcCode::CLIENT_NOT_INIT.0))
}

/// Up to `count` messages on one side of `time`, in pages of rcimd's size, in the
/// order rcimd gives them (`Before`: newest first; `After`: oldest first).
fn messages_side(
    engine: &Engine,
    conversation: &ConversationKey,
    time: i64,
    order: TimeOrder,
    count: u32,
) -> Result<Vec<Message>, i32> {
    let mut all = Vec::new();
    let mut time = time;
    while let Some(left) = count.checked_sub(all.len() as u32).filter(|l| *l > 0) {
        let page = left.min(MESSAGES_PER_PAGE);
        let got = messages_page(engine, conversation, time, order, page)?;
        let Some(last) = got.last() else { break };
        time = last.sent_time_ms;
        let short = (got.len() as u32) < page;
        all.extend(got);
        if short {
            break;
        }
    }
    Ok(all)
}

/// The conversation C names, checked.
///
/// # Safety
/// `target_id` and `channel_id` are NULL or NUL-terminated and valid for the call.
unsafe fn read_conversation(
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
) -> Result<ConversationKey, RcimEngineError> {
    use RcimEngineError as E;
    let kind = conversation_type_in(conv_type).ok_or(E::InvalidArgumentConversationType)?;
    // SAFETY: the caller's promise, passed on.
    let target_id = unsafe { required_str(target_id) }.map_err(|_| E::InvalidArgumentTargetId)?;
    if target_id.is_empty() {
        return Err(E::InvalidArgumentTargetId);
    }
    // SAFETY: as above.
    let channel_id =
        unsafe { optional_str(channel_id) }.map_err(|_| E::InvalidArgumentChannelId)?;
    if channel_id.is_some_and(|c| !c.is_empty()) {
        return Err(E::InvalidArgumentChannelId);
    }
    Ok(ConversationKey {
        kind,
        target_id: target_id.to_owned(),
    })
}

/// The message types C filters by: `None` for all (a NULL list or length 0).
///
/// # Safety
/// `names` is NULL or points at `len` pointers, each NULL or NUL-terminated, valid
/// for the call.
unsafe fn read_object_names(
    names: *const *const c_char,
    len: i32,
) -> Result<Option<Vec<String>>, RcimEngineError> {
    let len = usize::try_from(len).map_err(|_| RcimEngineError::InvalidArgumentObjectNameVec)?;
    if names.is_null() || len == 0 {
        return Ok(None);
    }
    (0..len)
        .map(|i| {
            // SAFETY: the caller promises len readable entries.
            let name = unsafe { names.add(i).read() };
            // SAFETY: each NUL-terminated and valid for the call.
            unsafe { required_str(name) }
                .map(str::to_owned)
                .map_err(|_| RcimEngineError::InvalidArgumentObjectNameVec)
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Hands `messages` (or the error) to a message list callback, on the worker.
fn deliver_messages(
    entry: &EngineEntry,
    context: Context,
    callback: unsafe extern "C" fn(*const c_void, RcimEngineError, *const RcimMessageBox, i32),
    answer: Result<Vec<Message>, RcimEngineError>,
) {
    let (code, messages) = match answer {
        Ok(messages) => (RcimEngineError::Success, messages),
        Err(code) => (code, Vec::new()),
    };
    let views = MessageViews::new(&messages, false);
    let (vec, len) = views.as_c();
    // SAFETY: callable by the caller's promise; views outlive the call.
    entry
        .gate
        .call(|| unsafe { callback(context.ptr(), code, vec, len) });
}

/// Local history around a time: up to `before_count` messages sent before
/// `send_time` and `after_count` after it (0: the newest, nothing after), oldest
/// first, from rcimd's database, optionally only of the types in `obj_name_vec`
/// (the counts apply before that filter). `callback` runs on a library thread; the
/// array is valid during the call. Errors: 34209 / 34210 / 34211 conversation,
/// 34202 negative time, 34232 negative counts or both 0, 34431 bad type list,
/// 34301 no database (connect first).
///
/// # Safety
/// The strings and the list are NULL or valid for the call (as
/// `rcim_engine_send_message`'s); `callback` is NULL or callable with `context`
/// from any thread until it has run or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_local_history_messages_by_time(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    obj_name_vec: *const *const c_char,
    obj_name_vec_len: i32,
    send_time: i64,
    before_count: i32,
    after_count: i32,
    context: *const c_void,
    callback: RcimGetMessageListCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe {
                callback(context.ptr(), code, ptr::null(), 0)
            });
        };
        // SAFETY: the caller's promises about the strings and list, passed on.
        let request = unsafe {
            read_conversation(conv_type, target_id, channel_id).and_then(|conversation| {
                Ok((
                    conversation,
                    read_object_names(obj_name_vec, obj_name_vec_len)?,
                ))
            })
        }
        .and_then(|(conversation, names)| {
            if send_time < 0 {
                return Err(RcimEngineError::InvalidArgumentTimestamp);
            }
            let (before, after) = history_counts(before_count, after_count)?;
            Ok((conversation, names, before, after))
        });
        let worker_entry = Arc::clone(&entry);
        entry.later(move || {
            let answer = request.and_then(|(conversation, names, before, after)| {
                let engine = &worker_entry.engine;
                let invalid = |code| engine_error(code, RcimEngineError::InvalidArgumentCount);
                let mut older =
                    messages_side(engine, &conversation, send_time, TimeOrder::Before, before)
                        .map_err(invalid)?;
                older.reverse();
                if send_time > 0 && after > 0 {
                    older.extend(
                        messages_side(engine, &conversation, send_time, TimeOrder::After, after)
                            .map_err(invalid)?,
                    );
                }
                if let Some(names) = names {
                    older.retain(|m| names.contains(&m.object_name));
                }
                Ok(older)
            });
            deliver_messages(&worker_entry, context, callback, answer);
        });
    });
}

/// The message with local id `id` in `conversation`, found by paging from the
/// newest (rcimd has no lookup by id); `None` when the conversation has none.
fn message_by_id(
    engine: &Engine,
    conversation: &ConversationKey,
    id: i64,
) -> Result<Option<Message>, i32> {
    let mut time = 0;
    loop {
        let page = messages_page(
            engine,
            conversation,
            time,
            TimeOrder::Before,
            MESSAGES_PER_PAGE,
        )?;
        if let Some(found) = page.iter().find(|m| m.id == id) {
            return Ok(Some(found.clone()));
        }
        match page.last() {
            // Pages go back in time; a page that does not would loop forever.
            Some(last)
                if (page.len() as u32) == MESSAGES_PER_PAGE
                    && (time == 0 || last.sent_time_ms < time) =>
            {
                time = last.sent_time_ms;
            }
            _ => return Ok(None),
        }
    }
}

/// Local history around a message: up to `before_count` messages sent before the
/// message with local id `msg_id` and `after_count` after it (not the message
/// itself), oldest first, optionally only of the types in `obj_name_vec` (the
/// counts apply before that filter). rcimd has no lookup by id, so the message is
/// found by paging the conversation from the newest: the further back it is, the
/// longer this takes. `callback` runs on a library thread; the array is valid
/// during the call. Errors: 34209 / 34210 / 34211 conversation, 34408 `msg_id` not
/// positive, 34232 negative counts or both 0, 34431 bad type list, 34304 no such
/// message in that conversation, 34301 no database.
///
/// # Safety
/// As `rcim_engine_get_local_history_messages_by_time`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_local_history_messages_by_id(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    obj_name_vec: *const *const c_char,
    obj_name_vec_len: i32,
    msg_id: i64,
    before_count: i32,
    after_count: i32,
    context: *const c_void,
    callback: RcimGetMessageListCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe {
                callback(context.ptr(), code, ptr::null(), 0)
            });
        };
        // SAFETY: the caller's promises about the strings and list, passed on.
        let request = unsafe {
            read_conversation(conv_type, target_id, channel_id).and_then(|conversation| {
                Ok((
                    conversation,
                    read_object_names(obj_name_vec, obj_name_vec_len)?,
                ))
            })
        }
        .and_then(|(conversation, names)| {
            if msg_id <= 0 {
                return Err(RcimEngineError::InvalidArgumentMessageId);
            }
            let (before, after) = history_counts(before_count, after_count)?;
            Ok((conversation, names, before, after))
        });
        let worker_entry = Arc::clone(&entry);
        entry.later(move || {
            let answer = request.and_then(|(conversation, names, before, after)| {
                let engine = &worker_entry.engine;
                let invalid = |code| engine_error(code, RcimEngineError::InvalidArgumentCount);
                let anchor = message_by_id(engine, &conversation, msg_id)
                    .map_err(invalid)?
                    .ok_or(RcimEngineError::DatabaseTargetNotFound)?;
                let time = anchor.sent_time_ms;
                let mut list =
                    messages_side(engine, &conversation, time, TimeOrder::Before, before)
                        .map_err(invalid)?;
                list.reverse();
                list.extend(
                    messages_side(engine, &conversation, time, TimeOrder::After, after)
                        .map_err(invalid)?,
                );
                list.retain(|m| m.id != anchor.id);
                if let Some(names) = names {
                    list.retain(|m| names.contains(&m.object_name));
                }
                Ok(list)
            });
            deliver_messages(&worker_entry, context, callback, answer);
        });
    });
}

/// RC's history counts: neither negative, not both 0.
fn history_counts(before_count: i32, after_count: i32) -> Result<(u32, u32), RcimEngineError> {
    match (u32::try_from(before_count), u32::try_from(after_count)) {
        (Ok(0), Ok(0)) | (Err(_), _) | (_, Err(_)) => Err(RcimEngineError::InvalidArgumentCount),
        (Ok(before), Ok(after)) => Ok((before, after)),
    }
}

/// Up to `count` conversations of `types` (empty: all), most recent first, older
/// than `start_time` (0: from the newest), in pages of rcimd's size.
fn conversations(
    engine: &Engine,
    types: &[ConversationType],
    start_time: i64,
    count: u32,
) -> Result<Vec<Conversation>, i32> {
    let mut all: Vec<Conversation> = Vec::new();
    let mut time = start_time;
    while let Some(left) = count.checked_sub(all.len() as u32).filter(|l| *l > 0) {
        let page = left.min(CONVERSATIONS_PER_PAGE);
        let (tx, rx) = mpsc::channel();
        let code = engine.get_conversations(types, time, page, move |answer| {
            let _ = tx.send(answer);
        });
        if code != 0 {
            return Err(code);
        }
        let got = rx.recv().unwrap_or(Err(RcCode::CLIENT_NOT_INIT.0))?;
        let Some(last) = got.last() else { break };
        time = last.operation_time_ms;
        let short = (got.len() as u32) < page;
        all.extend(got);
        if short {
            break;
        }
    }
    Ok(all)
}

/// Reads the conversation types C lists (1 to `most` of them); types rcim does
/// not have are left out.
///
/// # Safety
/// `types` is NULL or points at `len` readable ints.
unsafe fn read_types(
    types: *const RcimConversationTypeIn,
    len: i32,
    most: usize,
) -> Result<Vec<ConversationType>, RcimEngineError> {
    let bad = RcimEngineError::InvalidArgumentConversationTypeVec;
    let len = usize::try_from(len).map_err(|_| bad)?;
    if types.is_null() || !(1..=most).contains(&len) {
        return Err(bad);
    }
    // SAFETY: non-NULL with len readable ints by the caller's promise; CEnum is a
    // transparent i32, so any value is valid.
    let raw = unsafe { std::slice::from_raw_parts(types, len) };
    Ok(raw
        .iter()
        .filter_map(|t| conversation_type_in(*t))
        .collect())
}

/// Local conversations, most recent first: up to `count` (1 to 1000) of the types
/// in `conv_type_vec` (1 to 100 entries) whose last activity is before `send_time`
/// (0: from the newest). Page with the last one's `last_operate_time`. `callback`
/// runs on a library thread; the array is valid during the call. Errors: 34284
/// type list, 34202 negative time, 34232 count, 34301 no database.
///
/// # Safety
/// `conv_type_vec` is NULL or points at `conv_type_vec_len` readable ints;
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_local_conversations_by_page(
    engine: *const RcimEngineSync,
    conv_type_vec: *const RcimConversationTypeIn,
    conv_type_vec_len: i32,
    send_time: i64,
    count: i32,
    context: *const c_void,
    callback: RcimGetConversationListCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe {
                callback(context.ptr(), code, ptr::null(), 0)
            });
        };
        // SAFETY: the caller's promise about the list, passed on.
        let request =
            unsafe { read_types(conv_type_vec, conv_type_vec_len, 100) }.and_then(|types| {
                if send_time < 0 {
                    return Err(RcimEngineError::InvalidArgumentTimestamp);
                }
                match u32::try_from(count) {
                    Ok(count) if (1..=MAX_CONVERSATIONS as u32).contains(&count) => {
                        Ok((types, count))
                    }
                    _ => Err(RcimEngineError::InvalidArgumentCount),
                }
            });
        let worker_entry = Arc::clone(&entry);
        entry.later(move || {
            let answer = request.and_then(|(types, count)| {
                if types.is_empty() {
                    // Only types rcim does not have: there are none of them (an
                    // empty list would mean "all" to rcimd).
                    return Ok(Vec::new());
                }
                conversations(&worker_entry.engine, &types, send_time, count)
                    .map_err(|code| engine_error(code, RcimEngineError::InvalidArgumentCount))
            });
            let (code, list) = match answer {
                Ok(list) => (RcimEngineError::Success, list),
                Err(code) => (code, Vec::new()),
            };
            let views = ConversationViews::new(&list);
            let (vec, len) = views.as_c();
            // SAFETY: callable by the caller's promise; views outlive the call.
            worker_entry
                .gate
                .call(|| unsafe { callback(context.ptr(), code, vec, len) });
        });
    });
}

/// Every conversation rcimd has, for the unread counts.
fn all_conversations(engine: &Engine) -> Result<Vec<Conversation>, RcimEngineError> {
    conversations(engine, &[], 0, u32::MAX)
        .map_err(|code| engine_error(code, RcimEngineError::InvalidArgumentCount))
}

/// Runs a count query on the worker and hands the result to `callback`.
fn count_later(
    entry: &Arc<EngineEntry>,
    context: Context,
    callback: unsafe extern "C" fn(*const c_void, RcimEngineError, i64),
    count: impl FnOnce(&Engine) -> Result<i64, RcimEngineError> + Send + 'static,
) {
    let worker_entry = Arc::clone(entry);
    entry.later(move || {
        let (code, n) = match count(&worker_entry.engine) {
            Ok(n) => (RcimEngineError::Success, n),
            Err(code) => (code, 0),
        };
        // SAFETY: callable by the caller's promise.
        worker_entry
            .gate
            .call(|| unsafe { callback(context.ptr(), code, n) });
    });
}

/// The unread messages of all conversations, on a library thread. 34301 when no
/// database is open (connect first).
///
/// # Safety
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_total_unread_count(
    engine: *const RcimEngineSync,
    context: *const c_void,
    callback: RcimGetCountCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe { callback(context.ptr(), code, 0) });
        };
        count_later(&entry, context, callback, |engine| {
            Ok(all_conversations(engine)?
                .iter()
                .map(|c| i64::from(c.unread_count))
                .sum())
        });
    });
}

/// The unread messages of one conversation (0 when rcimd has none of it), on a
/// library thread. Errors: 34209 / 34210 / 34211 conversation, 34301 no database.
///
/// # Safety
/// `target_id` and `channel_id` are NULL or NUL-terminated and valid for the call;
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_unread_count(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    context: *const c_void,
    callback: RcimGetCountCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe { callback(context.ptr(), code, 0) });
        };
        // SAFETY: the caller's promise about the strings, passed on.
        let conversation = unsafe { read_conversation(conv_type, target_id, channel_id) };
        count_later(&entry, context, callback, move |engine| {
            let conversation = conversation?;
            Ok(all_conversations(engine)?
                .iter()
                .find(|c| c.key == conversation)
                .map_or(0, |c| i64::from(c.unread_count)))
        });
    });
}

/// Clears a conversation's unread count up to `timestamp_ms` (0: all), on the
/// worker, and reports to `callback`.
///
/// # Safety
/// As [`rcim_engine_clear_messages_unread_status`].
unsafe fn clear_unread(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    timestamp_ms: i64,
    context: Context,
    callback: RcimEngineErrorCb,
) {
    let Some(entry) = entry(engine) else {
        return report(
            None,
            context,
            callback,
            RcimEngineError::InvalidArgumentEngineSync,
        );
    };
    // SAFETY: the caller's promise about the strings, passed on.
    let conversation = match unsafe { read_conversation(conv_type, target_id, channel_id) } {
        Ok(conversation) => conversation,
        Err(code) => return report(Some(&entry), context, callback, code),
    };
    let worker_entry = Arc::clone(&entry);
    entry.later(move || {
        let code = worker_entry
            .engine
            .clear_unread_count(conversation, timestamp_ms);
        let code = engine_error(code, RcimEngineError::InvalidArgumentTargetId);
        if let Some(callback) = callback {
            // SAFETY: callable by the caller's promise.
            worker_entry
                .gate
                .call(|| unsafe { callback(context.ptr(), code) });
        }
    });
}

/// Marks every received message of a conversation read (its unread count becomes
/// 0); `callback` (may be NULL) gets the result on a library thread. Errors: 34209
/// / 34210 / 34211 conversation, 34301 no database.
///
/// # Safety
/// `target_id` and `channel_id` are NULL or NUL-terminated and valid for the call;
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_clear_messages_unread_status(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    context: *const c_void,
    callback: RcimEngineErrorCb,
) {
    let context = Context(context);
    // SAFETY: the caller's promises, passed on.
    guard((), || unsafe {
        clear_unread(
            engine, conv_type, target_id, channel_id, 0, context, callback,
        )
    });
}

/// As `rcim_engine_clear_messages_unread_status`, for the messages sent up to
/// `send_time` (ms, above 0: else 34202).
///
/// # Safety
/// As `rcim_engine_clear_messages_unread_status`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_clear_messages_unread_status_by_send_time(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    send_time: i64,
    context: *const c_void,
    callback: RcimEngineErrorCb,
) {
    let context = Context(context);
    guard((), || {
        if send_time <= 0 {
            let entry = entry(engine);
            return report(
                entry.as_ref(),
                context,
                callback,
                RcimEngineError::InvalidArgumentTimestamp,
            );
        }
        // SAFETY: the caller's promises, passed on.
        unsafe {
            clear_unread(
                engine, conv_type, target_id, channel_id, send_time, context, callback,
            )
        }
    });
}

/// One local conversation, on a library thread (valid during the call). Errors:
/// 34209 / 34210 / 34211 conversation, 34304 when rcimd has no such conversation,
/// 34301 no database.
///
/// # Safety
/// `target_id` and `channel_id` are NULL or NUL-terminated and valid for the call;
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_local_conversation(
    engine: *const RcimEngineSync,
    conv_type: RcimConversationTypeIn,
    target_id: *const c_char,
    channel_id: *const c_char,
    context: *const c_void,
    callback: RcimGetConversationCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe { callback(context.ptr(), code, ptr::null()) });
        };
        // SAFETY: the caller's promise about the strings, passed on.
        let conversation = unsafe { read_conversation(conv_type, target_id, channel_id) };
        let worker_entry = Arc::clone(&entry);
        entry.later(move || {
            let answer = conversation.and_then(|key| {
                all_conversations(&worker_entry.engine)?
                    .into_iter()
                    .find(|c| c.key == key)
                    .ok_or(RcimEngineError::DatabaseTargetNotFound)
            });
            let (code, found) = match answer {
                Ok(found) => (RcimEngineError::Success, vec![found]),
                Err(code) => (code, Vec::new()),
            };
            let views = ConversationViews::new(&found);
            let (conv, _) = views.as_c();
            // SAFETY: callable by the caller's promise; views outlive the call.
            worker_entry
                .gate
                .call(|| unsafe { callback(context.ptr(), code, conv) });
        });
    });
}

/// The unread messages of the conversations of the types in `conv_type_vec` (1 to
/// 300 entries), on a library thread. `is_contain_blocked` changes nothing: rcim
/// has no muted conversations. Errors: 34284 type list, 34301 no database.
///
/// # Safety
/// `conv_type_vec` is NULL or points at `conv_type_vec_len` readable ints;
/// `callback` is NULL or callable with `context` from any thread until it has run
/// or the engine is destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_unread_count_by_conversation_types(
    engine: *const RcimEngineSync,
    conv_type_vec: *const RcimConversationTypeIn,
    conv_type_vec_len: i32,
    is_contain_blocked: bool,
    context: *const c_void,
    callback: RcimGetCountCb,
) {
    let _ = is_contain_blocked;
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe { callback(context.ptr(), code, 0) });
        };
        // SAFETY: the caller's promise about the list, passed on.
        let types = unsafe { read_types(conv_type_vec, conv_type_vec_len, 300) };
        count_later(&entry, context, callback, move |engine| {
            let types = types?;
            Ok(all_conversations(engine)?
                .iter()
                .filter(|c| types.contains(&c.key.kind))
                .map(|c| i64::from(c.unread_count))
                .sum())
        });
    });
}

/// Reads the conversations C lists (1 to 300 of them).
///
/// # Safety
/// `list` is NULL or points at `len` readable identifiers whose strings are NULL
/// or NUL-terminated, valid for the call.
unsafe fn read_identifiers(
    list: *const RcimConversationIdentifier,
    len: i32,
) -> Result<Vec<ConversationKey>, RcimEngineError> {
    let bad = RcimEngineError::InvalidArgumentConversationIdentifierVec;
    let len = usize::try_from(len).map_err(|_| bad)?;
    if list.is_null() || !(1..=300).contains(&len) {
        return Err(bad);
    }
    (0..len)
        .map(|i| {
            // SAFETY: i < len readable identifiers, by the caller's promise; fields
            // are read through raw pointers (the enum as its int).
            let (conv_type, target_id, channel_id) = unsafe {
                let item = list.add(i);
                (
                    ptr::addr_of!((*item).conv_type).read(),
                    ptr::addr_of!((*item).target_id).read(),
                    ptr::addr_of!((*item).channel_id).read(),
                )
            };
            // SAFETY: the strings' promise, passed on.
            unsafe { read_conversation(conv_type, target_id, channel_id) }.map_err(|_| bad)
        })
        .collect()
}

/// The unread messages of the listed conversations together, on a library thread.
/// Errors: 34287 identifier list (1 to 300 valid entries), 34301 no database.
///
/// # Safety
/// `conv_idf_vec` is NULL or points at `conv_idf_vec_len` readable identifiers
/// with strings NULL or NUL-terminated, valid for the call; `callback` is NULL or
/// callable with `context` from any thread until it has run or the engine is
/// destroyed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_unread_count_by_conversations(
    engine: *const RcimEngineSync,
    conv_idf_vec: *const RcimConversationIdentifier,
    conv_idf_vec_len: i32,
    context: *const c_void,
    callback: RcimGetCountCb,
) {
    let context = Context(context);
    guard((), || {
        let Some(callback) = callback else { return };
        let Some(entry) = entry(engine) else {
            let code = RcimEngineError::InvalidArgumentEngineSync;
            // SAFETY: callable by the caller's promise.
            return without_engine(move || unsafe { callback(context.ptr(), code, 0) });
        };
        // SAFETY: the caller's promise about the list, passed on.
        let keys = unsafe { read_identifiers(conv_idf_vec, conv_idf_vec_len) };
        count_later(&entry, context, callback, move |engine| {
            let keys = keys?;
            Ok(all_conversations(engine)?
                .iter()
                .filter(|c| keys.contains(&c.key))
                .map(|c| i64::from(c.unread_count))
                .sum())
        });
    });
}

/// Writes this library's version (`rcim-ffi X.Y.Z`) to `*out_ver`; C frees it with
/// `rcim_free_char`. 34424 for a NULL `out_ver`.
///
/// # Safety
/// `out_ver` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rcim_engine_get_sdk_version(
    engine: *const RcimEngineSync,
    out_ver: *mut *mut c_char,
) -> RcimEngineError {
    guard(RcimEngineError::EngineDropped, || {
        if entry(engine).is_none() {
            return RcimEngineError::InvalidArgumentEngineSync;
        }
        if out_ver.is_null() {
            return RcimEngineError::InvalidArgumentVersion;
        }
        let version = crate::boundary::c_string(concat!("rcim-ffi ", env!("CARGO_PKG_VERSION")));
        // SAFETY: non-NULL and writable by the caller's promise.
        unsafe { out_ver.write(version.into_raw()) };
        RcimEngineError::Success
    })
}
