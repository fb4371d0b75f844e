//! Configuration: the TOML file, the flags and the environment, merged.
//!
//! Every option can be given three ways, and the first that is set wins:
//!
//! 1. a flag (`--ping-interval 10`) or its environment variable
//!    (`RCIM_PING_INTERVAL=10`); clap reads both, the flag winning;
//! 2. the config file, `$XDG_CONFIG_HOME/rcim/rcimd.toml` (else
//!    `~/.config/rcim/rcimd.toml`) or `--config PATH` / `RCIM_CONFIG`;
//! 3. the built-in default.
//!
//! [`Options`] is both the clap argument group and the file's shape, so a new
//! option is one field with one doc comment, and the file can never name an option
//! that has no flag. Unknown keys in the file are an error, not a silent no-op.
//! `server` is the one option that takes a list (several nodes to fail over
//! between): the flag repeated, a comma-separated variable, or a TOML list; a
//! single string still works. The list given highest wins whole; lists are not
//! merged.
//! [`Settings`] is the result of the merge, with every default filled in.

use crate::link::connector::TlsTrust;
use crate::link::nodes::{ListError, ServerList};
use crate::vault::TokenStoreKind;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default log filter.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The default heartbeat: ping after this long without traffic.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(30);
/// The default pong deadline.
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(6);

/// The options a flag, an environment variable or the config file can set.
/// `None` (or `false`) means "not given here".
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Options {
    /// The local socket [default: $XDG_RUNTIME_DIR/rcim/rcimd.sock].
    #[arg(long, env = "RCIM_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Where the per-user databases live [default: $XDG_DATA_HOME/rcim].
    #[arg(long, env = "RCIM_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The IM server, as rcim://HOST:PORT (or rcims:// for TLS). Repeat the flag
    /// (or give RCIM_SERVER a comma-separated list, or the file a list) for several
    /// nodes of one service: rcimd connects to the first that answers and fails
    /// over to the next.
    #[arg(
        long,
        env = "RCIM_SERVER",
        value_name = "URL",
        value_delimiter = ',',
        conflicts_with = "dev"
    )]
    #[serde(default, deserialize_with = "one_or_many")]
    pub server: Option<Vec<String>>,
    /// The app key the server knows this app by.
    #[arg(long, env = "RCIM_APP_KEY", value_name = "KEY", conflicts_with = "dev")]
    pub app_key: Option<String>,
    /// Where the token is kept between connects and restarts [default: auto].
    /// `auto` tries the Secret Service, then the kernel keyring (keyutils);
    /// `keyring` is an alias of `auto`.
    #[arg(long, env = "RCIM_TOKEN_STORE", value_enum, value_name = "STORE")]
    pub token_store: Option<TokenStoreKind>,
    /// Seconds without traffic before a heartbeat ping [default: 30].
    #[arg(long, env = "RCIM_PING_INTERVAL", value_name = "SECS", value_parser = parse_secs)]
    #[serde(default, deserialize_with = "secs")]
    pub ping_interval: Option<Duration>,
    /// Seconds to wait for the pong before the connection counts as dead [default: 6].
    #[arg(long, env = "RCIM_PONG_TIMEOUT", value_name = "SECS", value_parser = parse_secs)]
    #[serde(default, deserialize_with = "secs")]
    pub pong_timeout: Option<Duration>,
    /// Seconds a local client may leave a write unread before it is dropped
    /// [default: 30].
    #[arg(long, env = "RCIM_CLIENT_STALL_TIMEOUT", value_name = "SECS", value_parser = parse_secs)]
    #[serde(default, deserialize_with = "secs")]
    pub client_stall_timeout: Option<Duration>,
    /// Trust only the CA certificates in this PEM file for rcims:// servers
    /// [default: the system's root certificates].
    #[arg(
        long,
        env = "RCIM_CA_FILE",
        value_name = "PEM",
        conflicts_with = "insecure_dev"
    )]
    pub ca_file: Option<PathBuf>,
    /// Do not verify the rcims:// server's certificate. For development servers only:
    /// anyone on the path can then read and change the traffic.
    #[arg(long, env = "RCIM_INSECURE_DEV")]
    #[serde(default)]
    pub insecure_dev: bool,
    /// Log filter: error, warn, info, debug, trace (for rcim's own crates), or a
    /// tracing directive such as `rcimd::link=trace,info` [default: $RUST_LOG, else
    /// info]. `--log` is an alias.
    #[arg(long, alias = "log", env = "RCIM_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
}

