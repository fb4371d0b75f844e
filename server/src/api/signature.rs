//! Server API request signing (RC's scheme) and replay protection.
//!
//! This module owns the check every Server API request passes first. RC signs with
//! four headers: `App-Key`, `Nonce` (random, non-empty), `Timestamp` and `Signature`
//! = lowercase hex SHA1 of `AppSecret + Nonce + Timestamp`. Each header may also
//! carry an `RC-` prefix, for platforms that strip unknown headers. The app key and
//! the signature are compared in constant time.
//!
//! A signature alone can be replayed by anyone who saw one request, so on top of
//! RC's scheme the server keeps a freshness window ([`REPLAY_WINDOW`], 5 minutes):
//! the `Timestamp` (RC's docs say milliseconds, its Go/Python/Node SDKs send
//! seconds; both are accepted, told apart by size) must be within the window of the
//! server's clock, and a `Nonce` is accepted once while its timestamp is fresh.
//! [`ReplayGuard`] remembers the nonces in a bounded set, so a flood of signed
//! requests costs at most [`MAX_REMEMBERED_NONCES`] entries; when that many fresh
//! nonces are held, further requests are refused with RC's rate-limit code (1008)
//! rather than forgetting a nonce that could then be replayed. Only requests whose
//! signature checked out are remembered, so an unsigned flood fills nothing.
//!
//! Codes (see [`Refusal`]): an unknown `App-Key` is HTTP 401 with RC's 1001
//! ("AppKey/Secret mismatch"); every other signing problem, including a stale
//! timestamp and a reused nonce, is HTTP 401 with 1004; a full nonce set is HTTP
//! 429 with 1008.

use axum::http::HeaderMap;
use sha1::{Digest as _, Sha1};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// How far a request's `Timestamp` may be from the server's clock (either way), and
/// so how long its `Nonce` is remembered.
pub const REPLAY_WINDOW_MS: i64 = 5 * 60 * 1000;

/// `REPLAY_WINDOW_MS` as a `Duration`, for documentation and messages.
pub const REPLAY_WINDOW: std::time::Duration =
    std::time::Duration::from_millis(REPLAY_WINDOW_MS as u64);

/// The most nonces held at once (about 330 signed requests a second, sustained for
/// the window; RC's own rate limits are 100–200 a second per API).
pub const MAX_REMEMBERED_NONCES: usize = 100_000;

/// The longest `Nonce` accepted, in bytes (RC's docs: at most 18 characters).
pub const MAX_NONCE_LEN: usize = 64;

/// A timestamp at or above this is in milliseconds; below it, in seconds (10^11 s is
/// the year 5138, 10^11 ms is 1973).
const MILLIS_THRESHOLD: u64 = 100_000_000_000;

/// Why a request's signing headers were refused. The message never echoes a header
/// value.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The `App-Key` is not this server's (RC 1001, HTTP 401).
    UnknownAppKey,
    /// A signing header is missing or empty (RC 1004, HTTP 401).
    Missing(&'static str),
    /// The signature does not match (RC 1004, HTTP 401).
    BadSignature,
    /// The `Timestamp` is not a Unix time in seconds or milliseconds (RC 1004).
    BadTimestamp,
    /// The `Timestamp` is outside the window (RC 1004); the skew in seconds.
    Stale {
        /// How far the timestamp is from the server's clock, in seconds.
        skew_s: i64,
    },
    /// The `Nonce` is longer than [`MAX_NONCE_LEN`] (RC 1004).
    NonceTooLong,
    /// The `Nonce` was already used within the window (RC 1004).
    Replayed,
    /// [`MAX_REMEMBERED_NONCES`] fresh nonces are held (RC 1008, HTTP 429).
    TooManyRequests,
}

impl Refusal {
    /// RC's business code for the refusal.
    pub fn code(&self) -> u32 {
        use super::codes;
        match self {
            Refusal::UnknownAppKey => codes::UNKNOWN_APP_KEY,
            Refusal::TooManyRequests => codes::RATE_LIMITED,
            _ => codes::BAD_SIGNATURE,
        }
    }

