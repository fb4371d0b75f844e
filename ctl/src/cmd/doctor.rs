//! `rcimctl doctor`: everything worth knowing when rcimd does not do what you
//! expect, in one place, with what to do next.
//!
//! It fetches four things and then renders them: the socket path and whether a
//! daemon answers there (with its status), the configuration rcimd would use from
//! this shell (`rcimd --print-config`), and which OS token stores work on this
//! machine (`rcimd --check-token-stores`). The last two are asked of the `rcimd`
//! binary, not computed here, so the CLI stays free of the keyring crates and can
//! never disagree with the daemon about them. The running daemon's status says
//! which store it picked and whether its database is encrypted (and, when a lost
//! key made it move a database aside, doctor explains what happened).

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use rcim_client::StatusSnapshot;
use rcim_proto::status::DatabaseInfo;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Check the socket, the daemon, its configuration and the token stores, and say
/// what to fix.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// The rcimd binary to ask about the configuration and the token stores
    /// [default: the one beside rcimctl, else rcimd on PATH]
    #[arg(long, value_name = "PATH")]
    pub rcimd: Option<PathBuf>,
}

/// What doctor found.
#[derive(Debug)]
pub struct Findings {
    /// The socket path asked.
    pub socket: PathBuf,
    /// The status, or why the daemon could not be asked.
    pub daemon: Result<StatusSnapshot, String>,
    /// `$XDG_RUNTIME_DIR` (or its fallback).
    pub runtime_dir: PathBuf,
    /// `rcimd --print-config`, or why it failed.
    pub config: Result<String, String>,
    /// `rcimd --check-token-stores`, or why it failed.
    pub stores: Result<String, String>,
}

/// Fetches the findings and prints them. Exit status 3 when no daemon answers.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let socket = ctx
        .options
        .socket
        .clone()
        .unwrap_or_else(rcim_proto::paths::default_socket_path);
    let (daemon, failure) = match ctx.attach().and_then(|client| Ok(client.status()?)) {
        Ok(status) => (Ok(status), None),
        Err(e) => (Err(e.message().unwrap_or_default()), Some(e)),
    };
    let rcimd = args.rcimd.clone().unwrap_or_else(find_rcimd);
    let findings = Findings {
        socket,
        daemon,
        runtime_dir: rcim_proto::paths::runtime_dir(),
        config: ask_rcimd(&rcimd, "--print-config"),
        stores: ask_rcimd(&rcimd, "--check-token-stores"),
    };
    render(&findings, out)?;
    // Everything is printed either way; a daemon that does not answer sets the
    // exit status (3), with its message repeated last.
    failure.map_or(Ok(()), Err)
}

/// `rcimd` beside this executable (a `cargo install` or a build dir), else on PATH.
fn find_rcimd() -> PathBuf {
    let name = format!("rcimd{}", std::env::consts::EXE_SUFFIX);
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(&name)))
        .filter(|path| path.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs `rcimd FLAG` (at most 30 s: a locked keyring may hang) and returns its
/// output, or what went wrong.
fn ask_rcimd(rcimd: &Path, flag: &str) -> Result<String, String> {
    let mut child = Command::new(rcimd)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", rcimd.display()))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} {flag} did not answer within 30 s",
                    rcimd.display()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(stderr.trim_start_matches("rcimd: ").to_owned())
    }
}

/// Renders the findings as sections of indented lines, each problem followed by
/// what to do.
pub fn render(f: &Findings, out: &mut impl Write) -> Result<(), CliError> {
    writeln!(out, "socket:       {}", f.socket.display())?;
    writeln!(out, "runtime dir:  {}", f.runtime_dir.display())?;
    match &f.daemon {
        Ok(s) => {
            writeln!(
                out,
                "daemon:       answers (rcimd {}, protocol {})",
                s.daemon_version, s.protocol
            )?;
            let mut status = format!("{} ({})", s.link.status, s.link.status.code());
            if let Some(user) = &s.link.user_id {
                status.push_str(&format!(" as {user}"));
            }
            writeln!(out, "status:       {status}")?;
            writeln!(out, "server:       {}", s.server)?;
            if let Some(e) = &s.last_error {
                writeln!(out, "last error:   {}: {}", e.code, e.message)?;
            }
            if !s.token_store.is_empty() {
                writeln!(
                    out,
                    "token store:  {} (the running daemon's)",
                    s.token_store
                )?;
            }
            match s.database.as_deref() {
                Some(db) => render_database(db, out)?,
                None => writeln!(
                    out,
                    "database:     none open yet (it opens at the first connect)"
                )?,
            }
        }
        Err(e) => {
            // The client's message already says how to start the daemon.
            writeln!(out, "daemon:       does not answer: {e}")?;
        }
    }
    writeln!(
        out,
        "configuration (rcimd --print-config, from this shell):"
    )?;
    match &f.config {
        Ok(text) => indent(text, out)?,
        Err(e) => writeln!(out, "  problem: {e}")?,
    }
    writeln!(
        out,
        "token stores on this machine (rcimd --check-token-stores):"
    )?;
    match &f.stores {
        Ok(text) => {
            indent(text, out)?;
            if text.contains("auto chooses: none") && text.contains("configured: auto") {
                writeln!(
                    out,
                    "  fix: start a keyring daemon, run rcimd inside a session keyring (keyctl session -), or set token_store = \"memory\""
                )?;
            }
        }
        Err(e) => writeln!(out, "  problem: {e}")?,
    }
    writeln!(
        out,
        "  the running daemon logs its choice: journalctl --user -u rcimd | grep 'token store'"
    )?;
    Ok(())
}

