//! A tiny chat client on top of `rcim-client`, for trying rcim against a local
//! `rcimd --dev`.
//!
//! ```text
//! # terminal 1: a development daemon with its own in-process IM server; it
//! # connects a demo user by itself
//! cargo run -p rcimd --features dev-server -- --dev
//! # terminal 2:
//! cargo run -p rcim-client --example chat
//! cargo run -p rcim-client --example chat -- bob "hello bob"
//! ```
//!
//! It attaches (re-attaching by itself if rcimd restarts), uses the connection
//! rcimd already has or connects with the token in `RCIM_TOKEN`, sends `TEXT` to
//! user `TO` when both are given, and then prints every status change and every
//! message received until Ctrl-C. `RCIM_SOCKET` points it at another daemon.

use futures_util::StreamExt;
use rcim_client::{
    Client, ClientError, ClientOptions, ConnectionStatus, ConversationKey, Event, RcCode,
    ReattachPolicy, TEXT_MESSAGE, Token, text_content, text_of,
};
use std::process::ExitCode;

/// Why the example stopped; each says what to do.
#[derive(Debug, thiserror::Error)]
enum ChatError {
    /// The arguments are not `[TO TEXT]`.
    #[error("usage: chat [TO TEXT]")]
    Usage,
    /// rcimd could not be used (its message says how to fix it).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// rcimd is not connected and there is no token to connect with.
    #[error(
        "rcimd is not connected and RCIM_TOKEN is not set: run \
         `cargo run -p rcimd --features dev-server -- --dev` (it connects a demo user by itself), \
         or set RCIM_TOKEN to a token from your app server"
    )]
    NoToken,
    /// A call was refused at once, or its last callback was an error.
    #[error("{what}: {code}")]
    Failed {
        /// What happened: `send refused`, `connect refused`, `connect failed`.
        what: &'static str,
        /// RC's code (shown with its meaning).
        code: RcCode,
    },
    /// The event stream ended: rcimd went away and re-attaching gave up.
    #[error("rcimd went away")]
    DaemonGone,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("chat: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), ChatError> {
    let mut args = std::env::args().skip(1);
    let send = match (args.next(), args.next()) {
        (Some(to), Some(text)) => Some((to, text)),
        (None, None) => None,
        _ => return Err(ChatError::Usage),
    };

    let options = ClientOptions {
        reattach: Some(ReattachPolicy::default()),
        ..ClientOptions::named("chat-example")
    };
    let (client, mut events) = Client::attach_with_events(options).await?;
    let welcome = client.welcome();
    println!(
        "attached to rcimd {} (protocol {}); status: {}",
        welcome.daemon_version, welcome.protocol, welcome.status.link.status
    );

    if welcome.status.link.status != ConnectionStatus::Connected {
        connect(&client).await?;
    }

    if let Some((to, text)) = send {
        let call = client
            .send_message(
                ConversationKey::private(to.as_str()),
                TEXT_MESSAGE,
                &text_content(&text),
            )
            .await?;
        if call.code() != 0 {
            return Err(ChatError::Failed {
                what: "send refused",
                code: RcCode(call.code()),
            });
        }
        let sent = call.sent().await;
        match sent.code {
            0 => println!("sent to {to}"),
            code => println!("not sent: {}", RcCode(code)),
        }
    }

    println!("waiting for messages (Ctrl-C to stop)");
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            item = events.next() => match item {
                Some(Ok(Event::StatusChanged(state))) => println!("status: {}", state.status),
                Some(Ok(Event::MessageReceived { message, offline, .. })) => {
                    let text = text_of(&message)
                        .unwrap_or_else(|| format!("[{}]", message.object_name));
                    let when = if offline { " (offline)" } else { "" };
                    println!("#{} {}: {text}{when}", message.id, message.sender);
                }
                Some(Ok(Event::OfflineSyncCompleted)) => println!("caught up"),
                Some(Ok(Event::MessageRecalled { message })) => {
                    println!("#{} was recalled by its sender", message.id);
                }
                Some(Ok(Event::Lagged { .. })) | Some(Err(_)) => {
                    println!("(fell behind; the missed messages are replayed)");
                }
                Some(Ok(Event::ReadReceipt { conversation, .. })) => {
                    println!("{} read your messages", conversation.target_id);
                }
                Some(Ok(Event::TypingStatus { conversation, users })) => {
                    if !users.is_empty() {
                        println!("{} is typing…", conversation.target_id);
                    }
                }
                Some(Ok(Event::ConversationReadSynced { .. }))
                | Some(Ok(Event::StatusMessageReceived { .. })) => {}
                None => return Err(ChatError::DaemonGone),
            },
        }
    }
}

/// Connects with the token from `RCIM_TOKEN`, or explains how to get one.
async fn connect(client: &Client) -> Result<(), ChatError> {
    let Ok(token) = std::env::var("RCIM_TOKEN") else {
        return Err(ChatError::NoToken);
    };
    let call = client.connect(Token::new(token), 30).await?;
    if call.code() != 0 {
        return Err(ChatError::Failed {
            what: "connect refused",
            code: RcCode(call.code()),
        });
    }
    let done = call.connected().await;
    match done.code {
        0 => {
            println!("connected as {}", done.user_id.unwrap_or_default());
            Ok(())
        }
        code => Err(ChatError::Failed {
            what: "connect failed",
            code: RcCode(code),
        }),
    }
}
