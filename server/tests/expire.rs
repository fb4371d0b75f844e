//! `/user/token/expire.json` and `RunningServer::expire_tokens`: tokens issued
//! before the cut-off get CONNACK 10 at their next CONNECT, live connections stay.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::ConnAckCode;
use rcim_proto::time::now_ms;
use rcim_server::start;

#[tokio::test]
async fn live_connection_stays_and_the_next_connect_gets_token_expired() {
    let server = server().await;
    let old = server.issue_token("alice", "Alice").unwrap();
    let mut live = connect_with(&server, &old, "desktop").await;
    let (issued, _) = claim_times(&old);
    let time = (issued + 1).to_string();
    post_ok(
        &server,
        "/user/token/expire.json",
        &[("userId", "alice"), ("time", &time)],
    )
    .await;
    // RC does not drop the live connection.
    expect_alive(&mut live).await;
    assert!(server.is_online("alice"));
    // The next CONNECT with the old token is refused, on any platform.
    assert_eq!(code_for(&server, &old).await, ConnAckCode::TOKEN_EXPIRED);
    let mut mobile = Client::open(server.im_addr()).await;
    mobile
        .send(&connect_msg_on(WIRE_VERSION, APP_KEY, &old, "mobile"))
        .await;
    assert_eq!(mobile.connack().await.code, ConnAckCode::TOKEN_EXPIRED);
    expect_alive(&mut live).await;
}

#[tokio::test]
async fn tokens_issued_at_or_after_time_still_work() {
    let server = server().await;
    let old = server.issue_token("alice", "Alice").unwrap();
    let (issued, _) = claim_times(&old);
    sleep_past(issued).await;
    let time = now_ms();
    server.expire_tokens("alice", time).await.unwrap();
    let fresh = server.issue_token("alice", "Alice").unwrap();
    assert!(claim_times(&fresh).0 >= time);
    assert_eq!(code_for(&server, &old).await, ConnAckCode::TOKEN_EXPIRED);
    assert_eq!(code_for(&server, &fresh).await, ConnAckCode::ACCEPTED);
    // Other users are not affected.
    let bob = server.issue_token("bob", "Bob").unwrap();
    assert_eq!(code_for(&server, &bob).await, ConnAckCode::ACCEPTED);
}

#[tokio::test]
async fn a_future_time_invalidates_fresh_tokens_too() {
    let server = server().await;
    let time = (now_ms() + 3_600_000).to_string();
    post_ok(
        &server,
        "/user/token/expire.json",
        &[("userId", "alice"), ("time", &time)],
    )
    .await;
    let token = server.issue_token("alice", "Alice").unwrap();
    assert_eq!(code_for(&server, &token).await, ConnAckCode::TOKEN_EXPIRED);
}

#[tokio::test]
async fn repeated_user_ids_are_all_expired() {
    let server = server().await;
    let a = server.issue_token("alice", "Alice").unwrap();
    let b = server.issue_token("bob", "Bob").unwrap();
    let c = server.issue_token("carol", "Carol").unwrap();
    let time = (now_ms() + 60_000).to_string();
    post_ok(
        &server,
        "/user/token/expire.json",
        &[("userId", "alice"), ("userId", "bob"), ("time", &time)],
    )
    .await;
    assert_eq!(code_for(&server, &a).await, ConnAckCode::TOKEN_EXPIRED);
    assert_eq!(code_for(&server, &b).await, ConnAckCode::TOKEN_EXPIRED);
    assert_eq!(code_for(&server, &c).await, ConnAckCode::ACCEPTED);
}

#[tokio::test]
async fn the_cut_off_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config_in(dir.path())).await.unwrap();
    let old = server.issue_token("alice", "Alice").unwrap();
    server
        .expire_tokens("alice", now_ms() + 60_000)
        .await
        .unwrap();
    server.shutdown().await;
    let server = start(config_in(dir.path())).await.unwrap();
    assert_eq!(code_for(&server, &old).await, ConnAckCode::TOKEN_EXPIRED);
    server.shutdown().await;
}

#[tokio::test]
async fn order_bad_token_before_cut_off() {
    // A token that is both from another secret and before the cut-off is
    // "incorrect" (4), not "expired" (10): the signature is checked first.
    let server = server().await;
    server
        .expire_tokens("alice", now_ms() + 60_000)
        .await
        .unwrap();
    let forged =
        rcim_server::token::TokenIssuer::new(APP_KEY, "other-secret").issue("alice", now_ms(), 0);
    assert_eq!(
        code_for(&server, forged.expose()).await,
        ConnAckCode::TOKEN_INCORRECT
    );
}
