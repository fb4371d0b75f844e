//! The local protocol between apps (through `rcim-client` or `rcimctl`) and `rcimd`.
//!
//! One Unix socket connection per app. The first frame each way is the handshake:
//! the client sends [`ClientFrame::Hello`], the daemon answers
//! [`DaemonFrame::Welcome`] or [`DaemonFrame::Refused`] (and closes). After that the
//! client sends [`Request`]s, each with an id of its choosing, and the daemon sends:
//!
//! - exactly one [`Response`] per request, with the same id;
//! - for requests that take callbacks (`Connect`), [`CallbackFrame`]s with the same
//!   id, after the response, in RC's order (`DatabaseOpened`, then one `Connected`);
//! - [`Event`]s, which belong to no request.
//!
//! Responses, callbacks and events are distinct frame kinds, so an event can never be
//! taken for the answer to a request, and any number of requests may be in flight.
//!
//! The arguments every request must meet are part of the contract too, so they live
//! here once: the query limits ([`MAX_MESSAGES_PER_QUERY`],
//! [`MAX_CONVERSATIONS_PER_QUERY`], [`MAX_MESSAGES_AFTER`]) and [`Op::check`], which
//! fails exactly for the requests the daemon answers with 33003
//! (`INVALID_PARAMETER`). The daemon checks every request with it; the client
//! library checks with it before sending, so an app gets the same 33003 at once.

use crate::message::{
    Conversation, ConversationKey, ConversationType, Message, Persistence, TimeOrder, WireMessage,
    check_outgoing, persistence,
};
use crate::status::{LinkState, StatusSnapshot};
use crate::token::Token;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Client → daemon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientFrame {
    /// The handshake; must be the first frame.
    Hello(Hello),
    /// A request.
    Request(Request),
}

/// The client's handshake.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The client's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    pub protocol: u32,
    /// A name for logs and `rcimctl status`, e.g. the app's name.
    pub client_name: String,
    /// The client library's version.
    pub client_version: String,
}

/// A request from a client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client; echoed in the response and callbacks.
    pub id: u64,
    /// What to do.
    pub op: Op,
}

