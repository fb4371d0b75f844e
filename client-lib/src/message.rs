//! Message helpers: RC's text message format, the outgoing message an [`Engine`]
//! sends, and the argument limits of the query calls (the contract's, from
//! [`rcim_proto::ipc`]).
//!
//! RC identifies a message type by its object name (`RC:TxtMsg` for text) and
//! carries its body as JSON in `content`; a text message's content is
//! `{"content":"the text"}`. [`text_content`] builds that JSON (properly escaped)
//! and [`text_of`] reads the text back out of a received [`Message`].
//!
//! [`Engine`]: crate::Engine

use rcim_proto::message::{
    ConversationKey, ConversationType, Direction, Message, SentStatus, WireMessage,
};

/// The object name of RC's text message.
///
/// ```
/// assert_eq!(rcim_client::TEXT_MESSAGE, "RC:TxtMsg");
/// ```
pub const TEXT_MESSAGE: &str = "RC:TxtMsg";

/// The largest `count` for `get_messages` (RC: `0 < count ≤ 20`); the contract's
/// [`rcim_proto::ipc::MAX_MESSAGES_PER_QUERY`], which the daemon checks too.
///
/// ```
/// assert_eq!(rcim_client::MAX_MESSAGES_PER_QUERY, 20);
/// ```
pub const MAX_MESSAGES_PER_QUERY: u32 = rcim_proto::ipc::MAX_MESSAGES_PER_QUERY;

/// The largest `count` for `get_conversations` (RC: `0 < count ≤ 50`); the
/// contract's [`rcim_proto::ipc::MAX_CONVERSATIONS_PER_QUERY`], which the daemon
/// checks too.
///
/// ```
/// assert_eq!(rcim_client::MAX_CONVERSATIONS_PER_QUERY, 50);
/// ```
pub const MAX_CONVERSATIONS_PER_QUERY: u32 = rcim_proto::ipc::MAX_CONVERSATIONS_PER_QUERY;

/// The content of an RC text message carrying `text`: `{"content":"..."}`.
///
/// ```
/// assert_eq!(rcim_client::text_content("hi \"you\""), r#"{"content":"hi \"you\""}"#);
/// ```
pub fn text_content(text: &str) -> String {
    serde_json::json!({ "content": text }).to_string()
}

/// The text of a text message (`RC:TxtMsg` with a `content` string in its JSON);
/// `None` for other types and for text messages whose content is not that shape.
///
/// ```
/// use rcim_client::{ConversationKey, Direction, Message, SentStatus, text_content, text_of};
/// let message = Message {
///     id: 7,
///     uid: Some("uid-7".into()),
///     conversation: ConversationKey::private("bob"),
///     sender: "bob".into(),
///     object_name: "RC:TxtMsg".into(),
///     content: text_content("hello"),
///     sent_time_ms: 1_700_000_000_000,
///     received_time_ms: 1_700_000_000_050,
///     direction: Direction::Receive,
///     sent_status: SentStatus::Sent,
///     client_msg_id: None,
/// };
/// assert_eq!(text_of(&message).as_deref(), Some("hello"));
/// ```
pub fn text_of(message: &Message) -> Option<String> {
    if message.object_name != TEXT_MESSAGE {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(&message.content).ok()?;
    value.get("content")?.as_str().map(str::to_owned)
}

/// A message to send: where to, its type, its content. RC's `createTextMessage`
/// followed by `sendMessage` becomes [`OutgoingMessage::text`] (or
/// [`Engine::create_text_message`](crate::Engine::create_text_message)) followed by
/// [`Engine::send_message`](crate::Engine::send_message).
///
/// ```
/// use rcim_client::{ConversationKey, OutgoingMessage};
/// let message = OutgoingMessage::text(ConversationKey::private("bob"), "hello");
/// assert_eq!(message.object_name, "RC:TxtMsg");
/// assert_eq!(message.content, r#"{"content":"hello"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Where to.
    pub conversation: ConversationKey,
    /// The type name, e.g. `RC:TxtMsg`.
    pub object_name: String,
    /// The content, JSON by RC convention.
    pub content: String,
}

impl OutgoingMessage {
    /// A message of any type.
    ///
    /// ```
    /// use rcim_client::{ConversationKey, OutgoingMessage};
    /// let m = OutgoingMessage::new(ConversationKey::private("bob"), "RC:ImgMsg", r#"{"imageUri":"https://x/y.png"}"#);
    /// assert!(m.check().is_ok());
    /// ```
    pub fn new(
        conversation: ConversationKey,
        object_name: impl Into<String>,
        content: impl Into<String>,
    ) -> Self {
        Self {
            conversation,
            object_name: object_name.into(),
            content: content.into(),
        }
    }

