//! Publishing messages: the one implementation behind the IM endpoint's `Publish`,
//! `/message/private/publish.json`, `/message/system/publish.json`,
//! `/message/group/publish.json` and [`crate::RunningServer`]'s `publish_*`.
//!
//! Every path checks its arguments, builds [`Outgoing`] messages and hands them to
//! [`store`], which commits them (one transaction per call, see
//! [`crate::db::Db::store_blocking`]), then signals each grown inbox
//! ([`crate::registry::inbox`]) and counts the accepted messages. Delivery to live
//! connections is their own business: each signalled connection reads what it has
//! not sent yet from the database (see `im::session`), so nothing here ever writes
//! to a socket or waits for a slow client.
//!
//! Rules (RC's): a client may send private and group messages, and must be a
//! member of the group (otherwise 22406); system messages come only from the
//! Server API. The Server API sends one message per recipient of a private or
//! system publish (each lands in the recipient's conversation with `fromUserId`),
//! and one message per group of a group publish, whose sender need not be a member
//! (RC: "non-group members can also send messages to a group via the Server API").
//! The sender of a group message never gets it in its own inbox.

use crate::db::{DbError, Outgoing, Stored};
use crate::state::{Counters, Shared, now_ms};
use crate::users::{check_id, check_id_list};
use rcim_proto::RcCode;
use rcim_proto::message::{ConversationKey, ConversationType, MAX_CONTENT_LEN, check_outgoing};
use rcim_proto::upstream::Publish;

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

/// Why a publish was refused.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// An argument breaks the rules; the message names it.
    #[error("{0}")]
    InvalidArgument(String),
    /// The content is larger than [`MAX_CONTENT_LEN`].
    #[error("the content is larger than {} KB", MAX_CONTENT_LEN / 1024)]
    TooLarge,
    /// A client sent to a group it is not a member of.
    #[error("the sender is not a member of the group")]
    NotInGroup,
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl MessagingError {
    /// The PubAck code for a refusal; `None` for a database failure, which is not
    /// the client's fault (the connection is ended so that the client resends).
    pub(crate) fn puback_code(&self) -> Option<RcCode> {
        match self {
            Self::InvalidArgument(_) => Some(RcCode::INVALID_PARAMETER),
            Self::TooLarge => Some(RcCode::RC_MSG_SIZE_OUT_OF_LIMIT),
            Self::NotInGroup => Some(RcCode::NOT_IN_GROUP),
            Self::Db(_) => None,
        }
    }
}

/// Checks a message's type name and content for `conversation`.
fn check_message(
    conversation: &ConversationKey,
    object_name: &str,
    content: &str,
) -> Result<(), MessagingError> {
    if content.len() > MAX_CONTENT_LEN {
        return Err(MessagingError::TooLarge);
    }
    check_outgoing(conversation, object_name, content)
        .map_err(|e| MessagingError::InvalidArgument(e.into()))
}

/// Stores `batch` (one transaction), wakes the grown inboxes' connections and
/// counts the accepted messages.
async fn store(shared: &Shared, batch: Vec<Outgoing>) -> Result<Vec<Stored>, MessagingError> {
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

/// Publishes a client's message: the uid and sent time of its acceptance (the
/// first one, for a resent `client_msg_id`).
pub(crate) async fn publish_from_client(
    shared: &Shared,
    sender: &str,
    publish: Publish,
) -> Result<(String, i64), MessagingError> {
    let Publish {
        client_msg_id,
        conversation,
        object_name,
        content,
        ..
    } = publish;
    if conversation.kind == ConversationType::System {
        return Err(MessagingError::InvalidArgument(
            "system messages can only be sent through the Server API".into(),
        ));
    }
    check_message(&conversation, &object_name, &content)?;
    if client_msg_id.is_empty() || client_msg_id.len() > MAX_CLIENT_MSG_ID {
        return Err(MessagingError::InvalidArgument(format!(
            "the client message id must be 1 to {MAX_CLIENT_MSG_ID} bytes"
        )));
    }
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
        })
        | Some(Stored::Duplicate { uid, sent_time_ms }) => Ok((uid, sent_time_ms)),
        Some(Stored::NotInGroup) => Err(MessagingError::NotInGroup),
        None => Err(MessagingError::Db(DbError::other(
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

/// Publishes one private (`kind` private) or system (`kind` system) message from
/// `from` to each of `to` (repeats count once). Returns the uid of each, in the
/// order of `to`.
pub(crate) async fn publish_to_users(
    shared: &Shared,
    kind: ConversationType,
    from: &str,
    to: Vec<String>,
    object_name: &str,
    content: &str,
) -> Result<Vec<String>, MessagingError> {
    let max = match kind {
        ConversationType::Private => MAX_PRIVATE_RECIPIENTS,
        ConversationType::System => MAX_SYSTEM_RECIPIENTS,
        _ => {
            return Err(MessagingError::InvalidArgument(format!(
                "{} messages cannot be sent to users",
                kind.name()
            )));
        }
    };
    check_id("fromUserId", from).map_err(MessagingError::InvalidArgument)?;
    check_id_list("toUserId", &to, max).map_err(MessagingError::InvalidArgument)?;
    let batch = distinct(to)
        .into_iter()
        .map(|user| {
            let conversation = ConversationKey {
                kind,
                target_id: user,
            };
            check_message(&conversation, object_name, content)?;
            Ok(Outgoing {
                sender: from.to_owned(),
                conversation,
                object_name: object_name.to_owned(),
                content: content.to_owned(),
                client_msg_id: None,
                sender_must_be_member: false,
            })
        })
        .collect::<Result<Vec<_>, MessagingError>>()?;
    Ok(uids(store(shared, batch).await?))
}

/// Publishes one group message from `from` to each of `groups` (repeats count
/// once), reaching every member but the sender; `from` need not be a member.
/// Returns the uid of each, in the order of `groups`.
pub(crate) async fn publish_to_groups(
    shared: &Shared,
    from: &str,
    groups: Vec<String>,
    object_name: &str,
    content: &str,
) -> Result<Vec<String>, MessagingError> {
    check_id("fromUserId", from).map_err(MessagingError::InvalidArgument)?;
    check_id_list("toGroupId", &groups, MAX_GROUPS_PER_PUBLISH)
        .map_err(MessagingError::InvalidArgument)?;
    let batch = distinct(groups)
        .into_iter()
        .map(|group| {
            let conversation = ConversationKey::group(group);
            check_message(&conversation, object_name, content)?;
            Ok(Outgoing {
                sender: from.to_owned(),
                conversation,
                object_name: object_name.to_owned(),
                content: content.to_owned(),
                client_msg_id: None,
                sender_must_be_member: false,
            })
        })
        .collect::<Result<Vec<_>, MessagingError>>()?;
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
) -> Result<Vec<String>, MessagingError> {
    check_id("fromUserId", from).map_err(MessagingError::InvalidArgument)?;
    check_id("toUserId", to).map_err(MessagingError::InvalidArgument)?;
    if count > MAX_BULK {
        return Err(MessagingError::InvalidArgument(format!(
            "count must be at most {MAX_BULK}"
        )));
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
            .map(|i| Outgoing {
                sender: from.to_owned(),
                conversation: conversation.clone(),
                object_name: object_name.to_owned(),
                content: format!("{content_prefix}{i}"),
                client_msg_id: None,
                sender_must_be_member: false,
            })
            .collect();
        uids_out.extend(uids(store(shared, batch).await?));
        next = end;
    }
    Ok(uids_out)
}
