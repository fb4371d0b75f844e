//! Remote history: pages of one conversation, read from `messages`.
//!
//! The server stores each message once, as its sender addressed it, so a user's
//! conversation is: for a private or system conversation with `peer`, what the
//! user sent to `peer` plus what `peer` sent to the user (this user's messages
//! from every device included); for a group, everything sent to the group. Recall
//! commands (`RC:RcCmd`) are not history; recalled messages are already
//! `RC:RcNtf` in the table. Each page is newest first, by (sent time, uid): uids
//! are time-ordered UUID v7s, so the order is total and stable.

use super::{Db, DbError};
use rcim_proto::message::{ConversationKey, ConversationType, WireMessage};
use rcim_proto::recall::RECALL_COMMAND;
use rusqlite::params;

/// One page of a conversation's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    /// Newest first, each addressed from the reader's side.
    pub messages: Vec<WireMessage>,
    /// Whether older messages remain.
    pub has_more: bool,
}

impl Db {
    /// Up to `count` messages of `conversation`, as `user` sees it, sent before
    /// `before_ms` (0: the newest), newest first. Blocking.
    pub fn history_blocking(
        &self,
        user: &str,
        conversation: &ConversationKey,
        before_ms: i64,
        count: u32,
    ) -> Result<HistoryPage, DbError> {
        let conn = self.lock();
        let before = if before_ms <= 0 { i64::MAX } else { before_ms };
        let limit = i64::from(count) + 1;
        let peer = conversation.target_id.as_str();
        let kind = conversation.kind.code();
        let mut statement = match conversation.kind {
            ConversationType::Group => conn.prepare_cached(
                "SELECT uid, sender, object_name, content, sent_time_ms FROM messages
                 WHERE conv_type = ?1 AND target_id = ?2 AND sent_time_ms < ?4
                   AND object_name != ?5 AND ?3 = ?3
                 ORDER BY sent_time_ms DESC, uid DESC LIMIT ?6",
            )?,
            _ => conn.prepare_cached(
                "SELECT uid, sender, object_name, content, sent_time_ms FROM (
                    SELECT * FROM messages
                    WHERE conv_type = ?1 AND target_id = ?2 AND sender = ?3
                      AND sent_time_ms < ?4
                    UNION ALL
                    SELECT * FROM messages
                    WHERE conv_type = ?1 AND target_id = ?3 AND sender = ?2
                      AND sent_time_ms < ?4 AND ?2 != ?3)
                 WHERE object_name != ?5
                 ORDER BY sent_time_ms DESC, uid DESC LIMIT ?6",
            )?,
        };
        let mut messages = statement
            .query_map(
                params![kind, peer, user, before, RECALL_COMMAND, limit],
                |row| {
                    Ok(WireMessage {
                        uid: row.get(0)?,
                        conversation: conversation.clone(),
                        sender: row.get(1)?,
                        object_name: row.get(2)?,
                        content: row.get(3)?,
                        sent_time_ms: row.get(4)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        let has_more = messages.len() > count as usize;
        messages.truncate(count as usize);
        Ok(HistoryPage { messages, has_more })
    }

    /// [`Db::history_blocking`] on the blocking pool.
    pub async fn history(
        &self,
        user: String,
        conversation: ConversationKey,
        before_ms: i64,
        count: u32,
    ) -> Result<HistoryPage, DbError> {
        self.run(move |db| db.history_blocking(&user, &conversation, before_ms, count))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Outgoing;

    fn text(sender: &str, to: ConversationKey, n: u32) -> Outgoing {
        Outgoing {
            sender: sender.into(),
            conversation: to,
            object_name: "RC:TxtMsg".into(),
            content: format!(r#"{{"content":"m{n}"}}"#),
            client_msg_id: None,
            sender_must_be_member: false,
        }
    }

    #[test]
    fn both_sides_of_a_private_conversation_page_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        for n in 0..10u32 {
            let (from, to) = if n % 2 == 0 {
                ("alice", "bob")
            } else {
                ("bob", "alice")
            };
            db.store_blocking(
                &[text(from, ConversationKey::private(to), n)],
                100 + i64::from(n),
            )
            .unwrap();
        }
        // Someone else's conversation with bob is not alice's.
        db.store_blocking(&[text("carol", ConversationKey::private("bob"), 99)], 105)
            .unwrap();
        let bob = ConversationKey::private("bob");
        let page = db.history_blocking("alice", &bob, 0, 4).unwrap();
        assert!(page.has_more);
        let times: Vec<i64> = page.messages.iter().map(|m| m.sent_time_ms).collect();
        assert_eq!(times, vec![109, 108, 107, 106]);
        assert!(page.messages.iter().all(|m| m.conversation == bob));
        let rest = db.history_blocking("alice", &bob, 106, 100).unwrap();
        assert_eq!(rest.messages.len(), 6);
        assert!(!rest.has_more);
        assert_eq!(
            rest.messages
                .iter()
                .map(|m| m.sender.as_str())
                .collect::<Vec<_>>(),
            vec!["bob", "alice", "bob", "alice", "bob", "alice"]
        );
        // A recall leaves the notification, never the command.
        let uid = page.messages[0].uid.clone();
        db.recall_blocking("bob", &uid, None, false, false, 200)
            .unwrap();
        let page = db.history_blocking("alice", &bob, 0, 100).unwrap();
        assert_eq!(page.messages.len(), 10);
        assert_eq!(page.messages[0].object_name, "RC:RcNtf");
        assert_eq!(page.messages[0].uid, uid);
    }
}
