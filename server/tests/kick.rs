//! Kicks: a newer connection of the same user on the same platform ends the older
//! one; other platforms and users coexist.

use crate::util::*;
use rcim_proto::code::DisconnectReason;

#[tokio::test]
async fn same_platform_kicks_the_older_connection() {
    let server = server().await;
    let mut old = connect_on(&server, "alice", "desktop").await;
    let mut new = connect_on(&server, "alice", "desktop").await;
    expect_disconnect(&mut old, DisconnectReason::KICKED).await;
    expect_alive(&mut new).await;
    assert!(server.is_online("alice"));
    eventually("one connection left", || server.stats().online == 1).await;
    assert_eq!(server.stats().kicks, 1);
    assert_eq!(server.stats().connects_accepted, 2);

    // And again: the newest always wins.
    let mut newest = connect_on(&server, "alice", "desktop").await;
    expect_disconnect(&mut new, DisconnectReason::KICKED).await;
    expect_alive(&mut newest).await;
    assert_eq!(server.stats().kicks, 2);
}

#[tokio::test]
async fn different_platforms_and_users_coexist() {
    let server = server().await;
    let mut desktop = connect_on(&server, "alice", "desktop").await;
    let mut mobile = connect_on(&server, "alice", "mobile").await;
    let mut web = connect_on(&server, "alice", "web").await;
    let mut bob = connect_on(&server, "bob", "desktop").await;
    for client in [&mut desktop, &mut mobile, &mut web, &mut bob] {
        expect_alive(client).await;
    }
    assert_eq!(server.stats().online, 4);
    assert_eq!(server.stats().kicks, 0);
}

#[tokio::test]
async fn kicks_are_in_stats_json() {
    let server = server().await;
    let mut old = connect_as(&server, "alice").await;
    let _new = connect_as(&server, "alice").await;
    expect_disconnect(&mut old, DisconnectReason::KICKED).await;
    let (status, json) = post(&server, "/stats.json", &[]).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["kicks"], 1, "{json}");
}
