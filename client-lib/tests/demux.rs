//! The reader task: responses, callbacks and events each reach the right place.

use crate::util::{FakeDaemon, snapshot};
use futures_util::StreamExt;
use rcim_client::{Callback, Client, ClientError, Connected, Event, Lagged};
use rcim_proto::ipc::{Op, Reply};
use rcim_proto::{ConnectionStatus, Token};
use std::time::Duration;

fn status_of(item: Option<Result<Event, Lagged>>) -> ConnectionStatus {
    match item {
        Some(Ok(Event::StatusChanged(state))) => state.status,
        other => panic!("expected a StatusChanged event, got {other:?}"),
    }
}

#[tokio::test]
async fn responses_are_never_confused_with_events() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        // Two requests in flight; events around and between the answers, and the
        // answers in reverse order.
        let first = peer.request().await;
        let second = peer.request().await;
        assert_eq!(first.op, Op::Status);
        assert!(matches!(
            second.op,
            Op::Disconnect {
                receive_push: false
            }
        ));
        peer.status_event(ConnectionStatus::Connecting).await;
        peer.respond(second.id, Reply::Code(0)).await;
        peer.status_event(ConnectionStatus::Connected).await;
        peer.respond(
            first.id,
            Reply::Status(snapshot(ConnectionStatus::Connected)),
        )
        .await;
        peer.status_event(ConnectionStatus::SignOut).await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut events = client.events();
    let (status, code) = tokio::join!(client.status(), async {
        // Make sure Status is sent first.
        tokio::time::sleep(Duration::from_millis(20)).await;
        client.disconnect(false).await
    });
    assert_eq!(status.unwrap(), snapshot(ConnectionStatus::Connected));
    assert_eq!(code.unwrap(), 0);
    assert_eq!(status_of(events.next().await), ConnectionStatus::Connecting);
    assert_eq!(status_of(events.next().await), ConnectionStatus::Connected);
    assert_eq!(status_of(events.next().await), ConnectionStatus::SignOut);
    assert_eq!(client.link_state().status, ConnectionStatus::SignOut);
}

#[tokio::test]
async fn overlapping_connects_each_get_their_own_callbacks_in_order() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (a, token_a) = peer.connect_request().await;
        assert_eq!(token_a, "token-alice");
        peer.respond(a, Reply::Code(0)).await;
        peer.status_event(ConnectionStatus::Connecting).await;
        let (b, token_b) = peer.connect_request().await;
        assert_eq!(token_b, "token-bob");
        peer.respond(b, Reply::Code(0)).await;
        // B's callbacks first, A's interleaved, events in between.
        peer.callback(b, Callback::DatabaseOpened { code: 0 }).await;
        peer.status_event(ConnectionStatus::Connecting).await;
        peer.callback(a, Callback::DatabaseOpened { code: 33002 })
            .await;
        peer.callback(
            b,
            Callback::Connected {
                code: 0,
                user_id: Some("bob".into()),
            },
        )
        .await;
        peer.status_event(ConnectionStatus::Connected).await;
        peer.callback(
            a,
            Callback::Connected {
                code: 31004,
                user_id: None,
            },
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut events = client.events();
    let mut a = client.connect(Token::new("token-alice"), 30).await.unwrap();
    let mut b = client.connect(Token::new("token-bob"), 0).await.unwrap();
    assert_eq!((a.code(), b.code()), (0, 0));

    assert_eq!(
        b.next_callback().await,
        Some(Callback::DatabaseOpened { code: 0 })
    );
    assert_eq!(
        b.next_callback().await,
        Some(Callback::Connected {
            code: 0,
            user_id: Some("bob".into())
        })
    );
    assert_eq!(b.next_callback().await, None);

    assert_eq!(
        a.next_callback().await,
        Some(Callback::DatabaseOpened { code: 33002 })
    );
    assert_eq!(
        a.next_callback().await,
        Some(Callback::Connected {
            code: 31004,
            user_id: None
        })
    );
    assert_eq!(a.next_callback().await, None);

    // The three events, and nothing that was a response or a callback.
    for expected in [
        ConnectionStatus::Connecting,
        ConnectionStatus::Connecting,
        ConnectionStatus::Connected,
    ] {
        assert_eq!(status_of(events.next().await), expected);
    }
}

