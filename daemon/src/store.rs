//! The store: owns the per-user SQLite database, on a thread of its own.
//!
//! rusqlite is blocking, so each open database lives on a dedicated thread that
//! serves commands from a channel, as sqlx's SQLite worker does. The database is
//! opened and migrated *before* the handle is returned, so an open failure is
//! reported to the caller (as `onDatabaseOpened(33002)`) rather than discovered on
//! first use. The thread ends, closing the database, when the last handle drops.
//!
//! For now the schema holds only the user's identity; messages, conversations, the
//! outbox and the sync cursor arrive with the local-database issue, as migrations
//! keyed on `PRAGMA user_version`.

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// Why a database could not be opened.
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
    /// The store thread could not be started or died.
    #[error("the database thread failed: {0}")]
    Thread(String),
}

/// Opens per-user databases under the data dir.
#[derive(Clone, Debug)]
pub struct StoreOpener {
    data_dir: PathBuf,
}

/// A handle to one open database. The database closes when the last handle drops.
#[derive(Clone, Debug)]
pub struct StoreHandle {
    // Commands arrive with the local-database issue; holding the sender keeps the
    // thread, and so the database, alive.
    _commands: mpsc::Sender<StoreCommand>,
    path: PathBuf,
}

#[derive(Debug)]
enum StoreCommand {}

impl StoreHandle {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Migrations, in order; `PRAGMA user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    // 1: identity of the database's owner.
    "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;",
];

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

    /// Opens (creating and migrating as needed) the database of `user_id`, then
    /// hands it to a thread of its own.
    ///
    /// The open runs on tokio's blocking pool so that the runtime knows work is in
    /// flight (paused-time tests must not skip ahead while it runs).
    pub async fn open(&self, user_id: &str) -> Result<StoreHandle, StoreError> {
        let path = self.path_for(user_id);
        let (db_path, user) = (path.clone(), user_id.to_owned());
        let conn = tokio::task::spawn_blocking(move || open_db(&db_path, &user))
            .await
            .map_err(|e| StoreError::Thread(e.to_string()))??;
        let (commands, inbox) = mpsc::channel::<StoreCommand>();
        std::thread::Builder::new()
            .name("rcim-store".into())
            .spawn(move || {
                // No commands exist yet: block until every handle is gone.
                if let Ok(command) = inbox.recv() {
                    match command {}
                }
                drop(conn);
            })
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        tracing::info!("database open: {}", path.display());
        Ok(StoreHandle {
            _commands: commands,
            path,
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

fn open_db(path: &Path, user_id: &str) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    let sqlite = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let mut conn = Connection::open(path).map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sqlite)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
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
        let conn = Connection::open(handle.path()).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let owner: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'user_id'", [], |r| {
                r.get(0)
            })
            .unwrap();
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

    #[tokio::test]
    async fn reports_an_unusable_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = StoreOpener::new(&file).open("carol").await.unwrap_err();
        assert!(matches!(err, StoreError::CreateDir { .. }), "{err}");
    }
}
