//! The inbox of one connection: sync, gaps, ordered apply, commit batching, acks.
//!
//! A batch (a sync package or a burst of pushes) is committed to the store together
//! with the inbox cursor in one transaction; only then is it acknowledged upstream
//! and handed back to the link to show to clients. Entries are applied strictly in
//! sequence: anything after a gap waits in a small buffer while the inbox asks the
//! server for the gap with `Sync{since: cursor}`; anything at or below the cursor
//! was already committed and is skipped. So a drop, a crash or a server restart at
//! any moment can neither lose nor duplicate a message.
//!
//! The inbox lives as long as its connection: after a reconnect a new one starts
//! from the committed cursor. It writes to the upstream and the store it is given
//! and reports what happened; it never reacts to a failure itself. A failed write
//! or commit is returned as the [`Failure`] that ends the connection (nothing was
//! acknowledged that is not committed, so the server sends it again), and the
//! events for clients are pushed to the caller's list, for the link to publish.

use super::connector::{Failure, Upstream};
use super::{Frame, store_failure};
use crate::store::StoreHandle;
use futures_util::FutureExt;
use rcim_proto::ipc::Event;
use rcim_proto::time::now_ms;
use rcim_proto::upstream::{ClientMsg, InboxEntry, ServerMsg};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Entries applied in one transaction at most.
const MAX_BATCH: usize = 1_000;

/// Out-of-order entries held while a gap is being fetched, at most.
const MAX_PENDING: usize = 10_000;

/// Under a steady stream of pushes, commits start at most this often: when the
/// link was busy until just now ([`BUSY_GAP`]), pushes that arrive within this
/// interval of the previous commit's start wait for the rest of it and go into
/// one transaction. A push after a pause is committed at once (so a message at a
/// time costs no added latency; tokio's timer has a 1 ms resolution, so any
/// wait here is a millisecond or two). Every commit rewrites about eight 4 KiB
/// pages whatever its size (a leaf of the table and of each index, the
/// AUTOINCREMENT counter, the conversation, the cursor), so one transaction per
/// push at 10,000 pushes/s writes ~300 MB/s of WAL and every checkpoint's fsync
/// stalls the writer for milliseconds; batched by this interval it is about an
/// eighth (bench: p99 at 10,000 msg/s, N=16, went from 20-30 ms to 5-9 ms).
const COMMIT_INTERVAL: Duration = Duration::from_millis(1);

/// A push that arrives within this of the end of the previous commit finds the
/// link busy (see [`COMMIT_INTERVAL`]).
const BUSY_GAP: Duration = Duration::from_micros(300);

/// Inbox progress on one connection.
pub(super) struct Inbox {
    /// The user's database.
    store: StoreHandle,
    /// The last committed inbox sequence number.
    cursor: u64,
    /// Entries after a gap, waiting for it to be filled.
    pending: BTreeMap<u64, InboxEntry>,
    /// A Sync was sent and its batch has not come back yet.
    sync_in_flight: bool,
    /// `OfflineSyncCompleted` was reported for this connection.
    sync_completed: bool,
    /// When the last commit started and ended.
    last_commit: Option<(Instant, Instant)>,
}

impl Inbox {
    /// Right after the CONNACK: reads the committed cursor and asks the server for
    /// everything after it.
    pub(super) async fn start(
        store: StoreHandle,
        upstream: &mut Upstream,
    ) -> Result<Self, Failure> {
        let cursor = store.sync_cursor().await.map_err(store_failure)?;
        tracing::debug!("syncing the inbox after seq {cursor}");
        upstream
            .send(&ClientMsg::Sync { since_seq: cursor })
            .await?;
        Ok(Self {
            store,
            cursor,
            pending: BTreeMap::new(),
            sync_in_flight: true,
            sync_completed: false,
            last_commit: None,
        })
    }

    /// A live push: collects whatever else is already buffered into one batch, and
    /// under a steady stream whatever arrives until [`COMMIT_INTERVAL`] after the
    /// previous commit started, then applies it. Returns the frame read past the
    /// pushes, if any, for the link to handle next.
    pub(super) async fn on_push(
        &mut self,
        first: InboxEntry,
        upstream: &mut Upstream,
        events: &mut Vec<Event>,
    ) -> Result<Option<Frame>, Failure> {
        let mut batch = vec![first];
        let mut next = None;
        while batch.len() < MAX_BATCH {
            match upstream.reader.read::<ServerMsg>().now_or_never() {
                Some(Ok(Some(ServerMsg::Push(entry)))) => batch.push(entry),
                Some(other) => {
                    next = Some(other);
                    break;
                }
                None => break,
            }
        }
        let now = Instant::now();
        let due = self
            .last_commit
            .filter(|&(_, ended)| now.saturating_duration_since(ended) < BUSY_GAP)
            .map(|(started, _)| started + COMMIT_INTERVAL);
        if let Some(due) = due.filter(|&due| next.is_none() && due > now) {
            // The reader is cancel-safe: a frame half read when the time is up
            // stays buffered for the next read.
            while batch.len() < MAX_BATCH {
                tokio::select! {
                    frame = upstream.reader.read::<ServerMsg>() => match frame {
                        Ok(Some(ServerMsg::Push(entry))) => batch.push(entry),
                        other => {
                            next = Some(other);
                            break;
                        }
                    },
                    () = tokio::time::sleep_until(due) => break,
                }
            }
        }
        let run = self.accept(batch, upstream).await?;
        if let Some(run) = run {
            self.commit(run, false, false, upstream, events).await?;
        }
        Ok(next)
    }

