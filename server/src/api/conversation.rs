//! The `/conversation/notification/*` endpoints: a user's do-not-disturb setting
//! per conversation, as RC's Server API keeps it.
//!
//! `set.json` takes `conversationType` (RC's Server API numbers: 1 private, 3
//! group, 6 system, 10 ultra group; not the SDK's), `requestId` (the user),
//! `targetId`, and `isMuted` (0/1; 1 keeps the level "nothing notifies", 5) or the
//! newer `unpushLevel` (-1, 0, 1, 2, 4, 5, RC's levels; it wins when both are
//! given). `get.json` takes the same three ids and answers
//! `{"code":200,"isMuted":0|1,"unpushLevel":N}` (`isMuted` 1 for any level that
//! holds back ordinary messages, 1 to 5). rcimd sets the same value through the
//! IM connection (wire 3's `SetNotificationLevel`).

use crate::api::{ApiError, Signed, ok};
use crate::state::Shared;
use crate::users::check_id;
use axum::Json;
use axum::extract::State;
use rcim_proto::message::{
    ConversationKey, ConversationType, NOTIFICATION_BLOCKED, NOTIFICATION_LEVELS,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Form of both endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct NotificationForm {
    #[serde(rename = "conversationType")]
    conversation_type: Option<String>,
    #[serde(rename = "requestId")]
    request_id: Option<String>,
    #[serde(rename = "targetId")]
    target_id: Option<String>,
    #[serde(rename = "isMuted")]
    is_muted: Option<String>,
    #[serde(rename = "unpushLevel")]
    unpush_level: Option<String>,
}

/// The user and the conversation the form names.
fn parse(form: &NotificationForm) -> Result<(String, ConversationKey), ApiError> {
    let kind = match form.conversation_type.as_deref() {
        Some("1") => ConversationType::Private,
        Some("3") => ConversationType::Group,
        Some("6") => ConversationType::System,
        Some("10") => ConversationType::UltraGroup,
        Some(other) => {
            return Err(ApiError::bad_parameter(format!(
                "conversationType must be 1 (private), 3 (group), 6 (system) or 10 (ultra group), got {other:?}"
            )));
        }
        None => return Err(ApiError::bad_parameter("conversationType is required")),
    };
    let user = form.request_id.clone().unwrap_or_default();
    check_id("requestId", &user)?;
    let target_id = form.target_id.clone().unwrap_or_default();
    check_id("targetId", &target_id)?;
    Ok((user, ConversationKey { kind, target_id }))
}

/// `POST /conversation/notification/set.json` → `{"code":200}`.
pub(crate) async fn set(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<NotificationForm>,
) -> Result<Json<Value>, ApiError> {
    let (user, conversation) = parse(&form)?;
    let level = match (form.unpush_level.as_deref(), form.is_muted.as_deref()) {
        (Some(level), _) => level
            .parse::<i32>()
            .ok()
            .filter(|l| NOTIFICATION_LEVELS.contains(l))
            .ok_or_else(|| {
                ApiError::bad_parameter(format!(
                    "unpushLevel must be -1, 0, 1, 2, 4 or 5, got {level:?}"
                ))
            })?,
        (None, Some("1")) => NOTIFICATION_BLOCKED,
        (None, Some("0")) => 0,
        (None, Some(other)) => {
            return Err(ApiError::bad_parameter(format!(
                "isMuted must be 0 or 1, got {other:?}"
            )));
        }
        (None, None) => return Err(ApiError::bad_parameter("isMuted is required")),
    };
    shared
        .db
        .set_notification_level(&user, conversation, level)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(ok(json!({})))
}

/// `POST /conversation/notification/get.json` →
/// `{"code":200,"isMuted":0|1,"unpushLevel":N}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<NotificationForm>,
) -> Result<Json<Value>, ApiError> {
    let (user, conversation) = parse(&form)?;
    let level = shared
        .db
        .notification_level(&user, conversation)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(ok(
        json!({ "isMuted": i32::from(level > 0), "unpushLevel": level }),
    ))
}
