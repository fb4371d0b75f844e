//! Publishing messages: the one implementation behind the IM endpoint's `Publish`,
//! `/message/private/publish.json`, `/message/system/publish.json`,
//! `/message/group/publish.json` and [`crate::RunningServer`]'s `publish_*`.
//!
//! There are three paths: [`publish_from_client`] (an IM client's `Publish`),
//! [`publish_from_api`] (one message from a back-end sender to each of a set of
//! users or groups: the three publish endpoints and [`crate::RunningServer`]'s
//! `publish_private`, `publish_system` and `publish_group`) and [`publish_bulk`]
//! (many messages to one user, for tests). Each checks its arguments, builds
//! [`Outgoing`] messages and hands them to [`store`], which commits them (one
//! transaction per call, see [`crate::db::Db::store_blocking`]), then signals each
//! grown inbox ([`crate::registry::inbox`]) and counts the accepted messages.
//! Delivery to live connections is their own business: each signalled connection
//! reads what it has not sent yet from the database (see `im::session`), so nothing
//! here ever writes to a socket or waits for a slow client.
//!
//! Rules (RC's): a client may send private and group messages, and must be a
//! member of the group (otherwise 22406); system messages come only from the
//! Server API. The Server API sends one message per recipient of a private or
//! system publish (each lands in the recipient's conversation with `fromUserId`),
//! and one message per group of a group publish, whose sender need not be a member
//! (RC: "non-group members can also send messages to a group via the Server API").
//! The sender of a group message never gets it in its own inbox.

use crate::db::{DbError, Outgoing, Stored};
use crate::error::{Error, InvalidArgument};
use crate::state::{Counters, Shared};
use crate::users::{check_id, check_id_list};
use rcim_proto::message::{
    ConversationKey, ConversationType, MAX_CONTENT_LEN, READ_NOTIFICATION, WireMessage,
    check_outgoing,
};
use rcim_proto::time::now_ms;
use rcim_proto::upstream::{Publish, StatusPublish};
use std::sync::Arc;

/// Most recipients of one `/message/private/publish.json` (RC's limit).
pub const MAX_PRIVATE_RECIPIENTS: usize = 1000;

/// Most recipients of one `/message/system/publish.json` (RC's limit).
pub const MAX_SYSTEM_RECIPIENTS: usize = 100;

/// Most groups of one `/message/group/publish.json` (RC's limit).
pub const MAX_GROUPS_PER_PUBLISH: usize = 3;

/// Longest client message id, in bytes (clients send a UUID).
pub const MAX_CLIENT_MSG_ID: usize = 128;

/// Messages per transaction of the bulk path ([`crate::RunningServer::publish_private_bulk`],
/// `/rcim/message/bulk.json`).
pub const BULK_TRANSACTION: usize = 1000;

/// Most messages one [`publish_bulk`] call may create.
pub const MAX_BULK: u32 = 1_000_000;

/// Checks a message's type name and content for `conversation`.
fn check_message(
    conversation: &ConversationKey,
    object_name: &str,
    content: &str,
) -> Result<(), Error> {
    if content.len() > MAX_CONTENT_LEN {
        return Err(Error::TooLarge);
    }
    check_outgoing(conversation, object_name, content)
        .map_err(|rule| InvalidArgument::Message(rule.to_string()).into())
}

/// Stores `batch` (one transaction), wakes the grown inboxes' connections and
/// counts the accepted messages.
async fn store(shared: &Shared, batch: Vec<Outgoing>) -> Result<Vec<Stored>, Error> {
    let outcome = shared.db.store(batch, now_ms()).await?;
    for (user, last_seq) in &outcome.grown {
        shared.inbox.notify(user, *last_seq);
    }
    let accepted = outcome
        .stored
        .iter()
        .filter(|s| matches!(s, Stored::Accepted { .. }))
        .count();
    Counters::add(&shared.counters.messages, accepted as u64);
    Ok(outcome.stored)
}

/// The uids of a Server API batch (no client ids, no membership rule: every
/// message is accepted).
fn uids(stored: Vec<Stored>) -> Vec<String> {
    stored
        .into_iter()
        .filter_map(|s| match s {
            Stored::Accepted { uid, .. } | Stored::Duplicate { uid, .. } => Some(uid),
            Stored::NotInGroup => None,
        })
        .collect()
}

