//! `rcimd`: parses the command line, sets up logging and signals, and runs the
//! daemon (see the library docs for what it does).

use clap::Parser;
use rcimd::link::connector::{ServerAddr, TlsTrust};
use rcimd::vault::TokenStoreKind;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// rcimd: the local IM connection daemon. One upstream connection, shared by every
/// app of this user through a Unix socket.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None, after_help = "\
Examples:
  rcimd --dev
      Run against an embedded local server with a demo user (try `rcimctl status`).
  rcimd --server rcim://im.example.com:7000 --app-key KEY
      Run against a real server; apps call connect(token) through rcim-client,
      or use `rcimctl connect --token-stdin`.")]
struct Args {
    /// The local socket [default: $XDG_RUNTIME_DIR/rcim/rcimd.sock].
    #[arg(long, env = "RCIM_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Where the per-user databases live [default: $XDG_DATA_HOME/rcim].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The IM server, as rcim://HOST:PORT.
    #[arg(long, value_name = "URL", required_unless_present = "dev")]
    server: Option<String>,
    /// The app key the server knows this app by.
    #[arg(long, value_name = "KEY", required_unless_present = "dev")]
    app_key: Option<String>,
    /// Where the token is kept between connects.
    #[arg(long, value_enum, default_value = "keyring")]
    token_store: TokenStoreKind,
    /// Run an embedded reference server on loopback with a demo user and connect to it.
    #[arg(long, conflicts_with_all = ["server", "app_key"])]
    dev: bool,
    /// Seconds without traffic before a heartbeat ping.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs)]
    ping_interval: Duration,
    /// Seconds to wait for the pong before the connection counts as dead.
    #[arg(long, value_name = "SECS", default_value = "6", value_parser = parse_secs)]
    pong_timeout: Duration,
    /// Trust only the CA certificates in this PEM file for rcims:// servers
    /// [default: the system's root certificates].
    #[arg(long, value_name = "PEM")]
    ca_file: Option<PathBuf>,
    /// Do not verify the rcims:// server's certificate. For development servers only:
    /// anyone on the path can then read and change the traffic.
    #[arg(long, conflicts_with = "ca_file")]
    insecure_dev: bool,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive).
    #[arg(long, env = "RCIM_LOG", default_value = "info", value_name = "FILTER")]
    log: String,
}

fn parse_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("{secs} s is out of range (0.01 to 86400)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("rcimd: invalid --log filter '{}': {e}", args.log);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rcimd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rcimd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(rcim_proto::paths::default_socket_path);
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(rcimd::default_data_dir);
    let mut config = rcimd::Config {
        socket,
        data_dir,
        server: ServerAddr {
            host: String::new(),
            port: 0,
            tls: false,
        },
        tls_trust: match (&args.ca_file, args.insecure_dev) {
            (Some(path), _) => TlsTrust::CaFile(path.clone()),
            (None, true) => TlsTrust::InsecureDev,
            (None, false) => TlsTrust::SystemRoots,
        },
        app_key: String::new(),
        token_store: args.token_store,
        ping_after: args.ping_interval,
        pong_timeout: args.pong_timeout,
        boot_token: None,
    };
    #[cfg(feature = "dev-server")]
    let dev = if args.dev {
        config.data_dir = args
            .data_dir
            .clone()
            .unwrap_or_else(|| rcimd::default_data_dir().join("dev"));
        config.token_store = TokenStoreKind::Memory;
        let dev = rcimd::dev::DevServer::start(&config.data_dir)
            .await
            .map_err(|e| e.context("cannot start the embedded server"))?;
        tracing::info!(
            "embedded server on {} (API {})",
            dev.address,
            dev.server.api_url()
        );
        config.server = ServerAddr::parse(&dev.address).map_err(anyhow::Error::msg)?;
        config.app_key = rcimd::dev::DEV_APP_KEY.into();
        config.boot_token = Some(dev.token.clone());
        Some(dev)
    } else {
        None
    };
    #[cfg(not(feature = "dev-server"))]
    if args.dev {
        anyhow::bail!("this rcimd was built without the dev-server feature");
    }
    if !args.dev {
        let server = args.server.as_deref().unwrap_or_default();
        config.server = ServerAddr::parse(server).map_err(anyhow::Error::msg)?;
        config.app_key = args.app_key.clone().unwrap_or_default();
        if config.app_key.trim().is_empty() {
            anyhow::bail!("--app-key must not be empty");
        }
    }

    let running = rcimd::start(config).await?;
    if args.dev {
        tokio::spawn(announce_when_connected(
            running.link.watch(),
            running.socket.clone(),
        ));
    }
    wait_for_signal().await;
    tracing::info!("stopping");
    running.stop().await;
    #[cfg(feature = "dev-server")]
    if let Some(dev) = dev {
        dev.server.shutdown().await;
    }
    Ok(())
}

/// `--dev`: once connected, tell the newcomer what to try next.
async fn announce_when_connected(
    mut watch: tokio::sync::watch::Receiver<rcimd::link::LinkReport>,
    socket: PathBuf,
) {
    use rcim_proto::ConnectionStatus;
    let connected = watch
        .wait_for(|r| r.state.status == ConnectionStatus::Connected)
        .await;
    if let Ok(report) = connected {
        let user = report.state.user_id.clone().unwrap_or_default();
        println!(
            "rcimd --dev: connected to the embedded server as {user}. Leave this running and, in another terminal, try:\n    RCIM_SOCKET={} cargo run -p rcimctl -- status",
            socket.display()
        );
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
