//! The store's queries: plain functions of a connection, each one transaction.
//!
//! Encodings in the database: conversation types are RC's numbers; direction 0 send,
//! 1 receive; sent status 0 sending, 1 failed, 2 sent, 3 received, 4 read (RC's
//! order). A message's `id` is an AUTOINCREMENT key, so ids only grow and are never
//! reused: it doubles as the local sequence number that clients resume from.

use rcim_proto::ipc::SearchQuery;
use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Direction, Message, SentStatus, TimeOrder,
};
use rcim_proto::recall::{
    RECALL_COMMAND, RECALL_NOTIFICATION, RecallCommand, notification_content,
};
use rcim_proto::upstream::InboxEntry;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

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
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE id = ?1"))?
        .query_row([id], message_from_row)
        .optional()
}

/// Makes `id` the conversation's last message if it is the newest, and adds
/// `unread` to its unread count. Called once per conversation per transaction:
/// a batch of messages folds its touches into one (see [`ConversationTouch`]).
fn touch_conversation(
    conn: &Connection,
    key: &ConversationKey,
    id: i64,
    time: i64,
    unread: i64,
) -> rusqlite::Result<()> {
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

/// The touches of one conversation by a batch, folded into one. Applying the
/// folded touch gives what applying each message's touch in order gives: the
/// last message is the newest by time, the later one on a tie (a touch replaces
/// the last message when its time is `>=` the conversation's), and the unread
/// count grows by the number of messages.
#[derive(Debug)]
struct ConversationTouch {
    key: ConversationKey,
    id: i64,
    time: i64,
    unread: i64,
}

/// Folds a message (`id`, `time`, in insertion order) into the touches of the batch.
fn fold_touch(touches: &mut Vec<ConversationTouch>, key: &ConversationKey, id: i64, time: i64) {
    // A batch touches one conversation or a few: a linear scan beats a map.
    if let Some(touch) = touches.iter_mut().find(|t| t.key == *key) {
        if time >= touch.time {
            touch.id = id;
            touch.time = time;
        }
        touch.unread += 1;
    } else {
        touches.push(ConversationTouch {
            key: key.clone(),
            id,
            time,
            unread: 1,
        });
    }
}

/// Rows per multi-row `INSERT`, largest first: a batch is cut into statements of
/// these sizes, so at most four statement sizes are ever prepared (and cached).
const INSERT_CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// The two shapes of the multi-row `INSERT` of incoming messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Every row binds all its columns (nine parameters per row).
    General,
    /// The rows share their conversation, sender and type name: those are bound
    /// once for the statement, and each row binds only its uid, content and time.
    /// A sync package of one conversation or a burst from one sender is this
    /// shape; it saves three text copies into SQLite per message.
    Shared,
}

/// Parameters bound once per statement in the [`Shape::Shared`] form: conversation
/// type, target id, sender, type name, received time, sent status.
const SHARED_PARAMS: usize = 6;

/// The `INSERT` of `rows` incoming messages in `shape`.
fn insert_sql(rows: usize, shape: Shape) -> &'static str {
    static SQL: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = SQL.get_or_init(|| {
        [Shape::General, Shape::Shared]
            .into_iter()
            .flat_map(|shape| INSERT_CHUNKS.iter().map(move |&rows| (shape, rows)))
            .map(|(shape, rows)| {
                let values: Vec<String> = (0..rows)
                    .map(|row| match shape {
                        Shape::General => "(?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 1)".to_owned(),
                        Shape::Shared => {
                            let p = SHARED_PARAMS + 3 * row;
                            format!(
                                "(?{}, ?1, ?2, ?3, ?4, ?{}, ?{}, ?5, 1, ?6, 1)",
                                p + 1,
                                p + 2,
                                p + 3
                            )
                        }
                    })
                    .collect();
                format!(
                    "INSERT INTO messages (uid, conv_type, target_id, sender, object_name, content,
                                           sent_time, received_time, direction, sent_status, unread)
                     VALUES {}
                     ON CONFLICT (uid) DO NOTHING",
                    values.join(", ")
                )
            })
            .collect()
    });
    let size = INSERT_CHUNKS
        .iter()
        .position(|&r| r == rows)
        .unwrap_or(INSERT_CHUNKS.len() - 1);
    let shape = match shape {
        Shape::General => 0,
        Shape::Shared => INSERT_CHUNKS.len(),
    };
    &all[shape + size]
}

