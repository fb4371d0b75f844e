//! rcimd given several servers fails over between them (issue 17, item 3).
//!
//! Two real `rcim-server` processes play two nodes of one service: the same app
//! key and secret, so a token from one is good on the other. They keep separate
//! databases (a shared one is the PostgreSQL work of issue 17, not here), so to
//! stand for nodes of one service the publisher sends every message through both
//! nodes' Server API, in the same order: each node then holds the same inbox for
//! bob, with the same sequence numbers, as nodes over a shared database would.

use rcim_tests::proxy::{FaultProxy, Mode};
use rcim_tests::{Rng, TestDaemon, TestServer, bin, query_db, wait_stored};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Sends `text` from alice to bob through `node`'s Server API.
fn publish(node: &TestServer, text: &str) {
    let content = format!("{{\"content\":\"{text}\"}}");
    let (status, body) = node.api(
        "/message/private/publish.json",
        &[
            ("fromUserId", "alice"),
            ("toUserId", "bob"),
            ("objectName", "RC:TxtMsg"),
            ("content", &content),
        ],
    );
    assert_eq!(status, 200, "{body}");
}

/// The contents of bob's received messages in the daemon's database, in order.
fn received(daemon: &TestDaemon) -> Vec<String> {
    query_db(
        &daemon.data_dir,
        "bob",
        "SELECT content FROM messages WHERE direction = 1 ORDER BY id",
    )
    .into_iter()
    .map(|row| row[0].clone())
    .collect()
}

/// Polls `rcimctl status --json` until the daemon is connected to `server`;
/// returns the status.
fn wait_connected_to(daemon: &TestDaemon, server: &str, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let status = daemon.status();
        if status["status"] == "connected" && status["server"] == server {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "not connected to {server} within {limit:?}: {status}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_node_is_left_for_the_next_within_the_schedule_losing_and_doubling_nothing() {
    const MESSAGES: usize = 200;
    let mut rng = Rng::from_env("a_killed_node_is_left_for_the_next");
    let node1 = Mutex::new(TestServer::start());
    let node2 = TestServer::start();
    let (url1, url2) = (node1.lock().expect("node1").url(), node2.url());
    let token = node1.lock().expect("node1").token("bob");
    node2.token("bob");
    let daemon = TestDaemon::start(&url1, &["--server", &url2]);
    daemon.connect(&token);
    let status = daemon.status();
    assert_eq!(status["server"], url1, "the first node that answers");

    // node1 is killed with -9 in the middle of the stream, after a random number
    // of messages.
    let killed = Mutex::new(false);
    let published = AtomicUsize::new(0);
    let kill_after = 30 + usize::try_from(rng.below(140)).expect("small");
    let failover = std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..MESSAGES {
                let text = format!("m{i}");
                {
                    // Held across node1's publish, so the kill never lands inside it.
                    let node1 = node1.lock().expect("node1");
                    if !*killed.lock().expect("flag") {
                        publish(&node1, &text);
                    }
                }
                publish(&node2, &text);
                published.fetch_add(1, Ordering::SeqCst);
            }
        });
        while published.load(Ordering::SeqCst) < kill_after {
            std::thread::sleep(Duration::from_millis(1));
        }
        let killed_at = {
            let mut node1 = node1.lock().expect("node1");
            node1.kill();
            *killed.lock().expect("flag") = true;
            Instant::now()
        };
        wait_connected_to(&daemon, &url2, Duration::from_secs(10));
        killed_at.elapsed()
    });

    wait_stored(&daemon, "bob", MESSAGES, Duration::from_secs(60));
    let want: Vec<String> = (0..MESSAGES)
        .map(|i| format!("{{\"content\":\"m{i}\"}}"))
        .collect();
    assert_eq!(
        received(&daemon),
        want,
        "every message once, in order, across the failover"
    );
    let status = daemon.status();
    assert_eq!(status["server"], url2);
    assert_eq!(status["reconnects"], 1);
    assert_eq!(node2.stats().connects_accepted, 1, "one connect to node2");
    // Dropped at the kill, then 0.05 s (node1 again, refused), then 0.25 s (node2):
    // ~0.3 s; the bound leaves room for a loaded machine, not for another step.
    assert!(
        failover < Duration::from_secs(2),
        "failed over after {failover:?}"
    );
    eprintln!(
        "node1 killed after {kill_after} of {MESSAGES} messages; connected to node2 {failover:?} after the kill; {MESSAGES} messages, 0 lost, 0 duplicated"
    );
}

#[test]
fn a_black_holed_first_node_is_left_for_the_second() {
    let node1 = TestServer::start();
    let node2 = TestServer::start();
    let token = node1.token("bob");
    node2.token("bob");
    let hole = FaultProxy::start(node1.im_addr.parse().expect("im_addr"));
    hole.set_mode(Mode::BlackHole);
    let daemon = TestDaemon::start(&hole.url(), &["--server", &node2.url()]);
    let start = Instant::now();
    daemon.connect(&token);
    let took = start.elapsed();
    let status = daemon.status();
    assert_eq!(status["status"], "connected");
    assert_eq!(status["server"], node2.url());
    // The CONNACK timeout (10 s) on node1, then the first step (0.05 s).
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(13),
        "connected after {took:?}"
    );
    assert_eq!(status["last_error"]["code"], 31000, "{status}");
    let message = status["last_error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(&hole.url()), "{message}");
    assert_eq!(node1.stats().connects_accepted, 0);
    assert_eq!(node2.stats().connects_accepted, 1);

    // Messages flow through node2.
    publish(&node2, "through node2");
    wait_stored(&daemon, "bob", 1, Duration::from_secs(10));
    eprintln!("black-holed node1: connected to node2 after {took:?}");
}

