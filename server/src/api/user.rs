//! The `/user/*` endpoints: register a user and get a token, check presence,
//! invalidate tokens, block and unblock.
//!
//! `getToken` validates the fields with [`crate::users`], stores the user in the
//! database (create or update) and answers a fresh token (living for the configured
//! token lifetime, by default for ever); each call issues a new token and every
//! earlier one stays valid, as on RC. `checkOnline` answers from the online
//! registry. `token/expire`, `block`, `unblock` and `block/query` parse RC's forms
//! (`userId` may repeat, up to 20 times) and hand over to [`crate::moderation`],
//! which [`crate::RunningServer`]'s methods use too. Token text goes into the answer
//! only, never into the log.

use crate::api::{ApiError, NoParams, Signed, ok};
use crate::moderation;
use crate::state::Shared;
use crate::users;
use axum::Json;
use axum::extract::State;
use rcim_proto::time::utc_datetime;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Form of `/user/getToken.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct GetTokenForm {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    name: Option<String>,
    #[serde(rename = "portraitUri")]
    portrait_uri: Option<String>,
}

/// `POST /user/getToken.json` → `{"code":200,"userId":"..","token":".."}`.
pub(crate) async fn get_token(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<GetTokenForm>,
) -> Result<Json<Value>, ApiError> {
    let user_id = form.user_id.unwrap_or_default();
    let user = users::checked_user(
        &user_id,
        form.name.as_deref().unwrap_or_default(),
        form.portrait_uri.as_deref().unwrap_or_default(),
    )?;
    shared
        .db
        .upsert_user(user)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let token = users::issue(&shared, &user_id);
    Ok(ok(json!({ "userId": user_id, "token": token.expose() })))
}

/// Form of `/user/checkOnline.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckOnlineForm {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

/// `POST /user/checkOnline.json` → `{"code":200,"status":"1"}` (or `"0"`).
pub(crate) async fn check_online(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<CheckOnlineForm>,
) -> Result<Json<Value>, ApiError> {
    let user_id = form.user_id.unwrap_or_default();
    users::check_user_id(&user_id)?;
    let status = if shared.online.is_online(&user_id) {
        "1"
    } else {
        "0"
    };
    Ok(ok(json!({ "status": status })))
}

/// Parses a required integer form field.
fn required_int<T: std::str::FromStr>(name: &str, value: Option<&str>) -> Result<T, ApiError> {
    let value = value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_parameter(format!("{name} is required")))?;
    value
        .parse()
        .map_err(|_| ApiError::bad_parameter(format!("{name} must be a non-negative integer")))
}

/// Form of `/user/token/expire.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExpireForm {
    #[serde(rename = "userId", default)]
    user_ids: Vec<String>,
    time: Option<String>,
}

/// `POST /user/token/expire.json` (`userId` ×1..=20, `time` in ms) → `{"code":200}`.
pub(crate) async fn expire_token(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<ExpireForm>,
) -> Result<Json<Value>, ApiError> {
    moderation::check_user_ids(&form.user_ids)?;
    let time: u64 = required_int("time", form.time.as_deref())?;
    let time = i64::try_from(time).map_err(|_| ApiError::bad_parameter("time is too large"))?;
    moderation::expire_tokens(&shared, form.user_ids, time).await?;
    Ok(ok(json!({})))
}

/// Form of `/user/block.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct BlockForm {
    #[serde(rename = "userId", default)]
    user_ids: Vec<String>,
    minute: Option<String>,
}

/// `POST /user/block.json` (`userId` ×1..=20, `minute` 1..=43200) → `{"code":200}`.
pub(crate) async fn block(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<BlockForm>,
) -> Result<Json<Value>, ApiError> {
    moderation::check_user_ids(&form.user_ids)?;
    let minute: u64 = required_int("minute", form.minute.as_deref())?;
    let minute = u32::try_from(minute).unwrap_or(u32::MAX);
    moderation::block(&shared, form.user_ids, minute).await?;
    Ok(ok(json!({})))
}

/// Form of `/user/unblock.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct UnblockForm {
    #[serde(rename = "userId", default)]
    user_ids: Vec<String>,
}

/// `POST /user/unblock.json` (`userId` ×1..=20) → `{"code":200}`.
pub(crate) async fn unblock(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<UnblockForm>,
) -> Result<Json<Value>, ApiError> {
    moderation::unblock(&shared, form.user_ids).await?;
    Ok(ok(json!({})))
}

/// `POST /user/block/query.json` →
/// `{"code":200,"users":[{"userId":"..","blockEndTime":"YYYY-MM-DD HH:MM:SS"}]}`
/// (UTC), the users blocked now.
pub(crate) async fn block_query(
    State(shared): State<Arc<Shared>>,
    Signed(NoParams {}): Signed<NoParams>,
) -> Result<Json<Value>, ApiError> {
    let users: Vec<Value> = moderation::blocked_users(&shared)
        .await?
        .into_iter()
        .map(|(user_id, until_ms)| {
            json!({ "userId": user_id, "blockEndTime": utc_datetime(until_ms) })
        })
        .collect();
    Ok(ok(json!({ "users": users })))
}
