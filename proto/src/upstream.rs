//! The upstream wire protocol between `rcimd` and the IM server (rcim wire protocol,
//! modelled on RC's MQTT-derived one).
//!
//! Over TCP with the same framing as the local IPC ([`crate::frame`], capped at
//! [`MAX_UPSTREAM_FRAME`](crate::frame::MAX_UPSTREAM_FRAME)). The client's first
//! frame is [`ClientMsg::Connect`]; the server answers [`ServerMsg::ConnAck`] and, if
//! the code is not 0, closes. Then the client pings when idle and the server pongs;
//! either side may send `Disconnect` and close.
//!
//! Messaging (wire 2): the server keeps a per-user inbox numbered 1, 2, 3, … After
//! every CONNACK the client sends `Sync{since_seq}` with the last sequence number it
//! committed and keeps asking while `has_more`; once a batch comes back with
//! `has_more: false` the server pushes new entries live. The client acknowledges
//! with a cumulative `Ack{seq}` only what it has committed to its database, so a
//! crash loses nothing: the next sync starts from the committed cursor.

use crate::code::{ConnAckCode, DisconnectReason};
use crate::message::{ConversationKey, WireMessage};
use crate::token::Token;
use serde::{Deserialize, Serialize};

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// CONNECT: must be the first frame.
    Connect(Connect),
    /// PINGREQ: the server answers [`ServerMsg::Pong`].
    Ping,
    /// DISCONNECT: the client signs out; the server closes.
    Disconnect {
        /// Whether the server should keep sending remote pushes to this device.
        keep_push: bool,
    },
    /// PUBLISH: send a message. Answered with [`ServerMsg::PubAck`] for `req_id`.
    /// The server de-duplicates on (sender, `client_msg_id`), so a resend after a
    /// drop returns the first acceptance instead of a second message. (Wire 2.)
    Publish(Publish),
    /// Asks for the inbox after `since_seq`; answered with one
    /// [`ServerMsg::SyncBatch`] of at most 200 messages. (Wire 2.)
    Sync {
        /// The last inbox sequence number the client has committed.
        since_seq: u64,
    },
    /// Everything up to `seq` is committed on the client (cumulative). (Wire 2.)
    Ack {
        /// The highest committed inbox sequence number.
        seq: u64,
    },
    /// Recall a message this user sent. Answered with [`ServerMsg::RecallAck`]; on
    /// success every device of both sides (this one too) also gets an `RC:RcCmd`
    /// inbox entry naming the message. (Wire 3.)
    Recall {
        /// Chosen by the client, echoed in the answer.
        req_id: u64,
        /// The message's uid.
        message_uid: String,
    },
    /// Asks for a page of the server's copy of a conversation. Answered with
    /// [`ServerMsg::HistoryPage`]. (Wire 3.)
    History {
        /// Chosen by the client, echoed in the answer.
        req_id: u64,
        /// The conversation, as this user sees it.
        conversation: ConversationKey,
        /// Only messages sent before this time (ms); 0 means the newest.
        before_time_ms: i64,
        /// 1 to 100.
        count: u32,
    },
    /// A status message (RC's status messages, e.g. `RC:TypSts`): delivered to the
    /// recipients' connections that are online now, never stored, never synced,
    /// never acknowledged. The server drops it silently when it is not acceptable.
    /// (Wire 3.)
    PublishStatus(StatusPublish),
    /// Sets this user's push notification level (do-not-disturb) for one
    /// conversation, as RC's `/conversation/notification/set.json` does; answered
    /// with a [`ServerMsg::PubAck`] for `req_id` (no uid). Idempotent. (Wire 3.)
    SetNotificationLevel {
        /// Chosen by the client, echoed in the PubAck.
        req_id: u64,
        /// The conversation, as this user sees it.
        conversation: ConversationKey,
        /// RC's level (see `message::NOTIFICATION_LEVELS`).
        level: i32,
    },
}

