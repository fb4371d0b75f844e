//! Registries of server-side state that the IM endpoint and the Server API share.
//!
//! - [`online`]: the live, accepted IM connections, keyed by user and platform, each
//!   with a control channel so that another part of the server (shutdown, a kick
//!   by a newer connection, a block) can tell a connection to end.
//! - [`inbox`]: per-user signals that an inbox grew, which wake the user's live
//!   connections to push the new entries.
//! - [`status`]: per-connection queues of status messages (typing status,
//!   `/statusmessage/*`), delivered to whoever is online and stored nowhere.

pub mod inbox;
pub mod online;
pub mod status;
