//! `rcimctl conversations`: RC's `getConversations` from the local database, most
//! recent first, each with its unread count and last message.
//!
//! The JSON form is `{"schema_version":1,"conversations":[...]}` with each entry as
//! [`ConversationJson`](crate::view::ConversationJson).

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view::{self, ConversationJson};
use rcim_client::{Conversation, MAX_CONVERSATIONS_PER_QUERY};
use serde::Serialize;
use std::io::Write;

/// List conversations, most recent first, with unread counts and the last message.
///
/// Reads rcimd's local database, so it works offline. One aligned line per
/// conversation: TYPE  TARGET  UNREAD  TIME  LAST MESSAGE (times in UTC). Page back
/// with --before set to the operation_time_ms of the last one shown.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// How many conversations, 1 to 50
    #[arg(
        long,
        value_name = "N",
        default_value_t = MAX_CONVERSATIONS_PER_QUERY,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONVERSATIONS_PER_QUERY)),
    )]
    pub limit: u32,

    /// Only conversations whose newest message is older than this (ms since the
    /// epoch); 0 for the most recent
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        value_parser = clap::value_parser!(i64).range(0..),
    )]
    pub before: i64,

    /// Print one JSON object (schema_version 1) instead of lines
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct ConversationsJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// Most recent first.
    pub conversations: Vec<ConversationJson>,
}

/// Fetches the conversations (of every type) and prints them.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let answer = client.get_conversations(&[], args.before, args.limit)?;
    let conversations = answer.map_err(|code| CliError::rc("conversations", code))?;
    if args.json {
        render_json(&conversations, out)
    } else {
        render_human(&conversations, out)
    }
}

/// One JSON object on one line.
pub fn render_json(conversations: &[Conversation], out: &mut impl Write) -> Result<(), CliError> {
    let json = ConversationsJson {
        schema_version: 1,
        conversations: conversations.iter().map(ConversationJson::from).collect(),
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// One aligned line per conversation; a note when there is none.
pub fn render_human(conversations: &[Conversation], out: &mut impl Write) -> Result<(), CliError> {
    if conversations.is_empty() {
        writeln!(out, "no conversations")?;
        return Ok(());
    }
    let rows: Vec<[String; 5]> = conversations.iter().map(row).collect();
    let mut widths = [0; 4];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for [kind, target, unread, time, last] in rows {
        writeln!(
            out,
            "{kind:<w0$}  {target:<w1$}  {unread:>w2$}  {time:<w3$}  {last}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )?;
    }
    Ok(())
}

/// The cells of one conversation: type, target, unread, time, last message.
fn row(c: &Conversation) -> [String; 5] {
    let unread = match c.unread_count {
        0 => "-".to_owned(),
        n => format!("{n} unread"),
    };
    let (time, last) = match &c.last_message {
        Some(m) => (
            view::time(view::message_time(m)),
            view::truncate(
                &format!("{}: {}", view::one_line(&m.sender), view::preview(m)),
                view::PREVIEW_CHARS,
            ),
        ),
        None => (view::time(c.operation_time_ms), String::new()),
    };
    [
        c.key.kind.name().to_owned(),
        view::one_line(&c.key.target_id),
        unread,
        time,
        last,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::message;
    use rcim_client::{ConversationKey, Direction};

    fn conversations() -> Vec<Conversation> {
        let mut group_message = message(9, Direction::Receive, &"long ".repeat(20));
        group_message.conversation = ConversationKey::group("team-1");
        group_message.sender = "carol".into();
        group_message.sent_time_ms += 3_600_000;
        vec![
            Conversation {
                key: ConversationKey::group("team-1"),
                unread_count: 12,
                last_message: Some(group_message),
                operation_time_ms: 1_764_263_101_000,
                is_top: false,
                notification_level: 0,
                draft: String::new(),
            },
            Conversation {
                key: ConversationKey::private("bob"),
                unread_count: 0,
                last_message: Some(message(3, Direction::Send, "see you")),
                operation_time_ms: 1_764_259_501_000,
                is_top: false,
                notification_level: 0,
                draft: String::new(),
            },
        ]
    }

    #[test]
    fn lines_are_aligned() {
        let mut out = Vec::new();
        render_human(&conversations(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let long = format!(
            "carol: {}…",
            "long ".repeat(20).chars().take(52).collect::<String>()
        );
        assert_eq!(
            text,
            format!(
                "group    team-1  12 unread  2025-11-27 17:05:01  {long}\n\
                 private  bob             -  2025-11-27 16:05:01  alice: see you\n"
            )
        );
        let mut out = Vec::new();
        render_human(&[], &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no conversations\n");
    }

    #[test]
    fn json_has_unread_counts_and_last_messages() {
        let mut out = Vec::new();
        render_json(&conversations(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], 1);
        let first = &value["conversations"][0];
        assert_eq!(first["conversation_type"], "group");
        assert_eq!(first["target_id"], "team-1");
        assert_eq!(first["unread_count"], 12);
        assert_eq!(first["operation_time_ms"], 1_764_263_101_000_i64);
        assert_eq!(first["last_message"]["sender"], "carol");
        assert_eq!(
            value["conversations"][1]["last_message"]["direction"],
            "send"
        );
    }
}
