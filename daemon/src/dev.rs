//! `rcimd --dev`: the reference server in-process, a demo user, and the daemon
//! connected to it. For first steps and demos only: the server listens on loopback
//! with a throw-away secret, and the token lives in memory.

use rcim_proto::Token;
use std::path::Path;

/// The demo user's id.
pub const DEMO_USER: &str = "demo-user";

/// The app key of the embedded server.
pub const DEV_APP_KEY: &str = "rcim-dev-app";

/// A running embedded server and a token for the demo user.
pub struct DevServer {
    /// The server, stopped when dropped or on [`DevServer::stop`].
    pub server: rcim_server::RunningServer,
    /// `rcim://127.0.0.1:PORT`.
    pub address: String,
    /// The demo user's token.
    pub token: Token,
}

impl DevServer {
    /// Starts the server on loopback with its data under `data_dir/dev-server`.
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let config =
            rcim_server::ServerConfig::local(data_dir.join("dev-server"), DEV_APP_KEY, secret);
        let server = rcim_server::start(config).await?;
        let token = Token::new(server.issue_token(DEMO_USER, "Demo User")?);
        let address = format!("rcim://{}", server.im_addr());
        Ok(Self {
            server,
            address,
            token,
        })
    }
}
