//! `rcimctl search QUERY`: full-text search of rcimd's local database.
//!
//! The query is words taken literally (quotes, `*`, `OR`, `-` … are searched
//! for, never read as syntax); every word must match the start of a word. The
//! JSON form is `{"schema_version":1,"messages":[...],"next":{"before_time_ms",
//! "before_id"}}`, `next` being null on the last page.

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view::{self, MessageJson};
use rcim_client::{ConversationKey, ConversationType, Message};
use rcim_proto::ipc::{MAX_SEARCH_RESULTS, SearchQuery};
use serde::Serialize;
use std::io::Write;

/// Search the messages stored on this device, newest first.
///
/// Text messages are searched by their text, files by name, other types by
/// their searchable words. Page back with --before-time and --before-id set to
/// the last result shown (the JSON form gives them as `next`).
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// The words to find
    #[arg(value_name = "QUERY")]
    pub query: String,

    /// Only the conversation with this user (or group, with --group)
    #[arg(long, value_name = "ID")]
    pub with: Option<String>,

    /// --with is a group id
    #[arg(long, requires = "with")]
    pub group: bool,

    /// Only messages from this sender
    #[arg(long, value_name = "USER")]
    pub from: Option<String>,

    /// Only messages sent at or after this time (ms since the epoch)
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub since: i64,

    /// The page: only results older than this sent time (ms) …
    #[arg(long, value_name = "MS", default_value_t = 0,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub before_time: i64,

    /// … and, at that same time, with a smaller id
    #[arg(long, value_name = "ID", default_value_t = 0,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub before_id: i64,

    /// How many results, 1 to 100
    #[arg(long, value_name = "N", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SEARCH_RESULTS)))]
    pub limit: u32,

    /// Print one JSON object (schema_version 1) instead of lines
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The search the flags describe.
    pub fn query(&self) -> SearchQuery {
        SearchQuery {
            text: self.query.clone(),
            conversation: self.with.as_ref().map(|id| ConversationKey {
                kind: if self.group {
                    ConversationType::Group
                } else {
                    ConversationType::Private
                },
                target_id: id.clone(),
            }),
            sender: self.from.clone(),
            start_time_ms: self.since,
            before_time_ms: self.before_time,
            before_id: self.before_id,
            count: self.limit,
        }
    }
}

/// Where the next page starts.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct NextPage {
    /// Pass as --before-time.
    pub before_time_ms: i64,
    /// Pass as --before-id.
    pub before_id: i64,
}

/// The `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct SearchJson {
    /// Bumped when a key changes meaning or disappears.
    pub schema_version: u32,
    /// Newest first.
    pub messages: Vec<MessageJson>,
    /// The next page, or null when this page was not full.
    pub next: Option<NextPage>,
}

/// Searches and prints.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let me = client.welcome().status.link.user_id.clone();
    let found = client
        .search_messages(args.query())?
        .map_err(|code| CliError::rc("search", code))?;
    if args.json {
        render_json(&found, args.limit, out)
    } else {
        render_human(&found, me.as_deref(), out)
    }
}

/// One JSON object on one line.
pub fn render_json(found: &[Message], limit: u32, out: &mut impl Write) -> Result<(), CliError> {
    let next = found
        .last()
        .filter(|_| found.len() >= limit as usize)
        .map(|m| NextPage {
            before_time_ms: m.sent_time_ms,
            before_id: m.id,
        });
    let json = SearchJson {
        schema_version: 1,
        messages: found.iter().map(MessageJson::from).collect(),
        next,
    };
    serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// One line per message; a note when nothing matched.
pub fn render_human(
    found: &[Message],
    me: Option<&str>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if found.is_empty() {
        writeln!(out, "no messages match")?;
    }
    for message in found {
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
    fn a_full_page_says_where_the_next_starts() {
        let found = [message(7, Direction::Receive, "hello")];
        let mut out = Vec::new();
        render_json(&found, 1, &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["messages"][0]["text"], "hello");
        assert_eq!(value["next"]["before_id"], 7);
        let mut out = Vec::new();
        render_json(&found, 20, &mut out).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(value["next"].is_null());
        let mut out = Vec::new();
        render_human(&[], None, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "no messages match\n");
    }

    #[test]
    fn flags_make_the_query() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let parse = |argv: &[&str]| Cli::try_parse_from([&["search"], argv].concat());
        let q = parse(&["\"hi\" OR", "--with", "team", "--group"])
            .unwrap()
            .args
            .query();
        assert_eq!(q.text, "\"hi\" OR");
        assert_eq!(q.conversation, Some(ConversationKey::group("team")));
        assert_eq!(q.count, 20);
        for bad in [&["x", "--limit", "101"][..], &["x", "--group"], &[]] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
