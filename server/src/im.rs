//! The IM endpoint: the TCP listener that speaks the upstream wire protocol, in the
//! clear or inside TLS.
//!
//! This module owns the accept loop only. Each accepted socket gets its own task,
//! spawned on the server's task tracker so that shutdown can wait for every
//! connection to say goodbye. With TLS configured the task first runs the TLS
//! handshake (rustls, through tokio-rustls), bounded by the same
//! [`session::HANDSHAKE_TIMEOUT`] budget as the `Connect` that follows and cut short
//! by shutdown; a failed or timed-out handshake is logged and closes only that
//! connection. Then [`session::run`] serves the (decrypted) stream. The loop stops
//! when the server's cancellation token fires; an accept error (such as running out
//! of file descriptors) is logged and retried after a short pause rather than ending
//! the endpoint.

mod delivery;
pub(crate) mod session;

use crate::state::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

/// Pause after a failed `accept` before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts IM connections until `cancel` fires; `tls` makes the endpoint speak TLS.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
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
                let deadline = Instant::now() + session::HANDSHAKE_TIMEOUT;
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
                }
                let span = tracing::info_span!("im", %peer, user = tracing::field::Empty);
                let shared = Arc::clone(&shared);
                let cancel = cancel.clone();
                match &tls {
                    None => {
                        tracker
                            .spawn(session::run(stream, shared, cancel, deadline).instrument(span));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tracker.spawn(
                            async move {
                                let handshake = tokio::select! {
                                    () = cancel.cancelled() => return,
                                    handshake = timeout_at(deadline, acceptor.accept(stream)) => handshake,
                                };
                                match handshake {
                                    Ok(Ok(stream)) => {
                                        session::run(stream, shared, cancel, deadline).await;
                                    }
                                    Ok(Err(e)) => {
                                        tracing::info!(error = %e, "TLS handshake failed");
                                    }
                                    Err(_elapsed) => {
                                        tracing::info!("TLS handshake timed out");
                                    }
                                }
                            }
                            .instrument(span),
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting an IM connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    tracing::debug!("IM accept loop stopped");
}
