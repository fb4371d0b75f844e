//! The store's queries: plain functions of a connection, each one transaction.
//!
//! Encodings in the database: conversation types are RC's numbers; direction 0 send,
//! 1 receive; sent status 0 sending, 1 failed, 2 sent, 3 received, 4 read (RC's
//! order). A message's `id` is an AUTOINCREMENT key, so ids only grow and are never
//! reused: it doubles as the local sequence number that clients resume from.

use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Direction, Message, SentStatus, TimeOrder,
};
use rcim_proto::upstream::InboxEntry;
use rusqlite::{Connection, OptionalExtension, Row, params};

const COLUMNS: &str = "id, uid, conv_type, target_id, sender, object_name, content, sent_time, \
                       received_time, direction, sent_status, client_msg_id";

fn status_code(status: SentStatus) -> i64 {
    match status {
        SentStatus::Sending => 0,
        SentStatus::Failed => 1,
        SentStatus::Sent => 2,
        SentStatus::Received => 3,
        SentStatus::Read => 4,
    }
}

fn bad_value(column: usize, what: &str, value: i64) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Integer,
        format!("unknown {what} {value}").into(),
    )
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let kind: i64 = row.get(2)?;
    let direction: i64 = row.get(9)?;
    let status: i64 = row.get(10)?;
    Ok(Message {
        id: row.get(0)?,
        uid: row.get(1)?,
        conversation: ConversationKey {
            kind: i32::try_from(kind)
                .ok()
                .and_then(ConversationType::from_code)
                .ok_or_else(|| bad_value(2, "conversation type", kind))?,
            target_id: row.get(3)?,
        },
        sender: row.get(4)?,
        object_name: row.get(5)?,
        content: row.get(6)?,
        sent_time_ms: row.get(7)?,
        received_time_ms: row.get(8)?,
        direction: match direction {
            0 => Direction::Send,
            1 => Direction::Receive,
            other => return Err(bad_value(9, "direction", other)),
        },
        sent_status: match status {
            0 => SentStatus::Sending,
            1 => SentStatus::Failed,
            2 => SentStatus::Sent,
            3 => SentStatus::Received,
            4 => SentStatus::Read,
            other => return Err(bad_value(10, "sent status", other)),
        },
        client_msg_id: row.get(11)?,
    })
}

/// One message by local id.
pub fn message(conn: &Connection, id: i64) -> rusqlite::Result<Option<Message>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"),
        [id],
        message_from_row,
    )
    .optional()
}

/// Makes `id` the conversation's last message if it is the newest.
fn touch_conversation(
    conn: &Connection,
    key: &ConversationKey,
    id: i64,
    time: i64,
    unread: i64,
) -> rusqlite::Result<()> {
    // Cached: this runs once per stored message, and re-parsing it cost about a
    // third of the insert path (bench: perf record during sync).
    conn.prepare_cached(
        "INSERT INTO conversations (conv_type, target_id, last_message_id, unread_count, operation_time)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (conv_type, target_id) DO UPDATE SET
            last_message_id = CASE WHEN excluded.operation_time >= operation_time
                                   THEN excluded.last_message_id ELSE last_message_id END,
            operation_time = MAX(operation_time, excluded.operation_time),
            unread_count = unread_count + excluded.unread_count",
    )?
    .execute(params![key.kind.code(), key.target_id, id, unread, time])?;
    Ok(())
}

/// Commits a batch of inbox entries and the sync cursor in one transaction.
/// Returns the messages that were new (an entry whose uid is already stored is
/// skipped: nothing is stored twice).
pub fn insert_incoming(
    conn: &mut Connection,
    entries: &[InboxEntry],
    now_ms: i64,
) -> rusqlite::Result<Vec<Message>> {
    let tx = conn.transaction()?;
    let mut inserted = Vec::with_capacity(entries.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (uid, conv_type, target_id, sender, object_name, content,
                                   sent_time, received_time, direction, sent_status, unread)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, 1)
             ON CONFLICT (uid) DO NOTHING",
        )?;
        for entry in entries {
            let m = &entry.message;
            let changed = insert.execute(params![
                m.uid,
                m.conversation.kind.code(),
                m.conversation.target_id,
                m.sender,
                m.object_name,
                m.content,
                m.sent_time_ms,
                now_ms,
                status_code(SentStatus::Received),
            ])?;
            if changed == 0 {
                continue;
            }
            let id = tx.last_insert_rowid();
            touch_conversation(&tx, &m.conversation, id, m.sent_time_ms, 1)?;
            inserted.push(Message {
                id,
                uid: Some(m.uid.clone()),
                conversation: m.conversation.clone(),
                sender: m.sender.clone(),
                object_name: m.object_name.clone(),
                content: m.content.clone(),
                sent_time_ms: m.sent_time_ms,
                received_time_ms: now_ms,
                direction: Direction::Receive,
                sent_status: SentStatus::Received,
                client_msg_id: None,
            });
        }
    }
    if let Some(max) = entries.iter().map(|e| e.seq).max() {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        tx.execute(
            "UPDATE sync_state SET inbox_seq = MAX(inbox_seq, ?1) WHERE id = 1",
            [max],
        )?;
    }
    tx.commit()?;
    Ok(inserted)
}

