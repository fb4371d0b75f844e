//! Behaviour of rcim-client against a scripted fake daemon on a real Unix socket,
//! and the rule on what rcim-client may depend on (`deps`).

mod util;

mod blocking;
mod demux;
mod deps;
mod engine;
mod handshake;
mod messaging;
mod replay;
