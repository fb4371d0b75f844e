//! Messages and conversations: the shapes shared by the upstream wire, the local
//! IPC and the daemon's database.
//!
//! Numbers follow RC's wrapper SDK (RCIMIW): conversation types private 1, group 2,
//! chatroom 3, system 4, ultra group 5; sent status sending, failed, sent, received,
//! read; direction send / receive. The wire carries a message as [`WireMessage`]
//! (what the server stores); apps see [`Message`] (what the daemon stores, with its
//! local ids and state).

use serde::{Deserialize, Serialize};

/// The largest message content accepted, in bytes (RC's limit is 128 KB).
pub const MAX_CONTENT_LEN: usize = 128 * 1024;

/// The largest object name, e.g. `RC:TxtMsg`.
pub const MAX_OBJECT_NAME_LEN: usize = 32;

/// Messages per sync package, as RC sends offline messages.
pub const SYNC_PACKAGE: usize = 200;

/// RCIMIWConversationType. The variant order is the wire encoding and RC's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationType {
    /// 0: not a conversation.
    Invalid,
    /// 1: one-to-one.
    Private,
    /// 2: a group the server keeps the members of.
    Group,
    /// 3: a chat room.
    Chatroom,
    /// 4: system messages (from a back-end).
    System,
    /// 5: an ultra group.
    UltraGroup,
}

impl ConversationType {
    /// RC's number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The type with RC's number `code`.
    pub fn from_code(code: i32) -> Option<Self> {
        [
            Self::Invalid,
            Self::Private,
            Self::Group,
            Self::Chatroom,
            Self::System,
            Self::UltraGroup,
        ]
        .get(usize::try_from(code).ok()?)
        .copied()
    }

    /// The snake_case name, e.g. `private`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::Private => "private",
            Self::Group => "group",
            Self::Chatroom => "chatroom",
            Self::System => "system",
            Self::UltraGroup => "ultra_group",
        }
    }
}

/// A conversation, seen from one user: the type and the other side (the peer of a
/// private conversation, the group id, the system sender).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationKey {
    /// The type.
    pub kind: ConversationType,
    /// The other side.
    pub target_id: String,
}

impl ConversationKey {
    /// A private conversation with `user`.
    pub fn private(user: impl Into<String>) -> Self {
        Self {
            kind: ConversationType::Private,
            target_id: user.into(),
        }
    }

    /// A group conversation.
    pub fn group(group: impl Into<String>) -> Self {
        Self {
            kind: ConversationType::Group,
            target_id: group.into(),
        }
    }
}

/// A message as the server stores and sends it, addressed from the receiver's side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// The server's unique, time-ordered id (RC's messageUId).
    pub uid: String,
    /// The conversation, from the receiving user's side.
    pub conversation: ConversationKey,
    /// Who sent it.
    pub sender: String,
    /// The type name, e.g. `RC:TxtMsg`.
    pub object_name: String,
    /// The content, JSON by RC convention (`{"content":"hello"}` for text).
    pub content: String,
    /// When the server accepted it, in ms since the Unix epoch.
    pub sent_time_ms: i64,
}

/// RCIMIWMessageDirection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Sent by this user.
    Send,
    /// Received by this user.
    Receive,
}

/// RCIMIWSentStatus (RC's order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentStatus {
    /// In the outbox, not yet acknowledged by the server.
    Sending,
    /// The server refused it.
    Failed,
    /// The server accepted it.
    Sent,
    /// The recipient received it.
    Received,
    /// The recipient read it.
    Read,
}

/// A message as apps see it: the daemon's stored copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The daemon's local id (RC's messageId); also the local sequence number that
    /// orders every message this daemon stored.
    pub id: i64,
    /// The server's id, once the server has it (RC's messageUId).
    pub uid: Option<String>,
    /// The conversation.
    pub conversation: ConversationKey,
    /// Who sent it.
    pub sender: String,
    /// The type name, e.g. `RC:TxtMsg`.
    pub object_name: String,
    /// The content.
    pub content: String,
    /// When the server accepted it (ms); 0 while sending.
    pub sent_time_ms: i64,
    /// When this daemon stored it (ms).
    pub received_time_ms: i64,
    /// Sent or received.
    pub direction: Direction,
    /// For sent messages, how far it got.
    pub sent_status: SentStatus,
    /// The sender's id for de-duplication of resends (sent messages only).
    pub client_msg_id: Option<String>,
}

