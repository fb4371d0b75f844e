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
}

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
