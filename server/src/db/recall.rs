//! Recalls in SQLite: one transaction replaces the message and tells every device.
//!
//! [`Db::recall_blocking`] finds the message by uid, checks that the operator sent
//! it, replaces its type and content in `messages` with the `RC:RcNtf`
//! notification (uid and sent time kept; the original content is overwritten, so
//! remote history and every later sync see only the notification), and stores an
//! `RC:RcCmd` message naming it with one inbox row for every user that received
//! the original (in the conversation that user saw it in) and one for the sender
//! (for its other devices and the one that asked). A message already recalled is
//! answered as done and told to nobody again, so a recall retried after a drop
//! is not a second recall.

use super::messages::{InboxSeqs, seq_to_sql};
use super::{Db, DbError};
use rcim_proto::message::{ConversationKey, ConversationType, WireMessage};
use rcim_proto::recall::{
    RECALL_COMMAND, RECALL_NOTIFICATION, RecallCommand, notification_content,
};
use rusqlite::{OptionalExtension as _, params};

/// What a recall did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recalled {
    /// Recalled now, or earlier: the message as stored now, addressed as its
    /// sender addressed it, and each user whose inbox grew with its new last
    /// sequence number (empty for a repeat).
    Done {
        /// The message, `RC:RcNtf` now.
        message: WireMessage,
        /// (user, last sequence number) for every inbox that grew.
        grown: Vec<(String, u64)>,
    },
    /// No message has this uid, or its sender is not the operator (RC answers
    /// both with 25101).
    NotFound,
}