/// The operations a client may request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Report the daemon's status. Answered with [`Reply::Status`].
    Status,
    /// RC's `connect(token, timeout)`. Answered with [`Reply::Code`]: 0 accepted
    /// (callbacks follow), non-zero rejected (no callback will come).
    Connect {
        /// The user's token.
        token: Token,
        /// Seconds; ≤ 0 waits until success or a terminal error.
        timeout_secs: i32,
    },
    /// RC's `disconnect(receivePush)`: signs this device out for every local app.
    /// Answered with [`Reply::Code`].
    Disconnect {
        /// Whether the server should keep sending remote pushes.
        receive_push: bool,
    },
    /// Disconnect without push, and delete the stored token, so the daemon does not
    /// connect again at its next start. Answered with [`Reply::Code`]. (Protocol 2.)
    Logout,
    /// RC's `sendMessage`. Answered with [`Reply::Code`]: 0 accepted, then the
    /// callbacks `MessageSaved` (in the outbox, status sending) and one
    /// `MessageSent`; non-zero rejected (33003 bad argument, 33002 no database).
    /// (Protocol 3.)
    SendMessage {
        /// Where to.
        conversation: ConversationKey,
        /// The type name, e.g. `RC:TxtMsg`.
        object_name: String,
        /// The content.
        content: String,
    },
    /// RC's `getMessages` from the local database. Answered with
    /// [`Reply::Messages`] or [`Reply::Code`] on error. (Protocol 3.)
    GetMessages {
        /// Which conversation.
        conversation: ConversationKey,
        /// The reference time (ms); 0 with `Before` means "the newest".
        sent_time_ms: i64,
        /// Older (newest first) or newer (oldest first) than the reference time.
        order: TimeOrder,
        /// 1 to [`MAX_MESSAGES_PER_QUERY`].
        count: u32,
    },
    /// RC's `getConversations`. Answered with [`Reply::Conversations`] or
    /// [`Reply::Code`]. (Protocol 3.)
    GetConversations {
        /// Which types; empty means all.
        types: Vec<ConversationType>,
        /// Only conversations whose newest message is older than this (ms); 0 means
        /// the newest.
        start_time_ms: i64,
        /// 1 to [`MAX_CONVERSATIONS_PER_QUERY`].
        count: u32,
    },
    /// RC's `clearUnreadCount`: messages received up to `timestamp_ms` count as
    /// read (0 clears all). Answered with [`Reply::Code`]. (Protocol 3.)
    ClearUnreadCount {
        /// Which conversation.
        conversation: ConversationKey,
        /// The time up to which messages are read (ms); 0 means all.
        timestamp_ms: i64,
    },
    /// Replays every received message stored after local sequence number
    /// `since_seq` (a message's `id`) as `MessageReceived` events, then continues
    /// live, with no gap and no duplicate at the seam. A client that comes back
    /// after a restart passes the last `id` it saw; 0 replays everything. Answered
    /// with [`Reply::Code`] before the replay starts. (Protocol 4.)
    Subscribe {
        /// The last message id the client has seen.
        since_seq: i64,
    },
    /// Who is attached. Answered with [`Reply::Clients`]. (Protocol 4.)
    Clients,
    /// Reads received messages stored after local sequence number `since_seq`, in
    /// order, without touching the live stream: how a client's event stream that
    /// fell behind its own buffer catches up at its own pace. Answered with
    /// [`Reply::Messages`]: at most `limit` (1 to [`MAX_MESSAGES_AFTER`]) messages,
    /// fewer when they would not fit in one frame (at least one when there is any);
    /// an empty list means nothing newer is stored. [`Reply::Code`] 33003 for a
    /// `limit` out of range, 33002 when no database is open. (Protocol 5.)
    MessagesAfter {
        /// The last message id the client has.
        since_seq: i64,
        /// The most messages to return.
        limit: u32,
    },
    /// RC's `recallMessage`: recalls a message this user sent, by its server uid.
    /// The server replaces it with an `RC:RcNtf` notification (uid and sent time
    /// kept, content gone) on every device of both sides. Answered with
    /// [`Reply::Code`] once the server has answered: 0 done (then every attached
    /// app gets [`Event::MessageRecalled`] when this device stores the message),
    /// 25101 no such message or not this user's, 30002 not connected, 30003 no
    /// answer in time, 33003 an empty or overlong uid. (Protocol 6.)
    RecallMessage {
        /// The message's server uid (RC's messageUId).
        uid: String,
    },
    /// RC's `getRemoteHistoryMessages`: pages the server's copy of a conversation,
    /// newest first, including what this user sent from other devices; recalled
    /// messages come as `RC:RcNtf`. Answered with [`Reply::Messages`] (a message's
    /// `id` is its local id when this device stores it, 0 otherwise) or
    /// [`Reply::Code`]: 33003 `count` outside 1..=[`MAX_REMOTE_HISTORY`], 30002
    /// not connected, 30003 no answer in time, 22406 a group this user is not in.
    /// (Protocol 6.)
    GetRemoteHistory {
        /// Which conversation.
        conversation: ConversationKey,
        /// Only messages sent before this time (ms); 0 means the newest.
        before_time_ms: i64,
        /// 1 to [`MAX_REMOTE_HISTORY`].
        count: u32,
    },
    /// Full-text search over the local database. Answered with
    /// [`Reply::Messages`], newest first, or [`Reply::Code`] 33003 for a query
    /// [`SearchQuery::check`] refuses, 33002 without a database. (Protocol 6.)
    SearchMessages(SearchQuery),
    /// RC's `getUnreadCount`: the unread count of one conversation. Answered with
    /// [`Reply::Count`], or [`Reply::Code`] 33002 when no database is open.
    /// (Protocol 6.)
    GetUnreadCount {
        /// Which conversation.
        conversation: ConversationKey,
    },
    /// RC's `getTotalUnreadCount`: the unread count over every conversation.
    /// Answered with [`Reply::Count`] or [`Reply::Code`]. (Protocol 6.)
    GetTotalUnreadCount,
    /// RC's `getUnreadCountByConversationTypes`: the unread count over every
    /// conversation of these types (empty: all). Answered with [`Reply::Count`]
    /// or [`Reply::Code`]. (Protocol 6.)
    GetUnreadCountByTypes {
        /// Which types; empty means all.
        types: Vec<ConversationType>,
    },
    /// Marks a conversation read up to a message send time on every device of
    /// this user: clears its unread count up to `up_to_time_ms` (0: up to its
    /// newest message), sends RC's read notification (`RC:ReadNtf`) to the peer
    /// of a private conversation, and RC's read-status sync (`RC:SRSMsg`) to this
    /// user's other devices. Both are queued in the database with the cleared
    /// count, in one transaction, and sent when connected. Answered with
    /// [`Reply::Code`]: 0, 33003 for a time in the future (beyond
    /// [`MAX_READ_AHEAD_MS`]) or negative, 33002 when no database is open.
    /// (Protocol 6.)
    MarkRead {
        /// Which conversation.
        conversation: ConversationKey,
        /// The send time (ms) of the last message read; 0 means the newest.
        up_to_time_ms: i64,
    },
    /// RC's `sendTypingStatus`: tells the peer of a private conversation that
    /// this user is typing a message of type `content_type` (RC: private
    /// conversations only). Sent at most once per [`TYPING_INTERVAL_MS`] per
    /// conversation, as RC does: a call within that interval of the last one sent
    /// is answered 0 and sends nothing. Delivered to online devices only.
    /// Answered with [`Reply::Code`]: 0, 33003 for another conversation type or
    /// a bad type name, 30001/30002 when not connected. (Protocol 6.)
    SendTypingStatus {
        /// Which conversation (private).
        conversation: ConversationKey,
        /// The type name of what is being typed, e.g. `RC:TxtMsg`.
        content_type: String,
    },
    /// Sends a status message: delivered to the recipients' devices that are
    /// online now, never stored, never counted, never in history. Answered with
    /// [`Reply::Code`]: 0 sent, 33003 bad argument, 30001/30002 when not
    /// connected. (Protocol 6.)
    SendStatusMessage {
        /// Where to.
        conversation: ConversationKey,
        /// The type name.
        object_name: String,
        /// The content.
        content: String,
    },
    /// RC's `changeConversationTopStatus`: pins (or unpins) a conversation; pinned
    /// ones come first in `GetConversations`. Kept on this device. Answered with
    /// [`Reply::Code`]. (Protocol 6.)
    SetConversationTop {
        /// Which conversation.
        conversation: ConversationKey,
        /// Pinned or not.
        top: bool,
    },
    /// RC's `changeConversationNotificationLevel` (do-not-disturb): kept here and
    /// synced to the server (as RC's `/conversation/notification/set.json` sets
    /// it), queued durably until the server has it. `level` is one of
    /// [`NOTIFICATION_LEVELS`](crate::message::NOTIFICATION_LEVELS). Answered with
    /// [`Reply::Code`]: 0, 33003 for another level. (Protocol 6.)
    SetNotificationLevel {
        /// Which conversation.
        conversation: ConversationKey,
        /// RC's push notification level.
        level: i32,
    },
    /// RC's `removeConversation`: takes the conversation off the list (its
    /// messages stay, and are no longer unread); a new message brings it back.
    /// Answered with [`Reply::Code`]. (Protocol 6.)
    RemoveConversation {
        /// Which conversation.
        conversation: ConversationKey,
    },
    /// RC's `deleteLocalMessageByIds`: deletes these messages from this device's
    /// database. Answered with [`Reply::Count`] (how many were deleted), or
    /// [`Reply::Code`] 33003 for 0 or more than [`MAX_DELETE_IDS`] ids. (Protocol 6.)
    DeleteMessages {
        /// Local message ids.
        ids: Vec<i64>,
    },
    /// RC's `clearMessages(type, targetId, timestamp)` on this device: deletes the
    /// messages of a conversation sent at or before `before_ms` (0: all of them).
    /// Answered with [`Reply::Count`]. (Protocol 6.)
    DeleteMessagesBefore {
        /// Which conversation.
        conversation: ConversationKey,
        /// The newest send time deleted (ms); 0 deletes every message.
        before_ms: i64,
    },
    /// RC's `saveDraftMessage`: keeps a draft for the conversation on this device
    /// (empty: none). Answered with [`Reply::Code`]: 0, 33003 when longer than
    /// [`MAX_DRAFT_LEN`]. (Protocol 6.)
    SaveDraft {
        /// Which conversation.
        conversation: ConversationKey,
        /// The draft.
        draft: String,
    },
    /// RC's `getDraftMessage`. Answered with [`Reply::Draft`]. (Protocol 6.)
    GetDraft {
        /// Which conversation.
        conversation: ConversationKey,
    },
}

