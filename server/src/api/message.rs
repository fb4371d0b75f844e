//! The `/message/*` endpoints, plus rcim's inbox inspection endpoints for tests
//! and tools.
//!
//! RC's forms: `/message/private/publish.json` and `/message/system/publish.json`
//! take `fromUserId`, `toUserId` (repeatable), `objectName`, `content`;
//! `/message/group/publish.json` takes `toGroupId` (repeatable) instead of
//! `toUserId`. RC's optional fields (`pushContent`, `pushData`, `count`,
//! `verifyBlacklist`, `isPersisted`, `isIncludeSender`, `contentAvailable`, …) are
//! accepted and ignored. The work is [`crate::messaging`]'s, shared with
//! [`crate::RunningServer`].
//!
//! rcim additions (signed like the rest, not part of RC's API):
//! `/rcim/inbox/query.json` (`userId`) lists a user's inbox as
//! `{"seq","uid"}` objects; `/rcim/message/sent.json` (`fromUserId`) lists what a
//! user published as an IM client as `{"clientMsgId","uid"}` objects; and
//! `/rcim/message/bulk.json` (`fromUserId`, `toUserId`, `count`, `objectName`,
//! `contentPrefix`) stores `count` private messages in transactions of 1,000, for
//! tests that stream a large backlog to a user in another process.

use crate::api::{ApiError, Signed, ok};
use crate::messaging;
use crate::state::Shared;
use crate::users::{check_id, check_user_id};
use axum::Json;
use axum::extract::State;
use rcim_proto::message::ConversationType;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// A required text field.
fn required(name: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_parameter(format!("{name} is required")))
}

/// Form of the three publish endpoints: the private and system ones read
/// `toUserId`, the group one `toGroupId` (each ignores the other, as it ignores
/// RC's optional fields).
#[derive(Debug, Deserialize)]
pub(crate) struct PublishForm {
    #[serde(rename = "fromUserId")]
    from_user_id: Option<String>,
    #[serde(rename = "toUserId", default)]
    to_user_ids: Vec<String>,
    #[serde(rename = "toGroupId", default)]
    to_group_ids: Vec<String>,
    #[serde(rename = "objectName")]
    object_name: Option<String>,
    content: Option<String>,
}

/// Publishes `form` as `kind` (private, system or group) messages, one per
/// recipient, through [`messaging::publish_from_api`].
async fn publish(
    shared: &Shared,
    kind: ConversationType,
    form: PublishForm,
) -> Result<Json<Value>, ApiError> {
    let from = required("fromUserId", form.from_user_id)?;
    let object_name = required("objectName", form.object_name)?;
    let content = required("content", form.content)?;
    let to = match kind {
        ConversationType::Group => form.to_group_ids,
        _ => form.to_user_ids,
    };
    messaging::publish_from_api(shared, kind, &from, to, &object_name, &content).await?;
    Ok(ok(json!({})))
}

/// `POST /message/private/publish.json` (`toUserId` ×1..=1000) → `{"code":200}`.
pub(crate) async fn publish_private(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<PublishForm>,
) -> Result<Json<Value>, ApiError> {
    publish(&shared, ConversationType::Private, form).await
}

/// `POST /message/system/publish.json` (`toUserId` ×1..=100) → `{"code":200}`.
pub(crate) async fn publish_system(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<PublishForm>,
) -> Result<Json<Value>, ApiError> {
    publish(&shared, ConversationType::System, form).await
}

/// `POST /message/group/publish.json` (`toGroupId` ×1..=3) → `{"code":200}`.
pub(crate) async fn publish_group(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<PublishForm>,
) -> Result<Json<Value>, ApiError> {
    publish(&shared, ConversationType::Group, form).await
}

/// Form of `/rcim/inbox/query.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct InboxForm {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

/// `POST /rcim/inbox/query.json` → `{"code":200,"entries":[{"seq":1,"uid":".."}]}`.
pub(crate) async fn inbox_query(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<InboxForm>,
) -> Result<Json<Value>, ApiError> {
    let user_id = form.user_id.unwrap_or_default();
    check_user_id(&user_id)?;
    let entries: Vec<Value> = shared
        .db
        .inbox_uids(&user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .into_iter()
        .map(|(seq, uid)| json!({ "seq": seq, "uid": uid }))
        .collect();
    Ok(ok(json!({ "entries": entries })))
}

/// Form of `/rcim/message/sent.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct SentForm {
    #[serde(rename = "fromUserId")]
    from_user_id: Option<String>,
}

