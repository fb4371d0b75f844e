//! Dials the upstream server and performs the CONNECT / CONNACK handshake.
//!
//! One call is one attempt: open the transport (TCP, or TLS for `rcims://`), send
//! CONNECT, wait for the CONNACK, each step bounded in time. Every failure becomes a
//! [`Failure`]: the RC code an app sees, plus a detail for people (the OS error, the
//! TLS alert), so the link only has to decide between "retry" and "stop" and the
//! status can still say what went wrong.

use super::nodes::ServerList;
use rcim_proto::frame::{FrameReader, MAX_UPSTREAM_FRAME, write_frame};
use rcim_proto::upstream::{ClientInfo, ClientMsg, ConnAck, Connect, ServerMsg};
use rcim_proto::{FrameError, RcCode, Token, WIRE_VERSION};
use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

/// Any byte stream the link can speak the wire protocol over.
pub trait IoStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> IoStream for T {}

/// A boxed upstream byte stream (TCP, TLS over TCP, or an in-memory pipe in tests).
pub type BoxedStream = Box<dyn IoStream>;

/// Where the upstream server is, as given by `--server rcim://HOST:PORT` (plain TCP)
/// or `rcims://HOST:PORT` (TLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerAddr {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the connection uses TLS.
    pub tls: bool,
}

impl ServerAddr {
    /// Parses `rcim://HOST:PORT` or `rcims://HOST:PORT`.
    pub fn parse(text: &str) -> Result<Self, AddrError> {
        let (rest, tls) = if let Some(rest) = text.strip_prefix("rcim://") {
            (rest, false)
        } else if let Some(rest) = text.strip_prefix("rcims://") {
            (rest, true)
        } else {
            return Err(AddrError::Scheme(text.to_owned()));
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| AddrError::NoPort(text.to_owned()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(AddrError::NoHost(text.to_owned()));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| AddrError::BadPort(text.to_owned()))?;
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// Why a server address (`--server`) was refused; each variant holds the address
/// as given, and its message says what it must look like.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// The scheme is neither `rcim://` nor `rcims://`.
    #[error("{0}: the server must look like rcim://HOST:PORT or rcims://HOST:PORT (TLS)")]
    Scheme(String),
    /// No `:PORT`.
    #[error("{0}: the server address needs a port (rcim://HOST:PORT)")]
    NoPort(String),
    /// The host is empty or holds a `/` or an `@`.
    #[error("{0}: the server address has no valid host")]
    NoHost(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0}: the port must be a number from 1 to 65535")]
    BadPort(String),
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rcims" } else { "rcim" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Why an attempt failed: the RC code, and what happened in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The RC code an app sees.
    pub code: RcCode,
    /// What happened, for logs and `rcimctl status`; never contains the token.
    pub detail: Option<String>,
}

impl Failure {
    /// A failure with no more to say than its code.
    pub fn code(code: RcCode) -> Self {
        Self { code, detail: None }
    }

    /// A failure with a detail for people (the OS error, the TLS alert).
    pub fn with(code: RcCode, detail: impl fmt::Display) -> Self {
        Self {
            code,
            detail: Some(detail.to_string()),
        }
    }

    /// The sentence shown to people: the code's meaning, then the detail.
    pub fn message(&self) -> String {
        match &self.detail {
            Some(detail) => format!("{}: {detail}", self.code.meaning()),
            None => self.code.meaning().to_owned(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code.0, self.message())
    }
}

/// A dial function for tests: returns an in-process stream for a server address.
pub type CustomDial = Arc<
    dyn Fn(&ServerAddr) -> Pin<Box<dyn Future<Output = io::Result<BoxedStream>> + Send>>
        + Send
        + Sync,
>;

/// How to open the byte stream to the server.
#[derive(Clone)]
pub enum Transport {
    /// Plain TCP.
    Tcp,
    /// TLS over TCP, with this client configuration.
    Tls(Arc<rustls::ClientConfig>),
    /// An in-process dialer (tests).
    Custom(CustomDial),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "Tcp",
            Transport::Tls(_) => "Tls",
            Transport::Custom(_) => "Custom",
        })
    }
}

/// How TLS certificates are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsTrust {
    /// The operating system's root certificates.
    SystemRoots,
    /// Only the CA certificates in this PEM file.
    CaFile(std::path::PathBuf),
    /// No verification at all (`--insecure-dev`): for development servers only.
    InsecureDev,
}

