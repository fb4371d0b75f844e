//! Message sequencing: which `MessageReceived` the reader passes on, so that replay
//! and live traffic never reach an app twice or out of order.
//!
//! A message's `id` is the daemon's local sequence number: ids only grow, in the
//! order the daemon committed the messages, and every message a client is sent
//! carries a larger id than every message committed before it (ids are not dense:
//! the messages this device sends take ids too). `Subscribe { since_seq }` makes the
//! daemon replay every stored message with an id above `since_seq`, then continue
//! live.
//!
//! The reader keeps one [`Sequencer`] per [`Client`](crate::Client) (it survives a
//! re-attach) and classifies every message it reads:
//!
//! - While a `Subscribe { since }` is in flight (sent, not yet answered), a message
//!   with an id above `since` is dropped: the daemon sent it before it began the
//!   replay, and the replay will bring it again, in order. (The daemon stops live
//!   events for the client before it answers `Subscribe`; everything after the answer
//!   is replay, then live.)
//! - A message above [`Sequencer::last`] is *new*: it goes to the engine's observer
//!   and to every event stream, and becomes the new `last`.
//! - A message at or below `last` is a *repeat* from a replay. It goes to the event
//!   streams only when a replay window opened by a `Subscribe` answer (or the
//!   daemon's `Lagged`) covers it, because some stream may still be behind it;
//!   each stream drops what it already yielded. Otherwise it is dropped at once.
//!
//! [`Client::subscribe`]: crate::Client::subscribe

use std::collections::HashMap;

/// What to do with one `MessageReceived`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// Newer than anything passed on: to the observer and every stream.
    New,
    /// A repeat some stream may still need: to the streams only.
    Replay,
    /// Nobody needs it (or a replay in flight brings it again).
    Drop,
}

/// A `Subscribe` sent and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    /// The `since_seq` it asked for.
    since: i64,
    /// For an app's [`Client::subscribe`](crate::Client::subscribe) (or the
    /// re-attach `Subscribe` that stands in for unanswered ones): the ordinal of the
    /// last app subscribe it answers.
    explicit: Option<u64>,
}

/// The reader's sequencing state; see the module docs. Only its own methods change
/// it, so every rule above is in this file.
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    /// The largest message id passed on as new (or skipped to by a subscribe).
    last: Option<i64>,
    /// The first message id ever passed on as new.
    first: Option<i64>,
    /// `Subscribe`s in flight, by request id.
    pending: HashMap<u64, Pending>,
    /// Replays in progress that repeat messages at or below `last`: `(since, until]`.
    windows: Vec<(i64, i64)>,
    /// The `since_seq` of every app subscribe, in order (ordinal = index + 1);
    /// `i64::MIN` for one the daemon refused.
    explicit_log: Vec<i64>,
    /// How many app subscribes have been answered.
    explicit_answered: u64,
}

impl Sequencer {
    /// The largest message id passed on as new, or skipped to by a subscribe;
    /// `None` before any.
    pub(crate) fn last(&self) -> Option<i64> {
        self.last
    }

    /// The first message id ever passed on as new.
    pub(crate) fn first(&self) -> Option<i64> {
        self.first
    }

    /// How many app subscribes were registered (the ordinal of the last one).
    pub(crate) fn explicit_registered(&self) -> u64 {
        self.explicit_log.len() as u64
    }

    /// How many app subscribes have been answered.
    pub(crate) fn explicit_answered(&self) -> u64 {
        self.explicit_answered
    }

    /// The `since_seq` of the app subscribes with ordinals in `(from, to]`
    /// (`i64::MIN` for one the daemon refused).
    pub(crate) fn explicit_sinces(&self, from: u64, to: u64) -> &[i64] {
        let log = &self.explicit_log;
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(log.len());
        let to = usize::try_from(to).unwrap_or(usize::MAX).min(log.len());
        log.get(from..to).unwrap_or_default()
    }

    /// Classifies a message the daemon sent, and updates the state.
    pub(crate) fn classify(&mut self, id: i64) -> Class {
        if self.pending.values().any(|p| id > p.since) {
            return Class::Drop;
        }
        let in_window = self
            .windows
            .iter()
            .any(|&(since, until)| since < id && id <= until);
        self.windows.retain(|&(_, until)| until > id);
        if self.last.is_none_or(|last| id > last) {
            self.last = Some(id);
            self.first.get_or_insert(id);
            Class::New
        } else if in_window {
            Class::Replay
        } else {
            Class::Drop
        }
    }

    /// Registers an app subscribe from `since`; returns its ordinal.
    pub(crate) fn register_explicit(&mut self, request: u64, since: i64) -> u64 {
        self.explicit_log.push(since);
        let ordinal = self.explicit_log.len() as u64;
        self.pending.insert(
            request,
            Pending {
                since,
                explicit: Some(ordinal),
            },
        );
        ordinal
    }

    /// The daemon will replay the messages after `since` (up to what it had
    /// published) before going live again: messages up to `last` may come again.
    pub(crate) fn open_window(&mut self, since: i64) {
        if let Some(last) = self.last
            && since < last
        {
            self.windows.push((since, last));
        }
    }

