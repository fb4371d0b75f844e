//! The link's messaging: the inbox sync, live pushes, acks and the outbox.
//!
//! Incoming, in order: a batch (sync package or burst of pushes) is committed to the
//! store together with the inbox cursor in one transaction; only then is it
//! acknowledged upstream and shown to clients. Entries are applied strictly in
//! sequence: anything after a gap waits in a small buffer while the link asks the
//! server for the gap with `Sync{since: cursor}`; anything at or below the cursor
//! was already committed and is skipped. So a drop, a crash or a server restart at
//! any moment can neither lose nor duplicate a message.
//!
//! Outgoing: a message is stored in the outbox before `onMessageSaved`, published
//! as soon as the link is connected (again after every reconnect, with the same
//! client message id, which the server de-duplicates), and leaves the outbox only
//! when the server's PubAck is committed.

use super::connector::Failure;
use super::{Call, Link, Phase};
use crate::store::queries::{self, Outgoing};
use futures_util::FutureExt;
use rcim_proto::frame::{MAX_UPSTREAM_FRAME, encode};
use rcim_proto::ipc::{Callback, Event};
use rcim_proto::message::{ConversationKey, ConversationType, Message, check_outgoing};
use rcim_proto::upstream::{ClientMsg, InboxEntry, PubAck, Publish, ServerMsg};
use rcim_proto::{FrameError, RcCode};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
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
pub(super) const COMMIT_INTERVAL: Duration = Duration::from_millis(1);

/// A push that arrives within this of the end of the previous commit finds the
/// link busy (see [`COMMIT_INTERVAL`]).
pub(super) const BUSY_GAP: Duration = Duration::from_micros(300);

