//! `rcimctl disconnect [--no-push]` and `rcimctl logout`: RC's
//! `disconnect(receivePush)`, which signs this device out for every local app (the
//! stored token stays for the next `connect`), and the same without push plus the
//! deletion of the stored token. Each prints one short line (or one JSON object
//! with `--json`) and nothing else on success.

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use serde::Serialize;
use std::io::Write;

/// Sign this device out of the IM server, for every local app.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Also stop remote push notifications (RC's disconnect(receivePush = false))
    #[arg(long)]
    pub no_push: bool,

    /// Print one JSON object (schema_version 1) instead of a line
    #[arg(long)]
    pub json: bool,
}

/// Sign out (stopping push) and delete the token rcimd stored, so it does not
/// connect again at its next start.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct LogoutArgs {
    /// Print one JSON object (schema_version 1) instead of a line
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output of `disconnect` and `logout`, schema version 1.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SignedOutJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// `disconnected` or `logged_out`.
    pub status: &'static str,
    /// Whether remote push notifications continue.
    pub receive_push: bool,
    /// Whether the stored token was deleted.
    pub token_deleted: bool,
}

/// Disconnects and prints the result.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let receive_push = !args.no_push;
    let code = ctx.attach()?.disconnect(receive_push)?;
    CliError::check("disconnect", code)?;
    if args.json {
        render_json(
            &SignedOutJson {
                schema_version: 1,
                status: "disconnected",
                receive_push,
                token_deleted: false,
            },
            out,
        )
    } else {
        render(receive_push, out)
    }
}

/// `rcimctl logout`: disconnect without push and delete the stored token.
pub fn logout(ctx: &Context, args: &LogoutArgs, out: &mut impl Write) -> Result<(), CliError> {
    let code = ctx.attach()?.logout()?;
    CliError::check("logout", code)?;
    if args.json {
        render_json(
            &SignedOutJson {
                schema_version: 1,
                status: "logged_out",
                receive_push: false,
                token_deleted: true,
            },
            out,
        )
    } else {
        writeln!(out, "logged out: the stored token was deleted")?;
        Ok(())
    }
}

/// The success line.
pub fn render(receive_push: bool, out: &mut impl Write) -> Result<(), CliError> {
    let push = if receive_push { "kept" } else { "stopped" };
    writeln!(out, "disconnected (push notifications {push})")?;
    Ok(())
}

/// One JSON object on one line.
pub fn render_json(json: &SignedOutJson, out: &mut impl Write) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_each() {
        let mut out = Vec::new();
        render(true, &mut out).unwrap();
        render(false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "disconnected (push notifications kept)\ndisconnected (push notifications stopped)\n"
        );
    }

    #[test]
    fn json_says_what_happened() {
        let mut out = Vec::new();
        let json = SignedOutJson {
            schema_version: 1,
            status: "logged_out",
            receive_push: false,
            token_deleted: true,
        };
        render_json(&json, &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"schema_version": 1, "status": "logged_out",
                "receive_push": false, "token_deleted": true})
        );
    }
}
