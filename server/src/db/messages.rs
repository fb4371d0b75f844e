//! Messages and per-user inboxes in SQLite.
//!
//! This module owns the SQL of messaging. [`Db::store_blocking`] stores a batch of
//! [`Outgoing`] messages in **one transaction**: for each it checks the sender's
//! de-duplication key (`sender`, `client_msg_id`), works out the recipients (the
//! target of a private or system message; the members of a group minus the sender,
//! read inside the same transaction so a concurrent quit cannot slip between the
//! check and the fan-out), gives the message a time-ordered UUID v7, and appends
//! one inbox row per recipient with that user's next sequence number. Sequence
//! numbers are read from `inbox_state` once per user per transaction, counted up in
//! memory and written back before the commit, so a group fan-out or a bulk insert
//! costs one commit and each user's numbers stay 1, 2, 3, … with no gaps (the one
//! connection behind [`Db`]'s mutex serialises every transaction).
//!
//! The inbox row carries the conversation **as the recipient sees it**: a private
//! message from alice lands in bob's inbox as (private, alice), a group message as
//! (group, group id), a system message from `news` as (system, news). The one
//! exception is a read-status sync (`RC:SRSMsg`): it lands in the **sender's own**
//! inbox, for its other devices, in the conversation as the sender named it.

use super::{Db, DbError};
use rcim_proto::message::{ConversationKey, ConversationType, READ_SYNC, WireMessage};
use rcim_proto::upstream::InboxEntry;
use rusqlite::{OptionalExtension as _, Transaction, params};
use std::collections::HashMap;

/// A message to store, as its sender addressed it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Who sends it.
    pub sender: String,
    /// Where to: the recipient of a private or system message, the group.
    pub conversation: ConversationKey,
    /// The type name, e.g. `RC:TxtMsg`.
    pub object_name: String,
    /// The content.
    pub content: String,
    /// The sender's de-duplication key (IM clients); `None` for Server API messages.
    pub client_msg_id: Option<String>,
    /// For a group message: refuse it unless the sender is a member (IM clients;
    /// RC's Server API lets non-members send to a group).
    pub sender_must_be_member: bool,
}

/// What became of one [`Outgoing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored and delivered to the inboxes of `recipients` users.
    Accepted {
        /// The new message's id.
        uid: String,
        /// When it was accepted (ms since the Unix epoch).
        sent_time_ms: i64,
        /// How many inbox rows it got.
        recipients: usize,
    },
    /// The sender had already sent this `client_msg_id`: the first acceptance.
    Duplicate {
        /// The first message's id.
        uid: String,
        /// The first message's time.
        sent_time_ms: i64,
    },
    /// A group message from a sender that is not a member.
    NotInGroup,
}

/// The outcome of [`Db::store_blocking`]: one [`Stored`] per message, in order, and
/// each user whose inbox grew with its new last sequence number.
#[derive(Debug, Default)]
pub struct StoreOutcome {
    /// Per message.
    pub stored: Vec<Stored>,
    /// (user, last sequence number) for every inbox that grew.
    pub grown: Vec<(String, u64)>,
}

/// The conversation in which a recipient sees a message `sender` addressed to
/// `conversation`.
pub(crate) fn seen_by_recipient(sender: &str, conversation: &ConversationKey) -> ConversationKey {
    match conversation.kind {
        ConversationType::Group => conversation.clone(),
        kind => ConversationKey {
            kind,
            target_id: sender.to_owned(),
        },
    }
}

/// Converts a stored sequence number (SQLite has only signed integers).
fn seq_from_sql(seq: i64) -> Result<u64, DbError> {
    u64::try_from(seq).map_err(|_| DbError(format!("negative inbox sequence number {seq}")))
}