impl Transport {
    /// The transport for `server`: TCP, or TLS trusting `trust`.
    pub fn for_server(server: &ServerAddr, trust: &TlsTrust) -> Result<Self, TlsError> {
        if !server.tls {
            return Ok(Transport::Tcp);
        }
        Ok(Transport::Tls(Arc::new(tls_config(trust)?)))
    }
}

/// Why the TLS client configuration could not be built. Each message carries its
/// cause's text (there is no separate `source`), so it reads the same whether it
/// is shown alone or in a chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the protocol versions (a build without a usable provider).
    #[error("TLS setup failed: {0}")]
    Setup(rustls::Error),
    /// The system has no root certificate rustls can use.
    #[error(
        "no usable root certificates found on this system; install ca-certificates or pass --ca-file"
    )]
    NoSystemRoots,
    /// `--ca-file` cannot be opened or read.
    #[error("cannot read the CA file {path}: {error}")]
    CaFileUnreadable {
        /// The file.
        path: std::path::PathBuf,
        /// What reading it said.
        error: rustls::pki_types::pem::Error,
    },
    /// `--ca-file` is not PEM.
    #[error("the CA file {path} is not valid PEM: {error}")]
    CaFileNotPem {
        /// The file.
        path: std::path::PathBuf,
        /// What the PEM parser said.
        error: rustls::pki_types::pem::Error,
    },
    /// `--ca-file` holds no certificate rustls can use.
    #[error("the CA file {path} holds no usable certificate ({ignored} could not be parsed)")]
    CaFileEmpty {
        /// The file.
        path: std::path::PathBuf,
        /// How many certificates in it could not be parsed.
        ignored: usize,
    },
}

/// Builds the rustls client configuration for `trust`.
pub fn tls_config(trust: &TlsTrust) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?;
    let config = match trust {
        TlsTrust::SystemRoots => {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!("while loading the system's root certificates: {e}");
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::NoSystemRoots);
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsTrust::CaFile(path) => builder
            .with_root_certificates(load_ca_file(path)?)
            .with_no_client_auth(),
        TlsTrust::InsecureDev => {
            tracing::warn!(
                "--insecure-dev: the server's TLS certificate is NOT verified; anyone on the path can read and change the traffic"
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnyCertificate(
                    provider,
                )))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

fn load_ca_file(path: &Path) -> Result<rustls::RootCertStore, TlsError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|error| TlsError::CaFileUnreadable {
            path: path.to_owned(),
            error,
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::CaFileNotPem {
            path: path.to_owned(),
            error,
        })?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsError::CaFileEmpty {
            path: path.to_owned(),
            ignored,
        });
    }
    Ok(roots)
}

mod insecure {
    //! The verifier behind `--insecure-dev`: accepts any certificate, but still
    //! checks that the handshake is signed by the key in it.

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use std::sync::Arc;

    #[derive(Debug)]
    pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// What the connector needs to know besides the token.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    /// The servers; each attempt dials one of them (see [`super::nodes`]).
    pub servers: ServerList,
    /// How to reach them (one scheme for the whole list).
    pub transport: Transport,
    /// The app key sent in CONNECT.
    pub app_key: String,
    /// This device's stable id.
    pub device_id: String,
    /// Limit for opening the transport (TCP connect and TLS handshake).
    pub dial_timeout: Duration,
    /// Limit for the CONNACK after CONNECT was sent.
    pub connack_timeout: Duration,
}

/// An accepted upstream connection.
///
/// Every frame to the server goes through [`Upstream::write`] (or [`Upstream::send`],
/// which turns a failed write into the connection's end): one frame, encoded with the
/// upstream cap, written and flushed whole, bounded in time so that a server that
/// stops reading can never stall the link.
pub struct Upstream {
    /// Frames from the server.
    pub reader: FrameReader<ReadHalf<BoxedStream>>,
    /// The write half.
    writer: WriteHalf<BoxedStream>,
    /// The server's CONNACK.
    pub ack: ConnAck,
    /// How long [`Upstream::send`] may take before the connection counts as lost.
    /// The link sets it from its heartbeat settings.
    pub write_limit: Duration,
}

