//! `rcimctl history --with ID`: RC's `getMessages` (BEFORE, from the local
//! database) for one conversation, newest first; with `--remote`, RC's
//! `getRemoteHistoryMessages` (the server's copy, messages sent from this user's
//! other devices included; a message not stored here has id 0).
//!
//! The JSON form is `{"schema_version":1,"messages":[...]}` with each message as
//! [`MessageJson`](crate::view::MessageJson).

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view::{self, MessageJson};
use rcim_client::{ConversationKey, ConversationType, MAX_MESSAGES_PER_QUERY, Message, TimeOrder};
use serde::Serialize;
use std::io::Write;

/// Show the latest messages with a user (or in a group), newest first.
///
/// Reads rcimd's local database, so it works offline. One line per message:
/// `TIME  FROM → TO: TEXT` (times in UTC; messages of other types show as
/// [OBJECT:NAME]). Page back with --before set to the oldest sent_time_ms shown.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// The other side: a user id (or a group id with --group)
    #[arg(long, value_name = "ID")]
    pub with: String,

    /// --with is a group id
    #[arg(long, conflicts_with = "system")]
    pub group: bool,

    /// The system conversation with --with
    #[arg(long)]
    pub system: bool,

    /// How many messages, 1 to 20
    #[arg(
        long,
        value_name = "N",
        default_value_t = MAX_MESSAGES_PER_QUERY,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_MESSAGES_PER_QUERY)),
    )]
    pub limit: u32,

    /// Only messages sent before this time (ms since the epoch); 0 for the newest
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

    /// Read the server's copy of the conversation instead of the local database
    /// (needs a connection; includes messages sent from your other devices)
    #[arg(long)]
    pub remote: bool,
}

impl Args {
    /// The conversation the flags name.
    pub fn conversation(&self) -> ConversationKey {
        let kind = if self.group {
            ConversationType::Group
        } else if self.system {
            ConversationType::System
        } else {
            ConversationType::Private
        };
        ConversationKey {
            kind,
            target_id: self.with.clone(),
        }
    }
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct HistoryJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// Newest first.
    pub messages: Vec<MessageJson>,
}

/// Fetches the messages and prints them.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let me = client.welcome().status.link.user_id.clone();
    let answer = if args.remote {
        client.get_remote_history(args.conversation(), args.before, args.limit)?
    } else {
        client.get_messages(
            args.conversation(),
            args.before,
            TimeOrder::Before,
            args.limit,
        )?
    };
    let messages = answer.map_err(|code| CliError::rc("history", code))?;
    if args.json {
        render_json(&messages, out)
    } else {
        render_human(&messages, me.as_deref(), out)
    }
}

/// One JSON object on one line.
pub fn render_json(messages: &[Message], out: &mut impl Write) -> Result<(), CliError> {
    let json = HistoryJson {
        schema_version: 1,
        messages: messages.iter().map(MessageJson::from).collect(),
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// One line per message, as given (newest first); a note when there is none.
pub fn render_human(
    messages: &[Message],
    me: Option<&str>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if messages.is_empty() {
        writeln!(out, "no messages")?;
    }
    for message in messages {
        writeln!(out, "{}", view::message_line(message, me))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::message;
    use rcim_client::Direction;

    #[test]
    fn lines_are_newest_first_as_given() {
        let mut newer = message(2, Direction::Send, "hi bob");
        newer.sent_time_ms += 60_000;
        let older = message(1, Direction::Receive, "hi alice");
        let mut out = Vec::new();
        render_human(&[newer, older], Some("alice"), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2025-11-27 16:06:01  alice → bob: hi bob\n\
             2025-11-27 16:05:01  bob → alice: hi alice\n"
        );
        let mut out = Vec::new();
        render_human(&[], None, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no messages\n");
    }

    #[test]
    fn json_wraps_the_messages_with_a_schema_version() {
        let mut out = Vec::new();
        render_json(&[message(1, Direction::Receive, "x")], &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["messages"][0]["text"], "x");
        assert_eq!(value["messages"][0]["id"], 1);
        let mut out = Vec::new();
        render_json(&[], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"schema_version\":1,\"messages\":[]}\n"
        );
    }

    #[test]
    fn flags_name_the_conversation() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let parse = |argv: &[&str]| Cli::try_parse_from([&["history"], argv].concat());
        let args = parse(&["--with", "bob"]).unwrap().args;
        assert_eq!(args.conversation(), ConversationKey::private("bob"));
        assert_eq!((args.limit, args.before, args.json), (20, 0, false));
        let args = parse(&["--with", "t", "--group", "--limit", "5"])
            .unwrap()
            .args;
        assert_eq!(args.conversation(), ConversationKey::group("t"));
        assert_eq!(args.limit, 5);
        for bad in [
            &["--with", "bob", "--limit", "0"][..],
            &["--with", "bob", "--limit", "21"],
            &["--with", "bob", "--before", "-5"],
            &["--with", "bob", "--group", "--system"],
            &[],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
