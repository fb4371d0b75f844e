//! The IM endpoint over TCP: the CONNECT handshake and its CONNACK codes, PING/PONG,
//! the heartbeat timeout, framing errors, the counters and shutdown.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::MAX_UPSTREAM_FRAME;
use rcim_proto::time::now_ms;
use rcim_proto::upstream::{ClientMsg, ServerMsg};
use rcim_server::Stats;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;

#[tokio::test]
async fn connect_is_accepted_with_the_user_id() {
    let server = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    let mut client = Client::open(server.im_addr()).await;
    client
        .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
        .await;
    let ack = client.connack().await;
    assert_eq!(ack.code, ConnAckCode::ACCEPTED);
    assert_eq!(ack.user_id.as_deref(), Some("alice"));
    assert!(
        (ack.server_time_ms - now_ms()).abs() < 60_000,
        "{}",
        ack.server_time_ms
    );
    assert!(server.is_online("alice"));
    assert_eq!(
        server.stats(),
        Stats {
            connects_accepted: 1,
            connects_rejected: 0,
            online: 1,
            messages: 0,
            kicks: 0
        }
    );
}

#[tokio::test]
async fn bad_tokens_get_token_incorrect() {
    let server = server().await;
    let good = server.issue_token("alice", "Alice").unwrap();
    let other_secret =
        rcim_server::token::TokenIssuer::new(APP_KEY, "another-secret").issue("alice", now_ms(), 0);
    let other_key =
        rcim_server::token::TokenIssuer::new("another-key", APP_SECRET).issue("alice", now_ms(), 0);
    let cases = [
        ("wrong secret", APP_KEY, other_secret.expose().to_owned()),
        (
            "other app key in the token",
            APP_KEY,
            other_key.expose().to_owned(),
        ),
        ("garbage", APP_KEY, "garbage".to_owned()),
        ("empty", APP_KEY, String::new()),
        ("connect with another app key", "another-key", good),
    ];
    for (what, app_key, token) in &cases {
        let code = connack_code(&server, WIRE_VERSION, app_key, token).await;
        assert_eq!(code, ConnAckCode::TOKEN_INCORRECT, "{what}");
    }
    assert_eq!(server.stats().connects_rejected, cases.len() as u64);
    assert_eq!(server.stats().connects_accepted, 0);
}

#[tokio::test]
async fn wrong_protocol_version_is_refused() {
    let server = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    let code = connack_code(&server, WIRE_VERSION + 1, APP_KEY, &token).await;
    assert_eq!(code, ConnAckCode::UNACCEPTABLE_PROTOCOL_VERSION);
}

#[tokio::test]
async fn expired_token_is_refused() {
    let server = server().await;
    let expired = server
        .issue_token_expiring("alice", now_ms() - 1000)
        .unwrap();
    let code = connack_code(&server, WIRE_VERSION, APP_KEY, &expired).await;
    assert_eq!(code, ConnAckCode::TOKEN_EXPIRED);
    let valid = server
        .issue_token_expiring("alice", now_ms() + 3_600_000)
        .unwrap();
    let code = connack_code(&server, WIRE_VERSION, APP_KEY, &valid).await;
    assert_eq!(code, ConnAckCode::ACCEPTED);
}

#[tokio::test]
async fn ping_is_answered_with_pong() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    for _ in 0..3 {
        client.send(&ClientMsg::Ping).await;
        assert_eq!(client.recv().await, ServerMsg::Pong);
    }
}

#[tokio::test]
async fn silence_ends_with_heartbeat_timeout() {
    let server = server_with(Duration::from_millis(200)).await;
    let mut client = connect_as(&server, "alice").await;
    // Pings keep the connection alive past the timeout...
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        client.send(&ClientMsg::Ping).await;
        assert_eq!(client.recv().await, ServerMsg::Pong);
    }
    // ...silence does not.
    let started = std::time::Instant::now();
    assert_eq!(
        client.recv().await,
        ServerMsg::Disconnect {
            reason: DisconnectReason::HEARTBEAT_TIMEOUT
        }
    );
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    client.expect_closed().await;
    eventually("offline", || server.stats().online == 0).await;
}

#[tokio::test]
async fn oversized_length_prefix_closes_the_connection() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    client
        .writer
        .write_all(&u32::MAX.to_be_bytes())
        .await
        .unwrap();
    assert_eq!(
        client.recv().await,
        ServerMsg::Disconnect {
            reason: DisconnectReason::PROTOCOL_ERROR
        }
    );
    client.expect_closed().await;

    // Before the handshake too.
    let mut client = Client::open(server.im_addr()).await;
    client
        .writer
        .write_all(&(MAX_UPSTREAM_FRAME + 1).to_be_bytes())
        .await
        .unwrap();
    assert_eq!(
        client.recv().await,
        ServerMsg::Disconnect {
            reason: DisconnectReason::PROTOCOL_ERROR
        }
    );
    client.expect_closed().await;
    eventually("offline", || server.stats().online == 0).await;
}

#[tokio::test]
async fn garbage_frame_is_a_protocol_error() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    // A frame whose body is not a ClientMsg (variant 200 does not exist).
    client.writer.write_all(&[0, 0, 0, 1, 200]).await.unwrap();
    assert_eq!(
        client.recv().await,
        ServerMsg::Disconnect {
            reason: DisconnectReason::PROTOCOL_ERROR
        }
    );
    client.expect_closed().await;
}

#[tokio::test]
async fn client_disconnect_closes_and_goes_offline() {
    let server = server().await;
    let mut client = connect_as(&server, "alice").await;
    assert!(server.is_online("alice"));
    client
        .send(&ClientMsg::Disconnect { keep_push: false })
        .await;
    client.expect_closed().await;
    eventually("offline", || !server.is_online("alice")).await;
}

#[tokio::test]
async fn stats_count_connects_and_online() {
    let server = server().await;
    let a = connect_as(&server, "alice").await;
    let b = connect_on(&server, "bob", "desktop").await;
    let c = connect_on(&server, "bob", "mobile").await;
    let code = connack_code(&server, WIRE_VERSION, APP_KEY, "nope").await;
    assert_eq!(code, ConnAckCode::TOKEN_INCORRECT);
    assert_eq!(
        server.stats(),
        Stats {
            connects_accepted: 3,
            connects_rejected: 1,
            online: 3,
            messages: 0,
            kicks: 0
        }
    );
    drop((a, b, c));
    eventually("all offline", || server.stats().online == 0).await;
    assert_eq!(server.stats().connects_accepted, 3);
    assert_eq!(server.stats().connects_rejected, 1);
}

#[tokio::test]
async fn shutdown_tells_live_connections() {
    let TestServer { server, _dir } = server().await;
    let mut client = connect_as(&server, "alice").await;
    let mut idle = Client::open(server.im_addr()).await;
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(
        client.recv().await,
        ServerMsg::Disconnect {
            reason: DisconnectReason::SERVER_SHUTDOWN
        }
    );
    client.expect_closed().await;
    idle.expect_closed().await;
    tokio::time::timeout(SOON, shutdown).await.unwrap().unwrap();
}