    /// A text message (`RC:TxtMsg`, content `{"content":text}`).
    ///
    /// ```
    /// use rcim_client::{ConversationKey, OutgoingMessage};
    /// let m = OutgoingMessage::text(ConversationKey::group("team-1"), "hi");
    /// assert_eq!(m.content, r#"{"content":"hi"}"#);
    /// ```
    pub fn text(conversation: ConversationKey, text: &str) -> Self {
        Self::new(conversation, TEXT_MESSAGE, text_content(text))
    }

    /// RC's `createTextMessage(type, targetId, channelId, text)` (channels are for
    /// ultra groups, which rcim does not have).
    ///
    /// ```
    /// use rcim_client::{ConversationType, OutgoingMessage};
    /// let m = OutgoingMessage::text_to(ConversationType::Private, "bob", "hi");
    /// assert_eq!(m.conversation.target_id, "bob");
    /// ```
    pub fn text_to(kind: ConversationType, target_id: impl Into<String>, text: &str) -> Self {
        Self::text(
            ConversationKey {
                kind,
                target_id: target_id.into(),
            },
            text,
        )
    }

    /// Checks the fields as the daemon will, with the contract's check
    /// ([`rcim_proto::ipc::check_send_message`]; RC's 33003 on failure); the error
    /// says which field is wrong and why.
    ///
    /// ```
    /// use rcim_client::{ConversationKey, OutgoingMessage};
    /// assert!(OutgoingMessage::text(ConversationKey::private("bob"), "hi").check().is_ok());
    /// assert!(OutgoingMessage::text(ConversationKey::private("a b"), "hi").check().is_err());
    /// ```
    pub fn check(&self) -> Result<(), rcim_proto::ipc::InvalidArgument> {
        rcim_proto::ipc::check_send_message(&self.conversation, &self.object_name, &self.content)
    }
}

/// A status message as RC hands it to `onMessageReceived`: not stored, so its
/// message id is 0; received now, in the state of a received message.
///
/// ```
/// use rcim_client::{ConversationKey, Direction};
/// let wire = rcim_proto::message::WireMessage {
///     uid: "u1".into(),
///     conversation: ConversationKey::private("bob"),
///     sender: "bob".into(),
///     object_name: "app:Presence".into(),
///     content: "{}".into(),
///     sent_time_ms: 1_700,
/// };
/// let m = rcim_client::unstored(wire);
/// assert_eq!((m.id, m.uid.as_deref(), m.direction), (0, Some("u1"), Direction::Receive));
/// ```
pub fn unstored(message: WireMessage) -> Message {
    Message {
        id: 0,
        uid: Some(message.uid),
        conversation: message.conversation,
        sender: message.sender,
        object_name: message.object_name,
        content: message.content,
        sent_time_ms: message.sent_time_ms,
        received_time_ms: rcim_proto::time::now_ms(),
        direction: Direction::Receive,
        sent_status: SentStatus::Received,
        client_msg_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(object_name: &str, content: &str) -> Message {
        Message {
            id: 1,
            uid: None,
            conversation: ConversationKey::private("bob"),
            sender: "bob".to_owned(),
            object_name: object_name.to_owned(),
            content: content.to_owned(),
            sent_time_ms: 0,
            received_time_ms: 0,
            direction: rcim_proto::message::Direction::Receive,
            sent_status: rcim_proto::message::SentStatus::Sent,
            client_msg_id: None,
        }
    }

    #[test]
    fn text_round_trips_through_json_escaping() {
        for text in [
            "",
            "hello",
            "quote \" backslash \\ slash /",
            "line\nbreak\ttab\u{1}",
            "ünïcødé 你好 🎉",
        ] {
            let content = text_content(text);
            let value: serde_json::Value = serde_json::from_str(&content).unwrap();
            assert_eq!(value, serde_json::json!({ "content": text }));
            assert_eq!(
                text_of(&message(TEXT_MESSAGE, &content)).as_deref(),
                Some(text)
            );
        }
    }

    #[test]
    fn text_of_other_shapes_is_none() {
        assert_eq!(text_of(&message("RC:ImgMsg", &text_content("x"))), None);
        assert_eq!(text_of(&message(TEXT_MESSAGE, "not json")), None);
        assert_eq!(text_of(&message(TEXT_MESSAGE, r#"{"content":5}"#)), None);
        assert_eq!(text_of(&message(TEXT_MESSAGE, r#"["content"]"#)), None);
    }

    #[test]
    fn outgoing_text_is_checked_like_the_daemon_does() {
        let ok = OutgoingMessage::text_to(ConversationType::Group, "team-1", "hi");
        assert_eq!(ok.conversation, ConversationKey::group("team-1"));
        assert!(ok.check().is_ok());
        assert!(
            OutgoingMessage::text(ConversationKey::private(""), "hi")
                .check()
                .is_err()
        );
        let big = "x".repeat(rcim_proto::message::MAX_CONTENT_LEN);
        assert!(
            OutgoingMessage::text(ConversationKey::private("bob"), &big)
                .check()
                .is_err()
        );
    }
}
