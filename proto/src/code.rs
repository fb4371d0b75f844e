//! RC's numeric result codes, and the upstream CONNACK / DISCONNECT reason codes with
//! their mapping onto them.
//!
//! The numbers are RC's own (see `shared/spec/rc-connection-semantics.md` §3), so an
//! app ported from the RC SDK can keep its error handling. [`RcCode::meaning`] gives a
//! short sentence for each; [`RcCode::is_terminal`] and [`RcCode::is_transient`]
//! encode which connection failures stop the reconnect loop and which retry.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An RC result code: 0 for success, otherwise one of RC's error numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RcCode(pub i32);

macro_rules! rc_codes {
    ($($name:ident = $value:literal, $meaning:literal;)*) => {
        impl RcCode {
            $(
                #[doc = $meaning]
                pub const $name: RcCode = RcCode($value);
            )*

            /// Every code this crate knows, in numeric order.
            pub const ALL: &'static [RcCode] = &[$(RcCode::$name),*];

            /// RC's name for the code, e.g. `RC_CONN_TOKEN_INCORRECT`.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// A short sentence saying what the code means.
            pub fn meaning(self) -> &'static str {
                match self.0 {
                    $($value => $meaning,)*
                    _ => "unknown error code",
                }
            }
        }
    };
}

rc_codes! {
    SUCCESS = 0, "success";
    NOT_IN_GROUP = 22406, "the sender is not a member of the group";
    RC_RECALLMESSAGE_PARAMETER_INVALID = 25101, "the message to recall does not exist or was not sent by this user";
    RC_CHANNEL_INVALID = 30001, "the connection was already released";
    RC_NETWORK_UNAVAILABLE = 30002, "the connection is not available";
    RC_MSG_RESPONSE_TIMEOUT = 30003, "the server did not answer a request in time";
    RC_NAVI_REQUEST_FAIL = 30004, "the navigation request failed";
    RC_NAVIGATION_REQUEST_TIMEOUT = 30005, "the navigation request timed out";
    RC_NAVIGATION_RESPONSE_ERROR = 30006, "the navigation response could not be received";
    RC_NAVI_RESPONSE_ERROR = 30007, "the navigation result was abnormal";
    RC_NODE_NOT_FOUND = 30008, "the navigation data has no usable server";
    RC_DOMAIN_NOT_RESOLVE = 30009, "the server address could not be resolved";
    RC_SOCKET_NOT_CONNECTED = 30010, "the connection to the server could not be opened";
    RC_SOCKET_DISCONNECTED = 30011, "the connection to the server was closed";
    RC_PING_SEND_FAIL = 30012, "sending the heartbeat failed";
    RC_PONG_RECV_FAIL = 30013, "the server did not answer the heartbeat in time";
    RC_MSG_SEND_FAIL = 30014, "sending the message failed";
    RC_CONN_OVERFREQUENCY = 30015, "connecting too frequently";
    RC_MSG_SIZE_OUT_OF_LIMIT = 30016, "the message is larger than 128 KB";
    RC_NETWORK_IS_DOWN_OR_UNREACHABLE = 30019, "the network is down or unreachable";
    RC_RMTP_CONNECTED_ERROR = 30021, "the server was reached but the protocol handshake failed";
    CONNECTION_CLOSING = 30027, "the connection was closed by a disconnect";
    RC_CONN_ACK_TIMEOUT = 31000, "the server did not acknowledge the connection in time";
    RC_CONN_PROTO_VERSION_ERROR = 31001, "the server does not speak this protocol version";
    RC_CONN_ID_REJECT = 31002, "the server rejected the app key or client identity";
    RC_CONN_SERVER_UNAVAILABLE = 31003, "the server is unavailable";
    RC_CONN_TOKEN_INCORRECT = 31004, "the token is invalid: fetch a new one from your app server (check that it was issued for this app key)";
    RC_CONN_NOT_AUTHRORIZED = 31005, "the app is not authorized: app key and token do not match";
    RC_CONN_REDIRECTED = 31006, "the server redirected the connection";
    RC_CONN_PACKAGE_NAME_INVALID = 31007, "the package name does not match the app";
    RC_CONN_APP_BLOCKED_OR_DELETED = 31008, "the app key is blocked or deleted";
    RC_CONN_USER_BLOCKED = 31009, "the user is blocked";
    RC_DISCONN_KICK = 31010, "kicked offline: the same user connected from another device";
    RC_DISCONN_EXCEPTION = 31011, "the server ended the connection (the user may have been blocked)";
    RC_CONN_TOKEN_EXPIRE = 31020, "the token has expired: fetch a new one from your app server";
    RC_CONN_OTHER_DEVICE_LOGIN = 31023, "another device of the same kind is already online";
    RC_CONN_CONCURRENT_LIMIT = 31024, "the concurrent connection limit was reached";
    RC_CONN_CLUSTER_ERROR = 31025, "wrong environment for this app key";
    RC_CONN_APP_AUTH_FAILED = 31026, "the app server rejected the connection";
    RC_CONN_DISPOSABLE_TOKEN_USED = 31027, "the one-time token was already used";
    RC_CONN_USER_ABANDON = 31029, "the account was deleted";
    RC_CONN_APP_LICENSE_EXPIRED = 31030, "the app license has expired";
    RC_QUERY_ACK_NO_DATA = 32001, "protocol error: the answer carried no data";
    RC_MSG_DATA_INCOMPLETE = 32002, "protocol error: the data was incomplete";
    RC_CONNECTION_RESET_BY_PEER = 32054, "the connection was reset by the server";
    BIZ_SAVE_MESSAGE_ERROR = 33000, "saving the message in the local database failed";
    CLIENT_NOT_INIT = 33001, "the client is not initialised (is rcimd running?)";
    DATABASE_ERROR = 33002, "the local database could not be opened or used";
    INVALID_PARAMETER = 33003, "invalid argument";
    RC_CONNECTION_EXIST = 34001, "a connection for another user already exists: disconnect first";
    RC_CONNECT_TIMEOUT = 34006, "the connect time limit passed before the connection succeeded";
    RC_NET_TLS_HANDSHAKE_FAILED = 34031, "the TLS handshake with the server failed";
    RC_NET_SSL_CERT_INVALID = 34032, "the server's TLS certificate is not trusted";
}