#[tokio::test]
async fn connected_skips_to_the_end_and_reports_database_opened() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, _) = peer.connect_request().await;
        peer.respond(id, Reply::Code(0)).await;
        peer.callback(id, Callback::DatabaseOpened { code: 0 })
            .await;
        // A duplicate onDatabaseOpened must not reach the app.
        peer.callback(id, Callback::DatabaseOpened { code: 0 })
            .await;
        peer.callback(
            id,
            Callback::Connected {
                code: 0,
                user_id: Some("alice".into()),
            },
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let call = client.connect(Token::new("t"), 5).await.unwrap();
    drop(client); // the call keeps the session open
    assert_eq!(
        call.connected().await,
        Connected {
            code: 0,
            user_id: Some("alice".into()),
            database_opened: Some(0),
        }
    );
}

#[tokio::test]
async fn rejected_connect_has_no_callbacks() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, _) = peer.connect_request().await;
        peer.respond(id, Reply::Code(34001)).await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut call = client.connect(Token::new("t"), 5).await.unwrap();
    assert_eq!(call.code(), 34001);
    assert!(!call.is_accepted());
    assert_eq!(call.next_callback().await, None);
    assert_eq!(call.connected().await.code, 34001);
}

#[tokio::test]
async fn invalid_token_is_33003_without_asking_the_daemon() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        // The first request to arrive must be the Status, not a Connect.
        let request = peer.request().await;
        assert_eq!(request.op, Op::Status);
        peer.respond(
            request.id,
            Reply::Status(snapshot(ConnectionStatus::Unconnected)),
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    for bad in ["", "   ", "with space", &"x".repeat(4096)] {
        let mut call = client.connect(Token::new(bad), 5).await.unwrap();
        assert_eq!(call.code(), 33003);
        assert_eq!(call.next_callback().await, None);
    }
    client.status().await.unwrap();
}

#[tokio::test]
async fn daemon_drop_fails_requests_and_synthesizes_30011() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, _) = peer.connect_request().await;
        peer.respond(id, Reply::Code(0)).await;
        peer.callback(id, Callback::DatabaseOpened { code: 0 })
            .await;
        let status = peer.request().await;
        assert_eq!(status.op, Op::Status);
        // Drop the connection with the Status unanswered and the connect unfinished.
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut events = client.events();
    let mut call = client.connect(Token::new("t"), 0).await.unwrap();
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
    assert_eq!(
        call.next_callback().await,
        Some(Callback::DatabaseOpened { code: 0 })
    );
    assert_eq!(
        call.next_callback().await,
        Some(Callback::Connected {
            code: 30011,
            user_id: None
        })
    );
    assert_eq!(call.next_callback().await, None);
    assert!(client.is_closed());
    assert!(
        events.next().await.is_none(),
        "the event stream ends with the session"
    );
    assert!(client.events().next().await.is_none());
    let err = client.disconnect(true).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
    let err = client.connect(Token::new("t"), 0).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
}

#[tokio::test]
async fn lagging_subscriber_is_told_and_does_not_stall_the_reader() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let request = peer.request().await;
        for _ in 0..1100 {
            peer.status_event(ConnectionStatus::Connecting).await;
        }
        peer.status_event(ConnectionStatus::Connected).await;
        peer.respond(
            request.id,
            Reply::Status(snapshot(ConnectionStatus::Connected)),
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut slow = client.events();
    // The reader routes all 1,101 events and the response while nobody reads `slow`.
    client.status().await.unwrap();
    assert_eq!(client.link_state().status, ConnectionStatus::Connected);
    assert_eq!(
        slow.next().await,
        Some(Err(Lagged {
            missed: 1101 - 1024
        }))
    );
    // No message to page: the current status at once, not the stale ones.
    assert_eq!(status_of(slow.next().await), ConnectionStatus::Connected);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), slow.next())
            .await
            .is_err(),
        "the skipped status events are not yielded"
    );
}
