//! What an app chooses when it attaches: [`ClientOptions`] (where the daemon is,
//! how long to wait for it, whether to re-attach), [`ReattachPolicy`] (the
//! re-attach backoff) and [`EngineOptions`] (the same options with the
//! [`Engine`](crate::Engine)'s defaults).
//!
//! Plain data with defaults and doc-tested examples; the driver
//! ([`crate::driver`]) is what acts on them. [`EngineOptions`] wraps a
//! [`ClientOptions`] rather than repeating its fields, so a new attach option is
//! added once and both APIs have it.

use std::path::PathBuf;
use std::time::Duration;

///
/// ```
/// use rcim_client::{ClientOptions, ReattachPolicy};
/// use std::time::Duration;
///
/// let options = ClientOptions {
///     wait_for_daemon: Duration::from_secs(2),
///     reattach: Some(ReattachPolicy::default()),
///     ..ClientOptions::named("my-app")
/// };
/// assert_eq!(options.client_name, "my-app");
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The daemon's socket; `None` means
    /// [`default_socket_path`](rcim_proto::paths::default_socket_path), which honours
    /// `RCIM_SOCKET`.
    pub socket: Option<PathBuf>,
    /// A name for the daemon's logs and `rcimctl status`, e.g. the app's name.
    pub client_name: String,
    /// How long to keep retrying while nothing listens on the socket yet (the daemon
    /// may be starting together with the app). The default, zero, tries once and
    /// fails at once with
    /// [`ClientError::DaemonNotRunning`](crate::ClientError::DaemonNotRunning).
    pub wait_for_daemon: Duration,
    /// Whether and how to re-attach when the daemon connection drops (rcimd stopped
    /// or restarted). `None` (the default for [`Client`](crate::Client)): the client
    /// closes, its event streams end, and the app attaches again itself. `Some`: the
    /// client reconnects by itself and resumes every event stream where it was,
    /// without loss or repeat; see [`ReattachPolicy`]. (The
    /// [`Engine`](crate::Engine) re-attaches by default.)
    pub reattach: Option<ReattachPolicy>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            socket: None,
            client_name: "rcim-client".to_owned(),
            wait_for_daemon: Duration::ZERO,
            reattach: None,
        }
    }
}

impl ClientOptions {
    /// Options with this client name and every other field at its default.
    ///
    /// ```
    /// let options = rcim_client::ClientOptions::named("tray");
    /// assert!(options.reattach.is_none());
    /// ```
    pub fn named(client_name: impl Into<String>) -> Self {
        Self {
            client_name: client_name.into(),
            ..Self::default()
        }
    }

    /// The socket these options point at.
    ///
    /// ```
    /// let options = rcim_client::ClientOptions {
    ///     socket: Some("/tmp/x/rcimd.sock".into()),
    ///     ..Default::default()
    /// };
    /// assert_eq!(options.socket_path(), std::path::Path::new("/tmp/x/rcimd.sock"));
    /// ```
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(rcim_proto::paths::default_socket_path)
    }
}

/// How a client re-attaches after losing the daemon ([`ClientOptions::reattach`]).
///
/// After the connection drops, the client waits `first_delay`, tries to connect and
/// handshake, and doubles the wait after each failure up to `max_delay`. It gives up
/// after `give_up_after` (then the client closes as if re-attach were off), or never
/// with `None`. It also gives up at once when the new daemon refuses it (another
/// protocol version, another user): retrying cannot help.
///
/// What the app sees: every call waiting at the moment of the drop fails as without
/// re-attach ([`ClientError::Disconnected`](crate::ClientError::Disconnected); a
/// `connect` or `send_message` waiting for its last callback gets it with 30011);
/// new calls fail with `Disconnected` until the client is back. Event streams and
/// the engine's listeners do not end: they get a synthesized
/// `StatusChanged(suspend, code 30011)` at the drop and a `StatusChanged` with the
/// new daemon's status once re-attached
/// ([`Client::reattach_count`](crate::Client::reattach_count) counts the
/// re-attaches); the client then subscribes from the last message id it passed on,
/// so the messages stored meanwhile arrive next, once each, in order. (A client that
/// has not received any message yet resumes live: it has no position to resume
/// from.)
///
/// ```
/// use rcim_client::ReattachPolicy;
/// use std::time::Duration;
///
/// let policy = ReattachPolicy::default();
/// assert_eq!(policy.first_delay, Duration::from_millis(50));
/// assert_eq!(policy.max_delay, Duration::from_secs(2));
/// assert_eq!(policy.give_up_after, None);
/// let bounded = ReattachPolicy { give_up_after: Some(Duration::from_secs(30)), ..policy };
/// # drop(bounded);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReattachPolicy {
    /// The wait before the first try (default 50 ms).
    pub first_delay: Duration,
    /// The longest wait between tries (default 2 s).
    pub max_delay: Duration,
    /// How long to keep trying; `None` (the default) tries forever.
    pub give_up_after: Option<Duration>,
}

impl Default for ReattachPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
            give_up_after: None,
        }
    }
}

/// How [`Engine::create`](crate::Engine::create) finds the daemon (RC's
/// `RCIMIWEngineOptions`, reduced to what a local client needs: the server settings
/// live in `rcimd`).
///
/// The engine attaches through a [`Client`](crate::Client), so its options are a
/// [`ClientOptions`] with the engine's defaults: client name `rcim-engine`, and
/// re-attach **on** (forever, 50 ms doubling to 2 s between tries; set
/// `client.reattach` to `None` to turn it off, and the engine then attaches again on
/// its next call). See [`ReattachPolicy`] for what the listeners see.
///
/// ```
/// use rcim_client::{EngineOptions, ReattachPolicy};
/// use std::time::Duration;
///
/// let mut options = EngineOptions::named("my-app");
/// options.client.wait_for_daemon = Duration::from_secs(2);
/// options.client.reattach = Some(ReattachPolicy {
///     give_up_after: Some(Duration::from_secs(60)),
///     ..Default::default()
/// });
/// assert!(options.client.reattach.is_some());
/// assert_eq!(EngineOptions::default().client.client_name, "rcim-engine");
/// ```
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Where and how to attach: the socket, the client name, how long each attach
    /// waits for the daemon to start (zero, the default, fails at once; set a couple
    /// of seconds when the app may start together with `rcimd`), and re-attach.
    pub client: ClientOptions,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            client: ClientOptions {
                client_name: "rcim-engine".to_owned(),
                reattach: Some(ReattachPolicy::default()),
                ..ClientOptions::default()
            },
        }
    }
}

impl EngineOptions {
    /// The engine's defaults with this client name.
    ///
    /// ```
    /// let options = rcim_client::EngineOptions::named("tray");
    /// assert_eq!(options.client.client_name, "tray");
    /// assert!(options.client.reattach.is_some());
    /// ```
    pub fn named(client_name: impl Into<String>) -> Self {
        let mut options = Self::default();
        options.client.client_name = client_name.into();
        options
    }
}
