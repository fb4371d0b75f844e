//! `rcimctl send`: RC's `sendMessage` from the command line.
//!
//! rcimd writes the message to its outbox first (`onMessageSaved`), then sends it
//! when connected (`onMessageSent`). By default the command waits for the server's
//! confirmation, up to `--timeout`; `--no-wait` stops after the outbox. Arguments
//! are checked here, with RC's rules, so a bad recipient is a usage error (2) and
//! never reaches the daemon.

use super::Context;
use crate::failure::CliError;
use crate::view;
use rcim_client::blocking::TimedOut;
use rcim_client::{
    ConversationKey, ConversationType, Message, OutgoingMessage, SendStep, Sent, TEXT_MESSAGE,
};
use serde::Serialize;
use std::io::Write;
use std::time::{Duration, Instant};

/// `send`'s exit statuses (it adds 4 to the common ones).
pub const SEND_EXIT_STATUS_HELP: &str = "\
Exit status:
  0  sent: the server has the message (with --no-wait: saved in rcimd's outbox)
  1  rcimd or the server refused the message (the message gives the RC code and
     its meaning)
  2  usage error: bad flags, recipient, object name or content
  3  rcimd could not be reached, or went away before confirming (a message it had
     saved stays in its outbox and is sent once it is back)
  4  not confirmed within --timeout: the message waits in rcimd's outbox and is
     sent when rcimd (re)connects";

/// Send a message (text by default) to a user or a group.
///
/// The message is saved in rcimd's outbox first, then sent as soon as rcimd is
/// connected; a message sent while offline is delivered after the next connect,
/// even across a restart of rcimd. Prints `saved (local id N)`, then
/// `sent (uid …, at …)` once the server confirms (times in UTC). (System messages
/// come from the server only: clients cannot send them.)
#[derive(Debug, clap::Args)]
#[command(
    after_long_help = SEND_EXIT_STATUS_HELP,
    group = clap::ArgGroup::new("body").required(true).args(["text", "content"]),
)]
pub struct Args {
    /// The recipient: a user id (or a group id with --group)
    #[arg(long, value_name = "ID")]
    pub to: String,

    /// The text of a text message (RC:TxtMsg)
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,

    /// --to is a group id
    #[arg(long)]
    pub group: bool,

    /// The object name of a message of another type, e.g. RC:ImgMsg (with --content)
    #[arg(long, value_name = "NAME", requires = "content")]
    pub object_name: Option<String>,

    /// The JSON content of a message of another type (with --object-name)
    #[arg(long, value_name = "JSON", requires = "object_name")]
    pub content: Option<String>,

    /// Return once the message is saved in rcimd's outbox; do not wait for the
    /// server's confirmation
    #[arg(long)]
    pub no_wait: bool,

    /// Seconds to wait for the server's confirmation (0: no limit); when they pass,
    /// the message stays queued and the exit status is 4
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,

    /// Print one JSON object (schema_version 1) with the outcome instead of lines
    #[arg(long)]
    pub json: bool,
}

/// The `--json` output, schema version 1: one object once the command is done.
#[derive(Debug, Serialize)]
pub struct SendJson {
    /// Bumped when a key changes meaning or disappears; new keys may appear anytime.
    pub schema_version: u32,
    /// `sent` (the server has it) or `queued` (in rcimd's outbox, with --no-wait).
    pub status: &'static str,
    /// The message's local id in rcimd's database.
    pub local_id: Option<i64>,
    /// The server's id, once sent.
    pub uid: Option<String>,
    /// When the server accepted it (ms since the epoch), once sent.
    pub sent_time_ms: Option<i64>,
}

impl Args {
    /// The conversation `--to` and `--group` name.
    pub fn conversation(&self) -> ConversationKey {
        let kind = if self.group {
            ConversationType::Group
        } else {
            ConversationType::Private
        };
        ConversationKey {
            kind,
            target_id: self.to.clone(),
        }
    }
}

/// The message the flags describe, checked with RC's rules (33003 would be the
/// daemon's answer; here it is a usage error that says which flag is wrong).
pub fn outgoing(args: &Args) -> Result<OutgoingMessage, CliError> {
    let conversation = args.conversation();
    let message = match (&args.text, &args.object_name, &args.content) {
        (Some(text), _, _) => {
            if text.is_empty() {
                return Err(CliError::Usage(
                    "--text is empty: give the text to send".to_owned(),
                ));
            }
            OutgoingMessage::text(conversation, text)
        }
        (None, Some(object_name), Some(content)) => {
            if serde_json::from_str::<serde_json::Value>(content).is_err() {
                return Err(CliError::Usage(format!(
                    "--content must be JSON, e.g. '{{\"content\":\"hello\"}}' for {TEXT_MESSAGE}"
                )));
            }
            OutgoingMessage::new(conversation, object_name.as_str(), content.as_str())
        }
        _ => {
            return Err(CliError::Usage(
                "nothing to send: give --text TEXT, or --object-name NAME with --content JSON"
                    .to_owned(),
            ));
        }
    };
    message
        .check()
        .map_err(|why| CliError::Usage(format!("cannot send this message: {why}")))?;
    Ok(message)
}

