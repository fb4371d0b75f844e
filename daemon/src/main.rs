//! `rcimd`: merges the configuration (flags, environment, config file), sets up
//! logging, takes over a socket-activated listener, runs the daemon (see the library
//! docs for what it does), and owns the process's signals: SIGHUP reloads what can
//! change live, SIGTERM and SIGINT drain and exit 0.

use clap::Parser;
use rcimd::config::{self, Options, Settings};
use rcimd::link::LinkHandle;
use rcimd::link::connector::ServerAddr;
use rcimd::service::{self, LogControl};
use rcimd::store::cipher::Direction;
use rcimd::vault::{self, TokenStoreKind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// How long a SIGTERM drain may take before rcimd exits anyway (systemd's
/// `TimeoutStopSec` in rcimd.service is longer).
const STOP_LIMIT: Duration = Duration::from_secs(12);

/// rcimd: the local IM connection daemon. One upstream connection, shared by every
/// app of this user through a Unix socket.
///
/// Every option can also be set by its environment variable or in the config file
/// ($XDG_CONFIG_HOME/rcim/rcimd.toml, keys named like the flags with `_`); flags
/// win over the environment, which wins over the file.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    args_override_self = true,
    after_help = "\
Examples:
  rcimd --dev
      Run against an embedded local server with a demo user and an echo user
      (try `rcimctl status`, then `rcimctl send --to echo --text hi`);
      needs a build with the dev-server feature:
      cargo run -p rcimd --features dev-server -- --dev
  rcimd --server rcim://im.example.com:7000 --app-key KEY
      Run against a real server; apps call connect(token) through rcim-client,
      or use `rcimctl connect --token-stdin`.

Signals: SIGHUP reloads the log level and the heartbeat from the config file;
SIGTERM closes clients, says goodbye upstream and exits 0.
See docs/OPERATIONS.md for running rcimd as a systemd or launchd service."
)]
struct Args {
    #[command(flatten)]
    options: Options,
    /// The config file [default: $XDG_CONFIG_HOME/rcim/rcimd.toml, if it exists].
    #[arg(long, env = "RCIM_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run an embedded reference server on loopback with a demo user and connect to it.
    #[arg(long)]
    dev: bool,
    /// Print the merged configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Check which OS token stores work here, print one line each, and exit.
    #[arg(long, conflicts_with = "print_config")]
    check_token_stores: bool,
    /// Encrypt the database at PATH in place, with a key kept in the token store,
    /// and exit (rcimd does this by itself at start; stop rcimd first).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["print_config", "check_token_stores", "decrypt_db", "dev"])]
    encrypt_db: Option<PathBuf>,
    /// Decrypt the database at PATH in place with its key from the token store,
    /// and exit (for support; stop rcimd first).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["print_config", "check_token_stores", "dev"])]
    decrypt_db: Option<PathBuf>,
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    // `RCIM_LOG` is the older name of `RCIM_LOG_LEVEL`.
    if args.options.log_level.is_none() {
        args.options.log_level = std::env::var("RCIM_LOG").ok().filter(|s| !s.is_empty());
    }
    let (config_file, file) = match config::load(args.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("rcimd: {e}");
            return ExitCode::from(2);
        }
    };
    let options = args.options.clone().over(file);
    if args.check_token_stores {
        check_token_stores(options.token_store.unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::resolve(&options, rust_log()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("rcimd: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        match &config_file {
            Some(path) => println!("# config file: {}", path.display()),
            None => println!("# config file: none (no --config, and no default file)"),
        }
        let mut shown = settings.clone();
        shown.data_dir.get_or_insert_with(rcimd::default_data_dir);
        print!("{}", shown.render());
        return ExitCode::SUCCESS;
    }
    let conversion = match (&args.encrypt_db, &args.decrypt_db) {
        (Some(path), _) => Some((path.clone(), Direction::Encrypt)),
        (None, Some(path)) => Some((path.clone(), Direction::Decrypt)),
        (None, None) => None,
    };
    if let Some((path, direction)) = conversion {
        return convert_db(&settings, &path, direction);
    }
    if !args.dev && (settings.server.is_none() || settings.app_key.is_none()) {
        eprintln!(
            "rcimd: which server? Give --server rcim://HOST:PORT and --app-key KEY (or RCIM_SERVER and RCIM_APP_KEY, or server and app_key in {}), or run `cargo run -p rcimd --features dev-server -- --dev` for a local demo",
            config::default_path().map_or("the config file".into(), |p| p.display().to_string())
        );
        return ExitCode::from(2);
    }
    let log = match service::init_logging(&settings.log_level) {
        Ok(log) => log,
        Err(e) => {
            eprintln!("rcimd: cannot set up logging: {e}");
            return ExitCode::from(2);
        }
    };
    service::forbid_core_dumps();
    // Before the runtime's threads exist: this edits the environment.
    #[cfg(unix)]
    let inherited = match service::take_inherited_listener() {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("rcimd: the socket passed by the service manager is unusable: {e}");
            return ExitCode::FAILURE;
        }
    };
    #[cfg(not(unix))]
    let inherited = None;
    // One thread runs every task: the work that blocks (SQLite, the keyring) has
    // threads of its own, and a request then crosses no thread between the socket
    // and the answer (docs/DECISIONS.md, "rcimd runs on one async thread").
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rcimd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let launch = Launch {
        flags: args.options,
        config: args.config,
        dev: args.dev,
        settings,
        log,
        inherited,
    };
    match runtime.block_on(run(launch)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("rcimd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn rust_log() -> Option<String> {
    std::env::var("RUST_LOG").ok()
}

/// `rcimd --check-token-stores`, which `rcimctl doctor` runs: one line per OS store.
fn check_token_stores(configured: TokenStoreKind) {
    println!("configured: {configured}");
    let mut chosen = None;
    for (name, result) in vault::check_all() {
        match result {
            Ok(()) => {
                chosen.get_or_insert(name);
                println!("{name}: works");
            }
            Err(e) => println!("{name}: does not work: {e}"),
        }
    }
    match chosen {
        Some(name) => println!("auto chooses: {name}"),
        None => println!("auto chooses: none (rcimd --token-store auto would refuse to start)"),
    }
}

/// `rcimd --encrypt-db` / `--decrypt-db`: converts one database in place, with
/// its key in the configured token store, and says what was done.
fn convert_db(settings: &Settings, path: &std::path::Path, direction: Direction) -> ExitCode {
    // A running rcimd keeps the database open: converting under it would lose
    // what it writes after the rename.
    #[cfg(unix)]
    if std::os::unix::net::UnixStream::connect(&settings.socket).is_ok() {
        eprintln!(
            "rcimd: rcimd is running (its socket {} answers); stop it first (systemctl --user stop rcimd)",
            settings.socket.display()
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("rcimd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let server = settings
        .server
        .as_ref()
        .map_or_else(|| "-".to_owned(), |servers| servers.first().to_string());
    let app_key = settings.app_key.clone().unwrap_or_else(|| "-".to_owned());
    let done = runtime.block_on(async {
        let vault = vault::Vault::open(vault::VaultOptions::new(
            settings.token_store,
            &server,
            &app_key,
        ))
        .await
        .map_err(|e| e.to_string())?;
        if !vault.keeps_keys() {
            return Err(format!(
                "the {} token store keeps no database key; choose an OS keyring with --token-store",
                vault.store()
            ));
        }
        rcimd::store::convert_offline(path, direction, &vault)
            .await
            .map_err(|e| e.to_string())
    });
    match done {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rcimd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything `run` needs from `main`.
struct Launch {
    /// What flags and environment gave (kept for reloads: they still win).
    flags: Options,
    /// `--config`.
    config: Option<PathBuf>,
    dev: bool,
    settings: Settings,
    log: LogControl,
    #[cfg(unix)]
    inherited: Option<std::os::unix::net::UnixListener>,
    #[cfg(not(unix))]
    inherited: Option<()>,
}

async fn run(launch: Launch) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let Launch {
        flags,
        config: config_path,
        dev: dev_mode,
        mut settings,
        log,
        inherited,
    } = launch;
    let mut config = rcimd::Config {
        socket: settings.socket.clone(),
        data_dir: settings
            .data_dir
            .clone()
            .unwrap_or_else(rcimd::default_data_dir),
        servers: ServerAddr {
            host: String::new(),
            port: 0,
            tls: false,
        }
        .into(),
        tls_trust: settings.tls_trust.clone(),
        app_key: String::new(),
        token_store: settings.token_store,
        ping_after: settings.ping_interval,
        pong_timeout: settings.pong_timeout,
        boot_token: None,
        client_stall_timeout: settings.client_stall_timeout,
    };
    #[cfg(feature = "dev-server")]
    let dev = if dev_mode {
        config.data_dir = settings
            .data_dir
            .clone()
            .unwrap_or_else(|| rcimd::default_data_dir().join("dev"));
        config.token_store = TokenStoreKind::Memory;
        let dev = rcimd::dev::DevServer::start(&config.data_dir)
            .await
            .context("cannot start the embedded server")?;
        tracing::info!(
            "embedded server on {} (API {})",
            dev.address,
            dev.server.api_url()
        );
        config.servers = ServerAddr::parse(&dev.address)?.into();
        config.app_key = rcimd::dev::DEV_APP_KEY.into();
        config.boot_token = Some(dev.token.clone());
        Some(dev)
    } else {
        None
    };
    #[cfg(not(feature = "dev-server"))]
    if dev_mode {
        anyhow::bail!(
            "this rcimd has no embedded server (it was built without the dev-server feature): \
             run `cargo run -p rcimd --features dev-server -- --dev` from the source tree"
        );
    }
    if !dev_mode {
        config.servers = settings.server.clone().context("no server given")?;
        config.app_key = settings.app_key.clone().context("no app key given")?;
    }

    #[cfg(unix)]
    let bound = match inherited {
        Some(listener) => Some(rcimd::listener::adopt(listener)?),
        None => None,
    };
    #[cfg(not(unix))]
    let bound = {
        let _ = inherited;
        None
    };
    let running = rcimd::start_with(config, bound).await?;
    tracing::info!(
        "token store: {}; logging to {} at {}",
        running.token_store,
        log.sink,
        settings.log_level
    );
    running.ready().await;
    service::notify_ready(&service::status_line(&running.link.report()));
    service::mirror_status(running.link.watch(), running.shutdown_token());
    if dev_mode {
        tokio::spawn(announce_when_connected(
            running.link.watch(),
            running.socket.clone(),
        ));
    }

    let reloader = Reloader {
        flags,
        config: config_path,
        log,
        link: running.link.clone(),
    };
    serve_signals(&reloader, &mut settings).await;

    service::notify_stopping();
    tracing::info!("stopping");
    if tokio::time::timeout(STOP_LIMIT, running.stop())
        .await
        .is_err()
    {
        tracing::warn!("the drain took longer than {STOP_LIMIT:?}; exiting anyway");
    }
    #[cfg(feature = "dev-server")]
    if let Some(dev) = dev {
        dev.server.shutdown().await;
    }
    Ok(())
}

/// The main loop: keeps the watchdog fed, reloads on SIGHUP, returns on SIGTERM or
/// SIGINT. Watchdog keep-alives come from here so that a wedged runtime stops them.
async fn serve_signals(reloader: &Reloader, settings: &mut Settings) {
    let mut watchdog = service::watchdog_interval().map(tokio::time::interval);
    let mut watchdog_tick = async || match watchdog.as_mut() {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::warn!("cannot install the SIGTERM/SIGHUP handlers; stop with Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hup.recv() => reloader.reload(settings).await,
                () = watchdog_tick() => service::notify_watchdog(),
            }
        }
    }
    #[cfg(not(unix))]
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            () = watchdog_tick() => service::notify_watchdog(),
        }
    }
}

/// What a SIGHUP reload needs.
struct Reloader {
    flags: Options,
    config: Option<PathBuf>,
    log: LogControl,
    link: LinkHandle,
}

impl Reloader {
    /// Reads the config file again and applies what can change live: the log level
    /// and the heartbeat. Flags and environment still win. Says what it changed,
    /// and which changes need a restart.
    async fn reload(&self, current: &mut Settings) {
        let file = match config::load(self.config.as_deref()) {
            Ok((_, file)) => file,
            Err(e) => {
                tracing::error!("reload failed, the running configuration stays: {e}");
                return;
            }
        };
        let new = match Settings::resolve(&self.flags.clone().over(file), rust_log()) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload failed, the running configuration stays: {e}");
                return;
            }
        };
        let mut changed = Vec::new();
        if new.log_level != current.log_level {
            match self.log.set(&new.log_level) {
                Ok(()) => {
                    changed.push(format!(
                        "log level {} -> {}",
                        current.log_level, new.log_level
                    ));
                    current.log_level = new.log_level.clone();
                }
                Err(e) => tracing::error!("cannot apply log level {}: {e}", new.log_level),
            }
        }
        if (new.ping_interval, new.pong_timeout) != (current.ping_interval, current.pong_timeout) {
            self.link
                .set_heartbeat(new.ping_interval, new.pong_timeout)
                .await;
            changed.push(format!(
                "heartbeat ping {:?}/pong {:?} -> {:?}/{:?}",
                current.ping_interval, current.pong_timeout, new.ping_interval, new.pong_timeout
            ));
            current.ping_interval = new.ping_interval;
            current.pong_timeout = new.pong_timeout;
        }
        let needs_restart: Vec<&str> = [
            ("socket", new.socket != current.socket),
            ("data_dir", new.data_dir != current.data_dir),
            ("server", new.server != current.server),
            ("app_key", new.app_key != current.app_key),
            ("token_store", new.token_store != current.token_store),
            ("ca_file/insecure_dev", new.tls_trust != current.tls_trust),
        ]
        .into_iter()
        .filter_map(|(key, differs)| differs.then_some(key))
        .collect();
        if !needs_restart.is_empty() {
            tracing::warn!(
                "reload: {} changed; restart rcimd to apply (systemctl --user restart rcimd)",
                needs_restart.join(", ")
            );
        }
        if changed.is_empty() {
            tracing::info!("reloaded the configuration: nothing to change live");
        } else {
            tracing::info!("reloaded the configuration: {}", changed.join("; "));
        }
    }
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
        let socket = socket.display();
        #[cfg(feature = "dev-server")]
        let echo = rcimd::dev::ECHO_USER;
        #[cfg(not(feature = "dev-server"))]
        let echo = "echo";
        println!(
            "rcimd --dev: connected to the embedded server as {user}; the user `{echo}` answers every message with the same one. Leave this running and, in another terminal, try:\n    RCIM_SOCKET={socket} cargo run -p rcimctl -- status\n    RCIM_SOCKET={socket} cargo run -p rcimctl -- watch\n    RCIM_SOCKET={socket} cargo run -p rcimctl -- send --to {echo} --text hi"
        );
    }
}
