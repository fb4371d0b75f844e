//! In-process connections through `RunningServer::serve_stream` over
//! `tokio::io::duplex`, under paused time.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::time::now_ms;
use rcim_proto::upstream::ServerMsg;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn serve_stream_runs_the_real_connection_under_paused_time() {
    let server = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    let mut client = duplex_client(&server).await;
    client.connect_accepted(&token, "desktop", "alice").await;
    assert!(server.is_online("alice"));
    expect_alive(&mut client).await;

    // The heartbeat timeout runs on the paused clock.
    let silent = tokio::time::Instant::now();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(600), client.reader.read::<ServerMsg>())
            .await
            .unwrap()
            .unwrap(),
        Some(ServerMsg::Disconnect {
            reason: DisconnectReason::HEARTBEAT_TIMEOUT
        })
    );
    let waited = silent.elapsed();
    assert!(
        waited >= Duration::from_secs(90) && waited < Duration::from_secs(91),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_database_checks_work_under_paused_time() {
    let server = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    let mut live = duplex_client(&server).await;
    live.send(&connect_msg(WIRE_VERSION, APP_KEY, &token)).await;
    assert_eq!(live.connack().await.code, ConnAckCode::ACCEPTED);

    // Kick.
    let mut newer = duplex_client(&server).await;
    newer
        .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
        .await;
    assert_eq!(newer.connack().await.code, ConnAckCode::ACCEPTED);
    expect_disconnect(&mut live, DisconnectReason::KICKED).await;

    // Block.
    server.block("alice", 1).await.unwrap();
    expect_disconnect(&mut newer, DisconnectReason::USER_BLOCKED).await;
    let mut refused = duplex_client(&server).await;
    refused
        .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
        .await;
    assert_eq!(refused.connack().await.code, ConnAckCode::USER_BLOCKED);
    refused.expect_closed().await;
    server.unblock("alice").await.unwrap();

    // Token expiry.
    server
        .expire_tokens("alice", now_ms() + 60_000)
        .await
        .unwrap();
    let mut expired = duplex_client(&server).await;
    expired
        .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
        .await;
    assert_eq!(expired.connack().await.code, ConnAckCode::TOKEN_EXPIRED);
    assert_eq!(server.stats().kicks, 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_covers_in_process_connections() {
    let TestServer { server, _dir } = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    let mut client = duplex_client(&server).await;
    client
        .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
        .await;
    assert_eq!(client.connack().await.code, ConnAckCode::ACCEPTED);
    let mut idle = duplex_client(&server).await;
    let shutdown = tokio::spawn(server.shutdown());
    expect_disconnect(&mut client, DisconnectReason::SERVER_SHUTDOWN).await;
    idle.expect_closed().await;
    shutdown.await.unwrap();
}