/// `POST /rcim/message/sent.json` →
/// `{"code":200,"messages":[{"clientMsgId":"..","uid":".."}]}`.
pub(crate) async fn sent_query(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<SentForm>,
) -> Result<Json<Value>, ApiError> {
    let from = form.from_user_id.unwrap_or_default();
    check_id("fromUserId", &from)?;
    let messages: Vec<Value> = shared
        .db
        .messages_from(&from)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .into_iter()
        .map(|(client_msg_id, uid)| json!({ "clientMsgId": client_msg_id, "uid": uid }))
        .collect();
    Ok(ok(json!({ "messages": messages })))
}

/// Form of `/rcim/message/bulk.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct BulkForm {
    #[serde(rename = "fromUserId")]
    from_user_id: Option<String>,
    #[serde(rename = "toUserId")]
    to_user_id: Option<String>,
    count: Option<String>,
    #[serde(rename = "objectName")]
    object_name: Option<String>,
    #[serde(rename = "contentPrefix", default)]
    content_prefix: String,
}

/// `POST /rcim/message/bulk.json` → `{"code":200,"count":N}`.
pub(crate) async fn bulk(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<BulkForm>,
) -> Result<Json<Value>, ApiError> {
    let from = required("fromUserId", form.from_user_id)?;
    let to = required("toUserId", form.to_user_id)?;
    let object_name = required("objectName", form.object_name)?;
    let count: u32 = required("count", form.count)?
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_parameter("count must be a non-negative integer"))?;
    let uids = messaging::publish_bulk(
        &shared,
        &from,
        &to,
        count,
        &object_name,
        &form.content_prefix,
    )
    .await?;
    Ok(ok(json!({ "count": uids.len() })))
}

/// Form of `/message/recall.json` (RC's fields; `extra` and `disablePush` are
/// accepted and ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct RecallForm {
    #[serde(rename = "fromUserId")]
    from_user_id: Option<String>,
    #[serde(rename = "conversationType")]
    conversation_type: Option<String>,
    #[serde(rename = "targetId")]
    target_id: Option<String>,
    #[serde(rename = "messageUID")]
    message_uid: Option<String>,
    #[serde(rename = "sentTime")]
    sent_time: Option<String>,
    #[serde(rename = "isAdmin")]
    is_admin: Option<String>,
    #[serde(rename = "isDelete")]
    is_delete: Option<String>,
}

/// RC's Server API numbers conversation types as its native SDKs do (1 private,
/// 3 group, 6 system), not as the wrapper SDK the IPC follows.
fn server_api_conversation_type(text: &str) -> Option<ConversationType> {
    match text.trim() {
        "1" => Some(ConversationType::Private),
        "3" => Some(ConversationType::Group),
        "6" => Some(ConversationType::System),
        _ => None,
    }
}

/// An optional 0/1 flag (RC's `isAdmin`, `isDelete`).
fn flag(name: &str, value: Option<String>) -> Result<bool, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") | Some("0") => Ok(false),
        Some("1") => Ok(true),
        Some(_) => Err(ApiError::bad_parameter(format!("{name} must be 0 or 1"))),
    }
}

/// `POST /message/recall.json` → `{"code":200}`: recalls a message `fromUserId`
/// sent (`conversationType` 1 private, 3 group, 6 system; `targetId` as the
/// sender addressed it; `messageUID` and `sentTime` as the server gave them).
/// Every device of both sides replaces it with an `RC:RcNtf` notification. A
/// message that does not exist, is not `fromUserId`'s, or whose conversation or
/// sent time differ is 400/1002; a repeat of a done recall is 200.
pub(crate) async fn recall(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<RecallForm>,
) -> Result<Json<Value>, ApiError> {
    let from = required("fromUserId", form.from_user_id)?;
    check_id("fromUserId", &from)?;
    let kind = required("conversationType", form.conversation_type)?;
    let kind = server_api_conversation_type(&kind).ok_or_else(|| {
        ApiError::bad_parameter("conversationType must be 1 (private), 3 (group) or 6 (system)")
    })?;
    let target_id = required("targetId", form.target_id)?;
    check_id("targetId", &target_id)?;
    let uid = required("messageUID", form.message_uid)?;
    if uid.len() > rcim_proto::ipc::MAX_UID_LEN {
        return Err(ApiError::bad_parameter("messageUID is too long"));
    }
    let sent_time = required("sentTime", form.sent_time)?;
    let sent_time: i64 = sent_time
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_parameter("sentTime must be a time in ms"))?;
    let is_admin = flag("isAdmin", form.is_admin)?;
    let is_delete = flag("isDelete", form.is_delete)?;
    let expected = Some((
        rcim_proto::message::ConversationKey { kind, target_id },
        sent_time,
    ));
    let recalled =
        crate::recall::recall(&shared, &from, &uid, expected, is_admin, is_delete).await?;
    match recalled {
        Some(_) => Ok(ok(json!({}))),
        None => Err(ApiError::bad_parameter(
            "no such message: messageUID, sentTime, conversationType and targetId must name \
             a message fromUserId sent",
        )),
    }
}
