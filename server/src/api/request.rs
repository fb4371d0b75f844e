//! A Server API request checked the way the router checks it, without a server.
//!
//! [`check_request`] runs the same steps as the [`Signed`](super::Signed)
//! extractor: the signing headers against a [`ReplayGuard`], the body cap, then the
//! form body parsed as the endpoint's own form type (the field rules belong to the
//! handlers, some of which need the database). It exists so the parser can be fuzzed (`fuzz/`) and
//! property-tested on arbitrary bytes; the router uses the same functions, so what
//! the fuzzer proves holds for the server.

use super::signature::{self, ReplayGuard};
use super::{MAX_BODY, codes, group, message, user};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

/// Why a request would be refused: the HTTP status, RC's code and the message, as
/// the server would answer them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status.
    pub status: u16,
    /// RC's business code (1001, 1002, 1004, 1008, 1508, 404).
    pub code: u32,
    /// The `errorMessage` of the answer.
    pub message: String,
}

impl From<signature::Refusal> for Rejection {
    fn from(refusal: signature::Refusal) -> Self {
        Self {
            status: refusal.http_status(),
            code: refusal.code(),
            message: refusal.to_string(),
        }
    }
}

/// Parses `body` as the form of `path`. 400/1002 when it is not one.
pub(crate) fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, Rejection> {
    serde_html_form::from_bytes(body).map_err(|e| Rejection {
        status: 400,
        code: codes::BAD_PARAMETER,
        message: format!("invalid form body: {e}"),
    })
}

/// 413/1508 for a body over [`MAX_BODY`].
pub(crate) fn body_too_large() -> Rejection {
    Rejection {
        status: 413,
        code: codes::BODY_TOO_LARGE,
        message: format!("the request body is larger than {} KB", MAX_BODY / 1024),
    }
}

/// Checks a request to `path` with `headers` (name, raw value; names or values that
/// HTTP would not carry are skipped, as hyper would have refused them) and `body`,
/// at server time `now_ms`, as the server with `app_key` / `app_secret` would. A
/// request that passes is remembered in `guard` (its nonce cannot be used again).
pub fn check_request(
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
    app_key: &str,
    app_secret: &str,
    guard: &ReplayGuard,
    now_ms: i64,
) -> Result<(), Rejection> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    signature::check(&map, app_key, app_secret, guard, now_ms)?;
    if body.len() > MAX_BODY {
        return Err(body_too_large());
    }
    match path {
        "/user/getToken.json" => parse_form::<user::GetTokenForm>(body).map(drop),
        "/user/checkOnline.json" => parse_form::<user::CheckOnlineForm>(body).map(drop),
        "/user/token/expire.json" => parse_form::<user::ExpireForm>(body).map(drop),
        "/user/block.json" => parse_form::<user::BlockForm>(body).map(drop),
        "/user/unblock.json" => parse_form::<user::UnblockForm>(body).map(drop),
        "/message/private/publish.json"
        | "/message/system/publish.json"
        | "/message/group/publish.json" => parse_form::<message::PublishForm>(body).map(drop),
        "/rcim/inbox/query.json" => parse_form::<message::InboxForm>(body).map(drop),
        "/rcim/message/sent.json" => parse_form::<message::SentForm>(body).map(drop),
        "/rcim/message/bulk.json" => parse_form::<message::BulkForm>(body).map(drop),
        "/group/create.json" | "/group/join.json" | "/group/quit.json" => {
            parse_form::<group::MembersForm>(body).map(drop)
        }
        "/group/dismiss.json" => parse_form::<group::DismissForm>(body).map(drop),
        "/stats.json" | "/user/block/query.json" => parse_form::<super::NoParams>(body).map(drop),
        _ => Err(Rejection {
            status: 404,
            code: codes::NOT_FOUND,
            message: format!("no such API: {path}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_S: i64 = 1_700_000_000;

    fn signed(nonce: &str) -> Vec<(&'static str, Vec<u8>)> {
        let ts = NOW_S.to_string();
        let sig = signature::sign("secret", nonce, &ts);
        vec![
            ("App-Key", b"key".to_vec()),
            ("Nonce", nonce.as_bytes().to_vec()),
            ("Timestamp", ts.into_bytes()),
            ("Signature", sig.into_bytes()),
        ]
    }

    fn run(path: &str, nonce: &str, body: &[u8], guard: &ReplayGuard) -> Result<(), Rejection> {
        let owned = signed(nonce);
        let headers: Vec<(&str, &[u8])> = owned.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        check_request(path, &headers, body, "key", "secret", guard, NOW_S * 1000)
    }

    #[test]
    fn the_same_checks_as_the_router() {
        let guard = ReplayGuard::new();
        assert_eq!(
            run(
                "/user/getToken.json",
                "a",
                b"userId=alice&name=Alice",
                &guard
            ),
            Ok(())
        );
        let replay = run(
            "/user/getToken.json",
            "a",
            b"userId=alice&name=Alice",
            &guard,
        );
        assert_eq!(replay.map_err(|r| (r.status, r.code)), Err((401, 1004)));
        let big = vec![b'x'; MAX_BODY + 1];
        let too_large = run("/stats.json", "c", &big, &guard);
        assert_eq!(too_large.map_err(|r| (r.status, r.code)), Err((413, 1508)));
        let bad_form = run("/user/checkOnline.json", "d", b"userId=a&userId=b", &guard);
        assert_eq!(bad_form.map_err(|r| (r.status, r.code)), Err((400, 1002)));
        let nowhere = run("/nope.json", "e", b"", &guard);
        assert_eq!(nowhere.map_err(|r| (r.status, r.code)), Err((404, 404)));
    }

    #[test]
    fn headers_http_cannot_carry_are_skipped() {
        let guard = ReplayGuard::new();
        let headers: [(&str, &[u8]); 2] = [("bad name", b"x"), ("nonce", b"a\nb")];
        let refused = check_request("/stats.json", &headers, b"", "key", "secret", &guard, 0);
        assert_eq!(refused.map_err(|r| r.code), Err(1004));
    }
}