/// The largest `count` of [`Op::GetRemoteHistory`] (RC: at most 100).
pub const MAX_REMOTE_HISTORY: u32 = 100;

/// The largest `count` of [`Op::SearchMessages`].
pub const MAX_SEARCH_RESULTS: u32 = 100;

/// The longest search text, in bytes.
pub const MAX_SEARCH_TEXT: usize = 256;

/// The longest message uid a request may name, in bytes.
pub const MAX_UID_LEN: usize = 128;

/// A local full-text search (`Op::SearchMessages`).
///
/// The text is words, always taken literally: quotes, `*`, `-`, `:`, parentheses
/// and FTS5 keywords such as `OR` or `NEAR` are searched for as text, never read
/// as query syntax. Every word must match (a word matches words it starts, so
/// `hel` finds `hello`). Text messages are searched by their text, other types by
/// their searchable words (a file's name, a rich message's title and text, a
/// location's name); recall notifications have none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// The words to find (1 to [`MAX_SEARCH_TEXT`] bytes, not only spaces).
    pub text: String,
    /// Only this conversation; `None` searches every conversation.
    pub conversation: Option<ConversationKey>,
    /// Only messages from this sender; `None` for anyone.
    pub sender: Option<String>,
    /// Only messages sent at or after this time (ms); 0 for no lower bound.
    pub start_time_ms: i64,
    /// The page: only messages older than this point, (sent time, local id) —
    /// pass the last result's `sent_time_ms` and `id` for the next page; `(0, 0)`
    /// starts from the newest.
    pub before_time_ms: i64,
    /// See `before_time_ms`; 0 means every message sent before it.
    pub before_id: i64,
    /// 1 to [`MAX_SEARCH_RESULTS`].
    pub count: u32,
}

impl SearchQuery {
    /// A search of `text` everywhere, newest `count` first.
    pub fn new(text: impl Into<String>, count: u32) -> Self {
        Self {
            text: text.into(),
            conversation: None,
            sender: None,
            start_time_ms: 0,
            before_time_ms: 0,
            before_id: 0,
            count,
        }
    }

    /// Checks the query: `Err` exactly when the daemon answers it with 33003.
    ///
    /// ```
    /// use rcim_proto::ipc::SearchQuery;
    /// assert!(SearchQuery::new("hello", 20).check().is_ok());
    /// assert_eq!(SearchQuery::new("  ", 20).check().unwrap_err().argument(), "text");
    /// assert_eq!(SearchQuery::new("hi", 101).check().unwrap_err().argument(), "count");
    /// ```
    pub fn check(&self) -> Result<(), InvalidArgument> {
        if self.text.trim().is_empty() {
            return Err(InvalidArgument::new("text", "the search text is empty"));
        }
        if self.text.len() > MAX_SEARCH_TEXT {
            return Err(InvalidArgument::new(
                "text",
                format!("the search text is longer than {MAX_SEARCH_TEXT} bytes"),
            ));
        }
        if self.text.contains('\0') {
            return Err(InvalidArgument::new(
                "text",
                "the search text contains a NUL",
            ));
        }
        check_count(
            "count",
            self.count,
            MAX_SEARCH_RESULTS,
            "searchMessages",
            "messages",
        )
    }
}

