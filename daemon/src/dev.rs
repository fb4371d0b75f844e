//! `rcimd --dev`: the reference server in-process, a demo user, an echo user
//! ([`ECHO_USER`]: what is sent to it comes back), and the daemon connected to it. For first steps and demos only: the server listens on loopback
//! with a throw-away secret, and the token lives in memory.

use rcim_proto::Token;
use std::path::Path;

/// The demo user's id.
pub const DEMO_USER: &str = "demo-user";

/// The embedded server's echo user: a private message sent to it comes back.
pub const ECHO_USER: &str = "echo";

/// The app key of the embedded server.
pub const DEV_APP_KEY: &str = "rcim-dev-app";

/// A running embedded server and a token for the demo user.
pub struct DevServer {
    /// The server, stopped when dropped or by its `shutdown`.
    pub server: rcim_server::RunningServer,
    /// `rcim://127.0.0.1:PORT`.
    pub address: String,
    /// The demo user's token.
    pub token: Token,
}

/// Why the embedded server could not be started. Each variant holds the server's
/// own error, boxed so this code does not depend on that error's type, and shows it
/// unchanged (its chain included).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevServerError {
    /// The server did not start (its data dir, or a loopback port).
    #[error(transparent)]
    Start(Box<dyn std::error::Error + Send + Sync>),
    /// The server refused to issue the demo user's token.
    #[error(transparent)]
    Token(Box<dyn std::error::Error + Send + Sync>),
}

impl DevServer {
    /// Starts the server on loopback with its data under `data_dir/dev-server`.
    pub async fn start(data_dir: &Path) -> Result<Self, DevServerError> {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let config =
            rcim_server::ServerConfig::local(data_dir.join("dev-server"), DEV_APP_KEY, secret);
        let server = rcim_server::start(config)
            .await
            .map_err(|e| DevServerError::Start(e.into()))?;
        let token = server
            .issue_token(DEMO_USER, "Demo User")
            .map_err(|e| DevServerError::Token(e.into()))?;
        server
            .start_echo_user(ECHO_USER)
            .map_err(|e| DevServerError::Start(e.into()))?;
        let address = format!("rcim://{}", server.im_addr());
        Ok(Self {
            server,
            address,
            token: Token::new(token),
        })
    }
}