/// Commits a batch of inbox entries and the sync cursor in one transaction.
/// Returns the messages that were new (an entry whose uid is already stored is
/// skipped: nothing is stored twice). The entries are taken by value, so their
/// strings move into the returned messages instead of being copied. Recall
/// commands among them are applied (see [`apply_incoming`]).
pub fn insert_incoming(
    conn: &mut Connection,
    entries: impl IntoIterator<Item = InboxEntry>,
    now_ms: i64,
) -> rusqlite::Result<Vec<Message>> {
    Ok(apply_incoming(conn, entries, now_ms)?.received)
}

/// What one incoming batch did to the database.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The messages that were new, in order.
    pub received: Vec<Message>,
    /// Messages stored before this batch that a recall command in it replaced
    /// with their `RC:RcNtf`, as stored now.
    pub recalled: Vec<Message>,
}

/// Whether an inbox entry is a recall command rather than a message to store.
fn is_recall_command(entry: &InboxEntry) -> bool {
    entry.message.object_name == RECALL_COMMAND
        && RecallCommand::parse(&entry.message.content).is_some()
}

/// Commits a batch of inbox entries and the sync cursor in one transaction:
/// messages are stored (as [`insert_incoming`] says), and recall commands
/// (`RC:RcCmd`) replace the message they name with its `RC:RcNtf` notification
/// (its uid, sent time and local id kept) instead of being stored. A command
/// for a message this device does not have, or has already recalled, changes
/// nothing, so a recall is applied once however often it comes. A message
/// stored and recalled in the same batch is returned in `received` already
/// replaced, never with its original content.
pub fn apply_incoming(
    conn: &mut Connection,
    entries: impl IntoIterator<Item = InboxEntry>,
    now_ms: i64,
) -> rusqlite::Result<Applied> {
    let (commands, entries): (Vec<InboxEntry>, Vec<InboxEntry>) =
        entries.into_iter().partition(is_recall_command);
    let command_seq = commands.iter().map(|e| e.seq).max();
    if !commands.is_empty() {
        // Freed and overwritten bytes are zeroed, so the recalled content does
        // not linger in free pages of the database file.
        conn.pragma_update(None, "secure_delete", "ON")?;
    }
    // A batch of recall commands alone reads before it writes: the write lock
    // first (see `index_pending`).
    let behavior = if commands.is_empty() {
        TransactionBehavior::Deferred
    } else {
        TransactionBehavior::Immediate
    };
    let tx = conn.transaction_with_behavior(behavior)?;
    let mut ids: Vec<Option<i64>> = Vec::with_capacity(entries.len());
    let mut done = 0;
    while done < entries.len() {
        let rows = INSERT_CHUNKS
            .into_iter()
            .find(|&r| r <= entries.len() - done)
            .unwrap_or(1);
        let chunk = &entries[done..done + rows];
        insert_chunk(&tx, chunk, now_ms, &mut ids)?;
        done += rows;
    }
    let mut touches: Vec<ConversationTouch> = Vec::new();
    let mut inserted = Vec::with_capacity(entries.len());
    let mut max_seq = None;
    for (entry, id) in entries.into_iter().zip(ids) {
        max_seq = max_seq.max(Some(entry.seq));
        let Some(id) = id else {
            continue;
        };
        let m = entry.message;
        fold_touch(&mut touches, &m.conversation, id, m.sent_time_ms);
        inserted.push(Message {
            id,
            uid: Some(m.uid),
            conversation: m.conversation,
            sender: m.sender,
            object_name: m.object_name,
            content: m.content,
            sent_time_ms: m.sent_time_ms,
            received_time_ms: now_ms,
            direction: Direction::Receive,
            sent_status: SentStatus::Received,
            client_msg_id: None,
        });
    }
    for touch in &touches {
        touch_conversation(&tx, &touch.key, touch.id, touch.time, touch.unread)?;
    }
    let mut recalled = Vec::new();
    for command in &commands {
        let Some(cmd) = RecallCommand::parse(&command.message.content) else {
            continue;
        };
        let m = &command.message;
        let Some(now) = recall_stored(&tx, &cmd, &m.sender, m.sent_time_ms)? else {
            continue;
        };
        match inserted.iter_mut().find(|fresh| fresh.id == now.id) {
            // Stored and recalled in one batch: no app saw the original.
            Some(fresh) => *fresh = now,
            None => recalled.push(now),
        }
    }
    if let Some(max) = max_seq.max(command_seq) {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        tx.prepare_cached("UPDATE sync_state SET inbox_seq = MAX(inbox_seq, ?1) WHERE id = 1")?
            .execute([max])?;
    }
    tx.commit()?;
    Ok(Applied {
        received: inserted,
        recalled,
    })
}

