//! Blocks: `/user/block.json`, `/user/unblock.json`, `/user/block/query.json` and
//! the in-process `block`/`unblock`: live connections end, CONNECTs get CONNACK 9.

use crate::util::*;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::time::now_ms;
use rcim_server::start;

#[tokio::test]
async fn live_connections_end_and_connects_are_refused_until_unblock() {
    let server = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    let mut desktop = connect_with(&server, &token, "desktop").await;
    let mut mobile = connect_with(&server, &token, "mobile").await;
    let mut bob = connect_as(&server, "bob").await;
    post_ok(
        &server,
        "/user/block.json",
        &[("userId", "alice"), ("minute", "10")],
    )
    .await;
    expect_disconnect(&mut desktop, DisconnectReason::USER_BLOCKED).await;
    expect_disconnect(&mut mobile, DisconnectReason::USER_BLOCKED).await;
    eventually("alice offline", || !server.is_online("alice")).await;
    expect_alive(&mut bob).await;

    assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
    // A fresh token does not help.
    let fresh = server.issue_token("alice", "Alice").unwrap();
    assert_eq!(code_for(&server, &fresh).await, ConnAckCode::USER_BLOCKED);

    post_ok(&server, "/user/unblock.json", &[("userId", "alice")]).await;
    let mut again = connect_with(&server, &token, "desktop").await;
    expect_alive(&mut again).await;
    assert_eq!(server.stats().kicks, 0, "a block is not a kick");
}

#[tokio::test]
async fn in_process_block_and_unblock() {
    let server = server().await;
    let mut live = connect_as(&server, "alice").await;
    server.block("alice", 1).await.unwrap();
    expect_disconnect(&mut live, DisconnectReason::USER_BLOCKED).await;
    let token = server.issue_token("alice", "Alice").unwrap();
    assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
    server.unblock("alice").await.unwrap();
    assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
    assert!(server.block("alice", 0).await.is_err());
    assert!(server.block("alice", 43_201).await.is_err());
    assert!(server.block("a/b", 1).await.is_err());
}

#[tokio::test]
async fn a_block_whose_time_has_passed_counts_as_unblocked() {
    let TestServer { server, _dir } = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    server.block("alice", 1).await.unwrap();
    assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
    // Move the stored end of the 1-minute block into the past, as if the minute
    // had gone by.
    let db =
        rusqlite::Connection::open(_dir.path().join("data").join(rcim_server::DB_FILE)).unwrap();
    db.busy_timeout(SOON).unwrap();
    let changed = db
        .execute(
            "UPDATE blocks SET until_ms = ?1 WHERE user_id = 'alice'",
            [now_ms() - 1],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
    let (_, json) = post(&server, "/user/block/query.json", &[]).await;
    assert_eq!(json["users"], serde_json::json!([]), "{json}");
}

#[tokio::test]
async fn blocks_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config_in(dir.path())).await.unwrap();
    let token = server.issue_token("alice", "Alice").unwrap();
    server.block("alice", 5).await.unwrap();
    server.shutdown().await;
    let server = start(config_in(dir.path())).await.unwrap();
    assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
    server.shutdown().await;
}

#[tokio::test]
async fn the_token_is_checked_before_the_block() {
    let server = server().await;
    server.block("alice", 5).await.unwrap();
    let expired = server
        .issue_token_expiring("alice", now_ms() - 1000)
        .unwrap();
    assert_eq!(
        code_for(&server, &expired).await,
        ConnAckCode::TOKEN_EXPIRED
    );
    assert_eq!(
        code_for(&server, "garbage").await,
        ConnAckCode::TOKEN_INCORRECT
    );
}

#[tokio::test]
async fn query_lists_current_blocks() {
    let server = server().await;
    post_ok(
        &server,
        "/user/block.json",
        &[("userId", "bob"), ("userId", "alice"), ("minute", "60")],
    )
    .await;
    let (status, json) = post(&server, "/user/block/query.json", &[]).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
    let users = json["users"].as_array().unwrap();
    let ids: Vec<_> = users
        .iter()
        .map(|u| u["userId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["alice", "bob"]);
    let end = users[0]["blockEndTime"].as_str().unwrap();
    // "YYYY-MM-DD HH:MM:SS"
    assert_eq!(end.len(), 19, "{end}");
    assert_eq!((&end[4..5], &end[10..11], &end[13..14]), ("-", " ", ":"));
    post_ok(&server, "/user/unblock.json", &[("userId", "bob")]).await;
    let (_, json) = post(&server, "/user/block/query.json", &[]).await;
    assert_eq!(json["users"].as_array().unwrap().len(), 1, "{json}");
}
