//! The daemon's side of the local protocol, against an in-process daemon on a real
//! socket: the handshake, request/response correlation, and hostile frames that must
//! close only their own session.

use rcim_proto::frame::{FrameReader, MAX_IPC_FRAME, encode};
use rcim_proto::ipc::{ClientFrame, DaemonFrame, Event, Hello, Op, Reply, Request};
use rcim_proto::status::ConnectionStatus;
use rcim_proto::{PROTOCOL_VERSION, Token};
use rcimd::link::connector::ServerAddr;
use rcimd::vault::TokenStoreKind;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

struct Daemon {
    running: rcimd::Running,
    _dir: tempfile::TempDir,
}

/// A daemon whose server address has nobody listening: connects fail fast (30010).
async fn daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = rcimd::Config {
        socket: dir.path().join("run/rcimd.sock"),
        data_dir: dir.path().join("data"),
        servers: ServerAddr::parse(&format!("rcim://127.0.0.1:{port}"))
            .unwrap()
            .into(),
        tls_trust: rcimd::link::connector::TlsTrust::SystemRoots,
        app_key: "k".into(),
        token_store: TokenStoreKind::Memory,
        ping_after: Duration::from_secs(30),
        pong_timeout: Duration::from_secs(6),
        boot_token: None,
        client_stall_timeout: rcimd::DEFAULT_CLIENT_STALL,
    };
    let running = rcimd::start(config).await.unwrap();
    Daemon { running, _dir: dir }
}

struct Raw {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn open(d: &Daemon) -> Raw {
        let (read, writer) = UnixStream::connect(&d.running.socket)
            .await
            .unwrap()
            .into_split();
        Raw {
            reader: FrameReader::new(read, MAX_IPC_FRAME),
            writer,
        }
    }