/// Why a write to the server failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Encoding or writing failed.
    #[error("failed: {0}")]
    Failed(#[from] FrameError),
    /// The write did not finish in time (the server stopped reading, or the
    /// network is stalled).
    #[error("took longer than {0:?}")]
    TimedOut(Duration),
}

impl Upstream {
    /// Writes and flushes one frame, within `limit`.
    pub async fn write(&mut self, msg: &ClientMsg, limit: Duration) -> Result<(), WriteError> {
        let write = write_frame(&mut self.writer, msg, MAX_UPSTREAM_FRAME);
        match tokio::time::timeout(limit, write).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(WriteError::TimedOut(limit)),
        }
    }

    /// Writes one frame within [`Upstream::write_limit`]; a failure means the
    /// connection is lost (`RC_SOCKET_DISCONNECTED`, with what happened).
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), Failure> {
        self.write(msg, self.write_limit).await.map_err(|e| {
            Failure::with(
                RcCode::RC_SOCKET_DISCONNECTED,
                format!("writing to the server {e}"),
            )
        })
    }

    /// Says goodbye (DISCONNECT with `keep_push`) and closes the write half, within
    /// `limit`.
    pub async fn close(mut self, keep_push: bool, limit: Duration) -> Result<(), WriteError> {
        let goodbye = async {
            let msg = ClientMsg::Disconnect { keep_push };
            write_frame(&mut self.writer, &msg, MAX_UPSTREAM_FRAME).await?;
            self.writer.shutdown().await.map_err(FrameError::Io)
        };
        match tokio::time::timeout(limit, goodbye).await {
            Ok(closed) => Ok(closed?),
            Err(_) => Err(WriteError::TimedOut(limit)),
        }
    }
}

/// [`Upstream::write_limit`] until the link sets it.
const DEFAULT_WRITE_LIMIT: Duration = Duration::from_secs(5);

/// One connection attempt, to `server` (one of `config.servers`).
pub async fn connect(
    config: &ConnectorConfig,
    server: &ServerAddr,
    token: &Token,
) -> Result<Upstream, Failure> {
    let stream = match tokio::time::timeout(config.dial_timeout, open(config, server)).await {
        Err(_) => {
            return Err(Failure::with(
                RcCode::RC_SOCKET_NOT_CONNECTED,
                format!("no answer from {server} within {:?}", config.dial_timeout),
            ));
        }
        Ok(result) => result?,
    };
    let (read, mut writer) = tokio::io::split(stream);
    // Pushes and sync packages come in bursts: one read takes up to 64 KiB.
    let mut reader = FrameReader::new(read, MAX_UPSTREAM_FRAME).read_chunk(64 * 1024);

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
    let handshake = async {
        write_frame(&mut writer, &hello, MAX_UPSTREAM_FRAME)
            .await
            .map_err(|e| match e {
                FrameError::Io(e) => io_failure(&e),
                e => Failure::with(RcCode::INVALID_PARAMETER, e),
            })?;
        match reader.read::<ServerMsg>().await {
            Ok(Some(ServerMsg::ConnAck(ack))) => Ok(ack),
            Ok(Some(ServerMsg::Disconnect { reason })) => Err(Failure::code(reason.to_rc())),
            Ok(Some(other)) => Err(Failure::with(
                RcCode::RC_MSG_DATA_INCOMPLETE,
                format!("expected CONNACK, got {other:?}"),
            )),
            Ok(None) => Err(Failure::with(
                RcCode::RC_SOCKET_DISCONNECTED,
                "the server closed the connection before answering CONNECT",
            )),
            Err(FrameError::Io(e)) => Err(io_failure(&e)),
            Err(e) => Err(Failure::with(RcCode::RC_MSG_DATA_INCOMPLETE, e)),
        }
    };
    let ack = match tokio::time::timeout(config.connack_timeout, handshake).await {
        Err(_) => {
            return Err(Failure::with(
                RcCode::RC_CONN_ACK_TIMEOUT,
                format!(
                    "{server} sent no CONNACK within {:?}",
                    config.connack_timeout
                ),
            ));
        }
        Ok(result) => result?,
    };
    let code = ack.code.to_rc();
    if !code.is_success() {
        return Err(Failure::code(code));
    }
    if ack.user_id.as_deref().is_none_or(str::is_empty) {
        return Err(Failure::with(
            RcCode::RC_MSG_DATA_INCOMPLETE,
            "the server accepted the connection without naming the user",
        ));
    }
    Ok(Upstream {
        reader,
        writer,
        ack,
        write_limit: DEFAULT_WRITE_LIMIT,
    })
}

