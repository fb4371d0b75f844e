//! The database schema and its migrations, keyed on `PRAGMA user_version`.
//!
//! Each migration runs in its own transaction together with the version bump, so a
//! crash mid-migration leaves the previous version intact. Only ever append.

use super::cipher::{self, DbKey};
use super::{StoreError, create_private_dir};
use rusqlite::Connection;
use std::path::Path;

/// The searchable words of a message of type `$o` with content `$c` (SQL
/// expressions), as one SQL expression: a text message's text, a reference's
/// text, a file's name, a rich message's title and text, a location's name;
/// nothing for other types (recall notifications included) or content that is
/// not JSON. RC's `getSearchableWords` of the same types.
macro_rules! searchable_words {
    ($o:literal, $c:literal) => {
        concat!(
            "trim(CASE WHEN json_valid(",
            $c,
            ") THEN CASE ",
            $o,
            " WHEN 'RC:TxtMsg' THEN coalesce(json_extract(",
            $c,
            ", '$.content'), '')",
            " WHEN 'RC:ReferenceMsg' THEN coalesce(json_extract(",
            $c,
            ", '$.content'), '')",
            " WHEN 'RC:FileMsg' THEN coalesce(json_extract(",
            $c,
            ", '$.name'), '')",
            " WHEN 'RC:ImgTextMsg' THEN coalesce(json_extract(",
            $c,
            ", '$.title'), '') || ' ' || coalesce(json_extract(",
            $c,
            ", '$.content'), '')",
            " WHEN 'RC:LBSMsg' THEN coalesce(json_extract(",
            $c,
            ", '$.poi'), '')",
            " ELSE '' END ELSE '' END)"
        )
    };
}

/// The insert that indexes the messages with local ids in `?1 < id <= ?2`
/// (`queries::index_pending`).
pub(super) const INDEX_RANGE: &str = concat!(
    "INSERT INTO message_search (rowid, words) SELECT id, w FROM (SELECT id, ",
    searchable_words!("object_name", "content"),
    " AS w FROM messages WHERE id > ?1 AND id <= ?2) WHERE w != ''"
);