impl RcCode {
    /// Whether this is the success code.
    pub fn is_success(self) -> bool {
        self.0 == 0
    }

    /// Connection failures that stop reconnecting: the status changes, every waiting
    /// caller is told once, and no further attempt is made until a new `connect`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::RC_CONN_ID_REJECT
                | Self::RC_CONN_TOKEN_INCORRECT
                | Self::RC_CONN_NOT_AUTHRORIZED
                | Self::RC_CONN_PACKAGE_NAME_INVALID
                | Self::RC_CONN_APP_BLOCKED_OR_DELETED
                | Self::RC_CONN_USER_BLOCKED
                | Self::RC_DISCONN_KICK
                | Self::RC_DISCONN_EXCEPTION
                | Self::RC_CONN_TOKEN_EXPIRE
                | Self::RC_CONN_OTHER_DEVICE_LOGIN
                | Self::RC_CONN_CLUSTER_ERROR
                | Self::RC_CONN_APP_AUTH_FAILED
                | Self::RC_CONN_DISPOSABLE_TOKEN_USED
                | Self::RC_CONN_USER_ABANDON
                | Self::RC_CONN_APP_LICENSE_EXPIRED
        )
    }

    /// Connection failures after which the link retries on RC's schedule.
    pub fn is_transient(self) -> bool {
        matches!(self.0, 30001..=30021)
            || matches!(
                self,
                Self::RC_CONN_ACK_TIMEOUT
                    | Self::RC_CONN_PROTO_VERSION_ERROR
                    | Self::RC_CONN_SERVER_UNAVAILABLE
                    | Self::RC_CONN_REDIRECTED
                    | Self::RC_CONN_CONCURRENT_LIMIT
                    | Self::RC_QUERY_ACK_NO_DATA
                    | Self::RC_MSG_DATA_INCOMPLETE
                    | Self::RC_CONNECTION_RESET_BY_PEER
                    | Self::RC_NET_TLS_HANDSHAKE_FAILED
                    | Self::RC_NET_SSL_CERT_INVALID
            )
    }

    /// Whether a token that produced this code must not be tried again until the
    /// user supplies a new one.
    pub fn rejects_token(self) -> bool {
        matches!(
            self,
            Self::RC_CONN_TOKEN_INCORRECT | Self::RC_CONN_TOKEN_EXPIRE
        )
    }
}

impl fmt::Display for RcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.meaning())
    }
}

impl From<RcCode> for i32 {
    fn from(code: RcCode) -> i32 {
        code.0
    }
}

/// The result code of an upstream CONNACK: 0 accepted, otherwise why the server
/// refused. Numbers 0–11 are RC's protocol codes; 12–16 are rcim's additions for
/// conditions RC reports with other client codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConnAckCode(pub u8);

impl ConnAckCode {
    /// The connection is accepted.
    pub const ACCEPTED: Self = Self(0);
    /// The server does not speak the client's wire version.
    pub const UNACCEPTABLE_PROTOCOL_VERSION: Self = Self(1);
    /// The app key or client identity was rejected.
    pub const IDENTIFIER_REJECTED: Self = Self(2);
    /// The server cannot take connections now.
    pub const SERVER_UNAVAILABLE: Self = Self(3);
    /// The token is not valid.
    pub const TOKEN_INCORRECT: Self = Self(4);
    /// The app is not authorized.
    pub const NOT_AUTHORIZED: Self = Self(5);
    /// The client should connect elsewhere.
    pub const REDIRECT: Self = Self(6);
    /// The package name is wrong.
    pub const PACKAGE_ERROR: Self = Self(7);
    /// The app is blocked or deleted.
    pub const APP_BLOCKED: Self = Self(8);
    /// The user is blocked.
    pub const USER_BLOCKED: Self = Self(9);
    /// The token has expired (or was invalidated).
    pub const TOKEN_EXPIRED: Self = Self(10);
    /// The device was refused.
    pub const DEVICE_ERROR: Self = Self(11);
    /// Another device of the same kind is online and the server does not kick it.
    pub const OTHER_DEVICE_LOGIN: Self = Self(12);
    /// The account was deleted.
    pub const USER_ABANDON: Self = Self(13);

