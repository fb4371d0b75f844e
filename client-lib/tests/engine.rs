//! The RC-shaped Engine, called from plain (non-async) test threads.

use crate::util::FakeDaemon;
use rcim_client::{ClientError, ConnectCallback, ConnectionStatus, Engine, EngineOptions};
use rcim_proto::ipc::{Callback, Reply};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn engine_for(socket: std::path::PathBuf) -> Engine {
    Engine::create(
        "app-key",
        EngineOptions {
            socket: Some(socket),
            client_name: "engine-test".into(),
            ..EngineOptions::default()
        },
    )
}

fn never_called() -> (ConnectCallback, Arc<AtomicBool>) {
    let fired = Arc::new(AtomicBool::new(false));
    let (a, b) = (Arc::clone(&fired), Arc::clone(&fired));
    let callback = ConnectCallback::new(move |_, _| a.store(true, Ordering::SeqCst))
        .on_database_opened(move |_| b.store(true, Ordering::SeqCst));
    (callback, fired)
}

#[test]
fn empty_token_is_33003_and_no_callback_fires() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_for(dir.path().join("rcimd.sock"));
    for bad in ["", "  \t", "two words"] {
        let (callback, fired) = never_called();
        assert_eq!(engine.connect(bad, 10, callback), 33003);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !fired.load(Ordering::SeqCst),
            "a callback fired for {bad:?}"
        );
    }
    // The argument check does not even try the daemon.
    assert!(engine.last_error().is_none());
}

#[test]
fn no_daemon_is_33001_with_the_typed_error_kept() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_for(dir.path().join("rcimd.sock"));
    let (callback, fired) = never_called();
    assert_eq!(engine.connect("a-token", 10, callback), 33001);
    let err = engine.last_error().expect("the error is kept");
    assert!(
        matches!(err, ClientError::DaemonNotRunning { .. }),
        "{err:?}"
    );
    assert_eq!(engine.disconnect(true), 33001);
    assert_eq!(
        engine.get_connection_status(),
        ConnectionStatus::Unconnected
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(!fired.load(Ordering::SeqCst));
    engine.destroy();
}

#[test]
fn connect_fires_database_opened_then_connected_and_feeds_the_listener() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let (daemon_done_tx, daemon_done) = mpsc::channel::<()>();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, token) = peer.connect_request().await;
        assert_eq!(token, "token-alice");
        peer.respond(id, Reply::Code(0)).await;
        peer.status_event(ConnectionStatus::Connecting).await;
        peer.callback(id, Callback::DatabaseOpened { code: 0 })
            .await;
        peer.status_event(ConnectionStatus::Connected).await;
        // Same status again: the listener must not be called twice for it.
        peer.status_event(ConnectionStatus::Connected).await;
        peer.callback(
            id,
            Callback::Connected {
                code: 0,
                user_id: Some("alice".into()),
            },
        )
        .await;
        let request = peer.request().await;
        peer.respond(request.id, Reply::Code(0)).await;
        peer.status_event(ConnectionStatus::SignOut).await;
        let _ = daemon_done_tx.send(());
        // Then the daemon goes away.
    });
    let engine = engine_for(daemon.socket.clone());

    let statuses = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&statuses);
    let (status_tx, status_rx) = mpsc::channel();
    engine.set_on_connection_status_changed(move |status| {
        seen.lock().unwrap().push(status);
        let _ = status_tx.send(());
    });

    let calls = Arc::new(Mutex::new(Vec::new()));
    let (opened, connected) = (Arc::clone(&calls), Arc::clone(&calls));
    let (done_tx, done_rx) = mpsc::channel();
    let callback = ConnectCallback::new(move |code, user| {
        connected
            .lock()
            .unwrap()
            .push(format!("connected {code} {user:?}"));
        let _ = done_tx.send(std::thread::current().name().map(str::to_owned));
    })
    .on_database_opened(move |code| opened.lock().unwrap().push(format!("opened {code}")));
    assert_eq!(engine.connect("token-alice", 30, callback), 0);
    let thread = done_rx.recv_timeout(WAIT).expect("onConnected fired");
    assert_eq!(thread.as_deref(), Some("rcim-callbacks"));
    assert_eq!(
        *calls.lock().unwrap(),
        ["opened 0", "connected 0 Some(\"alice\")"]
    );
    assert_eq!(engine.get_connection_status(), ConnectionStatus::Connected);

    assert_eq!(engine.disconnect(false), 0);
    daemon_done.recv_timeout(WAIT).unwrap();
    for _ in 0..3 {
        status_rx.recv_timeout(WAIT).expect("listener called");
    }
    assert_eq!(
        *statuses.lock().unwrap(),
        [
            ConnectionStatus::Connecting,
            ConnectionStatus::Connected,
            ConnectionStatus::SignOut
        ]
    );

    // The daemon is gone: the next call tries to attach again and reports it.
    runtime.block_on(daemon.task).unwrap();
    let mut status = engine.get_connection_status();
    for _ in 0..50 {
        if engine.last_error().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        status = engine.get_connection_status();
    }
    assert_eq!(status, ConnectionStatus::Unconnected);
    assert!(matches!(
        engine.last_error(),
        Some(ClientError::DaemonNotRunning { .. })
    ));
}

#[test]
fn daemon_drop_mid_connect_gives_on_connected_30011() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, _) = peer.connect_request().await;
        peer.respond(id, Reply::Code(0)).await;
    });
    let engine = engine_for(daemon.socket.clone());
    let (tx, rx) = mpsc::channel();
    let code = engine.connect(
        "token",
        0,
        ConnectCallback::new(move |code, user| {
            let _ = tx.send((code, user));
        }),
    );
    assert_eq!(code, 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (30011, None));
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "fired twice"
    );
}
