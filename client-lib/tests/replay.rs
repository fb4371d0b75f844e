//! Replay and re-attach: `subscribe` with the seam deduplicated, recovery of a
//! stream that lagged locally (paging from the database), the daemon's `Lagged`
//! notice, and re-attaching after
//! the daemon restarts on the same socket.

use crate::util::{FakeDaemon, link, snapshot};
use futures_util::StreamExt;
use rcim_client::{
    Client, ClientError, ClientOptions, ConnectionStatus, Engine, EngineOptions, Event, Events,
    Lagged, ReattachPolicy, Token,
};
use rcim_proto::ipc::{Op, Reply};
use std::sync::mpsc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// What a stream yielded, in a form easy to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Message(i64),
    Status(ConnectionStatus, i32),
    Sync,
    DaemonLagged(i64),
    Skipped(u64),
    Recalled(i64),
}

fn seen(item: Result<Event, Lagged>) -> Seen {
    match item {
        Ok(Event::MessageReceived { message, .. }) => Seen::Message(message.id),
        Ok(Event::StatusChanged(state)) => Seen::Status(state.status, state.code),
        Ok(Event::OfflineSyncCompleted) => Seen::Sync,
        Ok(Event::Lagged { resume_from }) => Seen::DaemonLagged(resume_from),
        Ok(Event::MessageRecalled { message }) => Seen::Recalled(message.id),
        Err(Lagged { missed }) => Seen::Skipped(missed),
        Ok(other) => panic!("no such event in these tests: {other:?}"),
    }
}

/// Reads `events` until `last` (inclusive) or the end; panics after `WAIT`.
async fn collect_until(events: &mut Events, last: &Seen) -> Vec<Seen> {
    let mut out = Vec::new();
    loop {
        let item = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap_or_else(|_| panic!("stalled after {out:?}"));
        let Some(item) = item else { return out };
        let item = seen(item);
        let done = &item == last;
        out.push(item);
        if done {
            return out;
        }
    }
}

fn messages(seen: &[Seen]) -> Vec<i64> {
    seen.iter()
        .filter_map(|s| match s {
            Seen::Message(id) => Some(*id),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn subscribe_replays_once_across_the_seam_with_live_traffic() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        // Live before the app's Subscribe arrives: the replay brings it again.
        peer.message(11).await;
        let (id, since) = peer.subscribe_request().await;
        assert_eq!(since, 5);
        // Sent before the daemon stopped live events for the replay.
        peer.message(12).await;
        peer.respond(id, Reply::Code(0)).await;
        for id in 6..=12 {
            peer.message(id).await;
        }
        peer.status_event(ConnectionStatus::Connected).await;
        // Live again; a repeat of something replayed is dropped too.
        peer.message(13).await;
        peer.message(12).await;
        peer.message(14).await;
        let _ = peer.read().await;
    });
    let (client, mut events) = Client::attach_with_events(daemon.options()).await.unwrap();
    assert_eq!(client.subscribe(5).await.unwrap(), 0);
    let got = collect_until(&mut events, &Seen::Message(14)).await;
    assert_eq!(messages(&got), (6..=14).collect::<Vec<_>>(), "{got:?}");
    assert!(got.contains(&Seen::Status(ConnectionStatus::Connected, 0)));
    assert_eq!(events.last_message_id(), Some(14));
    assert_eq!(client.last_seq(), Some(14));
    // A stream made now starts here: nothing it could get is older.
    assert_eq!(client.events().last_message_id(), Some(14));
}

#[tokio::test]
async fn a_subscribe_ahead_of_the_stream_skips_what_the_app_has() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        peer.message(3).await;
        let (id, since) = peer.subscribe_request().await;
        assert_eq!(since, 40);
        peer.respond(id, Reply::Code(0)).await;
        peer.message(41).await;
        let _ = peer.read().await;
    });
    let (client, mut events) = Client::attach_with_events(daemon.options()).await.unwrap();
    assert_eq!(client.subscribe(40).await.unwrap(), 0);
    let got = collect_until(&mut events, &Seen::Message(41)).await;
    assert_eq!(messages(&got), [41]);
    assert_eq!(client.last_seq(), Some(41));
}

