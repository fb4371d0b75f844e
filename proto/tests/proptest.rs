//! Property tests of the codec: every message type of both protocols, built from
//! arbitrary values, survives encode → frame reader → decode unchanged, through a
//! reader that hands out the bytes in arbitrary pieces; and arbitrary bytes never
//! make a decoder panic. The golden fixtures pin the bytes of one value per type;
//! these tests cover the rest of each type's value space.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::{FrameError, FrameReader, MAX_IPC_FRAME, decode_body, encode};
use rcim_proto::ipc::{
    Callback, CallbackFrame, ClientEntry, ClientFrame, DaemonFrame, Event, Hello, Op, Refused,
    Reply, Request, Response, TypingUser, Welcome,
};
use rcim_proto::message::{
    Conversation, ConversationKey, ConversationType, Direction, Message, SentStatus, TimeOrder,
    WireMessage,
};
use rcim_proto::status::{ConnectionStatus, DatabaseInfo, ErrorInfo, LinkState, StatusSnapshot};
use rcim_proto::token::{Token, TokenClaims};
use rcim_proto::upstream::{
    ClientInfo, ClientMsg, ConnAck, Connect, InboxEntry, PubAck, Publish, ServerMsg, StatusPublish,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

// ---- strategies, one per wire type ----

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, biased to short; some long strings exercise multi-byte varints.
    prop_oneof![
        8 => any::<String>().prop_map(|s| s.chars().take(24).collect()),
        1 => "[a-z]{100,400}",
    ]
}

fn conversation_type() -> impl Strategy<Value = ConversationType> {
    (0..6i32).prop_map(|c| ConversationType::from_code(c).expect("0..6 are types"))
}

fn key() -> impl Strategy<Value = ConversationKey> {
    (conversation_type(), text()).prop_map(|(kind, target_id)| ConversationKey { kind, target_id })
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::Send), Just(Direction::Receive)]
}

fn sent_status() -> impl Strategy<Value = SentStatus> {
    prop_oneof![
        Just(SentStatus::Sending),
        Just(SentStatus::Failed),
        Just(SentStatus::Sent),
        Just(SentStatus::Received),
        Just(SentStatus::Read),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        (any::<i64>(), option::of(text()), key(), text()),
        (text(), text(), any::<i64>(), any::<i64>()),
        (direction(), sent_status(), option::of(text())),
    )
        .prop_map(
            |(
                (id, uid, conversation, sender),
                (object_name, content, sent_time_ms, received_time_ms),
                (direction, sent_status, client_msg_id),
            )| Message {
                id,
                uid,
                conversation,
                sender,
                object_name,
                content,
                sent_time_ms,
                received_time_ms,
                direction,
                sent_status,
                client_msg_id,
            },
        )
}

fn wire_message() -> impl Strategy<Value = WireMessage> {
    (text(), key(), text(), text(), text(), any::<i64>()).prop_map(
        |(uid, conversation, sender, object_name, content, sent_time_ms)| WireMessage {
            uid,
            conversation,
            sender,
            object_name,
            content,
            sent_time_ms,
        },
    )
}

fn conversation() -> impl Strategy<Value = Conversation> {
    (
        (key(), any::<u32>(), option::of(message()), any::<i64>()),
        (any::<bool>(), any::<i32>(), text()),
    )
        .prop_map(
            |(
                (key, unread_count, last_message, operation_time_ms),
                (is_top, notification_level, draft),
            )| Conversation {
                key,
                unread_count,
                last_message,
                operation_time_ms,
                is_top,
                notification_level,
                draft,
            },
        )
}

fn status() -> impl Strategy<Value = ConnectionStatus> {
    proptest::sample::select(ConnectionStatus::ALL.to_vec())
}

fn link_state() -> impl Strategy<Value = LinkState> {
    (
        status(),
        any::<i32>(),
        option::of(text()),
        any::<u32>(),
        option::of(any::<u64>()),
    )
        .prop_map(|(status, code, user_id, attempt, retry_in_ms)| LinkState {
            status,
            code,
            user_id,
            attempt,
            retry_in_ms,
        })
}

