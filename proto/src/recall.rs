//! Recall in RC's shapes: the command that travels (`RC:RcCmd`) and the
//! notification that replaces the recalled message everywhere (`RC:RcNtf`).
//!
//! A recall reaches every device of both sides as an ordinary inbox entry whose
//! type is [`RECALL_COMMAND`] and whose content names the recalled message's uid
//! ([`RecallCommand`]); the server and each daemon then replace the message's type
//! and content with [`RECALL_NOTIFICATION`] and [`notification_content`], keeping
//! its uid and sent time. The server and the daemons build that content from the
//! same three facts (who recalled, when, the original type), here, so every copy
//! of a recalled message is byte for byte the same and none keeps the original
//! content (RC's notification may carry the original text for re-editing; rcim's
//! never does, see docs/DECISIONS.md).

use crate::message::ConversationType;
use serde::{Deserialize, Serialize};

/// RC's recall command object name (`RecallCommandMessage`).
pub const RECALL_COMMAND: &str = "RC:RcCmd";

/// RC's recall notification object name (`RecallNotificationMessage`).
pub const RECALL_NOTIFICATION: &str = "RC:RcNtf";

/// The content of an `RC:RcCmd` message, in RC's field names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallCommand {
    /// The recalled message's uid.
    #[serde(rename = "messageUId")]
    pub message_uid: String,
    /// Its conversation type (RC's number).
    #[serde(rename = "conversationType")]
    pub conversation_type: i32,
    /// Its target, as its sender addressed it.
    #[serde(rename = "targetId")]
    pub target_id: String,
    /// Its sent time (ms).
    #[serde(rename = "sentTime")]
    pub sent_time: i64,
    /// Whether an administrator recalled it.
    #[serde(rename = "isAdmin", default)]
    pub is_admin: bool,
    /// Whether the message is to be deleted rather than replaced (rcim replaces it
    /// either way and keeps the flag in the notification).
    #[serde(rename = "isDelete", default)]
    pub is_delete: bool,
}

impl RecallCommand {
    /// The command's JSON content.
    pub fn to_content(&self) -> String {
        // A struct of strings, integers and booleans always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a command's content; `None` when it is not one (then the entry is
    /// kept as an ordinary message, never dropped).
    ///
    /// ```
    /// use rcim_proto::recall::RecallCommand;
    /// let cmd = RecallCommand::parse(r#"{"messageUId":"u1","conversationType":1,"targetId":"bob","sentTime":5}"#).unwrap();
    /// assert_eq!(cmd.message_uid, "u1");
    /// assert!(RecallCommand::parse("{}").is_none());
    /// ```
    pub fn parse(content: &str) -> Option<Self> {
        serde_json::from_str::<Self>(content)
            .ok()
            .filter(|c| !c.message_uid.is_empty())
    }

    /// The conversation type, when RC's number is known.
    pub fn kind(&self) -> Option<ConversationType> {
        ConversationType::from_code(self.conversation_type)
    }
}

/// The content of the `RC:RcNtf` that replaces a recalled message: who recalled
/// it, when, and its original type; never its original content.
///
/// ```
/// let c = rcim_proto::recall::notification_content("alice", 1_700, "RC:TxtMsg", false, false);
/// // Keys in a fixed (alphabetical) order, so every copy is the same bytes.
/// assert_eq!(
///     c,
///     r#"{"isAdmin":false,"isDelete":false,"operatorId":"alice","originalObjectName":"RC:TxtMsg","recallTime":1700}"#
/// );
/// ```
pub fn notification_content(
    operator: &str,
    recall_time_ms: i64,
    original_object_name: &str,
    is_admin: bool,
    is_delete: bool,
) -> String {
    serde_json::json!({
        "operatorId": operator,
        "recallTime": recall_time_ms,
        "originalObjectName": original_object_name,
        "isAdmin": is_admin,
        "isDelete": is_delete,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_round_trips_in_rc_field_names() {
        let cmd = RecallCommand {
            message_uid: "u-1".into(),
            conversation_type: 2,
            target_id: "team".into(),
            sent_time: 42,
            is_admin: false,
            is_delete: true,
        };
        let text = cmd.to_content();
        assert!(text.contains(r#""messageUId":"u-1""#), "{text}");
        assert_eq!(RecallCommand::parse(&text), Some(cmd.clone()));
        assert_eq!(cmd.kind(), Some(ConversationType::Group));
        for not_a_command in [
            "",
            "null",
            "[]",
            r#"{"messageUId":""}"#,
            "{\"content\":\"hi\"}",
        ] {
            assert_eq!(RecallCommand::parse(not_a_command), None, "{not_a_command}");
        }
    }

    #[test]
    fn the_notification_escapes_what_it_quotes() {
        let c = notification_content("a\"b", 1, "X:Y", true, false);
        let v: serde_json::Value = serde_json::from_str(&c).unwrap();
        assert_eq!(v["operatorId"], "a\"b");
        assert_eq!(v["isAdmin"], true);
    }
}
