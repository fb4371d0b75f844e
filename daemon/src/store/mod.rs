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
//!
//! Encryption at rest (see `cipher.rs`): with a token store that keeps keys (any
//! OS keyring), every database is a SQLCipher database whose random key sits in
//! that store. [`StoreOpener::open`] gets the key (making and saving one first
//! for a new database), encrypts a plain database left by an older rcimd in
//! place, and, when the store answers that it has no key for an encrypted
//! database (a reset keyring), moves the unreadable file aside under a dated
//! name and starts a new one, which the sync fills again from the server. With
//! the memory token store there is no safe place for a key, so databases stay
//! plain, and the status says so.

mod checkpoint;
pub mod cipher;
mod queries;
mod schema;
mod search_index;

pub use checkpoint::CHECKPOINT_PAGES;
pub use queries::{
    Incoming, MarkedRead, NOTIFICATION_LEVEL_COMMAND, Outgoing, QueuedCommand, Setting,
};

use crate::vault::{KeyError, KeyLookup, Vault};
use checkpoint::Checkpoints;
use cipher::{DbKey, FileKind};
use rcim_proto::message::{Conversation, ConversationKey, ConversationType, Message, TimeOrder};
use rcim_proto::status::DatabaseInfo;
use rcim_proto::upstream::InboxEntry;
use rusqlite::Connection;
use search_index::SearchIndexer;
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
    /// The database file's first bytes could not be read.
    #[error("cannot read {path}: {source}")]
    Inspect {
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
    /// The database is encrypted but this rcimd keeps no keys (memory token
    /// store); nothing was changed.
    #[error(
        "database {path} is encrypted and the memory token store keeps no key; run rcimd with the token store that keeps its key (--token-store auto, secret-service or keyutils)"
    )]
    EncryptedWithoutKeyStore {
        /// The database file.
        path: PathBuf,
    },
    /// The key could not be read or saved; nothing was changed, and the next
    /// open tries again.
    #[error("the key of database {path}: {source}")]
    Key {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: KeyError,
    },
    /// A plain database could not be encrypted (it is unchanged).
    #[error(transparent)]
    Convert(#[from] cipher::ConvertError),
    /// A database whose key was lost could not be moved aside.
    #[error("cannot move {path} aside: {source}")]
    MoveAside {
        /// The database file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `--decrypt-db` found no key for the database.
    #[error(
        "the {store} store has no key for {path}; was it encrypted by rcimd with another token store or on another machine?"
    )]
    NoKey {
        /// The database file.
        path: PathBuf,
        /// The store asked.
        store: String,
    },
    /// `--encrypt-db`/`--decrypt-db` was given a path with no database.
    #[error("{0} is not a database (no such file, or it is empty)")]
    NotADatabaseFile(PathBuf),
    /// The OS gave no randomness for a new key.
    #[error(transparent)]
    NoRandomness(#[from] cipher::NoRandomness),
    /// The blocking task that ran the query failed (it panicked, or the runtime is
    /// shutting down).
    #[error("the database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Opens per-user databases under the data dir.
#[derive(Clone, Debug)]
pub struct StoreOpener {
    data_dir: PathBuf,
    keys: Keys,
    /// What the last open found, for the status.
    info: Arc<Mutex<Option<DatabaseInfo>>>,
}

/// Where database keys come from.
#[derive(Clone, Debug)]
pub enum Keys {
    /// Nowhere safe (the memory token store): databases stay plain, for the
    /// reason given.
    None(String),
    /// The vault's store, beside the token.
    Vault(Vault),
}

impl Keys {
    /// The keys `vault` can keep: its store, unless it keeps none.
    pub fn from_vault(vault: &Vault) -> Self {
        if vault.keeps_keys() {
            Self::Vault(vault.clone())
        } else {
            Self::None(format!(
                "the {} token store has no safe place for a key",
                vault.store()
            ))
        }
    }
}

/// A handle to one open database. The database closes when the last handle drops.
#[derive(Clone)]
pub struct StoreHandle {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
    checkpoints: Arc<Checkpoints>,
    indexer: Arc<SearchIndexer>,
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
        let indexer = Arc::clone(&self.indexer);
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
            indexer.after_write(changes, &conn);
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

    /// [`StoreHandle::insert_incoming`], with the batch's commands (recalls, read
    /// receipts, read syncs) applied in the same transaction: the new messages
    /// and the events of what the commands changed.
    pub async fn apply_incoming(
        &self,
        entries: Vec<InboxEntry>,
        received_ms: i64,
    ) -> Result<Incoming, StoreError> {
        self.call(move |conn| queries::apply_incoming(conn, entries, received_ms))
            .await
    }

    /// The server confirmed a recall this device asked for: the message with
    /// `uid` becomes the `RC:RcNtf` with `content`. `None` when it is not stored
    /// here or was recalled already.
    pub async fn apply_recall(
        &self,
        uid: String,
        content: String,
    ) -> Result<Option<Message>, StoreError> {
        self.call(move |conn| queries::apply_recall(conn, &uid, &content))
            .await
    }

    /// A local full-text search, newest first (see `SearchQuery`).
    pub async fn search(
        &self,
        query: rcim_proto::ipc::SearchQuery,
    ) -> Result<Vec<Message>, StoreError> {
        self.call(move |conn| queries::search(conn, &query)).await
    }

    /// The last local id the search index covers (tests and diagnostics).
    pub async fn indexed_through(&self) -> Result<i64, StoreError> {
        self.call(|conn| {
            conn.query_row(
                "SELECT indexed_through FROM search_state WHERE id = 1",
                [],
                |row| row.get(0),
            )
        })
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

    /// The stored message with server uid `uid`, if any.
    pub async fn message_by_uid(&self, uid: String) -> Result<Option<Message>, StoreError> {
        self.call(move |conn| queries::message_by_uid(conn, &uid))
            .await
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
    /// Databases go under `data_dir/users/`, plain (tests of everything but
    /// encryption).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self::with_keys(data_dir, Keys::None("no key store was given".into()))
    }

    /// Databases go under `data_dir/users/`, with keys from `keys`.
    pub fn with_keys(data_dir: impl Into<PathBuf>, keys: Keys) -> Self {
        Self {
            data_dir: data_dir.into(),
            keys,
            info: Arc::default(),
        }
    }

    /// What the last open found: the file, whether it is encrypted and where its
    /// key is, and databases moved aside.
    pub fn info(&self) -> Option<DatabaseInfo> {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The database file of `user_id`.
    pub fn path_for(&self, user_id: &str) -> PathBuf {
        self.data_dir
            .join("users")
            .join(dir_name(user_id))
            .join("rcim.db")
    }

    /// Opens (creating, encrypting and migrating as needed) the database of
    /// `user_id`.
    pub async fn open(&self, user_id: &str) -> Result<StoreHandle, StoreError> {
        let path = self.path_for(user_id);
        let kind = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || prepare(&path)).await??
        };
        let (key, plain_reason) = match &self.keys {
            Keys::None(reason) => {
                if kind == FileKind::Encrypted {
                    return Err(StoreError::EncryptedWithoutKeyStore { path });
                }
                tracing::warn!(
                    "database {} is not encrypted: {reason} (choose an OS keyring with --token-store)",
                    path.display()
                );
                (None, Some(reason.clone()))
            }
            Keys::Vault(vault) => (Some(self.key_for(vault, &path, kind).await?), None),
        };
        let (db_path, user, db_key) = (path.clone(), user_id.to_owned(), key.clone());
        let conn = tokio::task::spawn_blocking(move || {
            if let (FileKind::Plain, Some(key)) = (kind, &db_key) {
                tracing::info!("encrypting the database {} in place", db_path.display());
                cipher::convert(&db_path, key, cipher::Direction::Encrypt)?;
            }
            schema::open(&db_path, &user, db_key.as_ref())
        })
        .await??;
        let moved_aside = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || moved_aside(&path)).await?
        };
        let info = DatabaseInfo {
            path: path.display().to_string(),
            encrypted: key.is_some(),
            key_store: match &self.keys {
                Keys::Vault(vault) => Some(vault.store().to_string()),
                Keys::None(_) => None,
            },
            plain_reason,
            moved_aside,
        };
        tracing::info!(
            "database open: {} ({})",
            path.display(),
            if info.encrypted {
                "encrypted"
            } else {
                "NOT encrypted"
            }
        );
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = Some(info);
        Ok(StoreHandle {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            checkpoints: Arc::new(Checkpoints::new(key)),
            indexer: Arc::default(),
            unread_total: Arc::default(),
        })
    }

    /// The key of the database at `path` (`kind` says what is there now). A new
    /// or plain database gets the stored key, or a new one saved first. An
    /// encrypted database the store has no key for, or whose stored key does not
    /// open it, is moved aside, and a new one is started with a new key.
    async fn key_for(
        &self,
        vault: &Vault,
        path: &Path,
        kind: FileKind,
    ) -> Result<DbKey, StoreError> {
        let account = crate::vault::key_account(path);
        let key_error = |source| StoreError::Key {
            path: path.to_owned(),
            source,
        };
        let stored = vault.database_key(&account).await.map_err(key_error)?;
        let usable = match (stored, kind) {
            (KeyLookup::Found(key), FileKind::Encrypted) => {
                let (file, test_key) = (path.to_owned(), key.clone());
                let opens =
                    tokio::task::spawn_blocking(move || key_opens(&file, &test_key)).await??;
                if opens {
                    return Ok(key);
                }
                tracing::error!(
                    "the key in the {} store does not open the database {}",
                    vault.store(),
                    path.display()
                );
                false
            }
            (KeyLookup::Found(key), _) => return Ok(key),
            (KeyLookup::Missing, FileKind::Encrypted) => {
                tracing::error!(
                    "the {} store has no key for the encrypted database {}",
                    vault.store(),
                    path.display()
                );
                false
            }
            (KeyLookup::Missing, _) => true,
        };
        if !usable {
            let stamp = cipher::file_stamp(rcim_proto::time::now_ms());
            let from = path.to_owned();
            let moved = tokio::task::spawn_blocking(move || cipher::move_aside(&from, &stamp))
                .await?
                .map_err(|source| StoreError::MoveAside {
                    path: path.to_owned(),
                    source,
                })?;
            tracing::error!(
                "the database key is lost: moved the unreadable database to {} (nothing was deleted; \
                 with its key back it opens again). A new database starts now and the sync fetches \
                 the messages the server still holds; messages that were waiting in its outbox \
                 cannot be counted or sent without the key",
                moved.display()
            );
        }
        new_saved_key(vault, path, &account).await
    }
}

