//! The moderation endpoints' parameter checks and signatures.

use crate::util::*;
use rcim_proto::code::ConnAckCode;
use rcim_proto::time::now_ms;

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}")).collect()
}

#[tokio::test]
async fn expire_checks_its_parameters() {
    let server = server().await;
    let path = "/user/token/expire.json";
    let ok_time = now_ms().to_string();
    let many = ids(21);
    let mut too_many: Vec<(&str, &str)> = many.iter().map(|id| ("userId", id.as_str())).collect();
    too_many.push(("time", &ok_time));
    expect_1002(&server, path, &too_many).await;
    let twenty = ids(20);
    let mut max: Vec<(&str, &str)> = twenty.iter().map(|id| ("userId", id.as_str())).collect();
    max.push(("time", &ok_time));
    post_ok(&server, path, &max).await;

    let cases: [&[(&str, &str)]; 8] = [
        &[("userId", "alice")],
        &[("userId", "alice"), ("time", "")],
        &[("userId", "alice"), ("time", "-1")],
        &[("userId", "alice"), ("time", "soon")],
        &[("userId", "alice"), ("time", "1.5")],
        &[("time", "1")],
        &[("userId", "a/b"), ("time", "1")],
        &[("userId", "alice"), ("userId", ""), ("time", "1")],
    ];
    for form in cases {
        expect_1002(&server, path, form).await;
    }
    post_ok(&server, path, &[("userId", "alice"), ("time", "0")]).await;
}

#[tokio::test]
async fn block_and_unblock_check_their_parameters() {
    let server = server().await;
    let many = ids(21);
    let mut too_many: Vec<(&str, &str)> = many.iter().map(|id| ("userId", id.as_str())).collect();
    expect_1002(&server, "/user/unblock.json", &too_many).await;
    too_many.push(("minute", "1"));
    expect_1002(&server, "/user/block.json", &too_many).await;

    let cases: [&[(&str, &str)]; 7] = [
        &[("userId", "alice")],
        &[("userId", "alice"), ("minute", "0")],
        &[("userId", "alice"), ("minute", "43201")],
        &[("userId", "alice"), ("minute", "-5")],
        &[("userId", "alice"), ("minute", "ten")],
        &[("minute", "10")],
        &[("userId", "a b"), ("minute", "10")],
    ];
    for form in cases {
        expect_1002(&server, "/user/block.json", form).await;
    }
    post_ok(
        &server,
        "/user/block.json",
        &[("userId", "alice"), ("minute", "43200")],
    )
    .await;
    expect_1002(&server, "/user/unblock.json", &[]).await;
    expect_1002(&server, "/user/unblock.json", &[("userId", "a/b")]).await;
    post_ok(
        &server,
        "/user/unblock.json",
        &[("userId", "never-blocked")],
    )
    .await;
}

#[tokio::test]
async fn new_endpoints_need_a_signature() {
    let server = server().await;
    expect_unsigned_refused(
        &server,
        &[
            ("/user/token/expire.json", "userId=alice&time=1"),
            ("/user/block.json", "userId=alice&minute=1"),
            ("/user/unblock.json", "userId=alice"),
            ("/user/block/query.json", ""),
        ],
    )
    .await;
    // Nothing was done.
    let token = server.issue_token("alice", "Alice").unwrap();
    assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
}
