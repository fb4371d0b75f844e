//! The dependency rule: apps that link rcim-client must stay small, so it never
//! depends, directly or through another crate, on what belongs to the daemon or the
//! server: the database (rusqlite, libsqlite3-sys), a keyring store (keyring-core or
//! any `*keyring*` crate), D-Bus (zbus), rcimd or rcim-server.
//!
//! Like tailscale's deps tests: read the resolved graph with `cargo metadata`, walk
//! rcim-client's normal (not dev, not build) dependencies for this platform, and on
//! a forbidden crate fail with the path that reaches it, so the change to undo is
//! plain.

use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;

/// Why `name` may not be reached from rcim-client, or `None` when it may.
fn forbidden(name: &str) -> Option<&'static str> {
    match name {
        "rusqlite" | "libsqlite3-sys" => Some("the message database belongs to rcimd"),
        "zbus" => Some("D-Bus (the Secret Service) belongs to rcimd's token vault"),
        "rcimd" => Some("apps talk to the daemon over its socket; they never link it"),
        "rcim-server" => Some("the IM server is another process"),
        name if name.contains("keyring") => Some("the token vault belongs to rcimd"),
        _ => None,
    }
}

/// One forbidden crate reached from the root: the package names from the root to
/// it, and why it is forbidden.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    path: Vec<String>,
    why: &'static str,
}

/// Walks `metadata` (the JSON of `cargo metadata --format-version 1`) from the
/// package named `root` over normal dependency edges, breadth first (so each path
/// is a shortest one), and returns every forbidden package reached.
fn violations(metadata: &Value, root: &str) -> Result<Vec<Violation>, String> {
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata has no `packages` list")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata has no resolved graph (`resolve.nodes`)")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let start = nodes
        .keys()
        .copied()
        .find(|id| names.get(id) == Some(&root))
        .ok_or_else(|| format!("{root} is not in the resolved graph"))?;

    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    let mut found = Vec::new();
    while let Some(id) = queue.pop_front() {
        let name = names.get(id).copied().unwrap_or(id);
        if let Some(why) = forbidden(name) {
            let mut path = vec![name.to_owned()];
            let mut at = id;
            while let Some(&up) = parent.get(at) {
                path.push(names.get(up).copied().unwrap_or(up).to_owned());
                at = up;
            }
            path.reverse();
            found.push(Violation { path, why });
        }
        let deps = nodes.get(id).and_then(|n| n["deps"].as_array());
        for dep in deps.into_iter().flatten() {
            // A dependency may be normal, dev and build at once; only a normal edge
            // ends up in an app that links rcim-client.
            let normal = dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()));
            let Some(pkg) = dep["pkg"].as_str() else {
                continue;
            };
            if normal && seen.insert(pkg) {
                parent.insert(pkg, id);
                queue.push_back(pkg);
            }
        }
    }
    Ok(found)
}

/// The host's target triple from `rustc -vV`; `None` when it cannot be read (the
/// walk then counts every platform's dependencies, which is only stricter).
fn host_triple() -> Option<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).arg("-vV").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
}

/// `cargo metadata` for this workspace, resolved for the host platform.
fn metadata() -> Value {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(host) = host_triple() {
        command.args(["--filter-platform", &host]);
    }
    let out = command
        .output()
        .expect("cannot run `cargo metadata`: is cargo on PATH (or CARGO set)?");
    assert!(
        out.status.success(),
        "`cargo metadata --locked --offline` failed (run `cargo fetch` first if the \
         dependencies are not downloaded):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata printed JSON")
}

#[test]
fn rcim_client_never_depends_on_the_daemon_side() {
    let found = violations(&metadata(), "rcim-client").expect("a readable dependency graph");
    let report: Vec<String> = found
        .iter()
        .map(|v| format!("  {} ({})", v.path.join(" -> "), v.why))
        .collect();
    assert!(
        report.is_empty(),
        "rcim-client must stay small for the apps that link it, but it depends on:\n{}\n\
         Keep that code in rcimd (or rcim-server) and drop the dependency.",
        report.join("\n")
    );
}

/// The walk itself, on a made-up graph: it follows normal edges however deep, names
/// the path, and ignores dev- and build-only edges.
#[test]
fn the_walk_names_the_path_and_ignores_dev_and_build_edges() {
    let dep = |pkg: &str, kind: Value| serde_json::json!({ "pkg": pkg, "dep_kinds": [{ "kind": kind, "target": null }] });
    let package = |id: &str| serde_json::json!({ "id": id, "name": id });
    let packages: Vec<Value> = [
        "app",
        "mid",
        "rusqlite",
        "tempfile",
        "rcimd",
        "cc",
        "keyring-core",
    ]
    .map(package)
    .into();
    let metadata = serde_json::json!({
        "packages": packages,
        "resolve": { "nodes": [
            { "id": "app", "deps": [
                dep("mid", Value::Null),
                dep("tempfile", "dev".into()),
                dep("cc", "build".into()),
            ] },
            { "id": "mid", "deps": [dep("rusqlite", Value::Null)] },
            { "id": "tempfile", "deps": [dep("rcimd", Value::Null)] },
            { "id": "cc", "deps": [dep("keyring-core", Value::Null)] },
            { "id": "rusqlite", "deps": [] },
            { "id": "rcimd", "deps": [] },
            { "id": "keyring-core", "deps": [] },
        ] },
    });
    let found = violations(&metadata, "app").unwrap();
    assert_eq!(
        found,
        [Violation {
            path: vec!["app".into(), "mid".into(), "rusqlite".into()],
            why: "the message database belongs to rcimd",
        }]
    );
    assert!(forbidden("linux-keyutils-keyring-store").is_some());
    assert!(forbidden("zbus").is_some());
    assert!(forbidden("rcim-server").is_some());
    assert!(forbidden("rcim-proto").is_none());
}
