//! The registry of live IM connections.
//!
//! Every accepted connection registers here under its user id and its client's
//! platform, with the sending side of its control channel; the returned
//! [`Registration`] removes it again when dropped, so a connection task that ends for
//! any reason (clean close, error, panic) is never left behind as "online".
//!
//! The registry never writes to sockets itself: it hands [`Control`] messages to the
//! connection's task with `try_send`, so a slow client cannot block the registry or
//! anyone holding its lock. Kicking an older connection of the same user and
//! platform (RC 31010) is `register` returning the older entries and the caller
//! sending each a `Control::Disconnect(DisconnectReason::KICKED)`; blocking a user
//! is [`OnlineRegistry::send_to_user`] with `Disconnect(USER_BLOCKED)`.

use rcim_proto::code::DisconnectReason;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Capacity of each connection's control channel. Control messages are rare and
/// the first `Disconnect` ends the connection, so a few slots are plenty.
pub const CONTROL_CAPACITY: usize = 4;

/// An instruction to one live connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Send `ServerMsg::Disconnect { reason }` and close.
    Disconnect(DisconnectReason),
}

/// A handle to one live connection, for sending it [`Control`] messages.
#[derive(Debug, Clone)]
pub struct ConnectionHandle {
    /// Unique id of the connection (for logs and for unregistering).
    pub conn_id: u64,
    /// The user the connection authenticated as.
    pub user_id: String,
    /// The client's platform class.
    pub platform: String,
    control: mpsc::Sender<Control>,
}

impl ConnectionHandle {
    /// Queues `control` for the connection. Returns `false` when the connection is
    /// already gone or its control queue is full (it is then ending anyway).
    pub fn send(&self, control: Control) -> bool {
        self.control.try_send(control).is_ok()
    }
}

/// The live connections, by user id.
#[derive(Debug, Default)]
pub struct OnlineRegistry {
    by_user: Mutex<HashMap<String, Vec<ConnectionHandle>>>,
    next_id: AtomicU64,
}

impl OnlineRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a live connection of `user_id` on `platform`.
    ///
    /// Returns the registration guard, the receiving side of the connection's control
    /// channel, and the other live connections of the same user on the same platform
    /// (oldest first), which a kick policy would disconnect.
    pub fn register(
        self: &Arc<Self>,
        user_id: &str,
        platform: &str,
    ) -> (Registration, mpsc::Receiver<Control>, Vec<ConnectionHandle>) {
        let conn_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CONTROL_CAPACITY);
        let handle = ConnectionHandle {
            conn_id,
            user_id: user_id.to_owned(),
            platform: platform.to_owned(),
            control: tx,
        };
        let mut map = self.lock();
        let entries = map.entry(user_id.to_owned()).or_default();
        let same_platform = entries
            .iter()
            .filter(|e| e.platform == platform)
            .cloned()
            .collect();
        entries.push(handle);
        drop(map);
        let registration = Registration {
            registry: Arc::clone(self),
            user_id: user_id.to_owned(),
            conn_id,
        };
        (registration, rx, same_platform)
    }

    /// Whether `user_id` has at least one live connection.
    pub fn is_online(&self, user_id: &str) -> bool {
        self.lock().get(user_id).is_some_and(|v| !v.is_empty())
    }

    /// Number of live connections.
    pub fn count(&self) -> u64 {
        self.lock().values().map(|v| v.len() as u64).sum()
    }

    /// Every live connection (a snapshot).
    pub fn all(&self) -> Vec<ConnectionHandle> {
        self.lock().values().flatten().cloned().collect()
    }

    /// The live connections of `user_id` (a snapshot).
    pub fn connections_of(&self, user_id: &str) -> Vec<ConnectionHandle> {
        self.lock().get(user_id).cloned().unwrap_or_default()
    }

    /// Sends `control` to every live connection of `user_id`; returns how many
    /// took it.
    pub fn send_to_user(&self, user_id: &str, control: Control) -> usize {
        self.connections_of(user_id)
            .iter()
            .filter(|h| h.send(control))
            .count()
    }

    /// Sends `control` to every live connection; returns how many took it.
    pub fn broadcast(&self, control: Control) -> usize {
        self.all().iter().filter(|h| h.send(control)).count()
    }

    fn unregister(&self, user_id: &str, conn_id: u64) {
        let mut map = self.lock();
        if let Some(entries) = map.get_mut(user_id) {
            entries.retain(|e| e.conn_id != conn_id);
            if entries.is_empty() {
                map.remove(user_id);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<ConnectionHandle>>> {
        // Every critical section leaves the map consistent, so poison is harmless.
        self.by_user.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps one connection registered; dropping it unregisters the connection.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<OnlineRegistry>,
    user_id: String,
    conn_id: u64,
}

impl Registration {
    /// The connection's id.
    pub fn conn_id(&self) -> u64 {
        self.conn_id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.unregister(&self.user_id, self.conn_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_and_drop() {
        let registry = Arc::new(OnlineRegistry::new());
        let (a, _rx_a, older) = registry.register("alice", "desktop");
        assert!(older.is_empty());
        let (b, _rx_b, older) = registry.register("alice", "desktop");
        assert_eq!(older.len(), 1);
        assert_eq!(older[0].conn_id, a.conn_id());
        let (_c, _rx_c, older) = registry.register("alice", "mobile");
        assert!(older.is_empty(), "another platform is not the same slot");
        assert_eq!(registry.count(), 3);
        assert!(registry.is_online("alice"));
        assert!(!registry.is_online("bob"));
        drop(a);
        drop(b);
        assert_eq!(registry.count(), 1);
        assert!(registry.is_online("alice"));
    }

    #[test]
    fn control_reaches_the_connection() {
        let registry = Arc::new(OnlineRegistry::new());
        let (_reg, mut rx, _) = registry.register("alice", "desktop");
        let control = Control::Disconnect(DisconnectReason::SERVER_SHUTDOWN);
        assert_eq!(registry.broadcast(control), 1);
        assert_eq!(rx.try_recv().unwrap(), control);
        drop(rx);
        assert_eq!(
            registry.broadcast(control),
            0,
            "a gone receiver takes nothing"
        );
    }

    #[test]
    fn send_to_user_reaches_only_that_user() {
        let registry = Arc::new(OnlineRegistry::new());
        let (_a1, mut rx_a1, _) = registry.register("alice", "desktop");
        let (_a2, mut rx_a2, _) = registry.register("alice", "mobile");
        let (_b, mut rx_b, _) = registry.register("bob", "desktop");
        let control = Control::Disconnect(DisconnectReason::USER_BLOCKED);
        assert_eq!(registry.send_to_user("alice", control), 2);
        assert_eq!(registry.send_to_user("nobody", control), 0);
        assert_eq!(rx_a1.try_recv().unwrap(), control);
        assert_eq!(rx_a2.try_recv().unwrap(), control);
        assert!(rx_b.try_recv().is_err());
        assert_eq!(registry.connections_of("alice").len(), 2);
    }

    #[test]
    fn last_registration_removes_the_user() {
        let registry = Arc::new(OnlineRegistry::new());
        let (reg, _rx, _) = registry.register("alice", "desktop");
        drop(reg);
        assert!(!registry.is_online("alice"));
        assert!(registry.lock().is_empty());
    }
}
