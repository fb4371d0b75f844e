//! Groups and their members in SQLite (`groups`, `group_members`).
//!
//! This module owns the SQL behind `/group/create.json`, `/group/join.json`,
//! `/group/quit.json` and `/group/dismiss.json`. RC keeps no group business logic:
//! joining (or creating) a group that does not exist creates it, creating one that
//! exists adds the members, quitting or dismissing what is not there is fine. Each
//! call is one transaction. Fan-out reads the members inside the publishing
//! transaction (see [`super::messages`]), so a message never reaches a user who had
//! quit before it was stored.

use super::{Db, DbError};
use rusqlite::params;

impl Db {
    /// Adds `members` to `group_id`, creating the group if needed. A given `name`
    /// replaces the stored one; a new group without a name gets an empty one.
    /// Blocking.
    pub fn join_group_blocking(
        &self,
        group_id: &str,
        name: Option<&str>,
        members: &[String],
        now_ms: i64,
    ) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO groups (group_id, name, created_ms) VALUES (?1, coalesce(?2, ''), ?3)
             ON CONFLICT (group_id) DO UPDATE SET name = coalesce(?2, name)",
            params![group_id, name, now_ms],
        )?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO group_members (group_id, user_id, joined_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            for member in members {
                insert.execute(params![group_id, member, now_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// [`Db::join_group_blocking`] on the blocking pool.
    pub async fn join_group(
        &self,
        group_id: String,
        name: Option<String>,
        members: Vec<String>,
        now_ms: i64,
    ) -> Result<(), DbError> {
        self.run(move |db| db.join_group_blocking(&group_id, name.as_deref(), &members, now_ms))
            .await
    }

    /// Removes `members` from `group_id` (the group stays, even when empty).
    /// Blocking.
    pub fn quit_group_blocking(&self, group_id: &str, members: &[String]) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2")?;
            for member in members {
                delete.execute(params![group_id, member])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// [`Db::quit_group_blocking`] on the blocking pool.
    pub async fn quit_group(&self, group_id: String, members: Vec<String>) -> Result<(), DbError> {
        self.run(move |db| db.quit_group_blocking(&group_id, &members))
            .await
    }

    /// Deletes `group_id` and its memberships. Blocking.
    pub fn dismiss_group_blocking(&self, group_id: &str) -> Result<(), DbError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM group_members WHERE group_id = ?1", [group_id])?;
        tx.execute("DELETE FROM groups WHERE group_id = ?1", [group_id])?;
        tx.commit()?;
        Ok(())
    }

    /// [`Db::dismiss_group_blocking`] on the blocking pool.
    pub async fn dismiss_group(&self, group_id: String) -> Result<(), DbError> {
        self.run(move |db| db.dismiss_group_blocking(&group_id))
            .await
    }

    /// The members of `group_id`, sorted (empty for an unknown group). Blocking.
    pub fn group_members_blocking(&self, group_id: &str) -> Result<Vec<String>, DbError> {
        let conn = self.lock();
        let mut statement =
            conn.prepare("SELECT user_id FROM group_members WHERE group_id = ?1 ORDER BY user_id")?;
        let members = statement
            .query_map([group_id], |row| row.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(members)
    }

    /// [`Db::group_members_blocking`] on the blocking pool.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<String>, DbError> {
        let group_id = group_id.to_owned();
        self.run(move |db| db.group_members_blocking(&group_id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn join_quit_dismiss() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        db.join_group_blocking("g1", Some("G"), &ids(&["b", "a"]), 1)
            .unwrap();
        db.join_group_blocking("g1", None, &ids(&["a", "c"]), 2)
            .unwrap();
        assert_eq!(
            db.group_members_blocking("g1").unwrap(),
            ids(&["a", "b", "c"])
        );
        let name: String = db
            .lock()
            .query_row("SELECT name FROM groups WHERE group_id = 'g1'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(name, "G", "joining without a name keeps it");
        db.quit_group_blocking("g1", &ids(&["b", "nobody"]))
            .unwrap();
        assert_eq!(db.group_members_blocking("g1").unwrap(), ids(&["a", "c"]));
        db.dismiss_group_blocking("g1").unwrap();
        assert!(db.group_members_blocking("g1").unwrap().is_empty());
        db.dismiss_group_blocking("g1").unwrap();
    }
}
