//! The link under paused tokio time, against the real reference server.
//!
//! The server's connection handler runs in-process on an in-memory pipe
//! (`RunningServer::serve_stream`), so minutes of retry schedule and heartbeat pass
//! in microseconds and every timer is exact. Between the link and the server sits a
//! gate that can black-hole the pipe (no byte moves, nothing closes) or cut it, and
//! the dialer can refuse like a server that is down. With several servers
//! configured, every address reaches the same in-process server (like nodes
//! sharing one database), and each can be given a [`NodeFault`] of its own.

use super::connector::{BoxedStream, ConnectorConfig, CustomDial, ServerAddr, Transport};
use super::*;
use crate::hub::{self, ClientInfo, Outbound};
use crate::store::StoreOpener;
use crate::vault::Vault;
use rcim_proto::frame::{FrameReader, MAX_IPC_FRAME};
use rcim_proto::ipc::DaemonFrame;
use rcim_proto::message::{ConversationKey, Message};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

const PING_AFTER: Duration = Duration::from_secs(30);
const PONG_TIMEOUT: Duration = Duration::from_secs(6);

struct Harness {
    server: Arc<rcim_server::RunningServer>,
    link: LinkHandle,
    vault: Vault,
    /// When a dial happened.
    dials: Arc<Mutex<Vec<Instant>>>,
    /// When false, dials fail like a server that is down.
    reachable: Arc<AtomicBool>,
    /// The host each dial went to, in order.
    hosts: Arc<Mutex<Vec<String>>>,
    /// What goes wrong when a host is dialed (nothing, when absent).
    faults: Arc<Mutex<HashMap<String, NodeFault>>>,
    /// true: bytes flow; false: black hole.
    gate: watch::Sender<bool>,
    /// Bumped to cut every pipe open now.
    cut: watch::Sender<u64>,
    events: mpsc::UnboundedReceiver<Event>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn new() -> Self {
        Self::with_boot_token(None).await
    }

    async fn with_boot_token(boot: Option<&str>) -> Self {
        Self::build(boot, &["rcim://in-memory:1"]).await
    }

    /// A harness whose link has several servers (`rcim://HOST:PORT` each).
    async fn with_servers(servers: &[&str]) -> Self {
        Self::build(None, servers).await
    }

