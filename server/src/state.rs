//! The state every part of the running server shares.
//!
//! [`Shared`] is built once by [`crate::start`] and handed (in an `Arc`) to the IM
//! accept loop, to every connection task and to the HTTP router. It holds the app's
//! identity and secret, the token lifetime, the database, the online registry, the
//! inbox signals, the counters behind [`Stats`] and the block epoch (see [`Shared::block_epoch`]); it
//! has no behaviour of its own beyond reading those.

use crate::db::Db;
use crate::registry::inbox::InboxSignals;
use crate::registry::online::OnlineRegistry;
use crate::registry::status::StatusRoutes;
use crate::token::TokenIssuer;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use zeroize::Zeroizing;

/// Server counters, as `/stats.json` and [`crate::RunningServer::stats`] report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// CONNECTs answered with CONNACK 0.
    pub connects_accepted: u64,
    /// CONNECTs answered with a non-zero CONNACK.
    pub connects_rejected: u64,
    /// Accepted connections still live.
    pub online: u64,
    /// Messages accepted (from IM clients and the Server API; a message to a group
    /// counts once, a resent duplicate not at all).
    pub messages: u64,
    /// Live connections ended with `Disconnect { KICKED }` because the same user
    /// connected again on the same platform.
    pub kicks: u64,
}

/// Monotonic counters updated by the IM endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects_accepted: AtomicU64,
    pub(crate) connects_rejected: AtomicU64,
    pub(crate) messages: AtomicU64,
    pub(crate) kicks: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The shared state of one running server.
pub(crate) struct Shared {
    /// Issues and verifies this app's tokens.
    pub(crate) tokens: TokenIssuer,
    /// The app secret, for checking Server API signatures.
    pub(crate) app_secret: Zeroizing<String>,
    /// How long a connection may stay silent.
    pub(crate) heartbeat_timeout: Duration,
    /// Lifetime of issued tokens; zero = never expire.
    pub(crate) token_lifetime: Duration,
    /// The server database.
    pub(crate) db: Db,
    /// Live IM connections.
    pub(crate) online: Arc<OnlineRegistry>,
    /// Per-user "the inbox grew" signals for live connections.
    pub(crate) inbox: Arc<InboxSignals>,
    /// Per-connection queues of status messages (live only, never stored).
    pub(crate) status: Arc<StatusRoutes>,
    /// Counters behind [`Stats`].
    pub(crate) counters: Counters,
    /// Bumped after every block is written to the database and before the blocked
    /// users' live connections are told. A CONNECT reads it before its database
    /// check and again after registering; if it moved, the check is repeated, so a
    /// block that races a CONNECT is never missed.
    pub(crate) block_epoch: AtomicU64,
    /// The echo user, when one runs (`rcimd --dev`): every private message sent to
    /// it comes back to its sender from it, with the same type and content.
    pub(crate) echo_user: std::sync::OnceLock<String>,
}

impl Shared {
    /// The app key this server hosts.
    pub(crate) fn app_key(&self) -> &str {
        self.tokens.app_key()
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> Stats {
        Stats {
            connects_accepted: self.counters.connects_accepted.load(Ordering::Relaxed),
            connects_rejected: self.counters.connects_rejected.load(Ordering::Relaxed),
            online: self.online.count(),
            messages: self.counters.messages.load(Ordering::Relaxed),
            kicks: self.counters.kicks.load(Ordering::Relaxed),
        }
    }

    /// The current block epoch.
    pub(crate) fn block_epoch(&self) -> u64 {
        self.block_epoch.load(Ordering::SeqCst)
    }

    /// The expiry time for a token issued at `issued_ms`: 0 (never) when the
    /// lifetime is zero.
    pub(crate) fn token_expiry(&self, issued_ms: i64) -> i64 {
        if self.token_lifetime.is_zero() {
            return 0;
        }
        let lifetime = i64::try_from(self.token_lifetime.as_millis()).unwrap_or(i64::MAX);
        issued_ms.saturating_add(lifetime.max(1))
    }
}
