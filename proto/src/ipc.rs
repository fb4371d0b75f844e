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

use crate::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use crate::status::{LinkState, StatusSnapshot};
use crate::token::Token;
use serde::{Deserialize, Serialize};

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
        /// 1 to 20.
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
        /// 1 to 50.
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
}

/// The largest `limit` of [`Op::MessagesAfter`].
pub const MAX_MESSAGES_AFTER: u32 = 1_000;

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
}
