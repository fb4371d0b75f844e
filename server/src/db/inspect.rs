//! Read-only inspection of stored messages, for tests and tools: which type each
//! message a sender published has (the chaos run tells messages from the read
//! notifications and read syncs that share the inboxes with them).

use super::{Db, DbError};

impl Db {
    /// Every (uid, object name) that `sender` published as an IM client, in the
    /// order they were accepted. Blocking.
    pub fn object_names_from_blocking(
        &self,
        sender: &str,
    ) -> Result<Vec<(String, String)>, DbError> {
        let conn = self.lock();
        let mut statement = conn.prepare(
            "SELECT uid, object_name FROM messages
             WHERE sender = ?1 AND client_msg_id IS NOT NULL ORDER BY uid",
        )?;
        let rows = statement
            .query_map([sender], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// [`Db::object_names_from_blocking`] on the blocking pool.
    pub async fn object_names_from(&self, sender: &str) -> Result<Vec<(String, String)>, DbError> {
        let sender = sender.to_owned();
        self.run(move |db| db.object_names_from_blocking(&sender))
            .await
    }
}
