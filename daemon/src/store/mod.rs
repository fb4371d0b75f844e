//! The store: owns the per-user SQLite database.
//!
//! One database per user, `<data-dir>/users/<user-id>/rcim.db`, in WAL mode. It is
//! opened and migrated *before* the handle is returned, so an open failure is
//! reported to the caller (as `onDatabaseOpened(33002)`) rather than discovered on
//! first use; a database written by a newer rcimd is refused, never touched.
//!
//! Every call runs one closure against the connection on tokio's blocking pool,
//! serialized by a mutex: rusqlite is blocking, and the blocking pool is visible to
//! tokio (paused-time tests wait for it, where a private thread would let their
//! clock jump ahead). The queries themselves live in [`queries`] as plain functions
//! of a `&mut Connection`, so they are tested without any async machinery.
//!
//! Durability rules (see docs/ARCHITECTURE.md): an incoming batch and the sync
//! cursor are committed in one transaction *before* the link acknowledges them
//! upstream or any client sees them; an outgoing message is in the outbox *before*
//! `onMessageSaved`.
//!
//! WAL checkpoints run off the commit path: SQLite would otherwise copy the WAL
//! back into the database (and fsync both) inside whichever commit crossed its
//! threshold, stalling that commit and everything queued behind it for
//! milliseconds. Instead, once the commits since the last checkpoint have written
//! about [`CHECKPOINT_PAGES`] pages, a `PASSIVE` checkpoint runs on a second
//! connection on the blocking pool, next to the commits (WAL lets a checkpoint
//! and a writer work at once), and again once the commits pause, until the whole
//! WAL is copied back and can start over (see `checkpoint`). SQLite's own
//! automatic checkpoint stays as a backstop at a much larger size (see
//! `schema::AUTOCHECKPOINT_PAGES`). On the bench's VM an fsync takes 10-150 ms
//! and stalls concurrent writes to the same files, so how often a checkpoint
//! runs, and where, shows directly in the latency tail.

pub mod queries;
mod schema;

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Pages written since the last checkpoint (estimated) that start a background
/// checkpoint: SQLite's default automatic checkpoint size.
pub const CHECKPOINT_PAGES: u64 = 1_000;

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
    /// The blocking task failed.
    #[error("the database task failed: {0}")]
    Task(String),
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
}

/// The background checkpoints of one database.
struct Checkpoints {
    /// Pages written since the last checkpoint started, estimated.
    pages: AtomicU64,
    /// A checkpoint is running.
    running: AtomicBool,
    /// Checkpoint passes run (for tests and logs).
    done: AtomicU64,
    /// Times the WAL file was cut back (for tests and logs).
    cut: AtomicU64,
    /// A WAL file larger than this (bytes) is cut back once the store is quiet.
    wal_limit: AtomicU64,
    /// The checkpointing connection, opened on first use.
    conn: Mutex<Option<Connection>>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self {
            pages: AtomicU64::new(0),
            running: AtomicBool::new(false),
            done: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            wal_limit: AtomicU64::new(schema::WAL_SIZE_LIMIT),
            conn: Mutex::new(None),
        }
    }
}

