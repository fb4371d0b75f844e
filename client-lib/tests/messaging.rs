//! Messaging through the async Client: send callbacks through the shared callback
//! routing, the synthesized MessageSent, message events, queries and the local
//! argument checks.

use crate::util::{FakeDaemon, saved, sent, snapshot, stored};
use futures_util::StreamExt;
use rcim_client::{
    Callback, Client, ClientError, Conversation, ConversationKey, ConversationType, Event,
    SendStep, Sent, TEXT_MESSAGE, TimeOrder, Token, text_content, text_of,
};
use rcim_proto::ConnectionStatus;
use rcim_proto::ipc::{Op, Reply};

fn bob() -> ConversationKey {
    ConversationKey::private("bob")
}

#[tokio::test]
async fn send_callbacks_arrive_in_order_with_events_between() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, to, object_name, content) = peer.send_request().await;
        assert_eq!(to, bob());
        assert_eq!(object_name, "RC:TxtMsg");
        assert_eq!(content, r#"{"content":"hi \"bob\""}"#);
        peer.respond(id, Reply::Code(0)).await;
        peer.message_event(stored(1, bob(), "bob", "before")).await;
        let message = saved(2, bob(), "hi \"bob\"");
        peer.callback(
            id,
            Callback::MessageSaved {
                message: message.clone(),
            },
        )
        .await;
        peer.status_event(ConnectionStatus::Connected).await;
        peer.event(Event::OfflineSyncCompleted).await;
        peer.callback(
            id,
            Callback::MessageSent {
                code: 0,
                message: sent(&message, "uid-2"),
            },
        )
        .await;
        peer.message_event(stored(3, bob(), "bob", "after")).await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut events = client.events();
    let mut call = client
        .send_message(bob(), TEXT_MESSAGE, &text_content("hi \"bob\""))
        .await
        .unwrap();
    assert_eq!(call.code(), 0);
    assert!(call.is_accepted());
    let expected_saved = saved(2, bob(), "hi \"bob\"");
    assert_eq!(
        call.next_callback().await,
        Some(SendStep::Saved(expected_saved.clone()))
    );
    assert_eq!(
        call.next_callback().await,
        Some(SendStep::Sent(Sent {
            code: 0,
            message: Some(sent(&expected_saved, "uid-2")),
        }))
    );
    assert_eq!(call.next_callback().await, None);
    assert_eq!(call.next_callback().await, None);

    // Every event, in order, and none of the callbacks.
    match events.next().await {
        Some(Ok(Event::MessageReceived {
            message,
            left: 0,
            offline: false,
            has_package: false,
        })) => assert_eq!(text_of(&message).as_deref(), Some("before")),
        other => panic!("expected the first message, got {other:?}"),
    }
    assert_eq!(events.last_message_id(), Some(1));
    assert!(matches!(
        events.next().await,
        Some(Ok(Event::StatusChanged(state))) if state.status == ConnectionStatus::Connected
    ));
    assert_eq!(events.next().await, Some(Ok(Event::OfflineSyncCompleted)));
    match events.next().await {
        Some(Ok(Event::MessageReceived { message, .. })) => assert_eq!(message.id, 3),
        other => panic!("expected the second message, got {other:?}"),
    }
    assert_eq!(events.last_message_id(), Some(3));
}