#[test]
fn a_refused_token_is_not_tried_on_the_other_node() {
    let node1 = TestServer::start();
    let node2 = TestServer::start();
    let token = node1.token("bob");
    let (payload, _) = token.split_once('.').expect("a signed token");
    let forged = format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let daemon = TestDaemon::start(&node1.url(), &["--server", &node2.url()]);
    let out = rcim_tests::ctl(
        &daemon.socket,
        &["connect", "--token-stdin", "--timeout", "20"],
        Some(&forged),
    );
    assert!(!out.status.success(), "a forged token cannot connect");
    let status = daemon.wait_status("token_incorrect");
    assert_eq!(status["server"], node1.url());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(node1.stats().connects_rejected, 1);
    let other = node2.stats();
    assert_eq!(
        other.connects_accepted + other.connects_rejected,
        0,
        "the other node was never asked"
    );
}

/// Runs `rcimd` with `args` and `env` and no config file; returns its exit code,
/// stdout and stderr.
fn rcimd(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin("rcimd"))
        .args(args)
        .env_remove("RCIM_SERVER")
        .envs(env.iter().copied())
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .expect("run rcimd");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_list_of_servers_is_taken_from_flags_or_the_environment_and_bad_ones_are_refused() {
    let (code, out, err) = rcimd(
        &[
            "--server",
            "rcim://a:1",
            "--server",
            "rcim://b:2",
            "--print-config",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("server = [\"rcim://a:1\", \"rcim://b:2\"]\n"),
        "{out}"
    );
    let (code, out, err) = rcimd(
        &["--print-config"],
        &[("RCIM_SERVER", "rcim://a:1,rcim://b:2")],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("server = [\"rcim://a:1\", \"rcim://b:2\"]\n"),
        "{out}"
    );

    let refusals = [
        (
            vec!["--server", "rcim://a:1", "--server", "rcim://a:1"],
            vec![],
            "server: rcim://a:1 is listed twice; give each server once",
        ),
        (
            vec!["--server", "rcim://a:1", "--server", "a:2"],
            vec![],
            "server: a:2: the server must look like rcim://HOST:PORT or rcims://HOST:PORT (TLS)",
        ),
        (
            vec![],
            vec![("RCIM_SERVER", "rcim://a:1,,rcim://b:2")],
            "server: entry 2 of the list of servers is empty",
        ),
        (
            vec!["--server", "rcims://a:1,rcim://b:2"],
            vec![],
            "server: rcims://a:1 and rcim://b:2: every server in the list must use the same scheme",
        ),
    ];
    for (args, env, want) in refusals {
        let mut args = args.clone();
        args.extend(["--app-key", "k", "--print-config"]);
        let (code, _, err) = rcimd(&args, &env);
        assert_eq!(code, Some(2), "{args:?} {env:?}: {err}");
        assert!(err.contains(want), "{args:?} {env:?}: {err}");
    }
}

#[test]
fn messages_flow_through_the_second_node_once_the_first_is_gone_at_start() {
    let node1 = TestServer::start();
    let node2 = TestServer::start();
    let token = node1.token("bob");
    node2.token("bob");
    let url1 = node1.url();
    drop(node1);
    let daemon = TestDaemon::start(&url1, &["--server", &node2.url()]);
    daemon.connect(&token);
    assert_eq!(daemon.status()["server"], node2.url());
    for i in 0..3 {
        publish(&node2, &format!("n{i}"));
    }
    wait_stored(&daemon, "bob", 3, Duration::from_secs(10));
    let want: Vec<String> = (0..3)
        .map(|i| format!("{{\"content\":\"n{i}\"}}"))
        .collect();
    assert_eq!(received(&daemon), want);
}

/// An `rcim-server` serving TLS with a certificate from a CA of its own; the CA's
/// PEM file and the node's `rcims://localhost:PORT`.
fn tls_node(dir: &std::path::Path) -> (TestServer, String, String) {
    let (ca, cert, key) = rcim_server::testca::TestCa::new().write_files(dir);
    let cert = cert.to_string_lossy().into_owned();
    let key = key.to_string_lossy().into_owned();
    let node = TestServer::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    let port = node.im_addr.rsplit(':').next().expect("port").to_owned();
    (
        node,
        ca.to_string_lossy().into_owned(),
        format!("rcims://localhost:{port}"),
    )
}

#[test]
fn a_node_whose_certificate_fails_is_left_for_the_next() {
    let (dir1, dir2) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    // node1's certificate comes from a CA the daemon does not trust.
    let (node1, _untrusted, url1) = tls_node(dir1.path());
    let (node2, trusted, url2) = tls_node(dir2.path());
    let token = node2.token("bob");
    let daemon = TestDaemon::start(&url1, &["--server", &url2, "--ca-file", &trusted]);
    let start = Instant::now();
    daemon.connect(&token);
    let took = start.elapsed();
    let status = daemon.status();
    assert_eq!(status["server"], url2);
    assert_eq!(status["last_error"]["code"], 34032, "{status}");
    assert!(took < Duration::from_secs(3), "connected after {took:?}");
    let tried = node1.stats();
    assert_eq!(tried.connects_accepted + tried.connects_rejected, 0);
    publish(&node2, "over TLS");
    wait_stored(&daemon, "bob", 1, Duration::from_secs(10));
}
