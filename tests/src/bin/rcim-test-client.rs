//! A tiny RC-style app for the cross-process tests: it creates an `Engine`, calls
//! `connect(token, timeout, callback)` with the token from `RCIM_TEST_TOKEN`, and
//! prints every callback as one JSON line on stdout, in the order they fire:
//!
//! ```text
//! {"event":"database_opened","code":0}
//! {"event":"connected","code":0,"user_id":"alice"}
//! ```
//!
//! A non-zero immediate return prints `{"event":"rejected","code":N}`. It exits once
//! `onConnected` has fired (or at once when rejected); it fails if nothing comes
//! within 60 s.

use rcim_client::{ConnectCallback, Engine, EngineOptions};
use std::sync::mpsc;
use std::time::Duration;

fn main() -> std::process::ExitCode {
    let mut timeout = 0i32;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--timeout", Some(value)) => match value.parse() {
                Ok(v) => timeout = v,
                Err(_) => return fail(&format!("bad --timeout {value}")),
            },
            _ => {
                return fail(&format!(
                    "usage: rcim-test-client [--timeout SECS] (got {arg})"
                ));
            }
        }
    }
    let token = std::env::var("RCIM_TEST_TOKEN").unwrap_or_default();
    let engine = Engine::create(
        "test-app-key",
        EngineOptions {
            client_name: format!("rcim-test-client[{}]", std::process::id()),
            ..EngineOptions::default()
        },
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

fn fail(why: &str) -> std::process::ExitCode {
    eprintln!("rcim-test-client: {why}");
    std::process::ExitCode::FAILURE
}