/// A conversation as apps see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Which conversation.
    pub key: ConversationKey,
    /// Messages received and not yet cleared.
    pub unread_count: u32,
    /// The newest message.
    pub last_message: Option<Message>,
    /// The newest message's time (ms), for paging.
    pub operation_time_ms: i64,
    /// Pinned to the top of the list (RC's `top`). (Protocol 6.)
    pub is_top: bool,
    /// RC's push notification level (do-not-disturb) for this conversation:
    /// [`NOTIFICATION_LEVELS`]; 0 when never set. (Protocol 6.)
    pub notification_level: i32,
    /// The draft kept for it on this device (empty: none). (Protocol 6.)
    pub draft: String,
}

/// RC's `RCIMIWPushNotificationLevel` values: -1 every message notifies, 0 not set
/// (the app's default), 1 only mentions, 2 only mentions of me, 4 only mentions of
/// everyone, 5 nothing notifies (muted).
pub const NOTIFICATION_LEVELS: [i32; 6] = [-1, 0, 1, 2, 4, 5];

/// The notification level RC's Server API means by `isMuted=1`: nothing notifies.
pub const NOTIFICATION_BLOCKED: i32 = 5;

/// RCIMIWTimeOrder for history queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeOrder {
    /// Older than the given time, newest first.
    Before,
    /// Newer than the given time, oldest first.
    After,
}

/// Checks an outgoing message's fields; the error says what is wrong.
pub fn check_outgoing(
    conversation: &ConversationKey,
    object_name: &str,
    content: &str,
) -> Result<(), &'static str> {
    if !matches!(
        conversation.kind,
        ConversationType::Private | ConversationType::Group | ConversationType::System
    ) {
        return Err("only private, group and system conversations can be sent to");
    }
    let target = &conversation.target_id;
    if target.is_empty()
        || target.len() > 64
        || !target
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=-_".contains(&b))
    {
        return Err("the target id must be 1 to 64 letters, digits or + = - _");
    }
    if object_name.is_empty()
        || object_name.len() > MAX_OBJECT_NAME_LEN
        || object_name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("the object name must be 1 to 32 printable characters, like RC:TxtMsg");
    }
    if content.len() > MAX_CONTENT_LEN {
        return Err("the content is larger than 128 KB");
    }
    Ok(())
}

/// RC's read notification (`RC:ReadNtf`): sent to the peer of a private
/// conversation when this user read it, carrying the send time of the last message
/// read. A command: delivered through the inbox (offline too), never stored as a
/// message, never counted as unread.
pub const READ_NOTIFICATION: &str = "RC:ReadNtf";

/// RC's read-status sync (`RC:SRSMsg`): sent to the user's own other devices when
/// a conversation was read on one, carrying the send time read up to. A command,
/// like [`READ_NOTIFICATION`]; the server routes it to the sender's own inbox, in
/// the conversation as the sender sees it.
pub const READ_SYNC: &str = "RC:SRSMsg";

/// RC's typing status (`RC:TypSts`): a status message, delivered to online
/// devices only.
pub const TYPING_STATUS: &str = "RC:TypSts";

/// How a message of a given type name travels and is kept, after RC's persistence
/// flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Stored on both sides and counted as unread when received (RC's
    /// `ISCOUNTED`/`ISPERSISTED`): every ordinary message.
    Stored,
    /// Delivered durably through the inbox (offline devices get it at their next
    /// sync) and applied by the receiving daemon, but never stored as a message,
    /// never counted, never in history (RC's `MessagePersistent_NONE` commands):
    /// [`READ_NOTIFICATION`], [`READ_SYNC`].
    Command,
    /// Delivered only to devices online at that moment, never stored anywhere
    /// (RC's status messages): [`TYPING_STATUS`] and whatever is sent through
    /// the status-message paths.
    Status,
}

