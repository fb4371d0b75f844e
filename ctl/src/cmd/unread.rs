//! `rcimctl unread`: unread counts from rcimd's database (RC's
//! `getTotalUnreadCount`, `getUnreadCountByConversationTypes`, `getUnreadCount`).
//!
//! rcimd keeps the counts as messages arrive and are read, so this never counts
//! messages. The JSON form is `{"schema_version":1,"unread_count":N}`.

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use rcim_client::{ConversationKey, ConversationType};
use serde::Serialize;
use std::io::Write;

/// Show unread counts: in total, of some conversation types, or of one
/// conversation.
///
/// With no flag: over every conversation. --type (repeatable) limits it to those
/// types; --with names one conversation (a group with --group). Reads rcimd's
/// local database, so it works offline.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// One conversation: a user id (or a group id with --group)
    #[arg(long, value_name = "ID", conflicts_with = "kinds")]
    pub with: Option<String>,

    /// --with is a group id
    #[arg(long, requires = "with")]
    pub group: bool,

    /// Only conversations of this type: private, group or system (repeatable)
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub kinds: Vec<ConversationType>,

    /// Print one JSON object (schema_version 1) instead of a line
    #[arg(long)]
    pub json: bool,
}

/// A conversation type by its snake_case name.
fn parse_type(name: &str) -> Result<ConversationType, String> {
    (1..=5)
        .filter_map(ConversationType::from_code)
        .find(|kind| kind.name() == name)
        .ok_or_else(|| {
            format!("unknown conversation type {name:?}: use private, group, chatroom, system or ultra_group")
        })
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct UnreadJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// The count asked for.
    pub unread_count: u64,
}

/// Fetches the count and prints it.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let answer = match &args.with {
        Some(with) => {
            let kind = if args.group {
                ConversationType::Group
            } else {
                ConversationType::Private
            };
            client.unread_count(ConversationKey {
                kind,
                target_id: with.clone(),
            })?
        }
        None => client.unread_count_by_types(&args.kinds)?,
    };
    let count = answer.map_err(|code| CliError::rc("unread", code))?;
    if args.json {
        render_json(count, out)
    } else {
        writeln!(out, "{count} unread")?;
        Ok(())
    }
}

/// One JSON object on one line.
pub fn render_json(unread_count: u64, out: &mut impl Write) -> Result<(), CliError> {
    let json = UnreadJson {
        schema_version: 1,
        unread_count,
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_by_name() {
        assert_eq!(parse_type("group"), Ok(ConversationType::Group));
        assert!(parse_type("invalid").is_err());
        assert!(parse_type("Group").is_err());
    }

    #[test]
    fn json_shape() {
        let mut out = Vec::new();
        render_json(3, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"schema_version\":1,\"unread_count\":3}\n"
        );
    }
}