#[tokio::test]
async fn a_stream_that_lags_locally_pages_what_it_skipped_from_the_database() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let request = peer.request().await;
        for id in 1..=1100 {
            peer.message(id).await;
        }
        peer.event(Event::OfflineSyncCompleted).await;
        peer.respond(
            request.id,
            Reply::Status(snapshot(ConnectionStatus::Connected)),
        )
        .await;
        // The lagging stream pages its gap, one page ahead of what it yields, from
        // before the first message (it had yielded none).
        let mut since = 0;
        let mut live = 1100;
        loop {
            let (id, asked, limit) = peer.messages_after_request().await;
            assert_eq!(asked, since, "each page starts where the last one ended");
            assert_eq!(limit, 500);
            if since == 500 {
                // Stored and published while the stream pages.
                live = 1101;
                peer.message(1101).await;
            }
            peer.page(id, since, limit, live).await;
            if since == live {
                break;
            }
            since = live.min(since + i64::from(limit));
        }
        peer.message(1102).await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut slow = client.events();
    // The reader routes all 1,101 events and the response while nobody reads `slow`.
    client.status().await.unwrap();
    let mut fresh = client.events();
    assert_eq!(fresh.last_message_id(), Some(1100));
    // A stream that keeps up sees only what is new to it.
    let fresh = tokio::spawn(async move { collect_until(&mut fresh, &Seen::Message(1102)).await });

    let got = collect_until(&mut slow, &Seen::Message(1102)).await;
    assert_eq!(got[0], Seen::Skipped(1101 - 1024), "the lag is reported");
    assert_eq!(
        messages(&got),
        (1..=1102).collect::<Vec<_>>(),
        "every message once, in order"
    );
    // Caught up: the current status (the Welcome's: no status event came), then the
    // event kept from the buffer, then what came after the pages.
    let caught_up = got
        .iter()
        .position(|s| s == &Seen::Status(ConnectionStatus::Unconnected, 0))
        .expect("the current status after the pages");
    assert_eq!(got[caught_up - 1], Seen::Message(1101));
    assert_eq!(got[caught_up + 1..], [Seen::Sync, Seen::Message(1102)]);
    assert_eq!(slow.last_message_id(), Some(1102));

    let got = fresh.await.unwrap();
    assert_eq!(messages(&got), [1101, 1102], "{got:?}");
}

#[tokio::test]
async fn a_lagged_stream_skips_status_events_older_than_the_status_it_caught_up_with() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let request = peer.request().await;
        peer.message(1).await;
        for _ in 0..1100 {
            peer.status_event(ConnectionStatus::Connecting).await;
        }
        peer.status_event(ConnectionStatus::Connected).await;
        peer.respond(
            request.id,
            Reply::Status(snapshot(ConnectionStatus::Connected)),
        )
        .await;
        let (id, since, limit) = peer.messages_after_request().await;
        assert_eq!(since, 0);
        // While the stream pages: older than the status it will catch up with.
        peer.status_event(ConnectionStatus::Connecting).await;
        peer.status_event(ConnectionStatus::Connected).await;
        peer.page(id, since, limit, 1).await;
        let (id, since, limit) = peer.messages_after_request().await;
        assert_eq!(since, 1);
        peer.page(id, since, limit, 1).await;
        // Once the stream has caught up.
        let request = peer.request().await;
        peer.status_event(ConnectionStatus::Suspend).await;
        peer.respond(
            request.id,
            Reply::Status(snapshot(ConnectionStatus::Suspend)),
        )
        .await;
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    let mut slow = client.events();
    client.status().await.unwrap();
    let got = collect_until(&mut slow, &Seen::Status(ConnectionStatus::Connected, 0)).await;
    assert_eq!(
        got,
        [
            Seen::Skipped(1102 - 1024),
            Seen::Message(1),
            Seen::Status(ConnectionStatus::Connected, 0),
        ],
    );
    client.status().await.unwrap();
    assert_eq!(
        seen(slow.next().await.unwrap()),
        Seen::Status(ConnectionStatus::Suspend, 0),
        "no stale status after the current one"
    );
}

