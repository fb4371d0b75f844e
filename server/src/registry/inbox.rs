//! The per-user inbox signal: how a connection learns that its user's inbox grew.
//!
//! Every publish commits its inbox rows first and then calls [`InboxSignals::notify`]
//! with each grown inbox's new last sequence number. A connection holds an
//! [`InboxSubscription`] (a `tokio::sync::watch` receiver of the latest notified
//! sequence number, shared by all connections of the user) from its CONNACK on; it
//! never takes entries from the signal itself, only the hint "something after seq N
//! exists", and then reads the entries after its own cursor from the database. A
//! burst of publishes therefore costs the connection one query per wake-up, and a
//! notification that arrives late or twice is harmless.
//!
//! The value only moves forward (`send_if_modified` with the maximum), because two
//! transactions may notify in the other order than they committed. A user's entry
//! exists while at least one subscription does; the last one to drop removes it,
//! under the same lock that subscribing takes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// The signals of every user with a live connection.
#[derive(Debug, Default)]
pub struct InboxSignals {
    by_user: Mutex<HashMap<String, watch::Sender<u64>>>,
}

impl InboxSignals {
    /// No signals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to the inbox of `user_id`. The subscription starts with nothing
    /// unseen: only notifications after this call wake it.
    pub fn subscribe(self: &Arc<Self>, user_id: &str) -> InboxSubscription {
        let receiver = self
            .lock()
            .entry(user_id.to_owned())
            .or_insert_with(|| watch::channel(0).0)
            .subscribe();
        InboxSubscription {
            signals: Arc::clone(self),
            user_id: user_id.to_owned(),
            receiver: Some(receiver),
        }
    }

    /// Tells the subscribers of `user_id` (if any) that its inbox now reaches
    /// `last_seq`.
    pub fn notify(&self, user_id: &str, last_seq: u64) {
        if let Some(sender) = self.lock().get(user_id) {
            sender.send_if_modified(|latest| {
                let newer = last_seq > *latest;
                if newer {
                    *latest = last_seq;
                }
                newer
            });
        }
    }

    /// Number of users with at least one subscription.
    pub fn users(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, watch::Sender<u64>>> {
        // Every critical section leaves the map consistent, so poison is harmless.
        self.by_user.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's view of its user's inbox signal; unsubscribes when dropped.
#[derive(Debug)]
pub struct InboxSubscription {
    signals: Arc<InboxSignals>,
    user_id: String,
    /// Always `Some` until dropped.
    receiver: Option<watch::Receiver<u64>>,
}

impl InboxSubscription {
    /// The latest notified sequence number, marking it seen.
    pub fn latest(&mut self) -> u64 {
        self.receiver
            .as_mut()
            .map_or(0, |receiver| *receiver.borrow_and_update())
    }

    /// Waits until a notification arrives that [`InboxSubscription::latest`] has not
    /// seen yet.
    pub async fn changed(&mut self) {
        match self.receiver.as_mut() {
            // The sender lives in the map as long as this receiver does.
            Some(receiver) => {
                if receiver.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}

impl Drop for InboxSubscription {
    fn drop(&mut self) {
        let mut map = self.signals.lock();
        drop(self.receiver.take());
        if map
            .get(&self.user_id)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            map.remove(&self.user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notifications_wake_subscribers_and_only_move_forward() {
        let signals = Arc::new(InboxSignals::new());
        signals.notify("bob", 3); // nobody listens: dropped
        let mut a = signals.subscribe("bob");
        let mut b = signals.subscribe("bob");
        assert_eq!(a.latest(), 0);
        signals.notify("bob", 5);
        signals.notify("bob", 4);
        a.changed().await;
        assert_eq!(a.latest(), 5);
        b.changed().await;
        assert_eq!(b.latest(), 5);
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), a.changed());
        assert!(pending.await.is_err(), "nothing new");
        drop(a);
        assert_eq!(signals.users(), 1);
        drop(b);
        assert_eq!(signals.users(), 0, "the last subscription removes the user");
    }
}
