//! User registration: RC's rules for user fields, and "register and issue a token".
//!
//! This module owns what `/user/getToken.json` and
//! [`crate::RunningServer::issue_token`] have in common: the field limits RC
//! documents (user id ≤ 64 bytes of letters, digits and `+ = - _`; name ≤ 128 bytes;
//! portrait URI ≤ 1024 bytes), writing the user to the database, and issuing a
//! token that lives for the configured token lifetime (by default for ever: RC's
//! default token lifetime is "permanent").

use crate::db::{DbError, User};
use crate::state::{Shared, now_ms};
use rcim_proto::Token;

/// Longest user id, in bytes.
pub const MAX_USER_ID: usize = 64;
/// Longest display name, in bytes.
pub const MAX_NAME: usize = 128;
/// Longest portrait URI, in bytes.
pub const MAX_PORTRAIT_URI: usize = 1024;

/// Why a user could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// A field breaks RC's rules; the message names the field.
    #[error("{0}")]
    InvalidArgument(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Checks a user id against RC's rules.
pub fn check_user_id(user_id: &str) -> Result<(), String> {
    check_id("userId", user_id)
}

/// Checks an id named `field` (a user or group id) against RC's rules for ids: 1 to
/// [`MAX_USER_ID`] bytes of letters, digits and `+ = - _`.
pub fn check_id(field: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("{field} is required"));
    }
    if id.len() > MAX_USER_ID {
        return Err(format!("{field} is longer than {MAX_USER_ID} bytes"));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'-' | b'_'))
    {
        return Err(format!(
            "{field} may contain only letters, digits and + = - _"
        ));
    }
    Ok(())
}

/// Checks a repeatable form field named `field`: 1 to `max` valid ids.
pub fn check_id_list(field: &str, ids: &[String], max: usize) -> Result<(), String> {
    if ids.is_empty() {
        return Err(format!("{field} is required"));
    }
    if ids.len() > max {
        return Err(format!(
            "at most {max} {field} values per call, got {}",
            ids.len()
        ));
    }
    ids.iter().try_for_each(|id| check_id(field, id))
}

/// Checks a display name against RC's rules.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name is required".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!("name is longer than {MAX_NAME} bytes"));
    }
    Ok(())
}

/// Checks a portrait URI against RC's rules (empty means none).
pub fn check_portrait_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_PORTRAIT_URI {
        return Err(format!(
            "portraitUri is longer than {MAX_PORTRAIT_URI} bytes"
        ));
    }
    Ok(())
}

/// The checked fields of a user to register, and the time of registration.
pub(crate) fn checked_user(
    user_id: &str,
    name: &str,
    portrait_uri: &str,
) -> Result<User, RegisterError> {
    check_user_id(user_id)
        .and_then(|()| check_name(name))
        .and_then(|()| check_portrait_uri(portrait_uri))
        .map_err(RegisterError::InvalidArgument)?;
    let now = now_ms();
    Ok(User {
        user_id: user_id.to_owned(),
        name: name.to_owned(),
        portrait_uri: portrait_uri.to_owned(),
        created_ms: now,
        updated_ms: now,
    })
}

/// A new token for an already registered user, expiring after the configured
/// token lifetime (never when it is zero).
pub(crate) fn issue(shared: &Shared, user_id: &str) -> Token {
    let now = now_ms();
    let expires_at_ms = shared.token_expiry(now);
    let token = shared.tokens.issue(user_id, now, expires_at_ms);
    tracing::info!(user = user_id, expires_at_ms, "token issued");
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_rules() {
        for ok in ["alice", "A-b_c=d+e", "0", &"x".repeat(64)] {
            assert!(check_user_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a.b", "é", &"x".repeat(65)] {
            assert!(check_user_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn name_and_portrait_rules() {
        assert!(check_name("Alice").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"é".repeat(64)).is_ok(), "128 bytes");
        assert!(check_name(&"é".repeat(65)).is_err(), "130 bytes");
        assert!(check_portrait_uri("").is_ok());
        assert!(check_portrait_uri(&"x".repeat(1025)).is_err());
    }
}