/// Why a message uid argument is refused.
fn check_uid(uid: &str) -> Result<(), InvalidArgument> {
    if uid.is_empty() || uid.len() > MAX_UID_LEN || uid.chars().any(char::is_control) {
        return Err(InvalidArgument::new(
            "uid",
            format!("a message uid is 1 to {MAX_UID_LEN} printable bytes"),
        ));
    }
    Ok(())
}

/// The most ids one [`Op::DeleteMessages`] takes.
pub const MAX_DELETE_IDS: u32 = 100;

/// The longest draft, in bytes.
pub const MAX_DRAFT_LEN: usize = 4 * 1024;

/// How far past the daemon's clock a read position ([`Op::MarkRead`]) may lie:
/// message send times are the server's clock, which may run ahead of this
/// machine's by a little; a position further ahead is refused (33003), since it
/// would also mark read messages not yet sent.
pub const MAX_READ_AHEAD_MS: i64 = 60_000;

/// The shortest interval between two typing statuses sent to one conversation
/// (RC: one per 6 s); also how long a received typing status lasts unless
/// renewed (RC: the indicator goes after 6 s without a new one).
pub const TYPING_INTERVAL_MS: i64 = 6_000;

/// The check of [`Op::MarkRead`]'s time against the clock `now_ms`.
///
/// ```
/// use rcim_proto::ipc::{check_read_position, MAX_READ_AHEAD_MS};
/// assert!(check_read_position(0, 1_000).is_ok());
/// assert!(check_read_position(1_000 + MAX_READ_AHEAD_MS, 1_000).is_ok());
/// assert!(check_read_position(1_001 + MAX_READ_AHEAD_MS, 1_000).is_err());
/// assert!(check_read_position(-1, 1_000).is_err());
/// ```
pub fn check_read_position(up_to_time_ms: i64, now_ms: i64) -> Result<(), InvalidArgument> {
    if up_to_time_ms < 0 {
        return Err(InvalidArgument::new(
            "up_to_time_ms",
            format!("a read position is a send time in ms, 0 or more, not {up_to_time_ms}"),
        ));
    }
    if up_to_time_ms > now_ms.saturating_add(MAX_READ_AHEAD_MS) {
        return Err(InvalidArgument::new(
            "up_to_time_ms",
            format!(
                "the read position {up_to_time_ms} is in the future (now is {now_ms}); \
                 pass the send time of the last message read, or 0 for the newest"
            ),
        ));
    }
    Ok(())
}

/// Checks a conversation named by a request: a type that has conversations
/// (private, group, system) and a well-formed target id.
fn check_conversation(conversation: &ConversationKey) -> Result<(), InvalidArgument> {
    check_outgoing(conversation, "RC:TxtMsg", "")
        .map_err(|why| InvalidArgument::new("conversation", why))
}

/// The largest `count` of [`Op::GetMessages`] (RC: `0 < count <= 20`).
///
/// ```
/// assert_eq!(rcim_proto::ipc::MAX_MESSAGES_PER_QUERY, 20);
/// ```
pub const MAX_MESSAGES_PER_QUERY: u32 = 20;

/// The largest `count` of [`Op::GetConversations`] (RC: `0 < count <= 50`).
///
/// ```
/// assert_eq!(rcim_proto::ipc::MAX_CONVERSATIONS_PER_QUERY, 50);
/// ```
pub const MAX_CONVERSATIONS_PER_QUERY: u32 = 50;

/// The largest `limit` of [`Op::MessagesAfter`] (`0 < limit <= 1000`).
pub const MAX_MESSAGES_AFTER: u32 = 1_000;

/// An argument of a request that the contract refuses: RC's 33003
/// (`INVALID_PARAMETER`). Says which argument and why, for logs and for people.
///
/// ```
/// use rcim_proto::ipc::{Op, MAX_CONVERSATIONS_PER_QUERY};
/// let op = Op::GetConversations { types: vec![], start_time_ms: 0, count: 0 };
/// let err = op.check().unwrap_err();
/// assert_eq!(err.argument(), "count");
/// assert_eq!(
///     err.to_string(),
///     "invalid argument `count`: getConversations takes 1 to 50 conversations, not 0"
/// );
/// # assert_eq!(MAX_CONVERSATIONS_PER_QUERY, 50);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument `{argument}`: {reason}")]
pub struct InvalidArgument {
    argument: &'static str,
    reason: Cow<'static, str>,
}

impl InvalidArgument {
    /// `argument` (its name, as the call spells it) is refused for `reason` (a
    /// sentence that says what a valid one looks like).
    ///
    /// ```
    /// let err = rcim_proto::ipc::InvalidArgument::new("target_id", "the target id is empty");
    /// assert_eq!(err.to_string(), "invalid argument `target_id`: the target id is empty");
    /// ```
    pub fn new(argument: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            argument,
            reason: reason.into(),
        }
    }

    /// The name of the refused argument.
    ///
    /// ```
    /// let err = rcim_proto::ipc::InvalidArgument::new("count", "out of range");
    /// assert_eq!(err.argument(), "count");
    /// ```
    pub fn argument(&self) -> &'static str {
        self.argument
    }

    /// Why it is refused.
    ///
    /// ```
    /// let err = rcim_proto::ipc::InvalidArgument::new("count", "out of range");
    /// assert_eq!(err.reason(), "out of range");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Why `count` is refused, when it is outside `1..=max`.
fn check_count(
    argument: &'static str,
    value: u32,
    max: u32,
    call: &str,
    what: &str,
) -> Result<(), InvalidArgument> {
    if (1..=max).contains(&value) {
        return Ok(());
    }
    Err(InvalidArgument::new(
        argument,
        format!("{call} takes 1 to {max} {what}, not {value}"),
    ))
}

