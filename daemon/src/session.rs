//! A session: one attached local client, from handshake to goodbye.
//!
//! The session reads the client's frames and answers them; a writer task owns the
//! write side and sends everything queued in one write (responses, callbacks and the
//! hub's events share one bounded queue). The handshake comes first and must arrive
//! within [`HELLO_TIMEOUT`]; a client speaking another protocol version is refused
//! with a message naming both. A malformed frame ends only this session.

use crate::Context;
use crate::hub::{ClientInfo, LagSignal, Outbound, OutboundRx, ReplayStep};
use crate::link::{Call, OutgoingStatus};
use crate::store::{Setting, StoreError, StoreHandle};
use bytes::Bytes;
use interprocess::local_socket::tokio::Stream;
use rcim_proto::frame::{FrameReader, MAX_IPC_FRAME, encode};
use rcim_proto::ipc::{
    CallbackFrame, ClientFrame, DaemonFrame, Event, Hello, Op, Refused, Reply, Request, Response,
    Welcome,
};
use rcim_proto::message::Message;
use rcim_proto::{FrameError, PROTOCOL_VERSION, RcCode};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// How long a client may take to send its Hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The most bytes the writer puts in one write.
const WRITE_BATCH: usize = 256 * 1024;

/// Messages read from the database per replay step.
const REPLAY_PAGE: u32 = 500;

/// Serves one client until it leaves, breaks the protocol, or the daemon stops.
pub async fn serve(
    stream: Stream,
    id: u64,
    pid: Option<i64>,
    ctx: Arc<Context>,
    shutdown: CancellationToken,
) {
    let stream = Arc::new(stream);
    let mut reader = FrameReader::new(&*stream, MAX_IPC_FRAME);

    let hello = match tokio::time::timeout(HELLO_TIMEOUT, reader.read::<ClientFrame>()).await {
        Ok(Ok(Some(ClientFrame::Hello(hello)))) => hello,
        Ok(Ok(Some(ClientFrame::Request(_)))) => {
            tracing::warn!("client #{id}: closing: the first frame must be Hello");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!("client #{id}: closing: bad handshake frame: {e}");
            return;
        }
        Err(_) => {
            tracing::warn!("client #{id}: closing: no Hello within {HELLO_TIMEOUT:?}");
            return;
        }
    };
    let info = ClientInfo {
        id,
        name: printable(&hello.client_name),
        pid,
    };
    if hello.protocol != PROTOCOL_VERSION {
        refuse(&stream, &info, &hello).await;
        return;
    }

    let (outbound, queue) = Outbound::channel();
    let drained = Arc::new(Notify::new());
    let stalled = CancellationToken::new();
    let writer = tokio::spawn(write_loop(
        Arc::clone(&stream),
        queue,
        Arc::clone(&drained),
        WriterWatch {
            info: info.clone(),
            stall: ctx.client_stall_timeout,
            stalled: stalled.clone(),
        },
    ));
    let lag = Arc::new(LagSignal::default());
    // Attach before taking the snapshot so no status change falls between them.
    ctx.hub
        .attach(info.clone(), outbound.clone(), Arc::clone(&lag));
    tracing::info!("{info} attached");
    let welcome = DaemonFrame::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        daemon_version: crate::VERSION.into(),
        status: ctx.snapshot(),
    });
    let mut session = Session {
        ctx: Arc::clone(&ctx),
        info: info.clone(),
        outbound,
        drained,
    };
    if session.send(&welcome).await {
        loop {
            let frame = tokio::select! {
                () = shutdown.cancelled() => break,
                () = stalled.cancelled() => break,
                resume_from = lag.lagged() => {
                    if !session.catch_up(resume_from).await {
                        break;
                    }
                    continue;
                }
                frame = reader.read::<ClientFrame>() => frame,
            };
            match frame {
                Ok(Some(ClientFrame::Request(request))) => {
                    if !session.handle(request).await {
                        break;
                    }
                }
                Ok(Some(ClientFrame::Hello(_))) => {
                    tracing::warn!("{info}: closing: Hello sent twice");
                    break;
                }
                Ok(None) => break,
                Err(FrameError::Io(e)) => {
                    tracing::debug!("{info}: connection lost: {e}");
                    break;
                }
                Err(e) => {
                    tracing::warn!("{info}: closing: {e}");
                    break;
                }
            }
        }
    }
    ctx.hub.detach(id);
    drop(session);
    // The writer ends once the hub and any callback forwarders drop their senders;
    // give it a moment to flush what is queued, no more.
    let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    tracing::info!("{info} detached");
}

