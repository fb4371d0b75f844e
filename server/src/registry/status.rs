//! Status messages' routes: how a status message reaches the live connections of
//! its recipients, and only those.
//!
//! RC's status messages (typing status, `/statusmessage/*/publish.json`) are
//! delivered to devices online at that moment and stored nowhere: not in the
//! messages table, not in any inbox, so no sync ever brings them. Every accepted
//! connection subscribes here under its user id and gets a bounded queue; a
//! status message is handed to each queue of each recipient with `try_send`, so a
//! slow or stuck connection loses status messages (which RC does not guarantee
//! either) but never holds up the sender or the other recipients. The returned
//! [`StatusSubscription`] removes the route when dropped.

use rcim_proto::message::WireMessage;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Status messages queued per connection, at most; more are dropped (and
/// counted in the log) until the connection catches up.
pub const STATUS_QUEUE: usize = 64;

/// One connection's route.
#[derive(Debug)]
struct Route {
    id: u64,
    queue: mpsc::Sender<Arc<WireMessage>>,
}

/// The routes of every live connection, by user id.
#[derive(Debug, Default)]
pub struct StatusRoutes {
    by_user: Mutex<HashMap<String, Vec<Route>>>,
    next_id: AtomicU64,
}

impl StatusRoutes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes a live connection of `user_id`.
    pub fn subscribe(self: &Arc<Self>, user_id: &str) -> StatusSubscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, receiver) = mpsc::channel(STATUS_QUEUE);
        self.lock()
            .entry(user_id.to_owned())
            .or_default()
            .push(Route { id, queue });
        StatusSubscription {
            routes: Arc::clone(self),
            user_id: user_id.to_owned(),
            id,
            receiver,
        }
    }

    /// Hands `message` to every live connection of `user_id`; how many took it.
    pub fn deliver(&self, user_id: &str, message: &Arc<WireMessage>) -> usize {
        let map = self.lock();
        let Some(routes) = map.get(user_id) else {
            return 0;
        };
        let mut taken = 0;
        for route in routes {
            match route.queue.try_send(Arc::clone(message)) {
                Ok(()) => taken += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(user = user_id, "status queue full: status message dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        taken
    }

    fn unsubscribe(&self, user_id: &str, id: u64) {
        let mut map = self.lock();
        if let Some(routes) = map.get_mut(user_id) {
            routes.retain(|r| r.id != id);
            if routes.is_empty() {
                map.remove(user_id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Route>>> {
        // Every critical section leaves the map consistent, so poison is harmless.
        self.by_user.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One connection's queue of status messages; dropping it removes the route.
#[derive(Debug)]
pub struct StatusSubscription {
    routes: Arc<StatusRoutes>,
    user_id: String,
    id: u64,
    receiver: mpsc::Receiver<Arc<WireMessage>>,
}

impl StatusSubscription {
    /// The next status message for this connection (cancel-safe).
    pub async fn next(&mut self) -> Option<Arc<WireMessage>> {
        self.receiver.recv().await
    }
}

impl Drop for StatusSubscription {
    fn drop(&mut self) {
        self.routes.unsubscribe(&self.user_id, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::message::ConversationKey;

    fn status() -> Arc<WireMessage> {
        Arc::new(WireMessage {
            uid: "u".into(),
            conversation: ConversationKey::private("alice"),
            sender: "alice".into(),
            object_name: "RC:TypSts".into(),
            content: "{}".into(),
            sent_time_ms: 1,
        })
    }

    #[tokio::test]
    async fn reaches_every_live_connection_of_the_user_and_nobody_after() {
        let routes = Arc::new(StatusRoutes::new());
        let mut a1 = routes.subscribe("bob");
        let mut a2 = routes.subscribe("bob");
        let mut other = routes.subscribe("carol");
        assert_eq!(routes.deliver("bob", &status()), 2);
        assert_eq!(a1.next().await.unwrap().object_name, "RC:TypSts");
        assert_eq!(a2.next().await.unwrap().object_name, "RC:TypSts");
        assert!(other.receiver.try_recv().is_err());
        drop(a1);
        drop(a2);
        assert_eq!(routes.deliver("bob", &status()), 0, "offline: nothing kept");
        assert!(routes.lock().get("bob").is_none());
    }

    #[tokio::test]
    async fn a_full_queue_drops_instead_of_blocking() {
        let routes = Arc::new(StatusRoutes::new());
        let _slow = routes.subscribe("bob");
        for _ in 0..STATUS_QUEUE {
            assert_eq!(routes.deliver("bob", &status()), 1);
        }
        assert_eq!(routes.deliver("bob", &status()), 0);
    }
}
