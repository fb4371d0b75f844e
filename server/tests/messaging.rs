//! Messaging: publish and PubAck codes, de-duplication, groups, sync paging, live
//! pushes and the seam between them, acks, the Server API's publish and group
//! endpoints, and the bulk path.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::message::{ConversationKey, ConversationType, MAX_CONTENT_LEN};
use rcim_proto::time::now_ms;
use rcim_proto::upstream::{ClientMsg, InboxEntry, PubAck, Publish, ServerMsg};
use rcim_server::{RunningServer, start};
use std::collections::HashSet;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

const TXT: &str = "RC:TxtMsg";

fn publish_msg(req_id: u64, client_msg_id: &str, to: ConversationKey, content: &str) -> ClientMsg {
    ClientMsg::Publish(Publish {
        req_id,
        client_msg_id: client_msg_id.into(),
        conversation: to,
        object_name: TXT.into(),
        content: content.into(),
    })
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    /// Sends `msg` (a Publish) and returns its PubAck.
    async fn publish(&mut self, msg: ClientMsg) -> PubAck {
        let ClientMsg::Publish(Publish { req_id, .. }) = &msg else {
            panic!("not a publish: {msg:?}");
        };
        let req_id = *req_id;
        self.send(&msg).await;
        match self.recv().await {
            ServerMsg::PubAck(ack) => {
                assert_eq!(ack.req_id, req_id);
                ack
            }
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// Sends a private text message and returns its PubAck.
    async fn say(&mut self, req_id: u64, to: &str, text: &str) -> PubAck {
        let id = format!("c-{req_id}-{text}");
        self.publish(publish_msg(req_id, &id, ConversationKey::private(to), text))
            .await
    }

    /// Sends `Sync{since}` and returns the batch.
    async fn sync(&mut self, since_seq: u64) -> (Vec<InboxEntry>, bool) {
        self.send(&ClientMsg::Sync { since_seq }).await;
        match self.recv().await {
            ServerMsg::SyncBatch { entries, has_more } => (entries, has_more),
            other => panic!("expected SYNCBATCH, got {other:?}"),
        }
    }

    /// Syncs from `since` until a batch says `has_more: false`; returns every
    /// entry and each batch's size.
    async fn sync_all(&mut self, mut since: u64) -> (Vec<InboxEntry>, Vec<usize>) {
        let (mut all, mut sizes) = (Vec::new(), Vec::new());
        loop {
            let (entries, has_more) = self.sync(since).await;
            sizes.push(entries.len());
            if let Some(last) = entries.last() {
                since = last.seq;
            }
            all.extend(entries);
            if !has_more {
                return (all, sizes);
            }
        }
    }

    async fn push(&mut self) -> InboxEntry {
        match self.recv().await {
            ServerMsg::Push(entry) => entry,
            other => panic!("expected PUSH, got {other:?}"),
        }
    }
}

/// Connects as `user` and syncs until live.
async fn live_as(server: &RunningServer, user: &str) -> Client {
    live_on(server, user, "desktop").await
}

async fn live_on(server: &RunningServer, user: &str, platform: &str) -> Client {
    let mut client = connect_on(server, user, platform).await;
    client.sync_all(0).await;
    client
}

/// Asserts `seqs` are exactly `from..=to`.
fn assert_contiguous(seqs: &[u64], from: u64, to: u64) {
    let want: Vec<u64> = (from..=to).collect();
    assert_eq!(seqs.len(), want.len(), "count");
    assert!(seqs == want, "not contiguous from {from} to {to}");
}

fn seqs(entries: &[InboxEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

#[tokio::test]
async fn publish_is_acked_pushed_to_live_recipients_and_synced_by_offline_ones() {
    let server = server().await;
    let mut alice = connect_as(&server, "alice").await;
    let mut bob = live_as(&server, "bob").await;
    let before = now_ms();
    let ack = alice.say(1, "bob", "hello").await;
    assert_eq!(ack.code, 0, "{ack:?}");
    let uid = ack.message_uid.clone().expect("a uid");
    assert!(
        ack.sent_time_ms >= before && ack.sent_time_ms <= now_ms(),
        "{ack:?}"
    );

    let push = bob.push().await;
    assert_eq!(push.seq, 1);
    assert_eq!(push.message.uid, uid);
    assert_eq!(push.message.conversation, ConversationKey::private("alice"));
    assert_eq!(push.message.sender, "alice");
    assert_eq!(push.message.object_name, TXT);
    assert_eq!(push.message.content, "hello");
    assert_eq!(push.message.sent_time_ms, ack.sent_time_ms);
    expect_alive(&mut bob).await; // exactly one push: the pong comes next
    expect_alive(&mut alice).await; // the sender gets no copy

    // Carol is offline; she gets it by syncing later.
    let ack = alice.say(2, "carol", "later").await;
    assert_eq!(ack.code, 0);
    let mut carol = connect_as(&server, "carol").await;
    let (entries, has_more) = carol.sync(0).await;
    assert!(!has_more);
    assert_eq!(seqs(&entries), vec![1]);
    assert_eq!(entries[0].message.uid, ack.message_uid.unwrap());
    assert_eq!(entries[0].message.content, "later");
    assert_eq!(server.stats().messages, 2);
}

#[tokio::test]
async fn a_resent_client_message_id_is_one_message() {
    let server = server().await;
    let mut bob = live_as(&server, "bob").await;
    let mut alice = connect_as(&server, "alice").await;
    let msg = publish_msg(1, "cid-1", ConversationKey::private("bob"), "once");
    let first = alice.publish(msg.clone()).await;
    assert_eq!(first.code, 0);
    let again = alice.publish(msg.clone()).await;
    assert_eq!(again, first, "same uid and time");

    // And across a reconnect (the new connection kicks the old one).
    let mut alice2 = connect_as(&server, "alice").await;
    expect_disconnect(&mut alice, DisconnectReason::KICKED).await;
    let third = alice2.publish(msg).await;
    assert_eq!(
        (third.message_uid.as_deref(), third.sent_time_ms),
        (first.message_uid.as_deref(), first.sent_time_ms)
    );

    assert_eq!(
        bob.push().await.message.uid,
        first.message_uid.clone().unwrap()
    );
    expect_alive(&mut bob).await;
    assert_eq!(server.inbox_uids("bob").await.unwrap().len(), 1);
    assert_eq!(
        server.messages_from("alice").await.unwrap(),
        vec![("cid-1".to_owned(), first.message_uid.unwrap())]
    );
    assert_eq!(server.stats().messages, 1);
}

#[tokio::test]
async fn group_messages_fan_out_to_members_but_the_sender() {
    let server = server().await;
    post_ok(
        &server,
        "/group/create.json",
        &[
            ("userId", "alice"),
            ("userId", "bob"),
            ("groupId", "g1"),
            ("groupName", "G"),
        ],
    )
    .await;
    post_ok(
        &server,
        "/group/join.json",
        &[("userId", "carol"), ("groupId", "g1")],
    )
    .await;
    assert_eq!(
        server.group_members("g1").await.unwrap(),
        ["alice", "bob", "carol"]
    );
    let mut alice = live_as(&server, "alice").await;
    let mut bob = live_as(&server, "bob").await;
    let mut carol = live_as(&server, "carol").await;
    let mut dave = live_as(&server, "dave").await;

    let to_g1 = || ConversationKey::group("g1");
    let ack = alice.publish(publish_msg(1, "a1", to_g1(), "hi all")).await;
    assert_eq!(ack.code, 0);
    for member in [&mut bob, &mut carol] {
        let push = member.push().await;
        assert_eq!(push.message.conversation, to_g1());
        assert_eq!(push.message.sender, "alice");
        assert_eq!(Some(push.message.uid), ack.message_uid);
    }
    expect_alive(&mut alice).await;
    assert!(server.inbox_uids("alice").await.unwrap().is_empty());
    assert_eq!(server.stats().messages, 1, "a group message counts once");

    let ack = dave
        .publish(publish_msg(1, "d1", to_g1(), "let me in"))
        .await;
    assert_eq!((ack.code, ack.message_uid), (22406, None));

    post_ok(
        &server,
        "/group/quit.json",
        &[("userId", "carol"), ("groupId", "g1")],
    )
    .await;
    let ack = alice
        .publish(publish_msg(2, "a2", to_g1(), "carol left"))
        .await;
    assert_eq!(ack.code, 0);
    assert_eq!(bob.push().await.seq, 2);
    expect_alive(&mut carol).await;
    assert_eq!(server.inbox_uids("carol").await.unwrap().len(), 1);

    post_ok(
        &server,
        "/group/dismiss.json",
        &[("userId", "bob"), ("groupId", "g1")],
    )
    .await;
    let ack = alice
        .publish(publish_msg(3, "a3", to_g1(), "anyone?"))
        .await;
    assert_eq!(ack.code, 22406);
    expect_alive(&mut bob).await;
    assert_eq!(server.stats().messages, 2);
}

#[tokio::test]
async fn sync_pages_by_200_then_pushes_live() {
    let server = server().await;
    server
        .publish_private_bulk("sys", "bob", 450, TXT, "m")
        .await
        .unwrap();
    let mut bob = connect_as(&server, "bob").await;
    let (entries, sizes) = bob.sync_all(0).await;
    assert_eq!(sizes, vec![200, 200, 50]);
    assert_contiguous(&seqs(&entries), 1, 450);
    assert_eq!(entries[449].message.content, "m449");
    let uids: Vec<_> = entries
        .iter()
        .map(|e| (e.seq, e.message.uid.clone()))
        .collect();
    assert_eq!(uids, server.inbox_uids("bob").await.unwrap());

    let uid = server
        .publish_private("sys", &["bob"], TXT, "live")
        .await
        .unwrap();
    let push = bob.push().await;
    assert_eq!((push.seq, push.message.uid), (451, uid[0].clone()));

    // A re-sync while live is answered, and pushes resume after it.
    let (entries, has_more) = bob.sync(440).await;
    assert_eq!((seqs(&entries), has_more), ((441..=451).collect(), false));
    server
        .publish_private("sys", &["bob"], TXT, "again")
        .await
        .unwrap();
    assert_eq!(bob.push().await.seq, 452);
    expect_alive(&mut bob).await;
}

/// Publishes `count` messages to `to` one by one while `client` syncs from 0
/// and then listens; checks the client saw every inbox entry exactly once, in
/// order, with the same uids as the server's inbox.
async fn sync_while_publishing(server: &RunningServer, to: &str, count: usize) {
    let mut client = connect_as(server, to).await;
    let publisher = async {
        for i in 0..count {
            server
                .publish_private("sys", &[to], TXT, &format!("p{i}"))
                .await
                .unwrap();
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    let total = server.inbox_uids(to).await.unwrap().len() + count;
    let receiver = async {
        let mut got: Vec<InboxEntry> = Vec::new();
        let mut since = 0;
        loop {
            let (entries, has_more) = client.sync(since).await;
            if let Some(last) = entries.last() {
                since = last.seq;
            }
            got.extend(entries);
            if !has_more {
                break;
            }
        }
        while got.len() < total {
            got.push(client.push().await);
        }
        got
    };
    let ((), got) = tokio::join!(publisher, receiver);
    expect_alive(&mut client).await; // nothing extra was pushed
    let inbox = server.inbox_uids(to).await.unwrap();
    assert_eq!(inbox.len(), total);
    let seen: Vec<_> = got.iter().map(|e| (e.seq, e.message.uid.clone())).collect();
    assert_eq!(seen, inbox, "every entry once, in order");
    assert_contiguous(&seqs(&got), 1, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_gap_and_no_duplicate_when_messages_arrive_during_the_sync() {
    let server = server().await;
    for round in 0..4 {
        let user = format!("bob{round}");
        server
            .publish_private_bulk("sys", &user, 450 + round * 37, TXT, "b")
            .await
            .unwrap();
        sync_while_publishing(&server, &user, 300).await;
    }
    // With nothing before the sync, too.
    sync_while_publishing(&server, "carol", 300).await;
}

#[tokio::test]
async fn acks_are_recorded_and_an_ack_beyond_the_inbox_is_a_protocol_error() {
    let server = server().await;
    server
        .publish_private_bulk("sys", "bob", 5, TXT, "a")
        .await
        .unwrap();
    let mut bob = live_as(&server, "bob").await;
    bob.send(&ClientMsg::Ack { seq: 3 }).await;
    bob.send(&ClientMsg::Ack { seq: 2 }).await;
    expect_alive(&mut bob).await;
    eventually_async("ack 3 recorded", || async {
        server.inbox_state("bob").await.unwrap() == (5, 3)
    })
    .await;

    // A connection that has not synced may ack what an earlier one received.
    let mut mobile = connect_on(&server, "bob", "mobile").await;
    mobile.send(&ClientMsg::Ack { seq: 5 }).await;
    expect_alive(&mut mobile).await;
    assert_eq!(server.inbox_state("bob").await.unwrap(), (5, 5));

    bob.send(&ClientMsg::Ack { seq: 6 }).await;
    expect_disconnect(&mut bob, DisconnectReason::PROTOCOL_ERROR).await;
    assert_eq!(server.inbox_state("bob").await.unwrap(), (5, 5));
    let mut nobody = connect_as(&server, "nobody").await;
    nobody.send(&ClientMsg::Ack { seq: 0 }).await;
    expect_alive(&mut nobody).await;
    nobody.send(&ClientMsg::Ack { seq: 1 }).await;
    expect_disconnect(&mut nobody, DisconnectReason::PROTOCOL_ERROR).await;
}

#[tokio::test]
async fn bad_publishes_get_their_codes_and_the_connection_stays() {
    let server = server().await;
    let mut alice = connect_as(&server, "alice").await;
    let bob = || ConversationKey::private("bob");
    let with_object = |object_name: &str| {
        ClientMsg::Publish(Publish {
            req_id: 1,
            client_msg_id: "x".into(),
            conversation: bob(),
            object_name: object_name.into(),
            content: "{}".into(),
        })
    };
    for (msg, code) in [
        (with_object(""), 33003),
        (with_object("RC: Txt"), 33003),
        (with_object(&"X".repeat(33)), 33003),
        (
            publish_msg(2, "big", bob(), &"x".repeat(MAX_CONTENT_LEN + 1)),
            30016,
        ),
        (
            publish_msg(
                3,
                "sys",
                ConversationKey {
                    kind: ConversationType::System,
                    target_id: "bob".into(),
                },
                "{}",
            ),
            33003,
        ),
        (
            publish_msg(
                4,
                "room",
                ConversationKey {
                    kind: ConversationType::Chatroom,
                    target_id: "r1".into(),
                },
                "{}",
            ),
            33003,
        ),
        (
            publish_msg(5, "slash", ConversationKey::private("a/b"), "{}"),
            33003,
        ),
        (publish_msg(6, "", bob(), "{}"), 33003),
    ] {
        let ack = alice.publish(msg.clone()).await;
        assert_eq!(
            (ack.code, ack.message_uid.as_deref()),
            (code, None),
            "{msg:?}"
        );
    }
    // The largest content is fine.
    let big = publish_msg(7, "max", bob(), &"x".repeat(MAX_CONTENT_LEN));
    assert_eq!(alice.publish(big).await.code, 0);
    expect_alive(&mut alice).await;
    assert_eq!(server.stats().messages, 1);
    assert_eq!(server.inbox_uids("bob").await.unwrap().len(), 1);

    // A full-size backlog still syncs: batches stay under the frame cap.
    server
        .publish_private_bulk("sys", "bob", 3, TXT, &"y".repeat(MAX_CONTENT_LEN - 8))
        .await
        .unwrap();
    for i in 0..10 {
        let big = publish_msg(
            10 + i,
            &format!("max{i}"),
            bob(),
            &"x".repeat(MAX_CONTENT_LEN),
        );
        assert_eq!(alice.publish(big).await.code, 0);
    }
    let mut bob_client = connect_as(&server, "bob").await;
    let (entries, sizes) = bob_client.sync_all(0).await;
    assert_contiguous(&seqs(&entries), 1, 14);
    assert!(sizes.len() >= 2, "{sizes:?}");
}

#[tokio::test]
async fn server_api_publishes_private_system_and_group_messages() {
    let server = server().await;
    let mut bob = live_as(&server, "bob").await;
    post_ok(
        &server,
        "/message/private/publish.json",
        &[
            ("fromUserId", "shop"),
            ("toUserId", "bob"),
            ("toUserId", "carol"),
            ("objectName", TXT),
            ("content", r#"{"content":"sale"}"#),
            ("pushContent", "ignored"),
            ("isIncludeSender", "0"),
            ("count", "1"),
        ],
    )
    .await;
    let push = bob.push().await;
    assert_eq!(push.message.conversation, ConversationKey::private("shop"));
    assert_eq!(push.message.content, r#"{"content":"sale"}"#);
    let carol = server.inbox_uids("carol").await.unwrap();
    assert_eq!(carol.len(), 1);
    assert_ne!(carol[0].1, push.message.uid, "one message per recipient");

    post_ok(
        &server,
        "/message/system/publish.json",
        &[
            ("fromUserId", "news"),
            ("toUserId", "bob"),
            ("objectName", TXT),
            ("content", "{}"),
        ],
    )
    .await;
    let push = bob.push().await;
    assert_eq!(
        push.message.conversation,
        ConversationKey {
            kind: ConversationType::System,
            target_id: "news".into()
        }
    );

    // A group message from the back-end: its sender need not be a member.
    server
        .create_group("g1", "G", &["bob", "carol"])
        .await
        .unwrap();
    post_ok(
        &server,
        "/message/group/publish.json",
        &[
            ("fromUserId", "admin"),
            ("toGroupId", "g1"),
            ("objectName", TXT),
            ("content", "{}"),
        ],
    )
    .await;
    let push = bob.push().await;
    assert_eq!(push.message.conversation, ConversationKey::group("g1"));
    assert_eq!(push.message.sender, "admin");
    assert_eq!(server.inbox_uids("carol").await.unwrap().len(), 2);
    expect_alive(&mut bob).await;
    assert_eq!(server.stats().messages, 4);

    // The in-process helpers share the implementation.
    let uids = server
        .publish_system("news", &["bob", "bob", "dave"], TXT, "{}")
        .await
        .unwrap();
    assert_eq!(uids.len(), 2, "repeats count once");
    assert_eq!(bob.push().await.message.uid, uids[0]);
    server.join_group("g1", &["dave"]).await.unwrap();
    server.quit_group("g1", &["carol"]).await.unwrap();
    assert_eq!(server.group_members("g1").await.unwrap(), ["bob", "dave"]);
    let uid = server.publish_group("bob", "g1", TXT, "{}").await.unwrap();
    assert_eq!(
        server.inbox_uids("dave").await.unwrap().last().unwrap().1,
        uid
    );
    expect_alive(&mut bob).await; // the sender gets no copy
}

#[tokio::test]
async fn server_api_checks_message_and_group_parameters() {
    let server = server().await;
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let mut too_many: Vec<(&str, &str)> = many.iter().map(|u| ("toUserId", u.as_str())).collect();
    too_many.extend([("fromUserId", "a"), ("objectName", TXT), ("content", "{}")]);
    let hundred_one: Vec<(&str, &str)> = too_many[..101]
        .iter()
        .copied()
        .chain([("fromUserId", "a"), ("objectName", TXT), ("content", "{}")])
        .collect();
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/message/private/publish.json",
            vec![("toUserId", "b"), ("objectName", TXT), ("content", "{}")],
        ),
        (
            "/message/private/publish.json",
            vec![("fromUserId", "a"), ("objectName", TXT), ("content", "{}")],
        ),
        (
            "/message/private/publish.json",
            vec![("fromUserId", "a"), ("toUserId", "b"), ("content", "{}")],
        ),
        (
            "/message/private/publish.json",
            vec![("fromUserId", "a"), ("toUserId", "b"), ("objectName", TXT)],
        ),
        (
            "/message/private/publish.json",
            vec![
                ("fromUserId", "a"),
                ("toUserId", "b/c"),
                ("objectName", TXT),
                ("content", "{}"),
            ],
        ),
        (
            "/message/private/publish.json",
            vec![
                ("fromUserId", "a"),
                ("toUserId", "b"),
                ("objectName", "RC: x"),
                ("content", "{}"),
            ],
        ),
        ("/message/private/publish.json", too_many.clone()),
        ("/message/system/publish.json", hundred_one),
        (
            "/message/system/publish.json",
            vec![
                ("fromUserId", ""),
                ("toUserId", "b"),
                ("objectName", TXT),
                ("content", "{}"),
            ],
        ),
        (
            "/message/group/publish.json",
            vec![("fromUserId", "a"), ("objectName", TXT), ("content", "{}")],
        ),
        (
            "/message/group/publish.json",
            vec![
                ("fromUserId", "a"),
                ("toGroupId", "g1"),
                ("toGroupId", "g2"),
                ("toGroupId", "g3"),
                ("toGroupId", "g4"),
                ("objectName", TXT),
                ("content", "{}"),
            ],
        ),
        (
            "/group/create.json",
            vec![("userId", "a"), ("groupId", "g1")],
        ),
        (
            "/group/create.json",
            vec![("groupId", "g1"), ("groupName", "G")],
        ),
        (
            "/group/create.json",
            vec![("userId", "a"), ("groupId", "g/1"), ("groupName", "G")],
        ),
        ("/group/join.json", vec![("userId", "a")]),
        ("/group/quit.json", vec![("groupId", "g1")]),
        ("/group/dismiss.json", vec![("groupId", "g1")]),
        ("/group/dismiss.json", vec![("userId", "a")]),
    ];
    for (path, form) in &cases {
        expect_1002(&server, path, form).await;
    }
    assert_eq!(server.stats().messages, 0);
    assert!(server.inbox_uids("b").await.unwrap().is_empty());
    // Exactly 1000 recipients is fine.
    let mut thousand = too_many;
    thousand.remove(0);
    post_ok(&server, "/message/private/publish.json", &thousand).await;
    assert_eq!(server.stats().messages, 1000);
}

#[tokio::test]
async fn message_and_group_endpoints_need_a_signature() {
    let server = server().await;
    expect_unsigned_refused(
        &server,
        &[
            (
                "/message/private/publish.json",
                "fromUserId=a&toUserId=b&objectName=RC:TxtMsg&content=x",
            ),
            (
                "/message/system/publish.json",
                "fromUserId=a&toUserId=b&objectName=RC:TxtMsg&content=x",
            ),
            (
                "/message/group/publish.json",
                "fromUserId=a&toGroupId=g&objectName=RC:TxtMsg&content=x",
            ),
            ("/group/create.json", "userId=b&groupId=g&groupName=G"),
            ("/group/join.json", "userId=b&groupId=g"),
            ("/group/quit.json", "userId=b&groupId=g"),
            ("/group/dismiss.json", "userId=b&groupId=g"),
            ("/rcim/inbox/query.json", "userId=b"),
            ("/rcim/message/sent.json", "fromUserId=a"),
            (
                "/rcim/message/bulk.json",
                "fromUserId=a&toUserId=b&count=5&objectName=RC:TxtMsg",
            ),
        ],
    )
    .await;
    // Nothing was done.
    assert_eq!(server.stats().messages, 0);
    assert!(server.group_members("g").await.unwrap().is_empty());
}

#[tokio::test]
async fn rcim_inspection_endpoints_list_inboxes_and_sent_messages() {
    let server = server().await;
    let (status, json) = post(
        &server,
        "/rcim/message/bulk.json",
        &[
            ("fromUserId", "sys"),
            ("toUserId", "bob"),
            ("count", "1500"),
            ("objectName", TXT),
            ("contentPrefix", "n"),
        ],
    )
    .await;
    assert_eq!(
        (status, &json["count"]),
        (200, &serde_json::json!(1500)),
        "{json}"
    );
    let (status, json) = post(&server, "/rcim/inbox/query.json", &[("userId", "bob")]).await;
    assert_eq!(status, 200, "{json}");
    let entries = json["entries"].as_array().unwrap();
    let inbox = server.inbox_uids("bob").await.unwrap();
    assert_eq!(entries.len(), 1500);
    assert_eq!(entries[1499]["seq"], 1500);
    assert_eq!(entries[0]["uid"].as_str(), Some(inbox[0].1.as_str()));

    let mut alice = connect_as(&server, "alice").await;
    let ack = alice.say(1, "bob", "x").await;
    let (_, json) = post(
        &server,
        "/rcim/message/sent.json",
        &[("fromUserId", "alice")],
    )
    .await;
    assert_eq!(
        json["messages"],
        serde_json::json!([{ "clientMsgId": "c-1-x", "uid": ack.message_uid.unwrap() }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_streams_20000_messages_exactly_once_in_order() {
    const COUNT: usize = 20_000;
    let server = server().await;
    let mut live = live_as(&server, "bob").await;
    let started = std::time::Instant::now();
    let bulk = server.publish_private_bulk("sys", "bob", COUNT as u32, TXT, "bulk-");
    let receive = async {
        let mut got = Vec::with_capacity(COUNT);
        while got.len() < COUNT {
            got.push(live.push().await);
        }
        got
    };
    let (uids, pushed) = tokio::join!(bulk, receive);
    let uids = uids.unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert_eq!(uids.len(), COUNT);
    assert_contiguous(&seqs(&pushed), 1, COUNT as u64);
    assert!(pushed.iter().map(|e| &e.message.uid).eq(uids.iter()));
    assert_eq!(
        pushed[COUNT - 1].message.content,
        format!("bulk-{}", COUNT - 1)
    );
    expect_alive(&mut live).await;

    // A second device syncs the whole backlog in packages of 200.
    let mut other = connect_on(&server, "bob", "mobile").await;
    let (entries, sizes) = other.sync_all(0).await;
    assert_eq!(
        sizes,
        vec![200; COUNT / 200],
        "the last full package says no more"
    );
    assert_contiguous(&seqs(&entries), 1, COUNT as u64);
    let distinct: HashSet<_> = entries.iter().map(|e| &e.message.uid).collect();
    assert_eq!(distinct.len(), COUNT);
    assert_eq!(server.stats().messages, COUNT as u64);
}

#[tokio::test]
async fn messages_and_sequence_numbers_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config_in(dir.path())).await.unwrap();
    server
        .create_group("g1", "G", &["alice", "bob"])
        .await
        .unwrap();
    let first = server
        .publish_private("sys", &["bob"], TXT, "1")
        .await
        .unwrap();
    server.shutdown().await;
    let server = start(config_in(dir.path())).await.unwrap();
    let mut alice = connect_as(&server, "alice").await;
    let ack = alice
        .publish(publish_msg(1, "g", ConversationKey::group("g1"), "2"))
        .await;
    assert_eq!(ack.code, 0, "membership survived");
    let inbox = server.inbox_uids("bob").await.unwrap();
    assert_eq!(
        inbox,
        vec![(1, first[0].clone()), (2, ack.message_uid.unwrap())]
    );
    server.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn messaging_works_in_process_under_paused_time() {
    let server = server().await;
    let token = server.issue_token("bob", "Bob").unwrap();
    let mut bob = duplex_client(&server).await;
    bob.send(&connect_msg(WIRE_VERSION, APP_KEY, &token)).await;
    assert_eq!(bob.connack().await.code, ConnAckCode::ACCEPTED);
    server
        .publish_private_bulk("sys", "bob", 250, TXT, "x")
        .await
        .unwrap();
    let (entries, sizes) = bob.sync_all(0).await;
    assert_eq!(sizes, vec![200, 50]);
    assert_contiguous(&seqs(&entries), 1, 250);
    let uid = server
        .publish_private("alice", &["bob"], TXT, "hi")
        .await
        .unwrap();
    assert_eq!(bob.push().await.message.uid, uid[0]);
    bob.send(&ClientMsg::Ack { seq: 251 }).await;
    expect_alive(&mut bob).await;
    // The heartbeat still runs on the paused clock while live.
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(600), bob.reader.read::<ServerMsg>())
            .await
            .unwrap()
            .unwrap(),
        Some(ServerMsg::Disconnect {
            reason: DisconnectReason::HEARTBEAT_TIMEOUT
        })
    );
    assert_eq!(server.inbox_state("bob").await.unwrap(), (251, 251));
}
