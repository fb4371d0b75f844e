//! Several rcim-server nodes on one PostgreSQL database (issue 17).
//!
//! Nodes reach each other only through PostgreSQL `LISTEN/NOTIFY`. A notification
//! is a wake-up, never the data: the data is in the database, and a node that is
//! woken (or that may have missed a wake-up, after its listening connection came
//! back) reads it from there by seq, which is the same exactly-once rule rcimd
//! uses.
//!
//! - [`wire`]: the channels and the payload formats, shared by the code that
//!   sends a notification (inside the transaction that wrote the data, where it
//!   can) and the listener that receives it.
//!
//! With SQLite there is only one node, and none of this runs.

pub mod wire;