    async fn send(&mut self, frame: &ClientFrame) {
        self.writer
            .write_all(&encode(frame, MAX_IPC_FRAME).unwrap())
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> Option<DaemonFrame> {
        tokio::time::timeout(Duration::from_secs(20), self.reader.read())
            .await
            .expect("the daemon answers in time")
            .ok()
            .flatten()
    }

    async fn hello(d: &Daemon) -> Raw {
        let mut raw = Raw::open(d).await;
        raw.send(&hello(PROTOCOL_VERSION)).await;
        match raw.recv().await {
            Some(DaemonFrame::Welcome(_)) => raw,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// Sends Status and returns the snapshot, skipping events.
    async fn status(&mut self, id: u64) -> rcim_proto::StatusSnapshot {
        self.send(&ClientFrame::Request(Request { id, op: Op::Status }))
            .await;
        loop {
            match self.recv().await {
                Some(DaemonFrame::Response(r)) if r.id == id => match r.reply {
                    Reply::Status(s) => return s,
                    other => panic!("{other:?}"),
                },
                Some(DaemonFrame::Event(_)) => continue,
                other => panic!("expected the status response, got {other:?}"),
            }
        }
    }
}

fn hello(protocol: u32) -> ClientFrame {
    ClientFrame::Hello(Hello {
        protocol,
        client_name: "session-test".into(),
        client_version: "0".into(),
    })
}

#[tokio::test]
async fn hello_gets_a_welcome_with_the_status() {
    let d = daemon().await;
    let mut raw = Raw::open(&d).await;
    raw.send(&hello(PROTOCOL_VERSION)).await;
    let Some(DaemonFrame::Welcome(welcome)) = raw.recv().await else {
        panic!("no welcome");
    };
    assert_eq!(welcome.protocol, PROTOCOL_VERSION);
    assert_eq!(welcome.daemon_version, rcimd::VERSION);
    assert_eq!(welcome.status.link.status, ConnectionStatus::Unconnected);
    assert_eq!(welcome.status.clients, 1);
    d.running.stop().await;
}

#[tokio::test]
async fn another_protocol_version_is_refused_naming_both() {
    let d = daemon().await;
    let mut raw = Raw::open(&d).await;
    raw.send(&hello(PROTOCOL_VERSION + 1)).await;
    let Some(DaemonFrame::Refused(refused)) = raw.recv().await else {
        panic!("not refused");
    };
    assert_eq!(refused.protocol, PROTOCOL_VERSION);
    assert!(
        refused
            .reason
            .contains(&format!("protocol {PROTOCOL_VERSION}")),
        "{}",
        refused.reason
    );
    assert!(
        refused
            .reason
            .contains(&format!("protocol {}", PROTOCOL_VERSION + 1)),
        "{}",
        refused.reason
    );
    assert_eq!(raw.recv().await, None, "closed after refusing");
}

#[tokio::test]
async fn a_request_before_hello_closes_the_session() {
    let d = daemon().await;
    let mut raw = Raw::open(&d).await;
    raw.send(&ClientFrame::Request(Request {
        id: 1,
        op: Op::Status,
    }))
    .await;
    assert_eq!(raw.recv().await, None);
}

#[tokio::test]
async fn hostile_frames_close_only_their_own_session() {
    let d = daemon().await;
    let mut good = Raw::hello(&d).await;
    let hostile: Vec<Vec<u8>> = vec![
        // A 4 GiB length prefix.
        u32::MAX.to_be_bytes().to_vec(),
        // Garbage body: an unknown frame variant.
        vec![0, 0, 0, 3, 0x7f, 0xff, 0xff],
        // A truncated frame, then EOF.
        vec![0, 0, 0, 50, 1, 2, 3],
    ];
    for bytes in hostile {
        let mut bad = Raw::hello(&d).await;
        bad.writer.write_all(&bytes).await.unwrap();
        bad.writer.shutdown().await.unwrap();
        assert_eq!(bad.recv().await, None, "closed after {bytes:?}");
    }
    // Garbage instead of a Hello.
    let mut bad = Raw::open(&d).await;
    bad.writer.write_all(&[0, 0, 0, 2, 9, 9]).await.unwrap();
    assert_eq!(bad.recv().await, None);

    let status = good.status(7).await;
    assert_eq!(status.clients, 1, "only the good client is still attached");
}

#[tokio::test]
async fn many_requests_in_flight_are_answered_by_id_and_events_stay_events() {
    let d = daemon().await;
    let mut raw = Raw::hello(&d).await;
    // A connect to a server that refuses TCP: the link publishes status events
    // (connecting, retrying) while the status requests are answered.
    let token = Token::new("a.b");
    raw.send(&ClientFrame::Request(Request {
        id: 1000,
        op: Op::Connect {
            token,
            timeout_secs: 2,
        },
    }))
    .await;
    for id in 0..50 {
        raw.send(&ClientFrame::Request(Request { id, op: Op::Status }))
            .await;
    }
    let mut answered = Vec::new();
    let mut events = 0;
    let mut connected = None;
    while answered.len() < 51 || connected.is_none() {
        match raw.recv().await.expect("frame") {
            DaemonFrame::Response(r) => {
                match r.reply {
                    Reply::Code(code) => assert_eq!((r.id, code), (1000, 0)),
                    Reply::Status(_) => assert!(r.id < 50),
                    other => panic!("unexpected reply {other:?}"),
                }
                answered.push(r.id);
            }
            DaemonFrame::Event(Event::StatusChanged(_)) => events += 1,
            DaemonFrame::Callback(cb) => {
                assert_eq!(cb.id, 1000);
                connected = Some(cb.callback);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    answered.sort_unstable();
    let mut expected: Vec<u64> = (0..50).collect();
    expected.push(1000);
    assert_eq!(answered, expected, "every request answered exactly once");
    assert!(events >= 1, "status events arrived as events");
    assert_eq!(
        connected,
        Some(rcim_proto::ipc::Callback::Connected {
            code: 34006,
            user_id: None
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_says_hello_is_dropped() {
    let d = daemon().await;
    let mut raw = Raw::open(&d).await;
    // Paused time jumps ahead while the daemon waits for the Hello.
    assert_eq!(raw.recv().await, None);
}

#[tokio::test]
async fn messages_after_checks_its_limit_and_needs_a_database() {
    let d = daemon().await;
    let mut raw = Raw::hello(&d).await;
    let cases = [
        (0, 33003),
        (1_001, 33003),
        (u32::MAX, 33003),
        (1, 33002),
        (1_000, 33002),
    ];
    for (id, (limit, code)) in (1..).zip(cases) {
        raw.send(&ClientFrame::Request(Request {
            id,
            op: Op::MessagesAfter {
                since_seq: -5,
                limit,
            },
        }))
        .await;
        loop {
            match raw.recv().await.expect("frame") {
                DaemonFrame::Response(r) => {
                    assert_eq!((r.id, r.reply), (id, Reply::Code(code)), "limit {limit}");
                    break;
                }
                DaemonFrame::Event(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