#[tokio::test]
async fn the_daemons_lagged_notice_is_surfaced_and_its_replay_is_invisible() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        for id in 1..=3 {
            peer.message(id).await;
        }
        peer.event(Event::Lagged { resume_from: 3 }).await;
        // The daemon's replay may overlap what the client has.
        for id in 2..=6 {
            peer.message(id).await;
        }
        peer.status_event(ConnectionStatus::Connected).await;
        peer.message(7).await;
        let _ = peer.read().await;
    });
    let (_client, mut events) = Client::attach_with_events(daemon.options()).await.unwrap();
    let got = collect_until(&mut events, &Seen::Message(7)).await;
    assert_eq!(
        got,
        [
            Seen::Message(1),
            Seen::Message(2),
            Seen::Message(3),
            Seen::DaemonLagged(3),
            Seen::Message(4),
            Seen::Message(5),
            Seen::Message(6),
            Seen::Status(ConnectionStatus::Connected, 0),
            Seen::Message(7),
        ]
    );
}

fn reattaching(daemon: &FakeDaemon, give_up_after: Option<Duration>) -> ClientOptions {
    ClientOptions {
        reattach: Some(ReattachPolicy {
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            give_up_after,
        }),
        ..daemon.options()
    }
}

#[tokio::test]
async fn reattach_after_a_daemon_restart_resubscribes_from_the_last_message() {
    let (hello_tx, hello_rx) = tokio::sync::oneshot::channel();
    let mut hello_tx = Some(hello_tx);
    let daemon = FakeDaemon::start_each(Duration::from_millis(150), move |n, mut peer| {
        let hello_tx = if n == 1 { hello_tx.take() } else { None };
        async move {
            match n {
                0 => {
                    peer.welcome_with(ConnectionStatus::Connected).await;
                    peer.message(1).await;
                    peer.message(2).await;
                    // A connect accepted and waiting for onConnected when the daemon dies.
                    let (id, _) = peer.connect_request().await;
                    peer.respond(id, Reply::Code(0)).await;
                    // rcimd is killed: the connection drops.
                }
                1 => {
                    let hello = peer.welcome_with(ConnectionStatus::Connecting).await;
                    if let Some(tx) = hello_tx {
                        let _ = tx.send(hello.client_name);
                    }
                    // The first request on the new connection resumes the stream.
                    let (id, since) = peer.subscribe_request().await;
                    assert_eq!(since, 2);
                    peer.message(4).await;
                    peer.respond(id, Reply::Code(0)).await;
                    peer.message(3).await;
                    peer.message(4).await;
                    peer.status_event(ConnectionStatus::Connected).await;
                    peer.message(5).await;
                    let request = peer.request().await;
                    assert_eq!(request.op, Op::Status);
                    peer.respond(
                        request.id,
                        Reply::Status(snapshot(ConnectionStatus::Connected)),
                    )
                    .await;
                    let _ = peer.read().await;
                }
                _ => {
                    let _ = peer.read().await;
                }
            }
        }
    });
    let (client, mut events) = Client::attach_with_events(reattaching(&daemon, None))
        .await
        .unwrap();
    let got = collect_until(&mut events, &Seen::Message(2)).await;
    assert_eq!(messages(&got), [1, 2]);
    let call = client.connect(Token::new("tok"), 30).await.unwrap();
    // The pending call keeps its documented outcome.
    let done = tokio::time::timeout(WAIT, call.connected()).await.unwrap();
    assert_eq!(done.code, 30011);

    let got = collect_until(&mut events, &Seen::Message(5)).await;
    assert_eq!(
        got,
        [
            Seen::Status(ConnectionStatus::Suspend, 30011),
            Seen::Status(ConnectionStatus::Connecting, 0),
            Seen::Message(3),
            Seen::Message(4),
            Seen::Status(ConnectionStatus::Connected, 0),
            Seen::Message(5),
        ]
    );
    assert_eq!(hello_rx.await.unwrap(), "test");
    assert_eq!(client.reattach_count(), 1);
    assert_eq!(client.last_seq(), Some(5));
    assert!(!client.is_closed() && !client.is_ended());
    assert_eq!(
        client.welcome().status.link.status,
        ConnectionStatus::Connecting
    );
    let status = client.status().await.unwrap();
    assert_eq!(status.link.status, ConnectionStatus::Connected);
}

