//! `rcim-server`: the reference IM server as a standalone process.
//!
//! Thin on purpose: parse flags, set up logging (to stderr), start the server with
//! [`rcim_server::start`], print one JSON "ready" line to stdout
//! (`{"event":"ready","im_addr","im_url","api_url","tls"}`), then wait for SIGINT or
//! SIGTERM and shut down gracefully (exit status 0). Everything else lives
//! in the library so that the daemon's `--dev` mode and the tests run the same code.

use anyhow::Context as _;
use clap::Parser;
use rcim_server::{ServerConfig, TlsFiles, start};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The reference IM server for rcim: an IM endpoint for rcimd and an RC-compatible
/// Server API for app backends.
#[derive(Parser)]
#[command(name = "rcim-server", version)]
struct Args {
    /// Address of the IM endpoint (TCP), e.g. 127.0.0.1:9100; port 0 picks one.
    #[arg(long, value_name = "ADDR")]
    im_listen: SocketAddr,
    /// Address of the HTTP Server API, e.g. 127.0.0.1:9101; port 0 picks one.
    #[arg(long, value_name = "ADDR")]
    api_listen: SocketAddr,
    /// Directory for the server database (server.db); created if missing.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// The app key this server hosts.
    #[arg(long, value_name = "KEY")]
    app_key: String,
    /// The app secret (prefer the environment variable: flags show up in `ps`).
    #[arg(
        long,
        value_name = "SECRET",
        env = "RCIM_APP_SECRET",
        hide_env_values = true
    )]
    app_secret: String,
    /// Disconnect a client that sends nothing for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 90)]
    heartbeat_timeout: u64,
    /// Issued tokens expire after this many seconds; 0 means never.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    token_lifetime: u64,
    /// Serve the IM endpoint over TLS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log filter, e.g. info, debug, rcim_server=trace (default: RUST_LOG, else info).
    #[arg(long, value_name = "LEVEL")]
    log: Option<String>,
}

/// The line printed on stdout once both listeners are bound.
#[derive(serde::Serialize)]
struct Ready<'a> {
    event: &'a str,
    im_addr: String,
    im_url: String,
    api_url: String,
    tls: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| runtime.block_on(run(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line, without a backtrace.
            eprintln!("rcim-server: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    init_logging(args.log.as_deref())?;

    let config = ServerConfig {
        im_listen: args.im_listen,
        api_listen: args.api_listen,
        data_dir: args.data_dir,
        app_key: args.app_key,
        app_secret: args.app_secret,
        heartbeat_timeout: Duration::from_secs(args.heartbeat_timeout),
        token_lifetime: Duration::from_secs(args.token_lifetime),
        tls: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            // clap's `requires` makes these two come together.
            _ => None,
        },
    };
    let server = start(config).await?;

    let ready = Ready {
        event: "ready",
        im_addr: server.im_addr().to_string(),
        im_url: server.im_url(),
        api_url: server.api_url(),
        tls: server.is_tls(),
    };
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, &ready).context("writing the ready line")?;
    stdout.write_all(b"\n").context("writing the ready line")?;
    stdout.flush().context("writing the ready line")?;
    drop(stdout);

    wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}

fn init_logging(filter: Option<&str>) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = match filter {
        Some(f) => EnvFilter::try_new(f).with_context(|| format!("invalid --log filter {f:?}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// Waits for SIGINT or SIGTERM (Ctrl-C elsewhere).
async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot watch Ctrl-C")?;
        tracing::info!("Ctrl-C received");
    }
    Ok(())
}
