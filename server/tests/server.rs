//! Integration tests of rcim-server over real sockets, with a real SQLite database in
//! a temporary directory: the IM endpoint (handshake codes, heartbeat, framing
//! errors, counters, shutdown), the Server API (signing, getToken, checkOnline,
//! stats), and the `rcim-server` binary end to end.
//!
//! Time-based paths with exact durations (handshake timeout, heartbeat deadline) are
//! covered with paused time in `im::session`'s unit tests; here the heartbeat test
//! uses a short real timeout, because paused time skips ahead while real sockets are
//! still in flight.

use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::{FrameReader, MAX_UPSTREAM_FRAME, write_frame};
use rcim_proto::upstream::{ClientInfo, ClientMsg, ConnAck, Connect, ServerMsg};
use rcim_proto::{Token, WIRE_VERSION};
use rcim_server::{RunningServer, ServerConfig, Stats, start};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const APP_KEY: &str = "test-app-key";
const APP_SECRET: &str = "test-app-secret";
/// Generous bound for anything that should happen "at once".
const SOON: Duration = Duration::from_secs(5);

struct TestServer {
    server: RunningServer,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestServer {
    type Target = RunningServer;
    fn deref(&self) -> &RunningServer {
        &self.server
    }
}

async fn server_with(heartbeat_timeout: Duration) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let server = start(ServerConfig {
        im_listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join("data"),
        app_key: APP_KEY.into(),
        app_secret: APP_SECRET.into(),
        heartbeat_timeout,
    })
    .await
    .unwrap();
    TestServer { server, _dir: dir }
}

async fn server() -> TestServer {
    server_with(Duration::from_secs(90)).await
}

/// A raw upstream client connection.
struct Client {
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn open(addr: SocketAddr) -> Self {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Self {
            reader: FrameReader::new(r, MAX_UPSTREAM_FRAME),
            writer: w,
        }
    }

