//! How messages and conversations look on the terminal and in `--json`, shared by
//! `send`, `history`, `conversations` and `watch`.
//!
//! The JSON shapes ([`MessageJson`], [`ConversationJson`]) are a contract for
//! scripts and live here, not in rcim-proto, so the wire types can evolve without
//! breaking scripts; each command wraps them in an object with `schema_version`.
//! Human output is one line per item: times in UTC as `YYYY-MM-DD HH:MM:SS`, text
//! messages by their text (control characters escaped, so a message cannot move
//! the cursor or forge a line), other types as `[OBJECT:NAME]`.
//!
//! Colour: renderers may style words with [`paint`]; `main` writes through
//! `anstream`, which passes the styles on only to a terminal and honours `NO_COLOR`
//! and `CLICOLOR_FORCE`, so pipes, files and `--json` never see escape codes.

use anstyle::{AnsiColor, Style};
use rcim_client::{
    ConnectionStatus, Conversation, ConversationKey, ConversationType, Direction, Message,
    SentStatus, text_of,
};
use serde::Serialize;

/// The widest preview in a conversations line, in characters.
pub const PREVIEW_CHARS: usize = 60;

/// What a piece of human output means, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// Fine: connected, sent.
    Good,
    /// Worth a look: connecting, lagging.
    Warn,
    /// Failed: an error status.
    Bad,
    /// A table header.
    Header,
}

/// `text` styled as `kind` (stripped again unless stdout is a colour terminal).
pub fn paint(kind: Paint, text: &str) -> String {
    let style = match kind {
        Paint::Good => Style::new().fg_color(Some(AnsiColor::Green.into())),
        Paint::Warn => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
        Paint::Bad => Style::new().fg_color(Some(AnsiColor::Red.into())),
        Paint::Header => Style::new().bold(),
    };
    format!("{style}{text}{style:#}")
}

/// The colour of a connection status.
pub fn status_paint(status: ConnectionStatus) -> Paint {
    match status {
        ConnectionStatus::Connected => Paint::Good,
        ConnectionStatus::Connecting
        | ConnectionStatus::Suspend
        | ConnectionStatus::Unconnected => Paint::Warn,
        _ => Paint::Bad,
    }
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC); `-` for 0 (not set).
pub fn time(ms: i64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    rcim_proto::time::utc_datetime(ms)
}

/// `text` on one line: control characters (newlines, escape sequences) escaped.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// What a message says, on one line: a text message's text, `[OBJECT:NAME]` for
/// other types.
pub fn preview(message: &Message) -> String {
    match text_of(message) {
        Some(text) => one_line(&text),
        None => format!("[{}]", one_line(&message.object_name)),
    }
}

/// `text` cut to `max` characters, with `…` when something was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A conversation's other side as a reader sees it: `bob`, `group team-1`,
/// `system news`.
pub fn peer(key: &ConversationKey) -> String {
    match key.kind {
        ConversationType::Private => one_line(&key.target_id),
        kind => format!("{} {}", kind.name(), one_line(&key.target_id)),
    }
}

/// The time a message is shown with: when the server accepted it, else when this
/// daemon stored it (an outgoing message still sending).
pub fn message_time(message: &Message) -> i64 {
    if message.sent_time_ms != 0 {
        message.sent_time_ms
    } else {
        message.received_time_ms
    }
}

/// `2025-11-27 16:05:01  alice → bob: hello`, plus `  (sending)` or `  (failed)`
/// for an outgoing message not yet accepted. `me` is this device's user, when
/// known.
pub fn message_line(message: &Message, me: Option<&str>) -> String {
    let me = one_line(me.unwrap_or("me"));
    let (from, to) = match message.direction {
        Direction::Send => (me, peer(&message.conversation)),
        Direction::Receive => {
            let to = match message.conversation.kind {
                ConversationType::Group | ConversationType::Chatroom => peer(&message.conversation),
                _ => me,
            };
            (one_line(&message.sender), to)
        }
    };
    let state = match (message.direction, message.sent_status) {
        (Direction::Send, SentStatus::Sending) => "  (sending)",
        (Direction::Send, SentStatus::Failed) => "  (failed)",
        _ => "",
    };
    format!(
        "{}  {from} → {to}: {}{state}",
        time(message_time(message)),
        preview(message)
    )
}

/// A message in `--json` output.
#[derive(Debug, Serialize)]
pub struct MessageJson {
    /// The daemon's local id (its sequence number).
    pub id: i64,
    /// The server's id, once it has the message.
    pub uid: Option<String>,
    /// `private`, `group`, `system`, …
    pub conversation_type: &'static str,
    /// The other side of the conversation (peer, group, system sender).
    pub target_id: String,
    /// Who sent it.
    pub sender: String,
    /// `send` or `receive`.
    pub direction: &'static str,
    /// The type, e.g. `RC:TxtMsg`.
    pub object_name: String,
    /// The raw content (JSON by RC convention).
    pub content: String,
    /// The text of a text message; null for other types.
    pub text: Option<String>,
    /// When the server accepted it (ms since the epoch; 0 while sending).
    pub sent_time_ms: i64,
    /// When this daemon stored it (ms since the epoch).
    pub received_time_ms: i64,
    /// `sending`, `failed`, `sent`, `received` or `read`.
    pub sent_status: &'static str,
}