/// A status message from a client: where to and what, as in [`Publish`], without
/// the de-duplication id (a status message is never resent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusPublish {
    /// Where to (the peer of a private conversation, a group).
    pub conversation: ConversationKey,
    /// The type name, e.g. `RC:TypSts`.
    pub object_name: String,
    /// The content.
    pub content: String,
}

/// The PUBLISH message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// Chosen by the client, echoed in the PubAck.
    pub req_id: u64,
    /// The client's unique id for this message (a UUID); the de-duplication key.
    pub client_msg_id: String,
    /// Where to (the group id for groups, the user for private and system).
    pub conversation: ConversationKey,
    /// The type name, e.g. `RC:TxtMsg`.
    pub object_name: String,
    /// The content.
    pub content: String,
}

/// The answer to a PUBLISH.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PubAck {
    /// The PUBLISH's `req_id`.
    pub req_id: u64,
    /// An RC code: 0 accepted; otherwise why not (e.g. 33003 bad argument, 22406 not
    /// in the group).
    pub code: i32,
    /// The message's server id, when accepted.
    pub message_uid: Option<String>,
    /// When the server accepted it (ms since the Unix epoch).
    pub sent_time_ms: i64,
}

/// A message in the user's inbox, with its position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The user's inbox sequence number: 1, 2, 3, … with no gaps.
    pub seq: u64,
    /// The message.
    pub message: WireMessage,
}

/// The CONNECT message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    /// The client's [`WIRE_VERSION`](crate::WIRE_VERSION).
    pub protocol: u32,
    /// The app key the client was configured with.
    pub app_key: String,
    /// The user's token.
    pub token: Token,
    /// What the client is.
    pub client_info: ClientInfo,
    /// A stable id for this device (one per daemon data dir).
    pub device_id: String,
}

/// What the connecting client is; the server kicks an older connection of the same
/// user on the same platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Platform class, e.g. `desktop`.
    pub platform: String,
    /// The client software and version, e.g. `rcimd/0.1.0`.
    pub sdk: String,
    /// The operating system, e.g. `linux`.
    pub os: String,
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// CONNACK: the answer to CONNECT.
    ConnAck(ConnAck),
    /// PINGRESP.
    Pong,
    /// DISCONNECT: the server ends the connection and closes.
    Disconnect {
        /// Why.
        reason: DisconnectReason,
    },
    /// The answer to a PUBLISH. (Wire 2.)
    PubAck(PubAck),
    /// A live message for this user, sent once the client has finished syncing.
    /// (Wire 2.)
    Push(InboxEntry),
    /// The answer to a Sync: the next entries in order, at most 200. (Wire 2.)
    SyncBatch {
        /// The entries, in sequence order.
        entries: Vec<InboxEntry>,
        /// Whether more entries wait after these (RC's `hasPackage`).
        has_more: bool,
    },
    /// The answer to a Recall. (Wire 3.)
    RecallAck {
        /// The Recall's `req_id`.
        req_id: u64,
        /// 0 done (also for a message already recalled), 25101 no such message
        /// or not the caller's.
        code: i32,
        /// On success, the message as the server stores it now (`RC:RcNtf`,
        /// same uid and sent time), addressed from the caller's side.
        message: Option<WireMessage>,
    },
    /// The answer to a History request, newest first. (Wire 3.)
    HistoryPage {
        /// The History's `req_id`.
        req_id: u64,
        /// 0, or why not (33003 a bad count or conversation, 22406 a group the
        /// user is not in).
        code: i32,
        /// The messages, each addressed from the caller's side.
        messages: Vec<WireMessage>,
        /// Whether older messages remain.
        has_more: bool,
    },
    /// A status message for this user, live only: it is in no inbox, so a
    /// connection that was not online when it was sent never sees it. (Wire 3.)
    Status(WireMessage),
}

/// The CONNACK message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnAck {
    /// 0 accepted, otherwise why not.
    pub code: ConnAckCode,
    /// The authenticated user, when accepted.
    pub user_id: Option<String>,
    /// The server's clock, in ms since the Unix epoch.
    pub server_time_ms: i64,
}
