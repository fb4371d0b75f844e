//! Recalling messages: the one implementation behind the IM endpoint's `Recall`
//! and `/message/recall.json`.
//!
//! RC lets a user recall only what it sent (the Server API recalls on behalf of
//! `fromUserId`, the sender). [`recall`] asks the database to replace the message
//! and queue the `RC:RcCmd` for every device of both sides in one transaction
//! (see `db::recall`), then wakes the inboxes that grew, exactly as a publish
//! does, so live devices get the command pushed and offline ones at their next
//! sync.

use crate::db::Recalled;
use crate::error::Error;
use crate::state::Shared;
use rcim_proto::message::{ConversationKey, WireMessage};
use rcim_proto::time::now_ms;

/// Recalls message `uid` for `operator`. `Ok(Some)` with the message as stored
/// now (also when it was recalled before); `Ok(None)` when there is no such
/// message of `operator`'s (RC's 25101), or `expected` (conversation as
/// addressed, sent time) does not match it.
pub(crate) async fn recall(
    shared: &Shared,
    operator: &str,
    uid: &str,
    expected: Option<(ConversationKey, i64)>,
    is_admin: bool,
    is_delete: bool,
) -> Result<Option<WireMessage>, Error> {
    let recalled = shared
        .db
        .recall(
            operator.to_owned(),
            uid.to_owned(),
            expected,
            is_admin,
            is_delete,
            now_ms(),
        )
        .await?;
    match recalled {
        Recalled::NotFound => Ok(None),
        Recalled::Done { message, grown } => {
            for (user, last_seq) in &grown {
                shared.inbox.notify(user, *last_seq);
            }
            Ok(Some(message))
        }
    }
}
