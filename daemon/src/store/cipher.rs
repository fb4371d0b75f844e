//! Encryption at rest: the database key and the file-level operations on it.
//!
//! Every user's database is a SQLCipher database keyed with a random 256-bit raw
//! key ([`DbKey`]) that lives in the OS keyring beside the token (see
//! `crate::vault`), never in a file. A raw key needs no key derivation, so an open
//! costs nothing extra; every connection to the file sets it before anything else
//! (the writer and the checkpointer alike), because SQLCipher reads no page
//! without it.
//!
//! This module owns what happens to the file as a whole:
//! - telling an encrypted database from a plain one ([`FileKind`]): a plain SQLite
//!   file starts with its 16-byte magic header; an encrypted one starts with its
//!   random salt;
//! - converting a file between the two ([`convert`]): `sqlcipher_export` into a
//!   new file beside it, synced, then renamed over the original, so a crash at
//!   any point leaves either the old file whole or the new one whole (a leftover
//!   half-written new file is removed at the next start);
//! - moving an unreadable database aside ([`move_aside`]) under a dated name,
//!   when its key is lost: nothing is ever deleted.

use rusqlite::Connection;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The first 16 bytes of every plain SQLite database file.
const PLAIN_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The suffix of the new file a conversion writes before it renames it over the
/// database.
const CONVERTING: &str = ".converting";

/// A database key: 256 random bits, zeroized when dropped, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DbKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DbKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DbKey(<redacted>)")
    }
}

/// The OS could not give random bytes for a new key.
#[derive(Debug, thiserror::Error)]
#[error("the OS gave no random bytes for a new database key: {0}")]
pub struct NoRandomness(String);

impl DbKey {
    /// A new random key.
    pub fn generate() -> Result<Self, NoRandomness> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(bytes.as_mut()).map_err(|e| NoRandomness(e.to_string()))?;
        Ok(Self(bytes))
    }

    /// The key as 64 lowercase hex digits (its form in the keyring).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    /// Reads the hex form; `None` unless it is exactly 64 hex digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(text, bytes.as_mut()).ok()?;
        Some(Self(bytes))
    }

    /// The key as SQLCipher takes a raw key: `x'<64 hex digits>'`.
    fn sql_literal(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("x'{}'", self.to_hex().as_str()))
    }
}

/// Sets `key` on a connection that has read nothing yet, then proves it opens
/// the file: a wrong key (or a plain file given a key) fails here with
/// SQLite's "file is not a database", not at some later query.
pub fn unlock(conn: &Connection, key: &DbKey) -> rusqlite::Result<()> {
    // SQLCipher's own log (on stderr, process-wide) would repeat a wrong key as
    // "hmac check failed" lines; rcimd says what happened in its own log.
    conn.pragma_update(None, "cipher_log_level", "NONE")?;
    use_settings(conn)?;
    conn.pragma_update(None, "key", key.sql_literal().as_str())?;
    check_readable(conn)
}

/// The page authentication every rcim database uses: HMAC-SHA256 (and its key
/// derived with PBKDF2-HMAC-SHA256), where SQLCipher 4 defaults to SHA-512. Both
/// are sound for authenticating pages; SHA-256 runs on the SHA extensions of
/// current x86 and ARM CPUs at about 2.6× SHA-512's speed here (openssl speed:
/// 1.35 against 0.51 GB/s), and the HMAC of each page written is most of what
/// encryption costs a commit. SQLCipher reads these process-wide defaults when a
/// key is set (an attached database's too), so every connection sets them first.
fn use_settings(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cipher_default_hmac_algorithm", "HMAC_SHA256")?;
    conn.pragma_update(None, "cipher_default_kdf_algorithm", "PBKDF2_HMAC_SHA256")
}

/// Reads the schema, which fails on a file this connection cannot decrypt.
pub fn check_readable(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(drop)
}