    async fn build(boot: Option<&str>, servers: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = rcim_server::ServerConfig::local(dir.path().join("server"), "app", "secret");
        let server = rcim_server::start(config).await.unwrap();
        let server = Arc::new(server);
        let dials = Arc::new(Mutex::new(Vec::new()));
        let reachable = Arc::new(AtomicBool::new(true));
        let (gate, gate_rx) = watch::channel(true);
        let (cut, cut_rx) = watch::channel(0u64);
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let faults: Arc<Mutex<HashMap<String, NodeFault>>> = Arc::default();

        let dial: CustomDial = {
            let (server, dials, reachable) = (server.clone(), dials.clone(), reachable.clone());
            let (hosts, faults) = (hosts.clone(), faults.clone());
            Arc::new(move |addr: &ServerAddr| {
                let (server, dials, reachable) = (server.clone(), dials.clone(), reachable.clone());
                let (gate, cut) = (gate_rx.clone(), cut_rx.clone());
                hosts.lock().unwrap().push(addr.host.clone());
                let fault = faults.lock().unwrap().get(&addr.host).copied();
                Box::pin(async move {
                    dials.lock().unwrap().push(Instant::now());
                    if !reachable.load(Ordering::SeqCst) {
                        return Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
                    }
                    match fault {
                        None => {}
                        Some(NodeFault::Refuse) => {
                            return Err(std::io::Error::from(
                                std::io::ErrorKind::ConnectionRefused,
                            ));
                        }
                        Some(NodeFault::BlackHole) => std::future::pending().await,
                        Some(NodeFault::Unavailable) => return Ok(unavailable().await),
                    }
                    let (ours, to_gate) = tokio::io::duplex(64 * 1024);
                    let (from_gate, theirs) = tokio::io::duplex(64 * 1024);
                    server.serve_stream(theirs);
                    tokio::spawn(pipe(to_gate, from_gate, gate, cut));
                    Ok(Box::new(ours) as BoxedStream)
                })
            })
        };
        let (hub, _) = hub::spawn();
        // An observer client that never lags: a task decodes whatever is queued.
        let (tx, mut queue) = Outbound::channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(bytes) = queue.recv().await {
                queue.written(bytes.len());
                let mut reader = FrameReader::new(&bytes[..], MAX_IPC_FRAME);
                while let Ok(Some(DaemonFrame::Event(event))) = reader.read::<DaemonFrame>().await {
                    let _ = events_tx.send(event);
                }
            }
        });
        hub.attach(
            ClientInfo {
                id: 1,
                name: "observer".into(),
                pid: None,
            },
            tx,
            Arc::default(),
        );
        let vault = Vault::memory();
        let config = LinkConfig {
            connector: ConnectorConfig {
                servers: nodes::ServerList::parse(servers).unwrap(),
                transport: Transport::Custom(dial),
                app_key: "app".into(),
                device_id: "device".into(),
                dial_timeout: Duration::from_secs(10),
                connack_timeout: Duration::from_secs(10),
            },
            ping_after: PING_AFTER,
            pong_timeout: PONG_TIMEOUT,
        };
        let deps = LinkDeps {
            stores: StoreOpener::new(dir.path().join("data")),
            vault: vault.clone(),
            hub,
        };
        let shutdown = CancellationToken::new();
        let (link, _task) = spawn(config, deps, boot.map(Token::new), shutdown.clone());
        Self {
            server,
            link,
            vault,
            dials,
            reachable,
            hosts,
            faults,
            gate,
            cut,
            events,
            shutdown,
            _dir: dir,
        }
    }

    fn token(&self, user: &str) -> String {
        self.server.issue_token(user, user).unwrap()
    }

    /// The host each dial went to so far.
    fn hosts(&self) -> Vec<String> {
        self.hosts.lock().unwrap().clone()
    }

    /// Makes dials to `host` fail with `fault`, or work again with `None`.
    fn set_fault(&self, host: &str, fault: Option<NodeFault>) {
        let mut faults = self.faults.lock().unwrap();
        match fault {
            Some(fault) => faults.insert(host.to_owned(), fault),
            None => faults.remove(host),
        };
    }

    fn dial_count(&self) -> usize {
        self.dials.lock().unwrap().len()
    }

    fn status(&self) -> ConnectionStatus {
        self.link.report().state.status
    }

    async fn wait_status(&self, want: ConnectionStatus, limit: Duration) -> Instant {
        let mut watch = self.link.watch();
        tokio::time::timeout(limit, watch.wait_for(|r| r.state.status == want))
            .await
            .unwrap_or_else(|_| panic!("status never became {want} (now {:?})", self.link.report()))
            .unwrap();
        Instant::now()
    }

    /// Every event published so far.
    async fn drain_events(&mut self) -> Vec<Event> {
        // Let the hub and the observer task run first.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut seen = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            seen.push(event);
        }
        seen
    }

    /// Every status event published so far.
    async fn drain_statuses(&mut self) -> Vec<LinkState> {
        self.drain_events()
            .await
            .into_iter()
            .filter_map(|event| match event {
                Event::StatusChanged(state) => Some(state),
                _ => None,
            })
            .collect()
    }

    /// Waits until the events so far include `OfflineSyncCompleted`, returning all.
    async fn until_sync_completed(&mut self, limit: Duration) -> Vec<Event> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + limit;
        loop {
            seen.extend(self.drain_events().await);
            if seen.contains(&Event::OfflineSyncCompleted) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "no OfflineSyncCompleted; saw {} events",
                seen.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The uids in alice's inbox on the server, in inbox order.
    async fn server_uids(&self) -> Vec<String> {
        self.server
            .inbox_uids("alice")
            .await
            .unwrap()
            .into_iter()
            .map(|(_, uid)| uid)
            .collect()
    }

    /// The uids stored in the user's database, in local order.
    async fn stored_uids(&self) -> Vec<String> {
        let store = self.link.store().expect("a database is open");
        store
            .messages_after(0, u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.uid.expect("a received message has a uid"))
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// How a node fails when dialed.
#[derive(Clone, Copy, Debug)]
enum NodeFault {
    /// Nobody listens: the connect is refused at once.
    Refuse,
    /// The connect never completes (a firewall dropping packets).
    BlackHole,
    /// The node answers CONNECT with CONNACK "server unavailable".
    Unavailable,
}

/// A stream that answers the CONNECT with CONNACK "server unavailable", like a
/// node that lost its database.
async fn unavailable() -> BoxedStream {
    use rcim_proto::upstream::ConnAck;
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let (read, mut write) = tokio::io::split(theirs);
        let mut reader = FrameReader::new(read, rcim_proto::frame::MAX_UPSTREAM_FRAME);
        if let Ok(Some(ClientMsg::Connect(_))) = reader.read::<ClientMsg>().await {
            let ack = ServerMsg::ConnAck(ConnAck {
                code: rcim_proto::code::ConnAckCode::SERVER_UNAVAILABLE,
                user_id: None,
                server_time_ms: 0,
            });
            let _ = rcim_proto::frame::write_frame(
                &mut write,
                &ack,
                rcim_proto::frame::MAX_UPSTREAM_FRAME,
            )
            .await;
        }
        // Hold the stream open until the link lets go of it.
        let _ = reader.read::<ClientMsg>().await;
    });
    Box::new(ours)
}

