//! The HTTP Server API, compatible with RC's v1 Server API.
//!
//! This module owns the router, the response shapes and the [`Signed`] extractor that
//! every endpoint goes through. RC's server SDKs work against it by changing their
//! base URL: requests are form-encoded POSTs signed with the `App-Key`, `Nonce`,
//! `Timestamp` and `Signature` headers ([`signature`]), answers are JSON with
//! `"code": 200` on success and RC's 1xxx codes otherwise.
//!
//! The body is read as raw bytes (at most [`MAX_BODY`]) and parsed with
//! `serde_html_form`, not `axum::Form`, because RC endpoints repeat keys (e.g.
//! `userId=a&userId=b`) and `axum::Form` cannot collect those into a `Vec`.
//!
//! Endpoints: [`user`] (`/user/getToken.json`, `/user/checkOnline.json`,
//! `/user/token/expire.json`, `/user/block.json`, `/user/unblock.json`,
//! `/user/block/query.json`), [`message`] (`/message/private/publish.json`,
//! `/message/system/publish.json`, `/message/group/publish.json`, and the rcim
//! additions `/rcim/inbox/query.json`, `/rcim/message/sent.json`,
//! `/rcim/message/bulk.json`), [`group`] (`/group/create.json`, `/group/join.json`,
//! `/group/quit.json`, `/group/dismiss.json`), [`conversation`]
//! (`/conversation/notification/set.json`, `/conversation/notification/get.json`),
//! [`status`]
//! (`/statusmessage/private/publish.json`, `/statusmessage/group/publish.json`)
//! and `/stats.json` (the server's counters, an rcim addition).

pub(crate) mod conversation;
pub(crate) mod group;
pub(crate) mod message;
pub(crate) mod request;
pub(crate) mod signature;
pub(crate) mod status;
pub(crate) mod user;

use crate::error::{Error, InvalidArgument};
use crate::state::Shared;
use axum::Json;
use axum::Router;
use axum::extract::{FromRequest, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest request body accepted (RC: "body > 100 KB" is error 1508).
pub const MAX_BODY: usize = 100 * 1024;

/// RC business codes used here.
pub mod codes {
    /// Success.
    pub const OK: u32 = 200;
    /// Internal error.
    pub const INTERNAL: u32 = 1000;
    /// Parameter error.
    pub const BAD_PARAMETER: u32 = 1002;
    /// Signature error (missing or wrong App-Key, Nonce, Timestamp or Signature).
    pub const BAD_SIGNATURE: u32 = 1004;
    /// The App-Key is not this server's ("AppKey/Secret mismatch").
    pub const UNKNOWN_APP_KEY: u32 = 1001;
    /// Too many signed requests within the replay window.
    pub const RATE_LIMITED: u32 = 1008;
    /// Request body larger than 100 KB.
    pub const BODY_TOO_LARGE: u32 = 1508;
    /// No such API (rcim's answer for an unknown path).
    pub const NOT_FOUND: u32 = 404;
    /// Not a POST (rcim's answer; every RC v1 API is a POST).
    pub const METHOD_NOT_ALLOWED: u32 = 405;
}

/// The router of the Server API. Its nonces are remembered in one
/// [`signature::ReplayGuard`] for the life of the router.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let guard = Arc::new(signature::ReplayGuard::new());
    Router::new()
        .route("/user/getToken.json", post(user::get_token))
        .route("/user/checkOnline.json", post(user::check_online))
        .route("/user/token/expire.json", post(user::expire_token))
        .route("/user/block.json", post(user::block))
        .route("/user/unblock.json", post(user::unblock))
        .route("/user/block/query.json", post(user::block_query))
        .route(
            "/message/private/publish.json",
            post(message::publish_private),
        )
        .route(
            "/message/system/publish.json",
            post(message::publish_system),
        )
        .route("/message/group/publish.json", post(message::publish_group))
        .route("/message/recall.json", post(message::recall))
        .route("/group/create.json", post(group::create))
        .route("/group/join.json", post(group::join))
        .route("/group/quit.json", post(group::quit))
        .route("/group/dismiss.json", post(group::dismiss))
        .route("/rcim/inbox/query.json", post(message::inbox_query))
        .route("/rcim/message/sent.json", post(message::sent_query))
        .route("/rcim/message/bulk.json", post(message::bulk))
        .route(
            "/statusmessage/private/publish.json",
            post(status::publish_private),
        )
        .route(
            "/statusmessage/group/publish.json",
            post(status::publish_group),
        )
        .route(
            "/conversation/notification/set.json",
            post(conversation::set),
        )
        .route(
            "/conversation/notification/get.json",
            post(conversation::get),
        )
        .route("/stats.json", post(stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(guard))
        .with_state(shared)
}

/// An error answer: an HTTP status and an RC code with a message.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: u32,
    message: String,
}