    /// The answer to the `Subscribe` with this request id came. Returns the `since`
    /// of the replay that follows (`i64::MAX` when the daemon refused: no replay),
    /// or `None` when that id was no pending `Subscribe`.
    pub(crate) fn answered(&mut self, request: u64, code: i32) -> Option<i64> {
        let pending = self.pending.remove(&request)?;
        if let Some(ordinal) = pending.explicit {
            if code != 0
                && let Some(since) = usize::try_from(ordinal)
                    .ok()
                    .and_then(|n| self.explicit_log.get_mut(n.saturating_sub(1)))
            {
                *since = i64::MIN;
            }
            self.explicit_answered = self.explicit_answered.max(ordinal);
        }
        if code != 0 {
            return Some(i64::MAX);
        }
        self.open_window(pending.since);
        self.last = self.last.max(Some(pending.since));
        Some(pending.since)
    }

    /// The daemon connection is gone: nothing is in flight any more.
    pub(crate) fn connection_lost(&mut self) {
        self.pending.clear();
        self.windows.clear();
    }

    /// Where a re-attached connection must resume from: the lowest of `last` and
    /// every unanswered app subscribe; `None` when nothing was
    /// ever received and nothing was asked for (the new connection is live only).
    /// Also returns the ordinal of the last unanswered app subscribe, which the
    /// re-attach `Subscribe` answers.
    pub(crate) fn resume_point(&self) -> (Option<i64>, Option<u64>) {
        let unanswered = usize::try_from(self.explicit_answered)
            .ok()
            .and_then(|from| self.explicit_log.get(from..))
            .unwrap_or_default();
        let since = self
            .last
            .into_iter()
            .chain(unanswered.iter().copied().filter(|&s| s != i64::MIN))
            .min();
        let explicit = (!unanswered.is_empty()).then_some(self.explicit_log.len() as u64);
        (since, explicit)
    }

    /// Registers the re-attach `Subscribe` (request id `request`) from
    /// [`Sequencer::resume_point`]'s `since`, standing in for the unanswered app
    /// subscribes up to ordinal `explicit`.
    pub(crate) fn register_resume(&mut self, request: u64, since: i64, explicit: Option<u64>) {
        self.pending.insert(request, Pending { since, explicit });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(since: i64) -> Pending {
        Pending {
            since,
            explicit: None,
        }
    }

    #[test]
    fn live_messages_are_new_once() {
        let mut seq = Sequencer::default();
        assert_eq!(seq.classify(3), Class::New);
        assert_eq!(seq.classify(5), Class::New);
        assert_eq!(seq.classify(5), Class::Drop);
        assert_eq!(seq.classify(4), Class::Drop);
        assert_eq!((seq.first, seq.last), (Some(3), Some(5)));
    }

    #[test]
    fn messages_before_the_subscribe_answer_wait_for_the_replay() {
        let mut seq = Sequencer::default();
        seq.classify(10);
        seq.pending.insert(7, pending(8));
        // Sent before the daemon began the replay: the replay brings 11 again.
        assert_eq!(seq.classify(11), Class::Drop);
        // At or below `since`: not part of the replay, so passed on now.
        assert_eq!(seq.classify(8), Class::Drop, "already passed on");
        assert_eq!(seq.answered(7, 0), Some(8));
        // The replay: 9 and 10 were passed on before, 11 is new.
        assert_eq!(seq.classify(9), Class::Replay);
        assert_eq!(seq.classify(10), Class::Replay);
        assert_eq!(seq.classify(11), Class::New);
        assert_eq!(seq.classify(10), Class::Drop, "the window is closed");
    }

    #[test]
    fn a_subscribe_ahead_skips_forward() {
        let mut seq = Sequencer::default();
        let ordinal = seq.register_explicit(1, 100);
        assert_eq!(ordinal, 1);
        assert_eq!(seq.classify(50), Class::New);
        assert_eq!(seq.answered(1, 0), Some(100));
        assert_eq!(seq.last, Some(100));
        assert_eq!(seq.classify(90), Class::Drop);
        assert_eq!(seq.classify(101), Class::New);
        assert_eq!(seq.explicit_answered, 1);
    }

    #[test]
    fn a_refused_subscribe_replays_nothing() {
        let mut seq = Sequencer::default();
        seq.register_explicit(1, 5);
        assert_eq!(seq.answered(1, 33003), Some(i64::MAX));
        assert_eq!(seq.explicit_log, [i64::MIN]);
        assert_eq!(seq.answered(1, 0), None);
    }

    #[test]
    fn the_resume_point_is_the_lowest_need() {
        let mut seq = Sequencer::default();
        assert_eq!(seq.resume_point(), (None, None));
        seq.classify(40);
        assert_eq!(seq.resume_point(), (Some(40), None));
        seq.register_explicit(9, 20);
        seq.connection_lost();
        assert!(seq.pending.is_empty());
        assert_eq!(seq.resume_point(), (Some(20), Some(1)));
    }
}
