//! `rcimctl watch [--since SEQ] [--json]`: every event rcimd sends, as it comes,
//! until interrupted or until rcimd goes away (exit 3).
//!
//! The first line is the status at the moment of attaching (`status`), then one
//! line per event: `status_changed`, `message_received`, `offline_sync_completed`,
//! `lagged` when rcimd found this watcher too slow and replays what it missed, and
//! `skipped` when the watcher fell behind the client library's buffer (the library
//! has the messages replayed too, so none is lost). With `--since SEQ` the stored
//! messages after local id SEQ are replayed first, then live ones follow, with no
//! gap and no repeat. With `--json` each line is one JSON object ([`WatchJson`])
//! with `schema_version` and `event`; messages are [`MessageJson`].

use super::Context;
use crate::EXIT_STATUS_HELP;
use crate::failure::CliError;
use crate::view::{self, MessageJson};
use rcim_client::{ClientError, Event, Lagged, LinkState, RcCode};
use serde::Serialize;
use std::io::Write;

/// Print every event from rcimd as it comes (status changes, messages received,
/// the end of each offline sync, read receipts, reads on other devices, typing,
/// status messages) until interrupted.
///
/// The first line is the status when watching starts. With --since SEQ, the stored
/// messages after local id SEQ come first (give the last id a previous watch
/// printed to resume without a gap or a repeat), then live events. Exits with 3
/// when rcimd goes away. Times are UTC.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Replay the stored messages after this local message id first (0: all)
    #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(i64).range(0..))]
    pub since: Option<i64>,

    /// One JSON object per line (schema_version 1) instead of text lines
    #[arg(long)]
    pub json: bool,
}

/// One line of `--json` output, schema version 1.
#[derive(Debug, Serialize)]
pub struct WatchJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// What happened, and its fields.
    #[serde(flatten)]
    pub event: WatchEvent,
}

/// The kinds of line `watch --json` prints, tagged by `event`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// The status when watching started (the first line).
    Status(StatusJson),
    /// The connection status changed.
    StatusChanged(StatusJson),
    /// A message was stored in the local database.
    MessageReceived {
        /// The message.
        message: MessageJson,
        /// Messages still to come in the current sync package.
        left: u32,
        /// Whether it came through the offline sync.
        offline: bool,
        /// Whether more packages wait on the server.
        has_package: bool,
    },
    /// The backlog after a (re)connect is all here.
    OfflineSyncCompleted,
    /// rcimd found this watcher too slow; it replays the messages after
    /// `resume_from` by itself.
    Lagged {
        /// The last message id rcimd had queued before the gap.
        resume_from: i64,
    },
    /// A stored message was recalled; it is an `RC:RcNtf` now.
    MessageRecalled {
        /// The message as stored now.
        message: MessageJson,
    },
    /// This watcher fell behind the client library's buffer and skipped events;
    /// the messages among them are replayed next.
    Skipped {
        /// How many.
        missed: u64,
    },
    /// The peer of a private conversation read this user's messages up to a time.
    ReadReceipt {
        /// `private`.
        conversation_type: &'static str,
        /// The peer.
        target_id: String,
        /// The send time of the last message read (ms).
        last_message_send_time_ms: i64,
    },
    /// Another device of this user read a conversation up to a time.
    ConversationReadSynced {
        /// `private`, `group` or `system`.
        conversation_type: &'static str,
        /// The other side.
        target_id: String,
        /// The send time read up to (ms).
        last_message_send_time_ms: i64,
    },
    /// Who is typing in a private conversation now (empty: nobody any more).
    TypingStatus {
        /// `private`.
        conversation_type: &'static str,
        /// The peer.
        target_id: String,
        /// The users typing.
        users: Vec<String>,
    },
    /// A status message (never stored).
    StatusMessage {
        /// `private` or `group`.
        conversation_type: &'static str,
        /// The other side.
        target_id: String,
        /// Who sent it.
        sender: String,
        /// Its type name.
        object_name: String,
        /// Its content.
        content: String,
    },
}

