//! The server's configuration.
//!
//! [`ServerConfig`] is what both the `rcim-server` binary (from its flags) and the
//! daemon's `--dev` mode or the tests (in-process) hand to [`crate::start`]. It is
//! plain data; [`ServerConfig::validate`] rejects values the server cannot run with
//! before anything is bound or created. Its `Debug` output never shows the secret.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default for [`ServerConfig::heartbeat_timeout`]: three of the client's 30 s ping
/// periods.
pub const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(90);

/// Everything the server needs to start.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where the IM endpoint (the upstream wire protocol over TCP) listens; port 0
    /// picks a free port.
    pub im_listen: SocketAddr,
    /// Where the HTTP Server API listens; port 0 picks a free port.
    pub api_listen: SocketAddr,
    /// Directory for `server.db`; created if missing.
    pub data_dir: PathBuf,
    /// The one app this server hosts.
    pub app_key: String,
    /// The app's secret: signs tokens and Server API requests. Never logged.
    pub app_secret: String,
    /// A connection that sends nothing for this long is disconnected.
    pub heartbeat_timeout: Duration,
}

impl ServerConfig {
    /// Checks the values before anything is started.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.app_key.trim().is_empty(), "the app key is empty");
        anyhow::ensure!(
            self.app_key.chars().all(|c| c.is_ascii_graphic()),
            "the app key must be printable ASCII without spaces"
        );
        anyhow::ensure!(!self.app_secret.is_empty(), "the app secret is empty");
        anyhow::ensure!(
            !self.heartbeat_timeout.is_zero(),
            "the heartbeat timeout must be greater than zero"
        );
        Ok(())
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("im_listen", &self.im_listen)
            .field("api_listen", &self.api_listen)
            .field("data_dir", &self.data_dir)
            .field("app_key", &self.app_key)
            .field("app_secret", &"<redacted>")
            .field("heartbeat_timeout", &self.heartbeat_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig {
            im_listen: "127.0.0.1:0".parse().unwrap(),
            api_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: "/tmp/x".into(),
            app_key: "key".into(),
            app_secret: "very-secret".into(),
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
        }
    }

    #[test]
    fn debug_redacts_the_secret() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("very-secret"), "{shown}");
    }

    #[test]
    fn validation() {
        assert!(config().validate().is_ok());
        for broken in [
            ServerConfig {
                app_key: String::new(),
                ..config()
            },
            ServerConfig {
                app_key: "a b".into(),
                ..config()
            },
            ServerConfig {
                app_secret: String::new(),
                ..config()
            },
            ServerConfig {
                heartbeat_timeout: Duration::ZERO,
                ..config()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }
}
