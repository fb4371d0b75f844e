//! Per-user conversation settings kept by the server: the push notification
//! level (do-not-disturb) of each conversation, as RC's
//! `/conversation/notification/{set,get}.json` keep it. The conversation is the
//! one the user sees (the peer of a private one, the group).

use super::{Db, DbError};
use rcim_proto::message::ConversationKey;
use rusqlite::{OptionalExtension as _, params};

impl Db {
    /// Sets `user_id`'s notification level for `conversation`. Blocking.
    pub fn set_notification_level_blocking(
        &self,
        user_id: &str,
        conversation: &ConversationKey,
        level: i32,
    ) -> Result<(), DbError> {
        self.lock().execute(
            "INSERT INTO notification_levels (user_id, conv_type, target_id, level)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, conv_type, target_id) DO UPDATE SET level = excluded.level",
            params![
                user_id,
                conversation.kind.code(),
                conversation.target_id,
                level
            ],
        )?;
        Ok(())
    }

    /// [`Db::set_notification_level_blocking`] on the blocking pool.
    pub async fn set_notification_level(
        &self,
        user_id: &str,
        conversation: ConversationKey,
        level: i32,
    ) -> Result<(), DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.set_notification_level_blocking(&user_id, &conversation, level))
            .await
    }

    /// `user_id`'s notification level for `conversation` (0, "not set", when never
    /// set). Blocking.
    pub fn notification_level_blocking(
        &self,
        user_id: &str,
        conversation: &ConversationKey,
    ) -> Result<i32, DbError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT level FROM notification_levels
                 WHERE user_id = ?1 AND conv_type = ?2 AND target_id = ?3",
                params![user_id, conversation.kind.code(), conversation.target_id],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// [`Db::notification_level_blocking`] on the blocking pool.
    pub async fn notification_level(
        &self,
        user_id: &str,
        conversation: ConversationKey,
    ) -> Result<i32, DbError> {
        let user_id = user_id.to_owned();
        self.run(move |db| db.notification_level_blocking(&user_id, &conversation))
            .await
    }
}