/// Indexes up to `limit` messages stored after the search index's watermark, in
/// one transaction, and moves the watermark past them. Returns how many
/// messages it covered (0: the index is up to date).
pub fn index_pending(conn: &mut Connection, limit: u32) -> rusqlite::Result<u32> {
    // It reads before it writes: take the write lock first, so that a checkpoint
    // of the other connection in between cannot make the upgrade fail with
    // "database is locked" (a read snapshot that went stale is not retried).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let through: i64 = tx
        .prepare_cached("SELECT indexed_through FROM search_state WHERE id = 1")?
        .query_row([], |row| row.get(0))?;
    let (count, last): (u32, Option<i64>) = tx
        .prepare_cached(
            "SELECT count(*), max(id) FROM
                (SELECT id FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2)",
        )?
        .query_row(params![through, limit], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let Some(last) = last else {
        return Ok(0);
    };
    tx.prepare_cached(super::schema::INDEX_RANGE)?
        .execute(params![through, last])?;
    tx.prepare_cached("UPDATE search_state SET indexed_through = ?1 WHERE id = 1")?
        .execute([last])?;
    tx.commit()?;
    Ok(count)
}

/// Replaces the stored message `cmd` names with its recall notification, built
/// from who recalled it and when (the command's sender and sent time) as the
/// server builds it. `None` when no such message is stored or it is recalled
/// already.
fn recall_stored(
    tx: &Connection,
    cmd: &RecallCommand,
    operator: &str,
    recall_time_ms: i64,
) -> rusqlite::Result<Option<Message>> {
    let found: Option<(i64, String)> = tx
        .prepare_cached("SELECT id, object_name FROM messages WHERE uid = ?1")?
        .query_row([&cmd.message_uid], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((id, object_name)) = found.filter(|(_, name)| name != RECALL_NOTIFICATION) else {
        return Ok(None);
    };
    let content = notification_content(
        operator,
        recall_time_ms,
        &object_name,
        cmd.is_admin,
        cmd.is_delete,
    );
    replace_with_notification(tx, id, &content)
}

/// Makes message `id` the recall notification with `content`; returns it as
/// stored now.
fn replace_with_notification(
    tx: &Connection,
    id: i64,
    content: &str,
) -> rusqlite::Result<Option<Message>> {
    tx.prepare_cached("UPDATE messages SET object_name = ?2, content = ?3 WHERE id = ?1")?
        .execute(params![id, RECALL_NOTIFICATION, content])?;
    message(tx, id)
}

/// The server confirmed a recall this device asked for: the message with `uid`
/// becomes `RC:RcNtf` with `content` (the server's, so every copy is the same).
/// `None` when it is not stored here or is recalled already (the command that
/// follows in the inbox then changes nothing either).
pub fn apply_recall(
    conn: &mut Connection,
    uid: &str,
    content: &str,
) -> rusqlite::Result<Option<Message>> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    // Reads before it writes: the write lock first (see `index_pending`).
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM messages WHERE uid = ?1 AND object_name != ?2")?
        .query_row(params![uid, RECALL_NOTIFICATION], |row| row.get(0))
        .optional()?;
    let recalled = match found {
        Some(id) => replace_with_notification(&tx, id, content)?,
        None => None,
    };
    tx.commit()?;
    Ok(recalled)
}

/// The stored message with server uid `uid`, if any.
pub fn message_by_uid(conn: &Connection, uid: &str) -> rusqlite::Result<Option<Message>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE uid = ?1"))?
        .query_row([uid], message_from_row)
        .optional()
}

