//! Golden byte fixtures: one file per message under `tests/golden/`, holding the hex
//! of its complete frame. An accidental change to any wire type fails here. After a
//! deliberate change (with a version bump), regenerate with
//! `RCIM_BLESS=1 cargo test -p rcim-proto --test golden`.

use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::{FrameReader, MAX_IPC_FRAME, encode};
use rcim_proto::ipc::{
    Callback, CallbackFrame, ClientFrame, DaemonFrame, Event, Hello, Op, Refused, Reply, Request,
    Response, Welcome,
};
use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Direction, Message, SentStatus, TimeOrder,
    WireMessage,
};
use rcim_proto::status::{ConnectionStatus, DatabaseInfo, ErrorInfo, LinkState, StatusSnapshot};
use rcim_proto::upstream::{
    ClientInfo, ClientMsg, ConnAck, Connect, InboxEntry, PubAck, Publish, ServerMsg, StatusPublish,
};
use rcim_proto::{RcCode, Token};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::path::PathBuf;

fn snapshot() -> StatusSnapshot {
    StatusSnapshot {
        link: LinkState {
            status: ConnectionStatus::Connected,
            code: 0,
            user_id: Some("alice".into()),
            attempt: 0,
            retry_in_ms: None,
        },
        server: "rcim://127.0.0.1:7000".into(),
        clients: 3,
        uptime_s: 42,
        reconnects: 1,
        last_error: Some(ErrorInfo::from_code(RcCode::RC_PONG_RECV_FAIL)),
        daemon_version: "0.1.0".into(),
        protocol: 1,
        unread_total: 7,
        token_store: "keyutils".into(),
        database: Some(Box::new(DatabaseInfo {
            path: "/home/alice/.local/share/rcim/users/alice/rcim.db".into(),
            encrypted: true,
            key_store: Some("keyutils".into()),
            plain_reason: None,
            moved_aside: vec![
                "/home/alice/.local/share/rcim/users/alice/rcim.db.unreadable-20261203T181500Z"
                    .into(),
            ],
        })),
    }
}

fn check<T>(name: &str, msg: T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let frame = encode(&msg, MAX_IPC_FRAME).expect("encodes");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.hex"));
    let hex_now = hex::encode(&frame);
    if std::env::var_os("RCIM_BLESS").is_some() {
        std::fs::write(&path, format!("{hex_now}\n")).expect("write fixture");
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing fixture {}: run with RCIM_BLESS=1", path.display()));
    assert_eq!(stored.trim(), hex_now, "{name}: wire bytes changed");

    // And the stored bytes decode back to the same message.
    let bytes = hex::decode(stored.trim()).expect("fixture is hex");
    let decoded: T = futures_free_read(&bytes);
    assert_eq!(
        decoded, msg,
        "{name}: fixture decodes to a different message"
    );
}

fn futures_free_read<T: DeserializeOwned>(bytes: &[u8]) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut reader = FrameReader::new(bytes, MAX_IPC_FRAME);
        let msg = reader
            .read::<T>()
            .await
            .expect("decodes")
            .expect("one frame");
        assert!(reader.read::<T>().await.expect("clean end").is_none());
        msg
    })
}

#[test]
fn ipc_client_frames() {
    check(
        "ipc_hello",
        ClientFrame::Hello(Hello {
            protocol: 1,
            client_name: "demo-app".into(),
            client_version: "0.1.0".into(),
        }),
    );
    check(
        "ipc_request_status",
        ClientFrame::Request(Request {
            id: 1,
            op: Op::Status,
        }),
    );
    check(
        "ipc_request_connect",
        ClientFrame::Request(Request {
            id: 2,
            op: Op::Connect {
                token: Token::new("payload.signature"),
                timeout_secs: -1,
            },
        }),
    );
    check(
        "ipc_request_logout",
        ClientFrame::Request(Request {
            id: 301,
            op: Op::Logout,
        }),
    );
    check(
        "ipc_request_disconnect",
        ClientFrame::Request(Request {
            id: 300,
            op: Op::Disconnect { receive_push: true },
        }),
    );
}

