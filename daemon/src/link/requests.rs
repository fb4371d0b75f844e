//! Requests to the server that wait for an answer: recall and remote history.
//!
//! Unlike a message (which waits in the outbox across reconnects), these ask
//! about the present, so they are only sent on a live connection and belong to
//! it: each gets a request id, waits here until the server's answer with that id
//! comes back, and is dropped with its connection (the caller then hears that
//! the connection ended). The caller bounds its own wait ([`ANSWER_TIMEOUT`]), so
//! a server that never answers costs a caller 30003, never a hang.

use rcim_proto::RcCode;
use rcim_proto::message::WireMessage;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a caller waits for the server's answer before giving up with 30003.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What a recall came to: the RC code, and on success the message as the server
/// stores it now.
pub(crate) type RecallAnswer = (RcCode, Option<WireMessage>);

/// What a history request came to: the messages and whether more remain, or the
/// server's refusal.
pub(crate) type HistoryAnswer = Result<(Vec<WireMessage>, bool), RcCode>;

/// A request waiting for its answer.
pub(crate) enum Pending {
    /// A recall.
    Recall(oneshot::Sender<RecallAnswer>),
    /// A page of remote history.
    History(oneshot::Sender<HistoryAnswer>),
}

/// The requests in flight on one connection.
#[derive(Default)]
pub(crate) struct Requests {
    next_id: u64,
    pending: HashMap<u64, Pending>,
}

impl Requests {
    /// Registers `pending`; returns the request id to send with it.
    pub(crate) fn add(&mut self, pending: Pending) -> u64 {
        self.next_id += 1;
        self.pending.insert(self.next_id, pending);
        self.next_id
    }

    /// The request `req_id` answered (or failed to send): takes it out.
    pub(crate) fn take(&mut self, req_id: u64) -> Option<Pending> {
        self.pending.remove(&req_id)
    }
}
