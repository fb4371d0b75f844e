//! One connection's path through its user's inbox: sync batches, then live pushes.
//!
//! This module owns the per-connection cursor that makes delivery gap-free and
//! duplicate-free. [`Delivery`] is created right after the CONNACK, and subscribes
//! to the user's inbox signal then, before the client can ask for anything. From
//! there:
//!
//! - `Sync{since}` reads the entries after `since` (at most
//!   [`SYNC_PACKAGE`], and at most [`BATCH_BYTES`] of strings so the frame stays
//!   under the wire's cap) and sets the cursor to the last entry sent (or to
//!   `since` when there is none). A batch with `has_more: false` makes the
//!   connection **live**; one with `has_more: true` (also a re-sync while live)
//!   makes it not live until the client has caught up again, so pushes never
//!   interleave with batches.
//! - Live, the connection pushes the entries after its cursor, at most
//!   [`PUSH_CHUNK`] per turn of the connection loop (so a long backlog cannot
//!   starve pings, acks or publishes), advancing the cursor with each.
//!
//! **The seam.** Every publish commits first and signals after; the subscription
//! exists before the first sync reads the database. So an entry committed before
//! a sync's read is in that batch (or a later one), and one committed after it is
//! signalled after the subscription existed: the connection wakes, sees a
//! notified sequence number above its cursor and reads it. Nothing falls between
//! the last batch and the first push. Because both paths only ever send entries
//! after the cursor, and the cursor only moves to what was sent, nothing is sent
//! twice on one connection — except what the client itself asks for again with a
//! lower `since`.
//!
//! Acks: an `Ack{seq}` at or below the cursor is valid by construction and only
//! remembered; it is written (the user's acknowledged sequence number only moves
//! forward) when the connection loop has nothing else to do, or when it ends, so
//! a client acking every push costs one write per burst. An ack beyond the cursor
//! is checked against the database at once; beyond the user's last sequence
//! number it is a protocol error.

use crate::db::DbError;
use crate::registry::inbox::InboxSubscription;
use crate::state::Shared;
use rcim_proto::frame::MAX_UPSTREAM_FRAME;
use rcim_proto::message::SYNC_PACKAGE;
use rcim_proto::upstream::{InboxEntry, ServerMsg};

/// Most entries pushed per turn of the connection loop.
pub(crate) const PUSH_CHUNK: usize = SYNC_PACKAGE;

/// Most bytes of message fields in one sync batch: the wire's frame cap minus room
/// for the per-entry and per-frame overhead. A single entry always fits (content
/// is at most 128 KB).
pub(crate) const BATCH_BYTES: usize = MAX_UPSTREAM_FRAME as usize - 64 * 1024;

/// A generous bound on the encoded size of `entry` (postcard: the strings plus a
/// few bytes of lengths and integers).
fn encoded_bound(entry: &InboxEntry) -> usize {
    let m = &entry.message;
    m.uid.len()
        + m.conversation.target_id.len()
        + m.sender.len()
        + m.object_name.len()
        + m.content.len()
        + 64
}

/// What an `Ack` turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AckOutcome {
    /// Within the user's inbox.
    Recorded,
    /// Beyond the user's last sequence number.
    BeyondInbox,
}

/// One connection's delivery state; see the module documentation.
pub(crate) struct Delivery {
    user_id: String,
    signal: InboxSubscription,
    /// The highest sequence number sent on this connection (batch or push).
    cursor: u64,
    /// The last sync batch said `has_more: false`.
    live: bool,
    /// Entries after the cursor may exist (live only).
    pending: bool,
    /// The highest ack not yet written.
    unwritten_ack: Option<u64>,
}

impl Delivery {
    /// Subscribes to the inbox of `user_id`; call before answering any `Sync`.
    pub(crate) fn new(shared: &Shared, user_id: &str) -> Self {
        Self {
            user_id: user_id.to_owned(),
            signal: shared.inbox.subscribe(user_id),
            cursor: 0,
            live: false,
            pending: false,
            unwritten_ack: None,
        }
    }