impl Options {
    /// `self` where set, else `lower`.
    pub fn over(self, lower: Options) -> Options {
        Options {
            socket: self.socket.or(lower.socket),
            data_dir: self.data_dir.or(lower.data_dir),
            server: self.server.or(lower.server),
            app_key: self.app_key.or(lower.app_key),
            token_store: self.token_store.or(lower.token_store),
            ping_interval: self.ping_interval.or(lower.ping_interval),
            pong_timeout: self.pong_timeout.or(lower.pong_timeout),
            client_stall_timeout: self.client_stall_timeout.or(lower.client_stall_timeout),
            ca_file: self.ca_file.or(lower.ca_file),
            insecure_dev: self.insecure_dev || lower.insecure_dev,
            log_level: self.log_level.or(lower.log_level),
        }
    }
}

/// Parses a number of seconds (fractions allowed) within 0.01 s to one day.
pub fn parse_secs(text: &str) -> Result<Duration, SecsError> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| SecsError::NotANumber(text.to_owned()))?;
    secs_in_range(secs)
}

fn secs_in_range(secs: f64) -> Result<Duration, SecsError> {
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(SecsError::OutOfRange(secs));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Why a number of seconds (a flag, a variable or a key of the file) was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SecsError {
    /// The text is not a number.
    #[error("'{0}' is not a number of seconds")]
    NotANumber(String),
    /// The number is outside 0.01 s to one day.
    #[error("{0} s is out of range (0.01 to 86400)")]
    OutOfRange(f64),
}

/// `server` in the file: one string (as before lists were allowed) or a list.
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged, expecting = "a server address or a list of them")]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(Some(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    }))
}

/// Seconds in the file: an integer or a float.
fn secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(i64),
        Float(f64),
    }
    let secs = match Number::deserialize(d)? {
        Number::Int(n) => n as f64,
        Number::Float(f) => f,
    };
    secs_in_range(secs)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

/// The config file's default path: `$XDG_CONFIG_HOME/rcim/rcimd.toml`, else
/// `~/.config/rcim/rcimd.toml`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("rcim").join("rcimd.toml"))
}

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or names an unknown option.
    #[error("the config file {path} is not valid: {error}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said, with the line.
        error: InvalidOptions,
    },
}

/// Why a config file's text is not a set of options: not TOML, an unknown key, or
/// a value out of range. The message is the TOML parser's, which names the line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidOptions {
    message: String,
}

/// Reads the config file. `explicit` (from `--config`) must exist; the default
/// path may be absent, which gives empty options.
pub fn load(explicit: Option<&Path>) -> Result<(Option<PathBuf>, Options), ConfigError> {
    let (path, must_exist) = match explicit {
        Some(path) => (path.to_owned(), true),
        None => match default_path() {
            Some(path) => (path, false),
            None => return Ok((None, Options::default())),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if !must_exist && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((None, Options::default()));
        }
        Err(source) => return Err(ConfigError::Read { path, source }),
    };
    let options = parse(&text).map_err(|error| ConfigError::Parse {
        path: path.clone(),
        error,
    })?;
    Ok((Some(path), options))
}

/// Parses the file's text.
pub fn parse(text: &str) -> Result<Options, InvalidOptions> {
    toml::from_str(text).map_err(|e| InvalidOptions {
        // toml's message ends with a newline after the excerpt of the file.
        message: e.to_string().trim_end().to_owned(),
    })
}

/// Every option with its default filled in; what the daemon runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The local socket.
    pub socket: PathBuf,
    /// The data dir.
    pub data_dir: Option<PathBuf>,
    /// The servers, unless `--dev` provides one.
    pub server: Option<ServerList>,
    /// The app key, unless `--dev` provides one.
    pub app_key: Option<String>,
    /// The token store.
    pub token_store: TokenStoreKind,
    /// Heartbeat ping interval.
    pub ping_interval: Duration,
    /// Pong deadline.
    pub pong_timeout: Duration,
    /// How long a local client may leave a write unread.
    pub client_stall_timeout: Duration,
    /// How rcims:// certificates are checked.
    pub tls_trust: TlsTrust,
    /// The log filter as given (see [`log_directives`]).
    pub log_level: String,
}

