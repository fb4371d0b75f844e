//! [`Events`]: one app's stream of the daemon's events, lossless for messages.
//!
//! The reader task puts every event it passes on into one bounded broadcast
//! buffer ([`EVENT_BACKLOG`](crate::client) items per stream), so a slow stream never
//! slows the reader or the other streams. Each stream keeps its own *position*: the
//! id of the last message it yielded. It never yields a message at or below its
//! position, so a replay overlapping what it already has is invisible.
//!
//! When a stream falls so far behind that the buffer overwrote events it had not
//! read, it yields `Err(`[`Lagged`]`)` (the app should know) and then **recovers the
//! messages**: it records its position as a *floor* and has the client send
//! `Subscribe { since_seq: position }` to the daemon, which replays every stored
//! message after it from its database. Until the answer to a `Subscribe` from at or
//! below its floor comes by (a [`ItemKind::Resumed`] marker, in order with the
//! events), the stream drops the messages left in the buffer (they come again in
//! the replay); after it, it yields the replay and then live messages, each once, in
//! order. Status changes are not replayed, but the daemon sends the current status
//! after every replay. The other streams see the replay too and skip it (they have
//! those messages); the reader only repeats messages that some replay window covers.
//!
//! An app's own [`Client::subscribe`](crate::Client::subscribe) moves every stream
//! that is behind its `since_seq` to it: such a stream drops the messages still in
//! its buffer that the replay will bring again, so it yields them once, in order.

use crate::client::Routes;
use futures_util::Stream;
use rcim_proto::ipc::Event;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::broadcast;

/// What the reader broadcasts to every [`Events`] stream.
#[derive(Clone, Debug)]
pub(crate) struct Item {
    /// How many app subscribes had been answered when this was sent.
    pub(crate) explicit: u64,
    /// The event, or a marker.
    pub(crate) kind: ItemKind,
}

/// An event, or the start of a replay.
#[derive(Clone, Debug)]
pub(crate) enum ItemKind {
    /// An event from the daemon (or synthesized by the library on a re-attach).
    Event(Event),
    /// A `Subscribe` was answered: every message above `since` follows, replay
    /// first (`i64::MAX`: refused, nothing follows).
    Resumed {
        /// The `since_seq` of that `Subscribe`.
        since: i64,
    },
}

type Inner = Pin<Box<dyn Stream<Item = Result<Item, u64>> + Send>>;

/// The stream returned by [`Client::events`](crate::Client::events): the daemon's
/// events from the moment it was made, `Err(`[`Lagged`]`)` when it fell behind.
///
/// Messages are never lost, repeated or reordered, even after a [`Lagged`] (the
/// stream has the daemon replay what it skipped) or a re-attach: each
/// `MessageReceived` has a larger `message.id` than the one before it.
/// [`Events::last_message_id`] is the stream's position.
///
/// ```no_run
/// use futures_util::StreamExt;
/// use rcim_client::{Client, ClientOptions, Event};
/// # async fn run() -> Result<(), rcim_client::ClientError> {
/// let client = Client::attach(ClientOptions::named("my-app")).await?;
/// let mut events = client.events();
/// while let Some(item) = events.next().await {
///     match item {
///         Ok(Event::MessageReceived { message, .. }) => println!("message {}", message.id),
///         Ok(other) => println!("{other:?}"),
///         Err(lagged) => println!("{lagged}; the messages are replayed"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Events {
    inner: Inner,
    /// `None` for a stream that ended before it began.
    routes: Option<Arc<Routes>>,
    /// This stream's number, for its floor.
    id: u64,
    /// The last message id yielded, or skipped to by a subscribe.
    position: Option<i64>,
    /// App subscribes this stream has applied (ordinals up to this).
    explicit_seen: u64,
    /// After a lag: the floor a replay must start at or below.
    resync: Option<i64>,
}

