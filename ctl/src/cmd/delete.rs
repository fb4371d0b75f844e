//! `rcimctl delete`: deletes messages from rcimd's database (RC's
//! `deleteLocalMessageByIds` and `clearMessages`), on this device only.
//!
//! The JSON form is `{"schema_version":1,"deleted":N}`.

use super::Context;
use super::with::WithArgs;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use rcim_proto::ipc::MAX_DELETE_IDS;
use serde::Serialize;
use std::io::Write;

/// Delete messages on this device: by local id, or a conversation's up to a time.
///
/// `--id N` (repeatable, 1 to 100 ids: the `id` that `history --json` shows), or
/// `--with ID` with `--before MS` (messages sent at or before that time) or
/// `--all`. The conversation's last message and unread count follow.
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = EXIT_STATUS_HELP,
    group = clap::ArgGroup::new("what").required(true).args(["ids", "with"]),
)]
pub struct Args {
    /// A local message id (repeatable)
    #[arg(long = "id", value_name = "N", conflicts_with = "with")]
    pub ids: Vec<i64>,

    #[command(flatten)]
    pub conversation: Option<WithArgs>,

    /// With --with: delete the messages sent at or before this time (ms)
    #[arg(
        long,
        value_name = "MS",
        requires = "with",
        conflicts_with = "all",
        value_parser = clap::value_parser!(i64).range(1..),
    )]
    pub before: Option<i64>,

    /// With --with: delete every message of the conversation
    #[arg(long, requires = "with")]
    pub all: bool,

    /// Print one JSON object (schema_version 1) instead of a line
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct DeleteJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// How many messages were deleted.
    pub deleted: u64,
}

/// Deletes and prints how many.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    // Usage first: a bad combination never reaches rcimd.
    let before = match (&args.conversation, args.before, args.all) {
        (Some(_), Some(before), _) => Some(before),
        (Some(_), None, true) => Some(0),
        (Some(_), None, false) => {
            return Err(CliError::Usage(
                "delete --with needs --before MS or --all".into(),
            ));
        }
        (None, ..) => None,
    };
    if args.ids.len() > MAX_DELETE_IDS as usize {
        return Err(CliError::Usage(format!(
            "at most {MAX_DELETE_IDS} --id per call, got {}",
            args.ids.len()
        )));
    }
    let client = ctx.attach()?;
    let answer = match (&args.conversation, before) {
        (Some(with), Some(before)) => client.delete_messages_before(with.conversation(), before)?,
        _ => client.delete_messages(&args.ids)?,
    };
    let deleted = answer.map_err(|code| CliError::rc("delete", code))?;
    if args.json {
        serde_json::to_writer(
            &mut *out,
            &DeleteJson {
                schema_version: 1,
                deleted,
            },
        )
        .map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(out, "deleted {deleted} message(s)")?;
    }
    Ok(())
}