#[test]
fn ipc_daemon_frames() {
    check(
        "ipc_welcome",
        DaemonFrame::Welcome(Welcome {
            protocol: 1,
            daemon_version: "0.1.0".into(),
            status: snapshot(),
        }),
    );
    check(
        "ipc_refused",
        DaemonFrame::Refused(Refused {
            protocol: 1,
            reason: "client speaks protocol 2".into(),
        }),
    );
    check(
        "ipc_response_code",
        DaemonFrame::Response(Response {
            id: 2,
            reply: Reply::Code(0),
        }),
    );
    check(
        "ipc_response_status",
        DaemonFrame::Response(Response {
            id: 1,
            reply: Reply::Status(snapshot()),
        }),
    );
    check(
        "ipc_callback_database_opened",
        DaemonFrame::Callback(CallbackFrame {
            id: 2,
            callback: Callback::DatabaseOpened { code: 0 },
        }),
    );
    check(
        "ipc_callback_connected",
        DaemonFrame::Callback(CallbackFrame {
            id: 2,
            callback: Callback::Connected {
                code: 0,
                user_id: Some("alice".into()),
            },
        }),
    );
    check(
        "ipc_callback_connected_error",
        DaemonFrame::Callback(CallbackFrame {
            id: 2,
            callback: Callback::Connected {
                code: 31004,
                user_id: None,
            },
        }),
    );
    check(
        "ipc_event_status_changed",
        DaemonFrame::Event(Event::StatusChanged(LinkState {
            status: ConnectionStatus::Suspend,
            code: 30013,
            user_id: Some("alice".into()),
            attempt: 3,
            retry_in_ms: Some(500),
        })),
    );
}

#[test]
fn upstream_client_messages() {
    check(
        "up_connect",
        ClientMsg::Connect(Connect {
            protocol: 1,
            app_key: "demo-key".into(),
            token: Token::new("payload.signature"),
            client_info: ClientInfo {
                platform: "desktop".into(),
                sdk: "rcimd/0.1.0".into(),
                os: "linux".into(),
            },
            device_id: "0192f0c4-dev".into(),
        }),
    );
    check("up_ping", ClientMsg::Ping);
    check("up_disconnect", ClientMsg::Disconnect { keep_push: false });
}

#[test]
fn upstream_server_messages() {
    check(
        "up_connack_accepted",
        ServerMsg::ConnAck(ConnAck {
            code: ConnAckCode::ACCEPTED,
            user_id: Some("alice".into()),
            server_time_ms: 1_764_000_000_000,
        }),
    );
    check(
        "up_connack_token_incorrect",
        ServerMsg::ConnAck(ConnAck {
            code: ConnAckCode::TOKEN_INCORRECT,
            user_id: None,
            server_time_ms: 1_764_000_000_000,
        }),
    );
    check("up_pong", ServerMsg::Pong);
    check(
        "up_disconnect_kicked",
        ServerMsg::Disconnect {
            reason: DisconnectReason::KICKED,
        },
    );
}

fn wire_message() -> WireMessage {
    WireMessage {
        uid: "0192f0c4-7a00-7000-8000-000000000001".into(),
        conversation: ConversationKey::private("bob"),
        sender: "bob".into(),
        object_name: "RC:TxtMsg".into(),
        content: r#"{"content":"hello"}"#.into(),
        sent_time_ms: 1_764_000_000_123,
    }
}

fn message() -> Message {
    Message {
        id: 42,
        uid: Some("0192f0c4-7a00-7000-8000-000000000001".into()),
        conversation: ConversationKey::group("team"),
        sender: "alice".into(),
        object_name: "RC:TxtMsg".into(),
        content: r#"{"content":"hi team"}"#.into(),
        sent_time_ms: 1_764_000_000_123,
        received_time_ms: 1_764_000_000_456,
        direction: Direction::Send,
        sent_status: SentStatus::Sent,
        client_msg_id: Some("0192f0c4-7a00-7000-8000-0000000000ff".into()),
    }
}

