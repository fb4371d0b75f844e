//! The upstream wire protocol between `rcimd` and the IM server (rcim wire protocol,
//! modelled on RC's MQTT-derived one).
//!
//! Over TCP with the same framing as the local IPC ([`crate::frame`], capped at
//! [`MAX_UPSTREAM_FRAME`](crate::frame::MAX_UPSTREAM_FRAME)). The client's first
//! frame is [`ClientMsg::Connect`]; the server answers [`ServerMsg::ConnAck`] and, if
//! the code is not 0, closes. Then the client pings when idle and the server pongs;
//! either side may send `Disconnect` and close.

use crate::code::{ConnAckCode, DisconnectReason};
use crate::token::Token;
use serde::{Deserialize, Serialize};

/// Client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ClientMsg {
    /// CONNECT: must be the first frame.
    Connect(Connect),
    /// PINGREQ: the server answers [`ServerMsg::Pong`].
    Ping,
    /// DISCONNECT: the client signs out; the server closes.
    Disconnect {
        /// Whether the server should keep sending remote pushes to this device.
        keep_push: bool,
    },
}

/// The CONNECT message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Connect {
    /// The client's [`WIRE_VERSION`](crate::WIRE_VERSION).
    pub protocol: u32,
    /// The app key the client was configured with.
    pub app_key: String,
    /// The user's token.
    pub token: Token,
    /// What the client is.
    pub client_info: ClientInfo,
    /// A stable id for this device (one per daemon data dir).
    pub device_id: String,
}

/// What the connecting client is; the server kicks an older connection of the same
/// user on the same platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// Platform class, e.g. `desktop`.
    pub platform: String,
    /// The client software and version, e.g. `rcimd/0.1.0`.
    pub sdk: String,
    /// The operating system, e.g. `linux`.
    pub os: String,
}

/// Server → client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMsg {
    /// CONNACK: the answer to CONNECT.
    ConnAck(ConnAck),
    /// PINGRESP.
    Pong,
    /// DISCONNECT: the server ends the connection and closes.
    Disconnect {
        /// Why.
        reason: DisconnectReason,
    },
}

/// The CONNACK message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnAck {
    /// 0 accepted, otherwise why not.
    pub code: ConnAckCode,
    /// The authenticated user, when accepted.
    pub user_id: Option<String>,
    /// The server's clock, in ms since the Unix epoch.
    pub server_time_ms: i64,
}