/// The check of [`Op::SendMessage`]'s arguments, for a message not yet in an
/// [`Op`]: [`check_outgoing`], no command type (`RC:ReadNtf`, `RC:SRSMsg`: those
/// are `MarkRead`'s), and no system conversation (system messages are sent by a
/// back-end, through the Server API, not by apps).
///
/// ```
/// use rcim_proto::ipc::check_send_message;
/// use rcim_proto::message::{ConversationKey, ConversationType};
/// assert!(check_send_message(&ConversationKey::private("bob"), "RC:TxtMsg", "{}").is_ok());
/// let news = ConversationKey { kind: ConversationType::System, target_id: "news".into() };
/// assert_eq!(check_send_message(&news, "RC:TxtMsg", "{}").unwrap_err().argument(), "conversation");
/// ```
pub fn check_send_message(
    conversation: &ConversationKey,
    object_name: &str,
    content: &str,
) -> Result<(), InvalidArgument> {
    check_outgoing(conversation, object_name, content)
        .map_err(|why| InvalidArgument::new("message", why))?;
    if persistence(object_name) == Persistence::Command {
        return Err(InvalidArgument::new(
            "message",
            format!("{object_name} is sent by markRead, not as a message"),
        ));
    }
    if conversation.kind == ConversationType::System {
        return Err(InvalidArgument::new(
            "conversation",
            "system messages are sent by a back-end, not by apps",
        ));
    }
    Ok(())
}

impl Op {
    /// Checks the arguments against the contract. `Err` exactly when the daemon
    /// answers the request with 33003 (`INVALID_PARAMETER`) without acting on it:
    ///
    /// - `Connect`: the token fails [`Token::check_argument`];
    /// - `SendMessage`: [`check_send_message`]: [`check_outgoing`] refuses the
    ///   message, the conversation is a system one, or the type is a command
    ///   (`RC:ReadNtf`, `RC:SRSMsg`: sent by `MarkRead`); or the type is a status
    ///   message (`RC:TypSts`: sent by `SendTypingStatus`);
    /// - `GetMessages`: `count` outside 1..=[`MAX_MESSAGES_PER_QUERY`];
    /// - `GetConversations`: `count` outside 1..=[`MAX_CONVERSATIONS_PER_QUERY`];
    /// - `MessagesAfter`: `limit` outside 1..=[`MAX_MESSAGES_AFTER`];
    /// - `RecallMessage`: an empty, overlong or unprintable uid;
    /// - `GetRemoteHistory`: `count` outside 1..=[`MAX_REMOTE_HISTORY`];
    /// - `SearchMessages`: [`SearchQuery::check`].
    /// - `MarkRead`: a bad conversation, or [`check_read_position`] against the
    ///   clock (negative, or in the future);
    /// - `SendTypingStatus`: not a private conversation, or a bad type name;
    /// - `SendStatusMessage`: as `SendMessage`.
    ///
    /// Every other request has no argument to refuse.
    ///
    /// ```
    /// use rcim_proto::ipc::Op;
    /// use rcim_proto::message::{ConversationKey, TimeOrder};
    /// let op = Op::GetMessages {
    ///     conversation: ConversationKey::private("bob"),
    ///     sent_time_ms: 0,
    ///     order: TimeOrder::Before,
    ///     count: 20,
    /// };
    /// assert!(op.check().is_ok());
    /// ```
    pub fn check(&self) -> Result<(), InvalidArgument> {
        match self {
            Self::Connect { token, .. } => token
                .check_argument()
                .map_err(|why| InvalidArgument::new("token", why)),
            Self::SendMessage {
                conversation,
                object_name,
                content,
            } => check_send_message(conversation, object_name, content).and_then(|()| {
                if persistence(object_name) == Persistence::Status {
                    Err(InvalidArgument::new(
                        "message",
                        format!("{object_name} is a status message: send it with sendTypingStatus"),
                    ))
                } else {
                    Ok(())
                }
            }),
            Self::GetMessages { count, .. } => check_count(
                "count",
                *count,
                MAX_MESSAGES_PER_QUERY,
                "getMessages",
                "messages",
            ),
            Self::GetConversations { count, .. } => check_count(
                "count",
                *count,
                MAX_CONVERSATIONS_PER_QUERY,
                "getConversations",
                "conversations",
            ),
            Self::MessagesAfter { limit, .. } => check_count(
                "limit",
                *limit,
                MAX_MESSAGES_AFTER,
                "MessagesAfter",
                "messages",
            ),
            Self::RecallMessage { uid } => check_uid(uid),
            Self::GetRemoteHistory { count, .. } => check_count(
                "count",
                *count,
                MAX_REMOTE_HISTORY,
                "getRemoteHistoryMessages",
                "messages",
            ),
            Self::SearchMessages(query) => query.check(),
            Self::MarkRead {
                conversation,
                up_to_time_ms,
            } => check_conversation(conversation)
                .and_then(|()| check_read_position(*up_to_time_ms, crate::time::now_ms())),
            Self::SendTypingStatus {
                conversation,
                content_type,
            } => {
                if conversation.kind != ConversationType::Private {
                    return Err(InvalidArgument::new(
                        "conversation",
                        "typing status is for private conversations only (as RC)",
                    ));
                }
                check_send_message(conversation, content_type, "")
                    .map_err(|e| InvalidArgument::new("content_type", e.reason().to_owned()))
            }
            Self::SendStatusMessage {
                conversation,
                object_name,
                content,
            } => check_send_message(conversation, object_name, content),
            Self::SetConversationTop { conversation, .. }
            | Self::RemoveConversation { conversation }
            | Self::GetDraft { conversation } => check_conversation(conversation),
            Self::SetNotificationLevel {
                conversation,
                level,
            } => check_conversation(conversation).and_then(|()| {
                if crate::message::NOTIFICATION_LEVELS.contains(level) {
                    Ok(())
                } else {
                    Err(InvalidArgument::new(
                        "level",
                        format!(
                            "a notification level is one of -1, 0, 1, 2, 4, 5 (RC's), not {level}"
                        ),
                    ))
                }
            }),
            Self::DeleteMessages { ids } => check_count(
                "ids",
                u32::try_from(ids.len()).unwrap_or(u32::MAX),
                MAX_DELETE_IDS,
                "deleteMessages",
                "message ids",
            ),
            Self::DeleteMessagesBefore {
                conversation,
                before_ms,
            } => check_conversation(conversation).and_then(|()| {
                if *before_ms < 0 {
                    Err(InvalidArgument::new(
                        "before_ms",
                        format!("a send time in ms, 0 or more, not {before_ms}"),
                    ))
                } else {
                    Ok(())
                }
            }),
            Self::SaveDraft {
                conversation,
                draft,
            } => check_conversation(conversation).and_then(|()| {
                if draft.len() > MAX_DRAFT_LEN {
                    Err(InvalidArgument::new(
                        "draft",
                        format!(
                            "a draft is at most {MAX_DRAFT_LEN} bytes, not {}",
                            draft.len()
                        ),
                    ))
                } else {
                    Ok(())
                }
            }),
            Self::Status
            | Self::Disconnect { .. }
            | Self::Logout
            | Self::ClearUnreadCount { .. }
            | Self::Subscribe { .. }
            | Self::Clients
            | Self::GetUnreadCount { .. }
            | Self::GetTotalUnreadCount
            | Self::GetUnreadCountByTypes { .. } => Ok(()),
        }
    }
}