impl Events {
    /// A stream over `rx`, positioned where the client is now; `None` gives a stream
    /// that has already ended.
    pub(crate) fn new(rx: Option<(broadcast::Receiver<Item>, Arc<Routes>)>) -> Self {
        let Some((rx, routes)) = rx else {
            return Self {
                inner: Box::pin(futures_util::stream::empty()),
                routes: None,
                id: 0,
                position: None,
                explicit_seen: 0,
                resync: None,
            };
        };
        let (id, position, explicit_seen) = routes.stream_start();
        let inner = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(item) => Some((Ok(item), rx)),
                Err(broadcast::error::RecvError::Lagged(missed)) => Some((Err(missed), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Self {
            inner: Box::pin(inner),
            routes: Some(routes),
            id,
            position,
            explicit_seen,
            resync: None,
        }
    }

    /// The stream's position: the id (the daemon's sequence number) of the last
    /// `MessageReceived` it yielded, or the point it started from (where the client
    /// was when the stream was made) or was moved to by
    /// [`Client::subscribe`](crate::Client::subscribe). `None` before any.
    ///
    /// Messages with ids above it are still to come; pass it to
    /// [`Client::subscribe`](crate::Client::subscribe) in a later run of the app to
    /// resume where this one stopped.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), rcim_client::ClientError> {
    /// let client = rcim_client::Client::attach(rcim_client::ClientOptions::default()).await?;
    /// let events = client.events();
    /// if let Some(seq) = events.last_message_id() {
    ///     std::fs::write("last-seq", seq.to_string()).ok();
    /// }
    /// # Ok(()) }
    /// ```
    pub fn last_message_id(&self) -> Option<i64> {
        self.position
    }

    /// Applies the app subscribes answered before an item with tag `answered`.
    fn catch_up(&mut self, answered: u64) {
        if answered <= self.explicit_seen {
            return;
        }
        if let Some(routes) = &self.routes {
            for since in routes.explicit_sinces(self.explicit_seen, answered) {
                if since != i64::MIN {
                    self.position = self.position.max(Some(since));
                }
            }
        }
        self.explicit_seen = answered;
    }

    /// What to yield for `item`, if anything.
    fn filter(&mut self, item: Item) -> Option<Event> {
        self.catch_up(item.explicit);
        match item.kind {
            ItemKind::Resumed { since } => {
                if let Some(floor) = self.resync
                    && since <= floor
                {
                    self.resync = None;
                    if let Some(routes) = &self.routes {
                        routes.resynced(self.id);
                    }
                }
                None
            }
            ItemKind::Event(Event::MessageReceived {
                message,
                left,
                offline,
                has_package,
            }) => {
                if self.resync.is_some()
                    || self.position.is_some_and(|p| message.id <= p)
                    || self.routes.as_ref().is_some_and(|r| {
                        r.subscribe_ahead(item.explicit.max(self.explicit_seen), self.position)
                    })
                {
                    return None;
                }
                self.position = Some(message.id);
                Some(Event::MessageReceived {
                    message,
                    left,
                    offline,
                    has_package,
                })
            }
            ItemKind::Event(event) => Some(event),
        }
    }

    /// The buffer overwrote events: have the daemon replay the messages from here.
    fn lagged(&mut self) {
        let Some(routes) = &self.routes else { return };
        let floor = self
            .position
            .or_else(|| routes.first_message().map(|first| first - 1));
        // No message was ever passed on: only status events were lost.
        if let Some(floor) = floor {
            self.resync = Some(floor);
            routes.resubscribe(self.id, floor);
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(routes) = &self.routes {
            routes.resynced(self.id);
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("last_message_id", &self.position)
            .field("resyncing", &self.resync.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Result<Event, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(missed))) => {
                    this.lagged();
                    return Poll::Ready(Some(Err(Lagged { missed })));
                }
                Poll::Ready(Some(Ok(item))) => {
                    if let Some(event) = this.filter(item) {
                        return Poll::Ready(Some(Ok(event)));
                    }
                }
            }
        }
    }
}

/// An [`Events`] stream fell behind its buffer and skipped `missed` events.
///
/// No message is lost: the stream has the daemon replay every message after the
/// last one it yielded, and yields them next, in order, each once. Status changes
/// in between are not replayed, but the daemon sends the current status after the
/// replay (and [`Client::link_state`](crate::Client::link_state) is always
/// current).
///
/// ```
/// let lagged = rcim_client::Lagged { missed: 3 };
/// assert_eq!(lagged.to_string(), "the event stream fell behind and skipped 3 events");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event stream fell behind and skipped {missed} events")]
pub struct Lagged {
    /// How many events were skipped (messages among them are replayed).
    pub missed: u64,
}