impl Checkpoints {
    /// Notes `changes` rows changed by one call; true when a checkpoint is due and
    /// this caller must start it.
    fn written(&self, changes: u64) -> bool {
        if changes == 0 {
            return false;
        }
        // A commit writes each page it dirtied once: a leaf of the table and of
        // each of its three indexes, the AUTOINCREMENT counter, the conversation
        // and the cursor (eight WAL frames for a lone message), plus a new page
        // for about every six 200-byte messages (34 frames for a commit of 200;
        // both counted with strace).
        let pages = 8 + changes / 6;
        let total = self.pages.fetch_add(pages, Ordering::Relaxed) + pages;
        total >= CHECKPOINT_PAGES
            && self
                .running
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Runs `pragma` (a `wal_checkpoint`) on the checkpointing connection, opening
    /// it first if needed (blocking): its `(busy, log frames, copied frames)`, or
    /// `None` when the connection cannot be opened.
    fn run(&self, path: &Path, pragma: &str) -> Option<rusqlite::Result<(i64, i64, i64)>> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            match schema::open_checkpointer(path) {
                Ok(conn) => *slot = Some(conn),
                Err(e) => {
                    tracing::warn!("cannot open {} for checkpoints: {e}", path.display());
                    return None;
                }
            }
        }
        let conn = slot.as_ref()?;
        Some(conn.query_row(pragma, [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        }))
    }

    /// One PASSIVE checkpoint of `path` (blocking); true when the WAL is copied
    /// back completely (or cannot be checkpointed at all).
    fn pass(&self, path: &Path) -> bool {
        self.pages.store(0, Ordering::Relaxed);
        let Some(result) = self.run(path, "PRAGMA wal_checkpoint(PASSIVE)") else {
            return true;
        };
        self.done.fetch_add(1, Ordering::Relaxed);
        match result.map(|(_, log, copied)| (log, copied)) {
            Ok((log, copied)) if copied < log => {
                tracing::trace!("checkpoint: {copied} of {log} WAL frames copied");
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::debug!("checkpoint of {} failed: {e}", path.display());
                true
            }
        }
    }

    /// Copies the WAL back and cuts its file to nothing (blocking). It takes the
    /// write lock for as long as that takes (cutting a 160 MiB file took 140-180
    /// ms on the bench's VM), so it runs only when the store is quiet.
    fn cut_back(&self, path: &Path) {
        match self.run(path, "PRAGMA wal_checkpoint(TRUNCATE)") {
            Some(Ok((0, _, _))) => {
                self.cut.fetch_add(1, Ordering::Relaxed);
                tracing::debug!("cut the WAL of {} back", path.display());
            }
            Some(Ok(_)) => tracing::debug!("WAL of {} busy; not cut back", path.display()),
            Some(Err(e)) => tracing::debug!("cutting the WAL of {} failed: {e}", path.display()),
            None => {}
        }
    }

    /// Whether the WAL file of `path` is over the limit (blocking).
    fn wal_is_big(&self, path: &Path) -> bool {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).is_ok_and(|m| m.len() > self.wal_limit.load(Ordering::Relaxed))
    }
}

/// Checkpoints `path` until the WAL is copied back completely, so the next commit
/// can start it over from the top.
///
/// A checkpoint cannot copy the frames of commits made while it runs; the WAL only
/// starts over once a checkpoint has copied all of it, and otherwise grows until
/// SQLite's backstop checkpoints inside a commit (fsyncs on the commit path: a
/// stall). So after an incomplete pass this waits for the store to go quiet (no
/// commit for [`QUIET`]) and goes again; while commits keep coming it goes again
/// after [`CHECKPOINT_PAGES`] or a second, whichever is first. It gives up after
/// [`MAX_PASSES`] passes or when the store is closed; the next commits trigger it
/// again. The waits are tokio timers, so a runtime that shuts down just drops it.
async fn checkpoint(
    checkpoints: Arc<Checkpoints>,
    path: Arc<PathBuf>,
    store: std::sync::Weak<Mutex<Connection>>,
) {
    /// Clears `running` however this ends.
    struct Running(Arc<Checkpoints>);
    impl Drop for Running {
        fn drop(&mut self) {
            self.0.running.store(false, Ordering::Release);
        }
    }
    let running = Running(checkpoints);
    for _ in 0..MAX_PASSES {
        let (pass, db) = (Arc::clone(&running.0), Arc::clone(&path));
        let complete = tokio::task::spawn_blocking(move || pass.pass(&db))
            .await
            .unwrap_or(true);
        if complete {
            if cut_back_when_quiet(&running.0, &path, &store).await {
                continue;
            }
            return;
        }
        if let Wait::Gone = wait_quiet(&running.0, &store, QUIET, 20 * QUIET).await {
            return;
        }
    }
}

