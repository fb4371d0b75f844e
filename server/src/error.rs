//! What a server operation can fail with: the one error type behind the Server API's
//! answers, the IM endpoint's PubAck codes and [`crate::RunningServer`]'s methods.
//!
//! Users, moderation, groups and messaging all check their arguments against RC's
//! rules and then touch the database, so they share [`Error`]: an
//! [`InvalidArgument`] (the Server API answers it with 400/1002 and its text, a
//! client `Publish` gets PubAck 33003), a refused message (too large, not a
//! member), or a database failure (500/1000 with the detail only in the log, or the
//! connection ended so that the client resends). Keeping one type means the mapping
//! onto answers exists once (`api`'s `From<Error>` and `Error::puback_code`).
//!
//! The texts of [`InvalidArgument`] reach HTTP answers (`errorMessage`), so each
//! variant spells out the field it is about and the rule it breaks; they are part
//! of the server's observable behaviour and tests compare them.

use crate::db::DbError;
use rcim_proto::RcCode;
use rcim_proto::message::{ConversationType, MAX_CONTENT_LEN};

/// Why a server operation (a Server API call, an IM client's publish or a
/// [`crate::RunningServer`] method) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument breaks RC's rules; the message names it and the rule. Fix the
    /// call.
    #[error(transparent)]
    InvalidArgument(#[from] InvalidArgument),
    /// The content of a message is larger than [`MAX_CONTENT_LEN`].
    #[error("the content is larger than {} KB", MAX_CONTENT_LEN / 1024)]
    TooLarge,
    /// An IM client sent to a group it is not a member of.
    #[error("the sender is not a member of the group")]
    NotInGroup,
    /// The database failed; the detail is for the server's log.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Error {
    /// The PubAck code for a client's refused publish; `None` for a database
    /// failure, which is not the client's fault (the connection is ended so that
    /// the client resends).
    pub(crate) fn puback_code(&self) -> Option<RcCode> {
        match self {
            Self::InvalidArgument(_) => Some(RcCode::INVALID_PARAMETER),
            Self::TooLarge => Some(RcCode::RC_MSG_SIZE_OUT_OF_LIMIT),
            Self::NotInGroup => Some(RcCode::NOT_IN_GROUP),
            Self::Db(_) => None,
        }
    }
}

/// An argument that breaks RC's rules (or rcim's), with the text the Server API
/// answers in `errorMessage`. `field` is the form field's name as RC spells it
/// (`userId`, `toGroupId`, `minute`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidArgument {
    /// A required field is missing or empty.
    #[error("{field} is required")]
    Required {
        /// The field.
        field: &'static str,
    },
    /// A text field is longer than RC allows.
    #[error("{field} is longer than {max} bytes")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The most bytes it may have.
        max: usize,
    },
    /// An id has characters other than letters, digits and `+ = - _`.
    #[error("{field} may contain only letters, digits and + = - _")]
    NotAnId {
        /// The field.
        field: &'static str,
    },
    /// A repeatable field is given more often than one call allows.
    #[error("at most {max} {field} values per call, got {got}")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The most values one call may have.
        max: usize,
        /// How many the call had.
        got: usize,
    },
    /// A number is outside its range.
    #[error("{field} must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The smallest value allowed.
        min: u64,
        /// The largest value allowed.
        max: u64,
        /// The value given.
        got: u64,
    },
    /// A number is above its maximum.
    #[error("{field} must be at most {max}")]
    AboveMax {
        /// The field.
        field: &'static str,
        /// The largest value allowed.
        max: u64,
    },
    /// A number is negative.
    #[error("{field} must not be negative")]
    Negative {
        /// The field.
        field: &'static str,
    },
    /// A message breaks the rules every sender shares
    /// ([`rcim_proto::message::check_outgoing`]); the text is that rule.
    #[error("{0}")]
    Message(String),
    /// An IM client tried to send a system message: those come only from the
    /// Server API.
    #[error("system messages can only be sent through the Server API")]
    SystemFromClient,
    /// An IM client's message id is empty or too long.
    #[error("the client message id must be 1 to {max} bytes")]
    ClientMsgId {
        /// The most bytes it may have.
        max: usize,
    },
    /// A back-end publish asked for a conversation type the Server API does not
    /// send (it sends private, system and group messages).
    #[error("{} messages cannot be sent through the Server API", .kind.name())]
    NotFromApi {
        /// The conversation type asked for.
        kind: ConversationType,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These texts are the Server API's `errorMessage`s; they must not drift.
    #[test]
    fn texts_name_the_field_and_the_rule() {
        for (error, text) in [
            (
                InvalidArgument::Required { field: "userId" },
                "userId is required",
            ),
            (
                InvalidArgument::TooLong {
                    field: "name",
                    max: 128,
                },
                "name is longer than 128 bytes",
            ),
            (
                InvalidArgument::NotAnId { field: "groupId" },
                "groupId may contain only letters, digits and + = - _",
            ),
            (
                InvalidArgument::TooMany {
                    field: "userId",
                    max: 20,
                    got: 21,
                },
                "at most 20 userId values per call, got 21",
            ),
            (
                InvalidArgument::OutOfRange {
                    field: "minute",
                    min: 1,
                    max: 43_200,
                    got: 0,
                },
                "minute must be between 1 and 43200, got 0",
            ),
            (
                InvalidArgument::AboveMax {
                    field: "count",
                    max: 1_000_000,
                },
                "count must be at most 1000000",
            ),
            (
                InvalidArgument::Negative { field: "time" },
                "time must not be negative",
            ),
            (
                InvalidArgument::NotFromApi {
                    kind: ConversationType::Chatroom,
                },
                "chatroom messages cannot be sent through the Server API",
            ),
        ] {
            assert_eq!(error.to_string(), text);
            assert_eq!(Error::from(error).to_string(), text);
        }
    }
}
