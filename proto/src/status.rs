//! The connection status every local app sees, and the snapshot `rcimctl status`
//! prints.
//!
//! [`ConnectionStatus`] carries RC's RCIMIWConnectionStatus numbers (the wrapper SDK's
//! enum, the same on iOS, Android and Flutter), so an app's status listener can keep
//! its `switch`.

use serde::{Deserialize, Serialize};
use std::fmt;

/// RCIMIWConnectionStatus: the state of the one upstream connection.
///
/// The variant order is the wire encoding and RC's numbering; only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// 0: the device has no network; the daemon reconnects when it returns.
    NetworkUnavailable,
    /// 1: connected.
    Connected,
    /// 2: connecting.
    Connecting,
    /// 3: not connected, and not trying (no `connect` yet, or all callers gave up).
    Unconnected,
    /// 4: the same user logged in on another device; this one was kicked (31010).
    KickedOfflineByOtherClient,
    /// 5: the token was refused (31004) or has expired (31020).
    TokenIncorrect,
    /// 6: the user is blocked (31009 / 31011).
    ConnUserBlocked,
    /// 7: an app called `disconnect`.
    SignOut,
    /// 8: the connection dropped; the daemon reconnects on its own.
    Suspend,
    /// 9: the connect time limit passed; an app must call `connect` again.
    Timeout,
    /// 10: any other state (a terminal error without a status of its own).
    Unknown,
}

impl ConnectionStatus {
    /// Every status, in numeric order.
    pub const ALL: [ConnectionStatus; 11] = [
        Self::NetworkUnavailable,
        Self::Connected,
        Self::Connecting,
        Self::Unconnected,
        Self::KickedOfflineByOtherClient,
        Self::TokenIncorrect,
        Self::ConnUserBlocked,
        Self::SignOut,
        Self::Suspend,
        Self::Timeout,
        Self::Unknown,
    ];

    /// The RCIMIWConnectionStatus number.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// The status with this RCIMIWConnectionStatus number.
    pub fn from_code(code: i32) -> Option<Self> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The snake_case name used in JSON output, e.g. `token_incorrect`.
    pub fn name(self) -> &'static str {
        match self {
            Self::NetworkUnavailable => "network_unavailable",
            Self::Connected => "connected",
            Self::Connecting => "connecting",
            Self::Unconnected => "unconnected",
            Self::KickedOfflineByOtherClient => "kicked_offline_by_other_client",
            Self::TokenIncorrect => "token_incorrect",
            Self::ConnUserBlocked => "conn_user_blocked",
            Self::SignOut => "sign_out",
            Self::Suspend => "suspend",
            Self::Timeout => "timeout",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ConnectionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error code with its meaning, as shown to people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// The RC code.
    pub code: i32,
    /// What it means.
    pub message: String,
}

impl ErrorInfo {
    /// The info for an RC code, with its standard meaning.
    pub fn from_code(code: crate::RcCode) -> Self {
        Self {
            code: code.0,
            message: code.meaning().to_owned(),
        }
    }
}

/// What the link is doing now: published to every attached client on each change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    /// The connection status.
    pub status: ConnectionStatus,
    /// The RC code that caused this status (0 when none).
    pub code: i32,
    /// The user the link is connected or connecting as.
    pub user_id: Option<String>,
    /// Connection attempt number since the last success (0 when connected or idle).
    pub attempt: u32,
    /// Milliseconds until the next attempt, while waiting to retry.
    pub retry_in_ms: Option<u64>,
}

impl LinkState {
    /// The state of a daemon that has never been asked to connect.
    pub fn idle() -> Self {
        Self {
            status: ConnectionStatus::Unconnected,
            code: 0,
            user_id: None,
            attempt: 0,
            retry_in_ms: None,
        }
    }
}

/// Everything `rcimctl status` shows, as the daemon reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    /// The link's current state.
    pub link: LinkState,
    /// The upstream server in use: the one connected to, else the one dialed last
    /// (one of the configured list; `rcim://host:port`).
    pub server: String,
    /// Local clients attached now.
    pub clients: u32,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Successful connections after the first one (reconnects).
    pub reconnects: u64,
    /// The last error the link met, if any.
    pub last_error: Option<ErrorInfo>,
    /// The daemon's version.
    pub daemon_version: String,
    /// The daemon's IPC [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
    pub protocol: u32,
    /// Messages received and not read, over every conversation of the open
    /// database (0 when none is open). Kept in the database as messages come and
    /// are read, not counted at each query. (Protocol 6.)
    pub unread_total: u64,
    /// Where the daemon keeps the token and the database key (`secret-service`,
    /// `keyutils`, `memory`, ...). (Protocol 6.)
    pub token_store: String,
    /// The open user database, once one was opened. (Protocol 6.)
    pub database: Option<Box<DatabaseInfo>>,
}

/// The user database as `rcimctl status` and `rcimctl doctor` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseInfo {
    /// The database file.
    pub path: String,
    /// Whether it is encrypted at rest (SQLCipher).
    pub encrypted: bool,
    /// The store that keeps its key; `None` when it is not encrypted.
    pub key_store: Option<String>,
    /// Why it is not encrypted, when it is not (e.g. the token store is memory).
    pub plain_reason: Option<String>,
    /// Earlier databases of this user that were moved aside because their key was
    /// lost (`rcim.db.unreadable-<UTC stamp>`): nothing was deleted.
    pub moved_aside: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_rcimiw_connection_status() {
        let expected = [
            (0, "network_unavailable"),
            (1, "connected"),
            (2, "connecting"),
            (3, "unconnected"),
            (4, "kicked_offline_by_other_client"),
            (5, "token_incorrect"),
            (6, "conn_user_blocked"),
            (7, "sign_out"),
            (8, "suspend"),
            (9, "timeout"),
            (10, "unknown"),
        ];
        for (code, name) in expected {
            let status = ConnectionStatus::from_code(code).unwrap();
            assert_eq!(status.code(), code);
            assert_eq!(status.name(), name);
        }
        assert_eq!(ConnectionStatus::from_code(11), None);
        assert_eq!(ConnectionStatus::from_code(-1), None);
    }

    #[test]
    fn postcard_encodes_the_rc_number() {
        for status in ConnectionStatus::ALL {
            let bytes = postcard::to_stdvec(&status).unwrap();
            assert_eq!(bytes, vec![u8::try_from(status.code()).unwrap()]);
        }
    }
}