/// A new key for the database at `path`, saved under `account` in `vault`'s
/// store and confirmed there before it is returned (a database is encrypted
/// with a key only once the key is safe).
async fn new_saved_key(vault: &Vault, path: &Path, account: &str) -> Result<DbKey, StoreError> {
    let key = DbKey::generate()?;
    vault
        .save_database_key(account, &key)
        .await
        .map_err(|source| StoreError::Key {
            path: path.to_owned(),
            source,
        })?;
    Ok(key)
}

/// `rcimd --encrypt-db PATH` and `--decrypt-db PATH`: converts the database at
/// `path` in place, with its key in `vault`'s store (a new key, saved first, to
/// encrypt a database that never had one). rcimd must not be running on it.
/// Returns what was done, for the person who asked.
pub async fn convert_offline(
    path: &Path,
    direction: cipher::Direction,
    vault: &Vault,
) -> Result<String, StoreError> {
    let kind = {
        let file = path.to_owned();
        tokio::task::spawn_blocking(move || cipher::file_kind(&file))
            .await?
            .map_err(|source| StoreError::Inspect {
                path: path.to_owned(),
                source,
            })?
    };
    let account = crate::vault::key_account(path);
    let key_error = |source| StoreError::Key {
        path: path.to_owned(),
        source,
    };
    let store = vault.store();
    let key = match (direction, kind) {
        (_, FileKind::New) => return Err(StoreError::NotADatabaseFile(path.to_owned())),
        (cipher::Direction::Encrypt, FileKind::Encrypted) => {
            return Ok(format!(
                "{} is already encrypted; nothing to do",
                path.display()
            ));
        }
        (cipher::Direction::Decrypt, FileKind::Plain) => {
            return Ok(format!(
                "{} is not encrypted; nothing to do",
                path.display()
            ));
        }
        (cipher::Direction::Encrypt, FileKind::Plain) => {
            match vault.database_key(&account).await.map_err(key_error)? {
                KeyLookup::Found(key) => key,
                KeyLookup::Missing => new_saved_key(vault, path, &account).await?,
            }
        }
        (cipher::Direction::Decrypt, FileKind::Encrypted) => {
            match vault.database_key(&account).await.map_err(key_error)? {
                KeyLookup::Found(key) => key,
                KeyLookup::Missing => {
                    return Err(StoreError::NoKey {
                        path: path.to_owned(),
                        store: store.to_string(),
                    });
                }
            }
        }
    };
    {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || cipher::convert(&path, &key, direction)).await??;
    }
    Ok(match direction {
        cipher::Direction::Encrypt => format!(
            "{} is encrypted now; its key is in the {store} store",
            path.display()
        ),
        cipher::Direction::Decrypt => format!(
            "{} is plain now (its key stays in the {store} store); rcimd encrypts it again at its next start unless it runs with --token-store memory",
            path.display()
        ),
    })
}

