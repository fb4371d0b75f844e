//! `rcimctl status [--json]`: what the daemon and its one connection are doing.
//!
//! The JSON form is a contract for scripts: [`StatusJson`] is its shape, versioned by
//! `schema_version`, and kept here (not in rcim-proto) so the wire types can evolve
//! without breaking scripts, and the other way round.

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view;
use rcim_client::{RcCode, StatusSnapshot};
use rcim_proto::status::DatabaseInfo;
use serde::Serialize;
use std::io::Write;

/// Show the connection status, the user, the server and the daemon.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Print one JSON object (schema_version 1) instead of aligned lines
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// The snake_case status name, e.g. `connected`.
    pub status: &'static str,
    /// RCIMIWConnectionStatus number.
    pub status_code: i32,
    /// The user connected or connecting as.
    pub user_id: Option<String>,
    /// The upstream server in use (of several configured: the one connected to,
    /// else the one dialed last).
    pub server: String,
    /// Local clients attached.
    pub clients: u32,
    /// Seconds since the daemon started.
    pub uptime_s: u64,
    /// Successful reconnections.
    pub reconnects: u64,
    /// The last error the link met.
    pub last_error: Option<ErrorJson>,
    /// The daemon's version.
    pub daemon_version: String,
    /// The daemon's IPC protocol version.
    pub protocol: u32,
    /// Connection attempt since the last success (0 when connected or idle).
    pub attempt: u32,
    /// Milliseconds until the next attempt, while waiting to retry.
    pub retry_in_ms: Option<u64>,
    /// Where the token and the database key are kept (`secret-service`,
    /// `keyutils`, `memory`, ...); empty from a daemon older than protocol 6.
    pub token_store: String,
    /// The user database, once one was opened.
    pub database: Option<DatabaseJson>,
    /// Messages received and not read, over every conversation (0 when no
    /// database is open).
    pub unread_total: u64,
}

/// The user database in the JSON output.
#[derive(Debug, Serialize)]
pub struct DatabaseJson {
    /// The database file.
    pub path: String,
    /// Whether it is encrypted at rest.
    pub encrypted: bool,
    /// The store that keeps its key (`null` when not encrypted).
    pub key_store: Option<String>,
    /// Why it is not encrypted, when it is not.
    pub plain_reason: Option<String>,
    /// Earlier databases moved aside because their key was lost.
    pub moved_aside: Vec<String>,
}

/// An RC error in the JSON output.
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    /// The RC code.
    pub code: i32,
    /// What it means.
    pub message: String,
}

impl From<&StatusSnapshot> for StatusJson {
    fn from(s: &StatusSnapshot) -> Self {
        Self {
            schema_version: 1,
            status: s.link.status.name(),
            status_code: s.link.status.code(),
            user_id: s.link.user_id.clone(),
            server: s.server.clone(),
            clients: s.clients,
            uptime_s: s.uptime_s,
            reconnects: s.reconnects,
            last_error: s.last_error.as_ref().map(|e| ErrorJson {
                code: e.code,
                message: e.message.clone(),
            }),
            daemon_version: s.daemon_version.clone(),
            protocol: s.protocol,
            attempt: s.link.attempt,
            retry_in_ms: s.link.retry_in_ms,
            token_store: s.token_store.clone(),
            database: s.database.as_deref().map(|d| DatabaseJson {
                path: d.path.clone(),
                encrypted: d.encrypted,
                key_store: d.key_store.clone(),
                plain_reason: d.plain_reason.clone(),
                moved_aside: d.moved_aside.clone(),
            }),
            unread_total: s.unread_total,
        }
    }
}

/// Fetches the status and prints it.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let snapshot = ctx.attach()?.status()?;
    if args.json {
        render_json(&snapshot, out)
    } else {
        render_human(&snapshot, out)
    }
}

/// One JSON object on one line.
pub fn render_json(snapshot: &StatusSnapshot, out: &mut impl Write) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, &StatusJson::from(snapshot)).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// Aligned `label: value` lines.
pub fn render_human(s: &StatusSnapshot, out: &mut impl Write) -> Result<(), CliError> {
    let mut line = |label: &str, value: String| writeln!(out, "{:<12}{value}", format!("{label}:"));
    let link = &s.link;
    let mut status = format!(
        "{} ({})",
        view::paint(view::status_paint(link.status), link.status.name()),
        link.status.code()
    );
    if link.code != 0 {
        status.push_str(&format!(", because of error {}", link.code));
    }
    line("status", status)?;
    line(
        "user",
        link.user_id.clone().unwrap_or_else(|| "-".to_owned()),
    )?;
    line("server", s.server.clone())?;
    line("clients", s.clients.to_string())?;
    line("uptime", duration(s.uptime_s))?;
    line("reconnects", s.reconnects.to_string())?;
    line("unread", s.unread_total.to_string())?;
    let last_error = match &s.last_error {
        Some(e) => {
            // Prefer our meaning for a code we know; the daemon's text otherwise.
            let code = RcCode(e.code);
            let meaning = code.name().map_or(e.message.as_str(), |_| code.meaning());
            format!("{}: {meaning}", e.code)
        }
        None => "none".to_owned(),
    };
    line("last error", last_error)?;
    line(
        "daemon",
        format!("rcimd {}, protocol {}", s.daemon_version, s.protocol),
    )?;
    line("key store", s.token_store.clone())?;
    if let Some(db) = &s.database {
        line("database", database(db))?;
        if !db.moved_aside.is_empty() {
            line(
                "set aside",
                format!(
                    "{} earlier database(s) whose key was lost (rcimctl doctor explains)",
                    db.moved_aside.len()
                ),
            )?;
        }
    }
    if link.attempt > 0 || link.retry_in_ms.is_some() {
        let next = match link.retry_in_ms {
            Some(ms) => format!(", next in {:.1} s", ms as f64 / 1000.0),
            None => String::new(),
        };
        line("retry", format!("attempt {}{next}", link.attempt))?;
    }
    Ok(())
}

