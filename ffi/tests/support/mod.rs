//! What the tests that load the built library share: building it.

use rcim_tests::binaries::TargetDir;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory holding the freshly built `librcim_client` of this test's
/// profile (built once per test process, so the tests use the current code).
pub fn library_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = TargetDir::of_current_exe().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "rcim-ffi", "--lib"]);
        if dir.is_release() {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build -p rcim-ffi");
        assert!(status.success(), "cargo build -p rcim-ffi failed: {status}");
        dir.path().to_owned()
    })
}

/// The built shared library itself (`librcim_client.so` on Linux).
#[allow(dead_code)] // not every test binary that includes this module loads the file
pub fn library_file() -> PathBuf {
    library_dir().join(format!(
        "{}rcim_client{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}
