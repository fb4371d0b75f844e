//! Token invalidation and user blocks: the one implementation behind
//! `/user/token/expire.json`, `/user/block.json`, `/user/unblock.json`,
//! `/user/block/query.json` and [`crate::RunningServer`]'s `expire_tokens`, `block`
//! and `unblock`.
//!
//! RC semantics: expiring tokens invalidates every token of the user issued before
//! the given time, at its next CONNECT (CONNACK 10); a live connection is left alone.
//! Blocking a user ends each of its live connections at once with
//! `Disconnect { USER_BLOCKED }` and refuses its CONNECTs with CONNACK 9 until the
//! block is lifted or its minutes pass. Both are stored in SQLite ([`crate::db`]),
//! so they survive a restart.
//!
//! A block is written to the database first, then the block epoch is bumped, then
//! live connections are told; see `Shared::block_epoch` for how a CONNECT racing a
//! block is caught.

use crate::error::{Error, InvalidArgument};
use crate::registry::online::Control;
use crate::state::Shared;
use crate::users::check_id_list;
use rcim_proto::code::DisconnectReason;
use rcim_proto::time::now_ms;
use std::sync::atomic::Ordering;

/// Most user ids one call may name (RC's limit).
pub const MAX_USERS_PER_CALL: usize = 20;

/// Longest block, in minutes (RC's limit: 30 days).
pub const MAX_BLOCK_MINUTES: u32 = 43_200;

/// Checks a list of user ids: 1 to [`MAX_USERS_PER_CALL`] valid ids.
pub fn check_user_ids(user_ids: &[String]) -> Result<(), InvalidArgument> {
    check_id_list("userId", user_ids, MAX_USERS_PER_CALL)
}

/// Checks a block length: 1 to [`MAX_BLOCK_MINUTES`] minutes.
pub fn check_block_minutes(minutes: u32) -> Result<(), InvalidArgument> {
    if (1..=MAX_BLOCK_MINUTES).contains(&minutes) {
        Ok(())
    } else {
        Err(InvalidArgument::OutOfRange {
            field: "minute",
            min: 1,
            max: MAX_BLOCK_MINUTES.into(),
            got: minutes.into(),
        })
    }
}

/// Invalidates the tokens of `user_ids` issued before `before_ms` (ms since the
/// Unix epoch, ≥ 0). Live connections stay up.
pub(crate) async fn expire_tokens(
    shared: &Shared,
    user_ids: Vec<String>,
    before_ms: i64,
) -> Result<(), Error> {
    check_user_ids(&user_ids)?;
    if before_ms < 0 {
        return Err(InvalidArgument::Negative { field: "time" }.into());
    }
    let count = user_ids.len();
    shared
        .db
        .expire_tokens(user_ids, before_ms, now_ms())
        .await?;
    tracing::info!(users = count, before_ms, "tokens expired");
    Ok(())
}

/// Blocks `user_ids` for `minutes` from now and ends their live connections.
/// Returns the end of the block (ms since the Unix epoch).
pub(crate) async fn block(
    shared: &Shared,
    user_ids: Vec<String>,
    minutes: u32,
) -> Result<i64, Error> {
    check_user_ids(&user_ids)?;
    check_block_minutes(minutes)?;
    let now = now_ms();
    let until_ms = now.saturating_add(i64::from(minutes) * 60_000);
    shared.db.block(user_ids.clone(), until_ms, now).await?;
    shared.block_epoch.fetch_add(1, Ordering::SeqCst);
    let control = Control::Disconnect(DisconnectReason::USER_BLOCKED);
    for user_id in &user_ids {
        let told = shared.online.send_to_user(user_id, control);
        tracing::info!(
            user = user_id.as_str(),
            minutes,
            connections_ended = told,
            "user blocked"
        );
    }
    Ok(until_ms)
}

/// Lifts the blocks of `user_ids` (not being blocked is fine).
pub(crate) async fn unblock(shared: &Shared, user_ids: Vec<String>) -> Result<(), Error> {
    check_user_ids(&user_ids)?;
    for user_id in &user_ids {
        tracing::info!(user = user_id.as_str(), "user unblocked");
    }
    shared.db.unblock(user_ids).await?;
    Ok(())
}

/// The users blocked now, with the end of each block (ms since the Unix epoch).
pub(crate) async fn blocked_users(shared: &Shared) -> Result<Vec<(String, i64)>, Error> {
    Ok(shared.db.blocked_users(now_ms()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user{i}")).collect()
    }

    #[test]
    fn user_id_lists() {
        assert!(check_user_ids(&ids(1)).is_ok());
        assert!(check_user_ids(&ids(20)).is_ok());
        assert!(check_user_ids(&ids(0)).is_err());
        assert!(check_user_ids(&ids(21)).is_err());
        assert!(check_user_ids(&["ok".into(), "not/ok".into()]).is_err());
        assert!(check_user_ids(&[String::new()]).is_err());
    }

    #[test]
    fn block_minutes() {
        assert!(check_block_minutes(1).is_ok());
        assert!(check_block_minutes(43_200).is_ok());
        assert!(check_block_minutes(0).is_err());
        assert!(check_block_minutes(43_201).is_err());
    }

    /// `blockEndTime` (`/user/block/query.json`) is RC's `YYYY-MM-DD HH:MM:SS` in
    /// UTC, which is what the shared `utc_datetime` writes.
    #[test]
    fn formats_utc_times() {
        use rcim_proto::time::utc_datetime as format_utc;
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_700_000_000_999), "2023-11-14 22:13:20");
        assert_eq!(format_utc(-1000), "1969-12-31 23:59:59");
    }
}
