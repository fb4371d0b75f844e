//! C programs against the built `librcim_client`, run as processes against a
//! real `rcimd` and `rcim-server` (the testkit's).
//!
//! `tests/c/flow.c` is an app written against RC's native C ABI: builder, build,
//! listeners, hostile calls, connect (database status, then onConnected), send
//! (saved, then sent), receive, history, conversations, unread counts, destroying
//! an engine while its callback runs, disconnect, destroy. It is compiled by `cc`
//! twice: against our generated header, and against RC's own `rcim_client.h`
//! (path in `RCIM_RC_HEADER`; `.ci/run` fetches it), which proves the struct
//! layouts and enum values, not just the names.

mod support;

use rcim_tests::{InProcessServer, TestDaemon};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::library_dir;

/// Compiles `tests/c/<source>` against the header in `include_dir` and links it
/// to the built library; returns the program's path.
fn compile(source: &str, include_dir: &Path, out_dir: &Path, strict: bool) -> PathBuf {
    let lib = library_dir();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("c")
        .join(source);
    let program = out_dir.join(source.trim_end_matches(".c"));
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-D_GNU_SOURCE", "-g", "-Wall"]);
    if strict {
        cc.args(["-Wextra", "-Werror"]);
    }
    cc.arg("-I")
        .arg(include_dir)
        .arg(&path)
        .arg("-o")
        .arg(&program)
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lrcim_client", "-lpthread"]);
    let out = cc.output().expect("run cc (install a C compiler)");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    program
}

/// Runs the flow program against a fresh server and daemon; `wrapper` (e.g.
/// valgrind) runs it. Returns its stdout lines.
fn run_flow(program: &Path, wrapper: &[&str]) -> Vec<String> {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), &[]);
    let mut command = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(program);
            c
        }
        None => Command::new(program),
    };
    let mut child = command
        .arg(&token)
        .env("RCIM_SOCKET", &daemon.socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the C program");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read the program's output");
        if line == "READY" {
            server.publish_bob_to_alice(1, "from bob");
        }
        lines.push(line);
    }
    let out = child.wait_with_output().expect("wait for the C program");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && lines.last().map(String::as_str) == Some("OK"),
        "the C program failed ({}):\n{}\nstderr:\n{stderr}\nrcimd log:\n{}",
        out.status,
        lines.join("\n"),
        daemon.proc.log()
    );
    lines
}

fn our_include_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("include")
}

#[test]
fn a_c_app_runs_the_whole_flow_against_rcimd() {
    let out = tempfile::tempdir().expect("tempdir");
    let program = compile("flow.c", &our_include_dir(), out.path(), true);
    let lines = run_flow(&program, &[]);
    for step in [
        "hostile calls refused",
        "connected as alice",
        "history ok",
        "conversations ok",
        "unread ok",
        "destroy in flight is safe",
        "disconnected",
    ] {
        assert!(lines.iter().any(|l| l == step), "{step} missing: {lines:?}");
    }
}

#[test]
fn a_c_app_compiled_against_rcs_own_header_runs_unchanged() {
    let Some(header) = std::env::var_os("RCIM_RC_HEADER") else {
        assert!(
            std::env::var("RCIM_REQUIRE_RC_HEADER").as_deref() != Ok("1"),
            "RCIM_REQUIRE_RC_HEADER=1 but RCIM_RC_HEADER is not set: .ci/run fetches RC's header"
        );
        eprintln!(
            "skipped: set RCIM_RC_HEADER to RC's rcim_client.h (from the rongcloud-native-mcp-python wheel) to run this test"
        );
        return;
    };
    let header = PathBuf::from(header);
    assert!(
        header.is_file(),
        "RCIM_RC_HEADER={} is not a file",
        header.display()
    );
    let include_dir = header.parent().expect("the header's dir").to_owned();
    assert!(
        include_dir.join("rcim_client.h").is_file(),
        "RCIM_RC_HEADER must name a file called rcim_client.h"
    );
    let out = tempfile::tempdir().expect("tempdir");
    let program = compile("flow.c", &include_dir, out.path(), false);
    run_flow(&program, &[]);
}

/// The same flow under valgrind's memcheck: no invalid reads or writes and no
/// definite leaks (`--errors-for-leak-kinds=definite`; the runtime's threads still
/// running at exit hold memory valgrind counts as "possibly lost" or "still
/// reachable", which is no leak). Skipped with a message when valgrind is not
/// installed, unless `RCIM_REQUIRE_VALGRIND=1` (set in `.ci/run`, which installs
/// it).
#[test]
fn a_c_app_is_clean_under_valgrind() {
    let found = Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("RCIM_REQUIRE_VALGRIND").as_deref() != Ok("1"),
            "RCIM_REQUIRE_VALGRIND=1 but valgrind is not installed"
        );
        eprintln!("skipped: valgrind is not installed");
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let program = compile("flow.c", &our_include_dir(), out.path(), true);
    run_flow(
        &program,
        &[
            "valgrind",
            "--quiet",
            "--error-exitcode=97",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
        ],
    );
}

/// `tests/c/hostile.c`: callbacks that re-enter the library (connect from inside
/// the status listener, send from inside onConnected, destroy from inside the
/// engine's own callback), 100 threads calling one engine, and 100 threads calling
/// an engine while it is destroyed. Nothing deadlocks, crashes or calls back after
/// destroy.
#[test]
fn hostile_callers_neither_deadlock_nor_crash() {
    let out = tempfile::tempdir().expect("tempdir");
    let program = compile("hostile.c", &our_include_dir(), out.path(), true);
    let lines = run_flow(&program, &[]);
    for step in [
        "re-entry ok",
        "100 threads ok",
        "destroy from a callback ok",
        "no rcimd ok",
    ] {
        assert!(lines.iter().any(|l| l == step), "{step} missing: {lines:?}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("destroy under load ok")),
        "{lines:?}"
    );
}
