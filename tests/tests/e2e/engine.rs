//! The connection engine across real processes: server restarts, black holes,
//! every terminal code, per-caller timeouts and the kick war. Upstream traffic goes
//! through the fault proxy, which also counts the daemon's connection attempts.

use crate::CLIENT;
use rcim_proto::ConnectionStatus;
use rcim_proto::time::now_ms;
use rcim_tests::proxy::{FaultProxy, Mode};
use rcim_tests::{
    Seen, StatusWatcher, TestDaemon, TestServer, client_output, eventually, spawn_client,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RC's schedule in seconds.
const SCHEDULE: [f64; 10] = [0.05, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The most attempts RC's schedule allows within `elapsed` after a drop, counting
/// the earliest jitter (−20 %) and one attempt of slack for timing on a busy machine.
fn max_attempts(elapsed: Duration) -> u64 {
    let mut at = 0.0;
    let mut attempts = 0;
    for step in SCHEDULE.iter().chain(std::iter::repeat(&64.0)) {
        at += step * 0.8;
        if at > elapsed.as_secs_f64() {
            break;
        }
        attempts += 1;
    }
    attempts + 1
}

fn proxy_for(server: &TestServer) -> FaultProxy {
    let addr: SocketAddr = server.im_addr.parse().expect("im_addr");
    FaultProxy::start(addr)
}

fn connected(user: &str) -> Vec<Seen> {
    vec![
        Seen::DatabaseOpened(0),
        Seen::Connected(0, Some(user.into())),
    ]
}

#[test]
fn a_server_restart_is_followed_by_schedule_reconnects_without_a_storm() {
    let mut server = TestServer::start();
    let proxy = proxy_for(&server);
    let token = server.token("alice");
    let daemon = TestDaemon::start(&proxy.url(), &[]);
    let watcher = StatusWatcher::start(&daemon.socket);
    assert_eq!(
        client_output(spawn_client(CLIENT, &daemon.socket, &token, 0)),
        connected("alice")
    );
    let before = proxy.accepted();

    server.kill();
    let killed = Instant::now();
    // From the events: a poll of `rcimctl status` can miss a short `suspend`.
    assert!(
        eventually(Duration::from_secs(10), || watcher
            .statuses()
            .iter()
            .any(|s| s == "suspend")),
        "never suspended: {:?}",
        watcher.statuses()
    );
    std::thread::sleep(Duration::from_secs(3));
    let attempts = proxy.accepted() - before;
    assert!(
        attempts <= max_attempts(killed.elapsed()),
        "{attempts} attempts in {:?}: a storm",
        killed.elapsed()
    );
    assert!(
        attempts >= 3,
        "only {attempts} attempts in 3 s: not following the schedule"
    );

    server.restart();
    daemon.wait_status("connected");
    let status = daemon.status();
    assert_eq!(status["reconnects"], 1);
    let total = proxy.accepted() - before;
    assert!(
        total <= max_attempts(killed.elapsed()),
        "{total} attempts in {:?}",
        killed.elapsed()
    );

    let seen = watcher.statuses();
    let drop_at = seen
        .iter()
        .position(|s| s == "suspend")
        .expect("suspend seen");
    assert!(
        seen[..drop_at].contains(&"connected".to_owned()),
        "{seen:?}"
    );
    assert!(
        seen[drop_at..].contains(&"connecting".to_owned()),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("connected"),
        "{seen:?}"
    );
}

#[test]
fn a_black_hole_is_noticed_and_recovered_in_real_time() {
    let server = TestServer::start();
    let proxy = proxy_for(&server);
    let token = server.token("alice");
    let daemon = TestDaemon::start(
        &proxy.url(),
        &["--ping-interval", "0.5", "--pong-timeout", "0.5"],
    );
    assert_eq!(
        client_output(spawn_client(CLIENT, &daemon.socket, &token, 0)),
        connected("alice")
    );

    // Watched as events, not by polling `rcimctl status`: `suspend` lasts only for
    // the first backoff step (50 ms), shorter than a status round trip here.
    let watcher = StatusWatcher::start(&daemon.socket);
    proxy.set_mode(Mode::BlackHole);
    let start = Instant::now();
    let suspended = || {
        watcher
            .states()
            .into_iter()
            .find(|s| s.status == ConnectionStatus::Suspend)
    };
    assert!(
        eventually(Duration::from_secs(10), || suspended().is_some()),
        "never suspended: {:?}",
        watcher.statuses()
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "noticed after {:?}",
        start.elapsed()
    );
    assert_eq!(
        suspended().map(|s| s.code),
        Some(30013),
        "the pong timed out"
    );

    proxy.set_mode(Mode::Pass);
    daemon.wait_status("connected");
    assert_eq!(daemon.status()["reconnects"], 1);
}

/// Two callers wait while the server is unreachable; the server then answers one
/// attempt with a terminal code. Returns what each caller saw.
fn two_waiting_callers(daemon: &TestDaemon, proxy: &FaultProxy, token: &str) -> Vec<Vec<Seen>> {
    proxy.set_mode(Mode::Refuse);
    let callers: Vec<_> = (0..2)
        .map(|_| spawn_client(CLIENT, &daemon.socket, token, 0))
        .collect();
    assert!(eventually(
        Duration::from_secs(10),
        || daemon.status()["clients"].as_u64() >= Some(3)
    ));
    std::thread::sleep(Duration::from_millis(300));
    proxy.set_mode(Mode::Pass);
    callers.into_iter().map(client_output).collect()
}

/// No upstream attempt over a window several retry steps long.
fn assert_no_more_attempts(server: &TestServer, proxy: &FaultProxy) {
    let (accepted, stats) = (proxy.accepted(), server.stats());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(proxy.accepted(), accepted, "the daemon tried again");
    assert_eq!(server.stats(), stats);
}

#[test]
fn token_incorrect_31004_reaches_every_caller_once_and_stops() {
    let server = TestServer::start();
    let proxy = proxy_for(&server);
    let good = server.token("alice");
    let (payload, _) = good.split_once('.').expect("token");
    let forged = format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let daemon = TestDaemon::start(&proxy.url(), &[]);
    for seen in two_waiting_callers(&daemon, &proxy, &forged) {
        assert_eq!(
            seen,
            vec![Seen::DatabaseOpened(0), Seen::Connected(31004, None)]
        );
    }
    assert_eq!(
        server.stats().connects_rejected,
        1,
        "one attempt for both callers"
    );
    assert_eq!(daemon.status()["status"], "token_incorrect");
    assert_no_more_attempts(&server, &proxy);
}

#[test]
fn token_expired_31020_reaches_every_caller_once_and_stops() {
    let server = TestServer::start();
    let proxy = proxy_for(&server);
    let token = server.token("alice");
    let cutoff = (now_ms() + 1).to_string();
    let (status, body) = server.api(
        "/user/token/expire.json",
        &[("userId", "alice"), ("time", &cutoff)],
    );
    assert_eq!((status, body["code"].as_i64()), (200, Some(200)), "{body}");
    let daemon = TestDaemon::start(&proxy.url(), &[]);
    for seen in two_waiting_callers(&daemon, &proxy, &token) {
        assert_eq!(
            seen,
            vec![Seen::DatabaseOpened(0), Seen::Connected(31020, None)]
        );
    }
    let status = daemon.status();
    assert_eq!(status["status"], "token_incorrect");
    assert_eq!(status["last_error"]["code"], 31020);
    assert_no_more_attempts(&server, &proxy);
}

#[test]
fn user_blocked_31009_at_connect_reaches_every_caller_once_and_stops() {
    let server = TestServer::start();
    let proxy = proxy_for(&server);
    let token = server.token("alice");
    let (status, body) = server.api("/user/block.json", &[("userId", "alice"), ("minute", "10")]);
    assert_eq!((status, body["code"].as_i64()), (200, Some(200)), "{body}");
    let daemon = TestDaemon::start(&proxy.url(), &[]);
    for seen in two_waiting_callers(&daemon, &proxy, &token) {
        assert_eq!(
            seen,
            vec![Seen::DatabaseOpened(0), Seen::Connected(31009, None)]
        );
    }
    assert_eq!(daemon.status()["status"], "conn_user_blocked");
    assert_no_more_attempts(&server, &proxy);
}

#[test]
fn user_blocked_while_connected_31011_stops() {
    let server = TestServer::start();
    let proxy = proxy_for(&server);
    let token = server.token("alice");
    let daemon = TestDaemon::start(&proxy.url(), &[]);
    let watcher = StatusWatcher::start(&daemon.socket);
    assert_eq!(
        client_output(spawn_client(CLIENT, &daemon.socket, &token, 0)),
        connected("alice")
    );
    let (status, body) = server.api("/user/block.json", &[("userId", "alice"), ("minute", "10")]);
    assert_eq!((status, body["code"].as_i64()), (200, Some(200)), "{body}");
    let status = daemon.wait_status("conn_user_blocked");
    assert_eq!(status["last_error"]["code"], 31011);
    assert_no_more_attempts(&server, &proxy);
    let blocked: Vec<_> = watcher
        .states()
        .into_iter()
        .filter(|s| s.code == 31011)
        .collect();
    assert_eq!(blocked.len(), 1, "the status change is published once");
}

#[test]
fn the_kick_war_ends_with_the_older_daemon_down() {
    let server = TestServer::start();
    let token = server.token("alice");
    let older = TestDaemon::start(&server.url(), &[]);
    assert_eq!(
        client_output(spawn_client(CLIENT, &older.socket, &token, 0)),
        connected("alice")
    );
    let newer = TestDaemon::start(&server.url(), &[]);
    assert_eq!(
        client_output(spawn_client(CLIENT, &newer.socket, &token, 0)),
        connected("alice")
    );

    let status = older.wait_status("kicked_offline_by_other_client");
    assert_eq!(status["status_code"], 4);
    assert_eq!(status["last_error"]["code"], 31010);
    // Over a window of several retry steps, nobody logs in again.
    std::thread::sleep(Duration::from_secs(3));
    let stats = server.stats();
    assert_eq!(stats.connects_accepted, 2, "no ping-pong of logins");
    assert_eq!(stats.online, 1);
    assert_eq!(older.status()["status"], "kicked_offline_by_other_client");
    assert_eq!(newer.status()["status"], "connected");
}

#[test]
fn a_short_timeout_gives_34006_while_a_patient_caller_keeps_the_link_going() {
    let server = TestServer::start();
    let proxy = proxy_for(&server);
    let token = server.token("alice");
    let daemon = TestDaemon::start(&proxy.url(), &[]);
    proxy.set_mode(Mode::Refuse);
    let patient = spawn_client(CLIENT, &daemon.socket, &token, 0);
    let hasty = spawn_client(CLIENT, &daemon.socket, &token, 2);
    let started = Instant::now();
    assert_eq!(
        client_output(hasty),
        vec![Seen::DatabaseOpened(0), Seen::Connected(34006, None)]
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        daemon.status()["status"],
        "connecting",
        "the link goes on for the patient caller"
    );
    proxy.set_mode(Mode::Pass);
    assert_eq!(client_output(patient), connected("alice"));
}
