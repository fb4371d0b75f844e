//! [`Events`]: one app's stream of the daemon's events, lossless for messages.
//!
//! The route table ([`crate::route`]) owns one bounded broadcast buffer
//! ([`EVENT_BACKLOG`](crate::route::EVENT_BACKLOG) items per stream) and puts every
//! event the reader passes on into it; this module only reads it (and depends on
//! nothing else of the client), so a slow stream never slows the reader, the other
//! streams, or the answers to requests. Each stream
//! keeps its own *position*: the id of the last message it yielded. It never yields
//! a message at or below its position, so a replay overlapping what it already has
//! is invisible.
//!
//! When a stream falls so far behind that the buffer overwrote events it had not
//! read, it yields `Err(`[`Lagged`]`)` (the app should know) and then **pages the
//! messages it skipped from the daemon's database** with `MessagesAfter` requests,
//! one page ahead of what it yields, at the pace the app reads it: a stream that is
//! slow for good reads pages of stored messages instead of lagging again and again.
//! On the lag the stream empties its buffer (keeping the few events the database
//! cannot give again, such as `OfflineSyncCompleted`), so the buffer then takes only
//! newer events. When a page comes back empty the stream has every stored message;
//! it yields the current connection status (status changes are not stored), the
//! events it kept, and reads its buffer again, where everything newer than the
//! pages is (the daemon stores a message before it publishes it, and the buffer
//! took events all along; if it overflowed again meanwhile, the stream lags and
//! pages again). Status events in the buffer older than the status it yielded are
//! skipped.
//!
//! An app's own [`Client::subscribe`](crate::Client::subscribe) moves every stream
//! that is behind its `since_seq` to it: such a stream drops the messages still in
//! its buffer that the replay will bring again, so it yields them once, in order.

use crate::route::{Item, Pull, Routes};
use futures_util::Stream;
use rcim_proto::ipc::{Event, Reply};
use rcim_proto::message::Message;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::broadcast;

/// Messages per `MessagesAfter` page while a stream catches up.
const PAGE: u32 = 500;

/// The longest wait between two tries of a page that failed (no daemon connection
/// while the client re-attaches, or a database error).
const RETRY_CAP: Duration = Duration::from_secs(1);

/// What the buffer holds for a stream that fell behind.
struct Skipped {
    /// How many items were overwritten.
    missed: u64,
    /// The events still in the buffer that the stream yields after catching up
    /// (`OfflineSyncCompleted`, the daemon's `Lagged`). Messages come from the
    /// database and the current status replaces older ones, so both are dropped.
    kept: Vec<Event>,
}

type Inner = Pin<Box<dyn Stream<Item = Result<Item, Skipped>> + Send>>;

/// A page of stored messages on its way; `None` when the session ended.
type PageFuture = Pin<Box<dyn Future<Output = Option<Vec<Message>>> + Send>>;

/// The stream returned by [`Client::events`](crate::Client::events): the daemon's
/// events from the moment it was made, `Err(`[`Lagged`]`)` when it fell behind.
///
/// Messages are never lost, repeated or reordered, even after a [`Lagged`] (the
/// stream pages what it skipped from the daemon's database) or a re-attach: each
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
///         Err(lagged) => println!("{lagged}; the messages follow from the database"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Events {
    inner: Inner,
    /// `None` for a stream that ended before it began.
    routes: Option<Arc<Routes>>,
    /// The last message id yielded, or skipped to by a subscribe.
    position: Option<i64>,
    /// App subscribes this stream has applied (ordinals up to this).
    explicit_seen: u64,
    /// Catching up after a lag: pages the stream has and the one on its way.
    catch_up: Option<CatchUp>,
    /// Status events up to this item number are older than a status the stream
    /// yielded when it caught up: it skips them.
    stale_status: u64,
    /// Events to yield before reading the buffer again.
    pending: VecDeque<Event>,
}

/// The event itself when this stream holds the last reference, else a copy.
fn owned(event: Arc<Event>) -> Event {
    Arc::try_unwrap(event).unwrap_or_else(|shared| (*shared).clone())
}

