//! What a service manager sees of rcimd: readiness, status, liveness, logs.
//!
//! Under systemd (`Type=notify`) the daemon says `READY=1` once its socket accepts
//! clients and a stored token has been taken up, keeps a one-line `STATUS=` in
//! step with the connection (what `systemctl --user status rcimd` shows), sends
//! `WATCHDOG=1` from the main loop at half the unit's `WatchdogSec`, and says
//! `STOPPING=1` when it starts draining. Every call is a no-op when `NOTIFY_SOCKET`
//! is unset, so the same binary runs by hand, under launchd, and in tests.
//!
//! It also takes over a listening socket the manager passed (socket activation,
//! `LISTEN_FDS`), and sends logs to the journal when stderr is connected to it
//! (`JOURNAL_STREAM`), compact text to stderr otherwise. The log filter can be
//! swapped at run time (SIGHUP) through [`LogControl`].

use crate::config::log_directives;
use crate::link::LinkReport;
use rcim_proto::{ConnectionStatus, RcCode};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Takes the listening socket a service manager passed, if any. Call it before the
/// tokio runtime starts: reading `LISTEN_FDS` also removes it from the environment,
/// which is only safe while the process has one thread.
#[cfg(unix)]
pub fn take_inherited_listener() -> std::io::Result<Option<std::os::unix::net::UnixListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    if fds.len() > 1 {
        tracing::warn!("{} sockets were passed; using the first", fds.len());
    }
    fds.take_unix_listener(0)
}

/// Keeps the token out of core dumps and out of other processes' reach: the
/// process is marked not dumpable (no core file, no ptrace or /proc/PID/mem by
/// other processes of the same user). Best effort: a failure is logged.
pub fn forbid_core_dumps() {
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        tracing::warn!("cannot turn core dumps off: {e}");
    }
}

#[cfg(target_os = "linux")]
fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

/// `READY=1`, with a first status line.
pub fn notify_ready(status: &str) {
    #[cfg(target_os = "linux")]
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
    #[cfg(not(target_os = "linux"))]
    let _ = status;
}

/// `STATUS=...`.
pub fn notify_status(status: &str) {
    #[cfg(target_os = "linux")]
    notify(&[sd_notify::NotifyState::Status(status)]);
    #[cfg(not(target_os = "linux"))]
    let _ = status;
}

/// `WATCHDOG=1`.
pub fn notify_watchdog() {
    #[cfg(target_os = "linux")]
    notify(&[sd_notify::NotifyState::Watchdog]);
}

/// `STOPPING=1`, with a status line.
pub fn notify_stopping() {
    #[cfg(target_os = "linux")]
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping: closing clients, saying goodbye upstream"),
    ]);
}

/// How often to send `WATCHDOG=1`: half the manager's `WatchdogSec`, or `None`
/// when no watchdog is asked for.
pub fn watchdog_interval() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        sd_notify::watchdog_enabled().map(|period| period / 2)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The one-line status for `systemctl status`: the status name first, then what
/// matters about it.
pub fn status_line(report: &LinkReport) -> String {
    let state = &report.state;
    let name = state.status.name();
    let user = state.user_id.as_deref();
    let last_error = |out: &mut String| {
        if state.code != 0 {
            out.push_str(&format!(
                "; last error {}: {}",
                state.code,
                RcCode(state.code).meaning()
            ));
        }
    };
    let mut line = match state.status {
        ConnectionStatus::Connected => {
            format!("{name} as {}", user.unwrap_or("?"))
        }
        ConnectionStatus::Unconnected if state.code == 0 => {
            format!("{name}: waiting for an app to connect")
        }
        ConnectionStatus::Connecting
        | ConnectionStatus::Suspend
        | ConnectionStatus::NetworkUnavailable => {
            let mut line = name.to_owned();
            if let Some(user) = user {
                line.push_str(&format!(" as {user}"));
            }
            if state.attempt > 0 {
                line.push_str(&format!(" (attempt {}", state.attempt));
                if let Some(ms) = state.retry_in_ms {
                    line.push_str(&format!(", next in {:.1} s", ms as f64 / 1000.0));
                }
                line.push(')');
            }
            line
        }
        _ => format!("{name}: not retrying until an app connects again"),
    };
    last_error(&mut line);
    line
}