/// How messages named `object_name` travel; see [`Persistence`].
///
/// ```
/// use rcim_proto::message::{persistence, Persistence};
/// assert_eq!(persistence("RC:TxtMsg"), Persistence::Stored);
/// assert_eq!(persistence("RC:ReadNtf"), Persistence::Command);
/// assert_eq!(persistence("RC:TypSts"), Persistence::Status);
/// ```
pub fn persistence(object_name: &str) -> Persistence {
    match object_name {
        READ_NOTIFICATION | READ_SYNC => Persistence::Command,
        TYPING_STATUS => Persistence::Status,
        _ => Persistence::Stored,
    }
}

/// The content of an `RC:ReadNtf` or `RC:SRSMsg`: `{"lastMessageSendTime":T}`
/// (RC's field name; `RC:ReadNtf` also carries `"type":1`, RC's receipt type for
/// a private conversation).
///
/// ```
/// let c = rcim_proto::message::read_content("RC:ReadNtf", 1_700);
/// assert_eq!(c, r#"{"lastMessageSendTime":1700,"type":1}"#);
/// assert_eq!(rcim_proto::message::read_time_of(&c), Some(1_700));
/// ```
pub fn read_content(object_name: &str, last_message_send_time_ms: i64) -> String {
    if object_name == READ_NOTIFICATION {
        format!(r#"{{"lastMessageSendTime":{last_message_send_time_ms},"type":1}}"#)
    } else {
        format!(r#"{{"lastMessageSendTime":{last_message_send_time_ms}}}"#)
    }
}

/// The `lastMessageSendTime` of a read notification or read sync content, when
/// it has one (an integer at the top level of the JSON object).
///
/// ```
/// use rcim_proto::message::read_time_of;
/// assert_eq!(read_time_of(r#"{ "lastMessageSendTime" : 42 }"#), Some(42));
/// assert_eq!(read_time_of(r#"{"lastMessageSendTime":"x"}"#), None);
/// assert_eq!(read_time_of("not json"), None);
/// ```
pub fn read_time_of(content: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(content)
        .ok()?
        .get("lastMessageSendTime")?
        .as_i64()
}

/// The content of an `RC:TypSts`: `{"typingContentType":TYPE}` (RC's field name),
/// `TYPE` being the type name of what the user is typing, e.g. `RC:TxtMsg`.
///
/// ```
/// let c = rcim_proto::message::typing_content("RC:TxtMsg");
/// assert_eq!(c, r#"{"typingContentType":"RC:TxtMsg"}"#);
/// assert_eq!(rcim_proto::message::typing_type_of(&c).as_deref(), Some("RC:TxtMsg"));
/// ```
pub fn typing_content(content_type: &str) -> String {
    serde_json::json!({ "typingContentType": content_type }).to_string()
}

/// The `typingContentType` of a typing status content, when it has one.
pub fn typing_type_of(content: &str) -> Option<String> {
    Some(
        serde_json::from_str::<serde_json::Value>(content)
            .ok()?
            .get("typingContentType")?
            .as_str()?
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_types_carry_rc_numbers() {
        for (code, name) in [
            (0, "invalid"),
            (1, "private"),
            (2, "group"),
            (3, "chatroom"),
            (4, "system"),
            (5, "ultra_group"),
        ] {
            let kind = ConversationType::from_code(code).unwrap();
            assert_eq!(kind.code(), code);
            assert_eq!(kind.name(), name);
            assert_eq!(
                postcard::to_stdvec(&kind).unwrap(),
                vec![u8::try_from(code).unwrap()]
            );
        }
        assert_eq!(ConversationType::from_code(6), None);
    }

    #[test]
    fn outgoing_checks() {
        let bob = ConversationKey::private("bob");
        assert!(check_outgoing(&bob, "RC:TxtMsg", "{}").is_ok());
        assert!(check_outgoing(&ConversationKey::private(""), "RC:TxtMsg", "{}").is_err());
        assert!(check_outgoing(&ConversationKey::private("a/b"), "RC:TxtMsg", "{}").is_err());
        assert!(check_outgoing(&bob, "", "{}").is_err());
        assert!(check_outgoing(&bob, "RC: Txt", "{}").is_err());
        assert!(check_outgoing(&bob, "RC:TxtMsg", &"x".repeat(MAX_CONTENT_LEN + 1)).is_err());
        let room = ConversationKey {
            kind: ConversationType::Chatroom,
            target_id: "r".into(),
        };
        assert!(check_outgoing(&room, "RC:TxtMsg", "{}").is_err());
    }
}