/// Whether an error means "this is not a database this connection can read": a
/// wrong key, an encrypted file opened without one, or a file that is not SQLite.
pub fn is_not_a_database(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    )
}

/// What is at a database path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// No file, or an empty one: a new database.
    New,
    /// A plain SQLite database.
    Plain,
    /// Something else: an encrypted database (its first bytes are its salt).
    Encrypted,
}

/// Looks at the first bytes of the file at `path`.
pub fn file_kind(path: &Path) -> std::io::Result<FileKind> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileKind::New),
        Err(e) => return Err(e),
    };
    let mut head = Vec::with_capacity(PLAIN_MAGIC.len());
    file.by_ref()
        .take(PLAIN_MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    Ok(if head.is_empty() {
        FileKind::New
    } else if head == PLAIN_MAGIC {
        FileKind::Plain
    } else {
        FileKind::Encrypted
    })
}

/// The path of the file a conversion of `path` writes first.
pub fn converting_path(path: &Path) -> PathBuf {
    with_suffix(path, CONVERTING)
}

/// `path` with `suffix` appended to its file name.
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Which way [`convert`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A plain database becomes encrypted with the key.
    Encrypt,
    /// An encrypted database becomes plain.
    Decrypt,
}

/// The steps of [`convert`], in order; tests stop a conversion after each one to
/// check that a crash there loses nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The old database's WAL is checkpointed into it and emptied.
    Checkpointed,
    /// The new file is written and synced beside the old one.
    Exported,
    /// The old database's (empty) WAL and shared-memory files are removed.
    SidesRemoved,
    /// The new file has replaced the old one and the directory is synced.
    Renamed,
}

/// Converts the database at `path` in place: `Encrypt` takes a plain file to one
/// keyed with `key`, `Decrypt` an encrypted one (readable with `key`) to plain.
/// The file must not be open anywhere else. A crash at any step leaves the old
/// file whole or the new one whole; the half-written new file of an earlier crash
/// is replaced.
pub fn convert(path: &Path, key: &DbKey, direction: Direction) -> Result<(), ConvertError> {
    convert_until(path, key, direction, Step::Renamed)
}

/// [`convert`], stopping after `last` (tests simulate a crash there).
pub fn convert_until(
    path: &Path,
    key: &DbKey,
    direction: Direction,
    last: Step,
) -> Result<(), ConvertError> {
    let target = converting_path(path);
    let io = |what: &'static str, file: &Path| {
        let file = file.to_owned();
        move |source| ConvertError::Io {
            what,
            path: file,
            source,
        }
    };
    let sqlite = |source| ConvertError::Sqlite {
        path: path.to_owned(),
        source,
    };
    match std::fs::remove_file(&target) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io("remove the leftover", &target)(e));
        }
        _ => {}
    }
    let conn = Connection::open(path).map_err(sqlite)?;
    if direction == Direction::Decrypt {
        unlock(&conn, key).map_err(sqlite)?;
    } else {
        use_settings(&conn).map_err(sqlite)?;
        check_readable(&conn).map_err(sqlite)?;
    }
    // Everything in the WAL goes into the file and the WAL is emptied, so the
    // export reads one file and the old WAL holds nothing when it is removed.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
        row.get::<_, i64>(0)
    })
    .map_err(sqlite)
    .and_then(|busy| {
        if busy == 0 {
            Ok(())
        } else {
            Err(ConvertError::InUse(path.to_owned()))
        }
    })?;
    if last == Step::Checkpointed {
        return Ok(());
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(sqlite)?;
    let target_text = target
        .to_str()
        .ok_or_else(|| ConvertError::NotUtf8(target.clone()))?;
    let target_key = match direction {
        Direction::Encrypt => key.sql_literal(),
        Direction::Decrypt => Zeroizing::new(String::new()),
    };
    private_file(&target).map_err(io("create", &target))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS converted KEY ?2",
        [target_text, target_key.as_str()],
    )
    .map_err(sqlite)?;
    conn.query_row("SELECT sqlcipher_export('converted')", [], |_| Ok(()))
        .map_err(sqlite)?;
    // sqlcipher_export copies the schema and the rows, not the header's
    // user_version, which is the schema version.
    conn.pragma_update(Some("converted"), "user_version", version)
        .map_err(sqlite)?;
    conn.execute("DETACH DATABASE converted", [])
        .map_err(sqlite)?;
    conn.close().map_err(|(_, e)| sqlite(e))?;
    std::fs::File::open(&target)
        .and_then(|file| file.sync_all())
        .map_err(io("sync", &target))?;
    if last == Step::Exported {
        return Ok(());
    }
    // The old file's WAL was emptied by the checkpoint; a WAL left beside the new
    // file would be read as the new file's and corrupt it.
    for suffix in ["-wal", "-shm"] {
        let side = with_suffix(path, suffix);
        match std::fs::remove_file(&side) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("remove", &side)(e));
            }
            _ => {}
        }
    }
    if last == Step::SidesRemoved {
        return Ok(());
    }
    std::fs::rename(&target, path).map_err(io("rename into place", path))?;
    sync_dir(path).map_err(io("sync the directory of", path))?;
    Ok(())
}

