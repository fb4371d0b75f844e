//! One IM connection, from CONNECT to close.
//!
//! This module owns the per-connection protocol: the handshake (the first frame must
//! be `Connect` before the handshake deadline, [`HANDSHAKE_TIMEOUT`] after the accept;
//! a TLS handshake, when there is one, spends from the same budget), then the
//! steady state: answer `Ping` with `Pong`; `Publish` with a `PubAck` (through
//! [`crate::messaging`]: 0 with the message's uid and time, the first ones again
//! for a resent client message id; 33003 bad argument or a system message, 30016
//! content over 128 KB, 22406 not a member of the group); `Sync` with a
//! `SyncBatch`, then live `Push`es, and record `Ack`s (see [`super::delivery`],
//! which owns the no-gap, no-duplicate seam; an ack beyond the user's inbox is a
//! protocol error). The connection ends on the client's `Disconnect`, on silence
//! longer than the heartbeat timeout, on a malformed frame or a second `Connect`,
//! on a [`Control`] message from the online registry (shutdown, a kick, a block),
//! or with SERVER_SHUTDOWN when the database fails mid-request (the client
//! reconnects and resends; publishes are idempotent). Framing is
//! [`rcim_proto::frame`]'s; this module only decides what to say.
//!
//! CONNECT checks, in order, each answered with its CONNACK code and a close:
//! wire version (1), app key (4), token shape, signature and app key (4), the
//! token's own expiry (10), the user's token cut-off from `token/expire` (10), a
//! block (9); a database failure during the checks is 3 (server unavailable, the
//! client retries). Otherwise the connection registers, every older connection of
//! the same user on the same platform is told `Disconnect { KICKED }`, and it gets
//! CONNACK 0.
//!
//! The task is generic over the byte stream so that unit tests (and
//! [`crate::RunningServer::serve_stream`]) can drive it through `tokio::io::duplex`
//! with paused time; the only off-task work, SQLite, goes through `spawn_blocking`,
//! which paused time waits for. Every way out goes through [`Conn::close`], which
//! shuts the write side and briefly drains the read side, so the peer receives the
//! last `ConnAck` or `Disconnect` instead of a reset.

use super::delivery::{AckOutcome, Delivery};
use crate::messaging;
use crate::recall;
use crate::registry::online::Control;
use crate::registry::status::StatusSubscription;
use crate::state::{Counters, Shared};
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::{FrameError, FrameReader, MAX_UPSTREAM_FRAME, write_frame};
use rcim_proto::message::{NOTIFICATION_LEVELS, check_outgoing};
use rcim_proto::time::now_ms;
use rcim_proto::upstream::{ClientMsg, ConnAck, Connect, PubAck, ServerMsg};
use rcim_proto::{RcCode, WIRE_VERSION};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

/// How long a new connection has, from the accept, to finish any TLS handshake and
/// send its `Connect`.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one frame write may take before the client is considered stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long closing waits for the peer's end of stream after our last frame.
const LINGER: Duration = Duration::from_millis(500);

/// How a connection ended (for the log).
enum End {
    /// The peer closed the stream.
    PeerClosed,
    /// The peer sent `Disconnect`.
    PeerDisconnect { keep_push: bool },
    /// No `Connect` within the handshake timeout.
    HandshakeTimeout,
    /// The server is shutting down before the handshake finished.
    ShutdownDuringHandshake,
    /// CONNECT refused with this code.
    Rejected(ConnAckCode),
    /// The server sent `Disconnect` with this reason.
    ServerDisconnect(DisconnectReason),
    /// Reading or writing failed.
    Failed(FrameError),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PeerClosed => f.write_str("the client closed the connection"),
            Self::PeerDisconnect { keep_push } => {
                write!(f, "the client sent DISCONNECT (keep_push {keep_push})")
            }
            Self::HandshakeTimeout => f.write_str("no CONNECT in time"),
            Self::ShutdownDuringHandshake => f.write_str("shutdown during the handshake"),
            Self::Rejected(code) => write!(f, "CONNECT refused with CONNACK {}", code.0),
            Self::ServerDisconnect(reason) => write!(f, "server DISCONNECT reason {}", reason.0),
            Self::Failed(e) => write!(f, "connection failed: {e}"),
        }
    }
}

