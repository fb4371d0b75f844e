//! The one table between rcim's values and RC's native ones.
//!
//! rcimd speaks the wrapper SDK's numbers (RCIMIW: status 0–10, codes like 33001,
//! conversation types Private 1 / Group 2 / System 4); RC's native C ABI has its own
//! (status 0–34, `RcimEngineError`, Private 1 / Group 3 / System 6). Every
//! translation the library makes goes through the functions here, so there is one
//! place to read and one place to test.
//!
//! Codes RC's native SDK has no exact twin for are mapped to the nearest native
//! meaning, and said so beside the row.

use crate::types::{CEnum, RcimConnectionStatus, RcimConversationType, RcimEngineError};
use rcim_proto::message::{ConversationType, SentStatus};
use rcim_proto::{ConnectionStatus, RcCode};

/// The native code for an rcim code. `invalid` is the call's own invalid-argument
/// code (RC has one per argument, rcim one for all: 33003); an unknown code (from a
/// newer rcimd) is `NotSupportedYet`.
pub fn engine_error(code: i32, invalid: RcimEngineError) -> RcimEngineError {
    use RcimEngineError as E;
    match RcCode(code) {
        RcCode::SUCCESS => E::Success,
        RcCode::NOT_IN_GROUP => E::NotInGroup,
        RcCode::RC_CHANNEL_INVALID => E::ConnectionClosed,
        // The connection (to the server, or rcimd to the app) is not there.
        RcCode::RC_NETWORK_UNAVAILABLE => E::SocketConnectionFailed,
        RcCode::RC_MSG_RESPONSE_TIMEOUT => E::SocketRecvTimeout,
        RcCode::RC_NAVI_REQUEST_FAIL
        | RcCode::RC_NAVIGATION_RESPONSE_ERROR
        | RcCode::RC_NAVI_RESPONSE_ERROR
        | RcCode::RC_NODE_NOT_FOUND => E::NaviReqFailed,
        RcCode::RC_NAVIGATION_REQUEST_TIMEOUT => E::NaviReqTimeout,
        RcCode::RC_DOMAIN_NOT_RESOLVE
        | RcCode::RC_SOCKET_NOT_CONNECTED
        | RcCode::RC_NETWORK_IS_DOWN_OR_UNREACHABLE
        | RcCode::RC_RMTP_CONNECTED_ERROR
        | RcCode::RC_NET_TLS_HANDSHAKE_FAILED
        | RcCode::RC_NET_SSL_CERT_INVALID => E::SocketConnectionFailed,
        RcCode::RC_SOCKET_DISCONNECTED
        | RcCode::RC_PING_SEND_FAIL
        | RcCode::RC_CONNECTION_RESET_BY_PEER => E::ConnectionClosed,
        RcCode::RC_PONG_RECV_FAIL | RcCode::RC_CONN_ACK_TIMEOUT => E::SocketRecvTimeout,
        RcCode::RC_MSG_SEND_FAIL => E::SocketSendTimeout,
        RcCode::RC_CONN_OVERFREQUENCY => E::RequestOverFrequency,
        RcCode::RC_MSG_SIZE_OUT_OF_LIMIT => E::MsgSizeOutOfLimit,
        RcCode::CONNECTION_CLOSING => E::ConnectionClosing,
        RcCode::RC_CONN_PROTO_VERSION_ERROR => E::ConnectIllegalProtocolVersion,
        RcCode::RC_CONN_ID_REJECT => E::ConnectIdReject,
        RcCode::RC_CONN_SERVER_UNAVAILABLE => E::ConnectPlatformUnavailable,
        RcCode::RC_CONN_TOKEN_INCORRECT => E::ConnectTokenIncorrect,
        RcCode::RC_CONN_NOT_AUTHRORIZED => E::ConnectNotAuthorized,
        RcCode::RC_CONN_REDIRECTED => E::ConnectRedirect,
        RcCode::RC_CONN_PACKAGE_NAME_INVALID => E::ConnectPackageNameInvalid,
        RcCode::RC_CONN_APP_BLOCKED_OR_DELETED => E::ConnectAppBlockOrDelete,
        RcCode::RC_CONN_USER_BLOCKED => E::ConnectUserBlocked,
        RcCode::RC_DISCONN_KICK => E::DisconnectUserKicked,
        RcCode::RC_DISCONN_EXCEPTION => E::DisconnectUserBlocked,
        RcCode::RC_CONN_TOKEN_EXPIRE => E::ConnectTokenExpired,
        RcCode::RC_CONN_OTHER_DEVICE_LOGIN => E::ConnectOtherDeviceLogin,
        RcCode::RC_CONN_CONCURRENT_LIMIT => E::ConnectConcurrentLimitError,
        RcCode::RC_CONN_CLUSTER_ERROR => E::ConnectClusterError,
        RcCode::RC_CONN_APP_AUTH_FAILED => E::ConnectAppAuthFailed,
        RcCode::RC_CONN_DISPOSABLE_TOKEN_USED => E::ConnectOneTimePasswordUsed,
        RcCode::RC_CONN_USER_ABANDON => E::ConnectUserDeleteAccount,
        RcCode::RC_CONN_APP_LICENSE_EXPIRED => E::ConnectLicenseExpired,
        RcCode::RC_QUERY_ACK_NO_DATA | RcCode::RC_MSG_DATA_INCOMPLETE => E::NetDataParserFailed,
        RcCode::BIZ_SAVE_MESSAGE_ERROR => E::MessageSavedError,
        RcCode::RC_RECALLMESSAGE_PARAMETER_INVALID => E::RecallParameterInvalid,
        // rcimd cannot be reached (not running, or another user's): the library's
        // socket to it failed. `rcimctl status` says why.
        RcCode::CLIENT_NOT_INIT => E::SocketConnectionFailed,
        // rcimd has no database open yet (connect first) or it failed.
        RcCode::DATABASE_ERROR => E::DatabaseNotOpened,
        RcCode::INVALID_PARAMETER => invalid,
        RcCode::RC_CONNECTION_EXIST => E::ConnectionExists,
        RcCode::RC_CONNECT_TIMEOUT => E::ConnectionTimeout,
        _ => E::NotSupportedYet,
    }
}