/// Creates `path` empty and owner-only (0600) before SQLite writes it.
#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

#[cfg(not(unix))]
fn private_file(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Syncs the directory holding `path`, so a rename in it survives a power loss.
#[cfg(unix)]
fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Why a conversion failed; the database is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file operation failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// SQLite (SQLCipher) failed.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// The cause.
        source: rusqlite::Error,
    },
    /// Another connection holds the database (rcimd is running on it).
    #[error("database {0} is in use (stop rcimd first)")]
    InUse(PathBuf),
    /// SQLite takes the new file's path as text.
    #[error("the path {0} is not UTF-8")]
    NotUtf8(PathBuf),
}

/// Moves the database at `path` and its WAL and shared-memory files aside under
/// `<name>.unreadable-<stamp>` (`stamp` is UTC, `YYYYMMDDTHHMMSSZ`). Returns the
/// new path of the database file. Nothing is deleted: with the key back, the
/// moved file opens again.
pub fn move_aside(path: &Path, stamp: &str) -> std::io::Result<PathBuf> {
    let suffix = format!(".unreadable-{stamp}");
    let moved = with_suffix(path, &suffix);
    // The sides first: a crash between the moves must not leave a WAL beside
    // the new database that the old one wrote.
    for side in ["-wal", "-shm"] {
        let from = with_suffix(path, side);
        let to = with_suffix(&moved, side);
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, &moved)?;
    sync_dir(path)?;
    Ok(moved)
}

/// `ms` since the epoch as `YYYYMMDDTHHMMSSZ`, for file names.
pub fn file_stamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = rcim_proto::time::civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_round_trips_through_hex_and_never_prints() {
        let key = DbKey::generate().unwrap();
        assert_eq!(DbKey::from_hex(&key.to_hex()), Some(key.clone()));
        assert_ne!(key, DbKey::generate().unwrap());
        assert_eq!(format!("{key:?}"), "DbKey(<redacted>)");
        assert_eq!(DbKey::from_hex("abc"), None);
        assert_eq!(DbKey::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn pages_are_authenticated_with_hmac_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("k.db")).unwrap();
        unlock(&conn, &DbKey::generate().unwrap()).unwrap();
        let hmac: String = conn
            .pragma_query_value(None, "cipher_hmac_algorithm", |r| r.get(0))
            .unwrap();
        assert_eq!(hmac, "HMAC_SHA256");
    }

    #[test]
    fn stamps_are_utc() {
        assert_eq!(file_stamp(0), "19700101T000000Z");
        assert_eq!(
            file_stamp(1_764_806_400_000 + 3_723_000),
            "20251204T010203Z"
        );
    }
}
