//! The search index is built in the background, off the commit path.
//!
//! FTS5 costs about as much per message as the rest of a commit (it more than
//! halved the commit path's rate when the index was written inside it, and still
//! cost a third of it when indexing ran next to a stream of commits), so a commit
//! only stores messages. After a write that changed rows this indexer waits for
//! a quiet moment (no write for [`QUIET`]), then indexes what is new in steps of
//! [`SEARCH_INDEX_STEP`] messages, each its own short transaction on the store's
//! connection, checking for quiet again before each step: during a sync or a
//! burst it stays out of the way, and a commit waits behind one step at most. A
//! search first indexes whatever is still pending, so it always sees every
//! stored message; recalls and deletes of indexed messages are kept true by
//! triggers (schema migration 3).

use super::queries::{self, SEARCH_INDEX_STEP};
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long the store must see no write before the indexer takes a step.
pub(super) const QUIET: Duration = Duration::from_millis(50);

/// The background indexer of one database.
#[derive(Default)]
pub(super) struct SearchIndexer {
    /// A run is going on (one at a time).
    running: AtomicBool,
    /// Write calls that changed rows, counted (to see a quiet moment).
    writes: AtomicU64,
}

impl SearchIndexer {
    /// After a write call that changed `changes` rows: starts a run unless one is
    /// going on. A run that ends as a write commits leaves that write's messages
    /// to the next write or search.
    pub(super) fn after_write(self: &Arc<Self>, changes: u64, store: &Arc<Mutex<Connection>>) {
        if changes == 0 {
            return;
        }
        self.writes.fetch_add(1, Ordering::AcqRel);
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let indexer = Arc::clone(self);
        let store = Arc::downgrade(store);
        drop(tokio::spawn(async move {
            loop {
                indexer.quiet().await;
                let store: Weak<Mutex<Connection>> = store.clone();
                match tokio::task::spawn_blocking(move || step(&store)).await {
                    Ok(covered) if covered >= SEARCH_INDEX_STEP => {}
                    _ => break,
                }
            }
            indexer.running.store(false, Ordering::Release);
        }));
    }

    /// Waits until a whole [`QUIET`] passes without a write.
    async fn quiet(&self) {
        loop {
            let before = self.writes.load(Ordering::Acquire);
            tokio::time::sleep(QUIET).await;
            if self.writes.load(Ordering::Acquire) == before {
                return;
            }
        }
    }
}

/// One step; how many messages it covered (0 when the store is closed or failed).
fn step(store: &Weak<Mutex<Connection>>) -> u32 {
    let Some(store) = store.upgrade() else {
        return 0;
    };
    let mut conn = store.lock().unwrap_or_else(|e| e.into_inner());
    match queries::index_pending(&mut conn, SEARCH_INDEX_STEP) {
        Ok(covered) => covered,
        Err(e) => {
            // The next write or search tries again; a search reports its error.
            tracing::warn!("indexing new messages for search failed: {e}");
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::StoreOpener;
    use rcim_proto::ipc::SearchQuery;
    use rcim_proto::message::{ConversationKey, WireMessage};
    use rcim_proto::upstream::InboxEntry;
    use std::time::Duration;

    #[tokio::test]
    async fn new_messages_are_indexed_in_the_background_and_found_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreOpener::new(dir.path()).open("alice").await.unwrap();
        let entries: Vec<InboxEntry> = (1..=1_200)
            .map(|seq| InboxEntry {
                seq,
                message: WireMessage {
                    uid: format!("u{seq}"),
                    conversation: ConversationKey::private("bob"),
                    sender: "bob".into(),
                    object_name: "RC:TxtMsg".into(),
                    content: format!(r#"{{"content":"note number{seq}"}}"#),
                    sent_time_ms: seq as i64,
                },
            })
            .collect();
        store.insert_incoming(entries, 1).await.unwrap();
        // A search right away finds everything (it indexes what is pending).
        let found = store
            .search(SearchQuery::new("number1200", 10))
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        // And without a search, the background indexer catches up by itself.
        let more = (1_201..=1_300)
            .map(|seq| InboxEntry {
                seq,
                message: WireMessage {
                    uid: format!("u{seq}"),
                    conversation: ConversationKey::private("bob"),
                    sender: "bob".into(),
                    object_name: "RC:TxtMsg".into(),
                    content: r#"{"content":"later"}"#.into(),
                    sent_time_ms: seq as i64,
                },
            })
            .collect();
        store.insert_incoming(more, 1).await.unwrap();
        let mut caught_up = false;
        for _ in 0..200 {
            if store.indexed_through().await.unwrap() == 1_300 {
                caught_up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(caught_up, "the background indexer did not catch up");
    }
}