/// Inbox progress on one connection.
#[derive(Default)]
pub(super) struct InboxState {
    /// The last committed inbox sequence number.
    cursor: u64,
    /// Entries after a gap, waiting for it to be filled.
    pending: BTreeMap<u64, InboxEntry>,
    /// A Sync was sent and its batch has not come back yet.
    sync_in_flight: bool,
    /// `OfflineSyncCompleted` was published for this connection.
    sync_completed: bool,
    /// Outgoing messages published on this connection (by local id).
    published: HashSet<i64>,
    /// The store failed: do not acknowledge anything more on this connection.
    broken: bool,
    /// When the last commit started and ended.
    last_commit: Option<(Instant, Instant)>,
}

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Link {
    /// Right after the CONNACK: read the cursor, ask for the backlog, send the outbox.
    pub(super) async fn start_messaging(&mut self) {
        let Some(store) = self.store.handle() else {
            tracing::error!(
                "the database is not open: messages cannot be received or sent on this connection"
            );
            return;
        };
        let cursor = match store.call(|conn| queries::sync_cursor(conn)).await {
            Ok(cursor) => cursor,
            Err(e) => {
                self.store_failed(&e.to_string()).await;
                return;
            }
        };
        if let Phase::Connected(live) = &mut self.phase {
            live.inbox.cursor = cursor;
            live.inbox.sync_in_flight = true;
        }
        tracing::debug!("syncing the inbox after seq {cursor}");
        if !self.send_up(&ClientMsg::Sync { since_seq: cursor }).await {
            return;
        }
        let outbox = match store.call(|conn| queries::outbox(conn)).await {
            Ok(outbox) => outbox,
            Err(e) => {
                self.store_failed(&e.to_string()).await;
                return;
            }
        };
        if !outbox.is_empty() {
            tracing::info!("sending {} queued message(s)", outbox.len());
        }
        for message in outbox {
            if !self.publish_message(&message).await {
                return;
            }
        }
    }

    /// A local app called `sendMessage`.
    pub(super) async fn send_message(
        &mut self,
        conversation: ConversationKey,
        object_name: String,
        content: String,
    ) -> Call {
        let why = check_outgoing(&conversation, &object_name, &content)
            .err()
            .or(
                // System messages come only from a back-end, through the Server API.
                (conversation.kind == ConversationType::System)
                    .then_some("system messages are sent by a back-end, not by apps"),
            );
        if let Some(why) = why {
            tracing::info!("sendMessage refused: {why}");
            return Call::rejected(RcCode::INVALID_PARAMETER);
        }
        let (Some(store), Some(sender)) = (self.store.handle(), self.user_id.clone()) else {
            tracing::info!("sendMessage refused: no database is open (connect first)");
            return Call::rejected(RcCode::DATABASE_ERROR);
        };
        let outgoing = Outgoing {
            sender,
            conversation,
            object_name,
            content,
            client_msg_id: uuid::Uuid::now_v7().to_string(),
        };
        let saved = store
            .call(move |conn| queries::save_outgoing(conn, &outgoing, now_ms()))
            .await;
        let message = match saved {
            Ok(message) => message,
            Err(e) => {
                tracing::error!("cannot store an outgoing message: {e}");
                return Call::rejected(RcCode::BIZ_SAVE_MESSAGE_ERROR);
            }
        };
        let (tx, callbacks) = mpsc::channel(4);
        let _ = tx.try_send(Callback::MessageSaved {
            message: message.clone(),
        });
        self.senders.insert(message.id, tx);
        if matches!(self.phase, Phase::Connected(_)) {
            self.publish_message(&message).await;
        }
        Call {
            code: RcCode::SUCCESS,
            callbacks,
        }
    }

    /// Publishes one outbox message on the live connection (once per connection).
    async fn publish_message(&mut self, message: &Message) -> bool {
        let Phase::Connected(live) = &mut self.phase else {
            return false;
        };
        if !live.inbox.published.insert(message.id) {
            return true;
        }
        let Some(client_msg_id) = message.client_msg_id.clone() else {
            return true;
        };
        let publish = ClientMsg::Publish(Publish {
            req_id: u64::try_from(message.id).unwrap_or_default(),
            client_msg_id,
            conversation: message.conversation.clone(),
            object_name: message.object_name.clone(),
            content: message.content.clone(),
        });
        self.send_up(&publish).await
    }

    /// The server answered a PUBLISH.
    pub(super) async fn on_pub_ack(&mut self, ack: PubAck) {
        let Some(store) = self.store.handle() else {
            return;
        };
        let Ok(id) = i64::try_from(ack.req_id) else {
            return;
        };
        let result = if ack.code == 0 {
            let Some(uid) = ack.message_uid.clone() else {
                tracing::warn!("PubAck {id} accepted without a message uid; ignoring it");
                return;
            };
            let time = ack.sent_time_ms;
            store
                .call(move |conn| queries::mark_sent(conn, id, &uid, time))
                .await
        } else {
            tracing::warn!("the server refused message {id}: {}", RcCode(ack.code));
            store.call(move |conn| queries::mark_failed(conn, id)).await
        };
        let message = match result {
            Ok(Some(message)) => message,
            Ok(None) => {
                tracing::debug!("PubAck for unknown message {id}");
                return;
            }
            Err(e) => {
                self.store_failed(&e.to_string()).await;
                return;
            }
        };
        if let Some(sender) = self.senders.remove(&id) {
            let _ = sender.try_send(Callback::MessageSent {
                code: ack.code,
                message,
            });
        }
    }

    /// A live push: collect whatever else is already buffered into one batch, and
    /// under a steady stream whatever arrives until [`COMMIT_INTERVAL`] after the
    /// previous commit started.
    pub(super) async fn on_push(&mut self, first: InboxEntry) {
        let mut batch = vec![first];
        let mut next = None;
        if let Phase::Connected(live) = &mut self.phase {
            while batch.len() < MAX_BATCH {
                match live.upstream.reader.read::<ServerMsg>().now_or_never() {
                    Some(Ok(Some(ServerMsg::Push(entry)))) => batch.push(entry),
                    Some(other) => {
                        next = Some(other);
                        break;
                    }
                    None => break,
                }
            }
            let now = Instant::now();
            let due = live
                .inbox
                .last_commit
                .filter(|&(_, ended)| now.saturating_duration_since(ended) < BUSY_GAP)
                .map(|(started, _)| started + COMMIT_INTERVAL);
            if let Some(due) = due.filter(|&due| next.is_none() && due > now) {
                // The reader is cancel-safe: a frame half read when the time is up
                // stays buffered for the next read.
                while batch.len() < MAX_BATCH {
                    tokio::select! {
                        frame = live.upstream.reader.read::<ServerMsg>() => match frame {
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
        }
        self.apply(batch, false, false).await;
        if let Some(frame) = next {
            Box::pin(self.on_frame(frame)).await;
        }
    }

    /// A sync package.
    pub(super) async fn on_sync_batch(&mut self, entries: Vec<InboxEntry>, has_more: bool) {
        if let Phase::Connected(live) = &mut self.phase {
            live.inbox.sync_in_flight = false;
        }
        let run = self.accept(entries).await;
        // Ask for the next package before committing this one, so the server sends
        // it while the database works. Only asking: nothing is acknowledged before
        // its commit, and if the commit fails the connection restarts from the
        // committed cursor.
        if let Phase::Connected(live) = &mut self.phase
            && let Some(last) = run.as_ref().and_then(|run| run.last())
            && has_more
            && !live.inbox.sync_in_flight
            && live.inbox.pending.is_empty()
            && !live.inbox.broken
        {
            live.inbox.sync_in_flight = true;
            let since = last.seq;
            if !self.send_up(&ClientMsg::Sync { since_seq: since }).await {
                return;
            }
        }
        if let Some(run) = run {
            self.commit(run, true, has_more).await;
        }
        let Phase::Connected(live) = &mut self.phase else {
            return;
        };
        if live.inbox.broken {
            return;
        }
        let cursor = live.inbox.cursor;
        if live.inbox.sync_in_flight {
            // The next package (or the gap) is already asked for.
        } else if has_more || !live.inbox.pending.is_empty() {
            live.inbox.sync_in_flight = true;
            self.send_up(&ClientMsg::Sync { since_seq: cursor }).await;
        } else if !live.inbox.sync_completed {
            live.inbox.sync_completed = true;
            tracing::debug!("offline sync complete at seq {cursor}");
            self.deps.hub.publish(Event::OfflineSyncCompleted);
        }
    }

    /// Applies entries in sequence order: commit, acknowledge, tell the clients.
    async fn apply(&mut self, entries: Vec<InboxEntry>, offline: bool, has_package: bool) {
        if let Some(run) = self.accept(entries).await {
            self.commit(run, offline, has_package).await;
        }
    }

    /// Takes entries in: those after the cursor wait in sequence order, and the run
    /// that continues the cursor with no gap is returned for the commit (`None`
    /// when there is nothing to commit, or the inbox cannot be used). After a gap,
    /// asks the server for what is missing.
    async fn accept(&mut self, entries: Vec<InboxEntry>) -> Option<Vec<InboxEntry>> {
        let Phase::Connected(live) = &mut self.phase else {
            return None;
        };
        let inbox = &mut live.inbox;
        if inbox.broken || self.store.handle().is_none() {
            return None;
        }
        let mut next = inbox.cursor + 1;
        let mut run = Vec::with_capacity(entries.len());
        let mut entries = entries.into_iter();
        // The common case, a batch that continues the cursor in order with nothing
        // held: straight into the run, no detour through the map.
        if inbox.pending.is_empty() {
            for entry in entries.by_ref() {
                if entry.seq < next {
                    continue;
                }
                if entry.seq > next {
                    if inbox.pending.len() < MAX_PENDING {
                        inbox.pending.insert(entry.seq, entry);
                    }
                    break;
                }
                run.push(entry);
                next += 1;
            }
        }
        for entry in entries {
            if entry.seq >= next && inbox.pending.len() < MAX_PENDING {
                inbox.pending.insert(entry.seq, entry);
            }
        }
        // Held entries that now continue the run.
        while let Some(entry) = inbox.pending.remove(&next) {
            run.push(entry);
            next += 1;
        }
        // Anything at or below the run's end was a repeat.
        while inbox
            .pending
            .first_key_value()
            .is_some_and(|(&seq, _)| seq < next)
        {
            inbox.pending.pop_first();
        }
        let gap = !inbox.pending.is_empty();
        if gap && !inbox.sync_in_flight {
            // Something is missing before the held entries: fetch it.
            inbox.sync_in_flight = true;
            let since = next - 1;
            tracing::debug!("gap after seq {since}: syncing");
            self.send_up(&ClientMsg::Sync { since_seq: since }).await;
        }
        (!run.is_empty()).then_some(run)
    }

    /// Commits a gapless run (one transaction with the cursor), then acknowledges
    /// it upstream, then publishes the new messages to the clients: durable before
    /// anyone is told.
    async fn commit(&mut self, run: Vec<InboxEntry>, offline: bool, has_package: bool) {
        let Some(store) = self.store.handle() else {
            return;
        };
        let Some(last) = run.last().map(|e| e.seq) else {
            return;
        };
        let started = Instant::now();
        let committed = store
            .call(move |conn| queries::insert_incoming(conn, run, now_ms()))
            .await;
        if let Phase::Connected(live) = &mut self.phase {
            live.inbox.last_commit = Some((started, Instant::now()));
        }
        let inserted = match committed {
            Ok(inserted) => inserted,
            Err(e) => {
                self.store_failed(&e.to_string()).await;
                return;
            }
        };
        if let Phase::Connected(live) = &mut self.phase {
            live.inbox.cursor = live.inbox.cursor.max(last);
        }
        // Durable now: acknowledge, then show.
        if !self.send_up(&ClientMsg::Ack { seq: last }).await {
            // The connection failed; the clients may still see what is committed.
        }
        let total = inserted.len();
        let events = inserted
            .into_iter()
            .enumerate()
            .map(|(i, message)| Event::MessageReceived {
                message,
                left: u32::try_from(total - 1 - i).unwrap_or(u32::MAX),
                offline,
                has_package,
            })
            .collect();
        self.deps.hub.publish_all(events);
    }

    /// The store failed: stop acknowledging and reconnect later, so the server
    /// sends again what was not committed.
    async fn store_failed(&mut self, why: &str) {
        tracing::error!("the database failed: {why}; the connection is restarted");
        if let Phase::Connected(live) = &mut self.phase {
            live.inbox.broken = true;
        }
        let failure = Failure {
            code: RcCode::BIZ_SAVE_MESSAGE_ERROR,
            detail: Some(why.to_owned()),
        };
        Box::pin(self.on_failure(failure)).await;
    }

    /// Writes one frame upstream; on failure the connection is dropped (and
    /// reconnected) and false is returned.
    pub(super) async fn send_up(&mut self, msg: &ClientMsg) -> bool {
        let Phase::Connected(live) = &mut self.phase else {
            return false;
        };
        let write = async {
            let bytes = encode(msg, MAX_UPSTREAM_FRAME)?;
            live.upstream.writer.write_all(&bytes).await?;
            live.upstream.writer.flush().await?;
            Ok::<_, FrameError>(())
        };
        let limit = self.config.pong_timeout.max(Duration::from_secs(5));
        let detail = match tokio::time::timeout(limit, write).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => format!("writing to the server failed: {e}"),
            Err(_) => format!("writing to the server took longer than {limit:?}"),
        };
        let failure = Failure {
            code: RcCode::RC_SOCKET_DISCONNECTED,
            detail: Some(detail),
        };
        Box::pin(self.on_failure(failure)).await;
        false
    }
}