/// Inserts `chunk` with one statement and pushes, per entry, the id it was stored
/// under (`None`: its uid was already stored, or appears earlier in the batch).
fn insert_chunk(
    tx: &Connection,
    chunk: &[InboxEntry],
    now_ms: i64,
    ids: &mut Vec<Option<i64>>,
) -> rusqlite::Result<()> {
    let first = &chunk[0].message;
    let shared = chunk[1..].iter().all(|e| {
        let m = &e.message;
        m.conversation == first.conversation
            && m.sender == first.sender
            && m.object_name == first.object_name
    });
    let shape = if shared && chunk.len() > 1 {
        Shape::Shared
    } else {
        Shape::General
    };
    let mut insert = tx.prepare_cached(insert_sql(chunk.len(), shape))?;
    let received = status_code(SentStatus::Received);
    if shape == Shape::Shared {
        insert.raw_bind_parameter(1, first.conversation.kind.code())?;
        insert.raw_bind_parameter(2, &first.conversation.target_id)?;
        insert.raw_bind_parameter(3, &first.sender)?;
        insert.raw_bind_parameter(4, &first.object_name)?;
        insert.raw_bind_parameter(5, now_ms)?;
        insert.raw_bind_parameter(6, received)?;
        let mut index = SHARED_PARAMS;
        for entry in chunk {
            let m = &entry.message;
            insert.raw_bind_parameter(index + 1, &m.uid)?;
            insert.raw_bind_parameter(index + 2, &m.content)?;
            insert.raw_bind_parameter(index + 3, m.sent_time_ms)?;
            index += 3;
        }
    } else {
        let mut index = 0;
        for entry in chunk {
            let m = &entry.message;
            insert.raw_bind_parameter(index + 1, &m.uid)?;
            insert.raw_bind_parameter(index + 2, m.conversation.kind.code())?;
            insert.raw_bind_parameter(index + 3, &m.conversation.target_id)?;
            insert.raw_bind_parameter(index + 4, &m.sender)?;
            insert.raw_bind_parameter(index + 5, &m.object_name)?;
            insert.raw_bind_parameter(index + 6, &m.content)?;
            insert.raw_bind_parameter(index + 7, m.sent_time_ms)?;
            insert.raw_bind_parameter(index + 8, now_ms)?;
            insert.raw_bind_parameter(index + 9, received)?;
            index += 9;
        }
    }
    let changed = insert.raw_execute()?;
    let last = tx.last_insert_rowid();
    if changed == chunk.len() {
        // Every row is new. Ids come from AUTOINCREMENT in row order, one statement
        // holding the write lock: they are consecutive and end at the last one.
        let first = last - chunk.len() as i64 + 1;
        ids.extend((first..=last).map(Some));
        return Ok(());
    }
    // Some uids were already stored (a resend after a crash before the ack). Every
    // row of this statement has a larger id than any row stored before it
    // (AUTOINCREMENT never reuses or goes back), so the `changed` largest ids
    // found for the chunk's uids are the new rows, each first claimed by the
    // earliest entry carrying its uid.
    let mut lookup = tx.prepare_cached("SELECT id FROM messages WHERE uid = ?1")?;
    let mut found = Vec::with_capacity(chunk.len());
    for entry in chunk {
        found.push(
            lookup
                .query_row([&entry.message.uid], |row| row.get::<_, i64>(0))
                .optional()?,
        );
    }
    let mut distinct: Vec<i64> = found.iter().flatten().copied().collect();
    distinct.sort_unstable_by(|a, b| b.cmp(a));
    distinct.dedup();
    let threshold = distinct.get(changed.saturating_sub(1)).copied();
    let mut claimed = std::collections::HashSet::new();
    for id in found {
        let new = match (id, threshold) {
            (Some(id), Some(threshold)) if changed > 0 && id >= threshold => claimed.insert(id),
            _ => false,
        };
        ids.push(if new { id } else { None });
    }
    Ok(())
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

/// Messages indexed per transaction, by the background indexer and by a search
/// catching up: a step holds the store's connection for a few milliseconds at
/// most, so a commit waits no longer behind it.
pub const SEARCH_INDEX_STEP: u32 = 500;

/// The FTS5 query for search text: every whitespace-separated word as a quoted
/// string (a `"` doubled), each a prefix, all required. Quoted strings are
/// always text to FTS5, so no character of the text can be query syntax
/// (`OR`, `NEAR`, `*`, `-`, `:`, parentheses, column filters).
pub fn fts_query(text: &str) -> String {
    text.split_whitespace()
        .map(|word| format!("\"{}\"*", word.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A local full-text search (see [`SearchQuery`]): newest first. Whatever the
/// background indexer has not indexed yet is indexed first, so every stored
/// message is found.
pub fn search(conn: &mut Connection, query: &SearchQuery) -> rusqlite::Result<Vec<Message>> {
    while index_pending(conn, SEARCH_INDEX_STEP)? > 0 {}
    let (kind, target) = match &query.conversation {
        Some(key) => (Some(key.kind.code()), Some(key.target_id.as_str())),
        None => (None, None),
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages
         WHERE id IN (SELECT rowid FROM message_search WHERE message_search MATCH ?1)
           AND (?2 IS NULL OR (conv_type = ?2 AND target_id = ?3))
           AND (?4 IS NULL OR sender = ?4)
           AND (?5 <= 0 OR sent_time >= ?5)
           AND (?6 <= 0 OR sent_time < ?6 OR (sent_time = ?6 AND ?7 > 0 AND id < ?7))
         ORDER BY sent_time DESC, id DESC LIMIT ?8"
    ))?;
    stmt.query_map(
        params![
            fts_query(&query.text),
            kind,
            target,
            query.sender,
            query.start_time_ms,
            query.before_time_ms,
            query.before_id,
            query.count,
        ],
        message_from_row,
    )?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::message::WireMessage;

    /// An outgoing text message to bob with this client message id.
    fn outgoing_to_bob(client_msg_id: &str) -> Outgoing {
        Outgoing {
            sender: "me".into(),
            conversation: ConversationKey::private("bob"),
            object_name: "RC:TxtMsg".into(),
            content: "{}".into(),
            client_msg_id: client_msg_id.into(),
        }
    }

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::super::schema::open(&dir.path().join("t.db"), "me", None).unwrap();
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
        let new = insert_incoming(&mut conn, batch.clone(), 9).unwrap();
        assert_eq!(new.len(), 5);
        assert_eq!(sync_cursor(&conn).unwrap(), 5);
        // The same entries again (a resend after a crash before the ack): nothing new.
        let again = insert_incoming(&mut conn, batch[2..].to_vec(), 10).unwrap();
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
        insert_incoming(&mut conn, vec![entry(10, "bob", 1)], 1).unwrap();
        insert_incoming(&mut conn, vec![entry(3, "bob", 1)], 1).unwrap();
        assert_eq!(sync_cursor(&conn).unwrap(), 10);
    }

    #[test]
    fn outgoing_goes_through_the_outbox() {
        let (_dir, mut conn) = db();
        let out = outgoing_to_bob("c1");
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
        insert_incoming(&mut conn, batch.clone(), 1).unwrap();
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
            vec![
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

    /// An entry from `from` at `time` with its own uid.
    fn entry_with(seq: u64, from: &str, time: i64, uid: &str) -> InboxEntry {
        let mut e = entry(seq, from, time);
        e.message.uid = uid.into();
        e
    }

    fn conversation_rows(conn: &Connection) -> Vec<(String, i64, i64, i64)> {
        let mut stmt = conn
            .prepare(
                "SELECT target_id, last_message_id, unread_count, operation_time
                 FROM conversations ORDER BY target_id",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_batch_touches_conversations_as_one_message_at_a_time_would() {
        // Several conversations, times out of order and tied, a conversation that
        // already has a newer message, and batch sizes around the statement sizes.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for round in 0..20 {
            let (_d1, mut batched) = db();
            let (_d2, mut single) = db();
            let older = [entry_with(1, "p0", 1_000, &format!("pre-{round}"))];
            insert_incoming(&mut batched, older.clone(), 5).unwrap();
            insert_incoming(&mut single, older.clone(), 5).unwrap();
            let size = [1, 3, 4, 5, 17, 64, 65, 85, 200][round % 9];
            let batch: Vec<_> = (0..size)
                .map(|i| {
                    let seq = 2 + i as u64;
                    let peer = format!("p{}", next(4));
                    let time = 990 + next(20) as i64;
                    entry_with(seq, &peer, time, &format!("r{round}-{i}"))
                })
                .collect();
            let new = insert_incoming(&mut batched, batch.clone(), 7).unwrap();
            assert_eq!(new.len(), batch.len());
            for e in &batch {
                insert_incoming(&mut single, vec![e.clone()], 7).unwrap();
            }
            assert_eq!(
                conversation_rows(&batched),
                conversation_rows(&single),
                "round {round}, {size} messages"
            );
            let unread: i64 = conversation_rows(&batched).iter().map(|c| c.2).sum();
            assert_eq!(unread, size as i64 + 1);
        }
    }

    #[test]
    fn several_messages_to_one_conversation_in_one_batch() {
        let (_dir, mut conn) = db();
        let batch = [
            entry_with(1, "bob", 300, "a"),
            entry_with(2, "bob", 100, "b"),
            entry_with(3, "bob", 300, "c"),
            entry_with(4, "bob", 200, "d"),
        ];
        insert_incoming(&mut conn, batch.clone(), 1).unwrap();
        let conv = conversations(&conn, &[], 0, 50).unwrap();
        assert_eq!(conv.len(), 1);
        assert_eq!(conv[0].unread_count, 4);
        assert_eq!(conv[0].operation_time_ms, 300);
        // The newest by time; on a tie the later one, as one by one would leave it.
        assert_eq!(
            conv[0].last_message.as_ref().unwrap().uid.as_deref(),
            Some("c")
        );
        // A later batch with only older messages adds to the count only.
        insert_incoming(&mut conn, [entry_with(5, "bob", 50, "e")], 1).unwrap();
        let conv = conversations(&conn, &[], 0, 50).unwrap();
        assert_eq!(conv[0].unread_count, 5);
        assert_eq!(
            conv[0].last_message.as_ref().unwrap().uid.as_deref(),
            Some("c")
        );
    }

    #[test]
    fn chunked_inserts_return_every_message_with_its_id_in_order() {
        let (_dir, mut conn) = db();
        // 85 = 64 + 16 + 4 + 1: every statement size once.
        let batch: Vec<_> = (1..=85).map(|s| entry(s, "bob", s as i64)).collect();
        let new = insert_incoming(&mut conn, batch.clone(), 3).unwrap();
        assert_eq!(new.len(), 85);
        for (m, e) in new.iter().zip(&batch) {
            assert_eq!(m.uid.as_deref(), Some(e.message.uid.as_str()));
            assert_eq!(message(&conn, m.id).unwrap().as_ref(), Some(m));
        }
        assert!(new.windows(2).all(|w| w[1].id == w[0].id + 1));
        assert_eq!(messages_after(&conn, 0, 1000).unwrap(), new);
        assert_eq!(sync_cursor(&conn).unwrap(), 85);
    }

    #[test]
    fn a_chunk_with_stored_and_repeated_uids_returns_only_the_new_ones() {
        let (_dir, mut conn) = db();
        let stored: Vec<_> = (1..=10).map(|s| entry(s, "bob", s as i64)).collect();
        insert_incoming(&mut conn, stored.clone(), 1).unwrap();
        // An outgoing message the server accepted: its uid may come back in the inbox.
        let out = outgoing_to_bob("c1");
        let sent = save_outgoing(&mut conn, &out, 20).unwrap();
        mark_sent(&mut conn, sent.id, "mine", 21).unwrap();
        // 22 entries (statements of 16, 4, 1 and 1): stored uids, new ones, a uid
        // twice in the batch, and our own sent message.
        let mut batch: Vec<_> = (5..=20).map(|s| entry(s, "bob", 100 + s as i64)).collect();
        batch.push(entry_with(21, "bob", 121, "uid-000015"));
        batch.push(entry_with(22, "bob", 122, "mine"));
        batch.push(entry_with(23, "carol", 123, "x1"));
        batch.push(entry_with(24, "carol", 124, "x1"));
        batch.push(entry_with(25, "carol", 125, "x2"));
        batch.push(entry_with(26, "bob", 126, "uid-000003"));
        let new = insert_incoming(&mut conn, batch.clone(), 2).unwrap();
        let uids: Vec<_> = new.iter().map(|m| m.uid.clone().unwrap()).collect();
        let mut want: Vec<_> = (11..=20).map(|s| format!("uid-{s:06}")).collect();
        want.extend(["x1".to_owned(), "x2".to_owned()]);
        assert_eq!(uids, want);
        for m in &new {
            assert_eq!(message(&conn, m.id).unwrap().as_ref(), Some(m));
        }
        // The first x1 (time 123) is the stored one.
        let x1 = new.iter().find(|m| m.uid.as_deref() == Some("x1")).unwrap();
        assert_eq!(x1.sent_time_ms, 123);
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 10 + 1 + 12);
        assert_eq!(sync_cursor(&conn).unwrap(), 26);
        let conv = conversations(&conn, &[], 0, 50).unwrap();
        let carol = conv.iter().find(|c| c.key.target_id == "carol").unwrap();
        assert_eq!(carol.unread_count, 2);
        let bob = conv.iter().find(|c| c.key.target_id == "bob").unwrap();
        assert_eq!(bob.unread_count, 20);
        // Nothing new at all: nothing returned, the cursor still moves.
        let again = insert_incoming(&mut conn, batch[..4].to_vec(), 2).unwrap();
        assert!(again.is_empty());
    }

    /// An inbox entry with a text message saying `text`.
    fn text_entry(seq: u64, from: &str, time: i64, text: &str) -> InboxEntry {
        let mut e = entry(seq, from, time);
        e.message.content = serde_json_text(text);
        e
    }

    fn serde_json_text(text: &str) -> String {
        format!("{{\"content\":{}}}", rcim_proto_json_string(text))
    }

    fn rcim_proto_json_string(text: &str) -> String {
        let escaped: String = text
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                c => vec![c],
            })
            .collect();
        format!("\"{escaped}\"")
    }

    /// A recall command for `uid` from `operator` at `time`.
    fn recall_entry(seq: u64, operator: &str, uid: &str, time: i64) -> InboxEntry {
        let command = RecallCommand {
            message_uid: uid.into(),
            conversation_type: 1,
            target_id: "me".into(),
            sent_time: 1,
            is_admin: false,
            is_delete: false,
        };
        InboxEntry {
            seq,
            message: WireMessage {
                uid: format!("cmd-{seq}"),
                conversation: ConversationKey::private(operator),
                sender: operator.into(),
                object_name: RECALL_COMMAND.into(),
                content: command.to_content(),
                sent_time_ms: time,
            },
        }
    }

    fn search_for(conn: &mut Connection, text: &str) -> Vec<String> {
        search(conn, &SearchQuery::new(text, 100))
            .unwrap()
            .into_iter()
            .map(|m| m.uid.unwrap_or_default())
            .collect()
    }

    #[test]
    fn a_recall_command_replaces_the_message_once_and_leaves_no_text() {
        let (_dir, mut conn) = db();
        insert_incoming(&mut conn, [text_entry(1, "bob", 10, "the launch code")], 1).unwrap();
        assert_eq!(search_for(&mut conn, "launch"), vec!["uid-000001"]);
        let applied =
            apply_incoming(&mut conn, [recall_entry(2, "bob", "uid-000001", 50)], 2).unwrap();
        assert!(applied.received.is_empty());
        assert_eq!(applied.recalled.len(), 1);
        let recalled = &applied.recalled[0];
        assert_eq!(recalled.object_name, RECALL_NOTIFICATION);
        assert_eq!(recalled.uid.as_deref(), Some("uid-000001"));
        assert_eq!(recalled.sent_time_ms, 10);
        assert_eq!(
            recalled.content,
            notification_content("bob", 50, "RC:TxtMsg", false, false)
        );
        assert_eq!(sync_cursor(&conn).unwrap(), 2);
        // The same command again (a resend), or one for an unknown uid: nothing.
        let again = apply_incoming(&mut conn, [recall_entry(2, "bob", "uid-000001", 50)], 3);
        assert_eq!(again.unwrap(), Applied::default());
        let unknown = apply_incoming(&mut conn, [recall_entry(3, "bob", "nope", 60)], 3);
        assert_eq!(unknown.unwrap(), Applied::default());
        assert!(search_for(&mut conn, "launch").is_empty());
        let left: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE content LIKE '%launch%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        // The server's confirmation for a recall already applied changes nothing.
        assert_eq!(apply_recall(&mut conn, "uid-000001", "{}").unwrap(), None);
    }

    #[test]
    fn a_message_recalled_in_its_own_batch_is_never_returned_with_its_content() {
        let (_dir, mut conn) = db();
        let applied = apply_incoming(
            &mut conn,
            [
                text_entry(1, "bob", 10, "oops wrong chat"),
                recall_entry(2, "bob", "uid-000001", 20),
            ],
            1,
        )
        .unwrap();
        assert!(applied.recalled.is_empty());
        assert_eq!(applied.received.len(), 1);
        assert_eq!(applied.received[0].object_name, RECALL_NOTIFICATION);
        assert!(!applied.received[0].content.contains("oops"));
    }

    #[test]
    fn search_takes_every_character_as_text_and_pages() {
        let (_dir, mut conn) = db();
        let texts = [
            "hello world",
            "say \"hello\" OR NEAR(x) *",
            "c++ and c# -minus col:on",
            "Grüße aus Köln",
            "hello again",
        ];
        let batch: Vec<_> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| text_entry(i as u64 + 1, "bob", 100 + i as i64, t))
            .collect();
        insert_incoming(&mut conn, batch, 1).unwrap();
        // Newest first; a prefix matches.
        assert_eq!(
            search_for(&mut conn, "hel"),
            vec!["uid-000005", "uid-000002", "uid-000001"]
        );
        assert_eq!(search_for(&mut conn, "koln"), vec!["uid-000004"]);
        // FTS syntax is text: never an error, never an operator.
        for text in [
            "\"", "\"hello", "OR", "NEAR(", "*", "-minus", "col:on", "(", "AND NOT", "^x",
            "'; DROP",
        ] {
            search(&mut conn, &SearchQuery::new(text, 10))
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
        assert_eq!(
            search_for(&mut conn, "hello OR nothing"),
            Vec::<String>::new()
        );
        assert_eq!(search_for(&mut conn, "col:on"), vec!["uid-000003"]);
        // Paging by (time, id), scoped by conversation and sender.
        let mut q = SearchQuery::new("hello", 2);
        let first = search(&mut conn, &q).unwrap();
        assert_eq!(first.len(), 2);
        let last = first.last().unwrap();
        q.before_time_ms = last.sent_time_ms;
        q.before_id = last.id;
        let second = search(&mut conn, &q).unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].uid.as_deref(), Some("uid-000001"));
        q.conversation = Some(ConversationKey::private("carol"));
        assert!(search(&mut conn, &q).unwrap().is_empty());
        let mut q = SearchQuery::new("hello", 10);
        q.sender = Some("bob".into());
        q.start_time_ms = 101;
        assert_eq!(search(&mut conn, &q).unwrap().len(), 2);
    }

    #[test]
    fn the_search_migration_indexes_messages_stored_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A database at schema 2, as an rcimd before search left it.
            let conn = Connection::open(&path).unwrap();
            for sql in &super::super::schema::MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute(
                "INSERT INTO messages (uid, conv_type, target_id, sender, object_name, content,
                     sent_time, received_time, direction, sent_status)
                 VALUES ('old-1', 1, 'bob', 'bob', 'RC:TxtMsg', '{\"content\":\"archived note\"}',
                     5, 5, 1, 3),
                        ('old-2', 1, 'bob', 'bob', 'RC:FileMsg', '{\"name\":\"notes.pdf\"}',
                     6, 6, 1, 3),
                        ('old-3', 1, 'bob', 'bob', 'RC:TxtMsg', 'not json', 7, 7, 1, 3)",
                [],
            )
            .unwrap();
        }
        let mut conn = super::super::schema::open(&path, "me", None).unwrap();
        assert_eq!(search_for(&mut conn, "archived"), vec!["old-1"]);
        assert_eq!(search_for(&mut conn, "notes"), vec!["old-2"]);
        // A delete, by anyone, keeps the index true.
        conn.execute("DELETE FROM messages WHERE uid = 'old-1'", [])
            .unwrap();
        assert!(search_for(&mut conn, "archived").is_empty());
        insert_incoming(&mut conn, [text_entry(1, "bob", 9, "archived again")], 1).unwrap();
        assert_eq!(search_for(&mut conn, "archived"), vec!["uid-000001"]);
    }
}