#[tokio::test]
async fn calls_during_the_gap_fail_and_reattach_gives_up_when_told() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let _ = dropped_rx.await;
    });
    let (client, mut events) =
        Client::attach_with_events(reattaching(&daemon, Some(Duration::from_millis(300))))
            .await
            .unwrap();
    // The daemon goes away and never comes back (its listener is gone).
    drop(dropped_tx);
    daemon.task.await.unwrap();
    let got = collect_until(&mut events, &Seen::Status(ConnectionStatus::Suspend, 30011)).await;
    assert_eq!(got, [Seen::Status(ConnectionStatus::Suspend, 30011)]);
    assert!(client.is_closed());
    let err = client.status().await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
    // Then it gives up: the stream ends and the session is over.
    let end = tokio::time::timeout(WAIT, events.next()).await.unwrap();
    assert_eq!(end, None);
    assert!(client.is_ended());
    assert_eq!(client.reattach_count(), 0);
}

#[test]
fn the_engine_reattaches_and_its_listeners_see_the_blip_and_no_repeat() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let daemon = FakeDaemon::start_each(Duration::from_millis(100), |n, mut peer| async move {
        match n {
            0 => {
                peer.welcome_with(ConnectionStatus::Connected).await;
                let request = peer.request().await;
                assert_eq!(request.op, Op::Disconnect { receive_push: true });
                peer.message(1).await;
                peer.message(2).await;
                peer.respond(request.id, Reply::Code(0)).await;
            }
            1 => {
                peer.welcome_with(ConnectionStatus::Connected).await;
                let (id, since) = peer.subscribe_request().await;
                assert_eq!(since, 2);
                peer.respond(id, Reply::Code(0)).await;
                for id in 1..=3 {
                    peer.message(id).await;
                }
                peer.event(Event::StatusChanged(link(ConnectionStatus::Connected)))
                    .await;
                let _ = peer.read().await;
            }
            _ => {
                let _ = peer.read().await;
            }
        }
    });
    let engine = Engine::create(
        "app-key",
        EngineOptions {
            client: ClientOptions {
                socket: Some(daemon.socket.clone()),
                client_name: "engine-test".into(),
                reattach: Some(ReattachPolicy {
                    first_delay: Duration::from_millis(20),
                    ..ReattachPolicy::default()
                }),
                ..EngineOptions::default().client
            },
        },
    );
    let (tx, rx) = mpsc::channel();
    let statuses = tx.clone();
    engine.set_on_connection_status_changed(move |status| {
        let _ = statuses.send(format!("status {status}"));
    });
    engine.set_on_message_received(move |message, _, _, _| {
        let _ = tx.send(format!("message {}", message.id));
    });
    assert_eq!(engine.disconnect(true), 0);
    let mut got = Vec::new();
    while got.len() < 5 {
        got.push(rx.recv_timeout(WAIT).expect("a listener call"));
    }
    assert_eq!(
        got,
        [
            "message 1",
            "message 2",
            "status suspend",
            "status connected",
            "message 3"
        ]
    );
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    assert_eq!(engine.get_connection_status(), ConnectionStatus::Connected);
    drop(runtime);
}
