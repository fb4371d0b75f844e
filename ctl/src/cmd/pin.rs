//! `rcimctl pin --with ID [--off]`: RC's `changeConversationTopStatus`.

use super::Context;
use super::with::WithArgs;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view;
use std::io::Write;

/// Pin a conversation to the top of the list (or unpin it with --off).
///
/// Kept on this device; `conversations --json` shows it as `is_top`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    #[command(flatten)]
    pub conversation: WithArgs,

    /// Unpin instead
    #[arg(long)]
    pub off: bool,
}

/// Pins or unpins.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let key = args.conversation.conversation();
    let code = ctx.attach()?.set_conversation_top(key.clone(), !args.off)?;
    CliError::check("pin", code)?;
    let what = if args.off { "unpinned" } else { "pinned" };
    writeln!(out, "{what} {}", view::peer(&key))?;
    Ok(())
}