/// Sends, and reports each step until the server's confirmation (or the outbox,
/// with `--no-wait`).
pub fn run(ctx: &Context, args: &Args, out: &mut impl Write) -> Result<(), CliError> {
    let message = outgoing(args)?;
    let client = ctx.attach()?;
    let mut call =
        client.send_message(message.conversation, &message.object_name, &message.content)?;
    CliError::check("send", call.code())?;
    let deadline = (args.timeout > 0).then(|| Instant::now() + Duration::from_secs(args.timeout));
    let mut saved: Option<Message> = None;
    loop {
        let step = match deadline {
            Some(deadline) => {
                match call.next_callback_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    Ok(step) => step,
                    Err(TimedOut) => return Err(unconfirmed(args.timeout, saved.as_ref())),
                }
            }
            None => call.next_callback(),
        };
        match step {
            Some(SendStep::Saved(message)) => {
                if args.no_wait {
                    return if args.json {
                        render_json(&json_result("queued", &message), out)
                    } else {
                        render_saved(&message, out)?;
                        render_queued(out)
                    };
                }
                if !args.json {
                    render_saved(&message, out)?;
                }
                saved = Some(message);
            }
            Some(SendStep::Sent(sent)) => {
                if args.json && sent.code == 0 {
                    let message = sent.message.as_ref().or(saved.as_ref());
                    return match message {
                        Some(message) => render_json(&json_result("sent", message), out),
                        None => render_json(
                            &SendJson {
                                schema_version: 1,
                                status: "sent",
                                local_id: None,
                                uid: None,
                                sent_time_ms: None,
                            },
                            out,
                        ),
                    };
                }
                // With --json only a failure is left, which writes nothing here.
                return finish(&sent, client.is_closed(), out);
            }
            // An accepted call always ends with Sent; nothing more to report.
            None => return Ok(()),
        }
    }
}

/// The `--json` object for a message that reached `status`.
pub fn json_result(status: &'static str, message: &Message) -> SendJson {
    let sent = status == "sent";
    SendJson {
        schema_version: 1,
        status,
        local_id: Some(message.id),
        uid: message.uid.clone().filter(|_| sent),
        sent_time_ms: (sent && message.sent_time_ms != 0).then_some(message.sent_time_ms),
    }
}

/// One JSON object on one line.
pub fn render_json(json: &SendJson, out: &mut impl Write) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, json).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// The last step: success, the RC error, or the daemon gone.
pub fn finish(sent: &Sent, daemon_gone: bool, out: &mut impl Write) -> Result<(), CliError> {
    match sent.code {
        0 => render_sent(sent.message.as_ref(), out),
        30011 if daemon_gone => Err(CliError::DaemonLost(match &sent.message {
            Some(message) => format!(
                "rcimd went away before the server confirmed the message; it is saved in \
                 rcimd's outbox (local id {}) and is sent once rcimd is back and connected",
                message.id
            ),
            None => "rcimd went away before saving the message; it may not have been \
                     saved: check with `rcimctl history`, and send again if it is missing"
                .to_owned(),
        })),
        code => CliError::check("send", code),
    }
}

/// What a timeout means, as the error line.
pub fn unconfirmed(timeout_secs: u64, saved: Option<&Message>) -> CliError {
    CliError::Unconfirmed(match saved {
        Some(message) => format!(
            "not confirmed within {timeout_secs} s: the message is queued in rcimd's outbox \
             (local id {}) and will be sent when rcimd (re)connects",
            message.id
        ),
        None => format!(
            "rcimd accepted the message but did not confirm saving it within {timeout_secs} s"
        ),
    })
}

/// `saved (local id N)`.
pub fn render_saved(message: &Message, out: &mut impl Write) -> Result<(), CliError> {
    writeln!(out, "saved (local id {})", message.id)?;
    out.flush()?;
    Ok(())
}

/// The `--no-wait` line after `saved`.
pub fn render_queued(out: &mut impl Write) -> Result<(), CliError> {
    writeln!(
        out,
        "queued: rcimd keeps it in its outbox and sends it as soon as it is connected"
    )?;
    Ok(())
}