    /// The HTTP status for the refusal.
    pub fn http_status(&self) -> u16 {
        match self {
            Refusal::TooManyRequests => 429,
            _ => 401,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let window = REPLAY_WINDOW_MS / 1000;
        match self {
            Refusal::UnknownAppKey => f.write_str("unknown App-Key: AppKey/Secret mismatch"),
            Refusal::Missing(header) => write!(f, "missing {header} header"),
            Refusal::BadSignature => f.write_str("signature mismatch"),
            Refusal::BadTimestamp => {
                f.write_str("Timestamp is not a Unix time in seconds or milliseconds")
            }
            Refusal::Stale { skew_s } => write!(
                f,
                "Timestamp is {skew_s} s away from the server's clock (at most {window} s \
                 is accepted): sign every request with the current time"
            ),
            Refusal::NonceTooLong => {
                write!(f, "Nonce is longer than {MAX_NONCE_LEN} bytes")
            }
            Refusal::Replayed => write!(
                f,
                "Nonce was already used in the last {window} s (a replayed request?): \
                 send a fresh random Nonce with every request"
            ),
            Refusal::TooManyRequests => write!(
                f,
                "rate limit exceeded: more than {MAX_REMEMBERED_NONCES} signed requests \
                 in {window} s"
            ),
        }
    }
}

/// The signature RC expects: lowercase hex SHA1 of `app_secret + nonce + timestamp`.
pub fn sign(app_secret: &str, nonce: &str, timestamp: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(app_secret.as_bytes());
    sha.update(nonce.as_bytes());
    sha.update(timestamp.as_bytes());
    hex::encode(sha.finalize())
}

/// The nonces seen within the window, bounded.
#[derive(Debug, Default)]
pub struct ReplayGuard {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Nonce → the time (ms) after which its timestamp is stale anyway.
    expiry: HashMap<String, i64>,
    /// The same entries ordered by expiry, to forget them in order.
    by_expiry: BTreeSet<(i64, String)>,
}

impl ReplayGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many nonces are remembered now.
    pub fn len(&self) -> usize {
        self.lock().expiry.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        // The set stays consistent even if a holder panicked: every update is a pair
        // of inserts or removes that cannot panic in between.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Accepts `nonce` (whose timestamp was `timestamp_ms`) once; a second time
    /// within its window is [`Refusal::Replayed`].
    fn admit(&self, nonce: &str, timestamp_ms: i64, now_ms: i64) -> Result<(), Refusal> {
        let mut seen = self.lock();
        // Forget nonces whose timestamps have gone stale: a replay of them fails the
        // timestamp check instead.
        while let Some(first) = seen.by_expiry.first() {
            if first.0 >= now_ms {
                break;
            }
            if let Some((_, nonce)) = seen.by_expiry.pop_first() {
                seen.expiry.remove(&nonce);
            }
        }
        if seen.expiry.contains_key(nonce) {
            return Err(Refusal::Replayed);
        }
        if seen.expiry.len() >= MAX_REMEMBERED_NONCES {
            return Err(Refusal::TooManyRequests);
        }
        let expiry = timestamp_ms.saturating_add(REPLAY_WINDOW_MS);
        seen.expiry.insert(nonce.to_owned(), expiry);
        seen.by_expiry.insert((expiry, nonce.to_owned()));
        Ok(())
    }
}

/// Checks the signing headers of a request at server time `now_ms` and remembers
/// its nonce in `guard`. Checks run in this order, so that nothing about freshness
/// is revealed to a caller without the secret: app key, presence of the headers,
/// signature, timestamp window, nonce length and reuse.
pub fn check(
    headers: &HeaderMap,
    app_key: &str,
    app_secret: &str,
    guard: &ReplayGuard,
    now_ms: i64,
) -> Result<(), Refusal> {
    let key = header(headers, "app-key").ok_or(Refusal::Missing("App-Key"))?;
    if !constant_time_eq(key.as_bytes(), app_key.as_bytes()) {
        return Err(Refusal::UnknownAppKey);
    }
    let nonce = header(headers, "nonce").ok_or(Refusal::Missing("Nonce"))?;
    let timestamp = header(headers, "timestamp").ok_or(Refusal::Missing("Timestamp"))?;
    let signature = header(headers, "signature").ok_or(Refusal::Missing("Signature"))?;
    let expected = sign(app_secret, nonce, timestamp);
    if !constant_time_eq(
        signature.to_ascii_lowercase().as_bytes(),
        expected.as_bytes(),
    ) {
        return Err(Refusal::BadSignature);
    }
    let timestamp_ms = timestamp_ms(timestamp).ok_or(Refusal::BadTimestamp)?;
    let skew = timestamp_ms.saturating_sub(now_ms);
    if skew.saturating_abs() > REPLAY_WINDOW_MS {
        return Err(Refusal::Stale {
            skew_s: skew / 1000,
        });
    }
    if nonce.len() > MAX_NONCE_LEN {
        return Err(Refusal::NonceTooLong);
    }
    guard.admit(nonce, timestamp_ms, now_ms)
}

/// A `Timestamp` header in milliseconds: digits only, seconds or milliseconds.
fn timestamp_ms(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = text.parse().ok()?;
    let ms = if value >= MILLIS_THRESHOLD {
        value
    } else {
        value.checked_mul(1000)?
    };
    i64::try_from(ms).ok()
}

/// A non-empty header value, under its plain name or with the `RC-` prefix.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let value = headers
        .get(name)
        .or_else(|| headers.get(format!("rc-{name}").as_str()))?;
    value.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// 2023-11-14, in seconds: the server clock of these tests.
    const NOW_S: i64 = 1_700_000_000;
    const NOW_MS: i64 = NOW_S * 1000;

