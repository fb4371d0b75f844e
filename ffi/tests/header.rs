//! The committed `include/rcim_client.h` is what cbindgen generates from the crate
//! now. Regenerate it with `RCIM_BLESS=1 cargo test -p rcim-ffi --test header`
//! (the convention of `proto/tests/golden.rs`).

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("read ffi/cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = crate_dir.join("include").join("rcim_client.h");
    if std::env::var_os("RCIM_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write the header");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `RCIM_BLESS=1 cargo test -p rcim-ffi --test header` and commit it",
        path.display()
    );
}
