//! Integration tests of rcim-server over real sockets, with a real SQLite database in
//! a temporary directory: the IM endpoint (handshake codes, heartbeat, framing
//! errors, counters, shutdown), kicks, token expiry (`token/expire` and the token
//! lifetime), blocks, the Server API (signing, getToken, checkOnline, the
//! moderation endpoints, stats), TLS on the IM endpoint (with a CA made at test
//! time by `rcim_server::testca`), in-process connections through
//! `RunningServer::serve_stream` under paused time, the `rcim-server` binary end
//! to end, and messaging (publish, de-duplication, groups, sync paging, live pushes
//! and the seam between them, acks, the publish and group endpoints, the bulk path),
//! and the Server API's replay protection (stale timestamps, reused nonces).
//!
//! Time-based paths with exact durations (handshake timeout, heartbeat deadline) are
//! covered with paused time in `im::session`'s unit tests and in `in_process` here;
//! over TCP the heartbeat test uses a short real timeout, because paused time skips
//! ahead while real sockets are still in flight.
//!
//! One test binary (`autotests = false` and one `[[test]]` in Cargo.toml), a module
//! per topic, and [`util`] for the server, client and Server API helpers they share.

mod util;

mod api;
mod binary;
mod block;
mod expire;
mod im;
mod in_process;
mod kick;
mod lifetime;
mod messaging;
mod moderation_api;
mod recall;
mod replay;
mod tls;