fn snapshot() -> impl Strategy<Value = StatusSnapshot> {
    (
        (link_state(), text(), any::<u32>(), any::<u64>()),
        (
            any::<u64>(),
            option::of((any::<i32>(), text())),
            text(),
            any::<u32>(),
            any::<u64>(),
        ),
        (text(), option::of(database_info().prop_map(Box::new))),
    )
        .prop_map(
            |(
                (link, server, clients, uptime_s),
                (reconnects, error, daemon_version, protocol, unread_total),
                (token_store, database),
            )| {
                StatusSnapshot {
                    link,
                    server,
                    clients,
                    unread_total,
                    uptime_s,
                    reconnects,
                    last_error: error.map(|(code, message)| ErrorInfo { code, message }),
                    daemon_version,
                    protocol,
                    token_store,
                    database,
                }
            },
        )
}

fn database_info() -> impl Strategy<Value = DatabaseInfo> {
    (
        text(),
        any::<bool>(),
        option::of(text()),
        option::of(text()),
        proptest::collection::vec(text(), 0..3),
    )
        .prop_map(
            |(path, encrypted, key_store, plain_reason, moved_aside)| DatabaseInfo {
                path,
                encrypted,
                key_store,
                plain_reason,
                moved_aside,
            },
        )
}

fn token() -> impl Strategy<Value = Token> {
    text().prop_map(Token::new)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Status),
        (token(), any::<i32>()).prop_map(|(token, timeout_secs)| Op::Connect {
            token,
            timeout_secs
        }),
        any::<bool>().prop_map(|receive_push| Op::Disconnect { receive_push }),
        Just(Op::Logout),
        (key(), text(), text()).prop_map(|(conversation, object_name, content)| {
            Op::SendMessage {
                conversation,
                object_name,
                content,
            }
        }),
        (key(), any::<i64>(), any::<bool>(), any::<u32>()).prop_map(
            |(conversation, sent_time_ms, before, count)| Op::GetMessages {
                conversation,
                sent_time_ms,
                order: if before {
                    TimeOrder::Before
                } else {
                    TimeOrder::After
                },
                count,
            }
        ),
        (vec(conversation_type(), 0..6), any::<i64>(), any::<u32>()).prop_map(
            |(types, start_time_ms, count)| Op::GetConversations {
                types,
                start_time_ms,
                count,
            }
        ),
        (key(), any::<i64>()).prop_map(|(conversation, timestamp_ms)| Op::ClearUnreadCount {
            conversation,
            timestamp_ms,
        }),
        any::<i64>().prop_map(|since_seq| Op::Subscribe { since_seq }),
        Just(Op::Clients),
        (any::<i64>(), any::<u32>())
            .prop_map(|(since_seq, limit)| Op::MessagesAfter { since_seq, limit }),
        key().prop_map(|conversation| Op::GetUnreadCount { conversation }),
        Just(Op::GetTotalUnreadCount),
        vec(conversation_type(), 0..4).prop_map(|types| Op::GetUnreadCountByTypes { types }),
        (key(), any::<i64>()).prop_map(|(conversation, up_to_time_ms)| Op::MarkRead {
            conversation,
            up_to_time_ms,
        }),
        (key(), text()).prop_map(|(conversation, content_type)| Op::SendTypingStatus {
            conversation,
            content_type,
        }),
        (key(), text(), text()).prop_map(|(conversation, object_name, content)| {
            Op::SendStatusMessage {
                conversation,
                object_name,
                content,
            }
        }),
        (key(), any::<bool>())
            .prop_map(|(conversation, top)| Op::SetConversationTop { conversation, top }),
        (key(), any::<i32>()).prop_map(|(conversation, level)| Op::SetNotificationLevel {
            conversation,
            level
        }),
        key().prop_map(|conversation| Op::RemoveConversation { conversation }),
        vec(any::<i64>(), 0..5).prop_map(|ids| Op::DeleteMessages { ids }),
        (key(), any::<i64>()).prop_map(|(conversation, before_ms)| {
            Op::DeleteMessagesBefore {
                conversation,
                before_ms,
            }
        }),
        (key(), text()).prop_map(|(conversation, draft)| Op::SaveDraft {
            conversation,
            draft
        }),
        key().prop_map(|conversation| Op::GetDraft { conversation }),
    ]
}

