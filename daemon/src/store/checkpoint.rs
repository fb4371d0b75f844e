//! Background WAL checkpoints of one database, off the commit path.
//!
//! SQLite would otherwise copy the WAL back into the database (and fsync both)
//! inside whichever commit crossed its threshold, stalling that commit and
//! everything queued behind it for milliseconds. Instead, once the commits since
//! the last checkpoint have written about [`CHECKPOINT_PAGES`] pages, a `PASSIVE`
//! checkpoint runs on a second connection on the blocking pool, next to the
//! commits (WAL lets a checkpoint and a writer work at once), and again once the
//! commits pause, until the whole WAL is copied back and can start over (see
//! [`checkpoint`]). SQLite's own automatic checkpoint stays as a backstop at a much
//! larger size (see `schema::AUTOCHECKPOINT_PAGES`). On the bench's VM an fsync
//! takes 10-150 ms and stalls concurrent writes to the same files, so how often a
//! checkpoint runs, and where, shows directly in the latency tail.

use super::cipher::DbKey;
use super::schema;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Pages written since the last checkpoint (estimated) that start a background
/// checkpoint: SQLite's default automatic checkpoint size.
pub const CHECKPOINT_PAGES: u64 = 1_000;

/// The background checkpoints of one database.
pub(super) struct Checkpoints {
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
    /// The database's key, which the checkpointing connection sets first.
    key: Option<DbKey>,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Checkpoints {
    /// The checkpoints of a database with `key` (`None`: plain).
    pub(super) fn new(key: Option<DbKey>) -> Self {
        Self {
            pages: AtomicU64::new(0),
            running: AtomicBool::new(false),
            done: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            wal_limit: AtomicU64::new(schema::WAL_SIZE_LIMIT),
            conn: Mutex::new(None),
            key,
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
            match schema::open_checkpointer(path, self.key.as_ref()) {
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
    store: Weak<Mutex<Connection>>,
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
    store: &Weak<Mutex<Connection>>,
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
    store: &Weak<Mutex<Connection>>,
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

impl Checkpoints {
    /// Called after every store call that changed `changes` rows of `store`:
    /// starts a background checkpoint when one is due (detached: the caller has its
    /// answer, the checkpoint runs beside the next commits).
    pub(super) fn after_write(
        self: &Arc<Self>,
        changes: u64,
        path: &Arc<PathBuf>,
        store: &Arc<Mutex<Connection>>,
    ) {
        if self.written(changes) {
            drop(tokio::spawn(checkpoint(
                Arc::clone(self),
                Arc::clone(path),
                Arc::downgrade(store),
            )));
        }
    }

    /// Background checkpoint passes run so far.
    pub(super) fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{StoreHandle, StoreOpener, queries};

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
