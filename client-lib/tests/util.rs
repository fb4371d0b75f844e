//! Test helpers: a fake `rcimd` that speaks the protocol on a real Unix socket in a
//! temp dir, scripted per test. It accepts one connection and runs the script on it;
//! dropping the script's [`Peer`] closes the connection.

use rcim_proto::frame::{self, MAX_IPC_FRAME};
use rcim_proto::ipc::{
    Callback, CallbackFrame, ClientFrame, DaemonFrame, Event, Hello, Op, Reply, Request, Response,
    Welcome,
};
use rcim_proto::message::{ConversationKey, Direction, Message, SentStatus};
use rcim_proto::status::LinkState;
use rcim_proto::{ConnectionStatus, FrameReader, PROTOCOL_VERSION, StatusSnapshot};
use std::future::Future;
use std::path::PathBuf;
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

pub struct FakeDaemon {
    pub socket: PathBuf,
    pub task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl FakeDaemon {
    /// Binds a socket and runs `script` on the first connection. Call inside a
    /// tokio runtime.
    pub fn start<F, Fut>(script: F) -> FakeDaemon
    where
        F: FnOnce(Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("rcimd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, writer) = stream.into_split();
            script(Peer {
                reader: FrameReader::new(read, MAX_IPC_FRAME),
                writer,
            })
            .await;
        });
        FakeDaemon {
            socket,
            task,
            _dir: dir,
        }
    }

    /// Binds a socket and runs `script(n, peer)` on the n-th connection (0, 1, …),
    /// one connection after another. With a non-zero `restart_gap`, the fake daemon
    /// "restarts" between connections: it closes its listener, removes the socket,
    /// waits that long and binds the same path again.
    pub fn start_each<F, Fut>(restart_gap: std::time::Duration, mut script: F) -> FakeDaemon
    where
        F: FnMut(usize, Peer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("rcimd.sock");
        let mut listener = UnixListener::bind(&socket).unwrap();
        let path = socket.clone();
        let task = tokio::spawn(async move {
            for n in 0.. {
                let (stream, _) = listener.accept().await.unwrap();
                let (read, writer) = stream.into_split();
                script(
                    n,
                    Peer {
                        reader: FrameReader::new(read, MAX_IPC_FRAME),
                        writer,
                    },
                )
                .await;
                if !restart_gap.is_zero() {
                    drop(listener);
                    std::fs::remove_file(&path).unwrap();
                    tokio::time::sleep(restart_gap).await;
                    listener = UnixListener::bind(&path).unwrap();
                }
            }
        });
        FakeDaemon {
            socket,
            task,
            _dir: dir,
        }
    }

    pub fn options(&self) -> rcim_client::ClientOptions {
        rcim_client::ClientOptions {
            socket: Some(self.socket.clone()),
            ..rcim_client::ClientOptions::named("test")
        }
    }
}

pub struct Peer {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Peer {
    pub async fn read(&mut self) -> Option<ClientFrame> {
        self.reader.read().await.unwrap()
    }

    pub async fn hello(&mut self) -> Hello {
        match self.read().await {
            Some(ClientFrame::Hello(hello)) => hello,
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    /// Reads Hello and answers with a Welcome.
    pub async fn welcome(&mut self) -> Hello {
        self.welcome_with(ConnectionStatus::Unconnected).await
    }

    /// Reads Hello and answers with a Welcome carrying `status`.
    pub async fn welcome_with(&mut self, status: ConnectionStatus) -> Hello {
        let hello = self.hello().await;
        assert_eq!(hello.protocol, PROTOCOL_VERSION);
        self.send_welcome(status).await;
        hello
    }

    /// Sends a Welcome carrying `status` (the Hello was read already).
    pub async fn send_welcome(&mut self, status: ConnectionStatus) {
        self.send(DaemonFrame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            daemon_version: "9.9.9-fake".into(),
            status: snapshot(status),
        }))
        .await;
    }

    /// Reads the Hello and a Connect request that must have come with it (before
    /// any Welcome was sent), then answers with a Welcome carrying `status`.
    /// Returns the request's id and token text.
    pub async fn pipelined_connect(&mut self, status: ConnectionStatus) -> (u64, String) {
        self.hello().await;
        let request =
            tokio::time::timeout(std::time::Duration::from_secs(5), self.connect_request())
                .await
                .expect("the connect request came with the Hello, before any Welcome");
        self.send_welcome(status).await;
        request
    }

    /// Accepts the Connect request `id`: code 0, `DatabaseOpened(0)`, then
    /// `Connected(0, user)`.
    pub async fn accept_connect(&mut self, id: u64, user: &str) {
        self.respond(id, Reply::Code(0)).await;
        self.callback(id, Callback::DatabaseOpened { code: 0 })
            .await;
        self.callback(
            id,
            Callback::Connected {
                code: 0,
                user_id: Some(user.into()),
            },
        )
        .await;
    }