impl From<&Message> for MessageJson {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id,
            uid: m.uid.clone(),
            conversation_type: m.conversation.kind.name(),
            target_id: m.conversation.target_id.clone(),
            sender: m.sender.clone(),
            direction: match m.direction {
                Direction::Send => "send",
                Direction::Receive => "receive",
            },
            object_name: m.object_name.clone(),
            content: m.content.clone(),
            text: text_of(m),
            sent_time_ms: m.sent_time_ms,
            received_time_ms: m.received_time_ms,
            sent_status: match m.sent_status {
                SentStatus::Sending => "sending",
                SentStatus::Failed => "failed",
                SentStatus::Sent => "sent",
                SentStatus::Received => "received",
                SentStatus::Read => "read",
            },
        }
    }
}

/// A conversation in `--json` output.
#[derive(Debug, Serialize)]
pub struct ConversationJson {
    /// `private`, `group`, `system`, …
    pub conversation_type: &'static str,
    /// The other side (peer, group, system sender).
    pub target_id: String,
    /// Messages received and not yet cleared.
    pub unread_count: u32,
    /// The newest message's time (ms since the epoch), for paging with `--before`.
    pub operation_time_ms: i64,
    /// The newest message, if any.
    pub last_message: Option<MessageJson>,
    /// Pinned to the top.
    pub is_top: bool,
    /// RC's push notification level (do-not-disturb): -1, 0 (not set), 1, 2, 4, 5.
    pub notification_level: i32,
    /// The draft kept on this device (empty: none).
    pub draft: String,
}

impl From<&Conversation> for ConversationJson {
    fn from(c: &Conversation) -> Self {
        Self {
            conversation_type: c.key.kind.name(),
            target_id: c.key.target_id.clone(),
            unread_count: c.unread_count,
            operation_time_ms: c.operation_time_ms,
            last_message: c.last_message.as_ref().map(MessageJson::from),
            is_top: c.is_top,
            notification_level: c.notification_level,
            draft: c.draft.clone(),
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use rcim_client::text_content;

    /// A stored text message, for the render tests of every command.
    pub fn message(id: i64, direction: Direction, text: &str) -> Message {
        Message {
            id,
            uid: Some(format!("uid-{id}")),
            conversation: ConversationKey::private("bob"),
            sender: match direction {
                Direction::Send => "alice".to_owned(),
                Direction::Receive => "bob".to_owned(),
            },
            object_name: "RC:TxtMsg".to_owned(),
            content: text_content(text),
            sent_time_ms: 1_764_259_501_000,
            received_time_ms: 1_764_259_501_250,
            direction,
            sent_status: SentStatus::Sent,
            client_msg_id: None,
        }
    }

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(time(1_764_259_501_000), "2025-11-27 16:05:01");
        assert_eq!(time(1_764_259_501_999), "2025-11-27 16:05:01");
        assert_eq!(time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(time(4_102_444_799_000), "2099-12-31 23:59:59");
        assert_eq!(time(-1000), "1969-12-31 23:59:59");
        assert_eq!(time(1), "1970-01-01 00:00:00");
        assert_eq!(time(0), "-");
        // Extreme values do not panic.
        let _ = time(i64::MAX);
        let _ = time(i64::MIN);
    }

    #[test]
    fn control_characters_cannot_break_a_line() {
        assert_eq!(one_line("a\nb\x1b[31mc\td"), "a\\nb\\u{1b}[31mc\\td");
        assert_eq!(one_line("你好 🎉"), "你好 🎉");
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("hello", 5), "hello");
        assert_eq!(truncate("hello!", 5), "hell…");
        assert_eq!(truncate("你好你好你好", 3), "你好…");
    }

    #[test]
    fn message_lines_read_from_sender_to_receiver() {
        let received = message(1, Direction::Receive, "hello\nthere");
        assert_eq!(
            message_line(&received, Some("alice")),
            "2025-11-27 16:05:01  bob → alice: hello\\nthere"
        );
        assert_eq!(
            message_line(&received, None),
            "2025-11-27 16:05:01  bob → me: hello\\nthere"
        );
        let mut sending = message(2, Direction::Send, "hi");
        sending.sent_status = SentStatus::Sending;
        sending.sent_time_ms = 0;
        assert_eq!(
            message_line(&sending, Some("alice")),
            "2025-11-27 16:05:01  alice → bob: hi  (sending)"
        );
        let mut group = message(3, Direction::Receive, "yo");
        group.conversation = ConversationKey::group("team-1");
        group.object_name = "RC:ImgMsg".to_owned();
        assert_eq!(
            message_line(&group, Some("alice")),
            "2025-11-27 16:05:01  bob → group team-1: [RC:ImgMsg]"
        );
    }

    #[test]
    fn message_json_is_snake_case_with_the_text() {
        let value = serde_json::to_value(MessageJson::from(&message(
            7,
            Direction::Receive,
            "hi \"x\"",
        )))
        .unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "id": 7,
                "uid": "uid-7",
                "conversation_type": "private",
                "target_id": "bob",
                "sender": "bob",
                "direction": "receive",
                "object_name": "RC:TxtMsg",
                "content": "{\"content\":\"hi \\\"x\\\"\"}",
                "text": "hi \"x\"",
                "sent_time_ms": 1_764_259_501_000_i64,
                "received_time_ms": 1_764_259_501_250_i64,
                "sent_status": "sent",
            })
        );
    }
}