/// A link state in `--json` output.
#[derive(Debug, Serialize)]
pub struct StatusJson {
    /// The snake_case status name, e.g. `connected`.
    pub status: &'static str,
    /// RCIMIWConnectionStatus number.
    pub status_code: i32,
    /// The RC error behind the status, 0 if none.
    pub code: i32,
    /// The user connected or connecting as.
    pub user_id: Option<String>,
}

impl From<&LinkState> for StatusJson {
    fn from(link: &LinkState) -> Self {
        Self {
            status: link.status.name(),
            status_code: link.status.code(),
            code: link.code,
            user_id: link.user_id.clone(),
        }
    }
}

/// What `watch` prints one line for.
#[derive(Debug)]
pub enum Line {
    /// The status when watching started.
    Initial(LinkState),
    /// An event, or a lag.
    Event(Result<Event, Lagged>),
}

/// Attaches and prints until the daemon goes away.
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let client = ctx.attach()?;
    let events = client.events();
    let welcome = client.welcome();
    let mut me = welcome.status.link.user_id.clone();
    render(
        &Line::Initial(welcome.status.link.clone()),
        args.json,
        me.as_deref(),
        out,
    )?;
    if let Some(since) = args.since {
        CliError::check("watch --since", client.subscribe(since)?)?;
    }
    for item in events {
        if let Ok(Event::StatusChanged(state)) = &item
            && state.user_id.is_some()
        {
            me.clone_from(&state.user_id);
        }
        render(&Line::Event(item), args.json, me.as_deref(), out)?;
    }
    Err(CliError::Daemon(ClientError::Disconnected))
}

/// One line for `line`, flushed at once.
pub fn render(
    line: &Line,
    json: bool,
    me: Option<&str>,
    out: &mut impl Write,
) -> Result<(), CliError> {
    if json {
        let json = WatchJson {
            schema_version: 1,
            event: to_json(line),
        };
        serde_json::to_writer(&mut *out, &json).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}", human(line, me))?;
    }
    out.flush()?;
    Ok(())
}

fn to_json(line: &Line) -> WatchEvent {
    match line {
        Line::Initial(link) => WatchEvent::Status(link.into()),
        Line::Event(Ok(Event::StatusChanged(link))) => WatchEvent::StatusChanged(link.into()),
        Line::Event(Ok(Event::MessageReceived {
            message,
            left,
            offline,
            has_package,
        })) => WatchEvent::MessageReceived {
            message: message.into(),
            left: *left,
            offline: *offline,
            has_package: *has_package,
        },
        Line::Event(Ok(Event::OfflineSyncCompleted)) => WatchEvent::OfflineSyncCompleted,
        Line::Event(Ok(Event::Lagged { resume_from })) => WatchEvent::Lagged {
            resume_from: *resume_from,
        },
        Line::Event(Ok(Event::MessageRecalled { message })) => WatchEvent::MessageRecalled {
            message: message.into(),
        },
        Line::Event(Err(Lagged { missed })) => WatchEvent::Skipped { missed: *missed },
        Line::Event(Ok(Event::ReadReceipt {
            conversation,
            last_message_send_time_ms,
        })) => WatchEvent::ReadReceipt {
            conversation_type: conversation.kind.name(),
            target_id: conversation.target_id.clone(),
            last_message_send_time_ms: *last_message_send_time_ms,
        },
        Line::Event(Ok(Event::ConversationReadSynced {
            conversation,
            last_message_send_time_ms,
        })) => WatchEvent::ConversationReadSynced {
            conversation_type: conversation.kind.name(),
            target_id: conversation.target_id.clone(),
            last_message_send_time_ms: *last_message_send_time_ms,
        },
        Line::Event(Ok(Event::TypingStatus {
            conversation,
            users,
        })) => WatchEvent::TypingStatus {
            conversation_type: conversation.kind.name(),
            target_id: conversation.target_id.clone(),
            users: users.iter().map(|u| u.user_id.clone()).collect(),
        },
        Line::Event(Ok(Event::StatusMessageReceived { message })) => WatchEvent::StatusMessage {
            conversation_type: message.conversation.kind.name(),
            target_id: message.conversation.target_id.clone(),
            sender: message.sender.clone(),
            object_name: message.object_name.clone(),
            content: message.content.clone(),
        },
    }
}