/// Converts a sequence number for SQLite.
pub(super) fn seq_to_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl Db {
    /// Stores `batch` in one transaction; see the module documentation. Blocking.
    pub fn store_blocking(&self, batch: &[Outgoing], now_ms: i64) -> Result<StoreOutcome, DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let mut seqs = InboxSeqs::default();
        let mut stored = Vec::with_capacity(batch.len());
        for message in batch {
            stored.push(store_one(&tx, &mut seqs, message, now_ms)?);
        }
        let grown = seqs.write_back(&tx)?;
        tx.commit()?;
        Ok(StoreOutcome { stored, grown })
    }

    /// [`Db::store_blocking`] on the blocking pool.
    pub async fn store(&self, batch: Vec<Outgoing>, now_ms: i64) -> Result<StoreOutcome, DbError> {
        self.run(move |db| db.store_blocking(&batch, now_ms)).await
    }

    /// Up to `limit` inbox entries of `user_id` after `since_seq`, in order.
    /// Blocking.
    pub fn inbox_after_blocking(
        &self,
        user_id: &str,
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, DbError> {
        let conn = self.lock();
        let mut statement = conn.prepare_cached(
            "SELECT i.seq, m.uid, i.conv_type, i.target_id, m.sender, m.object_name,
                    m.content, m.sent_time_ms
             FROM inbox i JOIN messages m ON m.uid = i.message_uid
             WHERE i.user_id = ?1 AND i.seq > ?2
             ORDER BY i.seq LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map(params![user_id, seq_to_sql(since_seq), limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i32>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, i64>(7)?,
            ))
        })?;
        let mut entries = Vec::new();
        for row in rows {
            let (seq, uid, kind, target_id, sender, object_name, content, sent_time_ms) = row?;
            let kind = ConversationType::from_code(kind)
                .ok_or_else(|| DbError(format!("unknown conversation type {kind} in the inbox")))?;
            entries.push(InboxEntry {
                seq: seq_from_sql(seq)?,
                message: WireMessage {
                    uid,
                    conversation: ConversationKey { kind, target_id },
                    sender,
                    object_name,
                    content,
                    sent_time_ms,
                },
            });
        }
        Ok(entries)
    }

    /// [`Db::inbox_after_blocking`] on the blocking pool.
    pub async fn inbox_after(
        &self,
        user_id: &str,
        since_seq: u64,
        limit: usize,
    ) -> Result<Vec<InboxEntry>, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.inbox_after_blocking(&user_id, since_seq, limit))
            .await
    }

    /// Records that a client of `user_id` committed everything up to `seq` (the
    /// acknowledged sequence number only moves forward). Returns `false`, recording
    /// nothing, when `seq` lies beyond the user's last sequence number. Blocking.
    pub fn ack_blocking(&self, user_id: &str, seq: u64) -> Result<bool, DbError> {
        if seq == 0 {
            return Ok(true);
        }
        let changed = self.lock().execute(
            "UPDATE inbox_state SET acked_seq = max(acked_seq, ?2)
             WHERE user_id = ?1 AND last_seq >= ?2",
            params![user_id, seq_to_sql(seq)],
        )?;
        Ok(changed == 1)
    }

    /// [`Db::ack_blocking`] on the blocking pool.
    pub async fn ack(&self, user_id: &str, seq: u64) -> Result<bool, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.ack_blocking(&user_id, seq)).await
    }

    /// The last inbox sequence number of `user_id` and the highest one acknowledged
    /// (0, 0 for a user that never received anything). Blocking.
    pub fn inbox_state_blocking(&self, user_id: &str) -> Result<(u64, u64), DbError> {
        let state = self
            .lock()
            .query_row(
                "SELECT last_seq, acked_seq FROM inbox_state WHERE user_id = ?1",
                [user_id],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            )
            .optional()?;
        match state {
            Some((last, acked)) => Ok((seq_from_sql(last)?, seq_from_sql(acked)?)),
            None => Ok((0, 0)),
        }
    }

    /// [`Db::inbox_state_blocking`] on the blocking pool.
    pub async fn inbox_state(&self, user_id: &str) -> Result<(u64, u64), DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.inbox_state_blocking(&user_id)).await
    }

    /// Every (seq, message uid) in the inbox of `user_id`, in order. Blocking.
    pub fn inbox_uids_blocking(&self, user_id: &str) -> Result<Vec<(u64, String)>, DbError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT seq, message_uid FROM inbox WHERE user_id = ?1 ORDER BY seq")?;
        let rows = statement
            .query_map([user_id], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))?
            .collect::<Result<Vec<(i64, String)>, _>>()?;
        rows.into_iter()
            .map(|(seq, uid)| Ok((seq_from_sql(seq)?, uid)))
            .collect()
    }

    /// [`Db::inbox_uids_blocking`] on the blocking pool.
    pub async fn inbox_uids(&self, user_id: &str) -> Result<Vec<(u64, String)>, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.inbox_uids_blocking(&user_id)).await
    }

    /// Every (client message id, uid) that `sender` published as an IM client, in
    /// the order they were accepted. Blocking.
    pub fn messages_from_blocking(&self, sender: &str) -> Result<Vec<(String, String)>, DbError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT client_msg_id, uid FROM messages
             WHERE sender = ?1 AND client_msg_id IS NOT NULL ORDER BY uid",
        )?;
        let rows = statement
            .query_map([sender], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// [`Db::messages_from_blocking`] on the blocking pool.
    pub async fn messages_from(&self, sender: &str) -> Result<Vec<(String, String)>, DbError> {
        let sender = sender.to_owned();
        self.run(move |db| db.messages_from_blocking(&sender)).await
    }
}