#[test]
fn upstream_messaging() {
    check(
        "up_publish",
        ClientMsg::Publish(Publish {
            req_id: 7,
            client_msg_id: "0192f0c4-7a00-7000-8000-0000000000ff".into(),
            conversation: ConversationKey::group("team"),
            object_name: "RC:TxtMsg".into(),
            content: r#"{"content":"hi team"}"#.into(),
        }),
    );
    check("up_sync", ClientMsg::Sync { since_seq: 1_000 });
    check("up_ack", ClientMsg::Ack { seq: 1_200 });
    check(
        "up_puback",
        ServerMsg::PubAck(PubAck {
            req_id: 7,
            code: 0,
            message_uid: Some("0192f0c4-7a00-7000-8000-000000000002".into()),
            sent_time_ms: 1_764_000_000_123,
        }),
    );
    check(
        "up_push",
        ServerMsg::Push(InboxEntry {
            seq: 1_201,
            message: wire_message(),
        }),
    );
    check(
        "up_sync_batch",
        ServerMsg::SyncBatch {
            entries: vec![InboxEntry {
                seq: 1_001,
                message: wire_message(),
            }],
            has_more: true,
        },
    );
}

#[test]
fn ipc_messaging() {
    check(
        "ipc_request_send_message",
        ClientFrame::Request(Request {
            id: 9,
            op: Op::SendMessage {
                conversation: ConversationKey::private("bob"),
                object_name: "RC:TxtMsg".into(),
                content: r#"{"content":"hello"}"#.into(),
            },
        }),
    );
    check(
        "ipc_request_get_messages",
        ClientFrame::Request(Request {
            id: 10,
            op: Op::GetMessages {
                conversation: ConversationKey::private("bob"),
                sent_time_ms: 0,
                order: TimeOrder::Before,
                count: 20,
            },
        }),
    );
    check(
        "ipc_request_get_conversations",
        ClientFrame::Request(Request {
            id: 11,
            op: Op::GetConversations {
                types: vec![ConversationType::Private, ConversationType::Group],
                start_time_ms: 0,
                count: 50,
            },
        }),
    );
    check(
        "ipc_request_clear_unread_count",
        ClientFrame::Request(Request {
            id: 12,
            op: Op::ClearUnreadCount {
                conversation: ConversationKey::private("bob"),
                timestamp_ms: 0,
            },
        }),
    );
    check(
        "ipc_response_messages",
        DaemonFrame::Response(Response {
            id: 10,
            reply: Reply::Messages(vec![message()]),
        }),
    );
    check(
        "ipc_response_conversations",
        DaemonFrame::Response(Response {
            id: 11,
            reply: Reply::Conversations(vec![Conversation {
                key: ConversationKey::group("team"),
                unread_count: 3,
                last_message: Some(message()),
                operation_time_ms: 1_764_000_000_123,
                is_top: true,
                notification_level: 5,
                draft: "half a thought".into(),
            }]),
        }),
    );
    check(
        "ipc_callback_message_saved",
        DaemonFrame::Callback(CallbackFrame {
            id: 9,
            callback: Callback::MessageSaved { message: message() },
        }),
    );
    check(
        "ipc_callback_message_sent",
        DaemonFrame::Callback(CallbackFrame {
            id: 9,
            callback: Callback::MessageSent {
                code: 0,
                message: message(),
            },
        }),
    );
    check(
        "ipc_event_message_received",
        DaemonFrame::Event(Event::MessageReceived {
            message: message(),
            left: 199,
            offline: true,
            has_package: true,
        }),
    );
    check(
        "ipc_event_offline_sync_completed",
        DaemonFrame::Event(Event::OfflineSyncCompleted),
    );
}

