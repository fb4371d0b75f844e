//! The store: owns the per-user SQLite database.
//!
//! One database per user, `<data-dir>/users/<user-id>/rcim.db`, in WAL mode. It is
//! opened and migrated *before* the handle is returned, so an open failure is
//! reported to the caller (as `onDatabaseOpened(33002)`) rather than discovered on
//! first use; a database written by a newer rcimd is refused, never touched.
//!
//! The handle's methods are the store's whole API: typed calls (the sync cursor,
//! inserting an incoming batch, the outbox, the queries apps make) that say what
//! they do, never SQL. rusqlite is named nowhere in the daemon outside this
//! module. Each method runs one query of `queries.rs` (plain functions of a
//! `&mut Connection`, tested without any async machinery) against the connection
//! on tokio's blocking pool, serialized by a mutex: rusqlite is blocking, and the
//! blocking pool is visible to tokio (paused-time tests wait for it, where a
//! private thread would let their clock jump ahead). The store is therefore not an
//! actor with a command queue: the mutex is its queue, and a handle is all a
//! caller needs.
//!
//! Durability rules (see docs/ARCHITECTURE.md): an incoming batch and the sync
//! cursor are committed in one transaction *before* the link acknowledges them
//! upstream or any client sees them; an outgoing message is in the outbox *before*
//! `onMessageSaved`.
//!
//! WAL checkpoints run in the background, off the commit path: see `checkpoint.rs`.

mod checkpoint;
mod queries;
mod schema;

pub use checkpoint::CHECKPOINT_PAGES;
pub use queries::{
    Incoming, MarkedRead, NOTIFICATION_LEVEL_COMMAND, Outgoing, QueuedCommand, Setting,
};

use checkpoint::Checkpoints;
use rcim_proto::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use rcim_proto::upstream::InboxEntry;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database file (or its WAL or shared-memory file) could not be made
    /// owner-only.
    #[error("cannot make {path} readable by its owner only (0600): {source}")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// The database was written by a newer rcimd.
    #[error(
        "database {path} has schema version {found}, newer than this rcimd knows ({known}); upgrade rcimd"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        known: i64,
    },
    /// The blocking task that ran the query failed (it panicked, or the runtime is
    /// shutting down).
    #[error("the database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Opens per-user databases under the data dir.
#[derive(Clone, Debug)]
pub struct StoreOpener {
    data_dir: PathBuf,
}

/// A handle to one open database. The database closes when the last handle drops.
#[derive(Clone)]
pub struct StoreHandle {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
    checkpoints: Arc<Checkpoints>,
    /// The unread total as of the last write (read after every write that changed
    /// rows, inside the same blocking call): status snapshots read it without
    /// waiting for the database, which a long sync commit may hold.
    unread_total: Arc<AtomicU64>,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle")
            .field("path", &self.path)
            .finish()
    }
}

