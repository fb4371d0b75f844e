//! Where the daemon's socket lives, the same answer for `rcimd`, `rcimctl` and
//! `rcim-client`.
//!
//! Order: the `RCIM_SOCKET` environment variable; else
//! `$XDG_RUNTIME_DIR/rcim/rcimd.sock` (when the variable is set and absolute); else
//! `/run/user/<uid>/rcim/rcimd.sock` when that runtime dir exists; else
//! `<tmp>/rcim-<uid>/rcimd.sock`. The daemon creates the `rcim` directory 0700.

use std::path::PathBuf;

/// The environment variable that overrides the socket path everywhere.
pub const SOCKET_ENV: &str = "RCIM_SOCKET";

/// The socket path to use when none is given on the command line.
pub fn default_socket_path() -> PathBuf {
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    runtime_dir().join("rcim").join("rcimd.sock")
}

/// The per-user runtime directory: `$XDG_RUNTIME_DIR`, `/run/user/<uid>`, or a
/// per-user directory under the system temp dir.
pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
    {
        return dir;
    }
    #[cfg(unix)]
    {
        let uid = rustix::process::getuid().as_raw();
        let run_user = PathBuf::from(format!("/run/user/{uid}"));
        if run_user.is_dir() {
            return run_user;
        }
        std::env::temp_dir().join(format!("rcim-{uid}"))
    }
    #[cfg(not(unix))]
    {
        std::env::temp_dir().join("rcim")
    }
}
