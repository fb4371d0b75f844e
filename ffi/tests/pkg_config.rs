//! `rcim_client.pc.in`, filled in as docs/OPERATIONS.md says, is a pkg-config file
//! that names the library and the header. Skipped with a message when pkg-config
//! is not installed.

use std::path::Path;
use std::process::Command;

#[test]
fn the_pkg_config_file_names_the_library_and_the_header() {
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: pkg-config is not installed");
        return;
    }
    let template =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("rcim_client.pc.in"))
            .expect("read rcim_client.pc.in");
    let dir = tempfile::tempdir().expect("tempdir");
    let filled = template
        .replace("@PREFIX@", "/opt/rcim")
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    assert!(!filled.contains('@'), "a placeholder is left: {filled}");
    std::fs::write(dir.path().join("rcim_client.pc"), filled).expect("write the .pc file");
    let query = |args: &[&str]| {
        let out = Command::new("pkg-config")
            .args(args)
            .arg("rcim_client")
            .env("PKG_CONFIG_PATH", dir.path())
            .output()
            .expect("run pkg-config");
        assert!(
            out.status.success(),
            "pkg-config {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(query(&["--cflags"]), "-I/opt/rcim/include");
    assert_eq!(query(&["--libs"]), "-L/opt/rcim/lib -lrcim_client");
    assert_eq!(query(&["--modversion"]), env!("CARGO_PKG_VERSION"));
}