#[test]
fn ipc_replay() {
    check(
        "ipc_request_subscribe",
        ClientFrame::Request(Request {
            id: 20,
            op: Op::Subscribe { since_seq: 1_234 },
        }),
    );
    check(
        "ipc_request_clients",
        ClientFrame::Request(Request {
            id: 21,
            op: Op::Clients,
        }),
    );
    check(
        "ipc_response_clients",
        DaemonFrame::Response(Response {
            id: 21,
            reply: Reply::Clients(vec![rcim_proto::ipc::ClientEntry {
                id: 3,
                name: "tray".into(),
                pid: Some(4242),
                lagged: false,
                last_seq: 1_234,
            }]),
        }),
    );
    check(
        "ipc_request_messages_after",
        ClientFrame::Request(Request {
            id: 22,
            op: Op::MessagesAfter {
                since_seq: 1_234,
                limit: 500,
            },
        }),
    );
    check(
        "ipc_event_lagged",
        DaemonFrame::Event(Event::Lagged { resume_from: 1_234 }),
    );
}

/// A recalled message as every copy stores it: `RC:RcNtf`, uid and time kept.
fn recalled_message() -> Message {
    Message {
        object_name: rcim_proto::recall::RECALL_NOTIFICATION.into(),
        content: rcim_proto::recall::notification_content(
            "alice",
            1_700_000_000_500,
            "RC:TxtMsg",
            false,
            false,
        ),
        ..message()
    }
}

#[test]
fn recall_frames() {
    check(
        "ipc_op_recall",
        ClientFrame::Request(Request {
            id: 30,
            op: Op::RecallMessage {
                uid: "0192f0aa-0000-7000-8000-000000000001".into(),
            },
        }),
    );
    check(
        "ipc_event_recall_message_recalled",
        DaemonFrame::Event(Event::MessageRecalled {
            message: recalled_message(),
        }),
    );
    check(
        "up_recall",
        ClientMsg::Recall {
            req_id: 31,
            message_uid: "0192f0aa-0000-7000-8000-000000000001".into(),
        },
    );
    let mut wire = wire_message();
    wire.object_name = rcim_proto::recall::RECALL_NOTIFICATION.into();
    wire.content = recalled_message().content;
    check(
        "up_recall_ack",
        ServerMsg::RecallAck {
            req_id: 31,
            code: 0,
            message: Some(wire),
        },
    );
    check(
        "up_recall_ack_refused",
        ServerMsg::RecallAck {
            req_id: 32,
            code: 25101,
            message: None,
        },
    );
}

#[test]
fn remote_history_frames() {
    check(
        "ipc_op_remote_history",
        ClientFrame::Request(Request {
            id: 40,
            op: Op::GetRemoteHistory {
                conversation: ConversationKey::private("bob"),
                before_time_ms: 1_700_000_000_000,
                count: 100,
            },
        }),
    );
    check(
        "up_remote_history",
        ClientMsg::History {
            req_id: 41,
            conversation: ConversationKey::group("team-1"),
            before_time_ms: 0,
            count: 20,
        },
    );
    check(
        "up_remote_history_page",
        ServerMsg::HistoryPage {
            req_id: 41,
            code: 0,
            messages: vec![wire_message()],
            has_more: true,
        },
    );
}

#[test]
fn search_frames() {
    check(
        "ipc_op_search",
        ClientFrame::Request(Request {
            id: 50,
            op: Op::SearchMessages(rcim_proto::ipc::SearchQuery {
                text: "hello \"world\"*".into(),
                conversation: Some(ConversationKey::private("bob")),
                sender: Some("bob".into()),
                start_time_ms: 1_600_000_000_000,
                before_time_ms: 1_700_000_000_000,
                before_id: 77,
                count: 20,
            }),
        }),
    );
}

#[test]
fn ipc_unread_counts() {
    check(
        "ipc_request_unread_get_unread_count",
        ClientFrame::Request(Request {
            id: 60,
            op: Op::GetUnreadCount {
                conversation: ConversationKey::private("bob"),
            },
        }),
    );
    check(
        "ipc_request_unread_get_total_unread_count",
        ClientFrame::Request(Request {
            id: 61,
            op: Op::GetTotalUnreadCount,
        }),
    );
    check(
        "ipc_request_unread_get_unread_count_by_types",
        ClientFrame::Request(Request {
            id: 62,
            op: Op::GetUnreadCountByTypes {
                types: vec![ConversationType::Private, ConversationType::Group],
            },
        }),
    );
    check(
        "ipc_response_unread_count",
        DaemonFrame::Response(Response {
            id: 61,
            reply: Reply::Count(12),
        }),
    );
}

