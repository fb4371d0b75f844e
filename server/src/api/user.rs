//! The `/user/*` endpoints: register a user and get a token, check presence.
//!
//! `getToken` validates the fields with [`crate::users`], stores the user in the
//! database (create or update) and answers a fresh non-expiring token; each call
//! issues a new token and every earlier one stays valid, as on RC. `checkOnline`
//! answers from the online registry. Token text goes into the answer only, never
//! into the log.

use crate::api::{ApiError, Signed, ok};
use crate::state::Shared;
use crate::users::{self, RegisterError};
use axum::Json;
use axum::extract::State;
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
    )
    .map_err(|e| match e {
        RegisterError::InvalidArgument(msg) => ApiError::bad_parameter(msg),
        RegisterError::Db(e) => ApiError::internal(&e),
    })?;
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
    users::check_user_id(&user_id).map_err(ApiError::bad_parameter)?;
    let status = if shared.online.is_online(&user_id) {
        "1"
    } else {
        "0"
    };
    Ok(ok(json!({ "status": status })))
}
