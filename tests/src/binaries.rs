//! Building the workspace's binaries before a run, for the cross-process tests and
//! for the bench. Both start real `rcimd`, `rcim-server` and `rcimctl` processes and
//! must run the current code, so each builds them first, with the profile it was
//! itself built with, and runs them from the target dir it runs from. What differs
//! between the two (which packages, and whether binaries already built will do when
//! cargo cannot be run) is an argument.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// What [`TargetDir::build`] does when cargo cannot be started at all (a machine
/// with the binaries but no toolchain).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WithoutCargo {
    /// Fail: the tests must never run stale binaries.
    Fail,
    /// Say so on stderr and use the binaries already in the target dir (the bench,
    /// which may be copied to a machine with its binaries beside it).
    UseBuilt,
}

/// The target dir of one profile (`target/debug` or `target/release`): where cargo
/// puts the workspace binaries built with that profile.
#[derive(Clone, Debug)]
pub struct TargetDir {
    path: PathBuf,
}

impl TargetDir {
    /// The profile dir the running executable was built into: its own dir, or the
    /// dir above for a test binary, which cargo puts in `deps/`.
    pub fn of_current_exe() -> Result<Self, BuildError> {
        let exe = std::env::current_exe().map_err(BuildError::NoExecutable)?;
        let mut dir = exe.parent();
        if dir.and_then(Path::file_name).is_some_and(|n| n == "deps") {
            dir = dir.and_then(Path::parent);
        }
        match dir {
            Some(dir) => Ok(Self {
                path: dir.to_owned(),
            }),
            None => Err(BuildError::NoTargetDir(exe)),
        }
    }

    /// The dir itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is the release profile's dir.
    pub fn is_release(&self) -> bool {
        self.path.file_name().is_some_and(|n| n == "release")
    }

    /// Where the binary `name` is (or will be, once built).
    pub fn binary(&self, name: &str) -> PathBuf {
        self.path
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }

    /// Builds every binary of `packages` with this dir's profile (`cargo build
    /// --bins`, `--release` for the release dir), so that a run uses the current
    /// code. Cargo's own output goes to stderr; it is quiet when nothing changed.
    pub fn build(&self, packages: &[&str], without_cargo: WithoutCargo) -> Result<(), BuildError> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args(["build", "--quiet", "--bins"]);
        for package in packages {
            command.args(["-p", package]);
        }
        if self.is_release() {
            command.arg("--release");
        }
        match (command.status(), without_cargo) {
            (Ok(status), _) if status.success() => Ok(()),
            (Ok(status), _) => Err(BuildError::Failed(status)),
            (Err(e), WithoutCargo::UseBuilt) => {
                eprintln!("cargo is not available ({e}); using the binaries already built");
                Ok(())
            }
            (Err(e), WithoutCargo::Fail) => Err(BuildError::NoCargo(e)),
        }
    }
}

/// Why the binaries could not be built or found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The OS does not say where the running executable is.
    #[error("cannot locate the running executable: {0}")]
    NoExecutable(std::io::Error),
    /// The running executable has no parent dir.
    #[error("cannot locate the target dir of {0}")]
    NoTargetDir(PathBuf),
    /// Cargo could not be started; install a Rust toolchain or put cargo on PATH.
    #[error("cannot run cargo build: {0}")]
    NoCargo(std::io::Error),
    /// Cargo ran and failed; its errors are above on stderr.
    #[error("cargo build of the binaries failed: {0}")]
    Failed(ExitStatus),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_binary_finds_the_profile_dir_above_deps() {
        let dir = TargetDir::of_current_exe().expect("target dir");
        // This unit test runs from target/<profile>/deps/.
        assert!(dir.path().join("deps").is_dir(), "{}", dir.path().display());
    }
}
