//! The store's queries: plain functions of a connection, each one transaction.
//!
//! Encodings in the database: conversation types are RC's numbers; direction 0 send,
//! 1 receive; sent status 0 sending, 1 failed, 2 sent, 3 received, 4 read (RC's
//! order). A message's `id` is an AUTOINCREMENT key, so ids only grow and are never
//! reused: it doubles as the local sequence number that clients resume from.

use rcim_proto::ipc::Event;
use rcim_proto::ipc::SearchQuery;
use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Direction, Message, Persistence,
    READ_NOTIFICATION, READ_SYNC, SentStatus, TimeOrder, WireMessage, persistence, read_content,
    read_time_of,
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
    /// The oldest send time and the smallest id of the batch's messages here (for
    /// the read position: see [`uncount_already_read`]).
    oldest: i64,
    first_id: i64,
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
        touch.oldest = touch.oldest.min(time);
        touch.first_id = touch.first_id.min(id);
    } else {
        touches.push(ConversationTouch {
            key: key.clone(),
            id,
            time,
            unread: 1,
            oldest: time,
            first_id: id,
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
/// strings move into the returned messages instead of being copied. The
/// commands among them are applied (see [`apply_incoming`]).
pub fn insert_incoming(
    conn: &mut Connection,
    entries: impl IntoIterator<Item = InboxEntry>,
    now_ms: i64,
) -> rusqlite::Result<Vec<Message>> {
    Ok(apply_incoming(conn, entries, now_ms)?.messages)
}

/// What one incoming batch did: the new messages, and the events of the commands
/// it applied (recalls, read receipts, read syncs), in order.
#[derive(Debug, Default)]
pub struct Incoming {
    /// The messages that were new, in order.
    pub messages: Vec<Message>,
    /// What the batch's commands changed, for the clients: `MessageRecalled`
    /// for a message stored before this batch that a recall replaced,
    /// `ReadReceipt`, `ConversationReadSynced`.
    pub applied: Vec<Event>,
}

/// Whether an inbox entry is a recall command rather than a message to store.
fn is_recall_command(entry: &InboxEntry) -> bool {
    entry.message.object_name == RECALL_COMMAND
        && RecallCommand::parse(&entry.message.content).is_some()
}

/// Commits a batch of inbox entries and the sync cursor in one transaction:
/// messages are stored (as [`insert_incoming`] says), and the commands are
/// applied instead of being stored:
/// - a recall command (`RC:RcCmd`) replaces the message it names with its
///   `RC:RcNtf` notification (its uid, sent time and local id kept). A command
///   for a message this device does not have, or has already recalled, changes
///   nothing, so a recall is applied once however often it comes. A message
///   stored and recalled in the same batch is returned in `messages` already
///   replaced, never with its original content;
/// - `RC:ReadNtf` and `RC:SRSMsg` move read positions (see [`apply_command`]).
pub fn apply_incoming(
    conn: &mut Connection,
    entries: impl IntoIterator<Item = InboxEntry>,
    now_ms: i64,
) -> rusqlite::Result<Incoming> {
    let (recalls, entries): (Vec<InboxEntry>, Vec<InboxEntry>) =
        entries.into_iter().partition(is_recall_command);
    let (entries, commands): (Vec<InboxEntry>, Vec<InboxEntry>) = entries
        .into_iter()
        .partition(|e| persistence(&e.message.object_name) == Persistence::Stored);
    let command_seq = commands.iter().chain(&recalls).map(|e| e.seq).max();
    if !recalls.is_empty() {
        // Freed and overwritten bytes are zeroed, so the recalled content does
        // not linger in free pages of the database file.
        conn.pragma_update(None, "secure_delete", "ON")?;
    }
    // A batch of commands alone reads before it writes: the write lock first
    // (see `index_pending`).
    let behavior = if recalls.is_empty() && commands.is_empty() {
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
    for touch in &mut touches {
        uncount_already_read(&tx, touch)?;
        touch_conversation(&tx, &touch.key, touch.id, touch.time, touch.unread)?;
    }
    let mut applied = Vec::new();
    for command in &commands {
        if let Some(event) = apply_command(&tx, &command.message)? {
            applied.push(event);
        }
    }
    for recall in &recalls {
        let Some(cmd) = RecallCommand::parse(&recall.message.content) else {
            continue;
        };
        let m = &recall.message;
        let Some(now) = recall_stored(&tx, &cmd, &m.sender, m.sent_time_ms)? else {
            continue;
        };
        match inserted.iter_mut().find(|fresh| fresh.id == now.id) {
            // Stored and recalled in one batch: no app saw the original.
            Some(fresh) => *fresh = now,
            None => applied.push(Event::MessageRecalled { message: now }),
        }
    }
    if let Some(max) = max_seq.max(command_seq) {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        tx.prepare_cached("UPDATE sync_state SET inbox_seq = MAX(inbox_seq, ?1) WHERE id = 1")?
            .execute([max])?;
    }
    tx.commit()?;
    Ok(Incoming {
        messages: inserted,
        applied,
    })
}

/// Messages of `touch` sent at or before the conversation's read position (read
/// on this or another device before they arrived here, e.g. a sync that brought a
/// read position ahead of older messages) are stored read and not counted.
fn uncount_already_read(tx: &Connection, touch: &mut ConversationTouch) -> rusqlite::Result<()> {
    let read_time = read_time(tx, &touch.key)?;
    if read_time < touch.oldest {
        return Ok(());
    }
    let changed = tx
        .prepare_cached(
            "UPDATE messages SET unread = 0
             WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1 AND id >= ?3
               AND sent_time <= ?4",
        )?
        .execute(params![
            touch.key.kind.code(),
            touch.key.target_id,
            touch.first_id,
            read_time
        ])?;
    touch.unread -= i64::try_from(changed).unwrap_or(0);
    Ok(())
}

/// This user's read position in a conversation (0 when never read).
fn read_time(conn: &Connection, key: &ConversationKey) -> rusqlite::Result<i64> {
    Ok(conn
        .prepare_cached("SELECT read_time FROM read_state WHERE conv_type = ?1 AND target_id = ?2")?
        .query_row(params![key.kind.code(), key.target_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Moves a read position (`read_time`, or the peer's `peer_read_time`) of a
/// conversation forward to `time`; whether it moved.
fn advance_read_state(
    tx: &Connection,
    key: &ConversationKey,
    column: ReadColumn,
    time: i64,
) -> rusqlite::Result<bool> {
    let sql = match column {
        ReadColumn::Own => {
            "INSERT INTO read_state (conv_type, target_id, read_time) VALUES (?1, ?2, ?3)
             ON CONFLICT (conv_type, target_id) DO UPDATE SET read_time = excluded.read_time
             WHERE excluded.read_time > read_time"
        }
        ReadColumn::Peer => {
            "INSERT INTO read_state (conv_type, target_id, peer_read_time) VALUES (?1, ?2, ?3)
             ON CONFLICT (conv_type, target_id) DO UPDATE
             SET peer_read_time = excluded.peer_read_time
             WHERE excluded.peer_read_time > peer_read_time"
        }
    };
    let changed = tx
        .prepare_cached(sql)?
        .execute(params![key.kind.code(), key.target_id, time])?;
    Ok(changed == 1)
}

/// Which read position of a conversation.
#[derive(Clone, Copy)]
enum ReadColumn {
    /// This user's (any of its devices).
    Own,
    /// The private peer's, from its read notifications.
    Peer,
}

/// Clears the unread messages of a conversation sent at or before `time` and
/// sets its unread count from what is left.
fn clear_unread_up_to(tx: &Connection, key: &ConversationKey, time: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE messages SET unread = 0
         WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1 AND sent_time <= ?3",
    )?
    .execute(params![key.kind.code(), key.target_id, time])?;
    tx.prepare_cached(
        "UPDATE conversations SET unread_count =
            (SELECT COUNT(*) FROM messages
             WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1)
         WHERE conv_type = ?1 AND target_id = ?2",
    )?
    .execute(params![key.kind.code(), key.target_id])?;
    Ok(())
}

/// Applies one incoming command; the event for clients when it changed anything
/// (a command seen again, after a crash before the ack or sent back to the device
/// that sent it, changes nothing and tells nobody):
///
/// - `RC:ReadNtf` in a private conversation: the peer read up to the time it
///   carries; this user's sent messages up to there become `read`;
/// - `RC:SRSMsg`: another device of this user read the conversation up to the
///   time it carries; the unread messages up to there are read here too.
///
/// A command without a readable time is logged and skipped (the batch, and the
/// cursor, go on).
fn apply_command(tx: &Connection, message: &WireMessage) -> rusqlite::Result<Option<Event>> {
    let Some(time) = read_time_of(&message.content) else {
        tracing::warn!(
            "skipping a {} from {} without a readable lastMessageSendTime",
            message.object_name,
            message.sender
        );
        return Ok(None);
    };
    let key = &message.conversation;
    match message.object_name.as_str() {
        READ_NOTIFICATION if key.kind == ConversationType::Private => {
            if !advance_read_state(tx, key, ReadColumn::Peer, time)? {
                return Ok(None);
            }
            tx.prepare_cached(
                "UPDATE messages SET sent_status = ?4
                 WHERE conv_type = ?1 AND target_id = ?2 AND direction = 0
                   AND sent_status IN (?5, ?6) AND sent_time <= ?3",
            )?
            .execute(params![
                key.kind.code(),
                key.target_id,
                time,
                status_code(SentStatus::Read),
                status_code(SentStatus::Sent),
                status_code(SentStatus::Received),
            ])?;
            Ok(Some(Event::ReadReceipt {
                conversation: key.clone(),
                last_message_send_time_ms: time,
            }))
        }
        READ_SYNC => {
            if !advance_read_state(tx, key, ReadColumn::Own, time)? {
                return Ok(None);
            }
            clear_unread_up_to(tx, key, time)?;
            Ok(Some(Event::ConversationReadSynced {
                conversation: key.clone(),
                last_message_send_time_ms: time,
            }))
        }
        other => {
            tracing::warn!("skipping an unexpected command {other} in {key:?}");
            Ok(None)
        }
    }
}

/// A read notification or read sync waiting to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedCommand {
    /// Its key in the command outbox.
    pub id: i64,
    /// Where to, as the publish names it.
    pub conversation: ConversationKey,
    /// `RC:ReadNtf` or `RC:SRSMsg`.
    pub object_name: String,
    /// The content.
    pub content: String,
    /// The de-duplication id sent upstream.
    pub client_msg_id: String,
}

/// What [`mark_read`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MarkedRead {
    /// The send time read up to (`None`: the conversation has no message, nothing
    /// was done).
    pub time: Option<i64>,
    /// The commands queued, to send now when connected.
    pub queued: Vec<QueuedCommand>,
}

/// Marks `key` read up to `up_to_ms` (0: its newest message) in one transaction:
/// the unread count up to there is cleared, the read position moves forward, and
/// the read sync for the other devices (and, in a private conversation, the read
/// notification for the peer) are queued. `new_id` gives each queued command its
/// de-duplication id. A position at or behind the current one clears what is
/// unread up to it and queues nothing (the other devices and the peer know it).
pub fn mark_read(
    conn: &mut Connection,
    key: &ConversationKey,
    up_to_ms: i64,
    mut new_id: impl FnMut() -> String,
) -> rusqlite::Result<MarkedRead> {
    let tx = conn.transaction()?;
    let time = if up_to_ms > 0 {
        Some(up_to_ms)
    } else {
        tx.prepare_cached(
            "SELECT MAX(sent_time) FROM messages
             WHERE conv_type = ?1 AND target_id = ?2 AND uid IS NOT NULL",
        )?
        .query_row(params![key.kind.code(), key.target_id], |r| {
            r.get::<_, Option<i64>>(0)
        })?
    };
    let Some(time) = time else {
        return Ok(MarkedRead {
            time: None,
            queued: Vec::new(),
        });
    };
    clear_unread_up_to(&tx, key, time)?;
    let mut queued = Vec::new();
    if advance_read_state(&tx, key, ReadColumn::Own, time)? {
        let mut names = vec![READ_SYNC];
        if key.kind == ConversationType::Private {
            names.push(READ_NOTIFICATION);
        }
        for object_name in names {
            let content = read_content(object_name, time);
            let client_msg_id = new_id();
            tx.prepare_cached(
                "INSERT INTO command_outbox (conv_type, target_id, object_name, content, client_msg_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                key.kind.code(),
                key.target_id,
                object_name,
                content,
                client_msg_id
            ])?;
            queued.push(QueuedCommand {
                id: tx.last_insert_rowid(),
                conversation: key.clone(),
                object_name: object_name.to_owned(),
                content,
                client_msg_id,
            });
        }
    }
    tx.commit()?;
    Ok(MarkedRead {
        time: Some(time),
        queued,
    })
}

/// Every queued command, oldest first.
pub fn command_outbox(conn: &Connection) -> rusqlite::Result<Vec<QueuedCommand>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, conv_type, target_id, object_name, content, client_msg_id
         FROM command_outbox ORDER BY id",
    )?;
    stmt.query_map([], |row| {
        let kind: i64 = row.get(1)?;
        Ok(QueuedCommand {
            id: row.get(0)?,
            conversation: ConversationKey {
                kind: i32::try_from(kind)
                    .ok()
                    .and_then(ConversationType::from_code)
                    .ok_or_else(|| bad_value(1, "conversation type", kind))?,
                target_id: row.get(2)?,
            },
            object_name: row.get(3)?,
            content: row.get(4)?,
            client_msg_id: row.get(5)?,
        })
    })?
    .collect()
}

/// The server answered queued command `id`: it leaves the queue.
pub fn command_done(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM command_outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
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
        "SELECT c.conv_type, c.target_id, c.last_message_id, c.unread_count, c.operation_time,
                COALESCE(s.is_top, 0), COALESCE(s.notification_level, 0), COALESCE(s.draft, '')
         FROM conversations c LEFT JOIN conversation_settings s
           ON s.conv_type = c.conv_type AND s.target_id = c.target_id
         WHERE (?1 <= 0 OR c.operation_time < ?1)
         ORDER BY c.operation_time DESC, c.last_message_id DESC",
    )?;
    let rows = stmt.query_map([start_time_ms], |row| {
        Ok((
            (
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ),
            (
                row.get::<_, i64>(5)?,
                row.get::<_, i64>(6)?,
                row.get::<_, String>(7)?,
            ),
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let ((kind, target_id, last, unread, time), (top, level, draft)) = row?;
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
            is_top: top != 0,
            notification_level: i32::try_from(level).unwrap_or(0),
            draft,
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

/// The unread count of one conversation (0 when it has none or does not exist).
pub fn unread_count(conn: &Connection, key: &ConversationKey) -> rusqlite::Result<u64> {
    let count: Option<i64> = conn
        .prepare_cached(
            "SELECT unread_count FROM conversations WHERE conv_type = ?1 AND target_id = ?2",
        )?
        .query_row(params![key.kind.code(), key.target_id], |r| r.get(0))
        .optional()?;
    Ok(u64::try_from(count.unwrap_or(0)).unwrap_or(0))
}

/// The unread count over every conversation of `types` (all when empty), from
/// the totals the triggers keep per type.
pub fn unread_total(conn: &Connection, types: &[ConversationType]) -> rusqlite::Result<u64> {
    let mut stmt = conn.prepare_cached("SELECT conv_type, unread FROM unread_totals")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    let mut total: i64 = 0;
    for row in rows {
        let (kind, unread) = row?;
        let wanted = types.is_empty() || types.iter().any(|t| i64::from(t.code()) == kind);
        if wanted {
            total = total.saturating_add(unread);
        }
    }
    Ok(u64::try_from(total).unwrap_or(0))
}

/// The object name under which a notification level change waits in the command
/// outbox (it goes upstream as `ClientMsg::SetNotificationLevel`, not as a
/// message; the content is the level).
pub const NOTIFICATION_LEVEL_COMMAND: &str = "rcim:NotificationLevel";

/// Which setting of a conversation to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Pinned or not.
    Top(bool),
    /// The draft (empty: none).
    Draft(String),
}

/// Changes one setting of a conversation (kept even while it is off the list).
pub fn set_setting(
    conn: &Connection,
    key: &ConversationKey,
    setting: &Setting,
) -> rusqlite::Result<()> {
    let (sql, value): (&str, rusqlite::types::Value) = match setting {
        Setting::Top(top) => (
            "INSERT INTO conversation_settings (conv_type, target_id, is_top) VALUES (?1, ?2, ?3)
             ON CONFLICT (conv_type, target_id) DO UPDATE SET is_top = excluded.is_top",
            i64::from(*top).into(),
        ),
        Setting::Draft(draft) => (
            "INSERT INTO conversation_settings (conv_type, target_id, draft) VALUES (?1, ?2, ?3)
             ON CONFLICT (conv_type, target_id) DO UPDATE SET draft = excluded.draft",
            draft.clone().into(),
        ),
    };
    conn.prepare_cached(sql)?
        .execute(params![key.kind.code(), key.target_id, value])?;
    Ok(())
}

/// A conversation's draft (empty: none).
pub fn draft(conn: &Connection, key: &ConversationKey) -> rusqlite::Result<String> {
    Ok(conn
        .prepare_cached(
            "SELECT draft FROM conversation_settings WHERE conv_type = ?1 AND target_id = ?2",
        )?
        .query_row(params![key.kind.code(), key.target_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default())
}

/// Sets a conversation's notification level and queues it for the server, in one
/// transaction; returns the queued command.
pub fn set_notification_level(
    conn: &mut Connection,
    key: &ConversationKey,
    level: i32,
    client_msg_id: String,
) -> rusqlite::Result<QueuedCommand> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "INSERT INTO conversation_settings (conv_type, target_id, notification_level)
         VALUES (?1, ?2, ?3)
         ON CONFLICT (conv_type, target_id) DO UPDATE
         SET notification_level = excluded.notification_level",
    )?
    .execute(params![key.kind.code(), key.target_id, level])?;
    // Only the latest level matters: an older one still queued is dropped.
    tx.prepare_cached(
        "DELETE FROM command_outbox WHERE conv_type = ?1 AND target_id = ?2 AND object_name = ?3",
    )?
    .execute(params![
        key.kind.code(),
        key.target_id,
        NOTIFICATION_LEVEL_COMMAND
    ])?;
    let content = level.to_string();
    tx.prepare_cached(
        "INSERT INTO command_outbox (conv_type, target_id, object_name, content, client_msg_id)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        key.kind.code(),
        key.target_id,
        NOTIFICATION_LEVEL_COMMAND,
        content,
        client_msg_id
    ])?;
    let queued = QueuedCommand {
        id: tx.last_insert_rowid(),
        conversation: key.clone(),
        object_name: NOTIFICATION_LEVEL_COMMAND.to_owned(),
        content,
        client_msg_id,
    };
    tx.commit()?;
    Ok(queued)
}

/// Takes a conversation off the list: its messages stay, no longer unread (the
/// unread totals follow through the triggers). Whether it was on the list.
pub fn remove_conversation(conn: &mut Connection, key: &ConversationKey) -> rusqlite::Result<bool> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "UPDATE messages SET unread = 0 WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1",
    )?
    .execute(params![key.kind.code(), key.target_id])?;
    let removed = tx
        .prepare_cached("DELETE FROM conversations WHERE conv_type = ?1 AND target_id = ?2")?
        .execute(params![key.kind.code(), key.target_id])?;
    tx.commit()?;
    Ok(removed == 1)
}

/// Deletes the messages `ids` (their outbox rows too), then brings each touched
/// conversation up to date: its newest remaining message and its unread count, or
/// off the list when nothing remains. Returns how many were deleted.
pub fn delete_messages(conn: &mut Connection, ids: &[i64]) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let mut touched: Vec<ConversationKey> = Vec::new();
    let mut deleted = 0;
    for &id in ids {
        let Some(message) = message(&tx, id)? else {
            continue;
        };
        delete_one(&tx, id)?;
        deleted += 1;
        if !touched.contains(&message.conversation) {
            touched.push(message.conversation);
        }
    }
    for key in &touched {
        refresh_conversation(&tx, key)?;
    }
    tx.commit()?;
    Ok(deleted)
}

/// Deletes the messages of `key` sent at or before `before_ms` (0: all), then
/// brings the conversation up to date. Returns how many were deleted.
pub fn delete_messages_before(
    conn: &mut Connection,
    key: &ConversationKey,
    before_ms: i64,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction()?;
    let ids: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM messages
             WHERE conv_type = ?1 AND target_id = ?2 AND (?3 <= 0 OR sent_time <= ?3)",
        )?
        .query_map(params![key.kind.code(), key.target_id, before_ms], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    for &id in &ids {
        delete_one(&tx, id)?;
    }
    refresh_conversation(&tx, key)?;
    tx.commit()?;
    Ok(ids.len() as u64)
}

/// Deletes one message and what points at it, except its conversation (which the
/// caller refreshes). The conversation row's last message is pointed elsewhere
/// first (the foreign key), to a row [`refresh_conversation`] then corrects.
fn delete_one(tx: &Connection, id: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM outbox WHERE message_id = ?1")?
        .execute([id])?;
    // The conversation may name this message as its last: take it off the list
    // for now; the refresh puts it back with its newest remaining message.
    tx.prepare_cached("DELETE FROM conversations WHERE last_message_id = ?1")?
        .execute([id])?;
    tx.prepare_cached("DELETE FROM messages WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// Sets a conversation's row from its messages: the newest as the last message,
/// the unread count, the time; no row when none remains.
fn refresh_conversation(tx: &Connection, key: &ConversationKey) -> rusqlite::Result<()> {
    let newest: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT id, sent_time FROM messages WHERE conv_type = ?1 AND target_id = ?2
             ORDER BY sent_time DESC, id DESC LIMIT 1",
        )?
        .query_row(params![key.kind.code(), key.target_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((last, time)) = newest else {
        tx.prepare_cached("DELETE FROM conversations WHERE conv_type = ?1 AND target_id = ?2")?
            .execute(params![key.kind.code(), key.target_id])?;
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO conversations (conv_type, target_id, last_message_id, unread_count, operation_time)
         VALUES (?1, ?2, ?3,
                 (SELECT COUNT(*) FROM messages WHERE conv_type = ?1 AND target_id = ?2 AND unread = 1),
                 ?4)
         ON CONFLICT (conv_type, target_id) DO UPDATE SET
            last_message_id = excluded.last_message_id,
            unread_count = excluded.unread_count,
            operation_time = excluded.operation_time",
    )?
    .execute(params![key.kind.code(), key.target_id, last, time])?;
    Ok(())
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
        assert!(applied.messages.is_empty());
        let recalled = recalled_in(&applied);
        assert_eq!(recalled.len(), 1);
        let recalled = recalled[0];
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
        let again = again.unwrap();
        assert!(
            again.messages.is_empty() && again.applied.is_empty(),
            "{again:?}"
        );
        let unknown = apply_incoming(&mut conn, [recall_entry(3, "bob", "nope", 60)], 3);
        let unknown = unknown.unwrap();
        assert!(
            unknown.messages.is_empty() && unknown.applied.is_empty(),
            "{unknown:?}"
        );
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
        assert!(recalled_in(&applied).is_empty());
        assert_eq!(applied.messages.len(), 1);
        assert_eq!(applied.messages[0].object_name, RECALL_NOTIFICATION);
        assert!(!applied.messages[0].content.contains("oops"));
    }

    /// The messages a batch's recalls replaced, from its events.
    fn recalled_in(incoming: &Incoming) -> Vec<&Message> {
        incoming
            .applied
            .iter()
            .filter_map(|event| match event {
                Event::MessageRecalled { message } => Some(message),
                _ => None,
            })
            .collect()
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

    /// A command entry (`RC:ReadNtf`, `RC:SRSMsg`) in `conversation` from
    /// `sender`, carrying `time`.
    fn command(
        seq: u64,
        name: &str,
        conversation: ConversationKey,
        sender: &str,
        time: i64,
    ) -> InboxEntry {
        InboxEntry {
            seq,
            message: WireMessage {
                uid: format!("cmd-{seq:06}"),
                conversation,
                sender: sender.into(),
                object_name: name.into(),
                content: read_content(name, time),
                sent_time_ms: time + 1,
            },
        }
    }

    /// Unique de-duplication ids for queued commands.
    fn ids() -> impl FnMut() -> String {
        move || uuid::Uuid::now_v7().to_string()
    }

    #[test]
    fn unread_totals_follow_every_change_of_a_count() {
        let (_dir, mut conn) = db();
        let team = ConversationKey::group("team");
        let mut group = entry(3, "carol", 300);
        group.message.conversation = team.clone();
        insert_incoming(
            &mut conn,
            vec![entry(1, "bob", 100), entry(2, "bob", 200), group],
            1,
        )
        .unwrap();
        assert_eq!(unread_total(&conn, &[]).unwrap(), 3);
        assert_eq!(
            unread_total(&conn, &[ConversationType::Private]).unwrap(),
            2
        );
        assert_eq!(unread_total(&conn, &[ConversationType::Group]).unwrap(), 1);
        assert_eq!(unread_total(&conn, &[ConversationType::System]).unwrap(), 0);
        assert_eq!(
            unread_count(&conn, &ConversationKey::private("bob")).unwrap(),
            2
        );
        assert_eq!(
            unread_count(&conn, &ConversationKey::private("nobody")).unwrap(),
            0
        );
        clear_unread(&mut conn, &ConversationKey::private("bob"), 100).unwrap();
        assert_eq!(unread_total(&conn, &[]).unwrap(), 2);
        conn.execute("DELETE FROM conversations WHERE conv_type = 2", [])
            .unwrap();
        assert_eq!(unread_total(&conn, &[]).unwrap(), 1);
        // The kept totals equal a count over the messages.
        let counted: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM messages WHERE unread = 1 AND conv_type = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            unread_total(&conn, &[ConversationType::Private]).unwrap(),
            counted as u64
        );
    }

    #[test]
    fn the_unread_migration_counts_an_existing_database() {
        // A database at schema 2 with unread messages, migrated by opening it.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(super::super::schema::MIGRATIONS[0])
                .unwrap();
            conn.execute_batch(super::super::schema::MIGRATIONS[1])
                .unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
            conn.execute_batch(
                "INSERT INTO messages (uid, conv_type, target_id, sender, object_name, content,
                                       sent_time, received_time, direction, sent_status, unread)
                 VALUES ('a', 1, 'bob', 'bob', 'RC:TxtMsg', '{}', 1, 1, 1, 3, 1);
                 INSERT INTO conversations VALUES (1, 'bob', 1, 5, 1);",
            )
            .unwrap();
        }
        let conn = super::super::schema::open(&path, "me", None).unwrap();
        assert_eq!(unread_total(&conn, &[]).unwrap(), 5);
    }

    #[test]
    fn mark_read_clears_moves_the_position_and_queues_both_commands_once() {
        let (_dir, mut conn) = db();
        let bob = ConversationKey::private("bob");
        insert_incoming(
            &mut conn,
            (1..=4).map(|s| entry(s, "bob", 100 * s as i64)),
            1,
        )
        .unwrap();
        let marked = mark_read(&mut conn, &bob, 200, ids()).unwrap();
        assert_eq!(marked.time, Some(200));
        let names: Vec<_> = marked
            .queued
            .iter()
            .map(|c| c.object_name.as_str())
            .collect();
        assert_eq!(names, [READ_SYNC, READ_NOTIFICATION]);
        assert_eq!(read_time_of(&marked.queued[1].content), Some(200));
        assert_eq!(unread_count(&conn, &bob).unwrap(), 2);
        // Behind the position: clears, queues nothing.
        let again = mark_read(&mut conn, &bob, 150, ids()).unwrap();
        assert!(again.queued.is_empty());
        // 0: up to the newest.
        let newest = mark_read(&mut conn, &bob, 0, ids()).unwrap();
        assert_eq!(newest.time, Some(400));
        assert_eq!(unread_total(&conn, &[]).unwrap(), 0);
        assert_eq!(command_outbox(&conn).unwrap().len(), 4);
        for c in command_outbox(&conn).unwrap() {
            command_done(&conn, c.id).unwrap();
        }
        assert!(command_outbox(&conn).unwrap().is_empty());
        // A group gets the sync only; an empty conversation nothing at all.
        let team = ConversationKey::group("team");
        let mut group = entry(5, "carol", 500);
        group.message.conversation = team.clone();
        insert_incoming(&mut conn, [group], 1).unwrap();
        let marked = mark_read(&mut conn, &team, 0, ids()).unwrap();
        assert_eq!(marked.queued.len(), 1);
        assert_eq!(marked.queued[0].object_name, READ_SYNC);
        let empty = mark_read(&mut conn, &ConversationKey::private("nobody"), 0, ids()).unwrap();
        assert_eq!(
            empty,
            MarkedRead {
                time: None,
                queued: Vec::new()
            }
        );
    }

    #[test]
    fn commands_are_applied_once_and_never_stored() {
        let (_dir, mut conn) = db();
        let bob = ConversationKey::private("bob");
        // Two of our messages to bob, sent at 100 and 300.
        for (n, time) in [(1, 100), (2, 300)] {
            let saved = save_outgoing(&mut conn, &outgoing_to_bob(&format!("o{n}")), time).unwrap();
            mark_sent(&mut conn, saved.id, &format!("mine-{n}"), time).unwrap();
        }
        insert_incoming(
            &mut conn,
            (1..=3).map(|s| entry(s, "bob", 100 * s as i64)),
            1,
        )
        .unwrap();
        let batch = vec![
            command(4, READ_NOTIFICATION, bob.clone(), "bob", 200),
            command(5, READ_SYNC, bob.clone(), "me", 200),
        ];
        let applied = apply_incoming(&mut conn, batch.clone(), 2).unwrap();
        assert!(applied.messages.is_empty(), "commands are not messages");
        assert_eq!(
            applied.applied,
            vec![
                Event::ReadReceipt {
                    conversation: bob.clone(),
                    last_message_send_time_ms: 200
                },
                Event::ConversationReadSynced {
                    conversation: bob.clone(),
                    last_message_send_time_ms: 200
                },
            ]
        );
        let statuses: Vec<_> = messages(&conn, &bob, 0, TimeOrder::After, 20)
            .unwrap()
            .into_iter()
            .filter(|m| m.direction == Direction::Send)
            .map(|m| m.sent_status)
            .collect();
        assert_eq!(statuses, [SentStatus::Read, SentStatus::Sent]);
        assert_eq!(unread_count(&conn, &bob).unwrap(), 1);
        assert_eq!(sync_cursor(&conn).unwrap(), 5);
        // The same commands again (a resend after a crash): nothing changes, nobody
        // is told.
        let again = apply_incoming(&mut conn, batch, 3).unwrap();
        assert!(again.applied.is_empty());
        let stored: i64 = conn
            .query_row("SELECT COUNT(*) FROM messages WHERE object_name LIKE 'RC:%Ntf' OR object_name = 'RC:SRSMsg'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(stored, 0);
        // A malformed one is skipped, the cursor goes on.
        let mut bad = command(6, READ_SYNC, bob.clone(), "me", 0);
        bad.message.content = "{".into();
        let skipped = apply_incoming(&mut conn, [bad], 4).unwrap();
        assert!(skipped.applied.is_empty());
        assert_eq!(sync_cursor(&conn).unwrap(), 6);
    }

    #[test]
    fn a_message_older_than_the_read_position_arrives_read() {
        let (_dir, mut conn) = db();
        let bob = ConversationKey::private("bob");
        insert_incoming(&mut conn, [entry(1, "bob", 500)], 1).unwrap();
        // Read on another device up to 500; then a message sent at 400 arrives
        // late, and one at 600.
        apply_incoming(
            &mut conn,
            [command(2, READ_SYNC, bob.clone(), "me", 500)],
            1,
        )
        .unwrap();
        assert_eq!(unread_count(&conn, &bob).unwrap(), 0);
        insert_incoming(&mut conn, [entry(3, "bob", 400), entry(4, "bob", 600)], 1).unwrap();
        assert_eq!(unread_count(&conn, &bob).unwrap(), 1);
        assert_eq!(unread_total(&conn, &[]).unwrap(), 1);
    }

    #[test]
    fn settings_survive_removal_and_deletes_keep_the_list_consistent() {
        let (_dir, mut conn) = db();
        let bob = ConversationKey::private("bob");
        insert_incoming(
            &mut conn,
            (1..=5).map(|s| entry(s, "bob", 100 * s as i64)),
            1,
        )
        .unwrap();
        set_setting(&conn, &bob, &Setting::Top(true)).unwrap();
        set_setting(&conn, &bob, &Setting::Draft("later".into())).unwrap();
        let queued = set_notification_level(&mut conn, &bob, 5, "n1".into()).unwrap();
        assert_eq!(queued.object_name, NOTIFICATION_LEVEL_COMMAND);
        // A second level replaces the queued one.
        set_notification_level(&mut conn, &bob, 1, "n2".into()).unwrap();
        let queue = command_outbox(&conn).unwrap();
        assert_eq!(queue.len(), 1);
        assert_eq!(queue[0].content, "1");
        let listed = conversations(&conn, &[], 0, 50).unwrap();
        assert!(listed[0].is_top);
        assert_eq!(listed[0].notification_level, 1);
        assert_eq!(listed[0].draft, "later");
        assert_eq!(draft(&conn, &bob).unwrap(), "later");
        assert_eq!(
            draft(&conn, &ConversationKey::private("nobody")).unwrap(),
            ""
        );

        // Delete the newest two by id: the last message and the count follow.
        let ids: Vec<i64> = messages(&conn, &bob, 0, TimeOrder::Before, 2)
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(
            delete_messages(&mut conn, &[ids[0], ids[1], 9_999]).unwrap(),
            2
        );
        let listed = conversations(&conn, &[], 0, 50).unwrap();
        assert_eq!(listed[0].unread_count, 3);
        assert_eq!(listed[0].operation_time_ms, 300);
        assert_eq!(unread_total(&conn, &[]).unwrap(), 3);
        // Up to a time.
        assert_eq!(delete_messages_before(&mut conn, &bob, 100).unwrap(), 1);
        assert_eq!(unread_total(&conn, &[]).unwrap(), 2);
        // Off the list: messages stay, read; settings stay.
        assert!(remove_conversation(&mut conn, &bob).unwrap());
        assert!(conversations(&conn, &[], 0, 50).unwrap().is_empty());
        assert_eq!(unread_total(&conn, &[]).unwrap(), 0);
        assert_eq!(
            messages(&conn, &bob, 0, TimeOrder::Before, 20)
                .unwrap()
                .len(),
            2
        );
        // A new message brings it back, with its settings and one unread.
        insert_incoming(&mut conn, [entry(6, "bob", 600)], 1).unwrap();
        let listed = conversations(&conn, &[], 0, 50).unwrap();
        assert_eq!(listed[0].unread_count, 1);
        assert!(listed[0].is_top);
        // Everything: off the list.
        assert_eq!(delete_messages_before(&mut conn, &bob, 0).unwrap(), 3);
        assert!(conversations(&conn, &[], 0, 50).unwrap().is_empty());
        assert_eq!(unread_total(&conn, &[]).unwrap(), 0);
        // An outgoing message still in the outbox leaves it when deleted.
        let out = save_outgoing(&mut conn, &outgoing_to_bob("q1"), 700).unwrap();
        assert_eq!(delete_messages(&mut conn, &[out.id]).unwrap(), 1);
        assert!(outbox(&conn).unwrap().is_empty());
    }
}