/// Migrations in order; `PRAGMA user_version` is the number applied.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the owner of the database.
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;",
    // 2: messages, conversations, the outbox and the sync cursor.
    "CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT UNIQUE,
        conv_type INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        sender TEXT NOT NULL,
        object_name TEXT NOT NULL,
        content TEXT NOT NULL,
        sent_time INTEGER NOT NULL,
        received_time INTEGER NOT NULL,
        direction INTEGER NOT NULL,
        sent_status INTEGER NOT NULL,
        client_msg_id TEXT UNIQUE,
        unread INTEGER NOT NULL DEFAULT 0
     ) STRICT;
     CREATE INDEX messages_by_conversation ON messages (conv_type, target_id, sent_time, id);
     CREATE TABLE conversations (
        conv_type INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        last_message_id INTEGER NOT NULL REFERENCES messages (id),
        unread_count INTEGER NOT NULL DEFAULT 0,
        operation_time INTEGER NOT NULL,
        PRIMARY KEY (conv_type, target_id)
     ) STRICT;
     CREATE TABLE outbox (
        message_id INTEGER PRIMARY KEY REFERENCES messages (id)
     ) STRICT;
     CREATE TABLE sync_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        inbox_seq INTEGER NOT NULL
     ) STRICT;
     INSERT INTO sync_state (id, inbox_seq) VALUES (1, 0);",
    // 3 (issue 15, local search): a full-text index of each message's searchable
    // words, built off the commit path: `search_state.indexed_through` is the
    // last local id indexed, and the store's background indexer (and every
    // search, first) indexes the messages after it, in steps (see
    // `search_index.rs`; indexing inside the commit halved the commit path's
    // rate, PERFORMANCE.md). Updates (a recall) and deletes of indexed messages,
    // whoever makes them, keep the index true through triggers; a message not
    // indexed yet is indexed as it is when its turn comes. Rows already stored
    // are indexed here. Contentless (it keeps no copy of the text) with
    // contentless_delete, and secure-delete so a deleted row's words leave the
    // index at once rather than at a later merge.
    concat!(
        "CREATE VIRTUAL TABLE message_search USING fts5(
            words, content = '', contentless_delete = 1,
            tokenize = 'unicode61 remove_diacritics 2'
         );
         INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1);
         CREATE TABLE search_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            indexed_through INTEGER NOT NULL
         ) STRICT;
         INSERT INTO search_state (id, indexed_through)
         SELECT 1, coalesce(max(id), 0) FROM messages;
         CREATE TRIGGER message_search_delete AFTER DELETE ON messages
         WHEN old.id <= (SELECT indexed_through FROM search_state WHERE id = 1)
         BEGIN
            DELETE FROM message_search WHERE rowid = old.id;
         END;
         CREATE TRIGGER message_search_update AFTER UPDATE OF object_name, content ON messages
         WHEN old.id <= (SELECT indexed_through FROM search_state WHERE id = 1)
         BEGIN
            DELETE FROM message_search WHERE rowid = old.id;
            INSERT INTO message_search (rowid, words)
            SELECT new.id, w FROM (SELECT ",
        searchable_words!("new.object_name", "new.content"),
        " AS w) WHERE w != '';
         END;
         INSERT INTO message_search (rowid, words)
         SELECT id, w FROM (SELECT id, ",
        searchable_words!("object_name", "content"),
        " AS w FROM messages) WHERE w != '';"
    ),
    // 4 (issue 15, unread counts): the unread total per conversation type, kept
    // by triggers on every change of a conversation's unread count, so the total
    // and the per-type counts are one row read each, never a count over messages.
    "CREATE TABLE unread_totals (
        conv_type INTEGER PRIMARY KEY,
        unread INTEGER NOT NULL
     ) STRICT;
     INSERT INTO unread_totals (conv_type, unread)
        SELECT conv_type, SUM(unread_count) FROM conversations GROUP BY conv_type;
     CREATE TRIGGER unread_totals_on_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO unread_totals (conv_type, unread) VALUES (NEW.conv_type, NEW.unread_count)
        ON CONFLICT (conv_type) DO UPDATE SET unread = unread + excluded.unread;
     END;
     CREATE TRIGGER unread_totals_on_update AFTER UPDATE OF unread_count ON conversations
        WHEN NEW.unread_count <> OLD.unread_count BEGIN
        UPDATE unread_totals SET unread = unread + NEW.unread_count - OLD.unread_count
        WHERE conv_type = NEW.conv_type;
     END;
     CREATE TRIGGER unread_totals_on_delete AFTER DELETE ON conversations BEGIN
        UPDATE unread_totals SET unread = unread - OLD.unread_count
        WHERE conv_type = OLD.conv_type;
     END;",
    // 5 (issue 15, read receipts and read sync): this user's read position and
    // the private peer's per conversation, and the read notifications and read
    // syncs waiting to be sent (queued with the cleared count, in one transaction).
    "CREATE TABLE read_state (
        conv_type INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        read_time INTEGER NOT NULL DEFAULT 0,
        peer_read_time INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conv_type, target_id)
     ) STRICT;
     CREATE TABLE command_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conv_type INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        object_name TEXT NOT NULL,
        content TEXT NOT NULL,
        client_msg_id TEXT NOT NULL UNIQUE
     ) STRICT;",
    // 6 (issue 15, conversation settings): pinned, the notification level (also
    // synced to the server) and the draft, per conversation; kept apart from the
    // list's rows, so a conversation taken off the list keeps them.
    "CREATE TABLE conversation_settings (
        conv_type INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        is_top INTEGER NOT NULL DEFAULT 0,
        notification_level INTEGER NOT NULL DEFAULT 0,
        draft TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (conv_type, target_id)
     ) STRICT;",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// SQLite's automatic checkpoint, in WAL pages (160 MiB): only a backstop. The