/// The native status for an rcim status.
pub fn connection_status(status: ConnectionStatus) -> RcimConnectionStatus {
    use RcimConnectionStatus as S;
    match status {
        ConnectionStatus::NetworkUnavailable => S::DisconnectNetworkUnavailable,
        ConnectionStatus::Connected => S::Connected,
        ConnectionStatus::Connecting => S::Connecting,
        ConnectionStatus::Unconnected => S::Idle,
        ConnectionStatus::KickedOfflineByOtherClient => S::DisconnectUserKicked,
        ConnectionStatus::TokenIncorrect => S::DisconnectTokenIncorrect,
        ConnectionStatus::ConnUserBlocked => S::DisconnectUserBlocked,
        ConnectionStatus::SignOut => S::DisconnectUserLogout,
        // The link dropped and rcimd reconnects by itself: RC's native SDK says
        // connecting while it does.
        ConnectionStatus::Suspend => S::Connecting,
        ConnectionStatus::Timeout => S::DisconnectConnectionTimeout,
        ConnectionStatus::Unknown => S::DisconnectPlatformError,
    }
}

/// The native conversation type for an rcim one.
pub fn conversation_type(kind: ConversationType) -> RcimConversationType {
    use RcimConversationType as T;
    match kind {
        ConversationType::Invalid => T::NotSupportedYet,
        ConversationType::Private => T::Private,
        ConversationType::Group => T::Group,
        ConversationType::Chatroom => T::Chatroom,
        ConversationType::System => T::System,
        ConversationType::UltraGroup => T::UltraGroup,
    }
}

/// The rcim conversation type for a native one C passed in; `None` for a type rcim
/// does not have (discussion, customer service, …) or a number that is no type.
pub fn conversation_type_in(kind: CEnum) -> Option<ConversationType> {
    [
        ConversationType::Private,
        ConversationType::Group,
        ConversationType::Chatroom,
        ConversationType::System,
        ConversationType::UltraGroup,
    ]
    .into_iter()
    .find(|k| conversation_type(*k) as i32 == kind.0)
}