/// How [`wait_quiet`] ended.
enum Wait {
    /// No commit came for the time asked.
    Quiet,
    /// Commits wrote a checkpoint's worth of pages meanwhile.
    Busy,
    /// The store was closed.
    Gone,
    /// The limit passed without either.
    TimedOut,
}

/// Waits, checking every [`QUIET`], until no commit came for `quiet`, commits
/// wrote [`CHECKPOINT_PAGES`], the store closed, or `limit` passed.
async fn wait_quiet(
    checkpoints: &Checkpoints,
    store: &std::sync::Weak<Mutex<Connection>>,
    quiet: std::time::Duration,
    limit: std::time::Duration,
) -> Wait {
    let mut seen = checkpoints.pages.load(Ordering::Relaxed);
    let (mut waited, mut still) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    while waited < limit {
        tokio::time::sleep(QUIET).await;
        waited += QUIET;
        if store.strong_count() == 0 {
            return Wait::Gone;
        }
        let pages = checkpoints.pages.load(Ordering::Relaxed);
        if pages >= CHECKPOINT_PAGES {
            return Wait::Busy;
        }
        if pages == seen {
            still += QUIET;
            if still >= quiet {
                return Wait::Quiet;
            }
        } else {
            (seen, still) = (pages, std::time::Duration::ZERO);
        }
    }
    Wait::TimedOut
}

/// After a burst the WAL file keeps the size it grew to: the writer never cuts it
/// (`journal_size_limit` is off), because SQLite would cut it inside the first
/// commit after the WAL starts over, and cutting a file of tens of MiB took
/// 140-180 ms there on the bench's VM, stalling every message behind it. Instead,
/// once a checkpoint has copied the whole WAL back and no commit came for
/// [`CUT_QUIET`], a WAL file over [`schema::WAL_SIZE_LIMIT`] is cut to nothing
/// here (the cut copies back whatever came in between). True when commits wrote
/// a checkpoint's worth of pages meanwhile: the caller checkpoints again. After
/// [`CUT_WAIT`] without a quiet moment it gives up; the next checkpoint that
/// completes tries again.
async fn cut_back_when_quiet(
    checkpoints: &Arc<Checkpoints>,
    path: &Arc<PathBuf>,
    store: &std::sync::Weak<Mutex<Connection>>,
) -> bool {
    let (big, p) = (Arc::clone(checkpoints), Arc::clone(path));
    if !tokio::task::spawn_blocking(move || big.wal_is_big(&p))
        .await
        .unwrap_or(false)
    {
        return false;
    }
    match wait_quiet(checkpoints, store, CUT_QUIET, CUT_WAIT).await {
        Wait::Quiet => {
            let (cut, p) = (Arc::clone(checkpoints), Arc::clone(path));
            let _ = tokio::task::spawn_blocking(move || cut.cut_back(&p)).await;
            false
        }
        Wait::Busy => true,
        Wait::Gone | Wait::TimedOut => false,
    }
}

/// See [`checkpoint`].
const QUIET: std::time::Duration = std::time::Duration::from_millis(50);

/// See [`cut_back_when_quiet`].
const CUT_QUIET: std::time::Duration = std::time::Duration::from_millis(250);

