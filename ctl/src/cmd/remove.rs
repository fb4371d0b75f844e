//! `rcimctl remove --with ID`: RC's `removeConversation`.

use super::Context;
use super::with::WithArgs;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view;
use std::io::Write;

/// Take a conversation off the list (its messages stay, and are read).
///
/// A new message in it brings it back. Its pin, mute level and draft stay.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    #[command(flatten)]
    pub conversation: WithArgs,
}

/// Removes it.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let key = args.conversation.conversation();
    let code = ctx.attach()?.remove_conversation(key.clone())?;
    CliError::check("remove", code)?;
    writeln!(out, "removed {} from the list", view::peer(&key))?;
    Ok(())
}