/// A message from a back-end sender (the Server API's `fromUserId`): no client
/// message id, and no membership rule for a group.
fn from_api(
    sender: &str,
    conversation: ConversationKey,
    object_name: &str,
    content: String,
) -> Outgoing {
    Outgoing {
        sender: sender.to_owned(),
        conversation,
        object_name: object_name.to_owned(),
        content,
        client_msg_id: None,
        sender_must_be_member: false,
    }
}

/// Publishes a client's message: the uid and sent time of its acceptance (the
/// first one, for a resent `client_msg_id`).
pub(crate) async fn publish_from_client(
    shared: &Shared,
    sender: &str,
    publish: Publish,
) -> Result<(String, i64), Error> {
    let Publish {
        client_msg_id,
        conversation,
        object_name,
        content,
        ..
    } = publish;
    if conversation.kind == ConversationType::System {
        return Err(InvalidArgument::SystemFromClient.into());
    }
    check_message(&conversation, &object_name, &content)?;
    if object_name == READ_NOTIFICATION && conversation.kind != ConversationType::Private {
        return Err(InvalidArgument::Message(format!(
            "{READ_NOTIFICATION} is for private conversations"
        ))
        .into());
    }
    if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID {
        return Err(InvalidArgument::ClientMsgId {
            max: MAX_CLIENT_MSG_ID,
        }
        .into());
    }
    // A message to the echo user comes back to its sender (once: a resend is a
    // duplicate and echoes nothing).
    let echo = shared
        .echo_user
        .get()
        .filter(|echo| {
            conversation.kind == ConversationType::Private && conversation.target_id == **echo
        })
        .map(|echo| (echo.clone(), object_name.clone(), content.clone()));
    let outgoing = Outgoing {
        sender: sender.to_owned(),
        conversation,
        object_name,
        content,
        client_msg_id: Some(client_msg_id),
        sender_must_be_member: true,
    };
    match store(shared, vec![outgoing]).await?.pop() {
        Some(Stored::Accepted {
            uid, sent_time_ms, ..
        }) => {
            if let Some((echo, object_name, content)) = echo {
                let to = vec![sender.to_owned()];
                let kind = ConversationType::Private;
                publish_from_api(shared, kind, &echo, to, &object_name, &content).await?;
            }
            Ok((uid, sent_time_ms))
        }
        Some(Stored::Duplicate { uid, sent_time_ms }) => Ok((uid, sent_time_ms)),
        Some(Stored::NotInGroup) => Err(Error::NotInGroup),
        None => Err(Error::Db(DbError::other(
            "storing one message returned no outcome",
        ))),
    }
}

