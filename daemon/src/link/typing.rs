//! Typing status, both ways: the rate limit on what this device sends, and who is
//! typing in each conversation as received, with RC's expiry.
//!
//! RC sends at most one typing status per conversation every 6 s
//! ([`TYPING_INTERVAL_MS`]), however often the app calls `sendTypingStatus`; the
//! [`TypingLimiter`] decides which calls go out. On the receiving side a typing
//! status lasts 6 s unless a new one renews it: the [`TypingBoard`] keeps who is
//! typing where, tells the link when the next one runs out, and builds RC's
//! `onTypingStatusChanged` list each time a conversation's typers change (a new
//! one, a renewal, a message from the typer, or the expiry).
//!
//! Both are plain state over tokio's [`Instant`], owned by the link's task: no
//! timer task of their own, so paused-time tests drive them exactly.

use rcim_proto::ipc::{Event, TYPING_INTERVAL_MS, TypingUser};
use rcim_proto::message::ConversationKey;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// [`TYPING_INTERVAL_MS`] as a duration.
pub(super) const TYPING_INTERVAL: Duration = Duration::from_millis(TYPING_INTERVAL_MS as u64);

/// Which typing statuses this device sends: one per conversation per
/// [`TYPING_INTERVAL`].
#[derive(Debug, Default)]
pub(super) struct TypingLimiter {
    last_sent: HashMap<ConversationKey, Instant>,
}

impl TypingLimiter {
    /// Whether a typing status to `conversation` may go out at `now`; when it may,
    /// `now` counts as its sending time.
    pub(super) fn allow(&mut self, conversation: &ConversationKey, now: Instant) -> bool {
        // Forget conversations whose interval is long over, so the map stays small.
        self.last_sent
            .retain(|_, sent| now.saturating_duration_since(*sent) < TYPING_INTERVAL);
        if self.last_sent.contains_key(conversation) {
            return false;
        }
        self.last_sent.insert(conversation.clone(), now);
        true
    }
}

/// One user typing in one conversation.
#[derive(Debug, Clone)]
struct Typer {
    user: TypingUser,
    expires: Instant,
}

/// Who is typing in each conversation, as received.
#[derive(Debug, Default)]
pub(super) struct TypingBoard {
    by_conversation: HashMap<ConversationKey, Vec<Typer>>,
}

impl TypingBoard {
    /// A typing status from `user_id` arrived at `now`: they are typing in
    /// `conversation` until [`TYPING_INTERVAL`] from now. The event with the
    /// conversation's typers.
    pub(super) fn on_typing(
        &mut self,
        conversation: &ConversationKey,
        user: TypingUser,
        now: Instant,
    ) -> Event {
        let typers = self
            .by_conversation
            .entry(conversation.clone())
            .or_default();
        typers.retain(|t| t.user.user_id != user.user_id);
        typers.push(Typer {
            user,
            expires: now + TYPING_INTERVAL,
        });
        self.event(conversation)
    }

    /// A message from `sender` arrived in `conversation`: they are done typing.
    /// The event when they were on the board.
    pub(super) fn on_message(
        &mut self,
        conversation: &ConversationKey,
        sender: &str,
    ) -> Option<Event> {
        let typers = self.by_conversation.get_mut(conversation)?;
        let before = typers.len();
        typers.retain(|t| t.user.user_id != sender);
        (typers.len() != before).then(|| self.event(conversation))
    }

    /// When the next typing status runs out, if any is on the board.
    pub(super) fn next_expiry(&self) -> Option<Instant> {
        self.by_conversation
            .values()
            .flatten()
            .map(|t| t.expires)
            .min()
    }

    /// Takes off every typing status run out at `now`: one event per conversation
    /// whose typers changed (an empty list when nobody is typing there any more).
    pub(super) fn expire(&mut self, now: Instant) -> Vec<Event> {
        let changed: Vec<ConversationKey> = self
            .by_conversation
            .iter_mut()
            .filter_map(|(key, typers)| {
                let before = typers.len();
                typers.retain(|t| t.expires > now);
                (typers.len() != before).then(|| key.clone())
            })
            .collect();
        changed.iter().map(|key| self.event(key)).collect()
    }

    /// The `TypingStatus` event of `conversation` as the board has it now
    /// (dropping the conversation when nobody types there).
    fn event(&mut self, conversation: &ConversationKey) -> Event {
        let users: Vec<TypingUser> = self
            .by_conversation
            .get(conversation)
            .map(|typers| typers.iter().map(|t| t.user.clone()).collect())
            .unwrap_or_default();
        if users.is_empty() {
            self.by_conversation.remove(conversation);
        }
        Event::TypingStatus {
            conversation: conversation.clone(),
            users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob() -> ConversationKey {
        ConversationKey::private("bob")
    }

    fn typer(user: &str, at: i64) -> TypingUser {
        TypingUser {
            user_id: user.into(),
            content_type: "RC:TxtMsg".into(),
            sent_time_ms: at,
        }
    }

    fn users(event: &Event) -> Vec<String> {
        match event {
            Event::TypingStatus { users, .. } => users.iter().map(|u| u.user_id.clone()).collect(),
            other => panic!("not a typing event: {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_typing_status_per_conversation_per_six_seconds() {
        let mut limiter = TypingLimiter::default();
        let carol = ConversationKey::private("carol");
        assert!(limiter.allow(&bob(), Instant::now()));
        // Spam: every 100 ms for just under 6 s, nothing more goes out.
        for _ in 0..59 {
            tokio::time::advance(Duration::from_millis(100)).await;
            assert!(!limiter.allow(&bob(), Instant::now()));
        }
        // Another conversation has its own interval.
        assert!(limiter.allow(&carol, Instant::now()));
        tokio::time::advance(Duration::from_millis(99)).await;
        assert!(!limiter.allow(&bob(), Instant::now()), "5.999 s after");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(limiter.allow(&bob(), Instant::now()), "6 s after");
        assert!(!limiter.allow(&bob(), Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_typing_status_lasts_six_seconds_unless_renewed() {
        let mut board = TypingBoard::default();
        let event = board.on_typing(&bob(), typer("bob", 1), Instant::now());
        assert_eq!(users(&event), ["bob"]);
        let expiry = board.next_expiry().unwrap();
        assert_eq!(expiry - Instant::now(), TYPING_INTERVAL);
        tokio::time::advance(Duration::from_millis(5_999)).await;
        assert!(board.expire(Instant::now()).is_empty(), "still typing");
        // Renewed just before the end: another 6 s from now.
        board.on_typing(&bob(), typer("bob", 2), Instant::now());
        tokio::time::advance(Duration::from_millis(5_999)).await;
        assert!(board.expire(Instant::now()).is_empty());
        tokio::time::advance(Duration::from_millis(1)).await;
        let gone = board.expire(Instant::now());
        assert_eq!(gone.len(), 1);
        assert_eq!(users(&gone[0]), Vec::<String>::new());
        assert!(board.next_expiry().is_none());
        assert!(board.expire(Instant::now()).is_empty(), "told once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_from_the_typer_ends_their_typing() {
        let mut board = TypingBoard::default();
        board.on_typing(&bob(), typer("bob", 1), Instant::now());
        assert!(board.on_message(&bob(), "someone-else").is_none());
        let event = board.on_message(&bob(), "bob").unwrap();
        assert_eq!(users(&event), Vec::<String>::new());
        assert!(board.next_expiry().is_none());
        assert!(board.on_message(&bob(), "bob").is_none());
    }
}