    #[test]
    fn sign_matches_a_known_sha1() {
        // sha1("abc") with the three parts split anywhere.
        assert_eq!(
            sign("a", "b", "c"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn signed(nonce: &str, timestamp: &str) -> HeaderMap {
        let sig = sign("secret", nonce, timestamp);
        headers(&[
            ("app-key", "key"),
            ("nonce", nonce),
            ("timestamp", timestamp),
            ("signature", &sig),
        ])
    }

    fn check_now(headers: &HeaderMap, guard: &ReplayGuard) -> Result<(), Refusal> {
        check(headers, "key", "secret", guard, NOW_MS)
    }

    #[test]
    fn accepts_plain_and_rc_prefixed_headers() {
        let guard = ReplayGuard::new();
        let ts = NOW_S.to_string();
        assert_eq!(check_now(&signed("n1", &ts), &guard), Ok(()));
        let sig = sign("secret", "n2", &ts);
        let prefixed = headers(&[
            ("rc-app-key", "key"),
            ("rc-nonce", "n2"),
            ("rc-timestamp", &ts),
            ("rc-signature", &sig.to_uppercase()),
        ]);
        assert_eq!(check_now(&prefixed, &guard), Ok(()));
    }

    #[test]
    fn refuses_bad_requests() {
        let ts = NOW_S.to_string();
        let sig = sign("secret", "n1", &ts);
        let good = [
            ("app-key", "key"),
            ("nonce", "n1"),
            ("timestamp", ts.as_str()),
            ("signature", sig.as_str()),
        ];
        for missing in 0..good.len() {
            let mut pairs = good.to_vec();
            pairs.remove(missing);
            let refusal = check_now(&headers(&pairs), &ReplayGuard::new());
            assert!(matches!(refusal, Err(Refusal::Missing(_))), "{missing}");
        }
        let guard = ReplayGuard::new();
        assert_eq!(
            check(&headers(&good), "other", "secret", &guard, NOW_MS),
            Err(Refusal::UnknownAppKey)
        );
        assert_eq!(
            check(&headers(&good), "key", "other", &guard, NOW_MS),
            Err(Refusal::BadSignature)
        );
        let mut empty_nonce = good.to_vec();
        empty_nonce[1].1 = "";
        assert!(check_now(&headers(&empty_nonce), &guard).is_err());
        // None of the refused requests used up the nonce.
        assert_eq!(check_now(&headers(&good), &guard), Ok(()));
    }

    #[test]
    fn codes_follow_rc() {
        assert_eq!(
            (
                Refusal::UnknownAppKey.http_status(),
                Refusal::UnknownAppKey.code()
            ),
            (401, 1001)
        );
        assert_eq!(
            (Refusal::Replayed.http_status(), Refusal::Replayed.code()),
            (401, 1004)
        );
        assert_eq!(
            (
                Refusal::TooManyRequests.http_status(),
                Refusal::TooManyRequests.code()
            ),
            (429, 1008)
        );
    }

    #[test]
    fn a_reused_nonce_is_a_replay_until_its_timestamp_is_stale() {
        let guard = ReplayGuard::new();
        let ts = NOW_S.to_string();
        let request = signed("once", &ts);
        assert_eq!(check_now(&request, &guard), Ok(()));
        assert_eq!(check_now(&request, &guard), Err(Refusal::Replayed));
        // The same nonce with another timestamp is still a replay.
        let later = (NOW_S + 1).to_string();
        assert_eq!(
            check_now(&signed("once", &later), &guard),
            Err(Refusal::Replayed)
        );
        // Past the window the request is refused for its timestamp, and the nonce is
        // forgotten (the set does not grow for ever).
        let past = NOW_MS + REPLAY_WINDOW_MS + 1;
        assert!(matches!(
            check(&request, "key", "secret", &guard, past),
            Err(Refusal::Stale { .. })
        ));
        let fresh = (past / 1000).to_string();
        assert_eq!(
            check(&signed("other", &fresh), "key", "secret", &guard, past),
            Ok(())
        );
        assert_eq!(guard.len(), 1, "the stale nonce was forgotten");
    }

    #[test]
    fn timestamps_in_seconds_and_milliseconds_within_the_window() {
        let guard = ReplayGuard::new();
        let window_s = REPLAY_WINDOW_MS / 1000;
        for (nonce, ts, ok) in [
            ("s-now", NOW_S.to_string(), true),
            ("ms-now", NOW_MS.to_string(), true),
            ("s-edge", (NOW_S - window_s).to_string(), true),
            ("s-future", (NOW_S + window_s).to_string(), true),
            ("s-old", (NOW_S - window_s - 1).to_string(), false),
            ("ms-old", (NOW_MS - REPLAY_WINDOW_MS - 1).to_string(), false),
            ("s-far-future", (NOW_S + 3600).to_string(), false),
            ("zero", "0".to_string(), false),
        ] {
            let result = check_now(&signed(nonce, &ts), &guard);
            assert_eq!(result.is_ok(), ok, "{nonce}: {result:?}");
            if !ok {
                assert!(matches!(result, Err(Refusal::Stale { .. })), "{nonce}");
            }
        }
        let stale = check_now(&signed("hour", &(NOW_S - 3600).to_string()), &guard);
        assert_eq!(stale, Err(Refusal::Stale { skew_s: -3600 }));
        let message = stale.unwrap_err().to_string();
        assert!(
            message.contains("3600 s") && message.contains("300 s"),
            "{message}"
        );
    }

    #[test]
    fn malformed_timestamps_and_long_nonces_are_refused() {
        let guard = ReplayGuard::new();
        for ts in ["abc", "-1", "1.5", "99999999999999999999999", "1e9"] {
            assert_eq!(
                check_now(&signed("n", ts), &guard),
                Err(Refusal::BadTimestamp),
                "{ts}"
            );
        }
        let long = "n".repeat(MAX_NONCE_LEN + 1);
        assert_eq!(
            check_now(&signed(&long, &NOW_S.to_string()), &guard),
            Err(Refusal::NonceTooLong)
        );
        assert!(guard.is_empty());
    }

    #[test]
    fn the_nonce_set_is_bounded() {
        let guard = ReplayGuard::new();
        {
            let mut seen = guard.lock();
            for i in 0..MAX_REMEMBERED_NONCES {
                let nonce = format!("filler-{i}");
                seen.expiry.insert(nonce.clone(), NOW_MS + REPLAY_WINDOW_MS);
                seen.by_expiry.insert((NOW_MS + REPLAY_WINDOW_MS, nonce));
            }
        }
        let ts = NOW_S.to_string();
        assert_eq!(
            check_now(&signed("one-more", &ts), &guard),
            Err(Refusal::TooManyRequests)
        );
        // A replay is still told apart from a full set.
        assert_eq!(
            check_now(&signed("filler-7", &ts), &guard),
            Err(Refusal::Replayed)
        );
        // Once the window has passed, the set empties and requests are served again.
        let later = NOW_MS + REPLAY_WINDOW_MS + 1;
        let fresh = (later / 1000).to_string();
        assert_eq!(
            check(&signed("one-more", &fresh), "key", "secret", &guard, later),
            Ok(())
        );
        assert_eq!(guard.len(), 1);
    }
}
