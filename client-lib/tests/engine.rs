//! The RC-shaped Engine, called from plain (non-async) test threads.

use crate::util::{FakeDaemon, saved, sent, stored};
use rcim_client::{
    ClientError, ClientOptions, ConnectCallback, ConnectionStatus, ConversationKey,
    ConversationType, Engine, EngineOptions, Event, Message, OutgoingMessage, SendMessageCallback,
    TimeOrder,
};
use rcim_proto::ipc::{Callback, Op, Reply};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn engine_for(socket: std::path::PathBuf) -> Engine {
    Engine::create(
        "app-key",
        EngineOptions {
            client: ClientOptions {
                socket: Some(socket),
                client_name: "engine-test".into(),
                ..EngineOptions::default().client
            },
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
    // Without re-attach, the engine attaches again on its next call.
    let engine = Engine::create(
        "app-key",
        EngineOptions {
            client: ClientOptions {
                socket: Some(daemon.socket.clone()),
                reattach: None,
                ..EngineOptions::default().client
            },
        },
    );

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

/// The engine attaches on its first call; a first `connect` is written with the
/// Hello, so it costs one round trip to the daemon instead of two.
#[test]
fn the_first_connect_goes_out_with_the_hello() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let daemon = FakeDaemon::start(|mut peer| async move {
        let (id, token) = peer.pipelined_connect(ConnectionStatus::Connected).await;
        assert_eq!(token, "token-alice");
        peer.accept_connect(id, "alice").await;
        // The next call goes over the same connection.
        let (next, _) = peer.connect_request().await;
        assert_ne!(next, id);
        peer.respond(next, Reply::Code(0)).await;
        let _ = peer.read().await;
    });
    let engine = engine_for(daemon.socket.clone());
    let (tx, rx) = mpsc::channel();
    let on_connected = tx.clone();
    let code = engine.connect(
        "token-alice",
        30,
        ConnectCallback::new(move |code, user| {
            let _ = on_connected.send(("connected", code, user));
        })
        .on_database_opened(move |code| {
            let _ = tx.send(("database", code, None));
        }),
    );
    assert_eq!(code, 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), ("database", 0, None));
    assert_eq!(
        rx.recv_timeout(WAIT).unwrap(),
        ("connected", 0, Some("alice".to_owned()))
    );
    assert_eq!(engine.get_connection_status(), ConnectionStatus::Connected);
    assert_eq!(
        engine.connect("token-alice", 30, ConnectCallback::new(|_, _| {})),
        0
    );
    engine.destroy();
}

/// While the first `connect` (written with the Hello) waits for its answer, other
/// calls go ahead on the attached session: they wait for the attach, not for it.
#[test]
fn other_calls_do_not_wait_for_the_first_connect_answer() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let (answer_connect, connect_may_answer) = tokio::sync::oneshot::channel::<()>();
    let (welcomed_tx, welcomed) = mpsc::channel::<()>();
    let daemon = FakeDaemon::start(|mut peer| async move {
        let (connect, _) = peer.pipelined_connect(ConnectionStatus::Connecting).await;
        welcomed_tx.send(()).unwrap();
        let query = tokio::time::timeout(WAIT, peer.request())
            .await
            .expect("the query came while the connect waited for its code");
        assert!(matches!(query.op, Op::GetMessages { .. }), "{query:?}");
        peer.respond(query.id, Reply::Messages(Vec::new())).await;
        // The connect is answered only once the query's answer has been seen.
        connect_may_answer.await.unwrap();
        peer.respond(connect, Reply::Code(0)).await;
        let _ = peer.read().await;
    });
    let engine = engine_for(daemon.socket.clone());
    std::thread::scope(|scope| {
        let connecting =
            scope.spawn(|| engine.connect("token-alice", 30, ConnectCallback::new(|_, _| {})));
        // Once the connect's session is welcomed, a query goes over it and is
        // answered while the connect still waits for its code.
        welcomed.recv_timeout(WAIT).unwrap();
        let (tx, rx) = mpsc::channel();
        let code = engine.get_messages(
            ConversationKey::private("bob"),
            0,
            TimeOrder::Before,
            20,
            move |answer| {
                let _ = tx.send(answer);
            },
        );
        assert_eq!(code, 0);
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(Vec::new()));
        assert!(!connecting.is_finished(), "the connect was answered first");
        answer_connect.send(()).unwrap();
        assert_eq!(connecting.join().unwrap(), 0);
    });
    engine.destroy();
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