/// The two halves of the stream.
struct Conn<S> {
    reader: FrameReader<ReadHalf<S>>,
    writer: WriteHalf<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Writes one frame, giving up after [`WRITE_TIMEOUT`].
    async fn send(&mut self, msg: &ServerMsg) -> Result<(), FrameError> {
        match timeout(
            WRITE_TIMEOUT,
            write_frame(&mut self.writer, msg, MAX_UPSTREAM_FRAME),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(FrameError::Io(std::io::ErrorKind::TimedOut.into())),
        }
    }

    /// Sends `Disconnect { reason }` (best effort) and reports it as the end.
    async fn disconnect(&mut self, reason: DisconnectReason) -> End {
        if let Err(e) = self.send(&ServerMsg::Disconnect { reason }).await {
            tracing::debug!(error = %e, "could not send DISCONNECT");
        }
        End::ServerDisconnect(reason)
    }

    /// Ends the stream politely: shut down our side, then read and discard what the
    /// peer still sends until it closes or [`LINGER`] passes.
    async fn close(mut self) {
        let _ = timeout(WRITE_TIMEOUT, self.writer.shutdown()).await;
        let _ = timeout(LINGER, async {
            while let Ok(Some(_)) = self.reader.read::<ClientMsg>().await {}
        })
        .await;
    }
}

/// Whether a read error means the client broke the protocol (rather than the stream
/// failing), which the server answers with `Disconnect { PROTOCOL_ERROR }`.
fn is_protocol_error(e: &FrameError) -> bool {
    matches!(
        e,
        FrameError::TooLarge { .. } | FrameError::Decode(_) | FrameError::TrailingBytes(_)
    )
}

/// Serves one connection until it ends, then closes it. The `Connect` must arrive
/// before `handshake_deadline`.
pub(crate) async fn run<S>(
    stream: S,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    handshake_deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (reader, writer) = tokio::io::split(stream);
    let mut conn = Conn {
        reader: FrameReader::new(reader, MAX_UPSTREAM_FRAME),
        writer,
    };
    let end = serve(&mut conn, &shared, &cancel, handshake_deadline).await;
    tracing::debug!(%end, "connection ended");
    conn.close().await;
}

