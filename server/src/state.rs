//! The state every part of the running server shares.
//!
//! [`Shared`] is built once by [`crate::start`] and handed (in an `Arc`) to the IM
//! accept loop, to every connection task and to the HTTP router. It holds the app's
//! identity and secret, the database, the online registry and the counters behind
//! [`Stats`]; it has no behaviour of its own beyond reading those counters.

use crate::db::Db;
use crate::registry::online::OnlineRegistry;
use crate::token::TokenIssuer;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
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
    /// Messages routed (messaging is not implemented yet: always 0).
    pub messages: u64,
}

/// Monotonic counters updated by the IM endpoint.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) connects_accepted: AtomicU64,
    pub(crate) connects_rejected: AtomicU64,
    pub(crate) messages: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
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
    /// The server database.
    pub(crate) db: Db,
    /// Live IM connections.
    pub(crate) online: Arc<OnlineRegistry>,
    /// Counters behind [`Stats`].
    pub(crate) counters: Counters,
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
        }
    }
}

/// Wall-clock time in ms since the Unix epoch (0 if the clock is before 1970).
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