fn text(message: &Message) -> String {
    rcim_client::text_of(message).unwrap_or_default()
}

#[test]
fn send_message_callbacks_and_listeners_fire_in_order_on_the_callback_thread() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let bob = ConversationKey::private("bob");
    let to = bob.clone();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, conversation, object_name, content) = peer.send_request().await;
        assert_eq!(conversation, to);
        assert_eq!(object_name, "RC:TxtMsg");
        assert_eq!(content, r#"{"content":"hello"}"#);
        peer.respond(id, Reply::Code(0)).await;
        peer.event(Event::MessageReceived {
            message: stored(1, to.clone(), "bob", "offline one"),
            left: 1,
            offline: true,
            has_package: true,
        })
        .await;
        let message = saved(3, to.clone(), "hello");
        peer.callback(
            id,
            Callback::MessageSaved {
                message: message.clone(),
            },
        )
        .await;
        peer.event(Event::MessageReceived {
            message: stored(2, to.clone(), "bob", "offline two"),
            left: 0,
            offline: true,
            has_package: false,
        })
        .await;
        peer.event(Event::OfflineSyncCompleted).await;
        peer.callback(
            id,
            Callback::MessageSent {
                code: 0,
                message: sent(&message, "uid-3"),
            },
        )
        .await;
        peer.message_event(stored(4, to.clone(), "bob", "live"))
            .await;
        let _ = peer.read().await;
    });
    let engine = engine_for(daemon.socket.clone());

    let log = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let (l1, l2, l3, l4) = (
        Arc::clone(&log),
        Arc::clone(&log),
        Arc::clone(&log),
        Arc::clone(&log),
    );
    engine.set_on_message_received(move |message, left, offline, has_package| {
        let thread = std::thread::current().name().map(str::to_owned);
        assert_eq!(thread.as_deref(), Some("rcim-callbacks"));
        l1.lock().unwrap().push(format!(
            "received {} {left} {offline} {has_package}",
            text(&message)
        ));
        if message.id == 4 {
            let _ = done_tx.send(());
        }
    });
    engine
        .set_on_offline_message_sync_completed(move || l2.lock().unwrap().push("sync done".into()));
    let message = engine.create_text_message(ConversationType::Private, "bob", "hello");
    assert_eq!(message, OutgoingMessage::text(bob, "hello"));
    let code = engine.send_message(
        message,
        SendMessageCallback::new(move |code, message| {
            let uid = message.and_then(|m| m.uid);
            l3.lock().unwrap().push(format!("sent {code} {uid:?}"));
        })
        .on_message_saved(move |message| l4.lock().unwrap().push(format!("saved {}", message.id))),
    );
    assert_eq!(code, 0);
    done_rx
        .recv_timeout(WAIT)
        .expect("the live message arrived");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "received offline one 1 true true",
            "saved 3",
            "received offline two 0 true false",
            "sync done",
            "sent 0 Some(\"uid-3\")",
            "received live 0 false false",
        ]
    );
}

