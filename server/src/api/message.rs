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
