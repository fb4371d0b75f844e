//! The Server API's basics: getToken and its parameter checks, signing (missing,
//! wrong and RC-prefixed headers), the body limit, checkOnline and `/stats.json`.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::ConnAckCode;
use rcim_proto::time::now_ms;
use rcim_proto::upstream::ClientMsg;
use rcim_server::api_client::{post_raw, sign};

#[tokio::test]
async fn get_token_issues_a_working_token() {
    let server = server().await;
    let (status, body) = post(
        &server,
        "/user/getToken.json",
        &[
            ("userId", "alice"),
            ("name", "Alice"),
            ("portraitUri", "http://x/a.png"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], 200);
    assert_eq!(body["userId"], "alice");
    let token = body["token"].as_str().unwrap();
    let code = connack_code(&server, WIRE_VERSION, APP_KEY, token).await;
    assert_eq!(code, ConnAckCode::ACCEPTED);

    // Getting another token leaves the first one valid.
    let (_, again) = post(
        &server,
        "/user/getToken.json",
        &[("userId", "alice"), ("name", "A")],
    )
    .await;
    assert_ne!(again["token"], body["token"]);
    assert_eq!(
        connack_code(&server, WIRE_VERSION, APP_KEY, token).await,
        ConnAckCode::ACCEPTED
    );
}

#[tokio::test]
async fn get_token_checks_its_parameters() {
    let server = server().await;
    let long_id = "x".repeat(65);
    let long_name = "n".repeat(129);
    let cases: [&[(&str, &str)]; 6] = [
        &[("name", "Alice")],
        &[("userId", ""), ("name", "Alice")],
        &[("userId", "a/b"), ("name", "Alice")],
        &[("userId", &long_id), ("name", "Alice")],
        &[("userId", "alice")],
        &[("userId", "alice"), ("name", &long_name)],
    ];
    for form in cases {
        expect_1002(&server, "/user/getToken.json", form).await;
    }
}

#[tokio::test]
async fn bad_or_missing_signature_is_401() {
    let server = server().await;
    let url = server.api_url();
    let body = b"userId=alice&name=Alice";
    let path = "/user/getToken.json";
    let good_sig = sign(APP_SECRET, "n1", "1700000000");
    let bad_sig = sign("wrong-secret", "n1", "1700000000");
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("no headers", vec![]),
        (
            "bad signature",
            vec![
                ("App-Key", APP_KEY),
                ("Nonce", "n1"),
                ("Timestamp", "1700000000"),
                ("Signature", &bad_sig),
            ],
        ),
        (
            "wrong app key",
            vec![
                ("App-Key", "other"),
                ("Nonce", "n1"),
                ("Timestamp", "1700000000"),
                ("Signature", &good_sig),
            ],
        ),
        (
            "no nonce",
            vec![
                ("App-Key", APP_KEY),
                ("Timestamp", "1700000000"),
                ("Signature", &good_sig),
            ],
        ),
    ];
    for (what, headers) in cases {
        let (status, json) = post_raw(&url, path, &headers, body).await.unwrap();
        // RC: 1001 "AppKey/Secret mismatch" for a key that is not this app's.
        let code = if what == "wrong app key" { 1001 } else { 1004 };
        assert_eq!(
            (status, json["code"].as_i64()),
            (401, Some(code)),
            "{what}: {json}"
        );
    }
    // Unknown paths are checked for nothing but exist: a JSON 404.
    let (status, json) = post_raw(&url, "/nope.json", &[], b"").await.unwrap();
    assert_eq!((status, json["code"].as_i64()), (404, Some(404)), "{json}");
}

#[tokio::test]
async fn rc_prefixed_headers_and_millisecond_timestamps_are_accepted() {
    let server = server().await;
    let ts = now_ms().to_string();
    let sig = sign(APP_SECRET, "abc", &ts);
    let headers = [
        ("RC-App-Key", APP_KEY),
        ("RC-Nonce", "abc"),
        ("RC-Timestamp", ts.as_str()),
        ("RC-Signature", sig.as_str()),
    ];
    let (status, json) = post_raw(
        &server.api_url(),
        "/user/getToken.json",
        &headers,
        b"userId=alice&name=Alice",
    )
    .await
    .unwrap();
    assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
}

#[tokio::test]
async fn oversized_body_is_1508() {
    let server = server().await;
    let big = "n".repeat(101 * 1024);
    let (status, json) = post(
        &server,
        "/user/getToken.json",
        &[("userId", "a"), ("name", &big)],
    )
    .await;
    assert_eq!((status, json["code"].as_i64()), (413, Some(1508)), "{json}");
}

#[tokio::test]
async fn check_online_follows_connections() {
    let server = server().await;
    let (status, json) = post(&server, "/user/checkOnline.json", &[("userId", "alice")]).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(200)));
    assert_eq!(json["status"], "0");
    let mut client = connect_as(&server, "alice").await;
    let (_, json) = post(&server, "/user/checkOnline.json", &[("userId", "alice")]).await;
    assert_eq!(json["status"], "1");
    client
        .send(&ClientMsg::Disconnect { keep_push: false })
        .await;
    client.expect_closed().await;
    eventually("offline", || !server.is_online("alice")).await;
    let (_, json) = post(&server, "/user/checkOnline.json", &[("userId", "alice")]).await;
    assert_eq!(json["status"], "0");
    let (status, json) = post(&server, "/user/checkOnline.json", &[]).await;
    assert_eq!((status, json["code"].as_i64()), (400, Some(1002)));
}

#[tokio::test]
async fn stats_json_reports_the_counters() {
    let server = server().await;
    let _client = connect_as(&server, "alice").await;
    connack_code(&server, WIRE_VERSION, APP_KEY, "bad").await;
    let (status, json) = post(&server, "/stats.json", &[]).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        json,
        serde_json::json!({
            "code": 200,
            "connects_accepted": 1,
            "connects_rejected": 1,
            "online": 1,
            "messages": 0,
            "kicks": 0
        })
    );
}