/// Moves bytes both ways while the gate is open; holds them while it is shut; cuts
/// both sides when `cut` changes.
async fn pipe(
    a: DuplexStream,
    b: DuplexStream,
    gate: watch::Receiver<bool>,
    mut cut: watch::Receiver<u64>,
) {
    let (a_read, a_write) = tokio::io::split(a);
    let (b_read, b_write) = tokio::io::split(b);
    let forward = |mut from: tokio::io::ReadHalf<DuplexStream>,
                   mut to: tokio::io::WriteHalf<DuplexStream>,
                   mut gate: watch::Receiver<bool>| async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if gate.wait_for(|open| *open).await.is_err() {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    cut.borrow_and_update();
    tokio::select! {
        () = forward(a_read, b_write, gate.clone()) => {}
        () = forward(b_read, a_write, gate) => {}
        _ = cut.changed() => {}
    }
}

async fn connect(link: &LinkHandle, token: &str, timeout_secs: i32) -> Vec<Callback> {
    let mut call = link.connect(Token::new(token), timeout_secs).await;
    assert_eq!(call.code, RcCode::SUCCESS, "connect rejected");
    let mut seen = Vec::new();
    while let Some(callback) = call.callbacks.recv().await {
        let last = matches!(callback, Callback::Connected { .. });
        seen.push(callback);
        if last {
            break;
        }
    }
    seen
}

fn ok(user: &str) -> Vec<Callback> {
    vec![
        Callback::DatabaseOpened { code: 0 },
        Callback::Connected {
            code: 0,
            user_id: Some(user.into()),
        },
    ]
}

fn failed(code: RcCode) -> Vec<Callback> {
    vec![
        Callback::DatabaseOpened { code: 0 },
        Callback::Connected {
            code: code.0,
            user_id: None,
        },
    ]
}

fn forge(token: &str) -> String {
    let (payload, _) = token.split_once('.').unwrap();
    format!("{payload}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
}

#[tokio::test(start_paused = true)]
async fn many_callers_one_connect() {
    let mut h = Harness::new().await;
    let token = h.token("alice");
    let calls = (0..3).map(|_| connect(&h.link, &token, 0));
    for seen in futures_util::future::join_all(calls).await {
        assert_eq!(seen, ok("alice"));
    }
    assert_eq!(h.dial_count(), 1);
    assert_eq!(h.server.stats().connects_accepted, 1);
    let statuses: Vec<_> = h
        .drain_statuses()
        .await
        .into_iter()
        .map(|s| s.status)
        .collect();
    assert_eq!(
        statuses,
        [ConnectionStatus::Connecting, ConnectionStatus::Connected]
    );
    // A later caller gets both callbacks at once, with no new dial.
    assert_eq!(connect(&h.link, &token, 5).await, ok("alice"));
    assert_eq!(h.dial_count(), 1);
}

/// Asserts that the gaps between `dials` follow RC's schedule, each within ±20 %.
fn assert_rc_schedule(dials: &[Instant]) {
    let schedule = [
        0.05, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 64.0, 64.0, 64.0,
    ];
    for (i, pair) in dials.windows(2).enumerate() {
        let gap = (pair[1] - pair[0]).as_secs_f64();
        let base = schedule[i.min(schedule.len() - 1)];
        assert!(
            gap >= base * 0.8 - 1e-6 && gap <= base * 1.2 + 1e-6,
            "gap {i}: {gap} s, schedule says {base} s ±20 %"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retries_follow_rc_schedule_then_connect() {
    let h = Harness::new().await;
    let token = h.token("alice");
    h.reachable.store(false, Ordering::SeqCst);
    let link = h.link.clone();
    let caller = tokio::spawn(async move { connect(&link, &token, 0).await });
    tokio::time::sleep(Duration::from_secs(400)).await;
    let dials = h.dials.lock().unwrap().clone();
    assert!(dials.len() >= 12, "{} dials in 400 s", dials.len());
    assert_rc_schedule(&dials);
    // 0.05+0.25+…+32 ≈ 63.8 s, then every 64 s: no storm.
    assert!(dials.len() <= 16, "{} dials in 400 s", dials.len());
    assert_eq!(h.status(), ConnectionStatus::Connecting);
    assert_eq!(
        h.link.report().last_error.unwrap().code,
        RcCode::RC_SOCKET_NOT_CONNECTED.0
    );

    h.reachable.store(true, Ordering::SeqCst);
    let seen = tokio::time::timeout(Duration::from_secs(80), caller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, ok("alice"));
    assert_eq!(h.server.stats().connects_accepted, 1);
}

#[tokio::test(start_paused = true)]
async fn a_black_hole_is_noticed_within_ping_plus_pong() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    let start = Instant::now();
    h.gate.send_replace(false);
    let noticed = h
        .wait_status(ConnectionStatus::Suspend, Duration::from_secs(120))
        .await;
    let took = noticed - start;
    assert!(
        took >= PING_AFTER && took <= PING_AFTER + PONG_TIMEOUT,
        "noticed after {took:?}"
    );
    assert_eq!(h.link.report().state.code, RcCode::RC_PONG_RECV_FAIL.0);

    // The network comes back: reconnected on the schedule, counted as a reconnect.
    h.gate.send_replace(true);
    h.wait_status(ConnectionStatus::Connected, Duration::from_secs(30))
        .await;
    assert_eq!(h.link.report().reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_nudge_checks_a_live_connection_at_once() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let start = Instant::now();
    h.gate.send_replace(false);
    h.link.nudge(Nudge::NetworkChanged);
    let noticed = h
        .wait_status(ConnectionStatus::Suspend, Duration::from_secs(60))
        .await;
    assert!(
        noticed - start <= PONG_TIMEOUT,
        "noticed after {:?}",
        noticed - start
    );
}

#[tokio::test(start_paused = true)]
async fn a_nudge_restarts_the_schedule() {
    let h = Harness::new().await;
    let token = h.token("alice");
    h.reachable.store(false, Ordering::SeqCst);
    let link = h.link.clone();
    let caller = tokio::spawn(async move { connect(&link, &token, 0).await });
    // Deep into the schedule: the next retry is up to 64 s away.
    tokio::time::sleep(Duration::from_secs(130)).await;
    assert!(h.link.report().state.retry_in_ms.unwrap_or(0) > 10_000);
    h.reachable.store(true, Ordering::SeqCst);
    let start = Instant::now();
    h.link.nudge(Nudge::Resumed);
    let seen = caller.await.unwrap();
    assert_eq!(seen, ok("alice"));
    assert!(
        Instant::now() - start <= Duration::from_millis(100),
        "{:?}",
        Instant::now() - start
    );
}

#[tokio::test(start_paused = true)]
async fn a_cut_connection_is_reconnected() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    h.cut.send_modify(|n| *n += 1);
    h.wait_status(ConnectionStatus::Suspend, Duration::from_secs(5))
        .await;
    assert_eq!(h.link.report().state.code, RcCode::RC_SOCKET_DISCONNECTED.0);
    h.wait_status(ConnectionStatus::Connected, Duration::from_secs(5))
        .await;
    assert_eq!(h.dial_count(), 2);
    assert_eq!(h.link.report().reconnects, 1);
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_stops_for_good() {
    let h = Harness::new().await;
    let forged = forge(&h.token("alice"));
    let link = h.link.clone();
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (link, forged) = (link.clone(), forged.clone());
            tokio::spawn(async move { connect(&link, &forged, 0).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(
            caller.await.unwrap(),
            failed(RcCode::RC_CONN_TOKEN_INCORRECT)
        );
    }
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.dial_count(), 1, "no retry of a refused token");
    assert_eq!(h.status(), ConnectionStatus::TokenIncorrect);
    assert!(
        h.vault.usable_token().await.is_none(),
        "not retried at the next start"
    );
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_per_caller() {
    let h = Harness::new().await;
    let token = h.token("alice");
    h.reachable.store(false, Ordering::SeqCst);
    let (link, t) = (h.link.clone(), token.clone());
    let patient = tokio::spawn(async move { connect(&link, &t, 0).await });
    let start = Instant::now();
    assert_eq!(
        connect(&h.link, &token, 2).await,
        failed(RcCode::RC_CONNECT_TIMEOUT)
    );
    assert_eq!(Instant::now() - start, Duration::from_secs(2));
    // The link goes on for the patient caller.
    let dials = h.dial_count();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(h.dial_count() > dials);
    assert_eq!(h.status(), ConnectionStatus::Connecting);
    h.reachable.store(true, Ordering::SeqCst);
    assert_eq!(patient.await.unwrap(), ok("alice"));
}

#[tokio::test(start_paused = true)]
async fn when_every_caller_timed_out_the_link_stops() {
    let h = Harness::new().await;
    let token = h.token("alice");
    h.reachable.store(false, Ordering::SeqCst);
    assert_eq!(
        connect(&h.link, &token, 2).await,
        failed(RcCode::RC_CONNECT_TIMEOUT)
    );
    assert_eq!(h.status(), ConnectionStatus::Timeout);
    let dials = h.dial_count();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        h.dial_count(),
        dials,
        "no attempt after the last caller gave up"
    );
}

#[tokio::test(start_paused = true)]
async fn a_boot_token_keeps_trying_with_no_caller() {
    // Tokens are checked by signature alone, so one minted by another server
    // instance with the same secret is valid here too.
    let token = Harness::new().await.token("alice");
    let h = Harness::with_boot_token(Some(&token)).await;
    h.wait_status(ConnectionStatus::Connected, Duration::from_secs(5))
        .await;
    // Nobody called connect, yet a drop is reconnected.
    h.cut.send_modify(|n| *n += 1);
    h.wait_status(ConnectionStatus::Suspend, Duration::from_secs(5))
        .await;
    h.wait_status(ConnectionStatus::Connected, Duration::from_secs(5))
        .await;
    assert_eq!(h.link.report().reconnects, 1);
    assert_eq!(h.dial_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn disconnect_signs_out_and_connect_works_again() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    assert_eq!(h.link.disconnect(true, false).await, RcCode::SUCCESS);
    assert_eq!(h.status(), ConnectionStatus::SignOut);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(h.dial_count(), 1, "a signed-out link does not reconnect");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    assert_eq!(h.dial_count(), 2);
    // Logout also forgets the token.
    assert_eq!(h.link.disconnect(false, true).await, RcCode::SUCCESS);
    assert!(h.vault.usable_token().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn another_user_is_refused_while_in_use() {
    let h = Harness::new().await;
    let alice = h.token("alice");
    let bob = h.token("bob");
    assert_eq!(connect(&h.link, &alice, 0).await, ok("alice"));
    let call = h.link.connect(Token::new(bob), 0).await;
    assert_eq!(call.code, RcCode::RC_CONNECTION_EXIST);
    let call = h.link.connect(Token::new(""), 0).await;
    assert_eq!(call.code, RcCode::INVALID_PARAMETER);
    // A newer token for the same user is taken without reconnecting.
    let newer = h.token("alice");
    assert_eq!(connect(&h.link, &newer, 0).await, ok("alice"));
    assert_eq!(h.vault.usable_token().await, Some(Token::new(newer)));
    assert_eq!(h.dial_count(), 1);
}

fn received(events: &[Event]) -> Vec<(String, u32, bool, bool)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageReceived {
                message,
                left,
                offline,
                has_package,
            } => Some((
                message.uid.clone().unwrap_or_default(),
                *left,
                *offline,
                *has_package,
            )),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_backlog_arrives_in_packages_of_200_then_live() {
    let mut h = Harness::new().await;
    let token = h.token("alice");
    h.server
        .publish_private_bulk("bob", "alice", 450, "RC:TxtMsg", "m")
        .await
        .unwrap();
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    let events = h.until_sync_completed(Duration::from_secs(30)).await;
    let got = received(&events);
    assert_eq!(got.len(), 450);
    // Packages of 200, 200, 50: `left` counts down in each, `has_package` says more wait.
    assert_eq!((got[0].1, got[0].2, got[0].3), (199, true, true));
    assert_eq!((got[199].1, got[199].3), (0, true));
    assert_eq!((got[200].1, got[200].3), (199, true));
    assert_eq!((got[400].1, got[400].3), (49, false));
    assert_eq!(got[449].1, 0);
    let sync_done = events
        .iter()
        .filter(|e| **e == Event::OfflineSyncCompleted)
        .count();
    assert_eq!(sync_done, 1);
    let server_uids = h.server_uids().await;
    assert_eq!(
        h.stored_uids().await,
        server_uids,
        "every message stored once, in order"
    );

    // Then live: committed, then shown with offline = false.
    h.server
        .publish_private("bob", &["alice"], "RC:TxtMsg", r#"{"content":"live"}"#)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let live = received(&h.drain_events().await);
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].1, live[0].2, live[0].3), (0, false, false));
    assert_eq!(h.stored_uids().await.len(), 451);
}

#[tokio::test(start_paused = true)]
async fn a_cut_in_the_middle_of_a_sync_loses_and_duplicates_nothing() {
    let mut h = Harness::new().await;
    let token = h.token("alice");
    h.server
        .publish_private_bulk("bob", "alice", 1_000, "RC:TxtMsg", "m")
        .await
        .unwrap();
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    // Cut after the first package or so, several times.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        h.cut.send_modify(|n| *n += 1);
        h.wait_status(ConnectionStatus::Connected, Duration::from_secs(10))
            .await;
    }
    h.until_sync_completed(Duration::from_secs(60)).await;
    let server_uids = h.server_uids().await;
    assert_eq!(h.stored_uids().await, server_uids);
}

#[tokio::test(start_paused = true)]
async fn a_stream_of_pushes_is_committed_in_batches_in_order_once() {
    let mut h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    h.until_sync_completed(Duration::from_secs(30)).await;
    // Live pushes from several senders, arriving back to back and as a stream.
    let senders = ["bob", "carol", "dave"];
    for i in 0..300 {
        let from = senders[i % senders.len()];
        h.server
            .publish_private(
                from,
                &["alice"],
                "RC:TxtMsg",
                &format!("{{\"content\":\"{i}\"}}"),
            )
            .await
            .unwrap();
        if i % 7 == 0 {
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
    }
    let mut got = Vec::new();
    for _ in 0..100 {
        got.extend(received(&h.drain_events().await));
        if got.len() >= 300 {
            break;
        }
    }
    assert_eq!(got.len(), 300);
    assert!(got.iter().all(|g| !g.2 && !g.3), "live, not offline");
    // Shown in the server's order, each once, all committed.
    let server_uids = h.server_uids().await;
    let shown: Vec<String> = got.iter().map(|g| g.0.clone()).collect();
    assert_eq!(shown, server_uids);
    assert_eq!(h.stored_uids().await, server_uids);
    // Batched: `left` counts down inside each committed batch, and there were
    // fewer batches than messages.
    let batches = got.iter().filter(|g| g.1 == 0).count();
    assert!(batches < 300, "{batches} commits for 300 pushes");
    // Every conversation counts its unread messages.
    let store = h.link.store().unwrap();
    let conversations = store.conversations(Vec::new(), 0, 50).await.unwrap();
    assert_eq!(conversations.len(), 3);
    assert!(conversations.iter().all(|c| c.unread_count == 100));
}

fn sent_ok(callbacks: &[Callback]) -> Message {
    match callbacks {
        [
            Callback::MessageSaved { message: saved },
            Callback::MessageSent { code: 0, message },
        ] => {
            assert_eq!(saved.sent_status, rcim_proto::message::SentStatus::Sending);
            assert_eq!(message.id, saved.id);
            assert_eq!(message.sent_status, rcim_proto::message::SentStatus::Sent);
            assert!(message.uid.is_some());
            message.clone()
        }
        other => panic!("unexpected callbacks {other:?}"),
    }
}

async fn callbacks_of(mut call: Call) -> Vec<Callback> {
    assert_eq!(call.code, RcCode::SUCCESS);
    let mut seen = Vec::new();
    while let Some(callback) = call.callbacks.recv().await {
        let last = matches!(callback, Callback::MessageSent { .. });
        seen.push(callback);
        if last {
            break;
        }
    }
    seen
}

fn text(text: &str) -> String {
    format!(r#"{{"content":"{text}"}}"#)
}

#[tokio::test(start_paused = true)]
async fn a_sent_message_is_saved_then_sent_once() {
    let h = Harness::new().await;
    let token = h.token("alice");
    // Before any connect there is no database: 33002.
    let early = h
        .link
        .send_message(
            ConversationKey::private("bob"),
            "RC:TxtMsg".into(),
            text("x"),
        )
        .await;
    assert_eq!(early.code, RcCode::DATABASE_ERROR);
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    let bad = h
        .link
        .send_message(ConversationKey::private(""), "RC:TxtMsg".into(), text("x"))
        .await;
    assert_eq!(bad.code, RcCode::INVALID_PARAMETER);
    let call = h
        .link
        .send_message(
            ConversationKey::private("bob"),
            "RC:TxtMsg".into(),
            text("hi"),
        )
        .await;
    let message = sent_ok(&callbacks_of(call).await);
    let server = h.server.messages_from("alice").await.unwrap();
    assert_eq!(server.len(), 1);
    assert_eq!(Some(&server[0].1), message.uid.as_ref());
    assert_eq!(h.server.inbox_uids("bob").await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_outbox_waits_for_the_connection_and_a_resend_is_not_a_duplicate() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    // The server is gone: messages wait in the outbox.
    h.reachable.store(false, Ordering::SeqCst);
    h.gate.send_replace(false);
    let mut calls = Vec::new();
    for i in 0..5 {
        let call = h
            .link
            .send_message(
                ConversationKey::private("bob"),
                "RC:TxtMsg".into(),
                text(&format!("m{i}")),
            )
            .await;
        calls.push(tokio::spawn(callbacks_of(call)));
    }
    // The publishes sit in the black hole; the heartbeat notices, the link retries.
    h.wait_status(ConnectionStatus::Suspend, Duration::from_secs(60))
        .await;
    // The held bytes now reach the server on the dead connection: it stores the
    // messages, but its PubAcks reach nobody.
    h.gate.send_replace(true);
    tokio::time::sleep(Duration::from_secs(120)).await;
    h.reachable.store(true, Ordering::SeqCst);
    h.link.nudge(Nudge::NetworkChanged);
    for call in calls {
        sent_ok(&call.await.unwrap());
    }
    let store = h.link.store().unwrap();
    assert!(store.outbox().await.unwrap().is_empty());
    // Held bytes of the first connection were delivered late or not at all; either
    // way the server has each message exactly once.
    let server = h.server.messages_from("alice").await.unwrap();
    assert_eq!(server.len(), 5);
    assert_eq!(h.server.inbox_uids("bob").await.unwrap().len(), 5);
}

// Failover between several servers (module `nodes`).

/// The link's server in use, as `host`.
fn server_host(h: &Harness) -> String {
    h.link.report().server.host
}

#[tokio::test(start_paused = true)]
async fn failover_goes_round_robin_one_dial_per_step_of_rc_schedule() {
    let h = Harness::with_servers(&["rcim://a:1", "rcim://b:1", "rcim://c:1"]).await;
    let token = h.token("alice");
    for host in ["a", "b", "c"] {
        h.set_fault(host, Some(NodeFault::Refuse));
    }
    let link = h.link.clone();
    let caller = tokio::spawn(async move { connect(&link, &token, 0).await });
    tokio::time::sleep(Duration::from_secs(400)).await;
    let dials = h.dials.lock().unwrap().clone();
    assert!(dials.len() >= 12, "{} dials in 400 s", dials.len());
    assert!(dials.len() <= 16, "{} dials in 400 s: a storm", dials.len());
    assert_rc_schedule(&dials);
    let hosts = h.hosts();
    let round_robin: Vec<String> = ["a", "b", "c"]
        .iter()
        .cycle()
        .take(hosts.len())
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        hosts, round_robin,
        "one dial per step, each to the next node"
    );

    // The node after the last one tried comes back: the next step reaches it.
    let next = round_robin_after(&hosts);
    h.set_fault(&next, None);
    let seen = tokio::time::timeout(Duration::from_secs(80), caller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, ok("alice"));
    assert_eq!(h.hosts().len(), hosts.len() + 1, "one more dial");
    assert_eq!(server_host(&h), next);
    assert_eq!(h.server.stats().connects_accepted, 1);
}

/// The node after the last one dialed, in a, b, c order.
fn round_robin_after(hosts: &[String]) -> String {
    match hosts.last().map(String::as_str) {
        Some("a") => "b",
        Some("b") => "c",
        _ => "a",
    }
    .to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_black_holed_node_is_left_after_the_dial_timeout() {
    let h = Harness::with_servers(&["rcim://a:1", "rcim://b:1"]).await;
    let token = h.token("alice");
    h.set_fault("a", Some(NodeFault::BlackHole));
    let start = Instant::now();
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    let took = Instant::now() - start;
    // The dial timeout (10 s), then the first step of the schedule (50 ms ±20 %).
    assert!(
        took >= Duration::from_millis(10_040) && took <= Duration::from_millis(10_061),
        "connected after {took:?}"
    );
    assert_eq!(h.hosts(), ["a", "b"]);
    assert_eq!(server_host(&h), "b");
    let error = h.link.report().last_error.unwrap();
    assert_eq!(error.code, RcCode::RC_SOCKET_NOT_CONNECTED.0);
    assert!(
        error.message.contains("no answer from rcim://a:1"),
        "{}",
        error.message
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_answering_server_unavailable_is_left_at_the_next_step() {
    let h = Harness::with_servers(&["rcim://a:1", "rcim://b:1"]).await;
    let token = h.token("alice");
    h.set_fault("a", Some(NodeFault::Unavailable));
    let start = Instant::now();
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    assert!(Instant::now() - start <= Duration::from_millis(61));
    assert_eq!(h.hosts(), ["a", "b"]);
    assert_eq!(server_host(&h), "b");
    assert_eq!(
        h.link.report().last_error.unwrap().code,
        RcCode::RC_CONN_SERVER_UNAVAILABLE.0
    );
}

#[tokio::test(start_paused = true)]
async fn a_terminal_error_is_not_tried_on_another_node() {
    let h = Harness::with_servers(&["rcim://a:1", "rcim://b:1"]).await;
    let forged = forge(&h.token("alice"));
    assert_eq!(
        connect(&h.link, &forged, 0).await,
        failed(RcCode::RC_CONN_TOKEN_INCORRECT)
    );
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(h.hosts(), ["a"], "the token is wrong everywhere");
    assert_eq!(h.status(), ConnectionStatus::TokenIncorrect);
}

#[tokio::test(start_paused = true)]
async fn the_link_stays_on_the_node_that_worked_and_a_drop_tries_it_first() {
    let h = Harness::with_servers(&["rcim://a:1", "rcim://b:1"]).await;
    let token = h.token("alice");
    h.set_fault("a", Some(NodeFault::Refuse));
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    assert_eq!(h.hosts(), ["a", "b"]);
    // a is back, but b worked: a drop goes back to b, not to the first node.
    h.set_fault("a", None);
    h.cut.send_modify(|n| *n += 1);
    h.wait_status(ConnectionStatus::Suspend, Duration::from_secs(5))
        .await;
    h.wait_status(ConnectionStatus::Connected, Duration::from_secs(5))
        .await;
    assert_eq!(h.hosts(), ["a", "b", "b"]);
    assert_eq!(server_host(&h), "b");
    // Now b dies: one more try at b on the first step, then a on the second.
    h.set_fault("b", Some(NodeFault::Refuse));
    let start = Instant::now();
    h.cut.send_modify(|n| *n += 1);
    h.wait_status(ConnectionStatus::Suspend, Duration::from_secs(5))
        .await;
    let back = h
        .wait_status(ConnectionStatus::Connected, Duration::from_secs(5))
        .await;
    assert_eq!(h.hosts(), ["a", "b", "b", "b", "a"]);
    assert_eq!(server_host(&h), "a");
    // 50 ms then 250 ms, ±20 %.
    let took = back - start;
    assert!(
        took >= Duration::from_millis(240) && took <= Duration::from_millis(361),
        "back after {took:?}"
    );
    assert_eq!(h.link.report().reconnects, 2);
}

#[tokio::test(start_paused = true)]
async fn a_nudge_starts_again_from_the_node_that_last_worked() {
    let h = Harness::with_servers(&["rcim://a:1", "rcim://b:1", "rcim://c:1"]).await;
    let token = h.token("alice");
    h.set_fault("a", Some(NodeFault::Refuse));
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    assert_eq!(server_host(&h), "b");
    for host in ["a", "b", "c"] {
        h.set_fault(host, Some(NodeFault::Refuse));
    }
    h.cut.send_modify(|n| *n += 1);
    // Deep into the schedule, at a moment when rotation would go to c next.
    tokio::time::sleep(Duration::from_secs(130)).await;
    while h.hosts().last().map(String::as_str) != Some("b") {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let dialed = h.hosts().len();
    h.set_fault("b", None);
    let start = Instant::now();
    h.link.nudge(Nudge::NetworkChanged);
    let back = h
        .wait_status(ConnectionStatus::Connected, Duration::from_secs(5))
        .await;
    assert!(
        back - start <= Duration::from_millis(61),
        "{:?}",
        back - start
    );
    assert_eq!(h.hosts()[dialed..], ["b"], "straight back to b");
    assert_eq!(server_host(&h), "b");
}

/// The MessageRecalled events among `events`, by local id.
fn recalled_ids(events: &[Event]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::MessageRecalled { message } => Some(message.id),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_recall_replaces_the_sent_copy_and_tells_apps_once() {
    let mut h = Harness::new().await;
    let token = h.token("alice");
    // No connection: 30002 at once, and no history either.
    assert_eq!(
        h.link.recall("u".into()).await,
        RcCode::RC_NETWORK_UNAVAILABLE
    );
    assert_eq!(
        h.link
            .remote_history(ConversationKey::private("bob"), 0, 10)
            .await,
        Err(RcCode::RC_NETWORK_UNAVAILABLE)
    );
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    let call = h
        .link
        .send_message(
            ConversationKey::private("bob"),
            "RC:TxtMsg".into(),
            text("oops"),
        )
        .await;
    let sent = sent_ok(&callbacks_of(call).await);
    let uid = sent.uid.clone().expect("uid");
    h.drain_events().await;
    assert_eq!(
        h.link.recall("no-such".into()).await,
        RcCode::RC_RECALLMESSAGE_PARAMETER_INVALID
    );
    assert_eq!(h.link.recall(uid.clone()).await, RcCode::SUCCESS);
    // The command that follows through alice's own inbox changes nothing more.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = h.drain_events().await;
    assert_eq!(recalled_ids(&events), vec![sent.id], "{events:?}");
    let store = h.link.store().expect("database");
    let now = store.message_by_uid(uid.clone()).await.unwrap().unwrap();
    assert_eq!(now.object_name, "RC:RcNtf");
    assert_eq!((now.id, now.sent_time_ms), (sent.id, sent.sent_time_ms));
    assert!(!now.content.contains("oops"));
    // The server's history shows the notification, with this device's local id.
    let page = h
        .link
        .remote_history(ConversationKey::private("bob"), 0, 10)
        .await
        .unwrap();
    assert_eq!(page, vec![now]);
}

#[tokio::test(start_paused = true)]
async fn a_request_the_server_never_answers_is_30003_after_the_answer_timeout() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    // A black hole: the request goes nowhere and nothing closes.
    h.gate.send_replace(false);
    let started = Instant::now();
    assert_eq!(
        h.link.recall("uid".into()).await,
        RcCode::RC_MSG_RESPONSE_TIMEOUT
    );
    assert_eq!(started.elapsed(), ANSWER_TIMEOUT);
    let started = Instant::now();
    let page = h
        .link
        .remote_history(ConversationKey::private("bob"), 0, 10)
        .await;
    assert_eq!(page, Err(RcCode::RC_MSG_RESPONSE_TIMEOUT));
    assert_eq!(started.elapsed(), ANSWER_TIMEOUT);
    // A connection that ends while a request waits: 30011 at once, not a hang.
    let link = h.link.clone();
    let started = Instant::now();
    let waiting = tokio::spawn(async move { link.recall("uid".into()).await });
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.cut.send_modify(|n| *n += 1);
    assert_eq!(waiting.await.unwrap(), RcCode::RC_SOCKET_DISCONNECTED);
    assert!(started.elapsed() < ANSWER_TIMEOUT);
}

/// A bare wire client of `user` on the harness's server, platform `mobile` (so it
/// is a device of its own beside a desktop rcimd): its reader and writer, after
/// an accepted CONNACK.
async fn raw_device(
    h: &Harness,
    user: &str,
) -> (
    FrameReader<tokio::io::ReadHalf<DuplexStream>>,
    tokio::io::WriteHalf<DuplexStream>,
) {
    use rcim_proto::frame::{MAX_UPSTREAM_FRAME, write_frame};
    use rcim_proto::upstream::{ClientInfo as WireClient, Connect};
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    h.server.serve_stream(theirs);
    let (read, mut write) = tokio::io::split(ours);
    let mut reader = FrameReader::new(read, MAX_UPSTREAM_FRAME);
    let connect = ClientMsg::Connect(Connect {
        protocol: rcim_proto::WIRE_VERSION,
        app_key: "app".into(),
        token: Token::new(h.token(user)),
        client_info: WireClient {
            platform: "mobile".into(),
            sdk: "test".into(),
            os: "test".into(),
        },
        device_id: format!("{user}-phone"),
    });
    write_frame(&mut write, &connect, MAX_UPSTREAM_FRAME)
        .await
        .unwrap();
    match reader.read::<ServerMsg>().await.unwrap() {
        Some(ServerMsg::ConnAck(ack)) => assert_eq!(ack.code.0, 0),
        other => panic!("no CONNACK: {other:?}"),
    }
    (reader, write)
}

/// The typing statuses `reader` receives within `limit`, with when each came.
async fn typing_received(
    reader: &mut FrameReader<tokio::io::ReadHalf<DuplexStream>>,
    limit: Duration,
) -> Vec<Instant> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + limit;
    while let Ok(frame) = tokio::time::timeout_at(deadline, reader.read::<ServerMsg>()).await {
        match frame.unwrap() {
            Some(ServerMsg::Status(m)) if m.object_name == "RC:TypSts" => {
                seen.push(Instant::now());
            }
            Some(_) => {}
            None => break,
        }
    }
    seen
}

#[tokio::test(start_paused = true)]
async fn typing_spam_goes_out_once_per_six_seconds_per_conversation() {
    let h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    let (mut bob, _bob_writer) = raw_device(&h, "bob").await;
    let start = Instant::now();
    // A call every 500 ms for 13 s: 27 calls, each answered 0.
    let spam = async {
        for _ in 0..27 {
            let status = OutgoingStatus::Typing {
                conversation: ConversationKey::private("bob"),
                content_type: "RC:TxtMsg".into(),
            };
            assert_eq!(h.link.send_status(status).await, RcCode::SUCCESS);
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let (received, ()) = tokio::join!(
        typing_received(&mut bob, Duration::from_millis(13_600)),
        spam
    );
    let offsets: Vec<u128> = received
        .iter()
        .map(|at| (*at - start).as_millis())
        .collect();
    assert_eq!(offsets, vec![0, 6_000, 12_000], "one per 6 s: {offsets:?}");
}

#[tokio::test(start_paused = true)]
async fn a_received_typing_status_lasts_six_seconds_unless_renewed() {
    use rcim_proto::frame::{MAX_UPSTREAM_FRAME, write_frame};
    use rcim_proto::upstream::StatusPublish;
    let mut h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    h.until_sync_completed(Duration::from_secs(5)).await;
    let (_bob, mut bob_writer) = raw_device(&h, "bob").await;
    let typing = ClientMsg::PublishStatus(StatusPublish {
        conversation: ConversationKey::private("alice"),
        object_name: "RC:TypSts".into(),
        content: rcim_proto::message::typing_content("RC:VcMsg"),
    });
    /// The typing lists among `events`, as `user:type` names.
    fn typing_lists(events: Vec<Event>) -> Vec<Vec<String>> {
        events
            .into_iter()
            .filter_map(|event| match event {
                Event::TypingStatus {
                    conversation,
                    users,
                } => {
                    assert_eq!(conversation, ConversationKey::private("bob"));
                    Some(
                        users
                            .iter()
                            .map(|u| format!("{}:{}", u.user_id, u.content_type))
                            .collect(),
                    )
                }
                _ => None,
            })
            .collect()
    }
    let bob_typing = vec!["bob:RC:VcMsg".to_owned()];
    let start = Instant::now();
    write_frame(&mut bob_writer, &typing, MAX_UPSTREAM_FRAME)
        .await
        .unwrap();
    tokio::time::sleep_until(start + Duration::from_millis(100)).await;
    assert_eq!(
        typing_lists(h.drain_events().await),
        vec![bob_typing.clone()]
    );
    // Renewed at 4 s: still typing past 6 s.
    tokio::time::sleep_until(start + Duration::from_secs(4)).await;
    write_frame(&mut bob_writer, &typing, MAX_UPSTREAM_FRAME)
        .await
        .unwrap();
    tokio::time::sleep_until(start + Duration::from_millis(4_100)).await;
    assert_eq!(
        typing_lists(h.drain_events().await),
        vec![bob_typing.clone()]
    );
    tokio::time::sleep_until(start + Duration::from_millis(9_980)).await;
    assert!(
        typing_lists(h.drain_events().await).is_empty(),
        "nothing runs out before 6 s after the renewal"
    );
    // Gone 6 s after the renewal: an empty list, once.
    tokio::time::sleep_until(start + Duration::from_secs(10)).await;
    assert_eq!(
        typing_lists(h.drain_events().await),
        vec![Vec::<String>::new()]
    );
    tokio::time::sleep_until(start + Duration::from_secs(30)).await;
    assert!(typing_lists(h.drain_events().await).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_read_reaches_the_users_phone_and_the_peer_through_their_inboxes() {
    use rcim_proto::frame::{MAX_UPSTREAM_FRAME, write_frame};
    let mut h = Harness::new().await;
    let token = h.token("alice");
    assert_eq!(connect(&h.link, &token, 0).await, ok("alice"));
    h.server
        .publish_private("bob", &["alice"], "RC:TxtMsg", "{\"content\":\"hi\"}")
        .await
        .unwrap();
    h.until_sync_completed(Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let store = h.link.store().unwrap();
    assert_eq!(store.unread_total(Vec::new()).await.unwrap(), 1);
    // alice's phone is online beside her desktop rcimd.
    let (mut phone, mut phone_writer) = raw_device(&h, "alice").await;
    write_frame(
        &mut phone_writer,
        &ClientMsg::Sync { since_seq: 1 },
        MAX_UPSTREAM_FRAME,
    )
    .await
    .unwrap();
    let bob = ConversationKey::private("bob");
    assert_eq!(h.link.mark_read(bob.clone(), 0).await, RcCode::SUCCESS);
    assert_eq!(store.unread_total(Vec::new()).await.unwrap(), 0);
    // The phone gets the read sync in bob's conversation, live.
    let synced = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match phone.read::<ServerMsg>().await.unwrap() {
                Some(ServerMsg::Push(entry)) => return entry.message,
                Some(_) => {}
                None => panic!("the phone's connection closed"),
            }
        }
    })
    .await
    .expect("the read sync reached the phone");
    assert_eq!(synced.object_name, "RC:SRSMsg");
    assert_eq!(synced.conversation, bob);
    assert_eq!(synced.sender, "alice");
    // bob's inbox holds the read notification (and nothing else from alice).
    let bob_inbox = h.server.inbox_uids("bob").await.unwrap();
    assert_eq!(bob_inbox.len(), 1);
    // The desktop got its own read sync back and did nothing with it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = h.drain_events().await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::ConversationReadSynced { .. })),
        "{events:?}"
    );
    assert!(store.command_outbox().await.unwrap().is_empty());
}