#[test]
fn bad_messages_and_query_arguments_are_33003_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_for(dir.path().join("rcimd.sock"));
    let fired = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&fired);
    let code = engine.send_message(
        OutgoingMessage::text(ConversationKey::private("no spaces"), "x"),
        SendMessageCallback::new(move |_, _| f.store(true, Ordering::SeqCst)),
    );
    assert_eq!(code, 33003);
    let f = Arc::clone(&fired);
    let code = engine.get_messages(
        ConversationKey::private("bob"),
        0,
        TimeOrder::Before,
        21,
        move |_| f.store(true, Ordering::SeqCst),
    );
    assert_eq!(code, 33003);
    let f = Arc::clone(&fired);
    let code = engine.get_conversations(&[], 0, 0, move |_| f.store(true, Ordering::SeqCst));
    assert_eq!(code, 33003);
    assert_eq!(
        engine.clear_unread_count(ConversationKey::private(""), 0),
        33003
    );
    // None of these even tried the daemon.
    assert!(engine.last_error().is_none());
    // With valid arguments and no daemon: 33001 and no callback.
    let f = Arc::clone(&fired);
    let code = engine.send_message(
        OutgoingMessage::text(ConversationKey::private("bob"), "x"),
        SendMessageCallback::new(move |_, _| f.store(true, Ordering::SeqCst)),
    );
    assert_eq!(code, 33001);
    let f = Arc::clone(&fired);
    let code = engine.get_messages(
        ConversationKey::private("bob"),
        0,
        TimeOrder::Before,
        5,
        move |_| f.store(true, Ordering::SeqCst),
    );
    assert_eq!(code, 33001);
    assert_eq!(
        engine.clear_unread_count(ConversationKey::private("bob"), 0),
        33001
    );
    std::thread::sleep(Duration::from_millis(50));
    assert!(!fired.load(Ordering::SeqCst));
}

#[test]
fn queries_answer_through_their_callbacks() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let bob = ConversationKey::private("bob");
    let to = bob.clone();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let request = peer.request().await;
        assert!(matches!(request.op, Op::GetMessages { count: 20, .. }));
        peer.respond(
            request.id,
            Reply::Messages(vec![stored(2, to.clone(), "bob", "two")]),
        )
        .await;
        let request = peer.request().await;
        assert!(matches!(request.op, Op::GetConversations { count: 50, .. }));
        peer.respond(request.id, Reply::Code(33002)).await;
        let request = peer.request().await;
        assert!(matches!(request.op, Op::ClearUnreadCount { .. }));
        peer.respond(request.id, Reply::Code(0)).await;
        let _ = peer.read().await;
    });
    let engine = engine_for(daemon.socket.clone());
    let (tx, rx) = mpsc::channel();
    let code = engine.get_messages(bob.clone(), 0, TimeOrder::Before, 20, move |answer| {
        let _ = tx.send(answer.map(|messages| messages.iter().map(text).collect::<Vec<_>>()));
    });
    assert_eq!(code, 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(vec!["two".to_owned()]));
    let (tx, rx) = mpsc::channel();
    let code = engine.get_conversations(&[ConversationType::Private], 0, 50, move |answer| {
        let _ = tx.send(answer.map(|c| c.len()));
    });
    assert_eq!(code, 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Err(33002));
    assert_eq!(engine.clear_unread_count(bob, 0), 0);
}

#[test]
fn daemon_drop_mid_send_gives_on_message_sent_30011_with_the_saved_message() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, to, ..) = peer.send_request().await;
        peer.respond(id, Reply::Code(0)).await;
        peer.callback(
            id,
            Callback::MessageSaved {
                message: saved(5, to, "x"),
            },
        )
        .await;
    });
    let engine = engine_for(daemon.socket.clone());
    let (tx, rx) = mpsc::channel();
    let saved_tx = tx.clone();
    let code = engine.send_message(
        OutgoingMessage::text(ConversationKey::private("bob"), "x"),
        SendMessageCallback::new(move |code, message| {
            let _ = tx.send(format!("sent {code} {:?}", message.map(|m| m.id)));
        })
        .on_message_saved(move |message| {
            let _ = saved_tx.send(format!("saved {}", message.id));
        }),
    );
    assert_eq!(code, 0);
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "saved 5");
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), "sent 30011 Some(5)");
    assert!(
        rx.recv_timeout(Duration::from_millis(100)).is_err(),
        "fired twice"
    );
}
