//! Dials the upstream server and performs the CONNECT / CONNACK handshake.
//!
//! One call is one attempt: TCP connect, send CONNECT, wait for the CONNACK, each
//! step bounded in time. Every failure is turned into the RC code an app would see,
//! so the link only has to decide between "retry" and "stop".

use rcim_proto::frame::{FrameReader, MAX_UPSTREAM_FRAME, encode};
use rcim_proto::upstream::{ClientInfo, ClientMsg, ConnAck, Connect, ServerMsg};
use rcim_proto::{RcCode, Token, WIRE_VERSION};
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Where the upstream server is, as given by `--server rcim://HOST:PORT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ServerAddr {
    /// Parses `rcim://HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = if let Some(rest) = text.strip_prefix("rcim://") {
            rest
        } else if text.starts_with("rcims://") {
            return Err(format!(
                "{text}: TLS (rcims://) is not supported by this build yet; use rcim:// on a trusted network"
            ));
        } else {
            return Err(format!(
                "{text}: the server must look like rcim://HOST:PORT"
            ));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{text}: the server address needs a port (rcim://HOST:PORT)"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') {
            return Err(format!("{text}: the server address has no valid host"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{text}: the port must be a number from 1 to 65535"))?;
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "rcim://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "rcim://{}:{}", self.host, self.port)
        }
    }
}

/// What the connector needs to know besides the token.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    /// The server.
    pub server: ServerAddr,
    /// The app key sent in CONNECT.
    pub app_key: String,
    /// This device's stable id.
    pub device_id: String,
    /// Limit for the TCP connect.
    pub dial_timeout: Duration,
    /// Limit for the CONNACK after CONNECT was sent.
    pub connack_timeout: Duration,
}

/// An accepted upstream connection.
pub struct Upstream {
    /// Frames from the server.
    pub reader: FrameReader<OwnedReadHalf>,
    /// The write half.
    pub writer: OwnedWriteHalf,
    /// The server's CONNACK.
    pub ack: ConnAck,
}

/// One connection attempt. `Err` carries the RC code of the failure.
pub async fn connect(config: &ConnectorConfig, token: &Token) -> Result<Upstream, RcCode> {
    let address = (config.server.host.as_str(), config.server.port);
    let stream = match tokio::time::timeout(config.dial_timeout, TcpStream::connect(address)).await
    {
        Err(_) => return Err(RcCode::RC_SOCKET_NOT_CONNECTED),
        Ok(Err(e)) => return Err(dial_error_code(&e)),
        Ok(Ok(stream)) => stream,
    };
    // Frames are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let (read, mut writer) = stream.into_split();
    let mut reader = FrameReader::new(read, MAX_UPSTREAM_FRAME);

    let hello = ClientMsg::Connect(Connect {
        protocol: WIRE_VERSION,
        app_key: config.app_key.clone(),
        token: token.clone(),
        client_info: ClientInfo {
            platform: "desktop".into(),
            sdk: concat!("rcimd/", env!("CARGO_PKG_VERSION")).into(),
            os: std::env::consts::OS.into(),
        },
        device_id: config.device_id.clone(),
    });
    let bytes = encode(&hello, MAX_UPSTREAM_FRAME).map_err(|_| RcCode::INVALID_PARAMETER)?;
    let handshake = async {
        writer
            .write_all(&bytes)
            .await
            .map_err(|e| io_error_code(&e))?;
        match reader.read::<ServerMsg>().await {
            Ok(Some(ServerMsg::ConnAck(ack))) => Ok(ack),
            Ok(Some(ServerMsg::Disconnect { reason })) => Err(reason.to_rc()),
            Ok(Some(_)) => Err(RcCode::RC_MSG_DATA_INCOMPLETE),
            Ok(None) => Err(RcCode::RC_SOCKET_DISCONNECTED),
            Err(rcim_proto::FrameError::Io(e)) => Err(io_error_code(&e)),
            Err(_) => Err(RcCode::RC_MSG_DATA_INCOMPLETE),
        }
    };
    let ack = match tokio::time::timeout(config.connack_timeout, handshake).await {
        Err(_) => return Err(RcCode::RC_CONN_ACK_TIMEOUT),
        Ok(result) => result?,
    };
    let code = ack.code.to_rc();
    if !code.is_success() {
        return Err(code);
    }
    if ack.user_id.as_deref().is_none_or(str::is_empty) {
        // An accepted CONNACK must name the user; a server that does not is broken.
        return Err(RcCode::RC_MSG_DATA_INCOMPLETE);
    }
    Ok(Upstream {
        reader,
        writer,
        ack,
    })
}

/// The RC code for a failed TCP connect.
fn dial_error_code(e: &io::Error) -> RcCode {
    match e.kind() {
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkDown => RcCode::RC_NETWORK_IS_DOWN_OR_UNREACHABLE,
        // getaddrinfo failures have no error kind of their own.
        _ if e.to_string().contains("failed to lookup address") => RcCode::RC_DOMAIN_NOT_RESOLVE,
        _ => RcCode::RC_SOCKET_NOT_CONNECTED,
    }
}

/// The RC code for an I/O failure on a live connection.
pub fn io_error_code(e: &io::Error) -> RcCode {
    match e.kind() {
        io::ErrorKind::ConnectionReset => RcCode::RC_CONNECTION_RESET_BY_PEER,
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkDown => RcCode::RC_NETWORK_IS_DOWN_OR_UNREACHABLE,
        _ => RcCode::RC_SOCKET_DISCONNECTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_addresses() {
        assert_eq!(
            ServerAddr::parse("rcim://127.0.0.1:7000").unwrap(),
            ServerAddr {
                host: "127.0.0.1".into(),
                port: 7000
            }
        );
        assert_eq!(ServerAddr::parse("rcim://[::1]:9/").unwrap().host, "::1");
        assert_eq!(
            ServerAddr::parse("rcim://im.example.com:443")
                .unwrap()
                .to_string(),
            "rcim://im.example.com:443"
        );
        for bad in [
            "127.0.0.1:7000",
            "http://x:1",
            "rcim://",
            "rcim://host",
            "rcim://:80",
            "rcim://host:0",
            "rcim://host:99999",
            "rcim://host:x",
        ] {
            assert!(ServerAddr::parse(bad).is_err(), "{bad}");
        }
        let tls = ServerAddr::parse("rcims://host:1").unwrap_err();
        assert!(tls.contains("TLS"), "{tls}");
    }
}