/// Daemon → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DaemonFrame {
    /// The handshake answer.
    Welcome(Welcome),
    /// The handshake was refused; the daemon closes the connection after this.
    Refused(Refused),
    /// The answer to one request.
    Response(Response),
    /// A callback belonging to one earlier request.
    Callback(CallbackFrame),
    /// An event for every attached client.
    Event(Event),
}

/// The daemon's handshake answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The daemon's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    pub protocol: u32,
    /// The daemon's version.
    pub daemon_version: String,
    /// The status at the moment of attaching.
    pub status: StatusSnapshot,
}

/// Why the daemon refused a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refused {
    /// The daemon's [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    pub protocol: u32,
    /// A sentence for people.
    pub reason: String,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The result.
    pub reply: Reply,
}

/// The result of a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// An RC code: 0 accepted or done, otherwise the error.
    Code(i32),
    /// The daemon's status.
    Status(StatusSnapshot),
    /// Messages from the local database. (Protocol 3.)
    Messages(Vec<Message>),
    /// Conversations from the local database. (Protocol 3.)
    Conversations(Vec<Conversation>),
    /// The attached clients. (Protocol 4.)
    Clients(Vec<ClientEntry>),
    /// A count (unread messages, deleted messages). (Protocol 6.)
    Count(u64),
    /// A conversation's draft (empty: none). (Protocol 6.)
    Draft(String),
}

/// One attached client, as `rcimctl clients` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEntry {
    /// The daemon's session number.
    pub id: u64,
    /// The name from the client's Hello.
    pub name: String,
    /// The client's process id, when the OS reports it.
    pub pid: Option<i64>,
    /// Whether it fell behind and is being caught up from the database.
    pub lagged: bool,
    /// The last message id queued for it.
    pub last_seq: i64,
}

/// A callback for an earlier request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackFrame {
    /// The request's id.
    pub id: u64,
    /// The callback.
    pub callback: Callback,
}

/// RC's per-call callbacks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Callback {
    /// `onDatabaseOpened(code)`: 0, or 33002 when the database could not be opened.
    DatabaseOpened {
        /// The RC code.
        code: i32,
    },
    /// `onConnected(code, userId)`: the last callback of a `Connect`.
    Connected {
        /// 0 on success, otherwise the RC error.
        code: i32,
        /// The connected user, on success.
        user_id: Option<String>,
    },
    /// `onMessageSaved(message)`: the message is in the local outbox, status
    /// sending. (Protocol 3.)
    MessageSaved {
        /// The stored message.
        message: Message,
    },
    /// `onMessageSent(code, message)`: the last callback of a `SendMessage`; on
    /// success the message carries the server's uid and sent time. (Protocol 3.)
    MessageSent {
        /// 0, or the RC error.
        code: i32,
        /// The message as stored now.
        message: Message,
    },
}