/// Keeps `STATUS=` in step with the link until `shutdown`.
pub fn mirror_status(mut reports: watch::Receiver<LinkReport>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut last = String::new();
        loop {
            let line = status_line(&reports.borrow_and_update());
            if line != last {
                notify_status(&line);
                last = line;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = reports.changed() => if changed.is_err() { return },
            }
        }
    });
}

/// Whether stderr is connected to the journal (systemd sets `JOURNAL_STREAM` to
/// the device and inode of that stream; checking them tells a service from a shell
/// started by one).
pub fn under_journald() -> bool {
    #[cfg(target_os = "linux")]
    {
        let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
            return false;
        };
        let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
            return false;
        };
        dev.parse::<u64>().ok() == Some(stat.st_dev) && ino.parse::<u64>().ok() == Some(stat.st_ino)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Changes the log filter of a running daemon.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    /// Where the logs go: `journald` or `stderr`.
    pub sink: &'static str,
}

impl LogControl {
    /// Replaces the filter with `level` (see [`log_directives`]).
    pub fn set(&self, level: &str) -> Result<(), LogError> {
        let filter = EnvFilter::try_new(log_directives(level))?;
        self.handle.reload(filter)?;
        Ok(())
    }
}

/// Why logging could not be set up or changed. Each variant is tracing's own error,
/// shown as tracing words it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The filter does not parse.
    #[error(transparent)]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// The running filter could not be swapped (the subscriber is gone).
    #[error(transparent)]
    Reload(#[from] reload::Error),
    /// A global subscriber was already installed.
    #[error(transparent)]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the global subscriber: journald when stderr is the journal (falling back
/// to text if the journal socket cannot be opened), compact text on stderr otherwise.
pub fn init_logging(level: &str) -> Result<LogControl, LogError> {
    use std::io::IsTerminal as _;
    let filter = EnvFilter::try_new(log_directives(level))?;
    let (filter, handle) = reload::Layer::new(filter);
    #[cfg(target_os = "linux")]
    let journald = if under_journald() {
        match tracing_journald::layer() {
            Ok(layer) => Some(layer.with_syslog_identifier("rcimd".into())),
            Err(e) => {
                eprintln!("rcimd: cannot log to the journal ({e}); logging to stderr");
                None
            }
        }
    } else {
        None
    };
    #[cfg(not(target_os = "linux"))]
    let journald: Option<tracing_subscriber::layer::Identity> = None;
    let sink = if journald.is_some() {
        "journald"
    } else {
        "stderr"
    };
    let text = journald.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(journald)
        .with(text)
        .try_init()?;
    Ok(LogControl { handle, sink })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::status::LinkState;

    fn report(status: ConnectionStatus, code: i32, attempt: u32, retry: Option<u64>) -> LinkReport {
        LinkReport {
            state: LinkState {
                status,
                code,
                user_id: Some("alice".into()),
                attempt,
                retry_in_ms: retry,
            },
            reconnects: 0,
            last_error: None,
            server: crate::link::connector::ServerAddr::parse("rcim://h:1").unwrap(),
        }
    }

    #[test]
    fn status_lines_start_with_the_status_name() {
        assert_eq!(
            status_line(&report(ConnectionStatus::Connected, 0, 0, None)),
            "connected as alice"
        );
        let line = status_line(&report(ConnectionStatus::Suspend, 30011, 3, Some(2500)));
        assert!(
            line.starts_with("suspend as alice (attempt 3, next in 2.5 s); last error 30011"),
            "{line}"
        );
        let line = status_line(&report(ConnectionStatus::TokenIncorrect, 31004, 0, None));
        assert!(line.starts_with("token_incorrect: not retrying"), "{line}");
        assert!(line.contains("31004"), "{line}");
        let idle = LinkReport {
            state: LinkState::idle(),
            reconnects: 0,
            last_error: None,
            server: crate::link::connector::ServerAddr::parse("rcim://h:1").unwrap(),
        };
        assert_eq!(
            status_line(&idle),
            "unconnected: waiting for an app to connect"
        );
    }
}
