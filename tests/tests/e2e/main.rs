//! Cross-process tests: the real `rcim-server`, `rcimd`, `rcimctl` and RC-shaped
//! client processes, on real sockets and databases. One binary, topic modules.

mod connect;
mod conversation_settings;
mod ctl;
mod daemon;
mod echo;
mod encryption;
mod engine;
mod failover;
mod history_search;
mod hub;
mod messaging;
mod read_receipts;
mod recall;
mod service;
mod status_messages;
mod tls;

/// The RC-shaped test client built from `src/bin/rcim-test-client.rs`.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_rcim-test-client");