    async fn send(&mut self, msg: &ClientMsg) {
        write_frame(&mut self.writer, msg, MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
    }

    async fn recv(&mut self) -> ServerMsg {
        tokio::time::timeout(SOON, self.reader.read::<ServerMsg>())
            .await
            .expect("no answer in time")
            .expect("read failed")
            .expect("closed instead of answering")
    }

    async fn connack(&mut self) -> ConnAck {
        match self.recv().await {
            ServerMsg::ConnAck(ack) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Asserts the server closes the connection (clean end or reset) soon.
    async fn expect_closed(&mut self) {
        let read = tokio::time::timeout(SOON, self.reader.read::<ServerMsg>())
            .await
            .expect("the server did not close the connection");
        assert!(!matches!(read, Ok(Some(_))), "expected close, got {read:?}");
    }
}

fn connect_msg(protocol: u32, app_key: &str, token: &str) -> ClientMsg {
    ClientMsg::Connect(Connect {
        protocol,
        app_key: app_key.into(),
        token: Token::new(token),
        client_info: ClientInfo {
            platform: "desktop".into(),
            sdk: "rcim-server-tests".into(),
            os: "linux".into(),
        },
        device_id: "device-1".into(),
    })
}

/// Connects as `user_id` and checks the CONNACK is 0.
async fn connect_as(server: &RunningServer, user_id: &str) -> Client {
    let token = server.issue_token(user_id, "Test User").unwrap();
    let mut client = Client::open(server.im_addr()).await;
    client
        .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
        .await;
    let ack = client.connack().await;
    assert_eq!(ack.code, ConnAckCode::ACCEPTED);
    client
}

/// Sends one CONNECT and returns the CONNACK code, checking the connection is then
/// closed when the code is not 0.
async fn connack_code(
    server: &RunningServer,
    protocol: u32,
    app_key: &str,
    token: &str,
) -> ConnAckCode {
    let mut client = Client::open(server.im_addr()).await;
    client.send(&connect_msg(protocol, app_key, token)).await;
    let ack = client.connack().await;
    if ack.code != ConnAckCode::ACCEPTED {
        assert_eq!(ack.user_id, None);
        client.expect_closed().await;
    }
    ack.code
}

/// Polls `f` until it is true or [`SOON`] passes.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + SOON;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

mod im {
    use super::*;

    #[tokio::test]
    async fn connect_is_accepted_with_the_user_id() {
        let server = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        let mut client = Client::open(server.im_addr()).await;
        client
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        let ack = client.connack().await;
        assert_eq!(ack.code, ConnAckCode::ACCEPTED);
        assert_eq!(ack.user_id.as_deref(), Some("alice"));
        assert!(
            (ack.server_time_ms - now_ms()).abs() < 60_000,
            "{}",
            ack.server_time_ms
        );
        assert!(server.is_online("alice"));
        assert_eq!(
            server.stats(),
            Stats {
                connects_accepted: 1,
                connects_rejected: 0,
                online: 1,
                messages: 0
            }
        );
    }

    #[tokio::test]
    async fn bad_tokens_get_token_incorrect() {
        let server = server().await;
        let good = server.issue_token("alice", "Alice").unwrap();
        let other_secret = rcim_server::token::TokenIssuer::new(APP_KEY, "another-secret").issue(
            "alice",
            now_ms(),
            0,
        );
        let other_key = rcim_server::token::TokenIssuer::new("another-key", APP_SECRET).issue(
            "alice",
            now_ms(),
            0,
        );
        let cases = [
            ("wrong secret", APP_KEY, other_secret.expose().to_owned()),
            (
                "other app key in the token",
                APP_KEY,
                other_key.expose().to_owned(),
            ),
            ("garbage", APP_KEY, "garbage".to_owned()),
            ("empty", APP_KEY, String::new()),
            ("connect with another app key", "another-key", good),
        ];
        for (what, app_key, token) in &cases {
            let code = connack_code(&server, WIRE_VERSION, app_key, token).await;
            assert_eq!(code, ConnAckCode::TOKEN_INCORRECT, "{what}");
        }
        assert_eq!(server.stats().connects_rejected, cases.len() as u64);
        assert_eq!(server.stats().connects_accepted, 0);
    }

    #[tokio::test]
    async fn wrong_protocol_version_is_refused() {
        let server = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        let code = connack_code(&server, WIRE_VERSION + 1, APP_KEY, &token).await;
        assert_eq!(code, ConnAckCode::UNACCEPTABLE_PROTOCOL_VERSION);
    }

    #[tokio::test]
    async fn expired_token_is_refused() {
        let server = server().await;
        let expired = server
            .issue_token_expiring("alice", now_ms() - 1000)
            .unwrap();
        let code = connack_code(&server, WIRE_VERSION, APP_KEY, &expired).await;
        assert_eq!(code, ConnAckCode::TOKEN_EXPIRED);
        let valid = server
            .issue_token_expiring("alice", now_ms() + 3_600_000)
            .unwrap();
        let code = connack_code(&server, WIRE_VERSION, APP_KEY, &valid).await;
        assert_eq!(code, ConnAckCode::ACCEPTED);
    }

    #[tokio::test]
    async fn ping_is_answered_with_pong() {
        let server = server().await;
        let mut client = connect_as(&server, "alice").await;
        for _ in 0..3 {
            client.send(&ClientMsg::Ping).await;
            assert_eq!(client.recv().await, ServerMsg::Pong);
        }
    }

    #[tokio::test]
    async fn silence_ends_with_heartbeat_timeout() {
        let server = server_with(Duration::from_millis(200)).await;
        let mut client = connect_as(&server, "alice").await;
        // Pings keep the connection alive past the timeout...
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.send(&ClientMsg::Ping).await;
            assert_eq!(client.recv().await, ServerMsg::Pong);
        }
        // ...silence does not.
        let started = std::time::Instant::now();
        assert_eq!(
            client.recv().await,
            ServerMsg::Disconnect {
                reason: DisconnectReason::HEARTBEAT_TIMEOUT
            }
        );
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{:?}",
            started.elapsed()
        );
        client.expect_closed().await;
        eventually("offline", || server.stats().online == 0).await;
    }

    #[tokio::test]
    async fn oversized_length_prefix_closes_the_connection() {
        let server = server().await;
        let mut client = connect_as(&server, "alice").await;
        client
            .writer
            .write_all(&u32::MAX.to_be_bytes())
            .await
            .unwrap();
        assert_eq!(
            client.recv().await,
            ServerMsg::Disconnect {
                reason: DisconnectReason::PROTOCOL_ERROR
            }
        );
        client.expect_closed().await;

        // Before the handshake too.
        let mut client = Client::open(server.im_addr()).await;
        client
            .writer
            .write_all(&(MAX_UPSTREAM_FRAME + 1).to_be_bytes())
            .await
            .unwrap();
        assert_eq!(
            client.recv().await,
            ServerMsg::Disconnect {
                reason: DisconnectReason::PROTOCOL_ERROR
            }
        );
        client.expect_closed().await;
        eventually("offline", || server.stats().online == 0).await;
    }

    #[tokio::test]
    async fn garbage_frame_is_a_protocol_error() {
        let server = server().await;
        let mut client = connect_as(&server, "alice").await;
        // A frame whose body is not a ClientMsg (variant 200 does not exist).
        client.writer.write_all(&[0, 0, 0, 1, 200]).await.unwrap();
        assert_eq!(
            client.recv().await,
            ServerMsg::Disconnect {
                reason: DisconnectReason::PROTOCOL_ERROR
            }
        );
        client.expect_closed().await;
    }

    #[tokio::test]
    async fn client_disconnect_closes_and_goes_offline() {
        let server = server().await;
        let mut client = connect_as(&server, "alice").await;
        assert!(server.is_online("alice"));
        client
            .send(&ClientMsg::Disconnect { keep_push: false })
            .await;
        client.expect_closed().await;
        eventually("offline", || !server.is_online("alice")).await;
    }

    #[tokio::test]
    async fn stats_count_connects_and_online() {
        let server = server().await;
        let a = connect_as(&server, "alice").await;
        let b = connect_as(&server, "bob").await;
        let c = connect_as(&server, "bob").await;
        let code = connack_code(&server, WIRE_VERSION, APP_KEY, "nope").await;
        assert_eq!(code, ConnAckCode::TOKEN_INCORRECT);
        assert_eq!(
            server.stats(),
            Stats {
                connects_accepted: 3,
                connects_rejected: 1,
                online: 3,
                messages: 0
            }
        );
        drop((a, b, c));
        eventually("all offline", || server.stats().online == 0).await;
        assert_eq!(server.stats().connects_accepted, 3);
        assert_eq!(server.stats().connects_rejected, 1);
    }

    #[tokio::test]
    async fn shutdown_tells_live_connections() {
        let TestServer { server, _dir } = server().await;
        let mut client = connect_as(&server, "alice").await;
        let mut idle = Client::open(server.im_addr()).await;
        let shutdown = tokio::spawn(server.shutdown());
        assert_eq!(
            client.recv().await,
            ServerMsg::Disconnect {
                reason: DisconnectReason::SERVER_SHUTDOWN
            }
        );
        client.expect_closed().await;
        idle.expect_closed().await;
        tokio::time::timeout(SOON, shutdown).await.unwrap().unwrap();
    }
}

mod api {
    use super::*;
    use rcim_server::api_client::{post_raw, post_signed, sign};
    use serde_json::Value;