/// `ids` without repeats, in first-seen order.
fn distinct(ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// Publishes one message from `from` to each of `to` (repeats count once), as the
/// Server API does: `kind` private or system sends to users (`toUserId`), each
/// message landing in the recipient's conversation with `from`; `kind` group
/// sends to groups (`toGroupId`), reaching every member but `from`, who need not
/// be a member. Returns the uid of each message, in the order of `to`.
pub(crate) async fn publish_from_api(
    shared: &Shared,
    kind: ConversationType,
    from: &str,
    to: Vec<String>,
    object_name: &str,
    content: &str,
) -> Result<Vec<String>, Error> {
    let (field, max) = match kind {
        ConversationType::Private => ("toUserId", MAX_PRIVATE_RECIPIENTS),
        ConversationType::System => ("toUserId", MAX_SYSTEM_RECIPIENTS),
        ConversationType::Group => ("toGroupId", MAX_GROUPS_PER_PUBLISH),
        _ => return Err(InvalidArgument::NotFromApi { kind }.into()),
    };
    check_id("fromUserId", from)?;
    check_id_list(field, &to, max)?;
    let batch = distinct(to)
        .into_iter()
        .map(|target_id| {
            let conversation = ConversationKey { kind, target_id };
            check_message(&conversation, object_name, content)?;
            Ok(from_api(
                from,
                conversation,
                object_name,
                content.to_owned(),
            ))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(uids(store(shared, batch).await?))
}

/// Publishes `count` private messages from `from` to `to`, the content of message
/// *i* (from 0) being `content_prefix` followed by *i*, in transactions of
/// [`BULK_TRANSACTION`] messages, each signalled once. Returns the uids in order.
/// For tests that stream a large backlog.
pub(crate) async fn publish_bulk(
    shared: &Shared,
    from: &str,
    to: &str,
    count: u32,
    object_name: &str,
    content_prefix: &str,
) -> Result<Vec<String>, Error> {
    check_id("fromUserId", from)?;
    check_id("toUserId", to)?;
    if count > MAX_BULK {
        return Err(InvalidArgument::AboveMax {
            field: "count",
            max: MAX_BULK.into(),
        }
        .into());
    }
    let conversation = ConversationKey::private(to);
    // The longest content this call makes.
    check_message(
        &conversation,
        object_name,
        &format!("{content_prefix}{count}"),
    )?;
    let mut uids_out = Vec::with_capacity(count as usize);
    let mut next = 0;
    while next < count {
        let end = count.min(next.saturating_add(BULK_TRANSACTION as u32));
        let batch = (next..end)
            .map(|i| {
                let content = format!("{content_prefix}{i}");
                from_api(from, conversation.clone(), object_name, content)
            })
            .collect();
        uids_out.extend(uids(store(shared, batch).await?));
        next = end;
    }
    Ok(uids_out)
}

/// Sends a status message from `from` to the live connections of its recipients,
/// and stores it nowhere (RC's status messages: online devices only, never in
/// history, never counted). `conversation` is as the sender names it: a private
/// one reaches the peer, a group one every member but the sender (a client
/// sender must be a member; the Server API's need not be, as for its publishes).
/// Returns how many connections took it.
pub(crate) async fn publish_status(
    shared: &Shared,
    from: &str,
    conversation: ConversationKey,
    object_name: &str,
    content: String,
    sender_must_be_member: bool,
) -> Result<usize, Error> {
    check_message(&conversation, object_name, &content)?;
    let recipients = match conversation.kind {
        ConversationType::Private => vec![conversation.target_id.clone()],
        ConversationType::Group => {
            let mut members = shared.db.group_members(&conversation.target_id).await?;
            let before = members.len();
            members.retain(|m| m != from);
            if sender_must_be_member && members.len() == before {
                return Err(Error::NotInGroup);
            }
            members
        }
        kind => return Err(InvalidArgument::NotFromApi { kind }.into()),
    };
    let message = Arc::new(WireMessage {
        uid: uuid::Uuid::now_v7().to_string(),
        conversation: crate::db::seen_by_recipient(from, &conversation),
        sender: from.to_owned(),
        object_name: object_name.to_owned(),
        content,
        sent_time_ms: now_ms(),
    });
    Ok(recipients
        .iter()
        .map(|user| shared.status.deliver(user, &message))
        .sum())
}

/// A client's status message ([`rcim_proto::upstream::ClientMsg::PublishStatus`]):
/// system messages are refused as for publishes.
pub(crate) async fn publish_status_from_client(
    shared: &Shared,
    sender: &str,
    status: StatusPublish,
) -> Result<usize, Error> {
    if status.conversation.kind == ConversationType::System {
        return Err(InvalidArgument::SystemFromClient.into());
    }
    publish_status(
        shared,
        sender,
        status.conversation,
        &status.object_name,
        status.content,
        true,
    )
    .await
}

/// The Server API's `/statusmessage/{private,group}/publish.json`: one status
/// message from `from` to each of `to` (users for private, groups for group).
/// Returns how many connections took one.
pub(crate) async fn publish_status_from_api(
    shared: &Shared,
    kind: ConversationType,
    from: &str,
    to: Vec<String>,
    object_name: &str,
    content: &str,
) -> Result<usize, Error> {
    let (field, max) = match kind {
        ConversationType::Private => ("toUserId", MAX_PRIVATE_RECIPIENTS),
        ConversationType::Group => ("toGroupId", MAX_GROUPS_PER_PUBLISH),
        _ => return Err(InvalidArgument::NotFromApi { kind }.into()),
    };
    check_id("fromUserId", from)?;
    check_id_list(field, &to, max)?;
    let mut taken = 0;
    for target_id in distinct(to) {
        let conversation = ConversationKey { kind, target_id };
        taken += publish_status(
            shared,
            from,
            conversation,
            object_name,
            content.to_owned(),
            false,
        )
        .await?;
    }
    Ok(taken)
}

/// A status message to the sender's own online devices (the Server API's
/// `isIncludeSender=1`), in `conversation` as the sender names it.
pub(crate) fn publish_status_to_sender(
    shared: &Shared,
    from: &str,
    conversation: ConversationKey,
    object_name: &str,
    content: String,
) -> usize {
    let message = Arc::new(WireMessage {
        uid: uuid::Uuid::now_v7().to_string(),
        conversation,
        sender: from.to_owned(),
        object_name: object_name.to_owned(),
        content,
        sent_time_ms: now_ms(),
    });
    shared.status.deliver(from, &message)
}
