//! `rcimctl draft --with ID [--set TEXT | --clear]`: RC's `saveDraftMessage` and
//! `getDraftMessage`, kept on this device.
//!
//! The JSON form is `{"schema_version":1,"draft":"..."}`.

use super::Context;
use super::with::WithArgs;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use serde::Serialize;
use std::io::Write;

/// Show, set or clear a conversation's draft (kept on this device, at most 4 KB).
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    #[command(flatten)]
    pub conversation: WithArgs,

    /// Keep this text as the draft
    #[arg(long, value_name = "TEXT", conflicts_with = "clear")]
    pub set: Option<String>,

    /// Clear the draft
    #[arg(long)]
    pub clear: bool,

    /// Print one JSON object (schema_version 1) instead of the text
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct DraftJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// The draft now (empty: none).
    pub draft: String,
}

/// Sets or clears, then prints the draft.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let key = args.conversation.conversation();
    let new = match (&args.set, args.clear) {
        (Some(text), _) => Some(text.as_str()),
        (None, true) => Some(""),
        (None, false) => None,
    };
    if let Some(text) = new {
        CliError::check("draft", client.save_draft(key.clone(), text)?)?;
    }
    let draft = client
        .draft(key)?
        .map_err(|code| CliError::rc("draft", code))?;
    if args.json {
        serde_json::to_writer(
            &mut *out,
            &DraftJson {
                schema_version: 1,
                draft,
            },
        )
        .map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else if draft.is_empty() {
        writeln!(out, "no draft")?;
    } else {
        writeln!(out, "{draft}")?;
    }
    Ok(())
}