fn human(line: &Line, me: Option<&str>) -> String {
    match line {
        Line::Initial(link) => format!("status: {}", status(link)),
        Line::Event(Ok(Event::StatusChanged(link))) => {
            format!("status changed: {}", status(link))
        }
        Line::Event(Ok(Event::MessageReceived {
            message,
            left,
            offline,
            has_package,
        })) => {
            let mut line = format!("message: {}", view::message_line(message, me));
            if *offline {
                line.push_str(&format!("  [offline, {left} left in package"));
                line.push_str(if *has_package { ", more to come]" } else { "]" });
            }
            line
        }
        Line::Event(Ok(Event::OfflineSyncCompleted)) => "offline sync completed".to_owned(),
        Line::Event(Ok(Event::Lagged { resume_from })) => format!(
            "lagged: this watcher fell behind; rcimd replays the messages after id {resume_from}"
        ),
        Line::Event(Ok(Event::MessageRecalled { message })) => format!(
            "recalled: message {} (uid {}) from {} is a recall notification now",
            message.id,
            message.uid.as_deref().unwrap_or("-"),
            view::one_line(&message.sender)
        ),
        Line::Event(Err(Lagged { missed })) => format!(
            "skipped: this watcher fell behind and skipped {missed} events; \
             the messages among them are replayed next"
        ),
        Line::Event(Ok(Event::ReadReceipt {
            conversation,
            last_message_send_time_ms,
        })) => format!(
            "read receipt: {} read your messages up to {}",
            view::one_line(&conversation.target_id),
            view::time(*last_message_send_time_ms)
        ),
        Line::Event(Ok(Event::ConversationReadSynced {
            conversation,
            last_message_send_time_ms,
        })) => format!(
            "read elsewhere: {} read up to {} on another device",
            view::peer(conversation),
            view::time(*last_message_send_time_ms)
        ),
        Line::Event(Ok(Event::TypingStatus {
            conversation,
            users,
        })) => {
            if users.is_empty() {
                format!("typing: nobody in {}", view::peer(conversation))
            } else {
                let names: Vec<String> = users.iter().map(|u| view::one_line(&u.user_id)).collect();
                format!(
                    "typing: {} in {}",
                    names.join(", "),
                    view::peer(conversation)
                )
            }
        }
        Line::Event(Ok(Event::StatusMessageReceived { message })) => format!(
            "status message: {} from {} in {}: {}",
            view::one_line(&message.object_name),
            view::one_line(&message.sender),
            view::peer(&message.conversation),
            view::truncate(&view::one_line(&message.content), view::PREVIEW_CHARS)
        ),
    }
}

