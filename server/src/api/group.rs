//! The `/group/*` endpoints in RC's form: `create` (`userId` ×1..=1000, `groupId`,
//! `groupName`), `join` (`userId` ×1..=1000, `groupId`, `groupName`?), `quit`
//! (`userId` ×1..=1000, `groupId`) and `dismiss` (`userId`, the operator;
//! `groupId`), each answering `{"code":200}`. The work is [`crate::groups`]'s,
//! shared with [`crate::RunningServer`].

use crate::api::{ApiError, Signed, ok};
use crate::groups;
use crate::state::Shared;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Form of `/group/create.json`, `/group/join.json` and `/group/quit.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct MembersForm {
    #[serde(rename = "userId", default)]
    user_ids: Vec<String>,
    #[serde(rename = "groupId")]
    group_id: Option<String>,
    #[serde(rename = "groupName")]
    group_name: Option<String>,
}

/// `POST /group/create.json` → `{"code":200}`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<MembersForm>,
) -> Result<Json<Value>, ApiError> {
    let group_id = form.group_id.unwrap_or_default();
    groups::join(&shared, group_id, form.group_name, form.user_ids, true).await?;
    Ok(ok(json!({})))
}

/// `POST /group/join.json` → `{"code":200}`.
pub(crate) async fn join(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<MembersForm>,
) -> Result<Json<Value>, ApiError> {
    let group_id = form.group_id.unwrap_or_default();
    let name = form.group_name.filter(|n| !n.is_empty());
    groups::join(&shared, group_id, name, form.user_ids, false).await?;
    Ok(ok(json!({})))
}

/// `POST /group/quit.json` → `{"code":200}`.
pub(crate) async fn quit(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<MembersForm>,
) -> Result<Json<Value>, ApiError> {
    let group_id = form.group_id.unwrap_or_default();
    groups::quit(&shared, group_id, form.user_ids).await?;
    Ok(ok(json!({})))
}

/// Form of `/group/dismiss.json`.
#[derive(Debug, Deserialize)]
pub(crate) struct DismissForm {
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "groupId")]
    group_id: Option<String>,
}

/// `POST /group/dismiss.json` → `{"code":200}`.
pub(crate) async fn dismiss(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<DismissForm>,
) -> Result<Json<Value>, ApiError> {
    let user_id = form.user_id.unwrap_or_default();
    let group_id = form.group_id.unwrap_or_default();
    groups::dismiss(&shared, &user_id, group_id).await?;
    Ok(ok(json!({})))
}