/// The last inbox sequence number committed.
pub fn sync_cursor(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: i64 = conn.query_row("SELECT inbox_seq FROM sync_state WHERE id = 1", [], |r| {
        r.get(0)
    })?;
    Ok(u64::try_from(seq).unwrap_or(0))
}

/// An outgoing message to store and queue.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The sending user.
    pub sender: String,
    /// Where to.
    pub conversation: ConversationKey,
    /// The type name.
    pub object_name: String,
    /// The content.
    pub content: String,
    /// The de-duplication id sent upstream.
    pub client_msg_id: String,
}

/// Stores an outgoing message and queues it in the outbox, in one transaction.
pub fn save_outgoing(
    conn: &mut Connection,
    outgoing: &Outgoing,
    now_ms: i64,
) -> rusqlite::Result<Message> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO messages (uid, conv_type, target_id, sender, object_name, content,
                               sent_time, received_time, direction, sent_status, client_msg_id)
         VALUES (NULL, ?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, ?7, ?8)",
        params![
            outgoing.conversation.kind.code(),
            outgoing.conversation.target_id,
            outgoing.sender,
            outgoing.object_name,
            outgoing.content,
            now_ms,
            status_code(SentStatus::Sending),
            outgoing.client_msg_id,
        ],
    )?;
    let id = tx.last_insert_rowid();
    tx.execute("INSERT INTO outbox (message_id) VALUES (?1)", [id])?;
    touch_conversation(&tx, &outgoing.conversation, id, now_ms, 0)?;
    let message = message(&tx, id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    tx.commit()?;
    Ok(message)
}

/// The server accepted an outgoing message: record its uid and time, take it out
/// of the outbox. `None` when no such message is stored.
pub fn mark_sent(
    conn: &mut Connection,
    id: i64,
    uid: &str,
    sent_time_ms: i64,
) -> rusqlite::Result<Option<Message>> {
    let tx = conn.transaction()?;
    let changed = tx.execute(
        "UPDATE messages SET uid = ?2, sent_time = ?3, sent_status = ?4 WHERE id = ?1",
        params![id, uid, sent_time_ms, status_code(SentStatus::Sent)],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    tx.execute("DELETE FROM outbox WHERE message_id = ?1", [id])?;
    let stored = message(&tx, id)?;
    if let Some(m) = &stored {
        touch_conversation(&tx, &m.conversation, id, sent_time_ms, 0)?;
    }
    tx.commit()?;
    Ok(stored)
}

/// The server refused an outgoing message for good: mark it failed and take it out
/// of the outbox.
pub fn mark_failed(conn: &mut Connection, id: i64) -> rusqlite::Result<Option<Message>> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE messages SET sent_status = ?2 WHERE id = ?1",
        params![id, status_code(SentStatus::Failed)],
    )?;
    tx.execute("DELETE FROM outbox WHERE message_id = ?1", [id])?;
    let stored = message(&tx, id)?;
    tx.commit()?;
    Ok(stored)
}

/// Every queued outgoing message, oldest first.
pub fn outbox(conn: &Connection) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE id IN (SELECT message_id FROM outbox) ORDER BY id"
    ))?;
    stmt.query_map([], message_from_row)?.collect()
}

