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
    Client, ClientError, ClientOptions, ConnectionStatus, ConversationKey, Event, ReattachPolicy,
    TEXT_MESSAGE, Token, text_content, text_of,
};
use std::process::ExitCode;

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

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let send = match (args.next(), args.next()) {
        (Some(to), Some(text)) => Some((to, text)),
        (None, None) => None,
        _ => return Err("usage: chat [TO TEXT]".to_owned()),
    };

    let options = ClientOptions {
        reattach: Some(ReattachPolicy::default()),
        ..ClientOptions::named("chat-example")
    };
    let (client, mut events) = Client::attach_with_events(options)
        .await
        .map_err(|e| e.to_string())?;
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
            .await
            .map_err(|e| e.to_string())?;
        if call.code() != 0 {
            return Err(format!(
                "send refused: {}",
                rcim_client::RcCode(call.code())
            ));
        }
        let sent = call.sent().await;
        match sent.code {
            0 => println!("sent to {to}"),
            code => println!("not sent: {}", rcim_client::RcCode(code)),
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
                Some(Ok(Event::Lagged { .. })) | Some(Err(_)) => {
                    println!("(fell behind; the missed messages are replayed)");
                }
                None => return Err("rcimd went away".to_owned()),
            },
        }
    }
}

/// Connects with the token from `RCIM_TOKEN`, or explains how to get one.
async fn connect(client: &Client) -> Result<(), String> {
    let Ok(token) = std::env::var("RCIM_TOKEN") else {
        return Err("rcimd is not connected and RCIM_TOKEN is not set: run \
             `cargo run -p rcimd --features dev-server -- --dev` (it connects a demo user by itself), or set \
             RCIM_TOKEN to a token from your app server"
            .to_owned());
    };
    let call = client
        .connect(Token::new(token), 30)
        .await
        .map_err(|e: ClientError| e.to_string())?;
    if call.code() != 0 {
        return Err(format!(
            "connect refused: {}",
            rcim_client::RcCode(call.code())
        ));
    }
    let done = call.connected().await;
    match done.code {
        0 => {
            println!("connected as {}", done.user_id.unwrap_or_default());
            Ok(())
        }
        code => Err(format!("connect failed: {}", rcim_client::RcCode(code))),
    }
}
