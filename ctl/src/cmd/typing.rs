//! `rcimctl typing --with ID`: RC's `sendTypingStatus` from the command line.
//!
//! Tells the peer of a private conversation that this user is typing. rcimd sends
//! at most one per conversation every 6 s (RC's limit); a call within that
//! interval succeeds and sends nothing. Delivered to the peer's online devices
//! only, never stored.

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use rcim_client::ConversationKey;
use std::io::Write;

/// Tell a user you are typing (private conversations only, as RC).
///
/// At most one typing status per conversation goes out every 6 seconds; the peer
/// sees it for 6 seconds unless renewed. Needs rcimd to be connected.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// The peer's user id
    #[arg(long, value_name = "ID")]
    pub with: String,

    /// The type name of what is being typed
    #[arg(long = "type", value_name = "NAME", default_value = "RC:TxtMsg")]
    pub content_type: String,
}

/// Sends the typing status.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let code =
        client.send_typing_status(ConversationKey::private(&args.with), &args.content_type)?;
    CliError::check("typing", code)?;
    writeln!(out, "typing status sent to {}", args.with)?;
    Ok(())
}
