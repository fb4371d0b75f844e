//! # rcim-proto
//!
//! The leaf crate of rcim: every type that crosses a process boundary lives here, so
//! that the daemon (`rcimd`), the client library (`rcim-client`), the CLI (`rcimctl`)
//! and the reference server (`rcim-server`) agree on the bytes without depending on
//! each other.
//!
//! - [`frame`]: the codec. A frame is a big-endian `u32` length followed by a postcard
//!   body; the length is checked against a cap before anything is allocated, a clean
//!   end of stream between frames is "no frame" and an end of stream inside one is an
//!   error.
//! - [`ipc`]: the local protocol between apps and `rcimd` (Hello/Welcome, requests,
//!   responses, per-request callbacks and events).
//! - [`upstream`]: the wire protocol between `rcimd` and the IM server (CONNECT,
//!   CONNACK, PING/PONG, DISCONNECT), modelled on RC's MQTT-derived one.
//! - [`message`]: messages and conversations (RC's numbering), shared by the
//!   wire, the IPC and the daemon's database.
//! - [`status`]: the RCIMIWConnectionStatus enum and the status snapshot that
//!   `rcimctl status` prints.
//! - [`code`]: RC's numeric error codes with a short meaning for each, and the
//!   CONNACK / DISCONNECT reason codes with their mapping onto them.
//! - [`token`]: the redacting token wrapper and the readable part of a token (its
//!   claims), which lets the daemon open the user's database before the CONNACK.
//! - [`paths`]: the default socket path shared by every binary.
//! - [`recall`]: RC's recall command (`RC:RcCmd`) and notification (`RC:RcNtf`)
//!   contents, built alike by the server and every daemon.
//! - [`time`]: the wall clock in ms since the Unix epoch ([`time::now_ms`]) and
//!   its UTC calendar form ([`time::utc_datetime`]), shared by every process.
//! - [`version`]: [`PROTOCOL_VERSION`] with its dated history.
//!
//! Wire-evolution rules: enum variants are only ever appended, structs change only
//! with a version bump, and every message has a golden byte fixture under
//! `proto/tests/golden/` so an accidental change fails a test.
#![warn(missing_docs)]

pub mod code;
pub mod frame;
pub mod ipc;
pub mod message;
pub mod paths;
pub mod recall;
pub mod status;
pub mod time;
pub mod token;
pub mod upstream;
pub mod version;

pub use code::RcCode;
pub use frame::{FrameError, FrameReader};
pub use status::{ConnectionStatus, StatusSnapshot};
pub use token::Token;
pub use version::{PROTOCOL_VERSION, WIRE_VERSION};
