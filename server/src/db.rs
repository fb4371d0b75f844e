//! The server's SQLite database (`DATA_DIR/server.db`).
//!
//! This module owns the one SQLite connection and its schema. The database is opened
//! in WAL mode and migrated before [`Db::open`] returns; migrations are a list of SQL
//! scripts applied in order, keyed on `PRAGMA user_version` (script *n* takes the
//! schema from version *n* to *n + 1*), so an older database is brought up to date
//! and a newer one is refused.
//!
//! Tables: `users` (registered by getToken), `token_cutoffs` (per user, tokens
//! issued before `before_ms` are invalid: `/user/token/expire.json`) and `blocks`
//! (per user, CONNECTs are refused until `until_ms`: `/user/block.json`). A block
//! whose `until_ms` has passed is simply ignored ([`Access::is_blocked`]); rows are
//! not purged. Messaging adds `messages`, `inbox`, `inbox_state` (the
//! `messages` submodule owns their SQL) and `groups`, `group_members` (the `groups`
//! submodule).
//!
//! rusqlite is blocking: async callers go through the `async fn`s, which run the
//! statement on tokio's blocking pool with `spawn_blocking` (which tokio's paused
//! test clock waits for, so in-process tests with paused time see the database as
//! instant); the `_blocking` variants are for callers that are not on an async
//! worker thread (or, like [`crate::RunningServer::issue_token`], do one tiny write).

mod groups;
mod history;
mod inspect;
mod messages;
mod recall;
mod settings;

pub use history::HistoryPage;
pub(crate) use messages::seen_by_recipient;
pub use messages::{Outgoing, StoreOutcome, Stored};
pub use recall::Recalled;

use rusqlite::{Connection, OptionalExtension as _, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Schema scripts; index *n* migrates `user_version` *n* to *n + 1*.
const MIGRATIONS: &[&str] = &[
    // 1: registered users (the Server API's getToken registers or updates them).
    "CREATE TABLE users (
        user_id      TEXT PRIMARY KEY NOT NULL,
        name         TEXT NOT NULL,
        portrait_uri TEXT NOT NULL DEFAULT '',
        created_ms   INTEGER NOT NULL,
        updated_ms   INTEGER NOT NULL
    ) STRICT;",
    // 2: token cut-offs (token/expire) and blocks (user/block).
    "CREATE TABLE token_cutoffs (
        user_id    TEXT PRIMARY KEY NOT NULL,
        before_ms  INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE blocks (
        user_id    TEXT PRIMARY KEY NOT NULL,
        until_ms   INTEGER NOT NULL,
        created_ms INTEGER NOT NULL
    ) STRICT;",
    // 3: messaging. `messages` holds each accepted message once, addressed as its
    // sender addressed it; `inbox` is every user's numbered view of the messages it
    // received (1, 2, 3, … per user, no gaps), with the conversation as that user
    // sees it; `inbox_state` holds each user's last sequence number and the highest
    // one a client acknowledged. Groups are the Server API's `/group/*`.
    "CREATE TABLE messages (
        uid           TEXT PRIMARY KEY NOT NULL,
        sender        TEXT NOT NULL,
        conv_type     INTEGER NOT NULL,
        target_id     TEXT NOT NULL,
        object_name   TEXT NOT NULL,
        content       TEXT NOT NULL,
        sent_time_ms  INTEGER NOT NULL,
        client_msg_id TEXT
    ) STRICT;
    CREATE UNIQUE INDEX messages_by_client_id ON messages (sender, client_msg_id);
    CREATE TABLE inbox (
        user_id     TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        message_uid TEXT NOT NULL REFERENCES messages (uid),
        conv_type   INTEGER NOT NULL,
        target_id   TEXT NOT NULL,
        PRIMARY KEY (user_id, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE inbox_state (
        user_id   TEXT PRIMARY KEY NOT NULL,
        last_seq  INTEGER NOT NULL,
        acked_seq INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE groups (
        group_id   TEXT PRIMARY KEY NOT NULL,
        name       TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE group_members (
        group_id  TEXT NOT NULL,
        user_id   TEXT NOT NULL,
        joined_ms INTEGER NOT NULL,
        PRIMARY KEY (group_id, user_id)
    ) STRICT, WITHOUT ROWID;",
    // 4 (issue 15, recall and remote history): a conversation's history is read
    // from `messages` by (type, target, sender, time); recalls find the inbox rows
    // of a message by its uid.
    "CREATE INDEX messages_by_conversation
        ON messages (conv_type, target_id, sender, sent_time_ms);
    CREATE INDEX inbox_by_message ON inbox (message_uid);",
    // 5 (issue 15, conversation settings): each user's push notification level
    // (do-not-disturb) per conversation, as that user sees the conversation
    // (RC's `/conversation/notification/set.json`, and rcimd's wire 3
    // `SetNotificationLevel`).
    "CREATE TABLE notification_levels (
        user_id   TEXT NOT NULL,
        conv_type INTEGER NOT NULL,
        target_id TEXT NOT NULL,
        level     INTEGER NOT NULL,
        PRIMARY KEY (user_id, conv_type, target_id)
    ) STRICT, WITHOUT ROWID;",
];

/// A database failure, with a message for the log (never shown to API callers).
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct DbError(String);

impl DbError {
    /// A failure described by `message`.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// Why the database cannot be opened. Each message names the file and ends with
/// the underlying cause, so it is complete on its own line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// SQLite cannot open (or create) the file.
    #[error("cannot open the database {}: {cause}", .path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: rusqlite::Error,
    },
    /// The file opened but WAL mode, the sync level or the busy timeout cannot be
    /// set.
    #[error("cannot configure the database {}: {cause}", .path.display())]
    Configure {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: rusqlite::Error,
    },
    /// The schema cannot be brought up to date.
    #[error("cannot migrate the database {}: {cause}", .path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// Why.
        cause: MigrateError,
    },
}