    /// A sync package.
    pub(super) async fn on_sync_batch(
        &mut self,
        entries: Vec<InboxEntry>,
        has_more: bool,
        upstream: &mut Upstream,
        events: &mut Vec<Event>,
    ) -> Result<(), Failure> {
        self.sync_in_flight = false;
        let run = self.accept(entries, upstream).await?;
        // Ask for the next package before committing this one, so the server sends
        // it while the database works. Only asking: nothing is acknowledged before
        // its commit, and if the commit fails the connection restarts from the
        // committed cursor.
        if let Some(last) = run.as_ref().and_then(|run| run.last())
            && has_more
            && !self.sync_in_flight
            && self.pending.is_empty()
        {
            self.sync_in_flight = true;
            let since = last.seq;
            upstream.send(&ClientMsg::Sync { since_seq: since }).await?;
        }
        if let Some(run) = run {
            self.commit(run, true, has_more, upstream, events).await?;
        }
        let cursor = self.cursor;
        if self.sync_in_flight {
            // The next package (or the gap) is already asked for.
        } else if has_more || !self.pending.is_empty() {
            self.sync_in_flight = true;
            upstream
                .send(&ClientMsg::Sync { since_seq: cursor })
                .await?;
        } else if !self.sync_completed {
            self.sync_completed = true;
            tracing::debug!("offline sync complete at seq {cursor}");
            events.push(Event::OfflineSyncCompleted);
        }
        Ok(())
    }

    /// Takes entries in: those after the cursor wait in sequence order, and the run
    /// that continues the cursor with no gap is returned for the commit (`None`
    /// when there is nothing to commit). After a gap, asks the server for what is
    /// missing.
    async fn accept(
        &mut self,
        entries: Vec<InboxEntry>,
        upstream: &mut Upstream,
    ) -> Result<Option<Vec<InboxEntry>>, Failure> {
        let mut next = self.cursor + 1;
        let mut run = Vec::with_capacity(entries.len());
        let mut entries = entries.into_iter();
        // The common case, a batch that continues the cursor in order with nothing
        // held: straight into the run, no detour through the map.
        if self.pending.is_empty() {
            for entry in entries.by_ref() {
                if entry.seq < next {
                    continue;
                }
                if entry.seq > next {
                    if self.pending.len() < MAX_PENDING {
                        self.pending.insert(entry.seq, entry);
                    }
                    break;
                }
                run.push(entry);
                next += 1;
            }
        }
        for entry in entries {
            if entry.seq >= next && self.pending.len() < MAX_PENDING {
                self.pending.insert(entry.seq, entry);
            }
        }
        // Held entries that now continue the run.
        while let Some(entry) = self.pending.remove(&next) {
            run.push(entry);
            next += 1;
        }
        // Anything at or below the run's end was a repeat.
        while self
            .pending
            .first_key_value()
            .is_some_and(|(&seq, _)| seq < next)
        {
            self.pending.pop_first();
        }
        if !self.pending.is_empty() && !self.sync_in_flight {
            // Something is missing before the held entries: fetch it.
            self.sync_in_flight = true;
            let since = next - 1;
            tracing::debug!("gap after seq {since}: syncing");
            upstream.send(&ClientMsg::Sync { since_seq: since }).await?;
        }
        Ok((!run.is_empty()).then_some(run))
    }

    /// Commits a gapless run (one transaction with the cursor), then acknowledges
    /// it upstream, then hands the new messages over for the clients: durable
    /// before anyone is told. The events are handed over even when the
    /// acknowledgement fails: what is committed may be shown.
    async fn commit(
        &mut self,
        run: Vec<InboxEntry>,
        offline: bool,
        has_package: bool,
        upstream: &mut Upstream,
        events: &mut Vec<Event>,
    ) -> Result<(), Failure> {
        let Some(last) = run.last().map(|e| e.seq) else {
            return Ok(());
        };
        let started = Instant::now();
        let committed = self.store.apply_incoming(run, now_ms()).await;
        self.last_commit = Some((started, Instant::now()));
        let incoming = committed.map_err(store_failure)?;
        self.cursor = self.cursor.max(last);
        let inserted = incoming.messages;
        let total = inserted.len();
        events.extend(inserted.into_iter().enumerate().map(|(i, message)| {
            Event::MessageReceived {
                message,
                left: u32::try_from(total - 1 - i).unwrap_or(u32::MAX),
                offline,
                has_package,
            }
        }));
        // What the batch's recalls, read receipts and read syncs changed.
        events.extend(incoming.applied);
        // Durable now: acknowledge.
        upstream.send(&ClientMsg::Ack { seq: last }).await
    }
}
