//! The server's SQLite database (`DATA_DIR/server.db`).
//!
//! This module owns the one SQLite connection and its schema. The database is opened
//! in WAL mode and migrated before [`Db::open`] returns; migrations are a list of SQL
//! scripts applied in order, keyed on `PRAGMA user_version` (script *n* takes the
//! schema from version *n* to *n + 1*), so an older database is brought up to date
//! and a newer one is refused.
//!
//! rusqlite is blocking: async callers go through the `async fn`s, which run the
//! statement on tokio's blocking pool; the `_blocking` variants are for callers that
//! are not on an async worker thread (or, like [`crate::RunningServer::issue_token`],
//! do one tiny write).

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use std::path::Path;
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
];

/// A database failure, with a message for the log (never shown to API callers).
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct DbError(String);

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
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

/// The server database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Opens (creating if needed) and migrates the database at `path`. Blocking.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn = Connection::open(path)
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|()| conn.busy_timeout(std::time::Duration::from_secs(5)))
            .with_context(|| format!("cannot configure the database {}", path.display()))?;
        migrate(&mut conn)
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
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
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.upsert_user_blocking(&user))
            .await
            .map_err(|e| DbError(format!("database task failed: {e}")))?
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
        let db = self.clone();
        let user_id = user_id.to_owned();
        tokio::task::spawn_blocking(move || db.user_blocking(&user_id))
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
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let newest = MIGRATIONS.len() as i64;
    anyhow::ensure!(
        (0..=newest).contains(&version),
        "the database has schema version {version}, newer than this server knows ({newest}); \
         use a newer rcim-server or another --data-dir"
    );
    if version == newest {
        return Ok(());
    }
    let tx = conn.transaction()?;
    for (index, script) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.execute_batch(script)
            .with_context(|| format!("migration to schema version {}", index + 1))?;
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