/// Why the schema cannot be brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The database was written by a newer server.
    #[error(
        "the database has schema version {found}, newer than this server knows ({newest}); \
         use a newer rcim-server or another --data-dir"
    )]
    TooNew {
        /// The database's `user_version`.
        found: i64,
        /// The newest version this server knows.
        newest: i64,
    },
    /// A migration script failed.
    #[error("migration to schema version {version}: {cause}")]
    Script {
        /// The version the script migrates to.
        version: usize,
        /// What SQLite said.
        cause: rusqlite::Error,
    },
    /// Reading the version or committing failed.
    #[error("{0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The app's id for the user.
    pub user_id: String,
    /// Display name (used for push).
    pub name: String,
    /// Avatar URL, empty when unset.
    pub portrait_uri: String,
    /// When the user was first registered, ms since the Unix epoch.
    pub created_ms: i64,
    /// When the user was last updated, ms since the Unix epoch.
    pub updated_ms: i64,
}

/// What the database says about a user at CONNECT time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// Tokens issued before this time (ms since the Unix epoch) are invalid; 0 when
    /// no cut-off was ever set.
    pub tokens_before_ms: i64,
    /// The user is blocked until this time (ms since the Unix epoch), if a block was
    /// ever set and not lifted (it may lie in the past: see [`Access::is_blocked`]).
    pub blocked_until_ms: Option<i64>,
}

impl Access {
    /// Whether a token issued at `issued_at_ms` was invalidated by a cut-off.
    pub fn token_revoked(&self, issued_at_ms: i64) -> bool {
        issued_at_ms < self.tokens_before_ms
    }

    /// Whether the user is blocked at `now_ms` (a block ends at its `until_ms`).
    pub fn is_blocked(&self, now_ms: i64) -> bool {
        self.blocked_until_ms.is_some_and(|until| now_ms < until)
    }
}