/// The handshake, then the steady state. The registration (if any) is dropped when
/// this returns, so the connection is offline before the socket is closed.
async fn serve<S>(
    conn: &mut Conn<S>,
    shared: &Shared,
    cancel: &CancellationToken,
    handshake_deadline: Instant,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let first = tokio::select! {
        () = cancel.cancelled() => return End::ShutdownDuringHandshake,
        first = timeout_at(handshake_deadline, conn.reader.read::<ClientMsg>()) => first,
    };
    let connect = match first {
        Err(_elapsed) => return End::HandshakeTimeout,
        Ok(Ok(Some(ClientMsg::Connect(connect)))) => connect,
        Ok(Ok(Some(_))) => return conn.disconnect(DisconnectReason::PROTOCOL_ERROR).await,
        Ok(Ok(None)) => return End::PeerClosed,
        Ok(Err(e)) if is_protocol_error(&e) => {
            tracing::info!(error = %e, "malformed first frame");
            return conn.disconnect(DisconnectReason::PROTOCOL_ERROR).await;
        }
        Ok(Err(e)) => return End::Failed(e),
    };

    let server_time_ms = now_ms();
    let epoch = shared.block_epoch();
    let user_id = match check_connect(shared, &connect, server_time_ms).await {
        Ok(user_id) => user_id,
        Err(code) => return reject(conn, shared, code, server_time_ms).await,
    };

    // Register before answering, so that the user is online by the time the client
    // reads its CONNACK.
    let platform = connect.client_info.platform.as_str();
    let (registration, control, older) = shared.online.register(&user_id, platform);
    if shared.block_epoch() != epoch {
        // A block was written while this CONNECT was being checked, possibly after
        // the check read the database and before the blocker saw this connection
        // registered: look again.
        let code = match shared.db.access(&user_id).await {
            Ok(access) if access.is_blocked(now_ms()) => {
                tracing::info!(user = user_id.as_str(), "connection refused: user blocked");
                Some(ConnAckCode::USER_BLOCKED)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::error!(error = %e, "connection refused: database failed");
                Some(ConnAckCode::SERVER_UNAVAILABLE)
            }
        };
        if let Some(code) = code {
            drop(registration);
            return reject(conn, shared, code, server_time_ms).await;
        }
    }
    let _registration = registration;
    let kicked = older
        .iter()
        .filter(|h| h.send(Control::Disconnect(DisconnectReason::KICKED)))
        .count();
    if kicked > 0 {
        Counters::add(&shared.counters.kicks, kicked as u64);
        tracing::info!(
            user = user_id.as_str(),
            platform,
            kicked,
            "kicked older connection(s) of the same user and platform"
        );
    }
    Counters::bump(&shared.counters.connects_accepted);
    tracing::Span::current().record("user", user_id.as_str());
    tracing::info!(
        platform,
        sdk = connect.client_info.sdk.as_str(),
        device = connect.device_id.as_str(),
        "connection accepted"
    );
    // Subscribe to the inbox before the client can sync (see `delivery`).
    let delivery = Delivery::new(shared, &user_id);
    // Status messages reach this connection from here on, never before.
    let status = shared.status.subscribe(&user_id);
    let ack = ConnAck {
        code: ConnAckCode::ACCEPTED,
        user_id: Some(user_id.clone()),
        server_time_ms,
    };
    if let Err(e) = conn.send(&ServerMsg::ConnAck(ack)).await {
        return End::Failed(e);
    }
    // Shutdown broadcasts to registered connections after cancelling; one that
    // registered after the broadcast sees the cancellation here instead.
    if cancel.is_cancelled() {
        return conn.disconnect(DisconnectReason::SERVER_SHUTDOWN).await;
    }
    let mut session = Session {
        shared,
        user_id,
        delivery,
    };
    let end = session.steady(conn, control, status).await;
    session.delivery.write_ack(shared).await;
    end
}

/// Counts and answers a refused CONNECT.
async fn reject<S>(
    conn: &mut Conn<S>,
    shared: &Shared,
    code: ConnAckCode,
    server_time_ms: i64,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Counters::bump(&shared.counters.connects_rejected);
    let ack = ConnAck {
        code,
        user_id: None,
        server_time_ms,
    };
    if let Err(e) = conn.send(&ServerMsg::ConnAck(ack)).await {
        return End::Failed(e);
    }
    End::Rejected(code)
}

/// Decides the CONNACK code for `connect`: the user id when accepted. See the
/// module documentation for the order of the checks.
async fn check_connect(
    shared: &Shared,
    connect: &Connect,
    now_ms: i64,
) -> Result<String, ConnAckCode> {
    if connect.protocol != WIRE_VERSION {
        tracing::info!(
            protocol = connect.protocol,
            "connection refused: unsupported wire version"
        );
        return Err(ConnAckCode::UNACCEPTABLE_PROTOCOL_VERSION);
    }
    if connect.app_key != shared.app_key() {
        tracing::info!(
            app_key = connect.app_key.as_str(),
            "connection refused: unknown app key"
        );
        return Err(ConnAckCode::TOKEN_INCORRECT);
    }
    let claims = shared
        .tokens
        .verify(connect.token.expose(), now_ms)
        .map_err(|e| {
            tracing::info!(reason = %e, "connection refused: bad token");
            e.connack_code()
        })?;
    let user = claims.user_id.as_str();
    let access = shared.db.access(user).await.map_err(|e| {
        tracing::error!(user, error = %e, "connection refused: database failed");
        ConnAckCode::SERVER_UNAVAILABLE
    })?;
    if access.token_revoked(claims.issued_at_ms) {
        tracing::info!(
            user,
            "connection refused: token invalidated by token/expire"
        );
        return Err(ConnAckCode::TOKEN_EXPIRED);
    }
    if access.is_blocked(now_ms) {
        tracing::info!(user, "connection refused: user blocked");
        return Err(ConnAckCode::USER_BLOCKED);
    }
    Ok(claims.user_id)
}