/// Opens the byte stream: TCP, then TLS when asked.
async fn open(config: &ConnectorConfig, server: &ServerAddr) -> Result<BoxedStream, Failure> {
    if let Transport::Custom(dial) = &config.transport {
        return dial(server).await.map_err(|e| dial_failure(&e));
    }
    let tcp = TcpStream::connect((server.host.as_str(), server.port))
        .await
        .map_err(|e| dial_failure(&e))?;
    // Frames are small and latency matters more than packet count.
    let _ = tcp.set_nodelay(true);
    match &config.transport {
        Transport::Tls(tls) => {
            let name =
                rustls::pki_types::ServerName::try_from(server.host.clone()).map_err(|e| {
                    Failure::with(
                        RcCode::RC_NET_TLS_HANDSHAKE_FAILED,
                        format!("bad TLS server name: {e}"),
                    )
                })?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
            let stream = connector
                .connect(name, tcp)
                .await
                .map_err(|e| tls_failure(&e))?;
            Ok(Box::new(stream))
        }
        _ => Ok(Box::new(tcp)),
    }
}

/// The failure for a TLS handshake error; certificate problems get their own code.
fn tls_failure(e: &io::Error) -> Failure {
    let certificate = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|tls| {
            matches!(
                tls,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        });
    let code = if certificate {
        RcCode::RC_NET_SSL_CERT_INVALID
    } else if e.kind() == io::ErrorKind::InvalidData {
        RcCode::RC_NET_TLS_HANDSHAKE_FAILED
    } else {
        return io_failure(e);
    };
    Failure::with(
        code,
        format!("TLS: {e} (check the server certificate, or --ca-file)"),
    )
}

/// The failure for a failed connect.
fn dial_failure(e: &io::Error) -> Failure {
    let code = match e.kind() {
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkDown => RcCode::RC_NETWORK_IS_DOWN_OR_UNREACHABLE,
        // getaddrinfo failures have no error kind of their own.
        _ if e.to_string().contains("failed to lookup address") => RcCode::RC_DOMAIN_NOT_RESOLVE,
        _ => RcCode::RC_SOCKET_NOT_CONNECTED,
    };
    Failure::with(code, e)
}

/// The failure for an I/O error on a live connection.
pub fn io_failure(e: &io::Error) -> Failure {
    let code = match e.kind() {
        io::ErrorKind::ConnectionReset => RcCode::RC_CONNECTION_RESET_BY_PEER,
        io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkDown => RcCode::RC_NETWORK_IS_DOWN_OR_UNREACHABLE,
        _ => RcCode::RC_SOCKET_DISCONNECTED,
    };
    Failure::with(code, e)
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
                port: 7000,
                tls: false,
            }
        );
        assert_eq!(ServerAddr::parse("rcim://[::1]:9/").unwrap().host, "::1");
        assert_eq!(
            ServerAddr::parse("rcim://im.example.com:443")
                .unwrap()
                .to_string(),
            "rcim://im.example.com:443"
        );
        let tls = ServerAddr::parse("rcims://im.example.com:443").unwrap();
        assert!(tls.tls);
        assert_eq!(tls.to_string(), "rcims://im.example.com:443");
        for bad in [
            "127.0.0.1:7000",
            "http://x:1",
            "rcim://",
            "rcim://host",
            "rcim://:80",
            "rcim://host:0",
            "rcim://host:99999",
            "rcim://host:x",
            "rcim://user@host:1",
        ] {
            assert!(ServerAddr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_file_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = tls_config(&TlsTrust::CaFile(missing))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read the CA file"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = tls_config(&TlsTrust::CaFile(empty))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no usable certificate"), "{err}");
    }

    #[test]
    fn failure_messages_carry_the_detail() {
        let failure = Failure::with(RcCode::RC_SOCKET_NOT_CONNECTED, "Connection refused");
        assert_eq!(
            failure.message(),
            "the connection to the server could not be opened: Connection refused"
        );
        assert_eq!(
            Failure::code(RcCode::RC_CONN_TOKEN_INCORRECT).message(),
            RcCode::RC_CONN_TOKEN_INCORRECT.meaning()
        );
    }
}
