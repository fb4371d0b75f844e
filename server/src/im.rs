//! The IM endpoint: the TCP listener that speaks the upstream wire protocol.
//!
//! This module owns the accept loop only. Each accepted socket gets its own task
//! ([`session::run`]), spawned on the server's task tracker so that shutdown can wait
//! for every connection to say goodbye. The loop stops when the server's
//! cancellation token fires; an accept error (such as running out of file
//! descriptors) is logged and retried after a short pause rather than ending the
//! endpoint.

pub(crate) mod session;

use crate::state::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

/// Pause after a failed `accept` before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts IM connections until `cancel` fires.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                }
                let span = tracing::info_span!("im", %peer, user = tracing::field::Empty);
                tracker.spawn(
                    session::run(stream, Arc::clone(&shared), cancel.clone()).instrument(span),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting an IM connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    tracing::debug!("IM accept loop stopped");
}
