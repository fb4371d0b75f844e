//! Behaviour of rcim-client against a scripted fake daemon on a real Unix socket.

mod util;

mod blocking;
mod demux;
mod engine;
mod handshake;
mod messaging;
mod replay;