/// Events sent to every attached client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The connection status changed (RC's `onConnectionStatusChanged`).
    StatusChanged(LinkState),
    /// RC's `onMessageReceived(message, left, offline, hasPackage)`: a message was
    /// committed to the local database. (Protocol 3.)
    MessageReceived {
        /// The stored message; its `id` is the local sequence number.
        message: Message,
        /// Messages still to come in the current package.
        left: u32,
        /// Whether it arrived through the offline sync (not live).
        offline: bool,
        /// Whether more packages wait on the server.
        has_package: bool,
    },
    /// RC's `onOfflineMessageSyncCompleted`: the backlog after a (re)connect is
    /// all here. (Protocol 3.)
    OfflineSyncCompleted,
    /// This client did not read fast enough and missed events after message id
    /// `resume_from`. Sent once it has drained its queue; the daemon then replays
    /// the missed messages from its database by itself (as for `Subscribe`) and
    /// sends the current status. (Protocol 4.)
    Lagged {
        /// The last message id that was queued for this client before the gap.
        resume_from: i64,
    },
    /// RC's `onRemoteMessageRecalled`: a stored message was recalled (by its
    /// sender on any device, or by the app server) and replaced with an
    /// `RC:RcNtf` notification. Sent once per device and message. (Protocol 6.)
    MessageRecalled {
        /// The message as stored now: same `id`, uid and sent time, object name
        /// `RC:RcNtf`, the notification's content.
        message: Message,
    },
    /// RC's `onPrivateReadReceiptReceived`: the peer of a private conversation read
    /// this user's messages sent up to `last_message_send_time_ms`; they are
    /// stored with sent status `read` now. Sent once per advance of the peer's
    /// read position. (Protocol 6.)
    ReadReceipt {
        /// The private conversation (the peer).
        conversation: ConversationKey,
        /// The send time of the last message the peer read (ms).
        last_message_send_time_ms: i64,
    },
    /// RC's `onConversationReadStatusSyncMessageReceived`: another device of this
    /// user read the conversation up to `last_message_send_time_ms`; its unread
    /// count here is cleared up to there too. (Protocol 6.)
    ConversationReadSynced {
        /// The conversation.
        conversation: ConversationKey,
        /// The send time read up to (ms).
        last_message_send_time_ms: i64,
    },
    /// RC's `onTypingStatusChanged`: who is typing in a private conversation now.
    /// Sent when a typing status arrives, and with the user gone from the list
    /// when [`TYPING_INTERVAL_MS`] passed without a new one (an empty list: nobody
    /// is typing any more). (Protocol 6.)
    TypingStatus {
        /// The conversation.
        conversation: ConversationKey,
        /// Everyone typing in it now.
        users: Vec<TypingUser>,
    },
    /// A status message arrived (RC's status messages, from a client's
    /// `SendStatusMessage` or the Server API's `/statusmessage/*/publish.json`):
    /// it was not stored, is not counted and is in no history. (Protocol 6.)
    StatusMessageReceived {
        /// The message, as the server sent it.
        message: WireMessage,
    },
}