/// The native sent status for an rcim one.
pub fn sent_status(status: SentStatus) -> crate::types::RcimSentStatus {
    use crate::types::RcimSentStatus as S;
    match status {
        SentStatus::Sending => S::SENDING,
        SentStatus::Failed => S::FAILED,
        SentStatus::Sent => S::SENT,
        SentStatus::Received => S::RECEIVED,
        SentStatus::Read => S::READ,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RcimEngineError as E;

    #[test]
    fn every_rcim_code_maps_to_a_native_code_and_none_to_not_supported() {
        for code in RcCode::ALL {
            let native = engine_error(code.0, E::InvalidArgumentToken);
            assert_ne!(native, E::NotSupportedYet, "{code} has no row in the table");
        }
        assert_eq!(
            engine_error(12345, E::InvalidArgumentToken),
            E::NotSupportedYet
        );
    }

    #[test]
    fn known_code_pairs() {
        let table = [
            (0, E::Success),
            (31004, E::ConnectTokenIncorrect),
            (25101, E::RecallParameterInvalid),
            (31010, E::DisconnectUserKicked),
            (31020, E::ConnectTokenExpired),
            (34001, E::ConnectionExists),
            (34006, E::ConnectionTimeout),
            (33002, E::DatabaseNotOpened),
            (33001, E::SocketConnectionFailed),
            (30011, E::ConnectionClosed),
            (30016, E::MsgSizeOutOfLimit),
            (22406, E::NotInGroup),
        ];
        for (rcim, native) in table {
            assert_eq!(
                engine_error(rcim, E::InvalidArgumentToken),
                native,
                "{rcim}"
            );
        }
        // Codes that share RC's number keep it.
        for code in [
            0, 22406, 30001, 30003, 30016, 30027, 31004, 31010, 31020, 34001, 34006,
        ] {
            assert_eq!(engine_error(code, E::InvalidArgumentToken) as i32, code);
        }
    }

    #[test]
    fn an_invalid_argument_takes_the_calls_own_code() {
        assert_eq!(
            engine_error(33003, E::InvalidArgumentTargetId),
            E::InvalidArgumentTargetId
        );
        assert_eq!(
            engine_error(33003, E::InvalidArgumentCount),
            E::InvalidArgumentCount
        );
    }

    #[test]
    fn every_status_maps_and_the_known_pairs_hold() {
        let table = [
            (ConnectionStatus::NetworkUnavailable, 10),
            (ConnectionStatus::Connected, 2),
            (ConnectionStatus::Connecting, 1),
            (ConnectionStatus::Unconnected, 0),
            (ConnectionStatus::KickedOfflineByOtherClient, 22),
            (ConnectionStatus::TokenIncorrect, 17),
            (ConnectionStatus::ConnUserBlocked, 21),
            (ConnectionStatus::SignOut, 11),
            (ConnectionStatus::Suspend, 1),
            (ConnectionStatus::Timeout, 33),
            (ConnectionStatus::Unknown, 31),
        ];
        assert_eq!(table.len(), ConnectionStatus::ALL.len());
        for (status, native) in table {
            assert_eq!(connection_status(status) as i32, native, "{status}");
        }
    }

    #[test]
    fn conversation_types_round_trip_and_foreign_ones_are_refused() {
        for (rcim, native) in [
            (ConversationType::Private, 1),
            (ConversationType::Group, 3),
            (ConversationType::Chatroom, 4),
            (ConversationType::System, 6),
            (ConversationType::UltraGroup, 10),
        ] {
            assert_eq!(conversation_type(rcim) as i32, native);
            assert_eq!(conversation_type_in(CEnum(native)), Some(rcim));
        }
        for foreign in [0, 2, 5, 7, 8, 9, 11, 12, -1, 99, i32::MIN] {
            assert_eq!(conversation_type_in(CEnum(foreign)), None, "{foreign}");
        }
    }

    #[test]
    fn sent_statuses_take_rcs_native_numbers() {
        assert_eq!(sent_status(SentStatus::Sending) as i32, 10);
        assert_eq!(sent_status(SentStatus::Failed) as i32, 20);
        assert_eq!(sent_status(SentStatus::Sent) as i32, 30);
        assert_eq!(sent_status(SentStatus::Received) as i32, 40);
        assert_eq!(sent_status(SentStatus::Read) as i32, 50);
    }
}
