//! The outbox: messages apps send, from `sendMessage` to the server's PubAck.
//!
//! Beside messages it carries the read notifications and read syncs that
//! `markRead` queues (the store's command outbox): published the same way, after
//! every reconnect until the server answered, with their own de-duplication ids,
//! and told apart in the PubAck by [`COMMAND_REQ`] in the request id.
//!
//! A message is stored in the outbox before `onMessageSaved`, published as soon as
//! the link is connected (again after every reconnect, with the same client message
//! id, which the server de-duplicates), and leaves the outbox only when the
//! server's PubAck is committed; then its app gets `onMessageSent`.
//!
//! The outbox outlives connections (an app may wait for `onMessageSent` across
//! reconnects, and the queue itself is in the database), so the link owns one for
//! its whole life and hands it the upstream and the store to use. Like the inbox,
//! it never reacts to a failure itself: a failed write or commit is returned as the
//! [`Failure`] that ends the connection.

use super::connector::{Failure, Upstream};
use super::{Call, store_failure};
use crate::store::{NOTIFICATION_LEVEL_COMMAND, Outgoing, QueuedCommand, StoreHandle};
use rcim_proto::RcCode;
use rcim_proto::ipc::Callback;
use rcim_proto::message::{ConversationKey, Message};
use rcim_proto::time::now_ms;
use rcim_proto::upstream::{ClientMsg, PubAck, Publish};
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

/// The bit of a PUBLISH request id that marks a queued command (the rest is its
/// key in the command outbox); message request ids are local message ids, far
/// below it.
pub(super) const COMMAND_REQ: u64 = 1 << 62;

/// Outgoing messages of the link.
#[derive(Default)]
pub(super) struct Outbox {
    /// Apps waiting for `onMessageSent`, by local message id.
    senders: HashMap<i64, mpsc::Sender<Callback>>,
    /// Messages published on the current connection (by local id): each goes out
    /// once per connection.
    published: HashSet<i64>,
}

impl Outbox {
    /// A new connection: publishes everything still queued in the database, oldest
    /// first.
    pub(super) async fn resend(
        &mut self,
        store: &StoreHandle,
        upstream: &mut Upstream,
    ) -> Result<(), Failure> {
        self.published.clear();
        let queued = store.outbox().await.map_err(store_failure)?;
        if !queued.is_empty() {
            tracing::info!("sending {} queued message(s)", queued.len());
        }
        for message in &queued {
            self.publish(message, upstream).await?;
        }
        let commands = store.command_outbox().await.map_err(store_failure)?;
        for command in &commands {
            publish_command(command, upstream).await?;
        }
        Ok(())
    }

    /// A local app called `sendMessage` (its arguments already checked): stores the
    /// message from `sender` in the outbox and tells the app `onMessageSaved`.
    /// Returns the call, and the saved message for the link to publish when it is
    /// connected; a call rejected with 34200 when it cannot be stored.
    pub(super) async fn save(
        &mut self,
        store: &StoreHandle,
        sender: String,
        conversation: ConversationKey,
        object_name: String,
        content: String,
    ) -> Result<(Call, Message), Call> {
        let outgoing = Outgoing {
            sender,
            conversation,
            object_name,
            content,
            client_msg_id: uuid::Uuid::now_v7().to_string(),
        };
        let message = match store.save_outgoing(outgoing, now_ms()).await {
            Ok(message) => message,
            Err(e) => {
                tracing::error!("cannot store an outgoing message: {e}");
                return Err(Call::rejected(RcCode::BIZ_SAVE_MESSAGE_ERROR));
            }
        };
        let (tx, callbacks) = mpsc::channel(4);
        let _ = tx.try_send(Callback::MessageSaved {
            message: message.clone(),
        });
        self.senders.insert(message.id, tx);
        let call = Call {
            code: RcCode::SUCCESS,
            callbacks,
        };
        Ok((call, message))
    }

    /// Publishes one outbox message on the live connection (once per connection).
    pub(super) async fn publish(
        &mut self,
        message: &Message,
        upstream: &mut Upstream,
    ) -> Result<(), Failure> {
        if !self.published.insert(message.id) {
            return Ok(());
        }
        let Some(client_msg_id) = message.client_msg_id.clone() else {
            return Ok(());
        };
        let publish = ClientMsg::Publish(Publish {
            req_id: u64::try_from(message.id).unwrap_or_default(),
            client_msg_id,
            conversation: message.conversation.clone(),
            object_name: message.object_name.clone(),
            content: message.content.clone(),
        });
        upstream.send(&publish).await
    }

    /// The server answered a PUBLISH: the message leaves the outbox (sent, or
    /// failed for good) and its app gets `onMessageSent`.
    pub(super) async fn on_pub_ack(
        &mut self,
        ack: PubAck,
        store: &StoreHandle,
    ) -> Result<(), Failure> {
        if ack.req_id & COMMAND_REQ != 0 {
            let Ok(id) = i64::try_from(ack.req_id & !COMMAND_REQ) else {
                return Ok(());
            };
            if ack.code != 0 {
                tracing::warn!(
                    "the server refused queued command {id}: {}; dropping it",
                    RcCode(ack.code)
                );
            }
            return store.command_done(id).await.map_err(store_failure);
        }
        let Ok(id) = i64::try_from(ack.req_id) else {
            return Ok(());
        };
        let result = if ack.code == 0 {
            let Some(uid) = ack.message_uid else {
                tracing::warn!("PubAck {id} accepted without a message uid; ignoring it");
                return Ok(());
            };
            store.mark_sent(id, uid, ack.sent_time_ms).await
        } else {
            tracing::warn!("the server refused message {id}: {}", RcCode(ack.code));
            store.mark_failed(id).await
        };
        let Some(message) = result.map_err(store_failure)? else {
            tracing::debug!("PubAck for unknown message {id}");
            return Ok(());
        };
        if let Some(sender) = self.senders.remove(&id) {
            let _ = sender.try_send(Callback::MessageSent {
                code: ack.code,
                message,
            });
        }
        Ok(())
    }
}

/// Publishes one queued read notification or read sync on the live connection.
pub(super) async fn publish_command(
    command: &QueuedCommand,
    upstream: &mut Upstream,
) -> Result<(), Failure> {
    let req_id = COMMAND_REQ | u64::try_from(command.id).unwrap_or_default();
    if command.object_name == NOTIFICATION_LEVEL_COMMAND {
        let Ok(level) = command.content.parse::<i32>() else {
            tracing::warn!(
                "a queued notification level is not a number: {:?}",
                command.content
            );
            return Ok(());
        };
        let set = ClientMsg::SetNotificationLevel {
            req_id,
            conversation: command.conversation.clone(),
            level,
        };
        return upstream.send(&set).await;
    }
    let publish = ClientMsg::Publish(Publish {
        req_id,
        client_msg_id: command.client_msg_id.clone(),
        conversation: command.conversation.clone(),
        object_name: command.object_name.clone(),
        content: command.content.clone(),
    });
    upstream.send(&publish).await
}
