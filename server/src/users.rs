//! User registration: RC's rules for user fields, and "register and issue a token".
//!
//! This module owns what `/user/getToken.json` and
//! [`crate::RunningServer::issue_token`] have in common: the field limits RC
//! documents (user id ≤ 64 bytes of letters, digits and `+ = - _`; name ≤ 128 bytes;
//! portrait URI ≤ 1024 bytes), writing the user to the database, and issuing a
//! token that lives for the configured token lifetime (by default for ever: RC's
//! default token lifetime is "permanent").

use crate::db::User;
use crate::error::InvalidArgument;
use crate::state::Shared;
use rcim_proto::Token;
use rcim_proto::time::now_ms;

/// Longest user id, in bytes.
pub const MAX_USER_ID: usize = 64;
/// Longest display name, in bytes.
pub const MAX_NAME: usize = 128;
/// Longest portrait URI, in bytes.
pub const MAX_PORTRAIT_URI: usize = 1024;

/// Checks a user id against RC's rules.
pub fn check_user_id(user_id: &str) -> Result<(), InvalidArgument> {
    check_id("userId", user_id)
}

/// Checks an id named `field` (a user or group id) against RC's rules for ids: 1 to
/// [`MAX_USER_ID`] bytes of letters, digits and `+ = - _`.
pub fn check_id(field: &'static str, id: &str) -> Result<(), InvalidArgument> {
    if id.is_empty() {
        return Err(InvalidArgument::Required { field });
    }
    if id.len() > MAX_USER_ID {
        return Err(InvalidArgument::TooLong {
            field,
            max: MAX_USER_ID,
        });
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b'-' | b'_'))
    {
        return Err(InvalidArgument::NotAnId { field });
    }
    Ok(())
}

/// Checks a repeatable form field named `field`: 1 to `max` valid ids.
pub fn check_id_list(
    field: &'static str,
    ids: &[String],
    max: usize,
) -> Result<(), InvalidArgument> {
    if ids.is_empty() {
        return Err(InvalidArgument::Required { field });
    }
    if ids.len() > max {
        return Err(InvalidArgument::TooMany {
            field,
            max,
            got: ids.len(),
        });
    }
    ids.iter().try_for_each(|id| check_id(field, id))
}

/// Checks a display name against RC's rules.
pub fn check_name(name: &str) -> Result<(), InvalidArgument> {
    if name.is_empty() {
        return Err(InvalidArgument::Required { field: "name" });
    }
    if name.len() > MAX_NAME {
        return Err(InvalidArgument::TooLong {
            field: "name",
            max: MAX_NAME,
        });
    }
    Ok(())
}

/// Checks a portrait URI against RC's rules (empty means none).
pub fn check_portrait_uri(uri: &str) -> Result<(), InvalidArgument> {
    if uri.len() > MAX_PORTRAIT_URI {
        return Err(InvalidArgument::TooLong {
            field: "portraitUri",
            max: MAX_PORTRAIT_URI,
        });
    }
    Ok(())
}

/// The checked fields of a user to register, and the time of registration.
pub(crate) fn checked_user(
    user_id: &str,
    name: &str,
    portrait_uri: &str,
) -> Result<User, InvalidArgument> {
    check_user_id(user_id)?;
    check_name(name)?;
    check_portrait_uri(portrait_uri)?;
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