/// RC's `RCIMIWTypingStatus`: one user typing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypingUser {
    /// Who is typing.
    pub user_id: String,
    /// The type name of what they are typing, e.g. `RC:TxtMsg`.
    pub content_type: String,
    /// When their typing status was sent (the server's time, ms).
    pub sent_time_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MAX_CONTENT_LEN;

    fn get_messages(count: u32) -> Op {
        Op::GetMessages {
            conversation: ConversationKey::private("bob"),
            sent_time_ms: 0,
            order: TimeOrder::Before,
            count,
        }
    }

    fn get_conversations(count: u32) -> Op {
        Op::GetConversations {
            types: Vec::new(),
            start_time_ms: 0,
            count,
        }
    }

    fn messages_after(limit: u32) -> Op {
        Op::MessagesAfter {
            since_seq: 0,
            limit,
        }
    }

    fn send(kind: ConversationType, target: &str, object_name: &str, content: &str) -> Op {
        Op::SendMessage {
            conversation: ConversationKey {
                kind,
                target_id: target.to_owned(),
            },
            object_name: object_name.to_owned(),
            content: content.to_owned(),
        }
    }

    fn connect(token: &str) -> Op {
        Op::Connect {
            token: Token::new(token),
            timeout_secs: 30,
        }
    }

    /// The argument a refused op names, or `None` when it passes.
    fn refused(op: &Op) -> Option<&'static str> {
        op.check().err().map(|e| e.argument())
    }

    #[test]
    fn query_counts_are_checked_at_both_ends_of_their_range() {
        for (op, expected) in [
            (get_messages(0), Some("count")),
            (get_messages(1), None),
            (get_messages(MAX_MESSAGES_PER_QUERY), None),
            (get_messages(MAX_MESSAGES_PER_QUERY + 1), Some("count")),
            (get_conversations(0), Some("count")),
            (get_conversations(1), None),
            (get_conversations(MAX_CONVERSATIONS_PER_QUERY), None),
            (
                get_conversations(MAX_CONVERSATIONS_PER_QUERY + 1),
                Some("count"),
            ),
            (messages_after(0), Some("limit")),
            (messages_after(1), None),
            (messages_after(MAX_MESSAGES_AFTER), None),
            (messages_after(MAX_MESSAGES_AFTER + 1), Some("limit")),
        ] {
            assert_eq!(refused(&op), expected, "{op:?}");
        }
        assert_eq!(
            (MAX_MESSAGES_PER_QUERY, MAX_CONVERSATIONS_PER_QUERY),
            (20, 50)
        );
    }

    #[test]
    fn a_connect_is_checked_by_its_token() {
        assert_eq!(refused(&connect("token")), None);
        for bad in ["", "   ", "a b", "tab\there"] {
            assert_eq!(refused(&connect(bad)), Some("token"), "{bad:?}");
        }
        let long = "x".repeat(crate::token::MAX_TOKEN_LEN + 1);
        assert_eq!(refused(&connect(&long)), Some("token"));
    }

    #[test]
    fn a_send_is_checked_like_check_outgoing_and_refuses_system_messages() {
        use ConversationType::{Chatroom, Group, Private, System};
        assert_eq!(refused(&send(Private, "bob", "RC:TxtMsg", "{}")), None);
        assert_eq!(refused(&send(Group, "team-1", "RC:TxtMsg", "{}")), None);
        for op in [
            send(Private, "", "RC:TxtMsg", "{}"),
            send(Private, "a/b", "RC:TxtMsg", "{}"),
            send(Private, "bob", "", "{}"),
            send(Private, "bob", "RC: Txt", "{}"),
            send(
                Private,
                "bob",
                "RC:TxtMsg",
                &"x".repeat(MAX_CONTENT_LEN + 1),
            ),
            send(Chatroom, "room", "RC:TxtMsg", "{}"),
        ] {
            assert_eq!(refused(&op), Some("message"), "{op:?}");
        }
        let system = send(System, "news", "RC:TxtMsg", "{}");
        let err = system.check().unwrap_err();
        assert_eq!(err.argument(), "conversation");
        assert_eq!(
            err.to_string(),
            "invalid argument `conversation`: system messages are sent by a back-end, not by apps"
        );
    }

    #[test]
    fn requests_without_arguments_to_refuse_pass() {
        for op in [
            Op::Status,
            Op::Disconnect { receive_push: true },
            Op::Logout,
            Op::ClearUnreadCount {
                conversation: ConversationKey::private(""),
                timestamp_ms: -1,
            },
            Op::Subscribe { since_seq: -5 },
            Op::Clients,
        ] {
            assert_eq!(refused(&op), None, "{op:?}");
        }
    }

    #[test]
    fn recall_history_and_search_arguments_are_checked() {
        let history = |count| Op::GetRemoteHistory {
            conversation: ConversationKey::private("bob"),
            before_time_ms: 0,
            count,
        };
        let recall = |uid: &str| Op::RecallMessage { uid: uid.into() };
        let search = |text: &str, count| Op::SearchMessages(SearchQuery::new(text, count));
        for (op, expected) in [
            (history(0), Some("count")),
            (history(1), None),
            (history(MAX_REMOTE_HISTORY), None),
            (history(MAX_REMOTE_HISTORY + 1), Some("count")),
            (recall("0192f0aa-0000-7000-8000-000000000001"), None),
            (recall(""), Some("uid")),
            (recall("a\nb"), Some("uid")),
            (recall(&"u".repeat(MAX_UID_LEN + 1)), Some("uid")),
            (search("hello", 1), None),
            (search("\"*\" OR NEAR(", MAX_SEARCH_RESULTS), None),
            (search("hello", 0), Some("count")),
            (search("hello", MAX_SEARCH_RESULTS + 1), Some("count")),
            (search(" \t ", 10), Some("text")),
            (search(&"x".repeat(MAX_SEARCH_TEXT + 1), 10), Some("text")),
            (search("a\0b", 10), Some("text")),
        ] {
            assert_eq!(refused(&op), expected, "{op:?}");
        }
        assert_eq!(
            history(101).check().unwrap_err().to_string(),
            "invalid argument `count`: getRemoteHistoryMessages takes 1 to 100 messages, not 101"
        );
    }

    #[test]
    fn the_error_says_which_argument_and_why() {
        let err = get_messages(21).check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument `count`: getMessages takes 1 to 20 messages, not 21"
        );
        let err = connect("").check().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid argument `token`: the token is empty"
        );
        assert_eq!(err.reason(), "the token is empty");
    }

    #[test]
    fn a_read_position_in_the_future_or_negative_is_refused() {
        let mark = |t| Op::MarkRead {
            conversation: ConversationKey::private("bob"),
            up_to_time_ms: t,
        };
        let now = crate::time::now_ms();
        assert_eq!(refused(&mark(0)), None);
        assert_eq!(refused(&mark(now)), None);
        assert_eq!(
            refused(&mark(now + 10 * MAX_READ_AHEAD_MS)),
            Some("up_to_time_ms")
        );
        assert_eq!(refused(&mark(i64::MAX)), Some("up_to_time_ms"));
        assert_eq!(refused(&mark(-1)), Some("up_to_time_ms"));
        let nobody = Op::MarkRead {
            conversation: ConversationKey::private(""),
            up_to_time_ms: 0,
        };
        assert_eq!(refused(&nobody), Some("conversation"));
    }

    #[test]
    fn typing_is_for_private_conversations_and_commands_are_not_messages() {
        let typing = |conversation: ConversationKey, content_type: &str| Op::SendTypingStatus {
            conversation,
            content_type: content_type.to_owned(),
        };
        assert_eq!(
            refused(&typing(ConversationKey::private("bob"), "RC:TxtMsg")),
            None
        );
        assert_eq!(
            refused(&typing(ConversationKey::group("team"), "RC:TxtMsg")),
            Some("conversation")
        );
        assert_eq!(
            refused(&typing(ConversationKey::private("bob"), "has space")),
            Some("content_type")
        );
        for name in ["RC:ReadNtf", "RC:SRSMsg", "RC:TypSts"] {
            assert_eq!(
                refused(&send(ConversationType::Private, "bob", name, "{}")),
                Some("message"),
                "{name}"
            );
        }
    }
}