/// An accepted connection's state.
struct Session<'a> {
    shared: &'a Shared,
    user_id: String,
    delivery: Delivery,
}

/// What to do after handling one client frame.
enum Next {
    /// Keep serving.
    Continue,
    /// The connection ends.
    End(End),
}

impl Session<'_> {
    /// The accepted connection's loop. Priorities, highest first: control messages
    /// (kick, block, shutdown), the heartbeat deadline, client frames, then inbox
    /// work (a signal, a chunk of pushes, writing acks), so a backlog being pushed
    /// never delays answering the client.
    async fn steady<S>(
        &mut self,
        conn: &mut Conn<S>,
        mut control: mpsc::Receiver<Control>,
        mut status: StatusSubscription,
    ) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let heartbeat_timeout = self.shared.heartbeat_timeout;
        let mut deadline = Instant::now() + heartbeat_timeout;
        loop {
            let waits_for_signal = self.delivery.waits_for_signal();
            let push_due = self.delivery.push_due();
            let ack_due = self.delivery.has_unwritten_ack();
            tokio::select! {
                biased;
                Some(Control::Disconnect(reason)) = control.recv() => {
                    return conn.disconnect(reason).await;
                }
                () = sleep_until(deadline) => {
                    return conn.disconnect(DisconnectReason::HEARTBEAT_TIMEOUT).await;
                }
                // `FrameReader::read` is cancel-safe, so losing the race loses no bytes.
                read = conn.reader.read::<ClientMsg>() => {
                    deadline = Instant::now() + heartbeat_timeout;
                    match read {
                        Ok(Some(msg)) => {
                            if let Next::End(end) = self.handle(conn, msg).await {
                                return end;
                            }
                        }
                        Ok(None) => return End::PeerClosed,
                        Err(e) if is_protocol_error(&e) => {
                            tracing::info!(error = %e, "malformed frame");
                            return conn.disconnect(DisconnectReason::PROTOCOL_ERROR).await;
                        }
                        Err(e) => return End::Failed(e),
                    }
                }
                Some(message) = status.next() => {
                    let message = Arc::unwrap_or_clone(message);
                    if let Err(e) = conn.send(&ServerMsg::Status(message)).await {
                        return End::Failed(e);
                    }
                }
                () = self.delivery.signalled(), if waits_for_signal => {}
                () = std::future::ready(()), if push_due => {
                    if let Next::End(end) = self.push(conn).await {
                        return end;
                    }
                }
                () = std::future::ready(()), if ack_due => {
                    self.delivery.write_ack(self.shared).await;
                }
            }
        }
    }

    /// Handles one client frame.
    async fn handle<S>(&mut self, conn: &mut Conn<S>, msg: ClientMsg) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let reply = match msg {
            ClientMsg::Ping => ServerMsg::Pong,
            ClientMsg::Disconnect { keep_push } => {
                return Next::End(End::PeerDisconnect { keep_push });
            }
            ClientMsg::Connect(_) => {
                tracing::info!("second CONNECT on one connection");
                return Next::End(conn.disconnect(DisconnectReason::PROTOCOL_ERROR).await);
            }
            ClientMsg::Publish(publish) => {
                let req_id = publish.req_id;
                match messaging::publish_from_client(self.shared, &self.user_id, publish).await {
                    Ok((uid, sent_time_ms)) => ServerMsg::PubAck(PubAck {
                        req_id,
                        code: RcCode::SUCCESS.0,
                        message_uid: Some(uid),
                        sent_time_ms,
                    }),
                    Err(e) => match e.puback_code() {
                        Some(code) => {
                            tracing::debug!(req_id, code = code.0, reason = %e, "publish refused");
                            ServerMsg::PubAck(PubAck {
                                req_id,
                                code: code.0,
                                message_uid: None,
                                sent_time_ms: now_ms(),
                            })
                        }
                        None => return Next::End(self.unavailable(conn, &e).await),
                    },
                }
            }
            ClientMsg::PublishStatus(status) => {
                // Never answered (a status message has no acknowledgement); a
                // refused one is only logged.
                match messaging::publish_status_from_client(self.shared, &self.user_id, status)
                    .await
                {
                    Ok(taken) => tracing::trace!(taken, "status message delivered"),
                    Err(e) => match e.puback_code() {
                        Some(_) => tracing::debug!(reason = %e, "status message refused"),
                        None => return Next::End(self.unavailable(conn, &e).await),
                    },
                }
                return Next::Continue;
            }
            ClientMsg::SetNotificationLevel {
                req_id,
                conversation,
                level,
            } => {
                let code = if NOTIFICATION_LEVELS.contains(&level)
                    && check_outgoing(&conversation, "RC:TxtMsg", "").is_ok()
                {
                    let kept = self
                        .shared
                        .db
                        .set_notification_level(&self.user_id, conversation, level)
                        .await;
                    if let Err(e) = kept {
                        return Next::End(self.unavailable(conn, &e).await);
                    }
                    RcCode::SUCCESS
                } else {
                    RcCode::INVALID_PARAMETER
                };
                ServerMsg::PubAck(PubAck {
                    req_id,
                    code: code.0,
                    message_uid: None,
                    sent_time_ms: now_ms(),
                })
            }
            ClientMsg::Sync { since_seq } => {
                match self.delivery.sync(self.shared, since_seq).await {
                    Ok(batch) => batch,
                    Err(e) => return Next::End(self.unavailable(conn, &e).await),
                }
            }
            ClientMsg::Recall {
                req_id,
                message_uid,
            } => {
                let recalled =
                    recall::recall(self.shared, &self.user_id, &message_uid, None, false, false)
                        .await;
                match recalled {
                    Ok(message) => ServerMsg::RecallAck {
                        req_id,
                        code: if message.is_some() {
                            RcCode::SUCCESS.0
                        } else {
                            RcCode::RC_RECALLMESSAGE_PARAMETER_INVALID.0
                        },
                        message,
                    },
                    Err(e) => return Next::End(self.unavailable(conn, &e).await),
                }
            }
            ClientMsg::History {
                req_id,
                conversation,
                before_time_ms,
                count,
            } => match self.history(conversation, before_time_ms, count).await {
                Ok((code, messages, has_more)) => ServerMsg::HistoryPage {
                    req_id,
                    code: code.0,
                    messages,
                    has_more,
                },
                Err(e) => return Next::End(self.unavailable(conn, &e).await),
            },
            ClientMsg::Ack { seq } => {
                return match self.delivery.ack(self.shared, seq).await {
                    Ok(AckOutcome::Recorded) => Next::Continue,
                    Ok(AckOutcome::BeyondInbox) => {
                        tracing::info!(seq, "ack beyond the last inbox sequence number");
                        Next::End(conn.disconnect(DisconnectReason::PROTOCOL_ERROR).await)
                    }
                    Err(e) => Next::End(self.unavailable(conn, &e).await),
                };
            }
        };
        match conn.send(&reply).await {
            Ok(()) => Next::Continue,
            Err(e) => Next::End(End::Failed(e)),
        }
    }

    /// Pushes the next chunk of inbox entries.
    async fn push<S>(&mut self, conn: &mut Conn<S>) -> Next
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let entries = match self.delivery.next_pushes(self.shared).await {
            Ok(entries) => entries,
            Err(e) => return Next::End(self.unavailable(conn, &e).await),
        };
        for entry in entries {
            if let Err(e) = conn.send(&ServerMsg::Push(entry)).await {
                return Next::End(End::Failed(e));
            }
        }
        Next::Continue
    }

    /// A page of remote history for this user: (code, messages, has more). The
    /// code is 33003 for a count outside 1..=100 or a conversation that cannot
    /// be read (chat rooms, ultra groups), 22406 for a group the user is not in.
    /// A page is cut short (with `has_more`) when it would not fit in one frame.
    async fn history(
        &self,
        conversation: rcim_proto::message::ConversationKey,
        before_ms: i64,
        count: u32,
    ) -> Result<(RcCode, Vec<rcim_proto::message::WireMessage>, bool), crate::db::DbError> {
        use rcim_proto::message::ConversationType;
        let readable = matches!(
            conversation.kind,
            ConversationType::Private | ConversationType::Group | ConversationType::System
        );
        if !(1..=rcim_proto::ipc::MAX_REMOTE_HISTORY).contains(&count)
            || !readable
            || crate::users::check_id("targetId", &conversation.target_id).is_err()
        {
            return Ok((RcCode::INVALID_PARAMETER, Vec::new(), false));
        }
        if conversation.kind == ConversationType::Group {
            let members = self
                .shared
                .db
                .group_members(&conversation.target_id)
                .await?;
            if !members.contains(&self.user_id) {
                return Ok((RcCode::NOT_IN_GROUP, Vec::new(), false));
            }
        }
        let page = self
            .shared
            .db
            .history(self.user_id.clone(), conversation, before_ms, count)
            .await?;
        let (mut messages, mut has_more) = (page.messages, page.has_more);
        let mut bytes = 0;
        if let Some(fit) = messages.iter().position(|m| {
            bytes += m.uid.len() + m.sender.len() + m.object_name.len() + m.content.len() + 64;
            bytes > super::delivery::BATCH_BYTES
        }) {
            messages.truncate(fit.max(1));
            has_more = true;
        }
        Ok((RcCode::SUCCESS, messages, has_more))
    }

    /// The database failed while serving the client: end the connection with
    /// SERVER_SHUTDOWN ("server unavailable"), so that the client reconnects,
    /// syncs and resends (publishes are idempotent).
    async fn unavailable<S>(&self, conn: &mut Conn<S>, e: &(dyn std::fmt::Display + Sync)) -> End
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        tracing::error!(error = %e, "the database failed; ending the connection");
        conn.disconnect(DisconnectReason::SERVER_SHUTDOWN).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::registry::online::OnlineRegistry;
    use crate::state::Counters;
    use crate::token::TokenIssuer;
    use rcim_proto::Token;
    use rcim_proto::upstream::ClientInfo;
    use tokio::io::DuplexStream;
    use zeroize::Zeroizing;

    struct Fixture {
        shared: Arc<Shared>,
        _dir: tempfile::TempDir,
    }

    fn fixture(heartbeat_timeout: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("server.db")).unwrap();
        let shared = Arc::new(Shared {
            tokens: TokenIssuer::new("key", "secret"),
            app_secret: Zeroizing::new("secret".into()),
            heartbeat_timeout,
            token_lifetime: Duration::ZERO,
            db,
            online: Arc::new(OnlineRegistry::new()),
            inbox: Default::default(),
            status: Default::default(),
            counters: Counters::default(),
            block_epoch: Default::default(),
            echo_user: Default::default(),
        });
        Fixture { shared, _dir: dir }
    }

    fn connect(token: Token) -> ClientMsg {
        ClientMsg::Connect(Connect {
            protocol: WIRE_VERSION,
            app_key: "key".into(),
            token,
            client_info: ClientInfo {
                platform: "desktop".into(),
                sdk: "test".into(),
                os: "linux".into(),
            },
            device_id: "dev-1".into(),
        })
    }

    async fn spawn(f: &Fixture) -> (FrameReader<ReadHalf<DuplexStream>>, WriteHalf<DuplexStream>) {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(run(
            server,
            Arc::clone(&f.shared),
            CancellationToken::new(),
            Instant::now() + HANDSHAKE_TIMEOUT,
        ));
        let (r, w) = tokio::io::split(client);
        (FrameReader::new(r, MAX_UPSTREAM_FRAME), w)
    }

    #[tokio::test(start_paused = true)]
    async fn silent_client_is_closed_after_the_handshake_timeout() {
        let f = fixture(Duration::from_secs(90));
        let (mut reader, _writer) = spawn(&f).await;
        let started = Instant::now();
        assert!(reader.read::<ServerMsg>().await.unwrap().is_none());
        let waited = started.elapsed();
        assert!(
            waited >= HANDSHAKE_TIMEOUT && waited < HANDSHAKE_TIMEOUT + Duration::from_secs(1),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeat_timeout_counts_from_the_last_frame() {
        let hb = Duration::from_secs(90);
        let f = fixture(hb);
        let (mut reader, mut writer) = spawn(&f).await;
        let token = f.shared.tokens.issue("alice", now_ms(), 0);
        write_frame(&mut writer, &connect(token), MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
        let Some(ServerMsg::ConnAck(ack)) = reader.read().await.unwrap() else {
            panic!("expected CONNACK");
        };
        assert_eq!(ack.code, ConnAckCode::ACCEPTED);
        assert_eq!(f.shared.stats().online, 1);

        // A ping just before the deadline pushes it back by a full period.
        tokio::time::sleep(hb - Duration::from_secs(1)).await;
        write_frame(&mut writer, &ClientMsg::Ping, MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
        assert_eq!(
            reader.read::<ServerMsg>().await.unwrap(),
            Some(ServerMsg::Pong)
        );
        let pinged = Instant::now();

        let msg = reader.read::<ServerMsg>().await.unwrap();
        assert_eq!(
            msg,
            Some(ServerMsg::Disconnect {
                reason: DisconnectReason::HEARTBEAT_TIMEOUT
            })
        );
        let silent = pinged.elapsed();
        assert!(
            silent >= hb && silent < hb + Duration::from_secs(1),
            "{silent:?}"
        );
        assert!(
            reader.read::<ServerMsg>().await.unwrap().is_none(),
            "then closed"
        );
        assert_eq!(f.shared.stats().online, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_other_than_connect_first_is_a_protocol_error() {
        let f = fixture(Duration::from_secs(90));
        let (mut reader, mut writer) = spawn(&f).await;
        write_frame(&mut writer, &ClientMsg::Ping, MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
        assert_eq!(
            reader.read::<ServerMsg>().await.unwrap(),
            Some(ServerMsg::Disconnect {
                reason: DisconnectReason::PROTOCOL_ERROR
            })
        );
        assert!(reader.read::<ServerMsg>().await.unwrap().is_none());
        assert_eq!(
            f.shared.stats(),
            crate::Stats::default(),
            "not a CONNECT: not counted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn registry_control_disconnects_the_connection() {
        let f = fixture(Duration::from_secs(90));
        let (mut reader, mut writer) = spawn(&f).await;
        let token = f.shared.tokens.issue("alice", now_ms(), 0);
        write_frame(&mut writer, &connect(token), MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
        assert!(matches!(
            reader.read().await.unwrap(),
            Some(ServerMsg::ConnAck(_))
        ));
        let kicked = Control::Disconnect(DisconnectReason::KICKED);
        assert_eq!(f.shared.online.broadcast(kicked), 1);
        assert_eq!(
            reader.read::<ServerMsg>().await.unwrap(),
            Some(ServerMsg::Disconnect {
                reason: DisconnectReason::KICKED
            })
        );
        assert!(
            reader.read::<ServerMsg>().await.unwrap().is_none(),
            "then closed"
        );
    }
}