#[test]
fn ipc_read_receipts() {
    check(
        "ipc_request_read_mark_read",
        ClientFrame::Request(Request {
            id: 70,
            op: Op::MarkRead {
                conversation: ConversationKey::private("bob"),
                up_to_time_ms: 1_764_000_000_123,
            },
        }),
    );
    check(
        "ipc_event_read_receipt",
        DaemonFrame::Event(Event::ReadReceipt {
            conversation: ConversationKey::private("bob"),
            last_message_send_time_ms: 1_764_000_000_123,
        }),
    );
    check(
        "ipc_event_read_conversation_read_synced",
        DaemonFrame::Event(Event::ConversationReadSynced {
            conversation: ConversationKey::group("team"),
            last_message_send_time_ms: 1_764_000_000_123,
        }),
    );
}

#[test]
fn ipc_typing_and_status() {
    check(
        "ipc_request_typing_send_typing_status",
        ClientFrame::Request(Request {
            id: 80,
            op: Op::SendTypingStatus {
                conversation: ConversationKey::private("bob"),
                content_type: "RC:TxtMsg".into(),
            },
        }),
    );
    check(
        "ipc_request_status_send_status_message",
        ClientFrame::Request(Request {
            id: 81,
            op: Op::SendStatusMessage {
                conversation: ConversationKey::group("team"),
                object_name: "app:Presence".into(),
                content: r#"{"state":"away"}"#.into(),
            },
        }),
    );
    check(
        "ipc_event_typing_status",
        DaemonFrame::Event(Event::TypingStatus {
            conversation: ConversationKey::private("bob"),
            users: vec![rcim_proto::ipc::TypingUser {
                user_id: "bob".into(),
                content_type: "RC:TxtMsg".into(),
                sent_time_ms: 1_764_000_000_123,
            }],
        }),
    );
    check(
        "ipc_event_status_message_received",
        DaemonFrame::Event(Event::StatusMessageReceived {
            message: wire_message(),
        }),
    );
    check(
        "up_status_publish_status",
        ClientMsg::PublishStatus(StatusPublish {
            conversation: ConversationKey::private("bob"),
            object_name: "RC:TypSts".into(),
            content: r#"{"typingContentType":"RC:TxtMsg"}"#.into(),
        }),
    );
    check("up_status", ServerMsg::Status(wire_message()));
}

#[test]
fn ipc_conversation_settings() {
    let bob = || ConversationKey::private("bob");
    for (name, op) in [
        (
            "ipc_request_settings_set_conversation_top",
            Op::SetConversationTop {
                conversation: bob(),
                top: true,
            },
        ),
        (
            "ipc_request_settings_set_notification_level",
            Op::SetNotificationLevel {
                conversation: bob(),
                level: 5,
            },
        ),
        (
            "ipc_request_settings_remove_conversation",
            Op::RemoveConversation {
                conversation: bob(),
            },
        ),
        (
            "ipc_request_settings_delete_messages",
            Op::DeleteMessages { ids: vec![3, 5, 8] },
        ),
        (
            "ipc_request_settings_delete_messages_before",
            Op::DeleteMessagesBefore {
                conversation: bob(),
                before_ms: 1_764_000_000_123,
            },
        ),
        (
            "ipc_request_settings_save_draft",
            Op::SaveDraft {
                conversation: bob(),
                draft: "half a thought".into(),
            },
        ),
        (
            "ipc_request_settings_get_draft",
            Op::GetDraft {
                conversation: bob(),
            },
        ),
    ] {
        check(name, ClientFrame::Request(Request { id: 90, op }));
    }
    check(
        "ipc_response_settings_draft",
        DaemonFrame::Response(Response {
            id: 90,
            reply: Reply::Draft("half a thought".into()),
        }),
    );
    check(
        "up_settings_set_notification_level",
        ClientMsg::SetNotificationLevel {
            req_id: 7,
            conversation: ConversationKey::group("team"),
            level: 5,
        },
    );
}
