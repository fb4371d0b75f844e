//! Group membership: the one implementation behind `/group/create.json`,
//! `/group/join.json`, `/group/quit.json`, `/group/dismiss.json` and
//! [`crate::RunningServer`]'s group methods.
//!
//! RC keeps no group business logic on the IM side: the app's back-end decides who
//! is in which group and tells the IM service. Creating a group that exists adds
//! the members (and renames it), joining a group that does not exist creates it,
//! quitting or dismissing what is not there succeeds. Group ids follow the user id
//! rules (1 to 64 bytes of letters, digits and `+ = - _`); each call names at most
//! [`MAX_MEMBERS_PER_CALL`] users. Membership is what a client's group `Publish` is
//! checked against and what a group message fans out to ([`crate::messaging`]).

use crate::error::{Error, InvalidArgument};
use crate::state::Shared;
use crate::users::{check_id, check_id_list};
use rcim_proto::time::now_ms;

/// Most user ids one group call may name (RC's limit).
pub const MAX_MEMBERS_PER_CALL: usize = 1000;

/// Longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 128;

/// Checks a group name: 1 to [`MAX_GROUP_NAME`] bytes.
fn check_group_name(name: &str) -> Result<(), InvalidArgument> {
    let field = "groupName";
    if name.is_empty() {
        return Err(InvalidArgument::Required { field });
    }
    if name.len() > MAX_GROUP_NAME {
        return Err(InvalidArgument::TooLong {
            field,
            max: MAX_GROUP_NAME,
        });
    }
    Ok(())
}

/// Adds `members` to `group_id`, creating it if needed; `name` (required when
/// `name_required`) renames it.
pub(crate) async fn join(
    shared: &Shared,
    group_id: String,
    name: Option<String>,
    members: Vec<String>,
    name_required: bool,
) -> Result<(), Error> {
    check_id("groupId", &group_id)?;
    match name.as_deref() {
        Some(name) => check_group_name(name)?,
        None if name_required => check_group_name("")?,
        None => {}
    }
    check_id_list("userId", &members, MAX_MEMBERS_PER_CALL)?;
    let count = members.len();
    shared
        .db
        .join_group(group_id.clone(), name, members, now_ms())
        .await?;
    tracing::info!(group = group_id.as_str(), members = count, "group joined");
    Ok(())
}

/// Removes `members` from `group_id`.
pub(crate) async fn quit(
    shared: &Shared,
    group_id: String,
    members: Vec<String>,
) -> Result<(), Error> {
    check_id("groupId", &group_id)?;
    check_id_list("userId", &members, MAX_MEMBERS_PER_CALL)?;
    let count = members.len();
    shared.db.quit_group(group_id.clone(), members).await?;
    tracing::info!(group = group_id.as_str(), members = count, "group quit");
    Ok(())
}

/// Deletes `group_id` with its memberships; `by` is the operator RC's form names
/// (any user may dismiss a group).
pub(crate) async fn dismiss(shared: &Shared, by: &str, group_id: String) -> Result<(), Error> {
    check_id("userId", by)?;
    check_id("groupId", &group_id)?;
    shared.db.dismiss_group(group_id.clone()).await?;
    tracing::info!(group = group_id.as_str(), by, "group dismissed");
    Ok(())
}