impl Db {
    /// Recalls message `uid` on behalf of `operator` at `now_ms`; see the module
    /// documentation. `expected`, when given, is the conversation type, target
    /// (as the sender addressed it) and sent time the caller believes the
    /// message has (the Server API's form): a mismatch is [`Recalled::NotFound`].
    /// Blocking.
    pub fn recall_blocking(
        &self,
        operator: &str,
        uid: &str,
        expected: Option<(ConversationKey, i64)>,
        is_admin: bool,
        is_delete: bool,
        now_ms: i64,
    ) -> Result<Recalled, DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let found = tx
            .prepare_cached(
                "SELECT sender, conv_type, target_id, object_name, content, sent_time_ms
                 FROM messages WHERE uid = ?1",
            )?
            .query_row([uid], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i32>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                ))
            })
            .optional()?;
        let Some((sender, kind, target_id, object_name, content, sent_time_ms)) = found else {
            return Ok(Recalled::NotFound);
        };
        let kind = ConversationType::from_code(kind)
            .ok_or_else(|| DbError::other(format!("unknown conversation type {kind}")))?;
        let addressed = ConversationKey { kind, target_id };
        let mismatch = expected
            .as_ref()
            .is_some_and(|(key, time)| *key != addressed || *time != sent_time_ms);
        if sender != operator || object_name == RECALL_COMMAND || mismatch {
            return Ok(Recalled::NotFound);
        }
        let wire = |object_name: String, content: String| WireMessage {
            uid: uid.to_owned(),
            conversation: addressed.clone(),
            sender: sender.clone(),
            object_name,
            content,
            sent_time_ms,
        };
        if object_name == RECALL_NOTIFICATION {
            return Ok(Recalled::Done {
                message: wire(object_name, content),
                grown: Vec::new(),
            });
        }
        let notification =
            notification_content(operator, now_ms, &object_name, is_admin, is_delete);
        tx.prepare_cached("UPDATE messages SET object_name = ?2, content = ?3 WHERE uid = ?1")?
            .execute(params![uid, RECALL_NOTIFICATION, notification])?;
        // Who must hear of it: every inbox that holds the message, in the
        // conversation it was seen in, and the sender, in the conversation as
        // addressed.
        let mut readers = tx
            .prepare_cached(
                "SELECT user_id, conv_type, target_id FROM inbox WHERE message_uid = ?1
                 ORDER BY user_id",
            )?
            .query_map([uid], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i32>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        readers.retain(|(user, _, _)| *user != sender);
        readers.push((
            sender.clone(),
            addressed.kind.code(),
            addressed.target_id.clone(),
        ));
        let command = RecallCommand {
            message_uid: uid.to_owned(),
            conversation_type: addressed.kind.code(),
            target_id: addressed.target_id.clone(),
            sent_time: sent_time_ms,
            is_admin,
            is_delete,
        };
        let command_uid = uuid::Uuid::now_v7().to_string();
        tx.prepare_cached(
            "INSERT INTO messages (uid, sender, conv_type, target_id, object_name, content,
                                   sent_time_ms, client_msg_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
        )?
        .execute(params![
            command_uid,
            operator,
            addressed.kind.code(),
            addressed.target_id,
            RECALL_COMMAND,
            command.to_content(),
            now_ms,
        ])?;
        let mut seqs = InboxSeqs::default();
        let mut insert = tx.prepare_cached(
            "INSERT INTO inbox (user_id, seq, message_uid, conv_type, target_id)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (user, kind, target) in &readers {
            let seq = seqs.next(&tx, user)?;
            insert.execute(params![user, seq_to_sql(seq), command_uid, kind, target])?;
        }
        drop(insert);
        let grown = seqs.write_back(&tx)?;
        tx.commit()?;
        Ok(Recalled::Done {
            message: wire(RECALL_NOTIFICATION.to_owned(), notification),
            grown,
        })
    }

    /// The uids of the `RC:RcCmd` entries in the inbox of `user_id`, in order.
    /// Blocking.
    pub fn recall_commands_blocking(&self, user_id: &str) -> Result<Vec<String>, DbError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT i.message_uid FROM inbox i JOIN messages m ON m.uid = i.message_uid
             WHERE i.user_id = ?1 AND m.object_name = ?2 ORDER BY i.seq",
        )?;
        let uids = statement
            .query_map(params![user_id, RECALL_COMMAND], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(uids)
    }

    /// [`Db::recall_commands_blocking`] on the blocking pool.
    pub async fn recall_commands(&self, user_id: &str) -> Result<Vec<String>, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.recall_commands_blocking(&user_id))
            .await
    }

    /// [`Db::recall_blocking`] on the blocking pool.
    pub async fn recall(
        &self,
        operator: String,
        uid: String,
        expected: Option<(ConversationKey, i64)>,
        is_admin: bool,
        is_delete: bool,
        now_ms: i64,
    ) -> Result<Recalled, DbError> {
        self.run(move |db| {
            db.recall_blocking(&operator, &uid, expected, is_admin, is_delete, now_ms)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Outgoing, Stored};

    fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        (db, dir)
    }

    fn text(sender: &str, to: ConversationKey, words: &str) -> Outgoing {
        Outgoing {
            sender: sender.into(),
            conversation: to,
            object_name: "RC:TxtMsg".into(),
            content: format!(r#"{{"content":"{words}"}}"#),
            client_msg_id: None,
            sender_must_be_member: false,
        }
    }

    fn uid_of(stored: &Stored) -> String {
        match stored {
            Stored::Accepted { uid, .. } => uid.clone(),
            other => panic!("not accepted: {other:?}"),
        }
    }

    #[test]
    fn a_recall_replaces_the_message_and_reaches_both_sides_once() {
        let (db, _dir) = db();
        let out = db
            .store_blocking(
                &[text("alice", ConversationKey::private("bob"), "secret")],
                10,
            )
            .unwrap();
        let uid = uid_of(&out.stored[0]);
        // Not the sender, and an unknown uid: 25101 in RC's terms.
        assert_eq!(
            db.recall_blocking("bob", &uid, None, false, false, 20)
                .unwrap(),
            Recalled::NotFound
        );
        assert_eq!(
            db.recall_blocking("alice", "nope", None, false, false, 20)
                .unwrap(),
            Recalled::NotFound
        );
        // The wrong sent time in the Server API's form.
        let wrong = Some((ConversationKey::private("bob"), 11));
        assert_eq!(
            db.recall_blocking("alice", &uid, wrong, false, false, 20)
                .unwrap(),
            Recalled::NotFound
        );
        let right = Some((ConversationKey::private("bob"), 10));
        let Recalled::Done { message, mut grown } = db
            .recall_blocking("alice", &uid, right, false, false, 20)
            .unwrap()
        else {
            panic!("not recalled")
        };
        grown.sort();
        assert_eq!(grown, vec![("alice".into(), 1), ("bob".into(), 2)]);
        assert_eq!(message.object_name, RECALL_NOTIFICATION);
        assert_eq!(
            (message.uid.as_str(), message.sent_time_ms),
            (uid.as_str(), 10)
        );
        assert!(!message.content.contains("secret"));
        // Bob's inbox: the original (now the notification), then the command.
        let bob = db.inbox_after_blocking("bob", 0, 10).unwrap();
        assert_eq!(bob.len(), 2);
        assert_eq!(bob[0].message.object_name, RECALL_NOTIFICATION);
        assert_eq!(bob[1].message.object_name, RECALL_COMMAND);
        assert_eq!(
            bob[1].message.conversation,
            ConversationKey::private("alice")
        );
        let command = RecallCommand::parse(&bob[1].message.content).unwrap();
        assert_eq!(command.message_uid, uid);
        let alice = db.inbox_after_blocking("alice", 0, 10).unwrap();
        assert_eq!(
            alice[0].message.conversation,
            ConversationKey::private("bob")
        );
        // A repeat is done, and nobody hears of it again.
        let again = db
            .recall_blocking("alice", &uid, None, false, false, 30)
            .unwrap();
        assert!(matches!(again, Recalled::Done { ref grown, .. } if grown.is_empty()));
        assert_eq!(db.inbox_after_blocking("bob", 0, 10).unwrap().len(), 2);
        // No copy of the original text is left in the table.
        let left: i64 = db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE content LIKE '%secret%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
    }
}
