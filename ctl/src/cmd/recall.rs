//! `rcimctl recall --uid UID`: RC's `recallMessage` for a message this user sent.
//!
//! The server replaces the message with an `RC:RcNtf` recall notification on
//! every device of both sides (uid and sent time kept, content gone). The JSON
//! form is `{"schema_version":1,"uid":"..","recalled":true}`; a refusal is an
//! error with RC's code (25101: no such message, or not yours).

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use serde::Serialize;
use std::io::Write;

/// Recall a message you sent, by its uid (see `rcimctl history --json`).
///
/// Every device of both sides replaces it with a recall notification; apps
/// attached to rcimd get a message_recalled event. Needs a connection.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// The message's server uid
    #[arg(long, value_name = "UID")]
    pub uid: String,

    /// Print one JSON object (schema_version 1) instead of a line
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct RecallJson<'a> {
    /// Bumped when a key changes meaning or disappears.
    pub schema_version: u32,
    /// The recalled message's uid.
    pub uid: &'a str,
    /// Always true (a refusal is an error).
    pub recalled: bool,
}

/// Asks rcimd to recall the message and prints the outcome.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let code = client.recall_uid(args.uid.clone())?;
    CliError::check("recall", code)?;
    render(&args.uid, args.json, out)
}

/// The outcome: one line, or one JSON object.
pub fn render(uid: &str, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    if json {
        let json = RecallJson {
            schema_version: 1,
            uid,
            recalled: true,
        };
        serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(out, "recalled {}", crate::view::one_line(uid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_uid() {
        let mut out = Vec::new();
        render("u-1", false, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "recalled u-1\n");
        let mut out = Vec::new();
        render("u-1", true, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"schema_version\":1,\"uid\":\"u-1\",\"recalled\":true}\n"
        );
    }
}