/// The server database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`. Blocking.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let mut conn = Connection::open(path).map_err(|cause| OpenError::Open {
            path: path.to_owned(),
            cause,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .map_err(|cause| OpenError::Configure {
                path: path.to_owned(),
                cause,
            })?;
        migrate(&mut conn).map_err(|cause| OpenError::Migrate {
            path: path.to_owned(),
            cause,
        })?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Registers `user`, or updates the name and portrait of an existing one (its
    /// `created_ms` is kept). Blocking.
    pub fn upsert_user_blocking(&self, user: &User) -> Result<(), DbError> {
        self.lock().execute(
            "INSERT INTO users (user_id, name, portrait_uri, created_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (user_id) DO UPDATE SET
                name = excluded.name,
                portrait_uri = excluded.portrait_uri,
                updated_ms = excluded.updated_ms",
            params![
                user.user_id,
                user.name,
                user.portrait_uri,
                user.created_ms,
                user.updated_ms
            ],
        )?;
        Ok(())
    }

    /// [`Db::upsert_user_blocking`] on the blocking pool.
    pub async fn upsert_user(&self, user: User) -> Result<(), DbError> {
        self.run(move |db| db.upsert_user_blocking(&user)).await
    }

    /// The user `user_id`, if registered. Blocking.
    pub fn user_blocking(&self, user_id: &str) -> Result<Option<User>, DbError> {
        let user = self
            .lock()
            .query_row(
                "SELECT user_id, name, portrait_uri, created_ms, updated_ms
                 FROM users WHERE user_id = ?1",
                [user_id],
                |row| {
                    Ok(User {
                        user_id: row.get(0)?,
                        name: row.get(1)?,
                        portrait_uri: row.get(2)?,
                        created_ms: row.get(3)?,
                        updated_ms: row.get(4)?,
                    })
                },
            )
            .optional()?;
        Ok(user)
    }

    /// [`Db::user_blocking`] on the blocking pool.
    pub async fn user(&self, user_id: &str) -> Result<Option<User>, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.user_blocking(&user_id)).await
    }

    /// Sets the token cut-off of each of `user_ids` to `before_ms`, unless it is
    /// already later (a cut-off never moves back: a token once invalidated stays
    /// invalid). One transaction. Blocking.
    pub fn expire_tokens_blocking(
        &self,
        user_ids: &[String],
        before_ms: i64,
        now_ms: i64,
    ) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for user_id in user_ids {
            tx.execute(
                "INSERT INTO token_cutoffs (user_id, before_ms, updated_ms)
                 VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                    before_ms = max(before_ms, excluded.before_ms),
                    updated_ms = excluded.updated_ms",
                params![user_id, before_ms, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// [`Db::expire_tokens_blocking`] on the blocking pool.
    pub async fn expire_tokens(
        &self,
        user_ids: Vec<String>,
        before_ms: i64,
        now_ms: i64,
    ) -> Result<(), DbError> {
        self.run(move |db| db.expire_tokens_blocking(&user_ids, before_ms, now_ms))
            .await
    }

    /// Blocks each of `user_ids` until `until_ms`, replacing any earlier block. One
    /// transaction. Blocking.
    pub fn block_blocking(
        &self,
        user_ids: &[String],
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for user_id in user_ids {
            tx.execute(
                "INSERT INTO blocks (user_id, until_ms, created_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET
                    until_ms = excluded.until_ms,
                    created_ms = excluded.created_ms",
                params![user_id, until_ms, now_ms],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// [`Db::block_blocking`] on the blocking pool.
    pub async fn block(
        &self,
        user_ids: Vec<String>,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), DbError> {
        self.run(move |db| db.block_blocking(&user_ids, until_ms, now_ms))
            .await
    }

    /// Lifts the blocks of `user_ids` (users that are not blocked are fine).
    /// Blocking.
    pub fn unblock_blocking(&self, user_ids: &[String]) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for user_id in user_ids {
            tx.execute("DELETE FROM blocks WHERE user_id = ?1", [user_id])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// [`Db::unblock_blocking`] on the blocking pool.
    pub async fn unblock(&self, user_ids: Vec<String>) -> Result<(), DbError> {
        self.run(move |db| db.unblock_blocking(&user_ids)).await
    }

    /// The users blocked at `now_ms`, with the end of each block, by user id.
    /// Blocking.
    pub fn blocked_users_blocking(&self, now_ms: i64) -> Result<Vec<(String, i64)>, DbError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT user_id, until_ms FROM blocks WHERE until_ms > ?1 ORDER BY user_id")?;
        let rows = statement
            .query_map([now_ms], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// [`Db::blocked_users_blocking`] on the blocking pool.
    pub async fn blocked_users(&self, now_ms: i64) -> Result<Vec<(String, i64)>, DbError> {
        self.run(move |db| db.blocked_users_blocking(now_ms)).await
    }

    /// The token cut-off and block of `user_id`. Blocking.
    pub fn access_blocking(&self, user_id: &str) -> Result<Access, DbError> {
        let (before, until) = self.lock().query_row(
            "SELECT (SELECT before_ms FROM token_cutoffs WHERE user_id = ?1),
                    (SELECT until_ms FROM blocks WHERE user_id = ?1)",
            [user_id],
            |row| Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?)),
        )?;
        Ok(Access {
            tokens_before_ms: before.unwrap_or(0),
            blocked_until_ms: until,
        })
    }

    /// [`Db::access_blocking`] on the blocking pool.
    pub async fn access(&self, user_id: &str) -> Result<Access, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.access_blocking(&user_id)).await
    }

    /// Runs `f` on tokio's blocking pool with a handle to this database.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Db) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| DbError(format!("database task failed: {e}")))?
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (the
        // statement either committed or not), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Brings the schema up to the newest version in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let newest = MIGRATIONS.len() as i64;
    if !(0..=newest).contains(&version) {
        return Err(MigrateError::TooNew {
            found: version,
            newest,
        });
    }
    if version == newest {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (index, script) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(script)
            .map_err(|cause| MigrateError::Script {
                version: index + 1,
                cause,
            })?;
    }
    tx.pragma_update(None, "user_version", newest)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, at: i64) -> User {
        User {
            user_id: "alice".into(),
            name: name.into(),
            portrait_uri: String::new(),
            created_ms: at,
            updated_ms: at,
        }
    }

    #[test]
    fn creates_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        let db = Db::open(&path).unwrap();
        db.upsert_user_blocking(&user("Alice", 1)).unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(db.user_blocking("alice").unwrap(), Some(user("Alice", 1)));
        let mode: String = db
            .lock()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn upsert_keeps_created_time() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        db.upsert_user_blocking(&user("Alice", 1)).unwrap();
        db.upsert_user_blocking(&user("Alice B.", 2)).unwrap();
        let got = db.user_blocking("alice").unwrap().unwrap();
        assert_eq!(
            (got.name.as_str(), got.created_ms, got.updated_ms),
            ("Alice B.", 1, 2)
        );
        assert_eq!(db.user_blocking("bob").unwrap(), None);
    }

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn token_cutoffs_only_move_forward() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        assert_eq!(db.access_blocking("alice").unwrap(), Access::default());
        db.expire_tokens_blocking(&ids(&["alice", "bob"]), 1000, 1)
            .unwrap();
        db.expire_tokens_blocking(&ids(&["alice"]), 500, 2).unwrap();
        let alice = db.access_blocking("alice").unwrap();
        assert_eq!(
            alice.tokens_before_ms, 1000,
            "an earlier time does not undo"
        );
        assert!(alice.token_revoked(999));
        assert!(!alice.token_revoked(1000), "issued at the cut-off is valid");
        db.expire_tokens_blocking(&ids(&["bob"]), 2000, 3).unwrap();
        assert_eq!(db.access_blocking("bob").unwrap().tokens_before_ms, 2000);
        assert_eq!(db.access_blocking("carol").unwrap().tokens_before_ms, 0);
        assert!(!Access::default().token_revoked(0));
    }

    #[test]
    fn blocks_end_at_their_time_or_on_unblock() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        let start = 1_000_000;
        let minute = 60_000;
        db.block_blocking(&ids(&["alice", "bob"]), start + minute, start)
            .unwrap();
        let alice = db.access_blocking("alice").unwrap();
        assert_eq!(alice.blocked_until_ms, Some(start + minute));
        // The expiry logic with injected clocks: blocked up to, not at, until_ms.
        assert!(alice.is_blocked(start));
        assert!(alice.is_blocked(start + minute - 1));
        assert!(!alice.is_blocked(start + minute));
        assert!(!alice.is_blocked(start + 10 * minute));
        assert_eq!(
            db.blocked_users_blocking(start).unwrap(),
            vec![
                ("alice".to_owned(), start + minute),
                ("bob".to_owned(), start + minute)
            ]
        );
        assert!(
            db.blocked_users_blocking(start + minute)
                .unwrap()
                .is_empty(),
            "past blocks are not listed"
        );
        // Blocking again replaces the end (also to an earlier one).
        db.block_blocking(&ids(&["alice"]), start + 1, start)
            .unwrap();
        assert!(!db.access_blocking("alice").unwrap().is_blocked(start + 1));
        db.unblock_blocking(&ids(&["bob", "nobody"])).unwrap();
        assert_eq!(db.access_blocking("bob").unwrap().blocked_until_ms, None);
        assert!(!db.access_blocking("bob").unwrap().is_blocked(start));
    }

    #[test]
    fn migrates_a_version_1_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute("INSERT INTO users VALUES ('alice', 'Alice', '', 1, 1)", [])
                .unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.user_blocking("alice").unwrap(), Some(user("Alice", 1)));
        db.block_blocking(&ids(&["alice"]), 10, 1).unwrap();
        assert!(db.access_blocking("alice").unwrap().is_blocked(5));
        let version: i64 = db
            .lock()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = format!("{:#}", Db::open(&path).unwrap_err());
        assert!(err.contains("schema version 99"), "{err}");
    }
}