#[tokio::test]
async fn sends_and_a_connect_in_flight_share_the_routing_without_mixing() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (a, ..) = peer.send_request().await;
        peer.respond(a, Reply::Code(0)).await;
        let (c, _) = peer.connect_request().await;
        peer.respond(c, Reply::Code(0)).await;
        let (b, ..) = peer.send_request().await;
        peer.respond(b, Reply::Code(0)).await;
        let (ma, mb) = (saved(10, bob(), "a"), saved(11, bob(), "b"));
        // Interleaved: b saved, connect's database, a saved, b sent, connect done,
        // a failed. Callbacks of the wrong kind for an id are ignored.
        peer.callback(
            b,
            Callback::MessageSaved {
                message: mb.clone(),
            },
        )
        .await;
        peer.callback(c, Callback::DatabaseOpened { code: 0 }).await;
        peer.callback(
            a,
            Callback::Connected {
                code: 0,
                user_id: None,
            },
        )
        .await;
        peer.callback(
            a,
            Callback::MessageSaved {
                message: ma.clone(),
            },
        )
        .await;
        // A duplicate onMessageSaved must not reach the app.
        peer.callback(
            a,
            Callback::MessageSaved {
                message: ma.clone(),
            },
        )
        .await;
        peer.callback(
            b,
            Callback::MessageSent {
                code: 0,
                message: sent(&mb, "uid-b"),
            },
        )
        .await;
        peer.callback(
            c,
            Callback::MessageSent {
                code: 0,
                message: mb.clone(),
            },
        )
        .await;
        peer.callback(
            c,
            Callback::Connected {
                code: 0,
                user_id: Some("alice".into()),
            },
        )
        .await;
        peer.callback(
            a,
            Callback::MessageSent {
                code: 22406,
                message: ma.clone(),
            },
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut a = client
        .send_message(ConversationKey::group("team"), "RC:TxtMsg", "{}")
        .await
        .unwrap();
    let connect = client.connect(Token::new("t"), 5).await.unwrap();
    let mut b = client
        .send_message(bob(), "App:Custom", r#"{"x":1}"#)
        .await
        .unwrap();

    assert_eq!(b.saved().await, Some(saved(11, bob(), "b")));
    // saved() again gives the same message without waiting.
    assert_eq!(b.saved().await, Some(saved(11, bob(), "b")));
    let b_sent = b.sent().await;
    assert_eq!(b_sent.code, 0);
    assert_eq!(b_sent.message.and_then(|m| m.uid).as_deref(), Some("uid-b"));

    let done = connect.connected().await;
    assert_eq!(
        (done.code, done.user_id.as_deref(), done.database_opened),
        (0, Some("alice"), Some(0))
    );

    assert_eq!(
        a.next_callback().await,
        Some(SendStep::Saved(saved(10, bob(), "a")))
    );
    assert_eq!(
        a.next_callback().await,
        Some(SendStep::Sent(Sent {
            code: 22406,
            message: Some(saved(10, bob(), "a")),
        }))
    );
    assert_eq!(a.next_callback().await, None);
    // The outcome stays available after next_callback handed it out.
    assert_eq!(a.sent().await.code, 22406);
}

#[tokio::test]
async fn saved_keeps_a_message_sent_that_came_first() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, ..) = peer.send_request().await;
        peer.respond(id, Reply::Code(0)).await;
        peer.callback(
            id,
            Callback::MessageSent {
                code: 30014,
                message: saved(5, bob(), "x"),
            },
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut call = client
        .send_message(bob(), TEXT_MESSAGE, &text_content("x"))
        .await
        .unwrap();
    assert_eq!(call.saved().await, None);
    assert_eq!(
        call.next_callback().await,
        Some(SendStep::Sent(Sent {
            code: 30014,
            message: Some(saved(5, bob(), "x")),
        }))
    );
    assert_eq!(call.next_callback().await, None);
}

#[tokio::test]
async fn daemon_drop_after_saved_synthesizes_30011_with_the_saved_message() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, ..) = peer.send_request().await;
        peer.respond(id, Reply::Code(0)).await;
        peer.callback(
            id,
            Callback::MessageSaved {
                message: saved(7, bob(), "x"),
            },
        )
        .await;
        // Gone before MessageSent.
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut call = client
        .send_message(bob(), TEXT_MESSAGE, &text_content("x"))
        .await
        .unwrap();
    drop(client); // the call keeps the session open
    assert_eq!(
        call.next_callback().await,
        Some(SendStep::Saved(saved(7, bob(), "x")))
    );
    assert_eq!(
        call.next_callback().await,
        Some(SendStep::Sent(Sent {
            code: 30011,
            message: Some(saved(7, bob(), "x")),
        }))
    );
    assert_eq!(call.next_callback().await, None);
}

#[tokio::test]
async fn daemon_drop_before_saved_gives_30011_without_a_message() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (first, ..) = peer.send_request().await;
        peer.respond(first, Reply::Code(0)).await;
        let (second, ..) = peer.send_request().await;
        peer.respond(second, Reply::Code(0)).await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut first = client.send_message(bob(), "RC:TxtMsg", "{}").await.unwrap();
    let second = client.send_message(bob(), "RC:TxtMsg", "{}").await.unwrap();
    assert_eq!(
        second.sent().await,
        Sent {
            code: 30011,
            message: None
        }
    );
    assert_eq!(first.saved().await, None);
    assert_eq!(
        first.next_callback().await,
        Some(SendStep::Sent(Sent {
            code: 30011,
            message: None
        }))
    );
    assert_eq!(first.next_callback().await, None);
    assert!(client.is_closed());
    let err = client
        .send_message(bob(), "RC:TxtMsg", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
}