fn hello() -> impl Strategy<Value = Hello> {
    (any::<u32>(), text(), text()).prop_map(|(protocol, client_name, client_version)| Hello {
        protocol,
        client_name,
        client_version,
    })
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        hello().prop_map(ClientFrame::Hello),
        (any::<u64>(), op()).prop_map(|(id, op)| ClientFrame::Request(Request { id, op })),
    ]
}

fn client_entry() -> impl Strategy<Value = ClientEntry> {
    (
        any::<u64>(),
        text(),
        option::of(any::<i64>()),
        any::<bool>(),
        any::<i64>(),
    )
        .prop_map(|(id, name, pid, lagged, last_seq)| ClientEntry {
            id,
            name,
            pid,
            lagged,
            last_seq,
        })
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        any::<i32>().prop_map(Reply::Code),
        snapshot().prop_map(Reply::Status),
        vec(message(), 0..4).prop_map(Reply::Messages),
        vec(conversation(), 0..4).prop_map(Reply::Conversations),
        vec(client_entry(), 0..4).prop_map(Reply::Clients),
        any::<u64>().prop_map(Reply::Count),
        text().prop_map(Reply::Draft),
    ]
}

fn callback() -> impl Strategy<Value = Callback> {
    prop_oneof![
        any::<i32>().prop_map(|code| Callback::DatabaseOpened { code }),
        (any::<i32>(), option::of(text()))
            .prop_map(|(code, user_id)| Callback::Connected { code, user_id }),
        message().prop_map(|message| Callback::MessageSaved { message }),
        (any::<i32>(), message())
            .prop_map(|(code, message)| Callback::MessageSent { code, message }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        link_state().prop_map(Event::StatusChanged),
        (message(), any::<u32>(), any::<bool>(), any::<bool>()).prop_map(
            |(message, left, offline, has_package)| Event::MessageReceived {
                message,
                left,
                offline,
                has_package,
            }
        ),
        Just(Event::OfflineSyncCompleted),
        any::<i64>().prop_map(|resume_from| Event::Lagged { resume_from }),
        (key(), any::<i64>()).prop_map(|(conversation, t)| Event::ReadReceipt {
            conversation,
            last_message_send_time_ms: t,
        }),
        (key(), any::<i64>()).prop_map(|(conversation, t)| Event::ConversationReadSynced {
            conversation,
            last_message_send_time_ms: t,
        }),
        (key(), vec((text(), text(), any::<i64>()), 0..3)).prop_map(|(conversation, users)| {
            Event::TypingStatus {
                conversation,
                users: users
                    .into_iter()
                    .map(|(user_id, content_type, sent_time_ms)| TypingUser {
                        user_id,
                        content_type,
                        sent_time_ms,
                    })
                    .collect(),
            }
        }),
        wire_message().prop_map(|message| Event::StatusMessageReceived { message }),
    ]
}

fn daemon_frame() -> impl Strategy<Value = DaemonFrame> {
    prop_oneof![
        (any::<u32>(), text(), snapshot()).prop_map(|(protocol, daemon_version, status)| {
            DaemonFrame::Welcome(Welcome {
                protocol,
                daemon_version,
                status,
            })
        }),
        (any::<u32>(), text())
            .prop_map(|(protocol, reason)| DaemonFrame::Refused(Refused { protocol, reason })),
        (any::<u64>(), reply())
            .prop_map(|(id, reply)| DaemonFrame::Response(Response { id, reply })),
        (any::<u64>(), callback())
            .prop_map(|(id, callback)| DaemonFrame::Callback(CallbackFrame { id, callback })),
        event().prop_map(DaemonFrame::Event),
    ]
}

fn inbox_entry() -> impl Strategy<Value = InboxEntry> {
    (any::<u64>(), wire_message()).prop_map(|(seq, message)| InboxEntry { seq, message })
}

fn client_msg() -> impl Strategy<Value = ClientMsg> {
    prop_oneof![
        (
            any::<u32>(),
            text(),
            token(),
            (text(), text(), text()),
            text()
        )
            .prop_map(
                |(protocol, app_key, token, (platform, sdk, os), device_id)| {
                    ClientMsg::Connect(Connect {
                        protocol,
                        app_key,
                        token,
                        client_info: ClientInfo { platform, sdk, os },
                        device_id,
                    })
                }
            ),
        Just(ClientMsg::Ping),
        any::<bool>().prop_map(|keep_push| ClientMsg::Disconnect { keep_push }),
        (any::<u64>(), text(), key(), text(), text()).prop_map(
            |(req_id, client_msg_id, conversation, object_name, content)| {
                ClientMsg::Publish(Publish {
                    req_id,
                    client_msg_id,
                    conversation,
                    object_name,
                    content,
                })
            }
        ),
        any::<u64>().prop_map(|since_seq| ClientMsg::Sync { since_seq }),
        any::<u64>().prop_map(|seq| ClientMsg::Ack { seq }),
        (key(), text(), text()).prop_map(|(conversation, object_name, content)| {
            ClientMsg::PublishStatus(StatusPublish {
                conversation,
                object_name,
                content,
            })
        }),
        (any::<u64>(), key(), any::<i32>()).prop_map(|(req_id, conversation, level)| {
            ClientMsg::SetNotificationLevel {
                req_id,
                conversation,
                level,
            }
        }),
    ]
}

fn server_msg() -> impl Strategy<Value = ServerMsg> {
    prop_oneof![
        (any::<u8>(), option::of(text()), any::<i64>()).prop_map(
            |(code, user_id, server_time_ms)| ServerMsg::ConnAck(ConnAck {
                code: ConnAckCode(code),
                user_id,
                server_time_ms,
            })
        ),
        Just(ServerMsg::Pong),
        any::<u8>().prop_map(|r| ServerMsg::Disconnect {
            reason: DisconnectReason(r)
        }),
        (any::<u64>(), any::<i32>(), option::of(text()), any::<i64>()).prop_map(
            |(req_id, code, message_uid, sent_time_ms)| ServerMsg::PubAck(PubAck {
                req_id,
                code,
                message_uid,
                sent_time_ms,
            })
        ),
        inbox_entry().prop_map(ServerMsg::Push),
        (vec(inbox_entry(), 0..5), any::<bool>())
            .prop_map(|(entries, has_more)| ServerMsg::SyncBatch { entries, has_more }),
        wire_message().prop_map(ServerMsg::Status),
    ]
}

fn claims() -> impl Strategy<Value = TokenClaims> {
    (
        text(),
        "[A-Za-z0-9+=_-]{1,64}",
        any::<i64>(),
        any::<i64>(),
        any::<u64>(),
    )
        .prop_map(
            |(app_key, user_id, issued_at_ms, expires_at_ms, nonce)| TokenClaims {
                version: TokenClaims::VERSION,
                app_key,
                user_id,
                issued_at_ms,
                expires_at_ms,
                nonce,
            },
        )
}

// ---- the reader under test ----

/// A reader over memory that hands out the bytes in the given piece sizes.
struct Pieces {
    data: Vec<u8>,
    at: usize,
    sizes: Vec<usize>,
    next: usize,
}

impl AsyncRead for Pieces {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let size = self.sizes[self.next % self.sizes.len()].max(1);
        self.next += 1;
        let n = size.min(self.data.len() - self.at).min(buf.remaining());
        let start = self.at;
        buf.put_slice(&self.data[start..start + n]);
        self.at += n;
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

/// Encodes `msgs` back to back, reads them through `Pieces`, and compares.
fn round_trip_all<T>(msgs: &[T], sizes: Vec<usize>) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let mut data = Vec::new();
    for msg in msgs {
        let frame = encode(msg, MAX_IPC_FRAME).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A body also decodes on its own, with nothing left over.
        let alone: T = decode_body(&frame[4..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&alone, msg);
        data.extend_from_slice(&frame);
    }
    let mut reader = FrameReader::new(
        Pieces {
            data,
            at: 0,
            sizes,
            next: 0,
        },
        MAX_IPC_FRAME,
    );
    let read = runtime().block_on(async {
        let mut out = Vec::new();
        while let Some(msg) = reader.read::<T>().await.map_err(|e| e.to_string())? {
            out.push(msg);
        }
        Ok::<_, String>(out)
    });
    prop_assert_eq!(read.as_deref(), Ok(msgs));
    Ok(())
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..64, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn client_frames_round_trip(msgs in vec(client_frame(), 1..6), sizes in sizes()) {
        round_trip_all(&msgs, sizes)?;
    }

    #[test]
    fn daemon_frames_round_trip(msgs in vec(daemon_frame(), 1..6), sizes in sizes()) {
        round_trip_all(&msgs, sizes)?;
    }

    #[test]
    fn client_msgs_round_trip(msgs in vec(client_msg(), 1..6), sizes in sizes()) {
        round_trip_all(&msgs, sizes)?;
    }

    #[test]
    fn server_msgs_round_trip(msgs in vec(server_msg(), 1..6), sizes in sizes()) {
        round_trip_all(&msgs, sizes)?;
    }

    #[test]
    fn token_claims_round_trip_through_peek(claims in claims(), signature in "[A-Za-z0-9_-]{1,43}") {
        let token = format!("{}.{signature}", claims.encode_payload());
        prop_assert_eq!(TokenClaims::peek(&token), Ok(claims));
    }

    #[test]
    fn a_token_debug_shows_only_its_length(text in any::<String>()) {
        let shown = format!("{:?}", Token::new(text.clone()));
        prop_assert_eq!(shown, format!("Token(<redacted, {} bytes>)", text.len()));
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(bytes in vec(any::<u8>(), 0..512)) {
        let _ = decode_body::<ClientFrame>(&bytes);
        let _ = decode_body::<DaemonFrame>(&bytes);
        let _ = decode_body::<ClientMsg>(&bytes);
        let _ = decode_body::<ServerMsg>(&bytes);
        let _ = TokenClaims::peek(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_length_over_the_cap_is_refused_before_any_body(len in (MAX_IPC_FRAME + 1)..=u32::MAX) {
        let prefix = len.to_be_bytes();
        let mut reader = FrameReader::new(&prefix[..], MAX_IPC_FRAME);
        let result = runtime().block_on(reader.read::<ClientFrame>());
        let refused = matches!(result, Err(FrameError::TooLarge { .. }));
        prop_assert!(refused, "{:?}", result);
    }
}

/// Regression (fuzz/handshake, crash-b5ec3c26): a token whose text is itself the
/// redacted form. The harness's old check ("the text does not occur in the Debug
/// form") fired on it; what must hold is that Debug shows the length form only.
#[test]
fn a_token_that_looks_redacted_is_still_redacted() {
    let text = "<redacted, 21 bytes>)";
    assert_eq!(
        format!("{:?}", Token::new(text)),
        "Token(<redacted, 21 bytes>)"
    );
    let frame = encode(
        &ClientMsg::Connect(Connect {
            protocol: 2,
            app_key: "k".into(),
            token: Token::new(text),
            client_info: ClientInfo {
                platform: "linux".into(),
                sdk: "s".into(),
                os: "o".into(),
            },
            device_id: "d".into(),
        }),
        MAX_IPC_FRAME,
    )
    .expect("encode");
    let shown = format!(
        "{:?}",
        decode_body::<ClientMsg>(&frame[4..]).expect("decode")
    );
    assert!(shown.contains("Token(<redacted, 21 bytes>)"), "{shown}");
}
