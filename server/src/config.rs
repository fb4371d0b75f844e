//! The server's configuration.
//!
//! [`ServerConfig`] is what both the `rcim-server` binary (from its flags) and the
//! daemon's `--dev` mode or the tests (in-process) hand to [`crate::start`]. It is
//! plain data; [`ServerConfig::validate`] rejects values the server cannot run with
//! before anything is bound or created, naming the value in a [`ConfigError`]. Its `Debug` output never shows the secret.
//! [`ServerConfig::local`] gives a loopback configuration with defaults, so that
//! in-process callers need not name every field (and keep compiling when one is
//! added).

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
    /// Lifetime of the tokens the server issues (`getToken`,
    /// [`crate::RunningServer::issue_token`]); zero means they never expire (RC's
    /// default).
    pub token_lifetime: Duration,
    /// When set, the IM endpoint speaks TLS with this certificate and key.
    pub tls: Option<TlsFiles>,
}

/// The PEM files of the IM endpoint's TLS identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM, one or more `CERTIFICATE` blocks).
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl ServerConfig {
    /// Both endpoints on `127.0.0.1` with ports picked by the system, a 90 s
    /// heartbeat timeout, tokens that never expire and no TLS.
    pub fn local(
        data_dir: impl Into<PathBuf>,
        app_key: impl Into<String>,
        app_secret: impl Into<String>,
    ) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            im_listen: loopback,
            api_listen: loopback,
            data_dir: data_dir.into(),
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            heartbeat_timeout: DEFAULT_HEARTBEAT_TIMEOUT,
            token_lifetime: Duration::ZERO,
            tls: None,
        }
    }

    /// Checks the values before anything is started.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.app_key.trim().is_empty() {
            return Err(ConfigError::EmptyAppKey);
        }
        if !self.app_key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ConfigError::AppKeyNotPrintable);
        }
        if self.app_secret.is_empty() {
            return Err(ConfigError::EmptyAppSecret);
        }
        if self.heartbeat_timeout.is_zero() {
            return Err(ConfigError::ZeroHeartbeatTimeout);
        }
        if i64::try_from(self.token_lifetime.as_millis()).is_err() {
            return Err(ConfigError::TokenLifetimeTooLong);
        }
        Ok(())
    }
}

/// A [`ServerConfig`] value the server cannot run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`ServerConfig::app_key`] is empty or blank.
    #[error("the app key is empty")]
    EmptyAppKey,
    /// [`ServerConfig::app_key`] has spaces or characters outside printable ASCII.
    #[error("the app key must be printable ASCII without spaces")]
    AppKeyNotPrintable,
    /// [`ServerConfig::app_secret`] is empty.
    #[error("the app secret is empty")]
    EmptyAppSecret,
    /// [`ServerConfig::heartbeat_timeout`] is zero.
    #[error("the heartbeat timeout must be greater than zero")]
    ZeroHeartbeatTimeout,
    /// [`ServerConfig::token_lifetime`] does not fit in an `i64` of milliseconds.
    #[error("the token lifetime is too long")]
    TokenLifetimeTooLong,
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
            .field("token_lifetime", &self.token_lifetime)
            .field("tls", &self.tls)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ServerConfig {
        ServerConfig::local("/tmp/x", "key", "very-secret")
    }

    #[test]
    fn local_defaults() {
        let c = config();
        assert_eq!(c.im_listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.api_listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.heartbeat_timeout, DEFAULT_HEARTBEAT_TIMEOUT);
        assert_eq!(c.token_lifetime, Duration::ZERO);
        assert_eq!(c.tls, None);
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
            ServerConfig {
                token_lifetime: Duration::MAX,
                ..config()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
    }
}
