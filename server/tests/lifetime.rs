//! The token lifetime (`--token-lifetime`): tokens from getToken and `issue_token`
//! expire after it; zero means never.

use crate::util::*;
use rcim_proto::code::ConnAckCode;
use std::time::Duration;

#[tokio::test]
async fn get_token_tokens_expire_after_the_lifetime() {
    let lifetime = Duration::from_secs(2);
    let server = server_from(|c| c.token_lifetime = lifetime).await;
    let (status, json) = post(
        &server,
        "/user/getToken.json",
        &[("userId", "alice"), ("name", "Alice")],
    )
    .await;
    assert_eq!(status, 200, "{json}");
    let token = json["token"].as_str().unwrap().to_owned();
    let (issued, expires) = claim_times(&token);
    assert_eq!(expires - issued, 2000);
    assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
    sleep_past(expires).await;
    assert_eq!(code_for(&server, &token).await, ConnAckCode::TOKEN_EXPIRED);
    // issue_token follows the same lifetime.
    let (issued, expires) = claim_times(&server.issue_token("bob", "Bob").unwrap());
    assert_eq!(expires - issued, 2000);
}

#[tokio::test]
async fn zero_lifetime_means_never() {
    let server = server().await;
    let token = server.issue_token("alice", "Alice").unwrap();
    assert_eq!(claim_times(&token).1, 0);
}
