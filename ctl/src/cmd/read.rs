//! `rcimctl read --with ID [--group]`: marks a conversation read on every device
//! of this user (rcim's `markRead`).
//!
//! rcimd clears the conversation's unread count up to the newest message (or
//! `--up-to`), sends RC's read notification (`RC:ReadNtf`) to the peer of a private
//! conversation and RC's read-status sync (`RC:SRSMsg`) to this user's other
//! devices. Both are queued in rcimd's database first, so they go out after a
//! reconnect too. The JSON form is `{"schema_version":1,"conversation_type":..,
//! "target_id":..,"unread_count":N}`, `unread_count` being what is left unread
//! afterwards.

use super::Context;
use super::with::WithArgs;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view;
use rcim_client::ConversationKey;
use serde::Serialize;
use std::io::Write;

/// Mark a conversation read on every device, and tell a private peer.
///
/// Clears the unread count up to the newest message (or --up-to), sends RC's read
/// notification to the peer of a private conversation (their sent messages show as
/// read) and syncs the read position to your other devices. Works offline: what is
/// to be sent waits in rcimd's database until it is connected.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// The conversation.
    #[command(flatten)]
    pub target: WithArgs,

    /// Read up to the message sent at this time (ms since the epoch); 0 for the
    /// newest. A time more than a minute ahead of this machine's clock is refused.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        value_parser = clap::value_parser!(i64).range(0..),
    )]
    pub up_to: i64,

    /// Print one JSON object (schema_version 1) instead of a line
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct ReadJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// `private`, `group` or `system`.
    pub conversation_type: &'static str,
    /// The other side (peer, group, system sender).
    pub target_id: String,
    /// What is left unread in it afterwards.
    pub unread_count: u64,
}

/// Marks the conversation read, then reads what is left unread.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let conversation = args.target.conversation();
    let code = client.mark_read(conversation.clone(), args.up_to)?;
    CliError::check("read", code)?;
    let unread = client
        .unread_count(conversation.clone())?
        .map_err(|code| CliError::rc("read", code))?;
    if args.json {
        render_json(&conversation, unread, out)
    } else {
        render_human(&conversation, unread, out)
    }
}

/// One JSON object on one line.
pub fn render_json(
    conversation: &ConversationKey,
    unread_count: u64,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let json = ReadJson {
        schema_version: 1,
        conversation_type: conversation.kind.name(),
        target_id: conversation.target_id.clone(),
        unread_count,
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// `read private bob (0 unread left)`.
pub fn render_human(
    conversation: &ConversationKey,
    unread_count: u64,
    out: &mut impl Write,
) -> Result<(), CliError> {
    writeln!(
        out,
        "read {} {} ({unread_count} unread left)",
        conversation.kind.name(),
        view::one_line(&conversation.target_id)
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_both_forms() {
        let bob = ConversationKey::private("bob");
        let mut human = Vec::new();
        render_human(&bob, 0, &mut human).unwrap();
        assert_eq!(
            String::from_utf8(human).unwrap(),
            "read private bob (0 unread left)\n"
        );
        let mut json = Vec::new();
        render_json(&ConversationKey::group("team"), 2, &mut json).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["conversation_type"], "group");
        assert_eq!(value["target_id"], "team");
        assert_eq!(value["unread_count"], 2);
    }
}