struct Session {
    ctx: Arc<Context>,
    info: ClientInfo,
    outbound: Outbound,
    /// Notified by the writer whenever the queue is empty.
    drained: Arc<Notify>,
}

impl Session {
    /// Queues a frame for the client; false when the client is gone.
    async fn send(&self, frame: &DaemonFrame) -> bool {
        queue_frame(&self.outbound, frame, &self.info).await
    }

    /// The hub marked this client lagged: once it has drained what was queued, tell
    /// it, replay what it missed and send the current status. False when the client
    /// is gone.
    async fn catch_up(&mut self, resume_from: i64) -> bool {
        // Wait for the queue to empty (the writer drops the client if it stalls).
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.outbound.is_empty() {
                break;
            }
            if tokio::time::timeout(self.ctx.client_stall_timeout, drained)
                .await
                .is_err()
            {
                return false;
            }
        }
        tracing::info!(
            "{}: caught up after message {resume_from}; replaying",
            self.info
        );
        let lagged = DaemonFrame::Event(Event::Lagged { resume_from });
        self.send(&lagged).await && self.replay(resume_from).await
    }

    /// Replays every received message after `since` from the database, then lets
    /// the hub turn the client live (see the hub's docs for why the seam is exact),
    /// then sends the current status.
    ///
    /// The database is read until it has nothing newer *before* the hub is asked:
    /// the hub only knows what this rcimd process published, while the database
    /// also holds what an earlier process stored.
    async fn replay(&mut self, since: i64) -> bool {
        let mut reached = since;
        loop {
            if let Some(store) = self.ctx.link.store() {
                loop {
                    let from = reached;
                    let page = store.messages_after(from, REPLAY_PAGE).await;
                    let page = match page {
                        Ok(page) => page,
                        Err(e) => {
                            tracing::error!("{}: replay failed: {e}", self.info);
                            return false;
                        }
                    };
                    let Some(last) = page.last().map(|m| m.id) else {
                        break;
                    };
                    for message in page {
                        let event = Event::MessageReceived {
                            message,
                            left: 0,
                            offline: false,
                            has_package: false,
                        };
                        if !self.send(&DaemonFrame::Event(event)).await {
                            return false;
                        }
                    }
                    reached = last;
                }
            }
            match self.ctx.hub.replay_step(self.info.id, reached).await {
                ReplayStep::Live => break,
                // Published after the last read: read the database again.
                ReplayStep::UpTo(_) => {}
            }
        }
        let status = Event::StatusChanged(self.ctx.link.report().state);
        self.send(&DaemonFrame::Event(status)).await
    }

    /// Answers a call with callbacks: the code now, the callbacks as they come.
    async fn answer_call(&self, id: u64, mut call: Call) -> bool {
        let reply = Reply::Code(call.code.0);
        if !self
            .send(&DaemonFrame::Response(Response { id, reply }))
            .await
        {
            return false;
        }
        // The callbacks already told (a `connect` joining a live link has both)
        // are queued behind the response, so they usually leave in its write.
        loop {
            match call.callbacks.try_recv() {
                Ok(callback) => {
                    let frame = DaemonFrame::Callback(CallbackFrame { id, callback });
                    if !self.send(&frame).await {
                        return false;
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        // The others may come much later; forward them without holding up this
        // client's other requests. What is queued already goes first, so they
        // always follow the response.
        let outbound = self.outbound.clone();
        let info = self.info.clone();
        tokio::spawn(async move {
            while let Some(callback) = call.callbacks.recv().await {
                let frame = DaemonFrame::Callback(CallbackFrame { id, callback });
                if !queue_frame(&outbound, &frame, &info).await {
                    break;
                }
            }
        });
        true
    }

    /// Runs a read or update on the user's database; 33002 when none is open.
    async fn query<F, Fut>(&self, run: F) -> Reply
    where
        F: FnOnce(StoreHandle) -> Fut,
        Fut: Future<Output = Result<Reply, StoreError>>,
    {
        let Some(store) = self.ctx.link.store() else {
            return Reply::Code(RcCode::DATABASE_ERROR.0);
        };
        match run(store).await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::error!("{}: a database query failed: {e}", self.info);
                Reply::Code(RcCode::DATABASE_ERROR.0)
            }
        }
    }

    /// Answers one request; false when the session should end.
    async fn handle(&mut self, request: Request) -> bool {
        let Request { id, op } = request;
        // The contract, once for every request: a refused argument is answered
        // 33003 here, before anything acts on it (and no callback follows).
        if let Err(why) = op.check() {
            tracing::info!("{}: request refused: {why}", self.info);
            let reply = Reply::Code(RcCode::INVALID_PARAMETER.0);
            return self
                .send(&DaemonFrame::Response(Response { id, reply }))
                .await;
        }
        match op {
            Op::Status => {
                let reply = Reply::Status(self.ctx.snapshot());
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::Connect {
                token,
                timeout_secs,
            } => {
                let call = self.ctx.link.connect(token, timeout_secs).await;
                self.answer_call(id, call).await
            }
            Op::SendMessage {
                conversation,
                object_name,
                content,
            } => {
                let call = self
                    .ctx
                    .link
                    .send_message(conversation, object_name, content)
                    .await;
                self.answer_call(id, call).await
            }
            Op::GetMessages {
                conversation,
                sent_time_ms,
                order,
                count,
            } => {
                let reply = self
                    .query(|store| async move {
                        let page = store
                            .messages(conversation, sent_time_ms, order, count)
                            .await?;
                        Ok(Reply::Messages(page))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::GetConversations {
                types,
                start_time_ms,
                count,
            } => {
                let reply = self
                    .query(|store| async move {
                        let page = store.conversations(types, start_time_ms, count).await?;
                        Ok(Reply::Conversations(page))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::ClearUnreadCount {
                conversation,
                timestamp_ms,
            } => {
                let reply = self
                    .query(|store| async move {
                        store.clear_unread(conversation, timestamp_ms).await?;
                        Ok(Reply::Code(0))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::Disconnect { receive_push } => {
                tracing::info!("{} asked to disconnect", self.info);
                let code = self.ctx.link.disconnect(receive_push, false).await;
                let reply = Reply::Code(code.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::Subscribe { since_seq } => {
                // Acknowledged: live events queued before this point go out before
                // the answer, none after it until the replay is done.
                self.ctx.hub.withhold(self.info.id).await;
                let reply = Reply::Code(0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
                    && self.replay(since_seq.max(0)).await
            }
            Op::MessagesAfter { since_seq, limit } => {
                let reply = self
                    .query(|store| async move {
                        let page = store.messages_after(since_seq.max(0), limit).await?;
                        Ok(Reply::Messages(fit_in_frame(page)))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::Clients => {
                let reply = Reply::Clients(self.ctx.hub.clients_list().await);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::RecallMessage { uid } => {
                let code = self.ctx.link.recall(uid).await;
                let reply = Reply::Code(code.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::GetRemoteHistory {
                conversation,
                before_time_ms,
                count,
            } => {
                let page = self
                    .ctx
                    .link
                    .remote_history(conversation, before_time_ms, count)
                    .await;
                let reply = match page {
                    Ok(page) => Reply::Messages(fit_in_frame(page)),
                    Err(code) => Reply::Code(code.0),
                };
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::SearchMessages(query) => {
                let reply = self
                    .query(|store| async move {
                        let found = store.search(query).await?;
                        Ok(Reply::Messages(fit_in_frame(found)))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::GetUnreadCount { conversation } => {
                let reply = self
                    .query(|store| async move {
                        Ok(Reply::Count(store.unread_count(conversation).await?))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::GetTotalUnreadCount => {
                let reply = self
                    .query(|store| async move {
                        Ok(Reply::Count(store.unread_total(Vec::new()).await?))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::GetUnreadCountByTypes { types } => {
                let reply = self
                    .query(
                        |store| async move { Ok(Reply::Count(store.unread_total(types).await?)) },
                    )
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::MarkRead {
                conversation,
                up_to_time_ms,
            } => {
                let code = self.ctx.link.mark_read(conversation, up_to_time_ms).await;
                let reply = Reply::Code(code.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::SendTypingStatus {
                conversation,
                content_type,
            } => {
                let status = OutgoingStatus::Typing {
                    conversation,
                    content_type,
                };
                let reply = Reply::Code(self.ctx.link.send_status(status).await.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::SendStatusMessage {
                conversation,
                object_name,
                content,
            } => {
                let status = OutgoingStatus::Other {
                    conversation,
                    object_name,
                    content,
                };
                let reply = Reply::Code(self.ctx.link.send_status(status).await.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::SetConversationTop { conversation, top } => {
                let reply = self
                    .query(|store| async move {
                        store.set_setting(conversation, Setting::Top(top)).await?;
                        Ok(Reply::Code(0))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::SaveDraft {
                conversation,
                draft,
            } => {
                let reply = self
                    .query(|store| async move {
                        store
                            .set_setting(conversation, Setting::Draft(draft))
                            .await?;
                        Ok(Reply::Code(0))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::GetDraft { conversation } => {
                let reply = self
                    .query(
                        |store| async move { Ok(Reply::Draft(store.draft(conversation).await?)) },
                    )
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::SetNotificationLevel {
                conversation,
                level,
            } => {
                let code = self
                    .ctx
                    .link
                    .set_notification_level(conversation, level)
                    .await;
                let reply = Reply::Code(code.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::RemoveConversation { conversation } => {
                let reply = self
                    .query(|store| async move {
                        store.remove_conversation(conversation).await?;
                        Ok(Reply::Code(0))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::DeleteMessages { ids } => {
                let reply = self
                    .query(
                        |store| async move { Ok(Reply::Count(store.delete_messages(ids).await?)) },
                    )
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::DeleteMessagesBefore {
                conversation,
                before_ms,
            } => {
                let reply = self
                    .query(|store| async move {
                        let deleted = store
                            .delete_messages_before(conversation, before_ms)
                            .await?;
                        Ok(Reply::Count(deleted))
                    })
                    .await;
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
            Op::Logout => {
                tracing::info!("{} asked to log out", self.info);
                let code = self.ctx.link.disconnect(false, true).await;
                let reply = Reply::Code(code.0);
                self.send(&DaemonFrame::Response(Response { id, reply }))
                    .await
            }
        }
    }
}

/// The longest prefix of `page` whose reply surely fits in one frame (at least one
/// message: a message the hub could publish always fits alone).
fn fit_in_frame(mut page: Vec<Message>) -> Vec<Message> {
    // Strings are encoded as a varint length and the bytes; the integers and tags of
    // a message take well under 128 bytes.
    const BUDGET: usize = MAX_IPC_FRAME as usize * 3 / 4;
    let mut total = 0usize;
    let fits = page
        .iter()
        .take_while(|m| {
            total += 128
                + m.uid.as_ref().map_or(0, String::len)
                + m.conversation.target_id.len()
                + m.sender.len()
                + m.object_name.len()
                + m.content.len()
                + m.client_msg_id.as_ref().map_or(0, String::len);
            total <= BUDGET
        })
        .count();
    page.truncate(fits.max(1));
    page
}

async fn queue_frame(outbound: &Outbound, frame: &DaemonFrame, info: &ClientInfo) -> bool {
    match encode(frame, MAX_IPC_FRAME) {
        Ok(bytes) => outbound.send(Bytes::from(bytes)).await,
        Err(e) => {
            tracing::error!("{info}: cannot encode a reply: {e}");
            false
        }
    }
}

async fn refuse(stream: &Stream, info: &ClientInfo, hello: &Hello) {
    let reason = format!(
        "rcimd speaks local protocol {PROTOCOL_VERSION} but {} speaks protocol {}; use an rcim-client built for protocol {PROTOCOL_VERSION}",
        info.name, hello.protocol
    );
    tracing::warn!("{info}: refused: {reason}");
    let frame = DaemonFrame::Refused(Refused {
        protocol: PROTOCOL_VERSION,
        reason,
    });
    if let Ok(bytes) = encode(&frame, MAX_IPC_FRAME) {
        let mut writer = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let _ = writer.write_all(&bytes).await;
            let _ = writer.flush().await;
        })
        .await;
    }
}

/// What the writer needs to drop a client that stopped reading.
struct WriterWatch {
    info: ClientInfo,
    stall: Duration,
    stalled: CancellationToken,
}

/// Owns the write side: takes everything queued and writes it in one call, because
/// system calls, not bytes, are what limits fan-out. A client that does not take a
/// write within the stall limit is dropped.
async fn write_loop(
    stream: Arc<Stream>,
    mut queue: OutboundRx,
    drained: Arc<Notify>,
    watch: WriterWatch,
) {
    let mut writer = &*stream;
    let mut batch = Vec::new();
    while let Some(first) = queue.recv().await {
        // A lone item (the usual case: the hub queues a committed batch as one
        // item) is written as it is; several are gathered into one write.
        let bytes: &[u8] = match queue.try_recv() {
            None => &first,
            Some(second) => {
                batch.extend_from_slice(&first);
                batch.extend_from_slice(&second);
                while batch.len() < WRITE_BATCH {
                    match queue.try_recv() {
                        Some(more) => batch.extend_from_slice(&more),
                        None => break,
                    }
                }
                &batch
            }
        };
        let written = bytes.len();
        match tokio::time::timeout(watch.stall, writer.write_all(bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                tracing::warn!(
                    "{}: dropped: it has not read anything for {:?}",
                    watch.info,
                    watch.stall
                );
                watch.stalled.cancel();
                break;
            }
        }
        queue.written(written);
        batch.clear();
        if queue.is_empty() {
            drained.notify_one();
        }
    }
}

/// A client-chosen name, made safe for one log line.
fn printable(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
    if name.is_empty() {
        "unnamed".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcim_proto::message::{ConversationKey, Direction, SentStatus};

    fn message(id: i64, content_len: usize) -> Message {
        Message {
            id,
            uid: Some("0190a0b0-c0d0-7000-8000-000000000000".into()),
            conversation: ConversationKey::private("bob"),
            sender: "bob".into(),
            object_name: "RC:TxtMsg".into(),
            content: "x".repeat(content_len),
            sent_time_ms: i64::MAX,
            received_time_ms: i64::MAX,
            direction: Direction::Receive,
            sent_status: SentStatus::Received,
            client_msg_id: None,
        }
    }

    /// The reply must fit in one frame, whatever the messages weigh.
    fn encoded_len(page: Vec<Message>) -> usize {
        let frame = DaemonFrame::Response(Response {
            id: u64::MAX,
            reply: Reply::Messages(page),
        });
        encode(&frame, MAX_IPC_FRAME)
            .expect("fits in a frame")
            .len()
    }

    #[test]
    fn a_page_is_cut_to_fit_in_one_frame() {
        let small: Vec<_> = (1..=1_000).map(|id| message(id, 200)).collect();
        assert_eq!(
            fit_in_frame(small.clone()).len(),
            1_000,
            "small ones all fit"
        );
        encoded_len(fit_in_frame(small));

        let big: Vec<_> = (1..=50).map(|id| message(id, 100_000)).collect();
        let fitted = fit_in_frame(big);
        assert_eq!(
            fitted.iter().map(|m| m.id).collect::<Vec<_>>(),
            (1..=7).collect::<Vec<_>>(),
            "a prefix, in order"
        );
        encoded_len(fitted);

        let huge = vec![message(1, 900_000), message(2, 10)];
        assert_eq!(fit_in_frame(huge).len(), 1, "at least one message");
        assert!(fit_in_frame(Vec::new()).is_empty());
    }
}