#[tokio::test]
async fn rejected_send_has_no_callbacks() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let (id, ..) = peer.send_request().await;
        peer.respond(id, Reply::Code(33002)).await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut call = client.send_message(bob(), "RC:TxtMsg", "{}").await.unwrap();
    assert_eq!(call.code(), 33002);
    assert!(!call.is_accepted());
    assert_eq!(call.saved().await, None);
    assert_eq!(call.next_callback().await, None);
    assert_eq!(
        call.sent().await,
        Sent {
            code: 33002,
            message: None
        }
    );
}

#[tokio::test]
async fn bad_arguments_are_33003_without_asking_the_daemon() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        // The first request to arrive must be the Status.
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
    let room = ConversationKey {
        kind: ConversationType::Chatroom,
        target_id: "room".into(),
    };
    let big = "x".repeat(128 * 1024 + 1);
    let bad_sends: [(ConversationKey, &str, &str); 5] = [
        (room, "RC:TxtMsg", "{}"),
        (ConversationKey::private(""), "RC:TxtMsg", "{}"),
        (ConversationKey::private("a/b"), "RC:TxtMsg", "{}"),
        (bob(), "RC: Txt", "{}"),
        (bob(), "RC:TxtMsg", &big),
    ];
    for (to, object_name, content) in bad_sends {
        let mut call = client.send_message(to, object_name, content).await.unwrap();
        assert_eq!(call.code(), 33003);
        assert_eq!(call.next_callback().await, None);
    }
    for count in [0, 21, u32::MAX] {
        let answer = client
            .get_messages(bob(), 0, TimeOrder::Before, count)
            .await
            .unwrap();
        assert_eq!(answer, Err(33003), "count {count}");
    }
    let answer = client
        .get_messages(ConversationKey::private(""), 0, TimeOrder::Before, 5)
        .await
        .unwrap();
    assert_eq!(answer, Err(33003));
    for count in [0, 51] {
        let answer = client.get_conversations(&[], 0, count).await.unwrap();
        assert_eq!(answer, Err(33003), "count {count}");
    }
    let code = client
        .clear_unread_count(ConversationKey::group(""), 0)
        .await
        .unwrap();
    assert_eq!(code, 33003);
    client.status().await.unwrap();
}

#[tokio::test]
async fn queries_carry_their_arguments_and_answers() {
    let history = vec![
        stored(9, bob(), "bob", "newest"),
        stored(8, bob(), "bob", "older"),
    ];
    let conversations = vec![Conversation {
        key: bob(),
        unread_count: 2,
        last_message: Some(stored(9, bob(), "bob", "newest")),
        operation_time_ms: 1_764_259_501_009,
        is_top: false,
        notification_level: 0,
        draft: String::new(),
    }];
    let (h, c) = (history.clone(), conversations.clone());
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let request = peer.request().await;
        assert_eq!(
            request.op,
            Op::GetMessages {
                conversation: bob(),
                sent_time_ms: 1_764_259_600_000,
                order: TimeOrder::Before,
                count: 20,
            }
        );
        peer.respond(request.id, Reply::Messages(h)).await;
        let request = peer.request().await;
        assert!(matches!(
            request.op,
            Op::GetMessages {
                order: TimeOrder::After,
                count: 1,
                ..
            }
        ));
        peer.respond(request.id, Reply::Code(33002)).await;
        let request = peer.request().await;
        assert_eq!(
            request.op,
            Op::GetConversations {
                types: vec![ConversationType::Private, ConversationType::Group],
                start_time_ms: 0,
                count: 50,
            }
        );
        peer.respond(request.id, Reply::Conversations(c)).await;
        let request = peer.request().await;
        assert_eq!(
            request.op,
            Op::ClearUnreadCount {
                conversation: bob(),
                timestamp_ms: 0,
            }
        );
        peer.respond(request.id, Reply::Code(0)).await;
        // A reply of the wrong shape is a protocol error, not a panic.
        let request = peer.request().await;
        peer.respond(request.id, Reply::Code(0)).await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let answer = client
        .get_messages(bob(), 1_764_259_600_000, TimeOrder::Before, 20)
        .await
        .unwrap();
    assert_eq!(answer, Ok(history));
    let answer = client
        .get_messages(bob(), 5, TimeOrder::After, 1)
        .await
        .unwrap();
    assert_eq!(answer, Err(33002));
    let answer = client
        .get_conversations(&[ConversationType::Private, ConversationType::Group], 0, 50)
        .await
        .unwrap();
    assert_eq!(answer, Ok(conversations));
    assert_eq!(client.clear_unread_count(bob(), 0).await.unwrap(), 0);
    let err = client.get_conversations(&[], 0, 1).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}