    /// The RC client code an app sees for this CONNACK.
    pub fn to_rc(self) -> RcCode {
        match self.0 {
            0 => RcCode::SUCCESS,
            1 => RcCode::RC_CONN_PROTO_VERSION_ERROR,
            2 => RcCode::RC_CONN_ID_REJECT,
            3 => RcCode::RC_CONN_SERVER_UNAVAILABLE,
            4 => RcCode::RC_CONN_TOKEN_INCORRECT,
            5 => RcCode::RC_CONN_NOT_AUTHRORIZED,
            6 => RcCode::RC_CONN_REDIRECTED,
            7 => RcCode::RC_CONN_PACKAGE_NAME_INVALID,
            8 => RcCode::RC_CONN_APP_BLOCKED_OR_DELETED,
            9 => RcCode::RC_CONN_USER_BLOCKED,
            10 => RcCode::RC_CONN_TOKEN_EXPIRE,
            11 => RcCode::RC_CONN_ID_REJECT,
            12 => RcCode::RC_CONN_OTHER_DEVICE_LOGIN,
            13 => RcCode::RC_CONN_USER_ABANDON,
            // A newer server's code we do not know: the handshake failed, retry.
            _ => RcCode::RC_RMTP_CONNECTED_ERROR,
        }
    }
}

/// Why the server ends a live connection (the reason of a server DISCONNECT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisconnectReason(pub u8);

impl DisconnectReason {
    /// The same user connected from another device of the same platform.
    pub const KICKED: Self = Self(1);
    /// The user was blocked by the app server.
    pub const USER_BLOCKED: Self = Self(2);
    /// The server is shutting down; connect again later.
    pub const SERVER_SHUTDOWN: Self = Self(3);
    /// The client broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(4);
    /// The client sent nothing for longer than the server's heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: Self = Self(5);

    /// The RC client code an app sees for this disconnect.
    pub fn to_rc(self) -> RcCode {
        match self {
            Self::KICKED => RcCode::RC_DISCONN_KICK,
            Self::USER_BLOCKED => RcCode::RC_DISCONN_EXCEPTION,
            Self::SERVER_SHUTDOWN => RcCode::RC_CONN_SERVER_UNAVAILABLE,
            Self::PROTOCOL_ERROR => RcCode::RC_MSG_DATA_INCOMPLETE,
            Self::HEARTBEAT_TIMEOUT => RcCode::RC_PONG_RECV_FAIL,
            _ => RcCode::RC_SOCKET_DISCONNECTED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_name_and_a_meaning() {
        for code in RcCode::ALL {
            assert!(code.name().is_some(), "{}", code.0);
            assert_ne!(code.meaning(), "unknown error code", "{}", code.0);
        }
        assert_eq!(RcCode(12345).meaning(), "unknown error code");
        assert_eq!(RcCode(12345).name(), None);
    }

    #[test]
    fn terminal_and_transient_are_disjoint() {
        for code in RcCode::ALL {
            assert!(!(code.is_terminal() && code.is_transient()), "{}", code.0);
        }
    }

    #[test]
    fn terminal_codes_are_the_ones_rc_stops_on() {
        for n in [
            31002, 31004, 31005, 31008, 31009, 31010, 31011, 31020, 31023,
        ] {
            assert!(RcCode(n).is_terminal(), "{n}");
        }
        for n in [30001, 30011, 30013, 30021, 31000, 31003, 31006, 32054] {
            assert!(RcCode(n).is_transient(), "{n}");
        }
    }

    #[test]
    fn connack_codes_map_onto_rc_codes() {
        let table = [
            (0, 0),
            (1, 31001),
            (2, 31002),
            (3, 31003),
            (4, 31004),
            (5, 31005),
            (6, 31006),
            (8, 31008),
            (9, 31009),
            (10, 31020),
            (12, 31023),
            (200, 30021),
        ];
        for (ack, rc) in table {
            assert_eq!(ConnAckCode(ack).to_rc(), RcCode(rc), "CONNACK {ack}");
        }
    }

    #[test]
    fn disconnect_reasons_map_onto_rc_codes() {
        assert_eq!(DisconnectReason::KICKED.to_rc(), RcCode(31010));
        assert_eq!(DisconnectReason::USER_BLOCKED.to_rc(), RcCode(31011));
        assert!(DisconnectReason::SERVER_SHUTDOWN.to_rc().is_transient());
        assert!(DisconnectReason(99).to_rc().is_transient());
    }
}