impl Settings {
    /// Fills in the defaults and checks what can be checked before starting.
    /// `rust_log` is `$RUST_LOG`, used when no log level is given otherwise.
    pub fn resolve(options: &Options, rust_log: Option<String>) -> Result<Settings, SettingsError> {
        let server = match &options.server {
            Some(entries) => Some(ServerList::parse(entries).map_err(SettingsError::Server)?),
            None => None,
        };
        let app_key = match &options.app_key {
            Some(key) if key.trim().is_empty() => return Err(SettingsError::EmptyAppKey),
            other => other.clone(),
        };
        let tls_trust = match (&options.ca_file, options.insecure_dev) {
            (Some(_), true) => return Err(SettingsError::CaFileAndInsecure),
            (Some(path), false) => TlsTrust::CaFile(path.clone()),
            (None, true) => TlsTrust::InsecureDev,
            (None, false) => TlsTrust::SystemRoots,
        };
        let log_level = options
            .log_level
            .clone()
            .or(rust_log.filter(|s| !s.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
        if let Err(error) = tracing_subscriber::EnvFilter::try_new(log_directives(&log_level)) {
            return Err(SettingsError::LogLevel { log_level, error });
        }
        Ok(Settings {
            socket: options
                .socket
                .clone()
                .unwrap_or_else(rcim_proto::paths::default_socket_path),
            data_dir: options.data_dir.clone(),
            server,
            app_key,
            token_store: options.token_store.unwrap_or_default(),
            ping_interval: options.ping_interval.unwrap_or(DEFAULT_PING_INTERVAL),
            pong_timeout: options.pong_timeout.unwrap_or(DEFAULT_PONG_TIMEOUT),
            client_stall_timeout: options
                .client_stall_timeout
                .unwrap_or(crate::DEFAULT_CLIENT_STALL),
            tls_trust,
            log_level,
        })
    }

    /// The settings as `rcimd --print-config` shows them: TOML a config file
    /// could hold.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |key: &str, value: String| out.push_str(&format!("{key} = {value}\n"));
        let quoted = |s: &str| format!("{s:?}");
        line("socket", quoted(&self.socket.display().to_string()));
        if let Some(dir) = &self.data_dir {
            line("data_dir", quoted(&dir.display().to_string()));
        }
        match &self.server {
            Some(servers) if servers.len() == 1 => {
                line("server", quoted(&servers.first().to_string()));
            }
            Some(servers) => {
                let entries: Vec<String> = servers.iter().map(|s| quoted(&s.to_string())).collect();
                line("server", format!("[{}]", entries.join(", ")));
            }
            None => {}
        }
        if let Some(key) = &self.app_key {
            line("app_key", quoted(key));
        }
        line("token_store", quoted(self.token_store.name()));
        line(
            "ping_interval",
            self.ping_interval.as_secs_f64().to_string(),
        );
        line("pong_timeout", self.pong_timeout.as_secs_f64().to_string());
        line(
            "client_stall_timeout",
            self.client_stall_timeout.as_secs_f64().to_string(),
        );
        match &self.tls_trust {
            TlsTrust::CaFile(path) => line("ca_file", quoted(&path.display().to_string())),
            TlsTrust::InsecureDev => line("insecure_dev", "true".into()),
            _ => {}
        }
        line("log_level", quoted(&self.log_level));
        out
    }
}

/// Why the merged options cannot be run with; the daemon does not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// `server` is not a usable list of rcim:// or rcims:// addresses.
    #[error("server: {0}")]
    Server(ListError),
    /// `app_key` is blank.
    #[error("app_key must not be empty")]
    EmptyAppKey,
    /// `ca_file` and `insecure_dev` contradict each other.
    #[error("ca_file and insecure_dev cannot both be set")]
    CaFileAndInsecure,
    /// The log filter does not parse.
    #[error("log level '{log_level}': {error}")]
    LogLevel {
        /// The filter as given.
        log_level: String,
        /// What tracing said about it.
        error: tracing_subscriber::filter::ParseError,
    },
}

