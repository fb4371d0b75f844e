//! How a subcommand fails, and what each failure means for the exit status.
//!
//! Each kind has its own exit code (documented in `--help`): an RC error from the
//! daemon (1), a usage error (2), the daemon not reachable or usable or gone
//! mid-command (3), a sent message not confirmed in time (4, `send` only), and
//! output failing. A closed stdout (`rcimctl status | head -1`) is not worth a
//! message or a non-zero status: the reader got what it wanted.

use rcim_client::{ClientError, RcCode};
use std::io;

/// Why a subcommand failed.
#[derive(Debug)]
pub enum CliError {
    /// The daemon answered with a non-zero RC code.
    Rc {
        /// What failed, e.g. `connect`.
        action: &'static str,
        /// The daemon's code.
        code: RcCode,
    },
    /// The command line cannot be acted on; the text says how to fix it.
    Usage(String),
    /// The daemon could not be reached or used.
    Daemon(ClientError),
    /// The daemon went away in the middle of a command; the text says what state
    /// things were left in.
    DaemonLost(String),
    /// `send` did not get the server's confirmation in time; the text says where
    /// the message is.
    Unconfirmed(String),
    /// Writing the output failed.
    Output(io::Error),
}

impl CliError {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Rc { .. } => 1,
            Self::Usage(_) => 2,
            Self::Daemon(_) | Self::DaemonLost(_) => 3,
            Self::Unconfirmed(_) => 4,
            Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            Self::Output(_) => 1,
        }
    }

    /// The line for stderr (after `rcimctl: `), if any.
    pub fn message(&self) -> Option<String> {
        match self {
            Self::Rc { action, code } => Some(format!(
                "{action} failed: error {}: {}",
                code.0,
                code.meaning()
            )),
            Self::Usage(text) | Self::DaemonLost(text) | Self::Unconfirmed(text) => {
                Some(text.clone())
            }
            Self::Daemon(ClientError::ProtocolMismatch { client, daemon }) => {
                Some(skew(*client, *daemon))
            }
            Self::Daemon(err) => Some(err.to_string()),
            Self::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => None,
            Self::Output(e) => Some(format!("cannot write output: {e}")),
        }
    }

    /// The failure for the RC error `code`.
    pub fn rc(action: &'static str, code: i32) -> CliError {
        Self::Rc {
            action,
            code: RcCode(code),
        }
    }

    /// `Err(Rc)` for a non-zero code.
    pub fn check(action: &'static str, code: i32) -> Result<(), CliError> {
        match code {
            0 => Ok(()),
            code => Err(Self::Rc {
                action,
                code: RcCode(code),
            }),
        }
    }
}

/// The one line for a protocol skew: both versions and the fix.
pub fn skew(client: u32, daemon: u32) -> String {
    let newer = client.max(daemon);
    let older_side = if client < daemon { "rcimctl" } else { "rcimd" };
    format!(
        "protocol skew: rcimd speaks local protocol {daemon}, this rcimctl speaks \
         protocol {client}; upgrade rcimctl or rcimd so both speak protocol {newer} \
         (here {older_side} is the older one{restart})",
        restart = if older_side == "rcimd" {
            ", and restart it after upgrading"
        } else {
            ""
        }
    )
}

impl From<ClientError> for CliError {
    fn from(err: ClientError) -> Self {
        Self::Daemon(err)
    }
}

impl From<io::Error> for CliError {
    fn from(err: io::Error) -> Self {
        Self::Output(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            CliError::check("connect", 31004).unwrap_err().exit_code(),
            1
        );
        assert!(CliError::check("connect", 0).is_ok());
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        let missing = ClientError::DaemonNotRunning {
            socket: "/nowhere".into(),
        };
        assert_eq!(CliError::from(missing).exit_code(), 3);
        assert_eq!(CliError::from(ClientError::Disconnected).exit_code(), 3);
        assert_eq!(CliError::DaemonLost("x".into()).exit_code(), 3);
        assert_eq!(CliError::Unconfirmed("x".into()).exit_code(), 4);
    }

    #[test]
    fn rc_errors_read_code_and_meaning() {
        let err = CliError::check("connect", 31004).unwrap_err();
        assert_eq!(
            err.message().unwrap(),
            format!("connect failed: error 31004: {}", RcCode(31004).meaning())
        );
    }

    #[test]
    fn protocol_skew_names_both_versions_and_the_fix() {
        let err = CliError::from(ClientError::ProtocolMismatch {
            client: 4,
            daemon: 3,
        });
        assert_eq!(err.exit_code(), 3);
        let text = err.message().unwrap();
        for needle in [
            "protocol 3",
            "protocol 4",
            "upgrade rcimctl or rcimd so both speak protocol 4",
            "rcimd is the older one",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in {text}");
        }
        let text = skew(3, 5);
        assert!(
            text.contains("both speak protocol 5") && text.contains("rcimctl is the older"),
            "{text}"
        );
    }

    #[test]
    fn broken_pipe_is_quiet_success() {
        let err = CliError::from(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(err.exit_code(), 0);
        assert_eq!(err.message(), None);
    }
}
