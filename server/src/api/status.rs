//! The `/statusmessage/*` endpoints: RC's status messages from a back-end.
//!
//! `/statusmessage/private/publish.json` takes `fromUserId`, `toUserId`
//! (repeatable, at most 1,000), `objectName`, `content`; the group one takes
//! `toGroupId` (repeatable, at most 3) instead of `toUserId`. Both take RC's
//! optional `isIncludeSender` (1: the sender's own online devices get it too) and
//! accept and ignore `verifyBlacklist` (rcim has no blacklist). A status message
//! goes to the recipients' connections that are online now and is stored nowhere
//! ([`crate::messaging::publish_status_from_api`]); the answer is `{"code":200}`
//! whether anyone was online or not, as RC answers.

use crate::api::{ApiError, Signed, ok};
use crate::messaging;
use crate::state::Shared;
use axum::Json;
use axum::extract::State;
use rcim_proto::message::{ConversationKey, ConversationType};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Form of both status message endpoints.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusForm {
    #[serde(rename = "fromUserId")]
    from_user_id: Option<String>,
    #[serde(rename = "toUserId", default)]
    to_user_ids: Vec<String>,
    #[serde(rename = "toGroupId", default)]
    to_group_ids: Vec<String>,
    #[serde(rename = "objectName")]
    object_name: Option<String>,
    content: Option<String>,
    #[serde(rename = "isIncludeSender")]
    is_include_sender: Option<String>,
}

/// A required text field.
fn required(name: &str, value: Option<String>) -> Result<String, ApiError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_parameter(format!("{name} is required")))
}

/// Sends `form` as `kind` (private or group) status messages.
async fn publish(
    shared: &Shared,
    kind: ConversationType,
    form: StatusForm,
) -> Result<Json<Value>, ApiError> {
    let from = required("fromUserId", form.from_user_id)?;
    let object_name = required("objectName", form.object_name)?;
    let content = required("content", form.content)?;
    let include_sender = match form.is_include_sender.as_deref() {
        None | Some("0") => false,
        Some("1") => true,
        Some(other) => {
            return Err(ApiError::bad_parameter(format!(
                "isIncludeSender must be 0 or 1, got {other:?}"
            )));
        }
    };
    let to = match kind {
        ConversationType::Group => form.to_group_ids,
        _ => form.to_user_ids,
    };
    let first = to.first().cloned();
    messaging::publish_status_from_api(shared, kind, &from, to, &object_name, &content).await?;
    if include_sender && let Some(target_id) = first {
        // The sender's own devices see it in the conversation as the sender
        // names it (the first recipient's).
        let conversation = ConversationKey { kind, target_id };
        messaging::publish_status_to_sender(shared, &from, conversation, &object_name, content);
    }
    Ok(ok(json!({})))
}

/// `POST /statusmessage/private/publish.json` (`toUserId` ×1..=1000) →
/// `{"code":200}`.
pub(crate) async fn publish_private(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<StatusForm>,
) -> Result<Json<Value>, ApiError> {
    publish(&shared, ConversationType::Private, form).await
}

/// `POST /statusmessage/group/publish.json` (`toGroupId` ×1..=3) →
/// `{"code":200}`.
pub(crate) async fn publish_group(
    State(shared): State<Arc<Shared>>,
    Signed(form): Signed<StatusForm>,
) -> Result<Json<Value>, ApiError> {
    publish(&shared, ConversationType::Group, form).await
}