/// `encrypted (key in keyutils)` or `NOT encrypted (why)`.
pub fn database(db: &DatabaseInfo) -> String {
    match (&db.key_store, &db.plain_reason) {
        _ if db.encrypted => format!(
            "encrypted (key in {})",
            db.key_store.as_deref().unwrap_or("?")
        ),
        (_, Some(reason)) => format!("NOT encrypted ({reason})"),
        _ => "NOT encrypted".to_owned(),
    }
}

/// `3725` → `1h 2m 5s`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_client::{ConnectionStatus, LinkState};
    use rcim_proto::status::ErrorInfo;

    fn snapshot() -> StatusSnapshot {
        StatusSnapshot {
            link: LinkState {
                status: ConnectionStatus::Suspend,
                code: 30011,
                user_id: Some("alice".into()),
                attempt: 3,
                retry_in_ms: Some(2500),
            },
            server: "rcim://127.0.0.1:7000".into(),
            clients: 2,
            uptime_s: 3725,
            reconnects: 4,
            last_error: Some(ErrorInfo::from_code(RcCode::RC_SOCKET_DISCONNECTED)),
            daemon_version: "0.1.0".into(),
            protocol: 1,
            token_store: "keyutils".into(),
            database: Some(Box::new(DatabaseInfo {
                path: "/data/users/alice/rcim.db".into(),
                encrypted: true,
                key_store: Some("keyutils".into()),
                plain_reason: None,
                moved_aside: vec!["/data/users/alice/rcim.db.unreadable-20261203T181500Z".into()],
            })),
            unread_total: 4,
        }
    }

    #[test]
    fn json_has_every_documented_key() {
        let mut out = Vec::new();
        render_json(&snapshot(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let expected = serde_json::json!({
            "schema_version": 1,
            "status": "suspend",
            "status_code": 8,
            "user_id": "alice",
            "server": "rcim://127.0.0.1:7000",
            "clients": 2,
            "uptime_s": 3725,
            "reconnects": 4,
            "last_error": {"code": 30011, "message": RcCode(30011).meaning()},
            "daemon_version": "0.1.0",
            "protocol": 1,
            "attempt": 3,
            "retry_in_ms": 2500,
            "token_store": "keyutils",
            "database": {
                "path": "/data/users/alice/rcim.db",
                "encrypted": true,
                "key_store": "keyutils",
                "plain_reason": null,
                "moved_aside": ["/data/users/alice/rcim.db.unreadable-20261203T181500Z"],
            },
            "unread_total": 4,
        });
        assert_eq!(value, expected);
    }

    #[test]
    fn json_nulls() {
        let mut s = snapshot();
        s.link = LinkState::idle();
        s.last_error = None;
        let value = serde_json::to_value(StatusJson::from(&s)).unwrap();
        assert_eq!(value["user_id"], serde_json::Value::Null);
        assert_eq!(value["last_error"], serde_json::Value::Null);
        assert_eq!(value["retry_in_ms"], serde_json::Value::Null);
        assert_eq!(value["status"], "unconnected");
    }

    #[test]
    fn human_lines_are_aligned_and_complete() {
        let mut out = Vec::new();
        render_human(&snapshot(), &mut out).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        let expected = format!(
            "\
status:     suspend (8), because of error 30011
user:       alice
server:     rcim://127.0.0.1:7000
clients:    2
uptime:     1h 2m 5s
reconnects: 4
unread:     4
last error: 30011: {}
daemon:     rcimd 0.1.0, protocol 1
key store:  keyutils
database:   encrypted (key in keyutils)
set aside:  1 earlier database(s) whose key was lost (rcimctl doctor explains)
retry:      attempt 3, next in 2.5 s
",
            RcCode(30011).meaning()
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn idle_daemon_has_no_retry_line() {
        let mut s = snapshot();
        s.link = LinkState::idle();
        s.last_error = None;
        let mut out = Vec::new();
        render_human(&s, &mut out).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        assert!(text.contains("user:       -\n"), "{text}");
        assert!(text.contains("last error: none\n"), "{text}");
        assert!(!text.contains("retry"), "{text}");
    }

    #[test]
    fn a_plain_database_says_why() {
        let mut s = snapshot();
        s.token_store = "memory".into();
        s.database = Some(Box::new(DatabaseInfo {
            path: "/d/rcim.db".into(),
            encrypted: false,
            key_store: None,
            plain_reason: Some("the memory token store has no safe place for a key".into()),
            moved_aside: Vec::new(),
        }));
        let mut out = Vec::new();
        render_human(&s, &mut out).unwrap();
        let text = anstream::adapter::strip_str(&String::from_utf8(out).unwrap()).to_string();
        assert!(
            text.contains(
                "database:   NOT encrypted (the memory token store has no safe place for a key)\n"
            ),
            "{text}"
        );
        assert!(!text.contains("set aside"), "{text}");
        let value = serde_json::to_value(StatusJson::from(&s)).unwrap();
        assert_eq!(value["database"]["encrypted"], false);
        assert_eq!(value["database"]["key_store"], serde_json::Value::Null);
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(duration(90_061), "1d 1h 1m 1s");
    }
}
