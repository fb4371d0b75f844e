//! Protocol versions and their dated history.
//!
//! Two integers, bumped independently: [`PROTOCOL_VERSION`] for the local IPC between
//! apps and `rcimd`, and [`WIRE_VERSION`] for the upstream protocol between `rcimd`
//! and the IM server. A bump is needed for any change to an existing message; adding
//! a new enum variant at the end is compatible only with peers that never receive it,
//! so it is bumped too. Each bump gets a line in the history below.

/// Version of the local IPC protocol (apps ↔ `rcimd`), sent in `Hello` and `Welcome`.
///
/// History:
/// - 1 (2026-11-27): first version: Hello/Welcome, Status, Connect with
///   DatabaseOpened/Connected callbacks, Disconnect, StatusChanged events.
/// - 2 (2026-11-27): `Op::Logout` (disconnect and delete the stored token).
/// - 3 (2026-11-27): messaging: `SendMessage` with `MessageSaved`/`MessageSent`,
///   `GetMessages`, `GetConversations`, `ClearUnreadCount`; `MessageReceived` and
///   `OfflineSyncCompleted` events.
/// - 4 (2026-11-27): `Subscribe{since_seq}` replay, the `Lagged` event, `Clients`.
/// - 5 (2026-11-27): `MessagesAfter{since_seq, limit}` (an event stream that fell
///   behind locally pages its gap from the database instead of a `Subscribe`).
/// - 6 (2026-12-03): the status says where the token and the database key are kept
///   (`token_store`) and whether the database is encrypted (`database`); recall,
///   remote history and local search (issue 15): `Op::RecallMessage{uid}` and the
///   `MessageRecalled` event; `Op::GetRemoteHistory{conversation, before_time_ms,
///   count}`; `Op::SearchMessages(SearchQuery)` answered with `Reply::Messages`.
/// - 6 (2026-12-03, continued): unread counts (`GetUnreadCount`,
///   `GetTotalUnreadCount`, `GetUnreadCountByTypes`, `Reply::Count`,
///   `StatusSnapshot::unread_total`); read receipts and read sync (`MarkRead`, the
///   `ReadReceipt` and `ConversationReadSynced` events); typing and status messages
///   (`SendTypingStatus`, `SendStatusMessage`, the `TypingStatus` and
///   `StatusMessageReceived` events); conversation settings and deletion
///   (`SetConversationTop`, `SetNotificationLevel`, `RemoveConversation`,
///   `DeleteMessages`, `DeleteMessagesBefore`, `SaveDraft`, `GetDraft`,
///   `Reply::Draft`; `Conversation` gains `is_top`, `notification_level`, `draft`).
pub const PROTOCOL_VERSION: u32 = 6;

/// Version of the upstream wire protocol (`rcimd` ↔ IM server), sent in `Connect`.
/// A server that does not speak it answers CONNACK 1 (unacceptable protocol version).
///
/// History:
/// - 1 (2026-11-27): first version: Connect/ConnAck, Ping/Pong, Disconnect both ways.
/// - 2 (2026-11-27): messaging: Publish/PubAck, Sync/SyncBatch, Push, Ack.
/// - 3 (2026-12-03): recall and remote history (issue 15): `Recall{req_id,
///   message_uid}` / `RecallAck{req_id, code, message}`, recalls reach every
///   device as an `RC:RcCmd` inbox entry; `History{req_id, conversation,
///   before_time_ms, count}` / `HistoryPage{req_id, code, messages, has_more}`.
/// - 3 (2026-12-03, continued): read receipts and read sync travel as ordinary
///   `Publish`es of `RC:ReadNtf` (to the private peer) and `RC:SRSMsg` (to the
///   sender's own inbox, for its other devices); status messages
///   (`ClientMsg::PublishStatus`, `ServerMsg::Status`) reach online connections
///   only and are never stored; `ClientMsg::SetNotificationLevel` (answered with a
///   PubAck) keeps a conversation's do-not-disturb level on the server.
pub const WIRE_VERSION: u32 = 3;