/// `connected as alice`, `suspend (error 30011: …)`, the status coloured.
fn status(link: &LinkState) -> String {
    let mut text = view::paint(view::status_paint(link.status), link.status.name());
    if let Some(user) = &link.user_id {
        text.push_str(&format!(" as {}", view::one_line(user)));
    }
    if link.code != 0 {
        text.push_str(&format!(
            " (error {}: {})",
            link.code,
            RcCode(link.code).meaning()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::message;
    use rcim_client::{ConnectionStatus, Direction};

    fn lines() -> Vec<Line> {
        let connected = LinkState {
            status: ConnectionStatus::Connected,
            user_id: Some("alice".into()),
            ..LinkState::idle()
        };
        let suspended = LinkState {
            status: ConnectionStatus::Suspend,
            code: 30011,
            ..LinkState::idle()
        };
        vec![
            Line::Initial(LinkState::idle()),
            Line::Event(Ok(Event::StatusChanged(connected))),
            Line::Event(Ok(Event::MessageReceived {
                message: message(4, Direction::Receive, "hello"),
                left: 2,
                offline: true,
                has_package: true,
            })),
            Line::Event(Ok(Event::MessageReceived {
                message: message(5, Direction::Receive, "live"),
                left: 0,
                offline: false,
                has_package: false,
            })),
            Line::Event(Ok(Event::OfflineSyncCompleted)),
            Line::Event(Err(Lagged { missed: 45 })),
            Line::Event(Ok(Event::Lagged { resume_from: 5 })),
            Line::Event(Ok(Event::StatusChanged(suspended))),
        ]
    }

    #[test]
    fn human_lines() {
        let mut out = Vec::new();
        for line in lines() {
            render(&line, false, Some("alice"), &mut out).unwrap();
        }
        let expected = format!(
            "status: unconnected\n\
             status changed: connected as alice\n\
             message: 2025-11-27 16:05:01  bob → alice: hello  [offline, 2 left in package, more to come]\n\
             message: 2025-11-27 16:05:01  bob → alice: live\n\
             offline sync completed\n\
             skipped: this watcher fell behind and skipped 45 events; the messages among them are replayed next\n\
             lagged: this watcher fell behind; rcimd replays the messages after id 5\n\
             status changed: suspend (error 30011: {})\n",
            RcCode(30011).meaning()
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\u{1b}["),
            "statuses are coloured for a terminal"
        );
        assert_eq!(anstream::adapter::strip_str(&text).to_string(), expected);
    }

    #[test]
    fn json_lines_are_tagged_objects() {
        let mut out = Vec::new();
        for line in lines() {
            render(&line, true, None, &mut out).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\u{1b}'), "no escape codes in JSON");
        let values: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(values.len(), 8);
        assert!(values.iter().all(|v| v["schema_version"] == 1));
        let events: Vec<&str> = values
            .iter()
            .map(|v| v["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            events,
            [
                "status",
                "status_changed",
                "message_received",
                "message_received",
                "offline_sync_completed",
                "skipped",
                "lagged",
                "status_changed"
            ]
        );
        assert_eq!(
            values[1],
            serde_json::json!({
                "schema_version": 1,
                "event": "status_changed",
                "status": "connected",
                "status_code": 1,
                "code": 0,
                "user_id": "alice",
            })
        );
        assert_eq!(values[2]["message"]["text"], "hello");
        assert_eq!(
            (
                &values[2]["left"],
                &values[2]["offline"],
                &values[2]["has_package"]
            ),
            (
                &serde_json::json!(2),
                &serde_json::json!(true),
                &serde_json::json!(true)
            )
        );
        assert_eq!(values[5]["missed"], 45);
        assert_eq!(values[6]["resume_from"], 5);
        assert_eq!(
            values[4],
            serde_json::json!({"schema_version": 1, "event": "offline_sync_completed"})
        );
    }

    #[test]
    fn reads_typing_and_status_messages_have_lines_of_their_own() {
        use rcim_client::{ConversationKey, TypingUser};
        let bob = ConversationKey::private("bob");
        let lines = [
            Line::Event(Ok(Event::ReadReceipt {
                conversation: bob.clone(),
                last_message_send_time_ms: 1_764_259_501_000,
            })),
            Line::Event(Ok(Event::ConversationReadSynced {
                conversation: ConversationKey::group("team"),
                last_message_send_time_ms: 1_764_259_501_000,
            })),
            Line::Event(Ok(Event::TypingStatus {
                conversation: bob.clone(),
                users: vec![TypingUser {
                    user_id: "bob".into(),
                    content_type: "RC:TxtMsg".into(),
                    sent_time_ms: 1,
                }],
            })),
            Line::Event(Ok(Event::TypingStatus {
                conversation: bob.clone(),
                users: Vec::new(),
            })),
        ];
        let human: Vec<String> = lines.iter().map(|l| human(l, Some("alice"))).collect();
        assert_eq!(
            human,
            [
                "read receipt: bob read your messages up to 2025-11-27 16:05:01",
                "read elsewhere: group team read up to 2025-11-27 16:05:01 on another device",
                "typing: bob in bob",
                "typing: nobody in bob",
            ]
        );
        let json = serde_json::to_value(WatchJson {
            schema_version: 1,
            event: to_json(&lines[2]),
        })
        .unwrap();
        assert_eq!(json["event"], "typing_status");
        assert_eq!(json["users"], serde_json::json!(["bob"]));
        assert_eq!(json["target_id"], "bob");
    }
}
