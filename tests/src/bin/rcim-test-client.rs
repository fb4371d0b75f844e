//! A tiny RC-style app for the cross-process tests.
//!
//! Connect mode (default): creates an `Engine`, calls `connect(token, timeout,
//! callback)` with the token from `RCIM_TEST_TOKEN`, and prints every callback as one
//! JSON line on stdout, in the order they fire:
//!
//! ```text
//! {"event":"database_opened","code":0}
//! {"event":"connected","code":0,"user_id":"alice"}
//! ```
//!
//! A non-zero immediate return prints `{"event":"rejected","code":N}`. It exits once
//! `onConnected` has fired (or at once when rejected); it fails if nothing comes
//! within 60 s.
//!
//! Receive mode (`--receive N [--since SEQ] [--print-ids] [--pause-after K:MS]`):
//! attaches with the async client, subscribes from SEQ (replay, then live) when
//! given, and collects message events until it has N; with `--print-ids` it prints
//! each message id as it comes (so a test can kill it mid-stream and resume from the
//! last printed id); with `--pause-after` it stops reading its event stream for MS
//! milliseconds after K messages (the client library keeps reading the socket, so
//! the stream falls behind its buffer). At the end it prints
//! `{"event":"received","count":N,"ids":[...],"lags":L}`, L being how many times
//! the stream reported it fell behind.

use rcim_client::{Client, ClientOptions, ConnectCallback, Engine, EngineOptions, Event};
use std::io::Write;
use std::sync::mpsc;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let mut timeout = 0i32;
    let mut receive = None;
    let mut since = None;
    let mut print_ids = false;
    let mut pause = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let parsed = match arg.as_str() {
            "--print-ids" => {
                print_ids = true;
                Ok(())
            }
            "--timeout" => number(args.next()).map(|v| timeout = v),
            "--receive" => number(args.next()).map(|v| receive = Some(v)),
            "--since" => number(args.next()).map(|v| since = Some(v)),
            "--pause-after" => pause_spec(args.next()).map(|v| pause = Some(v)),
            other => Err(ArgError::Unknown(other.to_owned())),
        };
        if let Err(why) = parsed {
            return fail(&format!(
                "{why}\nusage: rcim-test-client [--timeout SECS] | --receive N [--since SEQ] [--print-ids] [--pause-after K:MS]"
            ));
        }
    }
    match receive {
        Some(count) => receive_mode(count, since, print_ids, pause),
        None => connect_mode(timeout),
    }
}

/// Why the command line cannot be used; printed above the usage line.
#[derive(Debug, thiserror::Error)]
enum ArgError {
    #[error("unknown argument {0}")]
    Unknown(String),
    #[error("a value is missing")]
    Missing,
    #[error("bad number {0}")]
    BadNumber(String),
    #[error("expected K:MS, got {0}")]
    BadPause(String),
}

fn number<T: std::str::FromStr>(value: Option<String>) -> Result<T, ArgError> {
    let value = value.ok_or(ArgError::Missing)?;
    value.parse().map_err(|_| ArgError::BadNumber(value))
}

fn connect_mode(timeout: i32) -> std::process::ExitCode {
    let token = std::env::var("RCIM_TEST_TOKEN").unwrap_or_default();
    let engine = Engine::create(
        "test-app-key",
        EngineOptions::named(format!("rcim-test-client[{}]", std::process::id())),
    );

    let (tx, rx) = mpsc::channel::<String>();
    let opened = tx.clone();
    let callback = ConnectCallback::new(move |code, user_id| {
        let line = serde_json::json!({"event": "connected", "code": code, "user_id": user_id});
        let _ = tx.send(line.to_string());
    })
    .on_database_opened(move |code| {
        let line = serde_json::json!({"event": "database_opened", "code": code});
        let _ = opened.send(line.to_string());
    });
    let code = engine.connect(&token, timeout, callback);
    if code != 0 {
        println!("{}", serde_json::json!({"event": "rejected", "code": code}));
        return std::process::ExitCode::SUCCESS;
    }
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                println!("{line}");
                if line.contains("\"connected\"") {
                    return std::process::ExitCode::SUCCESS;
                }
            }
            Err(_) => return fail("no onConnected within 60 s"),
        }
    }
}

/// `K:MS` of `--pause-after`.
fn pause_spec(value: Option<String>) -> Result<(usize, u64), ArgError> {
    let value = value.ok_or(ArgError::Missing)?;
    let (after, ms) = value
        .split_once(':')
        .ok_or_else(|| ArgError::BadPause(value.clone()))?;
    Ok((number(Some(after.into()))?, number(Some(ms.into()))?))
}

fn receive_mode(
    count: usize,
    since: Option<i64>,
    print_ids: bool,
    pause: Option<(usize, u64)>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        use futures_util::StreamExt;
        let options = ClientOptions::named(format!("receiver[{}]", std::process::id()));
        let (client, mut events) = Client::attach_with_events(options)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(since) = since {
            let code = client.subscribe(since).await.map_err(|e| e.to_string())?;
            if code != 0 {
                return Err(format!("subscribe refused: {code}"));
            }
        }
        // Ready: the test may start the stream now.
        println!("{}", serde_json::json!({"event": "ready"}));
        let _ = std::io::stdout().flush();
        let mut ids = Vec::with_capacity(count);
        let mut lags = 0u64;
        let mut pause = pause;
        while ids.len() < count {
            if let Some((after, ms)) = pause
                && ids.len() == after
            {
                pause = None;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let event = tokio::time::timeout(Duration::from_secs(120), events.next())
                .await
                .map_err(|_| format!("stalled after {} messages", ids.len()))?;
            match event {
                Some(Ok(Event::MessageReceived { message, .. })) => {
                    if print_ids {
                        println!("{}", message.id);
                        let _ = std::io::stdout().flush();
                    }
                    ids.push(message.id);
                }
                Some(Err(_)) => lags += 1,
                Some(Ok(_)) => {}
                None => return Err(format!("the daemon went away after {} messages", ids.len())),
            }
        }
        Ok((ids, lags))
    });
    match result {
        Ok((ids, lags)) => {
            println!(
                "{}",
                serde_json::json!({"event": "received", "count": ids.len(), "ids": ids, "lags": lags})
            );
            std::process::ExitCode::SUCCESS
        }
        Err(why) => fail(&why),
    }
}

fn fail(why: &str) -> std::process::ExitCode {
    eprintln!("rcim-test-client: {why}");
    std::process::ExitCode::FAILURE
}