/// Empties the buffer of a stream that fell behind, so that it takes only newer
/// events while it pages: keeps the events the database cannot give again.
fn drain(rx: &mut broadcast::Receiver<Item>) -> Vec<Event> {
    let mut kept = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(Item { event, .. }) => match &*event {
                Event::MessageReceived { .. } | Event::StatusChanged(_) => {}
                Event::OfflineSyncCompleted
                | Event::Lagged { .. }
                | Event::MessageRecalled { .. }
                | Event::ReadReceipt { .. }
                | Event::ConversationReadSynced { .. }
                | Event::TypingStatus { .. }
                | Event::StatusMessageReceived { .. } => kept.push(owned(event)),
            },
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return kept,
        }
    }
}

/// A lagged stream's paging state.
struct CatchUp {
    /// Messages of the last page, not yet yielded.
    page: VecDeque<Message>,
    /// The next page, when asked for; `None` once a page came back empty.
    next: Option<PageFuture>,
    /// Events to yield once caught up, after the current status.
    kept: Vec<Event>,
}

impl Events {
    /// A stream over `rx`, positioned where the client is now; `None` gives a stream
    /// that has already ended.
    pub(crate) fn new(rx: Option<(broadcast::Receiver<Item>, Arc<Routes>)>) -> Self {
        let Some((rx, routes)) = rx else {
            return Self {
                inner: Box::pin(futures_util::stream::empty()),
                routes: None,
                position: None,
                explicit_seen: 0,
                catch_up: None,
                stale_status: 0,
                pending: VecDeque::new(),
            };
        };
        let (position, explicit_seen) = routes.stream_start();
        let inner = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(item) => Some((Ok(item), rx)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let kept = drain(&mut rx);
                    Some((Err(Skipped { missed, kept }), rx))
                }
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        Self {
            inner: Box::pin(inner),
            routes: Some(routes),
            position,
            explicit_seen,
            catch_up: None,
            stale_status: 0,
            pending: VecDeque::new(),
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
    fn apply_subscribes(&mut self, answered: u64) {
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

    /// Yields `message` unless the stream has it already.
    fn accept(&mut self, message: &Message) -> bool {
        if self.position.is_some_and(|p| message.id <= p) {
            return false;
        }
        self.position = Some(message.id);
        true
    }

    /// What to yield for `item`, if anything.
    fn filter(&mut self, item: Item) -> Option<Event> {
        self.apply_subscribes(item.explicit);
        match &*item.event {
            Event::MessageReceived { message, .. } => {
                let moved_on = self.routes.as_ref().is_some_and(|r| {
                    r.subscribe_ahead(item.explicit.max(self.explicit_seen), self.position)
                });
                if moved_on || !self.accept(message) {
                    return None;
                }
            }
            Event::StatusChanged(_) if item.number <= self.stale_status => return None,
            _ => {}
        }
        Some(owned(item.event))
    }

    /// The buffer overwrote events: page the skipped messages from the database.
    fn lagged(&mut self, kept: Vec<Event>) {
        let Some(routes) = &self.routes else { return };
        // No message was ever passed on: nothing to page.
        let next = (self.position.is_some() || routes.first_message().is_some())
            .then(|| self.fetch(self.floor()));
        self.catch_up = Some(CatchUp {
            page: VecDeque::new(),
            next,
            kept,
        });
    }

    /// Where paging resumes: the position, or just before the first message the
    /// client ever passed on.
    fn floor(&self) -> i64 {
        self.position
            .or_else(|| {
                self.routes
                    .as_ref()
                    .and_then(|r| r.first_message())
                    .map(|first| first - 1)
            })
            .unwrap_or(0)
    }

    /// Asks for the page after `since`, retrying while the client re-attaches or the
    /// daemon cannot read its database.
    fn fetch(&self, since: i64) -> PageFuture {
        let routes = self.routes.clone();
        Box::pin(async move {
            let routes = routes?;
            let mut wait = Duration::from_millis(50);
            loop {
                match routes.messages_after(since, PAGE) {
                    Pull::Ended => return None,
                    Pull::Sent(rx) => match rx.await {
                        Ok(Reply::Messages(page)) => return Some(page),
                        Ok(other) => {
                            tracing::warn!(
                                ?other,
                                since,
                                "rcimd did not page the messages a lagged stream skipped; retrying"
                            );
                        }
                        // The connection went; the re-attach brings another.
                        Err(_) => {}
                    },
                    Pull::Detached => {}
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_CAP);
            }
        })
    }

    /// One step of catching up: `Some` to return, `None` when caught up.
    fn poll_catch_up(&mut self, cx: &mut Context<'_>) -> Option<Poll<Option<Event>>> {
        loop {
            let catch_up = self.catch_up.as_mut()?;
            if let Some(message) = catch_up.page.pop_front() {
                let answered = self.routes.as_ref().map_or(0, |r| r.explicit_answered());
                self.apply_subscribes(answered);
                if self.accept(&message) {
                    return Some(Poll::Ready(Some(Event::MessageReceived {
                        message,
                        left: 0,
                        offline: false,
                        has_package: false,
                    })));
                }
                continue;
            }
            let Some(next) = catch_up.next.as_mut() else {
                // The last page was empty: tell the app where the connection
                // stands (status changes are not stored), then what else was in the
                // buffer, then back to the buffer.
                let kept = std::mem::take(&mut catch_up.kept);
                self.catch_up = None;
                let (state, up_to) = self.routes.as_ref()?.link_state();
                self.stale_status = up_to;
                self.pending.extend(kept);
                return Some(Poll::Ready(Some(Event::StatusChanged(state))));
            };
            let page = match next.as_mut().poll(cx) {
                Poll::Pending => return Some(Poll::Pending),
                Poll::Ready(None) => return Some(Poll::Ready(None)),
                Poll::Ready(Some(page)) => page,
            };
            // Ask for the page after this one now, so it comes while the app reads
            // this one.
            let following = page.last().map(|m| m.id);
            catch_up.page = page.into();
            catch_up.next = None;
            if let Some(after) = following {
                let future = self.fetch(after);
                if let Some(catch_up) = self.catch_up.as_mut() {
                    catch_up.next = Some(future);
                }
            }
        }
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("last_message_id", &self.position)
            .field("catching_up", &self.catch_up.is_some())
            .finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Result<Event, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(step) = this.poll_catch_up(cx) {
                return step.map(|event| event.map(Ok));
            }
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(Skipped { missed, kept }))) => {
                    this.lagged(kept);
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
/// No message is lost: the stream pages every message after the last one it
/// yielded from the daemon's database, and yields them next, in order, each once.
/// Status changes in between are not stored, but the stream yields the current
/// status once it has caught up (and
/// [`Client::link_state`](crate::Client::link_state) is always current).
///
/// ```
/// let lagged = rcim_client::Lagged { missed: 3 };
/// assert_eq!(lagged.to_string(), "the event stream fell behind and skipped 3 events");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the event stream fell behind and skipped {missed} events")]
pub struct Lagged {
    /// How many events were skipped (messages among them follow from the database).
    pub missed: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The buffer lets go of an item once every receiver has read it, so the last
    /// reader takes the event without a copy (what [`owned`] relies on).
    #[tokio::test]
    async fn the_last_reader_holds_the_only_reference() {
        let (tx, mut first) = broadcast::channel(4);
        let mut second = tx.subscribe();
        let item = |n| Item {
            number: n,
            explicit: 0,
            event: Arc::new(Event::OfflineSyncCompleted),
        };
        tx.send(item(1)).unwrap();
        let a = first.recv().await.unwrap();
        assert_eq!(
            Arc::strong_count(&a.event),
            2,
            "the buffer keeps it for `second`"
        );
        let b = second.recv().await.unwrap();
        assert_eq!(
            Arc::strong_count(&b.event),
            2,
            "`a` and `b`: the buffer let go"
        );
        drop(a);
        assert_eq!(Arc::strong_count(&b.event), 1);
    }
}
