//! A blocking face for [`Client`](crate::Client), for tools and scripts that want
//! plain function calls and no async runtime of their own (`rcimctl` is one).
//!
//! Each [`Client`] owns a single-threaded tokio runtime and drives it only while one
//! of its methods runs; between calls, frames from the daemon wait in the socket.
//! Do not use it inside async code: dropping its runtime there panics. Use the
//! async [`Client`](crate::Client) instead.

use crate::client::{self, ClientOptions, Connected};
use crate::error::ClientError;
use rcim_proto::ipc::{Callback, Welcome};
use rcim_proto::{StatusSnapshot, Token};
use std::sync::Arc;

/// A blocking [`Client`](crate::Client).
#[derive(Debug)]
pub struct Client {
    // Declared before `runtime` so the session is dropped before the runtime.
    inner: client::Client,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl Client {
    /// Attaches to `rcimd`; see [`Client::attach`](crate::Client::attach).
    pub fn attach(options: ClientOptions) -> Result<Client, ClientError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ClientError::Io {
                socket: options.socket_path(),
                source: Arc::new(e),
            })?;
        let inner = runtime.block_on(client::Client::attach(options))?;
        Ok(Client {
            inner,
            runtime: Arc::new(runtime),
        })
    }

    /// The daemon's handshake answer.
    pub fn welcome(&self) -> &Welcome {
        self.inner.welcome()
    }

    /// Asks the daemon for its full status.
    pub fn status(&self) -> Result<StatusSnapshot, ClientError> {
        self.runtime.block_on(self.inner.status())
    }

    /// RC's `connect(token, timeout)`; see [`Client::connect`](crate::Client::connect).
    pub fn connect(&self, token: Token, timeout_secs: i32) -> Result<ConnectCall, ClientError> {
        let inner = self
            .runtime
            .block_on(self.inner.connect(token, timeout_secs))?;
        Ok(ConnectCall {
            inner,
            runtime: Arc::clone(&self.runtime),
        })
    }

    /// Signs out and deletes the stored token; returns the daemon's RC code.
    pub fn logout(&self) -> Result<i32, ClientError> {
        self.runtime.block_on(self.inner.logout())
    }

    /// RC's `disconnect(receivePush)`; returns the daemon's RC code.
    pub fn disconnect(&self, receive_push: bool) -> Result<i32, ClientError> {
        self.runtime.block_on(self.inner.disconnect(receive_push))
    }
}

/// A blocking [`ConnectCall`](crate::ConnectCall).
#[derive(Debug)]
pub struct ConnectCall {
    inner: client::ConnectCall,
    runtime: Arc<tokio::runtime::Runtime>,
}

impl ConnectCall {
    /// The immediate result: 0 accepted, otherwise the RC error (no callbacks).
    pub fn code(&self) -> i32 {
        self.inner.code()
    }

    /// Waits for the next callback; see
    /// [`ConnectCall::next_callback`](crate::ConnectCall::next_callback).
    pub fn next_callback(&mut self) -> Option<Callback> {
        self.runtime.block_on(self.inner.next_callback())
    }

    /// Waits for the end of the call; see
    /// [`ConnectCall::connected`](crate::ConnectCall::connected).
    pub fn connected(self) -> Connected {
        self.runtime.block_on(self.inner.connected())
    }
}
