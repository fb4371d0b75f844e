//! The `NOTIFY` channels between nodes and their payloads.
//!
//! PostgreSQL caps a payload below 8,000 bytes and does not replay: a listener
//! that was disconnected has missed whatever was sent meanwhile, so every
//! receiver must treat a reconnect as "anything may have changed".
//!
//! [`INBOX`]: users' inboxes grew. Sent by the transaction that appended the
//! entries (`SELECT pg_notify(…)` before `COMMIT`), so it is delivered if and only
//! if the entries are committed. The payload is lines of `<last_seq> <user_id>`;
//! user ids never hold spaces or newlines (RC's rules, `users::check_user_id`),
//! and [`encode_inbox`] refuses one that does rather than send a wrong line.

use std::fmt::Write as _;

/// The channel of inbox growth.
pub const INBOX: &str = "rcim_inbox";

/// The largest payload we send, under PostgreSQL's 8,000-byte limit.
pub const MAX_PAYLOAD: usize = 7_900;

/// A payload that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad {channel} payload line {line:?}")]
pub struct WireError {
    /// The channel it came on.
    pub channel: &'static str,
    /// The offending line (cut to 100 bytes).
    pub line: String,
}

/// The payloads that tell every node that each `(user, last_seq)` inbox grew to
/// `last_seq`: as few as fit, each at most [`MAX_PAYLOAD`] bytes. A user id that
/// is empty or holds whitespace is a bug upstream; it is left out (and logged)
/// rather than sent as a line the receivers would misread.
pub fn encode_inbox<'a>(grew: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for (user, last_seq) in grew {
        if user.is_empty() || user.chars().any(char::is_whitespace) {
            tracing::error!(user, "user id unfit for an inbox notification; not sent");
            continue;
        }
        let line_len = 20 + 1 + user.len() + 1;
        if !current.is_empty() && current.len() + line_len > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        let _ = writeln!(current, "{last_seq} {user}");
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// The `(user, last_seq)` pairs of an [`INBOX`] payload.
pub fn decode_inbox(payload: &str) -> Result<Vec<(String, u64)>, WireError> {
    payload
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let bad = || WireError {
                channel: INBOX,
                line: line.chars().take(100).collect(),
            };
            let (seq, user) = line.split_once(' ').ok_or_else(bad)?;
            let seq = seq.parse().map_err(|_| bad())?;
            if user.is_empty() || user.contains(' ') {
                return Err(bad());
            }
            Ok((user.to_owned(), seq))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_round_trip() {
        let grew = [("alice", 1), ("bob", u64::MAX), ("A-b_c=d+e", 42)];
        let payloads = encode_inbox(grew);
        assert_eq!(
            payloads,
            vec!["1 alice\n18446744073709551615 bob\n42 A-b_c=d+e\n"]
        );
        let back = decode_inbox(&payloads[0]).unwrap();
        let want: Vec<(String, u64)> = grew.iter().map(|(u, s)| ((*u).to_owned(), *s)).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn a_big_fan_out_splits_under_the_limit_and_loses_nobody() {
        let users: Vec<String> = (0..2_000).map(|i| format!("{i:0>64}")).collect();
        let payloads = encode_inbox(users.iter().map(|u| (u.as_str(), 7)));
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= MAX_PAYLOAD));
        let back: Vec<String> = payloads
            .iter()
            .flat_map(|p| decode_inbox(p).unwrap())
            .map(|(u, seq)| {
                assert_eq!(seq, 7);
                u
            })
            .collect();
        assert_eq!(back, users);
    }

    #[test]
    fn unfit_ids_are_left_out_and_bad_lines_refused() {
        assert_eq!(
            encode_inbox([("a b", 1), ("", 2), ("ok", 3)]),
            vec!["3 ok\n"]
        );
        assert!(encode_inbox([]).is_empty());
        for bad in ["x alice", "1", "1 ", "-1 bob", "1 a b"] {
            assert!(decode_inbox(bad).is_err(), "{bad:?}");
        }
        assert_eq!(decode_inbox("").unwrap(), vec![]);
    }
}