    /// Reads a Subscribe request and returns its id and `since_seq`.
    pub async fn subscribe_request(&mut self) -> (u64, i64) {
        let request = self.request().await;
        match request.op {
            Op::Subscribe { since_seq } => (request.id, since_seq),
            other => panic!("expected Subscribe, got {other:?}"),
        }
    }

    /// Reads a `MessagesAfter` request: (request id, since_seq, limit).
    pub async fn messages_after_request(&mut self) -> (u64, i64, u32) {
        let request = self.request().await;
        match request.op {
            Op::MessagesAfter { since_seq, limit } => (request.id, since_seq, limit),
            other => panic!("expected MessagesAfter, got {other:?}"),
        }
    }

    /// Answers a `MessagesAfter` with the stored messages in `(since, until]`, at
    /// most `limit` of them.
    pub async fn page(&mut self, id: u64, since: i64, limit: u32, until: i64) {
        let last = until.min(since + i64::from(limit));
        let page = (since + 1..=last)
            .map(|id| stored(id, ConversationKey::private("bob"), "bob", "m"))
            .collect();
        self.respond(id, Reply::Messages(page)).await;
    }

    /// A live MessageReceived for a text message from bob with this id.
    pub async fn message(&mut self, id: i64) {
        self.message_event(stored(id, ConversationKey::private("bob"), "bob", "m"))
            .await;
    }

    pub async fn request(&mut self) -> Request {
        match self.read().await {
            Some(ClientFrame::Request(request)) => request,
            other => panic!("expected a Request, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: DaemonFrame) {
        frame::write_frame(&mut self.writer, &frame, MAX_IPC_FRAME)
            .await
            .unwrap();
    }

    pub async fn respond(&mut self, id: u64, reply: Reply) {
        self.send(DaemonFrame::Response(Response { id, reply }))
            .await;
    }

    pub async fn callback(&mut self, id: u64, callback: Callback) {
        self.send(DaemonFrame::Callback(CallbackFrame { id, callback }))
            .await;
    }

    pub async fn status_event(&mut self, status: ConnectionStatus) {
        self.send(DaemonFrame::Event(Event::StatusChanged(link(status))))
            .await;
    }

    /// Reads a Connect request and returns its id and token text.
    pub async fn connect_request(&mut self) -> (u64, String) {
        let request = self.request().await;
        match request.op {
            Op::Connect { token, .. } => (request.id, token.expose().to_owned()),
            other => panic!("expected Connect, got {other:?}"),
        }
    }
}

impl Peer {
    /// Reads a SendMessage request: its id, conversation, object name and content.
    pub async fn send_request(&mut self) -> (u64, ConversationKey, String, String) {
        let request = self.request().await;
        match request.op {
            Op::SendMessage {
                conversation,
                object_name,
                content,
            } => (request.id, conversation, object_name, content),
            other => panic!("expected SendMessage, got {other:?}"),
        }
    }

    pub async fn event(&mut self, event: Event) {
        self.send(DaemonFrame::Event(event)).await;
    }

    /// A live MessageReceived event for `message`.
    pub async fn message_event(&mut self, message: Message) {
        self.event(Event::MessageReceived {
            message,
            left: 0,
            offline: false,
            has_package: false,
        })
        .await;
    }
}

/// A text message as the daemon stores it.
pub fn stored(id: i64, conversation: ConversationKey, sender: &str, text: &str) -> Message {
    Message {
        id,
        uid: None,
        conversation,
        sender: sender.into(),
        object_name: "RC:TxtMsg".into(),
        content: rcim_client::text_content(text),
        sent_time_ms: 0,
        received_time_ms: 1_764_259_501_000 + id,
        direction: Direction::Receive,
        sent_status: SentStatus::Sent,
        client_msg_id: None,
    }
}

/// An outgoing message as MessageSaved carries it (status sending, no uid).
pub fn saved(id: i64, to: ConversationKey, text: &str) -> Message {
    Message {
        direction: Direction::Send,
        sent_status: SentStatus::Sending,
        client_msg_id: Some(format!("cmid-{id}")),
        ..stored(id, to, "alice", text)
    }
}

/// The same message after the server accepted it.
pub fn sent(saved: &Message, uid: &str) -> Message {
    Message {
        uid: Some(uid.into()),
        sent_time_ms: 1_764_259_502_000,
        sent_status: SentStatus::Sent,
        ..saved.clone()
    }
}

pub fn link(status: ConnectionStatus) -> LinkState {
    LinkState {
        status,
        ..LinkState::idle()
    }
}

pub fn snapshot(status: ConnectionStatus) -> StatusSnapshot {
    StatusSnapshot {
        link: link(status),
        server: "rcim://fake:1".into(),
        clients: 1,
        uptime_s: 5,
        reconnects: 0,
        last_error: None,
        daemon_version: "9.9.9-fake".into(),
        protocol: PROTOCOL_VERSION,
        unread_total: 0,
        token_store: "memory".into(),
        database: None,
    }
}
