//! The listener: binds the local socket and admits only the daemon's own user.
//!
//! Binding happens first thing at start-up, before the daemon is ready, so clients
//! can attach (and retry briefly) while the rest starts. The checks, in order:
//!
//! 1. The socket's directory is created owner-only (0700) if missing; an existing
//!    one must be a real directory (not a symlink), owned by us, and not writable by
//!    group or others, or we refuse to use it.
//! 2. An existing path must be a socket: if a daemon answers on it, we exit rather
//!    than steal it; if nobody answers it is a stale socket from a crash and is
//!    removed. Anything else (a file, a symlink) is refused.
//! 3. The socket is created 0600 (fchmod before bind, no umask race).
//!
//! Under socket activation (`rcimd.socket`) the service manager has already bound
//! the socket with the unit's mode and directory; [`adopt`] takes that listener
//! over instead, and the file stays the manager's (never unlinked here).
//!
//! Every accepted connection is checked with the kernel's peer credentials: the same
//! effective uid as the daemon, or root, may attach; anyone else is closed before the
//! handshake, with a log line saying who.

use crate::Context;
use interprocess::local_socket::tokio::{Listener, prelude::*};
use interprocess::local_socket::{GenericFilePath, ListenerOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the socket could not be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Another daemon serves the socket.
    #[error("another rcimd is already running on {0}; stop it first, or pass a different --socket")]
    InUse(PathBuf),
    /// The path or its directory is not safe to use.
    #[error("refusing to use {path}: {why}")]
    Unsafe {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The OS refused.
    #[error("cannot listen on {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

/// A bound socket, not yet accepting.
pub struct Bound {
    listener: Listener,
    path: PathBuf,
}

impl Bound {
    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Binds the socket at `path` after the safety checks above.
pub fn bind(path: &Path) -> Result<Bound, BindError> {
    let io_err = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    prepare_dir(dir)?;
    clear_stale(path)?;
    let name = path.to_fs_name::<GenericFilePath>().map_err(io_err)?;
    let options = ListenerOptions::new().name(name).reclaim_name(true);
    #[cfg(unix)]
    let options = {
        use interprocess::os::unix::local_socket::ListenerOptionsExt;
        options.mode(0o600)
    };
    let listener = options.create_tokio().map_err(|e| {
        if e.kind() == io::ErrorKind::AddrInUse {
            BindError::InUse(path.to_owned())
        } else {
            io_err(e)
        }
    })?;
    Ok(Bound {
        listener,
        path: path.to_owned(),
    })
}

/// Takes over a listening Unix socket inherited from a service manager (socket
/// activation). Must run inside the tokio runtime.
#[cfg(unix)]
pub fn adopt(listener: std::os::unix::net::UnixListener) -> Result<Bound, BindError> {
    let path = listener
        .local_addr()
        .ok()
        .and_then(|addr| addr.as_pathname().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("(inherited socket)"));
    let fd = std::os::fd::OwnedFd::from(listener);
    let listener = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(fd)
        .map_err(|source| BindError::Io {
            path: path.clone(),
            source,
        })?;
    tracing::info!(
        "using the socket inherited from the service manager: {}",
        path.display()
    );
    Ok(Bound {
        listener: listener.into(),
        path,
    })
}

#[cfg(unix)]
fn prepare_dir(dir: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let unsafe_dir = |why: String| BindError::Unsafe {
        path: dir.to_owned(),
        why,
    };
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            crate::store::create_private_dir(dir).map_err(|source| BindError::Io {
                path: dir.to_owned(),
                source,
            })?;
            Ok(())
        }
        Err(source) => Err(BindError::Io {
            path: dir.to_owned(),
            source,
        }),
        Ok(meta) => {
            if meta.file_type().is_symlink() {
                return Err(unsafe_dir("the socket directory is a symlink".into()));
            }
            if !meta.is_dir() {
                return Err(unsafe_dir("the socket directory is not a directory".into()));
            }
            let me = rustix::process::geteuid().as_raw();
            if meta.uid() != me {
                return Err(unsafe_dir(format!(
                    "the socket directory belongs to uid {}, not to us (uid {me})",
                    meta.uid()
                )));
            }
            if meta.permissions().mode() & 0o022 != 0 {
                return Err(unsafe_dir(format!(
                    "the socket directory is writable by others (mode {:o}); run chmod go-w on it",
                    meta.permissions().mode() & 0o7777
                )));
            }
            Ok(())
        }
    }
}

#[cfg(not(unix))]
fn prepare_dir(_dir: &Path) -> Result<(), BindError> {
    Ok(())
}

/// Removes a stale socket left by a crashed daemon; refuses to touch a live one or
/// anything that is not a socket.
#[cfg(unix)]
fn clear_stale(path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Io {
                path: path.to_owned(),
                source,
            });
        }
        Ok(meta) => meta,
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::Unsafe {
            path: path.to_owned(),
            why: "it exists and is not a socket (a symlink or a file); remove it if it is yours"
                .into(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!("removing the stale socket {}", path.display());
            std::fs::remove_file(path).map_err(|source| BindError::Io {
                path: path.to_owned(),
                source,
            })
        }
        Err(source) => Err(BindError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(not(unix))]
fn clear_stale(_path: &Path) -> Result<(), BindError> {
    Ok(())
}

/// Accepts clients until `shutdown`, spawning a session for each admitted one.
pub async fn run(
    bound: Bound,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut next_id = 0u64;
    loop {
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = bound.listener.accept() => match accepted {
                Ok(stream) => stream,
                Err(e) => {
                    // EMFILE and friends: back off a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        next_id += 1;
        let Some(pid) = admit(&stream, next_id) else {
            continue;
        };
        tracker.spawn(crate::session::serve(
            stream,
            next_id,
            pid,
            Arc::clone(&ctx),
            shutdown.clone(),
        ));
    }
    tracing::debug!("listener stopped");
}

/// Checks the peer's credentials. `Some(pid)` admits.
fn admit(stream: &interprocess::local_socket::tokio::Stream, id: u64) -> Option<Option<i64>> {
    let creds = match stream.peer_creds() {
        Ok(creds) => creds,
        Err(e) => {
            tracing::warn!("client #{id} refused: its credentials cannot be read: {e}");
            return None;
        }
    };
    let pid = creds.pid().map(i64::from);
    #[cfg(unix)]
    {
        let me = rustix::process::geteuid().as_raw();
        match creds.euid() {
            Some(uid) if uid == me || uid == 0 => {}
            Some(uid) => {
                tracing::warn!(
                    "client #{id} (pid {}) refused: it runs as uid {uid}, this daemon serves uid {me} only",
                    pid.map_or("unknown".to_string(), |p| p.to_string())
                );
                return None;
            }
            None => {
                tracing::warn!("client #{id} refused: the OS did not report its uid");
                return None;
            }
        }
    }
    Some(pid)
}