impl ApiError {
    /// HTTP 400, RC 1002.
    pub(crate) fn bad_parameter(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: codes::BAD_PARAMETER,
            message: message.into(),
        }
    }

    /// HTTP 500, RC 1000. The detail goes to the log, not to the caller.
    pub(crate) fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "Server API request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: codes::INTERNAL,
            message: "internal server error".into(),
        }
    }
}

/// A refused operation: 400/1002 with the rule it breaks, or 500/1000 for a
/// database failure (the detail goes to the log).
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Db(e) => ApiError::internal(&e),
            other => ApiError::bad_parameter(other.to_string()),
        }
    }
}

/// 400/1002 with the rule the argument breaks.
impl From<InvalidArgument> for ApiError {
    fn from(e: InvalidArgument) -> Self {
        ApiError::bad_parameter(e.to_string())
    }
}

impl From<request::Rejection> for ApiError {
    fn from(rejection: request::Rejection) -> Self {
        Self {
            status: StatusCode::from_u16(rejection.status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code: rejection.code,
            message: rejection.message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "code": self.code, "errorMessage": self.message }));
        (self.status, body).into_response()
    }
}

/// A success answer: `{"code":200}` merged with `fields` (a JSON object).
pub(crate) fn ok(fields: Value) -> Json<Value> {
    let mut body = json!({ "code": codes::OK });
    if let (Some(body), Value::Object(fields)) = (body.as_object_mut(), fields) {
        body.extend(fields);
    }
    Json(body)
}

/// A request whose signature checked out, with its form body parsed as `T`.
///
/// Rejections (the same as [`request::check_request`]): an unknown App-Key →
/// 401/1001, a bad or missing signature header, a Timestamp outside the replay
/// window or a reused Nonce → 401/1004, too many signed requests in the window →
/// 429/1008 (all checked first, before the body is read); a body over [`MAX_BODY`]
/// → 413/1508; a body that is not a valid form for `T` → 400/1002.
pub(crate) struct Signed<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<Arc<Shared>> for Signed<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, shared: &Arc<Shared>) -> Result<Self, ApiError> {
        let guard = req
            .extensions()
            .get::<Arc<signature::ReplayGuard>>()
            .cloned()
            .ok_or_else(|| ApiError::internal(&"the replay guard is not installed"))?;
        signature::check(
            req.headers(),
            shared.app_key(),
            &shared.app_secret,
            &guard,
            rcim_proto::time::now_ms(),
        )
        .map_err(|refusal| ApiError::from(request::Rejection::from(refusal)))?;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY as u64) {
            return Err(request::body_too_large().into());
        }
        // Past the declared-length check, a read failure is a chunked body going over
        // the limit (or a connection that died, whose caller hears nothing anyway).
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiError::from(request::body_too_large()))?;
        Ok(Self(request::parse_form(&body)?))
    }
}

/// A form with no parameters (any given are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct NoParams {}

/// `POST /stats.json` → `{"code":200,"connects_accepted":N,...}`.
async fn stats(
    State(shared): State<Arc<Shared>>,
    Signed(NoParams {}): Signed<NoParams>,
) -> Json<Value> {
    let stats = serde_json::to_value(shared.stats()).unwrap_or(Value::Null);
    ok(stats)
}

/// Any other path.
async fn not_found(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: codes::NOT_FOUND,
        message: format!("no such API: {}", uri.path()),
    }
}

/// A known path with a method other than POST.
async fn method_not_allowed() -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: codes::METHOD_NOT_ALLOWED,
        message: "the Server API takes POST requests only".into(),
    }
}