    async fn post(server: &RunningServer, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        post_signed(&server.api_url(), APP_KEY, APP_SECRET, path, form)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn get_token_issues_a_working_token() {
        let server = server().await;
        let (status, body) = post(
            &server,
            "/user/getToken.json",
            &[
                ("userId", "alice"),
                ("name", "Alice"),
                ("portraitUri", "http://x/a.png"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["code"], 200);
        assert_eq!(body["userId"], "alice");
        let token = body["token"].as_str().unwrap();
        let code = connack_code(&server, WIRE_VERSION, APP_KEY, token).await;
        assert_eq!(code, ConnAckCode::ACCEPTED);

        // Getting another token leaves the first one valid.
        let (_, again) = post(
            &server,
            "/user/getToken.json",
            &[("userId", "alice"), ("name", "A")],
        )
        .await;
        assert_ne!(again["token"], body["token"]);
        assert_eq!(
            connack_code(&server, WIRE_VERSION, APP_KEY, token).await,
            ConnAckCode::ACCEPTED
        );
    }

    #[tokio::test]
    async fn get_token_checks_its_parameters() {
        let server = server().await;
        let long_id = "x".repeat(65);
        let long_name = "n".repeat(129);
        let cases: [&[(&str, &str)]; 6] = [
            &[("name", "Alice")],
            &[("userId", ""), ("name", "Alice")],
            &[("userId", "a/b"), ("name", "Alice")],
            &[("userId", &long_id), ("name", "Alice")],
            &[("userId", "alice")],
            &[("userId", "alice"), ("name", &long_name)],
        ];
        for form in cases {
            let (status, body) = post(&server, "/user/getToken.json", form).await;
            assert_eq!(
                (status, body["code"].as_i64()),
                (400, Some(1002)),
                "{form:?}: {body}"
            );
            assert!(body["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }

    #[tokio::test]
    async fn bad_or_missing_signature_is_401() {
        let server = server().await;
        let url = server.api_url();
        let body = b"userId=alice&name=Alice";
        let path = "/user/getToken.json";
        let good_sig = sign(APP_SECRET, "n1", "1700000000");
        let bad_sig = sign("wrong-secret", "n1", "1700000000");
        let cases: [(&str, Vec<(&str, &str)>); 4] = [
            ("no headers", vec![]),
            (
                "bad signature",
                vec![
                    ("App-Key", APP_KEY),
                    ("Nonce", "n1"),
                    ("Timestamp", "1700000000"),
                    ("Signature", &bad_sig),
                ],
            ),
            (
                "wrong app key",
                vec![
                    ("App-Key", "other"),
                    ("Nonce", "n1"),
                    ("Timestamp", "1700000000"),
                    ("Signature", &good_sig),
                ],
            ),
            (
                "no nonce",
                vec![
                    ("App-Key", APP_KEY),
                    ("Timestamp", "1700000000"),
                    ("Signature", &good_sig),
                ],
            ),
        ];
        for (what, headers) in cases {
            let (status, json) = post_raw(&url, path, &headers, body).await.unwrap();
            assert_eq!(
                (status, json["code"].as_i64()),
                (401, Some(1004)),
                "{what}: {json}"
            );
        }
        // Unknown paths are checked for nothing but exist: a JSON 404.
        let (status, json) = post_raw(&url, "/nope.json", &[], b"").await.unwrap();
        assert_eq!((status, json["code"].as_i64()), (404, Some(404)), "{json}");
    }

    #[tokio::test]
    async fn rc_prefixed_headers_and_millisecond_timestamps_are_accepted() {
        let server = server().await;
        let ts = now_ms().to_string();
        let sig = sign(APP_SECRET, "abc", &ts);
        let headers = [
            ("RC-App-Key", APP_KEY),
            ("RC-Nonce", "abc"),
            ("RC-Timestamp", ts.as_str()),
            ("RC-Signature", sig.as_str()),
        ];
        let (status, json) = post_raw(
            &server.api_url(),
            "/user/getToken.json",
            &headers,
            b"userId=alice&name=Alice",
        )
        .await
        .unwrap();
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
    }

    #[tokio::test]
    async fn oversized_body_is_1508() {
        let server = server().await;
        let big = "n".repeat(101 * 1024);
        let (status, json) = post(
            &server,
            "/user/getToken.json",
            &[("userId", "a"), ("name", &big)],
        )
        .await;
        assert_eq!((status, json["code"].as_i64()), (413, Some(1508)), "{json}");
    }

    #[tokio::test]
    async fn check_online_follows_connections() {
        let server = server().await;
        let (status, json) = post(&server, "/user/checkOnline.json", &[("userId", "alice")]).await;
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)));
        assert_eq!(json["status"], "0");
        let mut client = connect_as(&server, "alice").await;
        let (_, json) = post(&server, "/user/checkOnline.json", &[("userId", "alice")]).await;
        assert_eq!(json["status"], "1");
        client
            .send(&ClientMsg::Disconnect { keep_push: false })
            .await;
        client.expect_closed().await;
        eventually("offline", || !server.is_online("alice")).await;
        let (_, json) = post(&server, "/user/checkOnline.json", &[("userId", "alice")]).await;
        assert_eq!(json["status"], "0");
        let (status, json) = post(&server, "/user/checkOnline.json", &[]).await;
        assert_eq!((status, json["code"].as_i64()), (400, Some(1002)));
    }

    #[tokio::test]
    async fn stats_json_reports_the_counters() {
        let server = server().await;
        let _client = connect_as(&server, "alice").await;
        connack_code(&server, WIRE_VERSION, APP_KEY, "bad").await;
        let (status, json) = post(&server, "/stats.json", &[]).await;
        assert_eq!(status, 200, "{json}");
        assert_eq!(
            json,
            serde_json::json!({
                "code": 200,
                "connects_accepted": 1,
                "connects_rejected": 1,
                "online": 1,
                "messages": 0
            })
        );
    }
}

mod binary {
    use super::*;
    use std::io::{BufRead as _, BufReader, Read as _};
    use std::process::{Child, Command, Stdio};

    fn spawn(args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_rcim-server"))
            .args(args)
            .env("RCIM_APP_SECRET", APP_SECRET)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits (without blocking the runtime) for the child to exit.
    async fn wait(mut child: Child) -> (std::process::ExitStatus, String, String) {
        tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("rcim-server did not exit");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            (status, out, err)
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn runs_serves_and_stops_on_sigterm() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut child = spawn(&[
            "--im-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--app-key",
            APP_KEY,
            "--log",
            "debug",
        ]);
        let stdout = child.stdout.take().unwrap();
        let (line, stdout) = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            (line, reader.into_inner())
        })
        .await
        .unwrap();
        child.stdout = Some(stdout);
        let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
        assert_eq!(ready["event"], "ready", "{line}");
        let im_addr: SocketAddr = ready["im_addr"].as_str().unwrap().parse().unwrap();
        let api_url = ready["api_url"].as_str().unwrap().to_owned();
        assert!(api_url.starts_with("http://127.0.0.1:"), "{api_url}");

        let (status, json) = rcim_server::api_client::post_signed(
            &api_url,
            APP_KEY,
            APP_SECRET,
            "/user/getToken.json",
            &[("userId", "alice"), ("name", "Alice")],
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{json}");
        let token = json["token"].as_str().unwrap().to_owned();

        let mut client = Client::open(im_addr).await;
        client
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        let ack = client.connack().await;
        assert_eq!(
            (ack.code, ack.user_id.as_deref()),
            (ConnAckCode::ACCEPTED, Some("alice"))
        );

        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert_eq!(
            client.recv().await,
            ServerMsg::Disconnect {
                reason: DisconnectReason::SERVER_SHUTDOWN
            }
        );
        let (status, out, err) = wait(child).await;
        assert!(status.success(), "exit {status:?}\nstderr:\n{err}");
        assert!(
            out.is_empty(),
            "only the ready line on stdout, then {out:?}"
        );
        assert!(
            !err.contains(APP_SECRET),
            "the secret leaked into the log:\n{err}"
        );
        assert!(!err.contains(&token), "a token leaked into the log:\n{err}");
        assert!(data_dir.join("server.db").exists());
    }

    #[tokio::test]
    async fn unusable_data_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let data_dir = file.join("data");
        let child = spawn(&[
            "--im-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--app-key",
            APP_KEY,
        ]);
        let (status, out, err) = wait(child).await;
        assert!(!status.success());
        assert!(out.is_empty(), "no ready line: {out:?}");
        assert!(err.contains("cannot create the data directory"), "{err}");
    }

    #[tokio::test]
    async fn bad_address_is_a_clear_error() {
        let child = spawn(&[
            "--im-listen",
            "not-an-address",
            "--api-listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/unused",
            "--app-key",
            APP_KEY,
        ]);
        let (status, _, err) = wait(child).await;
        assert!(!status.success());
        assert!(err.contains("--im-listen"), "{err}");
    }
}