/// The database lines: encrypted or not and why, and what a lost key did.
fn render_database(db: &DatabaseInfo, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "database:     {}", db.path)?;
    writeln!(out, "  {}", super::status::database(db))?;
    if !db.encrypted {
        writeln!(
            out,
            "  fix: run rcimd with an OS keyring (--token-store auto, secret-service or keyutils); it encrypts the database in place at its next start"
        )?;
    }
    if !db.moved_aside.is_empty() {
        writeln!(
            out,
            "  the key of an earlier database was lost (a new or reset keyring), so rcimd moved it aside and started a new one, which the sync filled again from the server:"
        )?;
        for path in &db.moved_aside {
            writeln!(out, "    {path}")?;
        }
        writeln!(
            out,
            "  nothing was deleted. Messages that were still waiting to be sent in the old database could not be counted or sent without its key. If the old keyring comes back (a backup), stop rcimd and move the file back to rcim.db; otherwise the moved files can be deleted"
        )?;
    }
    Ok(())
}

fn indent(text: &str, out: &mut impl Write) -> std::io::Result<()> {
    for line in text.lines() {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_daemon_and_no_keyring_say_what_to_do() {
        let findings = Findings {
            socket: "/run/user/1000/rcim/rcimd.sock".into(),
            daemon: Err("rcimd is not running".into()),
            runtime_dir: "/run/user/1000".into(),
            config: Ok("token_store = \"auto\"".into()),
            stores: Ok(
                "configured: auto\nsecret-service: does not work: no bus\nauto chooses: none"
                    .into(),
            ),
        };
        let mut out = Vec::new();
        render(&findings, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("daemon:       does not answer: rcimd is not running"),
            "{text}"
        );
        assert!(
            text.contains("  secret-service: does not work: no bus"),
            "{text}"
        );
        assert!(text.contains("fix: start a keyring daemon"), "{text}");
    }

    #[test]
    fn a_lost_key_is_explained() {
        use rcim_client::{ConnectionStatus, LinkState};
        let findings = Findings {
            socket: "/run/user/1000/rcim/rcimd.sock".into(),
            daemon: Ok(StatusSnapshot {
                link: LinkState {
                    status: ConnectionStatus::Connected,
                    ..LinkState::idle()
                },
                server: "rcim://127.0.0.1:7000".into(),
                clients: 1,
                uptime_s: 3,
                reconnects: 0,
                last_error: None,
                daemon_version: "0.1.0".into(),
                protocol: rcim_proto::PROTOCOL_VERSION,
                unread_total: 0,
                token_store: "keyutils".into(),
                database: Some(Box::new(DatabaseInfo {
                    path: "/d/users/alice/rcim.db".into(),
                    encrypted: true,
                    key_store: Some("keyutils".into()),
                    plain_reason: None,
                    moved_aside: vec!["/d/users/alice/rcim.db.unreadable-20261203T181500Z".into()],
                })),
            }),
            runtime_dir: "/run/user/1000".into(),
            config: Ok("token_store = \"keyutils\"".into()),
            stores: Ok("configured: keyutils".into()),
        };
        let mut out = Vec::new();
        render(&findings, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("token store:  keyutils"), "{text}");
        assert!(text.contains("  encrypted (key in keyutils)"), "{text}");
        assert!(
            text.contains("the key of an earlier database was lost"),
            "{text}"
        );
        assert!(
            text.contains("    /d/users/alice/rcim.db.unreadable-20261203T181500Z"),
            "{text}"
        );
        assert!(text.contains("nothing was deleted"), "{text}");
    }
}
