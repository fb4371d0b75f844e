//! The user's token: a redacting wrapper, and the readable claims inside it.
//!
//! A token is the user's credential. [`Token`] zeroizes its memory when dropped and
//! never shows its text in `Debug` output, so it cannot leak into logs by accident;
//! the text is reachable only through [`Token::expose`].
//!
//! rcim tokens are `<payload>.<signature>`, both base64url without padding. The
//! payload is the postcard encoding of [`TokenClaims`] and is readable by anyone; the
//! signature is the server's HMAC over the payload and only the server can check it.
//! The daemon reads the claims ([`TokenClaims::peek`]) to learn the user id before
//! the CONNACK, so it can open the user's database first, as RC's SDK does. Apps must
//! still treat tokens as opaque.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::Zeroizing;

/// Longest token accepted anywhere (RC's own are within 256 bytes).
pub const MAX_TOKEN_LEN: usize = 2048;

/// A user token. Zeroized on drop; `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// Wraps a token string.
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    /// The token text. Call only to hand it to the server or the keyring.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the token is usable as an argument: not empty or blank, not longer
    /// than [`MAX_TOKEN_LEN`], with no whitespace or control characters.
    pub fn check_argument(&self) -> Result<(), &'static str> {
        let text = self.expose();
        if text.trim().is_empty() {
            return Err("the token is empty");
        }
        if text.len() > MAX_TOKEN_LEN {
            return Err("the token is longer than 2048 bytes");
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("the token contains whitespace or control characters");
        }
        Ok(())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(<redacted, {} bytes>)", self.0.len())
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Token::new)
    }
}

/// The readable part of an rcim token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Format version of the claims (1).
    pub version: u8,
    /// The app key the token was issued for.
    pub app_key: String,
    /// The user the token authenticates.
    pub user_id: String,
    /// When it was issued, in ms since the Unix epoch.
    pub issued_at_ms: i64,
    /// When it expires, in ms since the Unix epoch; 0 means never.
    pub expires_at_ms: i64,
    /// Random bits so that two tokens issued in the same millisecond differ.
    pub nonce: u64,
}

/// Why a string is not a well-formed rcim token. Deliberately says nothing about
/// the token's content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a well-formed rcim token")]
pub struct MalformedToken;

impl TokenClaims {
    /// The current claims format.
    pub const VERSION: u8 = 1;

    /// Reads the claims of a token without checking its signature.
    pub fn peek(token: &str) -> Result<Self, MalformedToken> {
        let (payload, signature) = token.split_once('.').ok_or(MalformedToken)?;
        if signature.is_empty() || signature.contains('.') {
            return Err(MalformedToken);
        }
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(payload)
                .map_err(|_| MalformedToken)?,
        );
        let claims: Self = crate::frame::decode_body(&bytes).map_err(|_| MalformedToken)?;
        if claims.version != Self::VERSION || claims.user_id.is_empty() {
            return Err(MalformedToken);
        }
        Ok(claims)
    }

    /// The payload half of a token: base64url of the postcard claims.
    pub fn encode_payload(&self) -> String {
        // Claims are plain strings and integers; postcard cannot fail on them.
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// Encodes bytes as base64url without padding (the token alphabet).
pub fn encode_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn decode_b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            version: 1,
            app_key: "k".into(),
            user_id: "alice".into(),
            issued_at_ms: 1_700_000_000_000,
            expires_at_ms: 0,
            nonce: 7,
        }
    }

    #[test]
    fn debug_never_shows_the_text() {
        let token = Token::new("s3cr3t-token-text");
        let shown = format!("{token:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("17 bytes"), "{shown}");
    }

    #[test]
    fn argument_check() {
        assert!(Token::new("").check_argument().is_err());
        assert!(Token::new("   ").check_argument().is_err());
        assert!(Token::new("a b").check_argument().is_err());
        assert!(
            Token::new("x".repeat(MAX_TOKEN_LEN + 1))
                .check_argument()
                .is_err()
        );
        assert!(
            Token::new("x".repeat(MAX_TOKEN_LEN))
                .check_argument()
                .is_ok()
        );
    }

    #[test]
    fn peek_reads_claims() {
        let token = format!("{}.sig", claims().encode_payload());
        assert_eq!(TokenClaims::peek(&token).unwrap(), claims());
    }

    #[test]
    fn peek_refuses_malformed_tokens() {
        let payload = claims().encode_payload();
        for bad in [
            String::new(),
            "nodot".into(),
            format!("{payload}."),
            format!("{payload}.a.b"),
            "!!!.sig".into(),
            format!("{}.sig", encode_b64(b"garbage")),
            format!("{}x.sig", payload),
        ] {
            assert_eq!(TokenClaims::peek(&bad), Err(MalformedToken), "{bad}");
        }
    }
}
