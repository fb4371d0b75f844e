//! The one error type of `rcim-client`.
//!
//! [`ClientError`] says what went wrong between an app and `rcimd`, in words a person
//! can act on: the daemon is not running (and how to start it), the socket belongs
//! to someone else, the two sides speak different protocol versions, the daemon went
//! away. RC result codes (a refused token, a kick, a timeout) are *not* errors here:
//! they are values, delivered as codes exactly as the RC SDK delivers them.

use rcim_proto::{FrameError, RcCode};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a call could not reach `rcimd` or could not be understood.
///
/// `Clone` so that [`Engine::last_error`](crate::Engine::last_error) can hand out
/// the error it kept; the I/O and frame sources sit behind an [`Arc`] for that.
///
/// ```no_run
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// match rcim_client::Client::attach(rcim_client::ClientOptions::default()).await {
///     Ok(_) => {}
///     Err(rcim_client::ClientError::DaemonNotRunning { socket }) => eprintln!("start rcimd ({})", socket.display()),
///     Err(err) => eprintln!("{err}"),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Nothing listens on the socket: the daemon is not running (or not yet).
    #[error(
        "rcimd is not running (nothing listens on {}): start it with `rcimd`, \
         or `systemctl --user start rcimd`; for a demo, `cargo run -p rcimd --features dev-server -- --dev`",
        .socket.display()
    )]
    DaemonNotRunning {
        /// The socket that was tried.
        socket: PathBuf,
    },
    /// The socket exists but this user may not open it.
    #[error(
        "permission denied on {}: rcimd only accepts processes of the user it runs as; \
         run as that user, or point --socket / RCIM_SOCKET at your own daemon",
        .socket.display()
    )]
    AccessDenied {
        /// The socket that was tried.
        socket: PathBuf,
    },
    /// The daemon speaks another version of the local protocol.
    #[error(
        "protocol version mismatch: this client speaks rcim IPC protocol {client}, \
         rcimd speaks {daemon}; upgrade the older side and restart rcimd"
    )]
    ProtocolMismatch {
        /// This library's [`PROTOCOL_VERSION`](rcim_proto::PROTOCOL_VERSION).
        client: u32,
        /// The daemon's.
        daemon: u32,
    },
    /// The daemon refused the handshake, for the reason it gave.
    #[error("rcimd refused this client: {0}")]
    Refused(String),
    /// The connection to the daemon closed (it stopped or restarted). Every request
    /// still waiting fails with this.
    #[error("the connection to rcimd was lost (did it stop or restart?); attach again")]
    Disconnected,
    /// The daemon accepted the connection but did not complete the handshake in time.
    #[error(
        "{} did not answer the handshake within {} ms: is it really rcimd?",
        .socket.display(), .after_ms
    )]
    HandshakeTimeout {
        /// The socket that was tried.
        socket: PathBuf,
        /// How long we waited.
        after_ms: u64,
    },
    /// The daemon sent something the protocol does not allow at that point.
    #[error("rcimd broke the protocol: {0}")]
    Protocol(String),
    /// A frame could not be encoded or decoded.
    #[error("bad frame on the rcimd socket: {0}")]
    Frame(Arc<FrameError>),
    /// The socket failed.
    #[error("I/O error on the rcimd socket {}: {source}", .socket.display())]
    Io {
        /// The socket in use.
        socket: PathBuf,
        /// The underlying error.
        source: Arc<io::Error>,
    },
}

impl ClientError {
    /// The RC code an RC-shaped API returns for this error: every failure to reach or
    /// understand the daemon is [`RcCode::CLIENT_NOT_INIT`] (33001), the code RC uses
    /// for "the client cannot be used yet".
    ///
    /// ```
    /// let err = rcim_client::ClientError::Disconnected;
    /// assert_eq!(err.rc_code().0, 33001);
    /// ```
    pub fn rc_code(&self) -> RcCode {
        RcCode::CLIENT_NOT_INIT
    }

    /// Whether the daemon could not be reached at all (not running, or not ours).
    ///
    /// ```
    /// let err = rcim_client::ClientError::DaemonNotRunning { socket: "/run/x.sock".into() };
    /// assert!(err.is_unreachable());
    /// assert!(!rcim_client::ClientError::Disconnected.is_unreachable());
    /// ```
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Self::DaemonNotRunning { .. } | Self::AccessDenied { .. }
        )
    }

    /// Maps an error from connecting to the socket onto the kind a person can act on.
    pub(crate) fn from_connect(socket: PathBuf, err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                Self::DaemonNotRunning { socket }
            }
            io::ErrorKind::PermissionDenied => Self::AccessDenied { socket },
            _ => Self::Io {
                socket,
                source: Arc::new(err),
            },
        }
    }

    /// Wraps an error met while exchanging frames with the daemon.
    pub(crate) fn from_frame(socket: &std::path::Path, err: FrameError) -> Self {
        match err {
            FrameError::Io(source) => Self::Io {
                socket: socket.to_owned(),
                source: Arc::new(source),
            },
            FrameError::Truncated { .. } => Self::Disconnected,
            other => Self::Frame(Arc::new(other)),
        }
    }

    /// The daemon answered request `op` with a reply of the wrong kind.
    pub(crate) fn unexpected(op: &str, reply: &rcim_proto::ipc::Reply) -> Self {
        Self::Protocol(format!("answered {op} with {reply:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_running_says_how_to_start_the_daemon() {
        let err = ClientError::from_connect(
            "/tmp/x/rcimd.sock".into(),
            io::Error::from(io::ErrorKind::NotFound),
        );
        let text = err.to_string();
        assert!(
            matches!(err, ClientError::DaemonNotRunning { .. }),
            "{err:?}"
        );
        for needle in [
            "/tmp/x/rcimd.sock",
            "rcimd",
            "systemctl --user start rcimd",
            "--dev",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in {text}");
        }
        let refused = ClientError::from_connect(
            "/s".into(),
            io::Error::from(io::ErrorKind::ConnectionRefused),
        );
        assert!(matches!(refused, ClientError::DaemonNotRunning { .. }));
    }

    #[test]
    fn permission_denied_is_access_denied() {
        let err = ClientError::from_connect(
            "/s".into(),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(err, ClientError::AccessDenied { .. }));
        assert!(err.is_unreachable());
    }

    #[test]
    fn mismatch_names_both_versions() {
        let text = ClientError::ProtocolMismatch {
            client: 1,
            daemon: 7,
        }
        .to_string();
        assert!(
            text.contains("protocol 1") && text.contains("speaks 7"),
            "{text}"
        );
    }
}