/// RC's `getMessages` from the local database.
pub fn messages(
    conn: &Connection,
    key: &ConversationKey,
    sent_time_ms: i64,
    order: TimeOrder,
    count: u32,
) -> rusqlite::Result<Vec<Message>> {
    let sql = match order {
        TimeOrder::Before => format!(
            "SELECT {COLUMNS} FROM messages
             WHERE conv_type = ?1 AND target_id = ?2 AND (?3 <= 0 OR sent_time < ?3)
             ORDER BY sent_time DESC, id DESC LIMIT ?4"
        ),
        TimeOrder::After => format!(
            "SELECT {COLUMNS} FROM messages
             WHERE conv_type = ?1 AND target_id = ?2 AND sent_time > ?3
             ORDER BY sent_time ASC, id ASC LIMIT ?4"
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.query_map(
        params![key.kind.code(), key.target_id, sent_time_ms, count],
        message_from_row,
    )?
    .collect()
}

/// RC's `getConversations`: newest first, optionally only older than `start_time_ms`.
pub fn conversations(
    conn: &Connection,
    types: &[ConversationType],
    start_time_ms: i64,
    count: u32,
) -> rusqlite::Result<Vec<Conversation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT conv_type, target_id, last_message_id, unread_count, operation_time
         FROM conversations
         WHERE (?1 <= 0 OR operation_time < ?1)
         ORDER BY operation_time DESC, last_message_id DESC",
    )?;
    let rows = stmt.query_map([start_time_ms], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, target_id, last, unread, time) = row?;
        let Some(kind) = i32::try_from(kind)
            .ok()
            .and_then(ConversationType::from_code)
        else {
            return Err(bad_value(0, "conversation type", kind));
        };
        if !types.is_empty() && !types.contains(&kind) {
            continue;
        }
        out.push(Conversation {
            key: ConversationKey { kind, target_id },
            unread_count: u32::try_from(unread).unwrap_or(0),
            last_message: message(conn, last)?,
            operation_time_ms: time,
        });
        if out.len() >= count as usize {
            break;
        }
    }
    Ok(out)
}

/// RC's `clearUnreadCount`: received messages up to `timestamp_ms` (0: all) are read.
pub fn clear_unread(
    conn: &mut Connection,
    key: &ConversationKey,
    timestamp_ms: i64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE messages SET unread = 0
         WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1 AND (?3 <= 0 OR sent_time <= ?3)",
        params![key.kind.code(), key.target_id, timestamp_ms],
    )?;
    tx.execute(
        "UPDATE conversations SET unread_count =
            (SELECT COUNT(*) FROM messages
             WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1)
         WHERE conv_type = ?1 AND target_id = ?2",
        params![key.kind.code(), key.target_id],
    )?;
    tx.commit()
}