impl StoreHandle {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` against the connection on the blocking pool, and starts a
    /// background checkpoint when the writes since the last one call for it.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = Arc::clone(&self.path);
        let checkpoints = Arc::clone(&self.checkpoints);
        let unread_total = Arc::clone(&self.unread_total);
        tokio::task::spawn_blocking(move || {
            let (result, changes) = {
                // A panic inside a query cannot leave SQLite half-written (the
                // transaction rolls back), so a poisoned lock is safe to reuse.
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let before = conn.total_changes();
                let result = f(&mut conn);
                let changes = conn.total_changes().wrapping_sub(before);
                if changes > 0 {
                    // A read of at most six kept rows (see `unread_totals`).
                    match queries::unread_total(&conn, &[]) {
                        Ok(total) => unread_total.store(total, Ordering::Relaxed),
                        Err(e) => tracing::warn!("cannot read the unread total: {e}"),
                    }
                }
                (result, changes)
            };
            checkpoints.after_write(changes, &path, &conn);
            result.map_err(|source| StoreError::Sqlite {
                path: path.as_ref().clone(),
                source,
            })
        })
        .await?
    }

    /// The last inbox sequence number committed (0 for a new database).
    pub async fn sync_cursor(&self) -> Result<u64, StoreError> {
        self.call(|conn| queries::sync_cursor(conn)).await
    }

    /// Commits a gapless run of inbox entries and the sync cursor in one
    /// transaction, received at `received_ms`. Returns the messages that were new,
    /// in order: an entry whose uid is already stored is skipped, so nothing is
    /// stored twice.
    pub async fn insert_incoming(
        &self,
        entries: Vec<InboxEntry>,
        received_ms: i64,
    ) -> Result<Vec<Message>, StoreError> {
        self.call(move |conn| queries::insert_incoming(conn, entries, received_ms))
            .await
    }

    /// [`StoreHandle::insert_incoming`], with the batch's commands (read receipts,
    /// read syncs) applied in the same transaction: the new messages and the
    /// events of what the commands changed.
    pub async fn insert_incoming_applying(
        &self,
        entries: Vec<InboxEntry>,
        received_ms: i64,
    ) -> Result<Incoming, StoreError> {
        self.call(move |conn| queries::insert_incoming_applying(conn, entries, received_ms))
            .await
    }

    /// Marks `conversation` read up to `up_to_ms` (0: its newest message) and
    /// queues the read sync (and for a private conversation the read
    /// notification) to send, in one transaction.
    pub async fn mark_read(
        &self,
        conversation: ConversationKey,
        up_to_ms: i64,
    ) -> Result<MarkedRead, StoreError> {
        self.call(move |conn| {
            queries::mark_read(conn, &conversation, up_to_ms, || {
                uuid::Uuid::now_v7().to_string()
            })
        })
        .await
    }

    /// Changes a conversation's pin or draft (RC's `changeConversationTopStatus`,
    /// `saveDraftMessage`).
    pub async fn set_setting(
        &self,
        conversation: ConversationKey,
        setting: Setting,
    ) -> Result<(), StoreError> {
        self.call(move |conn| queries::set_setting(conn, &conversation, &setting))
            .await
    }

    /// A conversation's draft (empty: none).
    pub async fn draft(&self, conversation: ConversationKey) -> Result<String, StoreError> {
        self.call(move |conn| queries::draft(conn, &conversation))
            .await
    }

    /// Sets a conversation's notification level and queues it for the server, in
    /// one transaction.
    pub async fn set_notification_level(
        &self,
        conversation: ConversationKey,
        level: i32,
    ) -> Result<QueuedCommand, StoreError> {
        self.call(move |conn| {
            queries::set_notification_level(
                conn,
                &conversation,
                level,
                uuid::Uuid::now_v7().to_string(),
            )
        })
        .await
    }

    /// RC's `removeConversation`: off the list, messages kept and read.
    pub async fn remove_conversation(
        &self,
        conversation: ConversationKey,
    ) -> Result<bool, StoreError> {
        self.call(move |conn| queries::remove_conversation(conn, &conversation))
            .await
    }

    /// Deletes messages by local id; how many were deleted.
    pub async fn delete_messages(&self, ids: Vec<i64>) -> Result<u64, StoreError> {
        self.call(move |conn| queries::delete_messages(conn, &ids))
            .await
    }

    /// Deletes a conversation's messages sent at or before `before_ms` (0: all).
    pub async fn delete_messages_before(
        &self,
        conversation: ConversationKey,
        before_ms: i64,
    ) -> Result<u64, StoreError> {
        self.call(move |conn| queries::delete_messages_before(conn, &conversation, before_ms))
            .await
    }

    /// Every queued read notification and read sync, oldest first.
    pub async fn command_outbox(&self) -> Result<Vec<QueuedCommand>, StoreError> {
        self.call(|conn| queries::command_outbox(conn)).await
    }

    /// The server answered queued command `id`: it leaves the queue.
    pub async fn command_done(&self, id: i64) -> Result<(), StoreError> {
        self.call(move |conn| queries::command_done(conn, id)).await
    }

    /// Stores an outgoing message, saved at `now_ms`, and queues it in the outbox,
    /// in one transaction.
    pub async fn save_outgoing(
        &self,
        outgoing: Outgoing,
        now_ms: i64,
    ) -> Result<Message, StoreError> {
        self.call(move |conn| queries::save_outgoing(conn, &outgoing, now_ms))
            .await
    }

    /// The server accepted outgoing message `id` as `uid` at `sent_time_ms`: it
    /// leaves the outbox. `None` when no such message is stored.
    pub async fn mark_sent(
        &self,
        id: i64,
        uid: String,
        sent_time_ms: i64,
    ) -> Result<Option<Message>, StoreError> {
        self.call(move |conn| queries::mark_sent(conn, id, &uid, sent_time_ms))
            .await
    }

    /// The server refused outgoing message `id` for good: it is marked failed and
    /// leaves the outbox. `None` when no such message is stored.
    pub async fn mark_failed(&self, id: i64) -> Result<Option<Message>, StoreError> {
        self.call(move |conn| queries::mark_failed(conn, id)).await
    }

    /// Every queued outgoing message, oldest first.
    pub async fn outbox(&self) -> Result<Vec<Message>, StoreError> {
        self.call(|conn| queries::outbox(conn)).await
    }

    /// RC's `getMessages`: up to `count` messages of `conversation` before or
    /// after `sent_time_ms`.
    pub async fn messages(
        &self,
        conversation: ConversationKey,
        sent_time_ms: i64,
        order: TimeOrder,
        count: u32,
    ) -> Result<Vec<Message>, StoreError> {
        self.call(move |conn| queries::messages(conn, &conversation, sent_time_ms, order, count))
            .await
    }

    /// RC's `getConversations`: up to `count` conversations of `types` (all when
    /// empty), newest first, optionally only older than `start_time_ms`.
    pub async fn conversations(
        &self,
        types: Vec<ConversationType>,
        start_time_ms: i64,
        count: u32,
    ) -> Result<Vec<Conversation>, StoreError> {
        self.call(move |conn| queries::conversations(conn, &types, start_time_ms, count))
            .await
    }

    /// RC's `clearUnreadCount`: received messages of `conversation` up to
    /// `timestamp_ms` (0: all) are read.
    pub async fn clear_unread(
        &self,
        conversation: ConversationKey,
        timestamp_ms: i64,
    ) -> Result<(), StoreError> {
        self.call(move |conn| queries::clear_unread(conn, &conversation, timestamp_ms))
            .await
    }

    /// The unread total over every conversation as of the last write, without
    /// touching the database (see [`StoreHandle::refresh_unread_total`] for the
    /// value before the first write).
    pub fn cached_unread_total(&self) -> u64 {
        self.unread_total.load(Ordering::Relaxed)
    }

    /// Reads the unread total into the cache (once, after opening; every write
    /// keeps it current from then on).
    pub async fn refresh_unread_total(&self) -> Result<u64, StoreError> {
        let total = self.unread_total(Vec::new()).await?;
        self.unread_total.store(total, Ordering::Relaxed);
        Ok(total)
    }

    /// The unread count of one conversation (RC's `getUnreadCount`).
    pub async fn unread_count(&self, conversation: ConversationKey) -> Result<u64, StoreError> {
        self.call(move |conn| queries::unread_count(conn, &conversation))
            .await
    }

    /// The unread count over every conversation of `types`, all when empty (RC's
    /// `getTotalUnreadCount` and `getUnreadCountByConversationTypes`). Kept per
    /// type in the database as counts change: one small read, whatever the number
    /// of messages.
    pub async fn unread_total(&self, types: Vec<ConversationType>) -> Result<u64, StoreError> {
        self.call(move |conn| queries::unread_total(conn, &types))
            .await
    }

    /// Up to `limit` received messages stored after local id `after`, in order
    /// (for replay to a client).
    pub async fn messages_after(&self, after: i64, limit: u32) -> Result<Vec<Message>, StoreError> {
        self.call(move |conn| queries::messages_after(conn, after, limit))
            .await
    }

    /// Background checkpoint passes run so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.done()
    }
}

impl StoreOpener {
    /// Databases go under `data_dir/users/`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
        }
    }

    /// The database file of `user_id`.
    pub fn path_for(&self, user_id: &str) -> PathBuf {
        self.data_dir
            .join("users")
            .join(dir_name(user_id))
            .join("rcim.db")
    }

    /// Opens (creating and migrating as needed) the database of `user_id`.
    pub async fn open(&self, user_id: &str) -> Result<StoreHandle, StoreError> {
        let path = self.path_for(user_id);
        let (db_path, user) = (path.clone(), user_id.to_owned());
        let conn = tokio::task::spawn_blocking(move || schema::open(&db_path, &user)).await??;
        tracing::info!("database open: {}", path.display());
        Ok(StoreHandle {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            checkpoints: Arc::default(),
            unread_total: Arc::default(),
        })
    }
}

/// A directory name for a user id: the id itself when it is made of RC's user-id
/// characters (letters, digits, `+ = - _`), otherwise a hex encoding, so that no id
/// can escape the data dir or collide with another.
fn dir_name(user_id: &str) -> String {
    let plain = !user_id.is_empty()
        && user_id.len() <= 64
        && user_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=-_".contains(&b));
    if plain {
        user_id.to_owned()
    } else {
        let hex: String = user_id.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    }
}

/// Creates `dir` and its parents, owner-only on Unix.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_cannot_escape() {
        assert_eq!(dir_name("alice_1+=-"), "alice_1+=-");
        assert_eq!(dir_name("../etc"), "x-2e2e2f657463");
        assert_eq!(dir_name(""), "x-");
        assert_ne!(dir_name("x-41"), dir_name("A"));
    }

    #[tokio::test]
    async fn opens_and_migrates_then_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let opener = StoreOpener::new(dir.path());
        let handle = opener.open("alice").await.unwrap();
        assert!(handle.path().exists());
        drop(handle);
        let handle = opener.open("alice").await.unwrap();
        let (version, owner) = handle
            .call(|conn| {
                let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
                let owner: String =
                    conn.query_row("SELECT value FROM meta WHERE key = 'user_id'", [], |r| {
                        r.get(0)
                    })?;
                Ok((version, owner))
            })
            .await
            .unwrap();
        assert_eq!(version, schema::VERSION);
        assert_eq!(owner, "alice");
    }

    #[tokio::test]
    async fn the_cached_unread_total_follows_every_write() {
        use rcim_proto::message::WireMessage;
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreOpener::new(dir.path()).open("dora").await.unwrap();
        assert_eq!(handle.refresh_unread_total().await.unwrap(), 0);
        let entries = (1..=3)
            .map(|seq| InboxEntry {
                seq,
                message: WireMessage {
                    uid: format!("u{seq}"),
                    conversation: ConversationKey::private("bob"),
                    sender: "bob".into(),
                    object_name: "RC:TxtMsg".into(),
                    content: "{}".into(),
                    sent_time_ms: 100 * seq as i64,
                },
            })
            .collect();
        handle.insert_incoming(entries, 1).await.unwrap();
        assert_eq!(handle.cached_unread_total(), 3);
        handle
            .mark_read(ConversationKey::private("bob"), 200)
            .await
            .unwrap();
        assert_eq!(handle.cached_unread_total(), 1);
        // A fresh handle on the same file starts from the database.
        drop(handle);
        let again = StoreOpener::new(dir.path()).open("dora").await.unwrap();
        assert_eq!(again.cached_unread_total(), 0, "not read yet");
        assert_eq!(again.refresh_unread_total().await.unwrap(), 1);
        assert_eq!(again.cached_unread_total(), 1);
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let opener = StoreOpener::new(dir.path());
        let path = opener.path_for("bob");
        create_private_dir(path.parent().unwrap()).unwrap();
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = opener.open("bob").await.unwrap_err();
        assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    }

    /// The mode bits of `path` and of its WAL and shared-memory files.
    #[cfg(unix)]
    fn modes(path: &Path) -> Vec<(String, u32)> {
        use std::os::unix::fs::PermissionsExt;
        ["", "-wal", "-shm"]
            .into_iter()
            .map(|suffix| {
                let mut file = path.as_os_str().to_owned();
                file.push(suffix);
                let mode = std::fs::metadata(&file)
                    .map(|m| m.permissions().mode() & 0o777)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                (format!("rcim.db{suffix}"), mode)
            })
            .collect()
    }

    /// What [`modes`] must say.
    #[cfg(unix)]
    fn all_private() -> Vec<(String, u32)> {
        ["rcim.db", "rcim.db-wal", "rcim.db-shm"]
            .into_iter()
            .map(|name| (name.to_owned(), 0o600))
            .collect()
    }

    /// The usual umask (022) would make SQLite's files 0644: the database, its WAL
    /// and its shared-memory file are 0600 from the start instead.
    #[cfg(unix)]
    #[tokio::test]
    async fn database_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreOpener::new(dir.path()).open("frank").await.unwrap();
        handle.sync_cursor().await.unwrap();
        assert_eq!(modes(handle.path()), all_private());
    }

    /// A database an older rcimd created 0644, with the WAL and shared-memory
    /// files a crash left behind (0644 too), is narrowed to 0600 when it is opened.
    #[cfg(unix)]
    #[tokio::test]
    async fn an_older_wide_database_is_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let opener = StoreOpener::new(dir.path());
        let path = opener.path_for("gina");
        drop(opener.open("gina").await.unwrap());
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            // A clean close removed the WAL and shared-memory files; empty ones
            // are what SQLite finds after a crash before the first write.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&file)
                .unwrap();
            file.set_permissions(std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        assert!(modes(&path).iter().all(|(_, mode)| *mode == 0o644));
        let handle = opener.open("gina").await.unwrap();
        assert_eq!(handle.sync_cursor().await.unwrap(), 0);
        assert_eq!(modes(&path), all_private());
    }

    #[tokio::test]
    async fn reports_an_unusable_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = StoreOpener::new(&file).open("carol").await.unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
    }
}