/// store checkpoints in the background every [`super::CHECKPOINT_PAGES`], but
/// the WAL starts over only once a checkpoint has copied all of it, which a
/// steady stream of commits never lets happen; this one runs inside a commit,
/// fsyncs included, and stalls it (28 ms here at 10,000 msg/s with the backstop
/// at 10,000 pages, once a second). At this size a steady 10,000 msg/s reaches
/// it every four seconds or so; ordinary traffic, with pauses, never does.
pub const AUTOCHECKPOINT_PAGES: i64 = 40 * super::CHECKPOINT_PAGES as i64;

/// A WAL file over this size (16 MiB) is cut back once the store is quiet, so a
/// burst that grew it does not keep the disk space (see
/// `super::checkpoint`; the writer itself never cuts it).
pub const WAL_SIZE_LIMIT: u64 = 16 << 20;

/// Opens, configures and migrates the database at `path`, owned by `user_id`,
/// with `key` when it is encrypted (set before anything is read).
pub fn open(path: &Path, user_id: &str, key: Option<&DbKey>) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    make_private(path)?;
    let sqlite = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(sqlite)?;
    if let Some(key) = key {
        cipher::unlock(&conn, key).map_err(sqlite)?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite)?;
    // NORMAL in WAL mode: a committed transaction survives a crash of rcimd (the
    // WAL is written before COMMIT returns); only an OS crash or power loss may
    // lose the last commits, which the server then sends again (the cursor is in
    // the same transaction, so nothing is duplicated either).
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite)?;
    conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)
        .map_err(sqlite)?;
    // Never cut the WAL file inside a commit (the background checkpointer does it
    // when the store is quiet).
    conn.pragma_update(None, "journal_size_limit", -1)
        .map_err(sqlite)?;
    // The statements the store prepares (eight shapes of the incoming insert and
    // about fifteen others) all stay prepared.
    conn.set_prepared_statement_cache_capacity(32);
    // Statement journals (a multi-row insert keeps one) stay in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(sqlite)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite)?;
    if version > VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known: VERSION,
        });
    }
    let start = usize::try_from(version).unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(start) {
        let tx = conn.transaction().map_err(sqlite)?;
        tx.execute_batch(sql).map_err(sqlite)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .map_err(sqlite)?;
        tx.commit().map_err(sqlite)?;
    }
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('user_id', ?1)
         ON CONFLICT (key) DO NOTHING",
        [user_id],
    )
    .map_err(sqlite)?;
    Ok(conn)
}

/// Makes the database file at `path` readable by its owner only (0600), creating
/// it empty if it does not exist yet (SQLite takes an empty file as a new
/// database), and narrows its WAL and shared-memory files if an older rcimd left
/// them wider. SQLite gives the WAL and shared-memory files it creates the
/// database file's own mode, so all three stay owner-only from then on, whatever
/// the umask. Messages are private: the data dir is 0700 too, but a file that is
/// copied, backed up or moved out of it keeps its own mode.
#[cfg(unix)]
pub(super) fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = |file: &Path| -> std::io::Result<()> {
        let mode = std::fs::metadata(file)?.permissions().mode() & 0o777;
        if mode != 0o600 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    };
    let failed = |file: &Path| {
        let file = file.to_owned();
        move |source| StoreError::Permissions { path: file, source }
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .and_then(|_| private(path))
        .map_err(failed(path))?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        match private(&side) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            other => other.map_err(failed(&side))?,
        }
    }
    Ok(())
}

/// Elsewhere (Windows) the file inherits the access of the per-user data dir it
/// is created in.
#[cfg(not(unix))]
pub(super) fn make_private(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}

/// A second connection to the already open database at `path` (keyed with
/// `key` first when it is encrypted), for background checkpoints only.
pub fn open_checkpointer(path: &Path, key: Option<&DbKey>) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if let Some(key) = key {
        cipher::unlock(&conn, key)?;
    }
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // The same durability as the writer: the WAL is synced before it is copied,
    // the database after.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // This connection never checkpoints by itself on a commit (it never commits).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}