/// Messages stored after local id `after`, in order (for replay to a client).
pub fn messages_after(conn: &Connection, after: i64, limit: u32) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE id > ?1 AND direction = 1 ORDER BY id LIMIT ?2"
    ))?;
    stmt.query_map(params![after, limit], message_from_row)?
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::message::WireMessage;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::schema::open(&dir.path().join("t.db"), "me").unwrap();
        (dir, conn)
    }

    fn entry(seq: u64, from: &str, time: i64) -> InboxEntry {
        InboxEntry {
            seq,
            message: WireMessage {
                uid: format!("uid-{seq:06}"),
                conversation: ConversationKey::private(from),
                sender: from.into(),
                object_name: "RC:TxtMsg".into(),
                content: format!("{{\"content\":\"m{seq}\"}}"),
                sent_time_ms: time,
            },
        }
    }

    #[test]
    fn incoming_is_stored_once_with_the_cursor() {
        let (_dir, mut conn) = db();
        let batch: Vec<_> = (1..=5).map(|s| entry(s, "bob", 1000 + s as i64)).collect();
        let new = insert_incoming(&mut conn, &batch, 9).unwrap();
        assert_eq!(new.len(), 5);
        assert_eq!(sync_cursor(&conn).unwrap(), 5);
        // The same entries again (a resend after a crash before the ack): nothing new.
        let again = insert_incoming(&mut conn, &batch[2..], 10).unwrap();
        assert!(again.is_empty());
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 5);
        let conv = conversations(&conn, &[], 0, 50).unwrap();
        assert_eq!(conv.len(), 1);
        assert_eq!(conv[0].unread_count, 5);
        assert_eq!(
            conv[0].last_message.as_ref().unwrap().uid.as_deref(),
            Some("uid-000005")
        );
        // Ids grow with every insert and are the replay sequence.
        let after = messages_after(&conn, new[1].id, 100).unwrap();
        assert_eq!(after.len(), 3);
    }

    #[test]
    fn the_cursor_never_goes_back() {
        let (_dir, mut conn) = db();
        insert_incoming(&mut conn, &[entry(10, "bob", 1)], 1).unwrap();
        insert_incoming(&mut conn, &[entry(3, "bob", 1)], 1).unwrap();
        assert_eq!(sync_cursor(&conn).unwrap(), 10);
    }

    #[test]
    fn outgoing_goes_through_the_outbox() {
        let (_dir, mut conn) = db();
        let out = Outgoing {
            sender: "me".into(),
            conversation: ConversationKey::private("bob"),
            object_name: "RC:TxtMsg".into(),
            content: "{}".into(),
            client_msg_id: "c1".into(),
        };
        let saved = save_outgoing(&mut conn, &out, 100).unwrap();
        assert_eq!(saved.sent_status, SentStatus::Sending);
        assert_eq!(saved.direction, Direction::Send);
        assert_eq!(outbox(&conn).unwrap(), vec![saved.clone()]);
        let sent = mark_sent(&mut conn, saved.id, "server-uid", 150)
            .unwrap()
            .unwrap();
        assert_eq!(sent.sent_status, SentStatus::Sent);
        assert_eq!(sent.uid.as_deref(), Some("server-uid"));
        assert_eq!(sent.sent_time_ms, 150);
        assert!(outbox(&conn).unwrap().is_empty());
        assert!(mark_sent(&mut conn, 999, "x", 1).unwrap().is_none());
        // The same client id twice is refused by the database.
        assert!(save_outgoing(&mut conn, &out, 200).is_err());
        let failed = save_outgoing(
            &mut conn,
            &Outgoing {
                client_msg_id: "c2".into(),
                ..out
            },
            300,
        )
        .unwrap();
        let failed = mark_failed(&mut conn, failed.id).unwrap().unwrap();
        assert_eq!(failed.sent_status, SentStatus::Failed);
        assert!(outbox(&conn).unwrap().is_empty());
    }

    #[test]
    fn history_pages_both_ways() {
        let (_dir, mut conn) = db();
        let batch: Vec<_> = (1..=30).map(|s| entry(s, "bob", 1000 + s as i64)).collect();
        insert_incoming(&mut conn, &batch, 1).unwrap();
        let bob = ConversationKey::private("bob");
        let newest = messages(&conn, &bob, 0, TimeOrder::Before, 20).unwrap();
        assert_eq!(newest.len(), 20);
        assert_eq!(newest[0].sent_time_ms, 1030);
        assert_eq!(newest[19].sent_time_ms, 1011);
        let older = messages(&conn, &bob, 1011, TimeOrder::Before, 20).unwrap();
        assert_eq!(older.len(), 10);
        assert_eq!(older[0].sent_time_ms, 1010);
        let newer = messages(&conn, &bob, 1025, TimeOrder::After, 20).unwrap();
        assert_eq!(
            newer.iter().map(|m| m.sent_time_ms).collect::<Vec<_>>(),
            vec![1026, 1027, 1028, 1029, 1030]
        );
        assert!(
            messages(
                &conn,
                &ConversationKey::private("carol"),
                0,
                TimeOrder::Before,
                20
            )
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn conversations_and_unread_counts() {
        let (_dir, mut conn) = db();
        insert_incoming(
            &mut conn,
            &[
                entry(1, "bob", 100),
                entry(2, "carol", 200),
                entry(3, "bob", 300),
            ],
            1,
        )
        .unwrap();
        let all = conversations(&conn, &[], 0, 50).unwrap();
        assert_eq!(
            all.iter()
                .map(|c| c.key.target_id.as_str())
                .collect::<Vec<_>>(),
            vec!["bob", "carol"]
        );
        assert_eq!(all[0].unread_count, 2);
        let older = conversations(&conn, &[], 300, 50).unwrap();
        assert_eq!(older.len(), 1);
        assert!(
            conversations(&conn, &[ConversationType::Group], 0, 50)
                .unwrap()
                .is_empty()
        );
        let bob = ConversationKey::private("bob");
        clear_unread(&mut conn, &bob, 100).unwrap();
        assert_eq!(conversations(&conn, &[], 0, 1).unwrap()[0].unread_count, 1);
        clear_unread(&mut conn, &bob, 0).unwrap();
        assert_eq!(conversations(&conn, &[], 0, 1).unwrap()[0].unread_count, 0);
    }
}
