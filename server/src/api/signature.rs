//! Server API request signing (RC's scheme).
//!
//! This module owns the check every Server API request passes first. RC signs with
//! four headers: `App-Key`, `Nonce` (random, non-empty), `Timestamp` (RC's docs say
//! milliseconds, its Go/Python/Node SDKs send seconds; both are accepted, and since
//! RC documents no freshness window none is enforced) and `Signature` = lowercase hex
//! SHA1 of `AppSecret + Nonce + Timestamp`. Each header may also carry an `RC-`
//! prefix, for platforms that strip unknown headers. The app key and the signature
//! are compared in constant time.

use axum::http::HeaderMap;
use sha1::{Digest as _, Sha1};

/// The signature RC expects: lowercase hex SHA1 of `app_secret + nonce + timestamp`.
pub fn sign(app_secret: &str, nonce: &str, timestamp: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(app_secret.as_bytes());
    sha.update(nonce.as_bytes());
    sha.update(timestamp.as_bytes());
    hex::encode(sha.finalize())
}

/// Checks the signing headers of a request; the error says what is wrong (without
/// echoing any header value).
pub(crate) fn check(
    headers: &HeaderMap,
    app_key: &str,
    app_secret: &str,
) -> Result<(), &'static str> {
    let key = header(headers, "app-key").ok_or("missing App-Key header")?;
    if !constant_time_eq(key.as_bytes(), app_key.as_bytes()) {
        return Err("unknown App-Key");
    }
    let nonce = header(headers, "nonce").ok_or("missing Nonce header")?;
    let timestamp = header(headers, "timestamp").ok_or("missing Timestamp header")?;
    let signature = header(headers, "signature").ok_or("missing Signature header")?;
    let expected = sign(app_secret, nonce, timestamp);
    if !constant_time_eq(
        signature.to_ascii_lowercase().as_bytes(),
        expected.as_bytes(),
    ) {
        return Err("signature mismatch");
    }
    Ok(())
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

    #[test]
    fn accepts_plain_and_rc_prefixed_headers() {
        let sig = sign("secret", "n1", "1700000000");
        let plain = headers(&[
            ("app-key", "key"),
            ("nonce", "n1"),
            ("timestamp", "1700000000"),
            ("signature", &sig),
        ]);
        assert_eq!(check(&plain, "key", "secret"), Ok(()));
        let prefixed = headers(&[
            ("rc-app-key", "key"),
            ("rc-nonce", "n1"),
            ("rc-timestamp", "1700000000"),
            ("rc-signature", &sig.to_uppercase()),
        ]);
        assert_eq!(check(&prefixed, "key", "secret"), Ok(()));
    }

    #[test]
    fn refuses_bad_requests() {
        let sig = sign("secret", "n1", "1");
        let good = [
            ("app-key", "key"),
            ("nonce", "n1"),
            ("timestamp", "1"),
            ("signature", sig.as_str()),
        ];
        for missing in 0..good.len() {
            let mut pairs = good.to_vec();
            pairs.remove(missing);
            assert!(
                check(&headers(&pairs), "key", "secret").is_err(),
                "{missing}"
            );
        }
        assert_eq!(
            check(&headers(&good), "other", "secret"),
            Err("unknown App-Key")
        );
        assert_eq!(
            check(&headers(&good), "key", "other"),
            Err("signature mismatch")
        );
        let mut empty_nonce = good.to_vec();
        empty_nonce[1].1 = "";
        assert!(check(&headers(&empty_nonce), "key", "secret").is_err());
    }
}
