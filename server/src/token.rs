//! Issuing and verifying user tokens.
//!
//! This module owns the one place where the server's app secret meets a token. The
//! format is defined in [`rcim_proto::token`]: `<payload>.<signature>`, where the
//! payload is [`TokenClaims::encode_payload`] (base64url of the postcard claims) and
//! the signature is base64url (no padding) of HMAC-SHA256 over the payload text,
//! keyed with the app secret. Anyone can read the claims; only the holder of the
//! secret can make or check the signature, and the check is constant-time
//! (`Mac::verify_slice`).
//!
//! Token text is a credential: nothing here logs it, and callers log the user id
//! instead.

use hmac::{Hmac, KeyInit, Mac};
use rcim_proto::Token;
use rcim_proto::code::ConnAckCode;
use rcim_proto::token::{TokenClaims, decode_b64, encode_b64};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused at CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `<payload>.<signature>` with readable claims.
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match the payload under this server's secret.
    #[error("the token signature is wrong")]
    BadSignature,
    /// The token was issued for another app key.
    #[error("the token was issued for another app key")]
    WrongAppKey,
    /// The token's expiry time has passed.
    #[error("the token has expired")]
    Expired,
}

impl TokenError {
    /// The CONNACK code a client gets for this failure.
    pub fn connack_code(self) -> ConnAckCode {
        match self {
            Self::Expired => ConnAckCode::TOKEN_EXPIRED,
            Self::Malformed | Self::BadSignature | Self::WrongAppKey => {
                ConnAckCode::TOKEN_INCORRECT
            }
        }
    }
}

/// Issues and verifies the tokens of one app (one app key and its secret).
#[derive(Clone)]
pub struct TokenIssuer {
    app_key: String,
    secret: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("app_key", &self.app_key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TokenIssuer {
    /// An issuer for `app_key`, signing with `app_secret`.
    pub fn new(app_key: &str, app_secret: &str) -> Self {
        Self {
            app_key: app_key.to_owned(),
            secret: Zeroizing::new(app_secret.as_bytes().to_vec()),
        }
    }

    /// The app key this issuer signs for.
    pub fn app_key(&self) -> &str {
        &self.app_key
    }

    /// Issues a token for `user_id` at `now_ms`; `expires_at_ms` 0 means it never
    /// expires.
    pub fn issue(&self, user_id: &str, now_ms: i64, expires_at_ms: i64) -> Token {
        let (nonce, _) = uuid::Uuid::new_v4().as_u64_pair();
        let claims = TokenClaims {
            version: TokenClaims::VERSION,
            app_key: self.app_key.clone(),
            user_id: user_id.to_owned(),
            issued_at_ms: now_ms,
            expires_at_ms,
            nonce,
        };
        let payload = claims.encode_payload();
        let signature = encode_b64(&self.mac(&payload).finalize().into_bytes());
        Token::new(format!("{payload}.{signature}"))
    }

    /// Checks `token` at `now_ms` and returns its claims.
    ///
    /// Checks, in order: shape and claims ([`TokenError::Malformed`]), signature
    /// ([`TokenError::BadSignature`]), app key ([`TokenError::WrongAppKey`]), expiry
    /// ([`TokenError::Expired`]). The signature is checked before any claim is
    /// trusted.
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<TokenClaims, TokenError> {
        let claims = TokenClaims::peek(token).map_err(|_| TokenError::Malformed)?;
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = decode_b64(signature).ok_or(TokenError::Malformed)?;
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        if claims.app_key != self.app_key {
            return Err(TokenError::WrongAppKey);
        }
        if claims.expires_at_ms != 0 && now_ms >= claims.expires_at_ms {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// A MAC keyed with the secret, already fed `payload`.
    fn mac(&self, payload: &str) -> HmacSha256 {
        // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(payload.as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn issuer() -> TokenIssuer {
        TokenIssuer::new("app-key", "app-secret")
    }

    #[test]
    fn round_trip() {
        let token = issuer().issue("alice", NOW, 0);
        let claims = issuer().verify(token.expose(), NOW + 1).unwrap();
        assert_eq!(claims.user_id, "alice");
        assert_eq!(claims.app_key, "app-key");
        assert_eq!(claims.issued_at_ms, NOW);
        assert_eq!(claims.expires_at_ms, 0);
        // Peeking (what the daemon does) agrees with the verified claims.
        assert_eq!(TokenClaims::peek(token.expose()).unwrap(), claims);
    }

    #[test]
    fn two_tokens_for_the_same_user_differ() {
        let a = issuer().issue("alice", NOW, 0);
        let b = issuer().issue("alice", NOW, 0);
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn tampered_payload_is_refused() {
        let token = issuer().issue("alice", NOW, 0);
        let (_, signature) = token.expose().split_once('.').unwrap();
        let mut claims = TokenClaims::peek(token.expose()).unwrap();
        claims.user_id = "mallory".into();
        let forged = format!("{}.{signature}", claims.encode_payload());
        assert_eq!(issuer().verify(&forged, NOW), Err(TokenError::BadSignature));
    }

    #[test]
    fn tampered_signature_is_refused() {
        let token = issuer().issue("alice", NOW, 0);
        let (payload, signature) = token.expose().split_once('.').unwrap();
        let mut bytes = decode_b64(signature).unwrap();
        bytes[0] ^= 1;
        let forged = format!("{payload}.{}", encode_b64(&bytes));
        assert_eq!(issuer().verify(&forged, NOW), Err(TokenError::BadSignature));
        let truncated = format!("{payload}.{}", encode_b64(&bytes[..16]));
        assert_eq!(
            issuer().verify(&truncated, NOW),
            Err(TokenError::BadSignature)
        );
        let not_b64 = format!("{payload}.!!!!");
        assert_eq!(issuer().verify(&not_b64, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn other_secret_is_refused() {
        let token = TokenIssuer::new("app-key", "other-secret").issue("alice", NOW, 0);
        assert_eq!(
            issuer().verify(token.expose(), NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn other_app_key_is_refused() {
        // Same secret, other key: the signature is fine, the key is not.
        let token = TokenIssuer::new("other-key", "app-secret").issue("alice", NOW, 0);
        assert_eq!(
            issuer().verify(token.expose(), NOW),
            Err(TokenError::WrongAppKey)
        );
    }

    #[test]
    fn expiry() {
        let token = issuer().issue("alice", NOW, NOW + 1000);
        assert!(issuer().verify(token.expose(), NOW + 999).is_ok());
        assert_eq!(
            issuer().verify(token.expose(), NOW + 1000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            TokenError::Expired.connack_code(),
            ConnAckCode::TOKEN_EXPIRED
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [
            "",
            "garbage",
            "a.b",
            "a.b.c",
            ".",
            "x".repeat(5000).as_str(),
        ] {
            assert_eq!(
                issuer().verify(bad, NOW),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(
            TokenError::Malformed.connack_code(),
            ConnAckCode::TOKEN_INCORRECT
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let shown = format!("{:?}", issuer());
        assert!(!shown.contains("app-secret"), "{shown}");
    }
}
