//! Signature replay over HTTP: a request captured on the wire cannot be sent
//! again, and an old one is refused for its timestamp, each with a clear message.

use crate::util::*;
use rcim_proto::time::now_ms;
use rcim_server::RunningServer;
use rcim_server::api_client::{post_raw, sign};

fn now_s() -> i64 {
    now_ms() / 1000
}

async fn send(server: &RunningServer, nonce: &str, timestamp: &str) -> (u16, serde_json::Value) {
    let signature = sign(APP_SECRET, nonce, timestamp);
    let headers = [
        ("App-Key", APP_KEY),
        ("Nonce", nonce),
        ("Timestamp", timestamp),
        ("Signature", signature.as_str()),
    ];
    post_raw(
        &server.api_url(),
        "/user/getToken.json",
        &headers,
        b"userId=alice&name=Alice",
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_reused_nonce_is_refused_with_1004() {
    let server = server().await;
    let ts = now_s().to_string();
    let (status, json) = send(&server, "replay-me", &ts).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
    let (status, json) = send(&server, "replay-me", &ts).await;
    assert_eq!((status, json["code"].as_i64()), (401, Some(1004)), "{json}");
    let message = json["errorMessage"].as_str().unwrap();
    assert!(message.contains("Nonce was already used"), "{message}");
    // A fresh nonce is fine, in milliseconds too.
    let (status, json) = send(&server, "fresh", &now_ms().to_string()).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
}

#[tokio::test]
async fn a_timestamp_outside_five_minutes_is_refused_with_1004() {
    let server = server().await;
    for (nonce, ts) in [
        ("old-s", (now_s() - 301).to_string()),
        ("old-ms", (now_ms() - 301_000).to_string()),
        ("future", (now_s() + 3600).to_string()),
        ("not-a-time", "yesterday".to_string()),
    ] {
        let (status, json) = send(&server, nonce, &ts).await;
        assert_eq!(
            (status, json["code"].as_i64()),
            (401, Some(1004)),
            "{nonce}: {json}"
        );
        let message = json["errorMessage"].as_str().unwrap();
        assert!(message.contains("Timestamp"), "{nonce}: {message}");
    }
    // A refused request did not use up its nonce.
    let (status, json) = send(&server, "old-s", &now_s().to_string()).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
}

#[tokio::test]
async fn an_unknown_app_key_is_1001_and_the_signed_client_never_repeats_a_nonce() {
    let server = server().await;
    let (status, json) = rcim_server::api_client::post_signed(
        &server.api_url(),
        "someone-elses-key",
        APP_SECRET,
        "/stats.json",
        &[],
    )
    .await
    .unwrap();
    assert_eq!((status, json["code"].as_i64()), (401, Some(1001)), "{json}");
    // The signed client picks a fresh nonce per call, so back-to-back calls in
    // the same second all pass the replay guard.
    for _ in 0..50 {
        let (status, json) = post(&server, "/stats.json", &[]).await;
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
    }
}
