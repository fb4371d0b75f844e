//! `rcimctl mute --with ID [--level N | --off]`: RC's
//! `changeConversationNotificationLevel` (do-not-disturb), synced to the server.

use super::Context;
use super::with::WithArgs;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view;
use std::io::Write;

/// Mute a conversation (do-not-disturb), on this device and on the server.
///
/// Sets RC's push notification level: 5 (the default here) nothing notifies; 1
/// only mentions; 2 only mentions of you; 4 only mentions of everyone; -1 every
/// message; 0 not set. --off sets 0. rcimd keeps it and sends it to the server
/// (as RC's /conversation/notification/set.json sets it), after a reconnect if
/// it is offline now.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    #[command(flatten)]
    pub conversation: WithArgs,

    /// RC's notification level: -1, 0, 1, 2, 4 or 5
    #[arg(
        long,
        value_name = "N",
        default_value_t = rcim_proto::message::NOTIFICATION_BLOCKED,
        allow_negative_numbers = true,
        value_parser = parse_level,
        conflicts_with = "off",
    )]
    pub level: i32,

    /// Unmute (level 0, not set)
    #[arg(long)]
    pub off: bool,
}

/// One of RC's levels.
fn parse_level(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .ok()
        .filter(|level| rcim_proto::message::NOTIFICATION_LEVELS.contains(level))
        .ok_or_else(|| format!("{text:?} is not one of RC's levels -1, 0, 1, 2, 4, 5"))
}

/// Sets the level.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let key = args.conversation.conversation();
    let level = if args.off { 0 } else { args.level };
    let code = ctx.attach()?.set_notification_level(key.clone(), level)?;
    CliError::check("mute", code)?;
    writeln!(out, "notification level of {} is {level}", view::peer(&key))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rc_levels_parse() {
        assert_eq!(parse_level("-1"), Ok(-1));
        assert_eq!(parse_level("5"), Ok(5));
        assert!(parse_level("3").is_err());
        assert!(parse_level("x").is_err());
    }
}