/// Turns a log level into tracing directives: a bare level (`debug`) applies to
/// rcim's own crates, with everything else at `warn` (so a trace log does not fill
/// with D-Bus and TLS internals); anything else is taken as directives as written.
pub fn log_directives(level: &str) -> String {
    let level = level.trim();
    let bare = ["error", "warn", "info", "debug", "trace", "off"];
    if bare.contains(&level.to_ascii_lowercase().as_str()) {
        let level = level.to_ascii_lowercase();
        let others = if matches!(level.as_str(), "error" | "off") {
            level.as_str()
        } else {
            "warn"
        };
        format!("{others},rcimd={level},rcim_proto={level},rcim_server={level}")
    } else {
        level.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_names_every_option() {
        let options = parse(
            r#"
            socket = "/run/user/1000/rcim/rcimd.sock"
            data_dir = "/var/lib/rcim"
            server = "rcims://im.example.com:7443"
            app_key = "key"
            token_store = "secret-service"
            ping_interval = 10
            pong_timeout = 2.5
            ca_file = "/etc/rcim/ca.pem"
            log_level = "debug"
            "#,
        )
        .unwrap();
        assert_eq!(options.ping_interval, Some(Duration::from_secs(10)));
        assert_eq!(options.pong_timeout, Some(Duration::from_millis(2500)));
        assert_eq!(options.token_store, Some(TokenStoreKind::SecretService));
        assert_eq!(
            options.server,
            Some(vec!["rcims://im.example.com:7443".to_owned()])
        );
        let settings = Settings::resolve(&options, None).unwrap();
        assert_eq!(
            settings.tls_trust,
            TlsTrust::CaFile("/etc/rcim/ca.pem".into())
        );
        // What --print-config prints reads back as the same settings.
        let again = Settings::resolve(&parse(&settings.render()).unwrap(), None).unwrap();
        assert_eq!(again, settings);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_with_the_line() {
        let err = parse("server = \"rcim://h:1\"\nping_intervall = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `ping_intervall`"), "{err}");
        assert!(err.contains("line 2"), "{err}");
        let err = parse("token_store = \"vault\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown variant"), "{err}");
        let err = parse("ping_interval = 0\n").unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn keyring_is_an_alias_of_auto() {
        let options = parse("token_store = \"keyring\"\n").unwrap();
        assert_eq!(options.token_store, Some(TokenStoreKind::Auto));
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let file = parse("ping_interval = 10\npong_timeout = 3\nlog_level = \"debug\"\n").unwrap();
        let flags = Options {
            ping_interval: Some(Duration::from_secs(20)),
            ..Options::default()
        };
        let settings = Settings::resolve(&flags.over(file), Some("trace".into())).unwrap();
        assert_eq!(settings.ping_interval, Duration::from_secs(20), "flag");
        assert_eq!(settings.pong_timeout, Duration::from_secs(3), "file");
        assert_eq!(settings.log_level, "debug", "file over RUST_LOG");
        assert_eq!(settings.token_store, TokenStoreKind::Auto, "default");
        let settings = Settings::resolve(&Options::default(), Some("trace".into())).unwrap();
        assert_eq!(settings.log_level, "trace", "RUST_LOG over the default");
        let settings = Settings::resolve(&Options::default(), None).unwrap();
        assert_eq!(settings.log_level, DEFAULT_LOG_LEVEL);
        assert_eq!(settings.ping_interval, DEFAULT_PING_INTERVAL);
    }

    #[test]
    fn conflicting_or_empty_values_are_refused() {
        let both = Options {
            ca_file: Some("/ca.pem".into()),
            insecure_dev: true,
            ..Options::default()
        };
        assert!(Settings::resolve(&both, None).is_err());
        let empty_key = Options {
            app_key: Some(" ".into()),
            ..Options::default()
        };
        assert!(Settings::resolve(&empty_key, None).is_err());
        let bad_log = Options {
            log_level: Some("rcimd=loud".into()),
            ..Options::default()
        };
        assert!(Settings::resolve(&bad_log, None).is_err());
    }

    #[test]
    fn refusals_say_what_is_wrong_in_words() {
        assert_eq!(
            parse_secs("soon").unwrap_err().to_string(),
            "'soon' is not a number of seconds"
        );
        assert_eq!(
            parse_secs("0").unwrap_err().to_string(),
            "0 s is out of range (0.01 to 86400)"
        );
        let refused = |options: Options| Settings::resolve(&options, None).unwrap_err().to_string();
        assert_eq!(
            refused(Options {
                server: Some(vec!["http://x:1".into()]),
                ..Options::default()
            }),
            "server: http://x:1: the server must look like rcim://HOST:PORT or rcims://HOST:PORT (TLS)"
        );
        assert_eq!(
            refused(Options {
                app_key: Some(String::new()),
                ..Options::default()
            }),
            "app_key must not be empty"
        );
        assert_eq!(
            refused(Options {
                ca_file: Some("/ca.pem".into()),
                insecure_dev: true,
                ..Options::default()
            }),
            "ca_file and insecure_dev cannot both be set"
        );
        let bad_log = refused(Options {
            log_level: Some("rcimd=loud".into()),
            ..Options::default()
        });
        assert!(bad_log.starts_with("log level 'rcimd=loud': "), "{bad_log}");
    }

    /// The flags alone, as rcimd's command line holds them.
    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        options: Options,
        #[arg(long)]
        dev: bool,
    }

    fn servers_of(options: &Options) -> Result<Vec<String>, String> {
        let settings = Settings::resolve(options, None).map_err(|e| e.to_string())?;
        let servers = settings.server.expect("a server");
        Ok(servers.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn servers_come_as_one_string_a_list_repeated_flags_or_commas() {
        let one = parse("server = \"rcim://a:1\"\n").unwrap();
        assert_eq!(servers_of(&one).unwrap(), ["rcim://a:1"]);
        let list = parse("server = [\"rcim://a:1\", \"rcim://b:2\"]\n").unwrap();
        assert_eq!(servers_of(&list).unwrap(), ["rcim://a:1", "rcim://b:2"]);
        use clap::Parser as _;
        let flags = |args: &[&str]| {
            Flags::try_parse_from(std::iter::once("rcimd").chain(args.iter().copied()))
                .map(|f| f.options)
                .map_err(|e| e.to_string())
        };
        let repeated = flags(&["--server", "rcim://a:1", "--server", "rcim://b:2"]).unwrap();
        assert_eq!(servers_of(&repeated).unwrap(), ["rcim://a:1", "rcim://b:2"]);
        let commas = flags(&["--server", "rcim://a:1,rcim://b:2, rcim://c:3"]).unwrap();
        assert_eq!(
            servers_of(&commas).unwrap(),
            ["rcim://a:1", "rcim://b:2", "rcim://c:3"]
        );
        // The flags replace the file's list; they do not add to it.
        assert_eq!(
            servers_of(&repeated.clone().over(list.clone())).unwrap(),
            ["rcim://a:1", "rcim://b:2"]
        );
        let only_file = Options::default().over(list);
        assert_eq!(servers_of(&only_file).unwrap().len(), 2);
        assert!(flags(&["--server", "rcim://a:1", "--dev"]).is_err());
    }

    #[test]
    fn bad_server_lists_are_refused_naming_the_entry() {
        let refused = |text: &str| match parse(text) {
            Err(e) => e.to_string(),
            Ok(options) => servers_of(&options).unwrap_err(),
        };
        assert_eq!(
            refused("server = []\n"),
            "server: the list of servers is empty; give at least one rcim://HOST:PORT"
        );
        assert_eq!(
            refused("server = [\"rcim://a:1\", \"\"]\n"),
            "server: entry 2 of the list of servers is empty"
        );
        assert_eq!(
            refused("server = [\"rcim://a:1\", \"tcp://b:2\"]\n"),
            "server: tcp://b:2: the server must look like rcim://HOST:PORT or rcims://HOST:PORT (TLS)"
        );
        assert_eq!(
            refused("server = [\"rcim://a:1\", \"rcim://b:2\", \"rcim://a:1\"]\n"),
            "server: rcim://a:1 is listed twice; give each server once"
        );
        assert!(
            refused("server = [\"rcims://a:1\", \"rcim://b:2\"]\n")
                .contains("must use the same scheme"),
        );
        let not_a_list = refused("server = 7\n");
        assert!(
            not_a_list.contains("a server address or a list of them"),
            "{not_a_list}"
        );
        assert!(not_a_list.contains("line 1"), "{not_a_list}");
        let nested = refused("server = [[\"rcim://a:1\"]]\n");
        assert!(
            nested.contains("a server address or a list of them"),
            "{nested}"
        );
    }

    #[test]
    fn print_config_shows_a_list_that_reads_back() {
        let options = parse("server = [\"rcim://a:1\", \"rcim://b:2\"]\n").unwrap();
        let settings = Settings::resolve(&options, None).unwrap();
        let shown = settings.render();
        assert!(
            shown.contains("server = [\"rcim://a:1\", \"rcim://b:2\"]\n"),
            "{shown}"
        );
        let again = Settings::resolve(&parse(&shown).unwrap(), None).unwrap();
        assert_eq!(again, settings);
    }

    #[test]
    fn bare_levels_apply_to_our_crates() {
        assert_eq!(
            log_directives("trace"),
            "warn,rcimd=trace,rcim_proto=trace,rcim_server=trace"
        );
        assert_eq!(
            log_directives("error"),
            "error,rcimd=error,rcim_proto=error,rcim_server=error"
        );
        assert_eq!(log_directives("rcimd::link=trace"), "rcimd::link=trace");
    }
}