    /// Answers `Sync{since_seq}`: the batch to send.
    pub(crate) async fn sync(
        &mut self,
        shared: &Shared,
        since_seq: u64,
    ) -> Result<ServerMsg, DbError> {
        let mut entries = shared
            .db
            .inbox_after(&self.user_id, since_seq, SYNC_PACKAGE + 1)
            .await?;
        let mut has_more = entries.len() > SYNC_PACKAGE;
        entries.truncate(SYNC_PACKAGE);
        let mut bytes = 0;
        if let Some(fit) = entries.iter().position(|entry| {
            bytes += encoded_bound(entry);
            bytes > BATCH_BYTES
        }) {
            entries.truncate(fit.max(1));
            has_more = true;
        }
        self.cursor = entries.last().map_or(since_seq, |e| e.seq);
        self.live = !has_more;
        // Anything notified beyond the batch (committed after its read) is pushed.
        self.pending = self.live && self.signal.latest() > self.cursor;
        Ok(ServerMsg::SyncBatch { entries, has_more })
    }

    /// Whether pushes are due now.
    pub(crate) fn push_due(&self) -> bool {
        self.live && self.pending
    }

    /// Whether the connection should wait for the inbox signal.
    pub(crate) fn waits_for_signal(&self) -> bool {
        self.live && !self.pending
    }

    /// Waits for the inbox signal, then notes whether there is anything new.
    pub(crate) async fn signalled(&mut self) {
        self.signal.changed().await;
        self.pending = self.signal.latest() > self.cursor;
    }

    /// The next entries to push (at most [`PUSH_CHUNK`]), advancing the cursor
    /// past them.
    pub(crate) async fn next_pushes(
        &mut self,
        shared: &Shared,
    ) -> Result<Vec<InboxEntry>, DbError> {
        let entries = shared
            .db
            .inbox_after(&self.user_id, self.cursor, PUSH_CHUNK)
            .await?;
        if let Some(last) = entries.last() {
            self.cursor = last.seq;
        }
        self.pending = entries.len() == PUSH_CHUNK || self.signal.latest() > self.cursor;
        Ok(entries)
    }

    /// Handles `Ack{seq}`.
    pub(crate) async fn ack(&mut self, shared: &Shared, seq: u64) -> Result<AckOutcome, DbError> {
        if seq <= self.cursor {
            self.unwritten_ack = Some(self.unwritten_ack.map_or(seq, |a| a.max(seq)));
            return Ok(AckOutcome::Recorded);
        }
        if shared.db.ack(&self.user_id, seq).await? {
            Ok(AckOutcome::Recorded)
        } else {
            Ok(AckOutcome::BeyondInbox)
        }
    }

    /// Whether an ack waits to be written.
    pub(crate) fn has_unwritten_ack(&self) -> bool {
        self.unwritten_ack.is_some()
    }

    /// Writes the remembered ack, if any (failures are logged: acks are
    /// informational).
    pub(crate) async fn write_ack(&mut self, shared: &Shared) {
        if let Some(seq) = self.unwritten_ack.take()
            && let Err(e) = shared.db.ack(&self.user_id, seq).await
        {
            tracing::warn!(error = %e, seq, "could not record an ack");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::frame::write_frame;
    use rcim_proto::message::{ConversationKey, MAX_CONTENT_LEN, WireMessage};

    fn entry(seq: u64, content_len: usize) -> InboxEntry {
        InboxEntry {
            seq: u64::MAX - seq,
            message: WireMessage {
                uid: uuid::Uuid::now_v7().to_string(),
                conversation: ConversationKey::private("x".repeat(64)),
                sender: "x".repeat(64),
                object_name: "x".repeat(32),
                content: "x".repeat(content_len),
                sent_time_ms: i64::MIN,
            },
        }
    }

    #[tokio::test]
    async fn a_batch_within_the_byte_budget_fits_in_a_frame() {
        // As many of the largest entries as the budget allows, plus the last one
        // that still fits by the bound: the encoded frame must be under the cap.
        let mut entries = Vec::new();
        let mut bytes = 0;
        loop {
            let next = entry(entries.len() as u64, MAX_CONTENT_LEN);
            if bytes + encoded_bound(&next) > BATCH_BYTES {
                break;
            }
            bytes += encoded_bound(&next);
            entries.push(next);
        }
        let batch = ServerMsg::SyncBatch {
            entries,
            has_more: true,
        };
        let mut out = Vec::new();
        write_frame(&mut out, &batch, MAX_UPSTREAM_FRAME)
            .await
            .expect("the batch fits in one frame");
        // And the bound really bounds one entry's encoding.
        let mut one = Vec::new();
        write_frame(&mut one, &entry(0, 10), MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
        assert!(one.len() - 4 <= encoded_bound(&entry(0, 10)));
    }
}