/// See [`cut_back_when_quiet`].
const CUT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// See [`checkpoint`].
const MAX_PASSES: usize = 20;

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

    /// Runs `f` against the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = Arc::clone(&self.path);
        let checkpoints = Arc::clone(&self.checkpoints);
        tokio::task::spawn_blocking(move || {
            let (result, changes) = {
                // A panic inside a query cannot leave SQLite half-written (the
                // transaction rolls back), so a poisoned lock is safe to reuse.
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let before = conn.total_changes();
                let result = f(&mut conn);
                (result, conn.total_changes().wrapping_sub(before))
            };
            if checkpoints.written(changes) {
                // Detached: the caller has its answer, the checkpoint runs beside
                // the next commits.
                let store = Arc::downgrade(&conn);
                drop(tokio::spawn(checkpoint(
                    checkpoints,
                    Arc::clone(&path),
                    store,
                )));
            }
            result.map_err(|source| StoreError::Sqlite {
                path: path.as_ref().clone(),
                source,
            })
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Background checkpoint passes run so far.
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.done.load(Ordering::Relaxed)
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
        let conn = tokio::task::spawn_blocking(move || schema::open(&db_path, &user))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
        tracing::info!("database open: {}", path.display());
        Ok(StoreHandle {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            checkpoints: Arc::default(),
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

    /// Commits messages `seqs` one per transaction, as live pushes at a low rate
    /// make them.
    async fn insert_one_by_one(handle: &StoreHandle, seqs: std::ops::RangeInclusive<u64>) {
        use rcim_proto::message::{ConversationKey, WireMessage};
        use rcim_proto::upstream::InboxEntry;
        for seq in seqs {
            let entry = InboxEntry {
                seq,
                message: WireMessage {
                    uid: format!("u{seq:06}"),
                    conversation: ConversationKey::private("bob"),
                    sender: "bob".into(),
                    object_name: "RC:TxtMsg".into(),
                    content: "x".repeat(200),
                    sent_time_ms: seq as i64,
                },
            };
            handle
                .call(move |c| queries::insert_incoming(c, vec![entry], 1))
                .await
                .unwrap();
        }
    }

    /// Messages stored and the sync cursor.
    async fn stored(handle: &StoreHandle) -> (i64, u64) {
        handle
            .call(|c| {
                let count: i64 = c.query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))?;
                Ok((count, queries::sync_cursor(c)?))
            })
            .await
            .unwrap()
    }

    /// Waits up to 10 s for `done`.
    async fn eventually(mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn checkpoints_run_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreOpener::new(dir.path()).open("dora").await.unwrap();
        let auto: i64 = handle
            .call(|c| c.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(auto, schema::AUTOCHECKPOINT_PAGES);
        assert_eq!(handle.checkpoints(), 0);
        insert_one_by_one(&handle, 1..=400).await;
        eventually(|| handle.checkpoints() >= 1).await;
        assert!(handle.checkpoints() >= 1, "a background checkpoint ran");
        assert_eq!(stored(&handle).await, (400, 400));
    }

    /// Paused time: the quiet period passes as soon as nothing else runs (tokio
    /// waits for the blocking pool, where SQLite works, before it moves the clock).
    #[tokio::test(start_paused = true)]
    async fn a_grown_wal_is_cut_back_once_the_store_is_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let handle = StoreOpener::new(dir.path()).open("erin").await.unwrap();
        let limit: i64 = handle
            .call(|c| c.pragma_query_value(None, "journal_size_limit", |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(limit, -1, "the writer never cuts the WAL inside a commit");
        // 400 commits write ~3,200 WAL pages: far over a 64 KiB limit.
        handle
            .checkpoints
            .wal_limit
            .store(64 * 1024, Ordering::Relaxed);
        insert_one_by_one(&handle, 1..=400).await;
        let mut wal = handle.path().as_os_str().to_owned();
        wal.push("-wal");
        let wal_len = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(u64::MAX);
        eventually(|| handle.checkpoints.cut.load(Ordering::Relaxed) >= 1).await;
        assert!(
            handle.checkpoints.cut.load(Ordering::Relaxed) >= 1,
            "the WAL was cut back (passes {}, WAL {} bytes)",
            handle.checkpoints(),
            wal_len()
        );
        assert_eq!(wal_len(), 0, "the WAL file is empty once cut back");
        assert_eq!(stored(&handle).await, (400, 400));
        // The store goes on as before, and a WAL under the limit is left alone.
        handle
            .checkpoints
            .wal_limit
            .store(u64::MAX, Ordering::Relaxed);
        insert_one_by_one(&handle, 401..=600).await;
        assert_eq!(stored(&handle).await, (600, 600));
        tokio::time::sleep(CUT_QUIET * 2).await;
        assert_eq!(handle.checkpoints.cut.load(Ordering::Relaxed), 1);
        assert!(wal_len() > 0, "a small WAL keeps its file");
    }
}