/// Creates the user's directory and the database file (empty, 0600) and says
/// what is there. Blocking.
fn prepare(path: &Path) -> Result<FileKind, StoreError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    schema::make_private(path)?;
    cipher::file_kind(path).map_err(|source| StoreError::Inspect {
        path: path.to_owned(),
        source,
    })
}

/// Whether `key` opens the encrypted database at `path`. Blocking.
fn key_opens(path: &Path, key: &DbKey) -> Result<bool, StoreError> {
    let sqlite = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let conn = Connection::open(path).map_err(sqlite)?;
    match cipher::unlock(&conn, key) {
        Ok(()) => Ok(true),
        Err(e) if cipher::is_not_a_database(&e) => Ok(false),
        Err(e) => Err(sqlite(e)),
    }
}

/// The databases of this user moved aside earlier (`rcim.db.unreadable-*`),
/// oldest first. Blocking; an unreadable directory lists none.
fn moved_aside(path: &Path) -> Vec<String> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.unreadable-", name.to_string_lossy());
    let mut moved: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|file| {
            file.file_name()
                .map(|n| n.to_string_lossy())
                .is_some_and(|n| {
                    n.starts_with(&prefix) && !n.ends_with("-wal") && !n.ends_with("-shm")
                })
        })
        .map(|file| file.display().to_string())
        .collect();
    moved.sort();
    moved
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

    /// A marker text that must never be found in the files of an encrypted
    /// database.
    const MARKER: &str = "marker-0c3e9a-secret-text";

    fn incoming(seq: u64, text: &str) -> InboxEntry {
        InboxEntry {
            seq,
            message: rcim_proto::message::WireMessage {
                uid: format!("uid-{seq:06}"),
                conversation: ConversationKey::private("bob"),
                sender: "bob".into(),
                object_name: "RC:TxtMsg".into(),
                content: format!("{{\"content\":\"{text} {seq}\"}}"),
                sent_time_ms: 1_000 + seq as i64,
            },
        }
    }

    /// Stores `count` incoming messages with the marker, and one outgoing.
    async fn fill(handle: &StoreHandle, from_seq: u64, count: u64) {
        let entries = (from_seq..from_seq + count)
            .map(|seq| incoming(seq, MARKER))
            .collect();
        handle.insert_incoming(entries, 5_000).await.unwrap();
        handle
            .save_outgoing(
                Outgoing {
                    sender: "alice".into(),
                    conversation: ConversationKey::private("bob"),
                    object_name: "RC:TxtMsg".into(),
                    content: format!("{{\"content\":\"{MARKER} out\"}}"),
                    client_msg_id: format!("c-{from_seq}"),
                },
                6_000,
            )
            .await
            .unwrap();
    }

    /// The texts of the stored messages with bob, oldest first.
    async fn texts(handle: &StoreHandle) -> Vec<String> {
        let mut messages = handle
            .messages(ConversationKey::private("bob"), 0, TimeOrder::Before, 1_000)
            .await
            .unwrap();
        messages.reverse();
        messages.into_iter().map(|m| m.content).collect()
    }

    /// Whether any file in `dir` (the database, its WAL and shared-memory files,
    /// anything else) holds `needle`.
    fn found_in(dir: &Path, needle: &str) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|file| {
                std::fs::read(file)
                    .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }

    #[tokio::test]
    async fn a_new_database_is_encrypted_and_no_file_holds_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let opener = StoreOpener::with_keys(dir.path(), Keys::Vault(crate::vault::mock().await));
        let handle = opener.open("alice").await.unwrap();
        fill(&handle, 1, 50).await;
        let user_dir = handle.path().parent().unwrap().to_owned();
        // The WAL holds the writes (no checkpoint yet): it is encrypted too.
        assert!(cipher::with_suffix(handle.path(), "-wal").exists());
        assert_eq!(found_in(&user_dir, MARKER), Vec::<PathBuf>::new());
        assert_eq!(
            cipher::file_kind(handle.path()).unwrap(),
            FileKind::Encrypted
        );
        let info = opener.info().unwrap();
        assert!(info.encrypted);
        assert_eq!(info.key_store.as_deref(), Some("keyutils"));
        assert!(info.moved_aside.is_empty());
        let before = texts(&handle).await;
        assert_eq!(before.len(), 51);
        drop(handle);
        // Reopened with the stored key: everything is there.
        let handle = opener.open("alice").await.unwrap();
        assert_eq!(texts(&handle).await, before);
        // Without the key, SQLite cannot read it.
        let plain = Connection::open(handle.path()).unwrap();
        let err = cipher::check_readable(&plain).unwrap_err();
        assert!(cipher::is_not_a_database(&err), "{err}");
    }

    #[tokio::test]
    async fn a_plain_database_is_encrypted_in_place_with_nothing_lost() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreOpener::new(dir.path()).open("alice").await.unwrap();
        fill(&handle, 1, 300).await;
        let before = texts(&handle).await;
        let user_dir = handle.path().parent().unwrap().to_owned();
        drop(handle);
        assert_eq!(found_in(&user_dir, MARKER).len(), 1, "plain before");
        let opener = StoreOpener::with_keys(dir.path(), Keys::Vault(crate::vault::mock().await));
        let handle = opener.open("alice").await.unwrap();
        assert_eq!(texts(&handle).await, before);
        assert_eq!(handle.outbox().await.unwrap().len(), 1);
        assert_eq!(handle.sync_cursor().await.unwrap(), 300);
        assert_eq!(found_in(&user_dir, MARKER), Vec::<PathBuf>::new());
        assert!(!cipher::converting_path(handle.path()).exists());
        let version: i64 = handle
            .call(|conn| conn.pragma_query_value(None, "user_version", |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(
            version,
            schema::VERSION,
            "the schema version is carried over"
        );
    }

    /// A crash (kill -9) after any step of the in-place encryption: the next
    /// open finishes the job and nothing is lost.
    #[tokio::test]
    async fn a_crash_at_any_step_of_the_encryption_loses_nothing() {
        use cipher::Step;
        for step in [
            Step::Checkpointed,
            Step::Exported,
            Step::SidesRemoved,
            Step::Renamed,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let handle = StoreOpener::new(dir.path()).open("alice").await.unwrap();
            fill(&handle, 1, 120).await;
            let before = texts(&handle).await;
            let path = handle.path().to_owned();
            drop(handle);
            // What open does first: the key is safe in the store before any
            // file changes.
            let vault = crate::vault::mock().await;
            let key = DbKey::generate().unwrap();
            vault
                .save_database_key(&crate::vault::key_account(&path), &key)
                .await
                .unwrap();
            cipher::convert_until(&path, &key, cipher::Direction::Encrypt, step).unwrap();
            let opener = StoreOpener::with_keys(dir.path(), Keys::Vault(vault));
            let handle = opener.open("alice").await.unwrap();
            assert_eq!(texts(&handle).await, before, "after a crash at {step:?}");
            assert_eq!(handle.outbox().await.unwrap().len(), 1, "{step:?}");
            assert_eq!(cipher::file_kind(&path).unwrap(), FileKind::Encrypted);
            assert!(!cipher::converting_path(&path).exists(), "{step:?}");
        }
    }

    #[tokio::test]
    async fn a_lost_key_moves_the_database_aside_and_starts_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let old_vault = crate::vault::mock().await;
        let handle = StoreOpener::with_keys(dir.path(), Keys::Vault(old_vault.clone()))
            .open("alice")
            .await
            .unwrap();
        fill(&handle, 1, 10).await;
        let path = handle.path().to_owned();
        drop(handle);
        // A new, empty keyring.
        let opener = StoreOpener::with_keys(dir.path(), Keys::Vault(crate::vault::mock().await));
        let handle = opener.open("alice").await.unwrap();
        assert_eq!(handle.sync_cursor().await.unwrap(), 0, "a new database");
        assert!(texts(&handle).await.is_empty());
        let info = opener.info().unwrap();
        assert_eq!(info.moved_aside.len(), 1, "{info:?}");
        let moved = PathBuf::from(&info.moved_aside[0]);
        assert!(
            moved
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("rcim.db.unreadable-"),
            "{moved:?}"
        );
        // Nothing was deleted: the old key still opens the moved file.
        let CryptoKey(old_key) = stored_key(&old_vault, &path).await;
        let conn = Connection::open(&moved).unwrap();
        cipher::unlock(&conn, &old_key).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 11);
    }

    #[tokio::test]
    async fn a_key_that_does_not_open_the_database_counts_as_lost() {
        let dir = tempfile::tempdir().unwrap();
        let vault = crate::vault::mock().await;
        let opener = StoreOpener::with_keys(dir.path(), Keys::Vault(vault.clone()));
        let handle = opener.open("alice").await.unwrap();
        fill(&handle, 1, 3).await;
        let path = handle.path().to_owned();
        drop(handle);
        vault
            .save_database_key(
                &crate::vault::key_account(&path),
                &DbKey::generate().unwrap(),
            )
            .await
            .unwrap();
        let handle = opener.open("alice").await.unwrap();
        assert!(texts(&handle).await.is_empty());
        assert_eq!(opener.info().unwrap().moved_aside.len(), 1);
    }

    #[tokio::test]
    async fn an_encrypted_database_is_refused_without_a_key_store_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreOpener::with_keys(dir.path(), Keys::Vault(crate::vault::mock().await))
            .open("alice")
            .await
            .unwrap();
        fill(&handle, 1, 3).await;
        let path = handle.path().to_owned();
        drop(handle);
        let bytes = std::fs::read(&path).unwrap();
        let err = StoreOpener::new(dir.path())
            .open("alice")
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::EncryptedWithoutKeyStore { .. }),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "untouched");
    }

    #[tokio::test]
    async fn a_plain_store_says_why_it_is_plain() {
        let dir = tempfile::tempdir().unwrap();
        let opener = StoreOpener::with_keys(dir.path(), Keys::from_vault(&Vault::memory()));
        let handle = opener.open("alice").await.unwrap();
        assert_eq!(cipher::file_kind(handle.path()).unwrap(), FileKind::Plain);
        let info = opener.info().unwrap();
        assert!(!info.encrypted);
        assert_eq!(info.key_store, None);
        assert_eq!(
            info.plain_reason.as_deref(),
            Some("the memory token store has no safe place for a key")
        );
    }

    #[tokio::test]
    async fn decrypt_and_encrypt_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let vault = crate::vault::mock().await;
        let handle = StoreOpener::with_keys(dir.path(), Keys::Vault(vault.clone()))
            .open("alice")
            .await
            .unwrap();
        fill(&handle, 1, 20).await;
        let before = texts(&handle).await;
        let path = handle.path().to_owned();
        drop(handle);
        let CryptoKey(key) = stored_key(&vault, &path).await;
        cipher::convert(&path, &key, cipher::Direction::Decrypt).unwrap();
        assert_eq!(cipher::file_kind(&path).unwrap(), FileKind::Plain);
        let handle = StoreOpener::new(dir.path()).open("alice").await.unwrap();
        assert_eq!(texts(&handle).await, before);
        drop(handle);
        cipher::convert(&path, &key, cipher::Direction::Encrypt).unwrap();
        let handle = StoreOpener::with_keys(dir.path(), Keys::Vault(vault))
            .open("alice")
            .await
            .unwrap();
        assert_eq!(texts(&handle).await, before);
        // A wrong key is refused and changes nothing.
        drop(handle);
        let err = cipher::convert(
            &path,
            &DbKey::generate().unwrap(),
            cipher::Direction::Decrypt,
        )
        .unwrap_err();
        assert!(matches!(err, cipher::ConvertError::Sqlite { .. }), "{err}");
        assert_eq!(cipher::file_kind(&path).unwrap(), FileKind::Encrypted);
    }

    struct CryptoKey(DbKey);

    async fn stored_key(vault: &Vault, path: &Path) -> CryptoKey {
        match vault
            .database_key(&crate::vault::key_account(path))
            .await
            .unwrap()
        {
            KeyLookup::Found(key) => CryptoKey(key),
            KeyLookup::Missing => panic!("no key stored for {}", path.display()),
        }
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
    async fn reports_an_unusable_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = StoreOpener::new(&file).open("carol").await.unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
    }
}
