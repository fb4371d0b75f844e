//! The blocking wrapper, from a plain test thread (the fake daemon runs on its own
//! runtime): timed waits, send steps, queries and the events iterator.

use crate::util::{FakeDaemon, saved, sent, stored};
use rcim_client::blocking::{self, TimedOut};
use rcim_client::{
    Callback, ClientOptions, ConversationKey, Event, SendStep, Sent, TEXT_MESSAGE, TimeOrder,
    text_content,
};
use rcim_proto::ConnectionStatus;
use rcim_proto::ipc::Reply;
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

fn options(daemon: &FakeDaemon) -> ClientOptions {
    daemon.options()
}

#[test]
fn timed_waits_time_out_without_losing_the_call() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let daemon = FakeDaemon::start(move |mut peer| async move {
        peer.welcome().await;
        let (id, to, ..) = peer.send_request().await;
        peer.respond(id, Reply::Code(0)).await;
        let message = saved(3, to, "x");
        peer.callback(
            id,
            Callback::MessageSaved {
                message: message.clone(),
            },
        )
        .await;
        // Hold MessageSent back until the client has timed out once.
        let rx = go_rx;
        tokio::task::spawn_blocking(move || rx.lock().unwrap().recv())
            .await
            .unwrap()
            .unwrap();
        peer.callback(
            id,
            Callback::MessageSent {
                code: 0,
                message: sent(&message, "uid-3"),
            },
        )
        .await;
        peer.status_event(ConnectionStatus::Connected).await;
        let _ = peer.read().await;
    });
    let client = blocking::Client::attach(options(&daemon)).unwrap();
    let mut events = client.events();
    let mut call = client
        .send_message(
            ConversationKey::private("bob"),
            TEXT_MESSAGE,
            &text_content("x"),
        )
        .unwrap();
    assert_eq!(call.code(), 0);
    assert_eq!(
        call.next_callback_timeout(WAIT),
        Ok(Some(SendStep::Saved(saved(
            3,
            ConversationKey::private("bob"),
            "x"
        ))))
    );
    assert_eq!(
        call.next_callback_timeout(Duration::from_millis(50)),
        Err(TimedOut)
    );
    go_tx.send(()).unwrap();
    assert_eq!(
        call.sent(),
        Sent {
            code: 0,
            message: Some(sent(
                &saved(3, ConversationKey::private("bob"), "x"),
                "uid-3"
            )),
        }
    );
    assert!(matches!(
        events.next_timeout(WAIT),
        Ok(Some(Ok(Event::StatusChanged(state)))) if state.status == ConnectionStatus::Connected
    ));
    assert_eq!(
        events.next_timeout(Duration::from_millis(50)),
        Err(TimedOut)
    );
}

#[test]
fn queries_and_the_events_iterator_until_the_daemon_goes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let bob = ConversationKey::private("bob");
    let to = bob.clone();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let request = peer.request().await;
        peer.respond(
            request.id,
            Reply::Messages(vec![stored(1, to.clone(), "bob", "one")]),
        )
        .await;
        let request = peer.request().await;
        peer.respond(request.id, Reply::Conversations(vec![])).await;
        let request = peer.request().await;
        peer.respond(request.id, Reply::Code(0)).await;
        peer.message_event(stored(2, to.clone(), "bob", "two"))
            .await;
        peer.event(Event::OfflineSyncCompleted).await;
        // Then the daemon goes away.
    });
    let client = blocking::Client::attach(options(&daemon)).unwrap();
    let events = client.events();
    assert_eq!(
        client
            .get_messages(bob.clone(), 0, TimeOrder::Before, 20)
            .unwrap()
            .map(|m| m.len()),
        Ok(1)
    );
    assert_eq!(client.get_conversations(&[], 0, 50).unwrap(), Ok(vec![]));
    assert_eq!(client.clear_unread_count(bob, 0).unwrap(), 0);
    let all: Vec<_> = events.collect();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(matches!(&all[0], Ok(Event::MessageReceived { message, .. }) if message.id == 2));
    assert_eq!(all[1], Ok(Event::OfflineSyncCompleted));
    assert!(client.is_closed());
}