/// `sent (uid U, at TIME)`.
pub fn render_sent(message: Option<&Message>, out: &mut impl Write) -> Result<(), CliError> {
    let Some(message) = message else {
        writeln!(out, "sent")?;
        return Ok(());
    };
    let at = view::time(message.sent_time_ms);
    match &message.uid {
        Some(uid) => writeln!(out, "sent (uid {}, at {at})", view::one_line(uid))?,
        None => writeln!(out, "sent (at {at})")?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::tests::message;
    use rcim_client::{Direction, RcCode};

    fn args() -> Args {
        Args {
            to: "bob".into(),
            text: Some("hello".into()),
            group: false,
            object_name: None,
            content: None,
            no_wait: false,
            timeout: 30,
            json: false,
        }
    }

    fn usage(result: Result<OutgoingMessage, CliError>) -> String {
        match result {
            Err(CliError::Usage(text)) => text,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn text_goes_to_a_private_conversation_by_default() {
        let message = outgoing(&args()).unwrap();
        assert_eq!(
            message,
            OutgoingMessage::text(ConversationKey::private("bob"), "hello")
        );
        let group = outgoing(&Args {
            group: true,
            to: "team-1".into(),
            ..args()
        })
        .unwrap();
        assert_eq!(group.conversation, ConversationKey::group("team-1"));
    }

    #[test]
    fn json_results_name_the_outcome() {
        let saved = message(17, Direction::Send, "hello");
        let mut out = Vec::new();
        render_json(&json_result("queued", &saved), &mut out).unwrap();
        render_json(&json_result("sent", &saved), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let values: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(
            values,
            [
                serde_json::json!({"schema_version": 1, "status": "queued", "local_id": 17,
                    "uid": null, "sent_time_ms": null}),
                serde_json::json!({"schema_version": 1, "status": "sent", "local_id": 17,
                    "uid": "uid-17", "sent_time_ms": 1_764_259_501_000_i64}),
            ]
        );
    }

    #[test]
    fn other_types_take_json_content() {
        let message = outgoing(&Args {
            text: None,
            object_name: Some("RC:ImgMsg".into()),
            content: Some(r#"{"imageUri":"x"}"#.into()),
            ..args()
        })
        .unwrap();
        assert_eq!(message.object_name, "RC:ImgMsg");
        assert_eq!(message.content, r#"{"imageUri":"x"}"#);
        let text = usage(outgoing(&Args {
            text: None,
            object_name: Some("RC:ImgMsg".into()),
            content: Some("not json".into()),
            ..args()
        }));
        assert!(text.contains("--content must be JSON"), "{text}");
    }

    #[test]
    fn bad_arguments_are_usage_errors_that_say_why() {
        let text = usage(outgoing(&Args {
            to: "a b".into(),
            ..args()
        }));
        assert!(text.contains("target id"), "{text}");
        let text = usage(outgoing(&Args {
            text: Some(String::new()),
            ..args()
        }));
        assert!(text.contains("--text is empty"), "{text}");
        let text = usage(outgoing(&Args {
            text: Some("x".repeat(200_000)),
            ..args()
        }));
        assert!(text.contains("128 KB"), "{text}");
        let text = usage(outgoing(&Args {
            text: None,
            object_name: Some("RC: Img".into()),
            content: Some("{}".into()),
            ..args()
        }));
        assert!(text.contains("object name"), "{text}");
    }

    #[test]
    fn steps_render() {
        let mut out = Vec::new();
        let saved = message(17, Direction::Send, "hello");
        render_saved(&saved, &mut out).unwrap();
        finish(
            &Sent {
                code: 0,
                message: Some(saved.clone()),
            },
            false,
            &mut out,
        )
        .unwrap();
        render_queued(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "saved (local id 17)\n\
             sent (uid uid-17, at 2025-11-27 16:05:01)\n\
             queued: rcimd keeps it in its outbox and sends it as soon as it is connected\n"
        );
    }

    #[test]
    fn failures_map_to_their_exit_codes() {
        let mut out = Vec::new();
        let saved = message(17, Direction::Send, "hello");
        let refused = finish(
            &Sent {
                code: 22406,
                message: Some(saved.clone()),
            },
            false,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(refused.exit_code(), 1);
        assert_eq!(
            refused.message().unwrap(),
            format!("send failed: error 22406: {}", RcCode(22406).meaning())
        );
        // 30011 from a live daemon is its answer; from a gone daemon it is ours.
        let from_daemon = finish(
            &Sent {
                code: 30011,
                message: Some(saved.clone()),
            },
            false,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(from_daemon.exit_code(), 1);
        let lost = finish(
            &Sent {
                code: 30011,
                message: Some(saved.clone()),
            },
            true,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(lost.exit_code(), 3);
        assert!(lost.message().unwrap().contains("outbox (local id 17)"));
        let timeout = unconfirmed(30, Some(&saved));
        assert_eq!(timeout.exit_code(), 4);
        let text = timeout.message().unwrap();
        assert!(
            text.contains("not confirmed within 30 s") && text.contains("queued"),
            "{text}"
        );
        assert!(out.is_empty());
    }
}