/// Stores one message inside `tx`.
fn store_one(
    tx: &Transaction<'_>,
    seqs: &mut InboxSeqs,
    message: &Outgoing,
    now_ms: i64,
) -> Result<Stored, DbError> {
    if let Some(client_msg_id) = &message.client_msg_id {
        let first = tx
            .prepare_cached(
                "SELECT uid, sent_time_ms FROM messages WHERE sender = ?1 AND client_msg_id = ?2",
            )?
            .query_row(params![message.sender, client_msg_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        if let Some((uid, sent_time_ms)) = first {
            return Ok(Stored::Duplicate { uid, sent_time_ms });
        }
    }
    let target = &message.conversation.target_id;
    // A read-status sync goes to the sender's own inbox (its other devices), in
    // the conversation as the sender named it.
    let self_sync = message.object_name == READ_SYNC;
    let recipients: Vec<String> = match message.conversation.kind {
        _ if self_sync => vec![message.sender.clone()],
        ConversationType::Group => {
            let mut members = tx
                .prepare_cached("SELECT user_id FROM group_members WHERE group_id = ?1")?
                .query_map([target], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let before = members.len();
            members.retain(|m| *m != message.sender);
            if message.sender_must_be_member && members.len() == before {
                return Ok(Stored::NotInGroup);
            }
            members
        }
        _ => vec![target.clone()],
    };
    let uid = uuid::Uuid::now_v7().to_string();
    tx.prepare_cached(
        "INSERT INTO messages (uid, sender, conv_type, target_id, object_name, content,
                               sent_time_ms, client_msg_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        uid,
        message.sender,
        message.conversation.kind.code(),
        target,
        message.object_name,
        message.content,
        now_ms,
        message.client_msg_id,
    ])?;
    let seen = if self_sync {
        message.conversation.clone()
    } else {
        seen_by_recipient(&message.sender, &message.conversation)
    };
    let mut insert = tx.prepare_cached(
        "INSERT INTO inbox (user_id, seq, message_uid, conv_type, target_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for user in &recipients {
        let seq = seqs.next(tx, user)?;
        insert.execute(params![
            user,
            seq_to_sql(seq),
            uid,
            seen.kind.code(),
            seen.target_id
        ])?;
    }
    Ok(Stored::Accepted {
        uid,
        sent_time_ms: now_ms,
        recipients: recipients.len(),
    })
}

/// The users' last sequence numbers during one transaction: read once, counted up
/// in memory, written back before the commit.
#[derive(Default)]
pub(super) struct InboxSeqs {
    last: HashMap<String, u64>,
}

impl InboxSeqs {
    /// The next sequence number of `user`.
    pub(super) fn next(&mut self, tx: &Transaction<'_>, user: &str) -> Result<u64, DbError> {
        if let Some(last) = self.last.get_mut(user) {
            *last += 1;
            return Ok(*last);
        }
        let stored: Option<i64> = tx
            .prepare_cached("SELECT last_seq FROM inbox_state WHERE user_id = ?1")?
            .query_row([user], |row| row.get(0))
            .optional()?;
        let next = seq_from_sql(stored.unwrap_or(0))? + 1;
        self.last.insert(user.to_owned(), next);
        Ok(next)
    }

    /// Writes the new last sequence numbers; returns them.
    pub(super) fn write_back(self, tx: &Transaction<'_>) -> Result<Vec<(String, u64)>, DbError> {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO inbox_state (user_id, last_seq) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET last_seq = excluded.last_seq",
        )?;
        for (user, last) in &self.last {
            upsert.execute(params![user, seq_to_sql(*last)])?;
        }
        Ok(self.last.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        (db, dir)
    }

    fn outgoing(sender: &str, conversation: ConversationKey, id: Option<&str>) -> Outgoing {
        Outgoing {
            sender: sender.into(),
            conversation,
            object_name: "RC:TxtMsg".into(),
            content: "{}".into(),
            client_msg_id: id.map(Into::into),
            sender_must_be_member: true,
        }
    }

    #[test]
    fn private_messages_number_each_inbox_and_deduplicate() {
        let (db, _dir) = db();
        let batch = [
            outgoing("alice", ConversationKey::private("bob"), Some("c1")),
            outgoing("alice", ConversationKey::private("bob"), Some("c2")),
            outgoing("carol", ConversationKey::private("bob"), Some("c1")),
            outgoing("alice", ConversationKey::private("bob"), Some("c1")),
        ];
        let outcome = db.store_blocking(&batch, 7).unwrap();
        assert!(matches!(
            outcome.stored[0],
            Stored::Accepted { recipients: 1, .. }
        ));
        let Stored::Accepted { uid: first, .. } = &outcome.stored[0] else {
            unreachable!()
        };
        assert_eq!(
            outcome.stored[3],
            Stored::Duplicate {
                uid: first.clone(),
                sent_time_ms: 7
            },
            "same sender, same client id: the first acceptance"
        );
        assert_eq!(outcome.grown, vec![("bob".to_owned(), 3)]);
        let entries = db.inbox_after_blocking("bob", 0, 10).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!(
            entries[0].message.conversation,
            ConversationKey::private("alice")
        );
        assert_eq!(
            entries[2].message.conversation,
            ConversationKey::private("carol")
        );
        assert_eq!(db.inbox_after_blocking("bob", 2, 10).unwrap().len(), 1);
        assert_eq!(db.inbox_after_blocking("bob", 0, 2).unwrap().len(), 2);
        assert_eq!(db.messages_from_blocking("alice").unwrap().len(), 2);

        // A later transaction continues the numbering.
        db.store_blocking(
            &[outgoing("dave", ConversationKey::private("bob"), None)],
            8,
        )
        .unwrap();
        assert_eq!(db.inbox_state_blocking("bob").unwrap(), (4, 0));
    }

    #[test]
    fn acks_move_forward_within_the_inbox() {
        let (db, _dir) = db();
        assert!(db.ack_blocking("bob", 0).unwrap());
        assert!(!db.ack_blocking("bob", 1).unwrap(), "nothing to ack yet");
        let batch = vec![outgoing("alice", ConversationKey::private("bob"), None); 3];
        db.store_blocking(&batch, 1).unwrap();
        assert!(db.ack_blocking("bob", 2).unwrap());
        assert!(db.ack_blocking("bob", 1).unwrap());
        assert_eq!(db.inbox_state_blocking("bob").unwrap(), (3, 2));
        assert!(!db.ack_blocking("bob", 4).unwrap());
        assert_eq!(db.inbox_state_blocking("bob").unwrap(), (3, 2));
    }
}
