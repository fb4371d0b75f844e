//! Recall and remote history at the server: `/message/recall.json` with RC's form
//! and error bodies, the IM endpoint's `Recall` / `History`, and the `RC:RcCmd`
//! that reaches a live receiver.

use crate::util::*;
use rcim_proto::message::ConversationKey;
use rcim_proto::upstream::{ClientMsg, ServerMsg};

#[tokio::test]
async fn the_server_api_recalls_with_rcs_form_and_refuses_bad_ones() {
    let server = server().await;
    let uid = server
        .publish_private("alice", &["bob"], "RC:TxtMsg", r#"{"content":"secret"}"#)
        .await
        .unwrap()
        .remove(0);
    let mut bob = connect_as(&server, "bob").await;
    bob.send(&ClientMsg::Sync { since_seq: 0 }).await;
    let ServerMsg::SyncBatch { entries, .. } = bob.recv().await else {
        panic!("no batch")
    };
    let sent = entries[0].message.sent_time_ms.to_string();
    let good = [
        ("fromUserId", "alice"),
        ("conversationType", "1"),
        ("targetId", "bob"),
        ("messageUID", uid.as_str()),
        ("sentTime", sent.as_str()),
    ];
    let with = |field: &str, value: &'static str| {
        let mut form: Vec<(&str, &str)> = good.to_vec();
        form.retain(|(name, _)| *name != field);
        if !value.is_empty() {
            form.push((field_name(field), value));
        }
        form
    };
    for form in [
        with("fromUserId", ""),
        with("fromUserId", "bob"),
        with("conversationType", "2"),
        with("conversationType", "x"),
        with("targetId", "carol"),
        with("messageUID", ""),
        with("messageUID", "no-such-uid"),
        with("sentTime", "1"),
        with("sentTime", "soon"),
        with("isAdmin", "2"),
    ] {
        expect_1002(&server, "/message/recall.json", &form).await;
    }
    post_ok(&server, "/message/recall.json", &good).await;
    post_ok(&server, "/message/recall.json", &good).await;
    // Bob is live: the command is pushed once, naming the message.
    let ServerMsg::Push(entry) = bob.recv().await else {
        panic!("no push")
    };
    assert_eq!(entry.message.object_name, "RC:RcCmd");
    assert!(entry.message.content.contains(&uid));
    // Bob cannot recall alice's message; the uid of nothing is the same 25101.
    for uid in [uid.as_str(), "nope"] {
        bob.send(&ClientMsg::Recall {
            req_id: 7,
            message_uid: uid.into(),
        })
        .await;
        assert_eq!(
            bob.recv().await,
            ServerMsg::RecallAck {
                req_id: 7,
                code: 25101,
                message: None
            }
        );
    }
    // History: the notification, never the command; bad counts and groups refused.
    bob.send(&ClientMsg::History {
        req_id: 8,
        conversation: ConversationKey::private("alice"),
        before_time_ms: 0,
        count: 100,
    })
    .await;
    let ServerMsg::HistoryPage { code, messages, .. } = bob.recv().await else {
        panic!("no page")
    };
    assert_eq!(code, 0);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].object_name, "RC:RcNtf");
    assert!(!messages[0].content.contains("secret"));
    for (conversation, count, want) in [
        (ConversationKey::private("alice"), 101, 33003),
        (ConversationKey::private("alice"), 0, 33003),
        (ConversationKey::group("team"), 10, 22406),
    ] {
        bob.send(&ClientMsg::History {
            req_id: 9,
            conversation,
            before_time_ms: 0,
            count,
        })
        .await;
        let ServerMsg::HistoryPage { code, .. } = bob.recv().await else {
            panic!("no page")
        };
        assert_eq!(code, want);
    }
}

/// The form field a case replaces (`isAdmin` is optional, so added, not swapped).
fn field_name(field: &str) -> &'static str {
    match field {
        "fromUserId" => "fromUserId",
        "conversationType" => "conversationType",
        "targetId" => "targetId",
        "messageUID" => "messageUID",
        "sentTime" => "sentTime",
        _ => "isAdmin",
    }
}
