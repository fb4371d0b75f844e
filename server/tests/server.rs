//! Integration tests of rcim-server over real sockets, with a real SQLite database in
//! a temporary directory: the IM endpoint (handshake codes, heartbeat, framing
//! errors, counters, shutdown), kicks, token expiry (`token/expire` and the token
//! lifetime), blocks, the Server API (signing, getToken, checkOnline, the
//! moderation endpoints, stats), TLS on the IM endpoint (with a CA made at test
//! time by `rcim_server::testca`), in-process connections through
//! `RunningServer::serve_stream` under paused time, the `rcim-server` binary end
//! to end, and messaging (publish, de-duplication, groups, sync paging, live pushes
//! and the seam between them, acks, the publish and group endpoints, the bulk path),
//! and the Server API's replay protection (stale timestamps, reused nonces).
//!
//! Time-based paths with exact durations (handshake timeout, heartbeat deadline) are
//! covered with paused time in `im::session`'s unit tests and in `in_process` here;
//! over TCP the heartbeat test uses a short real timeout, because paused time skips
//! ahead while real sockets are still in flight.

use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::{FrameReader, MAX_UPSTREAM_FRAME, write_frame};
use rcim_proto::upstream::{ClientInfo, ClientMsg, ConnAck, Connect, ServerMsg};
use rcim_proto::{Token, WIRE_VERSION};
use rcim_server::{RunningServer, ServerConfig, Stats, start};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

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

/// The test configuration: loopback, ports 0, data under `dir`.
fn config_in(dir: &std::path::Path) -> ServerConfig {
    ServerConfig::local(dir.join("data"), APP_KEY, APP_SECRET)
}

/// A server with the test configuration changed by `change`.
async fn server_from(change: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    change(&mut config);
    let server = start(config).await.unwrap();
    TestServer { server, _dir: dir }
}

async fn server_with(heartbeat_timeout: Duration) -> TestServer {
    server_from(|c| c.heartbeat_timeout = heartbeat_timeout).await
}

async fn server() -> TestServer {
    server_with(Duration::from_secs(90)).await
}

/// A raw upstream client connection over any byte stream (TCP by default).
struct Client<S = TcpStream> {
    reader: FrameReader<ReadHalf<S>>,
    writer: WriteHalf<S>,
}

impl Client {
    async fn open(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    fn over(stream: S) -> Self {
        let (r, w) = tokio::io::split(stream);
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
    connect_msg_on(protocol, app_key, token, "desktop")
}

fn connect_msg_on(protocol: u32, app_key: &str, token: &str, platform: &str) -> ClientMsg {
    ClientMsg::Connect(Connect {
        protocol,
        app_key: app_key.into(),
        token: Token::new(token),
        client_info: ClientInfo {
            platform: platform.into(),
            sdk: "rcim-server-tests".into(),
            os: "linux".into(),
        },
        device_id: "device-1".into(),
    })
}

/// Connects as `user_id` (platform `desktop`) and checks the CONNACK is 0.
async fn connect_as(server: &RunningServer, user_id: &str) -> Client {
    connect_on(server, user_id, "desktop").await
}

/// Connects as `user_id` on `platform` and checks the CONNACK is 0.
async fn connect_on(server: &RunningServer, user_id: &str, platform: &str) -> Client {
    let token = server.issue_token(user_id, "Test User").unwrap();
    connect_with(server, &token, platform).await
}

/// Connects with `token` on `platform` and checks the CONNACK is 0.
async fn connect_with(server: &RunningServer, token: &str, platform: &str) -> Client {
    let mut client = Client::open(server.im_addr()).await;
    client
        .send(&connect_msg_on(WIRE_VERSION, APP_KEY, token, platform))
        .await;
    let ack = client.connack().await;
    assert_eq!(ack.code, ConnAckCode::ACCEPTED);
    client
}

/// The CONNACK code for a CONNECT with `token` (closed afterwards unless 0).
async fn code_for(server: &RunningServer, token: &str) -> ConnAckCode {
    connack_code(server, WIRE_VERSION, APP_KEY, token).await
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
                messages: 0,
                kicks: 0
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
        let b = connect_on(&server, "bob", "desktop").await;
        let c = connect_on(&server, "bob", "mobile").await;
        let code = connack_code(&server, WIRE_VERSION, APP_KEY, "nope").await;
        assert_eq!(code, ConnAckCode::TOKEN_INCORRECT);
        assert_eq!(
            server.stats(),
            Stats {
                connects_accepted: 3,
                connects_rejected: 1,
                online: 3,
                messages: 0,
                kicks: 0
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
            // RC: 1001 "AppKey/Secret mismatch" for a key that is not this app's.
            let code = if what == "wrong app key" { 1001 } else { 1004 };
            assert_eq!(
                (status, json["code"].as_i64()),
                (401, Some(code)),
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
                "messages": 0,
                "kicks": 0
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

    /// Reads the ready line from the child's stdout.
    async fn read_ready(child: &mut Child) -> serde_json::Value {
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
        ready
    }

    #[tokio::test]
    async fn serves_tls_with_tls_cert_and_key() {
        let ca = rcim_server::testca::TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = ca.write_files(dir.path());
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
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]);
        let ready = read_ready(&mut child).await;
        assert_eq!(ready["tls"], true, "{ready}");
        let im_addr: SocketAddr = ready["im_addr"].as_str().unwrap().parse().unwrap();
        assert_eq!(ready["im_url"], format!("rcims://{im_addr}"), "{ready}");
        let (_, json) = rcim_server::api_client::post_signed(
            ready["api_url"].as_str().unwrap(),
            APP_KEY,
            APP_SECRET,
            "/user/getToken.json",
            &[("userId", "alice"), ("name", "Alice")],
        )
        .await
        .unwrap();
        let token = json["token"].as_str().unwrap().to_owned();
        let tcp = TcpStream::connect(im_addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(ca.client_config())
            .connect(name, tcp)
            .await
            .unwrap();
        let mut client = Client::over(tls);
        client
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        assert_eq!(client.connack().await.code, ConnAckCode::ACCEPTED);
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        expect_disconnect(&mut client, DisconnectReason::SERVER_SHUTDOWN).await;
        let (status, _, err) = wait(child).await;
        assert!(status.success(), "exit {status:?}\nstderr:\n{err}");
    }

    #[tokio::test]
    async fn tls_flags_come_together_and_bad_files_are_clear_errors() {
        let base = [
            "--im-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/unused-rcim-server-test",
            "--app-key",
            APP_KEY,
        ];
        let (status, out, err) =
            wait(spawn(&[&base[..], &["--tls-cert", "/x.pem"]].concat())).await;
        assert!(!status.success());
        assert!(out.is_empty());
        assert!(err.contains("--tls-key"), "{err}");
        let (status, _, err) = wait(spawn(&[&base[..], &["--tls-key", "/x.key"]].concat())).await;
        assert!(!status.success());
        assert!(err.contains("--tls-cert"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "").unwrap();
        let data_dir = dir.path().join("data");
        let (status, out, err) = wait(spawn(&[
            "--im-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--app-key",
            APP_KEY,
            "--tls-cert",
            missing.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ]))
        .await;
        assert!(!status.success());
        assert!(out.is_empty(), "no ready line: {out:?}");
        assert!(
            err.contains("cannot read the TLS certificate file") && err.contains("missing.pem"),
            "{err}"
        );
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
            "--token-lifetime",
            "3600",
        ]);
        let ready = read_ready(&mut child).await;
        assert_eq!(ready["tls"], false, "{ready}");
        let im_addr: SocketAddr = ready["im_addr"].as_str().unwrap().parse().unwrap();
        assert_eq!(ready["im_url"], format!("rcim://{im_addr}"), "{ready}");
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
        let (issued, expires) = claim_times(&token);
        assert_eq!(expires - issued, 3_600_000, "--token-lifetime 3600");

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

/// Asserts the next message is `Disconnect { reason }` and the connection then closes.
async fn expect_disconnect<S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
    reason: DisconnectReason,
) {
    assert_eq!(client.recv().await, ServerMsg::Disconnect { reason });
    client.expect_closed().await;
}

/// Asserts the connection is still served: a ping gets a pong.
async fn expect_alive<S: AsyncRead + AsyncWrite>(client: &mut Client<S>) {
    client.send(&ClientMsg::Ping).await;
    assert_eq!(client.recv().await, ServerMsg::Pong);
}

mod kick {
    use super::*;

    #[tokio::test]
    async fn same_platform_kicks_the_older_connection() {
        let server = server().await;
        let mut old = connect_on(&server, "alice", "desktop").await;
        let mut new = connect_on(&server, "alice", "desktop").await;
        expect_disconnect(&mut old, DisconnectReason::KICKED).await;
        expect_alive(&mut new).await;
        assert!(server.is_online("alice"));
        eventually("one connection left", || server.stats().online == 1).await;
        assert_eq!(server.stats().kicks, 1);
        assert_eq!(server.stats().connects_accepted, 2);

        // And again: the newest always wins.
        let mut newest = connect_on(&server, "alice", "desktop").await;
        expect_disconnect(&mut new, DisconnectReason::KICKED).await;
        expect_alive(&mut newest).await;
        assert_eq!(server.stats().kicks, 2);
    }

    #[tokio::test]
    async fn different_platforms_and_users_coexist() {
        let server = server().await;
        let mut desktop = connect_on(&server, "alice", "desktop").await;
        let mut mobile = connect_on(&server, "alice", "mobile").await;
        let mut web = connect_on(&server, "alice", "web").await;
        let mut bob = connect_on(&server, "bob", "desktop").await;
        for client in [&mut desktop, &mut mobile, &mut web, &mut bob] {
            expect_alive(client).await;
        }
        assert_eq!(server.stats().online, 4);
        assert_eq!(server.stats().kicks, 0);
    }

    #[tokio::test]
    async fn kicks_are_in_stats_json() {
        let server = server().await;
        let mut old = connect_as(&server, "alice").await;
        let _new = connect_as(&server, "alice").await;
        expect_disconnect(&mut old, DisconnectReason::KICKED).await;
        let (status, json) = rcim_server::api_client::post_signed(
            &server.api_url(),
            APP_KEY,
            APP_SECRET,
            "/stats.json",
            &[],
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["kicks"], 1, "{json}");
    }
}

/// POSTs a signed form to `path`.
async fn post(
    server: &RunningServer,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    rcim_server::api_client::post_signed(&server.api_url(), APP_KEY, APP_SECRET, path, form)
        .await
        .unwrap()
}

/// POSTs a signed form to `path` and checks the answer is exactly `{"code":200}`.
async fn post_ok(server: &RunningServer, path: &str, form: &[(&str, &str)]) {
    let (status, json) = post(server, path, form).await;
    assert_eq!(
        (status, json),
        (200, serde_json::json!({ "code": 200 })),
        "{path} {form:?}"
    );
}

/// The `issued_at_ms` and `expires_at_ms` claims of a token.
fn claim_times(token: &str) -> (i64, i64) {
    let claims = rcim_proto::token::TokenClaims::peek(token).unwrap();
    (claims.issued_at_ms, claims.expires_at_ms)
}

/// Sleeps until the wall clock is past `ms` (since the Unix epoch).
async fn sleep_past(ms: i64) {
    while now_ms() <= ms {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

mod expire {
    use super::*;

    #[tokio::test]
    async fn live_connection_stays_and_the_next_connect_gets_token_expired() {
        let server = server().await;
        let old = server.issue_token("alice", "Alice").unwrap();
        let mut live = connect_with(&server, &old, "desktop").await;
        let (issued, _) = claim_times(&old);
        let time = (issued + 1).to_string();
        post_ok(
            &server,
            "/user/token/expire.json",
            &[("userId", "alice"), ("time", &time)],
        )
        .await;
        // RC does not drop the live connection.
        expect_alive(&mut live).await;
        assert!(server.is_online("alice"));
        // The next CONNECT with the old token is refused, on any platform.
        assert_eq!(code_for(&server, &old).await, ConnAckCode::TOKEN_EXPIRED);
        let mut mobile = Client::open(server.im_addr()).await;
        mobile
            .send(&connect_msg_on(WIRE_VERSION, APP_KEY, &old, "mobile"))
            .await;
        assert_eq!(mobile.connack().await.code, ConnAckCode::TOKEN_EXPIRED);
        expect_alive(&mut live).await;
    }

    #[tokio::test]
    async fn tokens_issued_at_or_after_time_still_work() {
        let server = server().await;
        let old = server.issue_token("alice", "Alice").unwrap();
        let (issued, _) = claim_times(&old);
        sleep_past(issued).await;
        let time = now_ms();
        server.expire_tokens("alice", time).await.unwrap();
        let fresh = server.issue_token("alice", "Alice").unwrap();
        assert!(claim_times(&fresh).0 >= time);
        assert_eq!(code_for(&server, &old).await, ConnAckCode::TOKEN_EXPIRED);
        assert_eq!(code_for(&server, &fresh).await, ConnAckCode::ACCEPTED);
        // Other users are not affected.
        let bob = server.issue_token("bob", "Bob").unwrap();
        assert_eq!(code_for(&server, &bob).await, ConnAckCode::ACCEPTED);
    }

    #[tokio::test]
    async fn a_future_time_invalidates_fresh_tokens_too() {
        let server = server().await;
        let time = (now_ms() + 3_600_000).to_string();
        post_ok(
            &server,
            "/user/token/expire.json",
            &[("userId", "alice"), ("time", &time)],
        )
        .await;
        let token = server.issue_token("alice", "Alice").unwrap();
        assert_eq!(code_for(&server, &token).await, ConnAckCode::TOKEN_EXPIRED);
    }

    #[tokio::test]
    async fn repeated_user_ids_are_all_expired() {
        let server = server().await;
        let a = server.issue_token("alice", "Alice").unwrap();
        let b = server.issue_token("bob", "Bob").unwrap();
        let c = server.issue_token("carol", "Carol").unwrap();
        let time = (now_ms() + 60_000).to_string();
        post_ok(
            &server,
            "/user/token/expire.json",
            &[("userId", "alice"), ("userId", "bob"), ("time", &time)],
        )
        .await;
        assert_eq!(code_for(&server, &a).await, ConnAckCode::TOKEN_EXPIRED);
        assert_eq!(code_for(&server, &b).await, ConnAckCode::TOKEN_EXPIRED);
        assert_eq!(code_for(&server, &c).await, ConnAckCode::ACCEPTED);
    }

    #[tokio::test]
    async fn the_cut_off_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(config_in(dir.path())).await.unwrap();
        let old = server.issue_token("alice", "Alice").unwrap();
        server
            .expire_tokens("alice", now_ms() + 60_000)
            .await
            .unwrap();
        server.shutdown().await;
        let server = start(config_in(dir.path())).await.unwrap();
        assert_eq!(code_for(&server, &old).await, ConnAckCode::TOKEN_EXPIRED);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn order_bad_token_before_cut_off() {
        // A token that is both from another secret and before the cut-off is
        // "incorrect" (4), not "expired" (10): the signature is checked first.
        let server = server().await;
        server
            .expire_tokens("alice", now_ms() + 60_000)
            .await
            .unwrap();
        let forged = rcim_server::token::TokenIssuer::new(APP_KEY, "other-secret").issue(
            "alice",
            now_ms(),
            0,
        );
        assert_eq!(
            code_for(&server, forged.expose()).await,
            ConnAckCode::TOKEN_INCORRECT
        );
    }
}

mod lifetime {
    use super::*;

    #[tokio::test]
    async fn get_token_tokens_expire_after_the_lifetime() {
        let lifetime = Duration::from_secs(2);
        let server = server_from(|c| c.token_lifetime = lifetime).await;
        let (status, json) = post(
            &server,
            "/user/getToken.json",
            &[("userId", "alice"), ("name", "Alice")],
        )
        .await;
        assert_eq!(status, 200, "{json}");
        let token = json["token"].as_str().unwrap().to_owned();
        let (issued, expires) = claim_times(&token);
        assert_eq!(expires - issued, 2000);
        assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
        sleep_past(expires).await;
        assert_eq!(code_for(&server, &token).await, ConnAckCode::TOKEN_EXPIRED);
        // issue_token follows the same lifetime.
        let (issued, expires) = claim_times(&server.issue_token("bob", "Bob").unwrap());
        assert_eq!(expires - issued, 2000);
    }

    #[tokio::test]
    async fn zero_lifetime_means_never() {
        let server = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        assert_eq!(claim_times(&token).1, 0);
    }
}

mod block {
    use super::*;

    #[tokio::test]
    async fn live_connections_end_and_connects_are_refused_until_unblock() {
        let server = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        let mut desktop = connect_with(&server, &token, "desktop").await;
        let mut mobile = connect_with(&server, &token, "mobile").await;
        let mut bob = connect_as(&server, "bob").await;
        post_ok(
            &server,
            "/user/block.json",
            &[("userId", "alice"), ("minute", "10")],
        )
        .await;
        expect_disconnect(&mut desktop, DisconnectReason::USER_BLOCKED).await;
        expect_disconnect(&mut mobile, DisconnectReason::USER_BLOCKED).await;
        eventually("alice offline", || !server.is_online("alice")).await;
        expect_alive(&mut bob).await;

        assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
        // A fresh token does not help.
        let fresh = server.issue_token("alice", "Alice").unwrap();
        assert_eq!(code_for(&server, &fresh).await, ConnAckCode::USER_BLOCKED);

        post_ok(&server, "/user/unblock.json", &[("userId", "alice")]).await;
        let mut again = connect_with(&server, &token, "desktop").await;
        expect_alive(&mut again).await;
        assert_eq!(server.stats().kicks, 0, "a block is not a kick");
    }

    #[tokio::test]
    async fn in_process_block_and_unblock() {
        let server = server().await;
        let mut live = connect_as(&server, "alice").await;
        server.block("alice", 1).await.unwrap();
        expect_disconnect(&mut live, DisconnectReason::USER_BLOCKED).await;
        let token = server.issue_token("alice", "Alice").unwrap();
        assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
        server.unblock("alice").await.unwrap();
        assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
        assert!(server.block("alice", 0).await.is_err());
        assert!(server.block("alice", 43_201).await.is_err());
        assert!(server.block("a/b", 1).await.is_err());
    }

    #[tokio::test]
    async fn a_block_whose_time_has_passed_counts_as_unblocked() {
        let TestServer { server, _dir } = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        server.block("alice", 1).await.unwrap();
        assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
        // Move the stored end of the 1-minute block into the past, as if the minute
        // had gone by.
        let db = rusqlite::Connection::open(_dir.path().join("data").join(rcim_server::DB_FILE))
            .unwrap();
        db.busy_timeout(SOON).unwrap();
        let changed = db
            .execute(
                "UPDATE blocks SET until_ms = ?1 WHERE user_id = 'alice'",
                [now_ms() - 1],
            )
            .unwrap();
        assert_eq!(changed, 1);
        assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
        let (_, json) = post(&server, "/user/block/query.json", &[]).await;
        assert_eq!(json["users"], serde_json::json!([]), "{json}");
    }

    #[tokio::test]
    async fn blocks_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(config_in(dir.path())).await.unwrap();
        let token = server.issue_token("alice", "Alice").unwrap();
        server.block("alice", 5).await.unwrap();
        server.shutdown().await;
        let server = start(config_in(dir.path())).await.unwrap();
        assert_eq!(code_for(&server, &token).await, ConnAckCode::USER_BLOCKED);
        server.shutdown().await;
    }

    #[tokio::test]
    async fn the_token_is_checked_before_the_block() {
        let server = server().await;
        server.block("alice", 5).await.unwrap();
        let expired = server
            .issue_token_expiring("alice", now_ms() - 1000)
            .unwrap();
        assert_eq!(
            code_for(&server, &expired).await,
            ConnAckCode::TOKEN_EXPIRED
        );
        assert_eq!(
            code_for(&server, "garbage").await,
            ConnAckCode::TOKEN_INCORRECT
        );
    }

    #[tokio::test]
    async fn query_lists_current_blocks() {
        let server = server().await;
        post_ok(
            &server,
            "/user/block.json",
            &[("userId", "bob"), ("userId", "alice"), ("minute", "60")],
        )
        .await;
        let (status, json) = post(&server, "/user/block/query.json", &[]).await;
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
        let users = json["users"].as_array().unwrap();
        let ids: Vec<_> = users
            .iter()
            .map(|u| u["userId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["alice", "bob"]);
        let end = users[0]["blockEndTime"].as_str().unwrap();
        // "YYYY-MM-DD HH:MM:SS"
        assert_eq!(end.len(), 19, "{end}");
        assert_eq!((&end[4..5], &end[10..11], &end[13..14]), ("-", " ", ":"));
        post_ok(&server, "/user/unblock.json", &[("userId", "bob")]).await;
        let (_, json) = post(&server, "/user/block/query.json", &[]).await;
        assert_eq!(json["users"].as_array().unwrap().len(), 1, "{json}");
    }
}

mod moderation_api {
    use super::*;
    use rcim_server::api_client::{post_raw, sign};

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("user{i}")).collect()
    }

    async fn expect_1002(server: &RunningServer, path: &str, form: &[(&str, &str)]) {
        let (status, json) = post(server, path, form).await;
        assert_eq!(
            (status, json["code"].as_i64()),
            (400, Some(1002)),
            "{path} {form:?}: {json}"
        );
        assert!(json["errorMessage"].as_str().is_some_and(|m| !m.is_empty()));
    }

    #[tokio::test]
    async fn expire_checks_its_parameters() {
        let server = server().await;
        let path = "/user/token/expire.json";
        let ok_time = now_ms().to_string();
        let many = ids(21);
        let mut too_many: Vec<(&str, &str)> =
            many.iter().map(|id| ("userId", id.as_str())).collect();
        too_many.push(("time", &ok_time));
        expect_1002(&server, path, &too_many).await;
        let twenty = ids(20);
        let mut max: Vec<(&str, &str)> = twenty.iter().map(|id| ("userId", id.as_str())).collect();
        max.push(("time", &ok_time));
        post_ok(&server, path, &max).await;

        let cases: [&[(&str, &str)]; 8] = [
            &[("userId", "alice")],
            &[("userId", "alice"), ("time", "")],
            &[("userId", "alice"), ("time", "-1")],
            &[("userId", "alice"), ("time", "soon")],
            &[("userId", "alice"), ("time", "1.5")],
            &[("time", "1")],
            &[("userId", "a/b"), ("time", "1")],
            &[("userId", "alice"), ("userId", ""), ("time", "1")],
        ];
        for form in cases {
            expect_1002(&server, path, form).await;
        }
        post_ok(&server, path, &[("userId", "alice"), ("time", "0")]).await;
    }

    #[tokio::test]
    async fn block_and_unblock_check_their_parameters() {
        let server = server().await;
        let many = ids(21);
        let mut too_many: Vec<(&str, &str)> =
            many.iter().map(|id| ("userId", id.as_str())).collect();
        expect_1002(&server, "/user/unblock.json", &too_many).await;
        too_many.push(("minute", "1"));
        expect_1002(&server, "/user/block.json", &too_many).await;

        let cases: [&[(&str, &str)]; 7] = [
            &[("userId", "alice")],
            &[("userId", "alice"), ("minute", "0")],
            &[("userId", "alice"), ("minute", "43201")],
            &[("userId", "alice"), ("minute", "-5")],
            &[("userId", "alice"), ("minute", "ten")],
            &[("minute", "10")],
            &[("userId", "a b"), ("minute", "10")],
        ];
        for form in cases {
            expect_1002(&server, "/user/block.json", form).await;
        }
        post_ok(
            &server,
            "/user/block.json",
            &[("userId", "alice"), ("minute", "43200")],
        )
        .await;
        expect_1002(&server, "/user/unblock.json", &[]).await;
        expect_1002(&server, "/user/unblock.json", &[("userId", "a/b")]).await;
        post_ok(
            &server,
            "/user/unblock.json",
            &[("userId", "never-blocked")],
        )
        .await;
    }

    #[tokio::test]
    async fn new_endpoints_need_a_signature() {
        let server = server().await;
        let url = server.api_url();
        let bad_sig = sign("wrong-secret", "n1", "1700000000");
        let headers = [
            ("App-Key", APP_KEY),
            ("Nonce", "n1"),
            ("Timestamp", "1700000000"),
            ("Signature", bad_sig.as_str()),
        ];
        for (path, body) in [
            ("/user/token/expire.json", "userId=alice&time=1"),
            ("/user/block.json", "userId=alice&minute=1"),
            ("/user/unblock.json", "userId=alice"),
            ("/user/block/query.json", ""),
        ] {
            for headers in [&headers[..], &[]] {
                let (status, json) = post_raw(&url, path, headers, body.as_bytes())
                    .await
                    .unwrap();
                assert_eq!(
                    (status, json["code"].as_i64()),
                    (401, Some(1004)),
                    "{path}: {json}"
                );
            }
        }
        // Nothing was done.
        let token = server.issue_token("alice", "Alice").unwrap();
        assert_eq!(code_for(&server, &token).await, ConnAckCode::ACCEPTED);
    }
}

mod tls {
    use super::*;
    use rcim_server::TlsFiles;
    use rcim_server::testca::TestCa;
    use rustls::pki_types::ServerName;
    use tokio_rustls::TlsConnector;
    use tokio_rustls::client::TlsStream;

    async fn tls_server(ca: &TestCa) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = ca.write_files(dir.path());
        let mut config = config_in(dir.path());
        config.tls = Some(TlsFiles { cert, key });
        let server = start(config).await.unwrap();
        assert!(server.is_tls());
        assert!(
            server.im_url().starts_with("rcims://127.0.0.1:"),
            "{}",
            server.im_url()
        );
        TestServer { server, _dir: dir }
    }

    async fn tls_open(
        server: &RunningServer,
        client_config: Arc<rustls::ClientConfig>,
        name: &'static str,
    ) -> std::io::Result<Client<TlsStream<TcpStream>>> {
        let tcp = TcpStream::connect(server.im_addr()).await?;
        let name = ServerName::try_from(name).unwrap();
        let stream =
            tokio::time::timeout(SOON, TlsConnector::from(client_config).connect(name, tcp))
                .await
                .expect("TLS handshake hung")?;
        Ok(Client::over(stream))
    }

    use std::sync::Arc;

    #[tokio::test]
    async fn a_client_trusting_the_ca_connects() {
        let ca = TestCa::new();
        let server = tls_server(&ca).await;
        let mut clients = Vec::new();
        for name in ["localhost", "127.0.0.1"] {
            let mut client = tls_open(&server, ca.client_config(), name).await.unwrap();
            let token = server.issue_token("alice", "Alice").unwrap();
            client
                .send(&connect_msg_on(WIRE_VERSION, APP_KEY, &token, name))
                .await;
            let ack = client.connack().await;
            assert_eq!(
                (ack.code, ack.user_id.as_deref()),
                (ConnAckCode::ACCEPTED, Some("alice"))
            );
            expect_alive(&mut client).await;
            clients.push(client);
        }
        assert_eq!(server.stats().online, 2);
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_and_the_server_keeps_serving() {
        let ca = TestCa::new();
        let server = tls_server(&ca).await;
        let mut good = tls_open(&server, ca.client_config(), "localhost")
            .await
            .unwrap();
        let token = server.issue_token("alice", "Alice").unwrap();
        good.send(&connect_msg(WIRE_VERSION, APP_KEY, &token)).await;
        assert_eq!(good.connack().await.code, ConnAckCode::ACCEPTED);

        let other = TestCa::new();
        let refused = tls_open(&server, other.client_config(), "localhost").await;
        assert!(
            refused.is_err(),
            "a certificate from another CA was accepted"
        );

        // A plain-TCP client on the TLS endpoint is closed, not served.
        let mut plain = Client::open(server.im_addr()).await;
        plain
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        plain.expect_closed().await;

        // The existing connection and new ones are unaffected.
        expect_alive(&mut good).await;
        let mut again = tls_open(&server, ca.client_config(), "localhost")
            .await
            .unwrap();
        let bob = server.issue_token("bob", "Bob").unwrap();
        again.send(&connect_msg(WIRE_VERSION, APP_KEY, &bob)).await;
        assert_eq!(again.connack().await.code, ConnAckCode::ACCEPTED);
        assert_eq!(server.stats().connects_accepted, 2);
        assert_eq!(server.stats().connects_rejected, 0);
    }

    #[tokio::test]
    async fn shutdown_reaches_tls_connections() {
        let ca = TestCa::new();
        let TestServer { server, _dir } = tls_server(&ca).await;
        let mut client = tls_open(&server, ca.client_config(), "localhost")
            .await
            .unwrap();
        let token = server.issue_token("alice", "Alice").unwrap();
        client
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        assert_eq!(client.connack().await.code, ConnAckCode::ACCEPTED);
        let shutdown = tokio::spawn(server.shutdown());
        expect_disconnect(&mut client, DisconnectReason::SERVER_SHUTDOWN).await;
        tokio::time::timeout(SOON, shutdown).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn bad_certificate_files_are_clear_startup_errors() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let (ca_path, cert, key) = ca.write_files(dir.path());
        let other_key = dir.path().join("other.key");
        std::fs::write(&other_key, TestCa::new().leaf(&["localhost"]).1).unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a PEM file\n").unwrap();
        let missing = dir.path().join("missing.pem");
        let cases = [
            (
                missing.clone(),
                key.clone(),
                "cannot read the TLS certificate file",
            ),
            (garbage.clone(), key.clone(), "contains no PEM certificate"),
            (
                cert.clone(),
                missing.clone(),
                "cannot read a PEM private key",
            ),
            (
                cert.clone(),
                garbage.clone(),
                "cannot read a PEM private key",
            ),
            (
                cert.clone(),
                ca_path.clone(),
                "cannot read a PEM private key",
            ),
            (
                cert.clone(),
                other_key.clone(),
                "is not usable with the certificate",
            ),
        ];
        for (cert, key, expected) in cases {
            let mut config = config_in(dir.path());
            config.tls = Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
            let err = format!("{:#}", start(config).await.unwrap_err());
            assert!(err.contains(expected), "{cert:?} {key:?}: {err}");
        }
    }
}

mod in_process {
    use super::*;
    use tokio::io::DuplexStream;

    /// A server whose IM connections run over an in-memory pipe.
    async fn duplex_client(server: &RunningServer) -> Client<DuplexStream> {
        let (client, server_side) = tokio::io::duplex(64 * 1024);
        server.serve_stream(server_side);
        Client::over(client)
    }

    #[tokio::test(start_paused = true)]
    async fn serve_stream_runs_the_real_connection_under_paused_time() {
        let server = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        let mut client = duplex_client(&server).await;
        client
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        let ack = client.connack().await;
        assert_eq!(
            (ack.code, ack.user_id.as_deref()),
            (ConnAckCode::ACCEPTED, Some("alice"))
        );
        assert!(server.is_online("alice"));
        expect_alive(&mut client).await;

        // The heartbeat timeout runs on the paused clock.
        let silent = tokio::time::Instant::now();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(600), client.reader.read::<ServerMsg>())
                .await
                .unwrap()
                .unwrap(),
            Some(ServerMsg::Disconnect {
                reason: DisconnectReason::HEARTBEAT_TIMEOUT
            })
        );
        let waited = silent.elapsed();
        assert!(
            waited >= Duration::from_secs(90) && waited < Duration::from_secs(91),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_database_checks_work_under_paused_time() {
        let server = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        let mut live = duplex_client(&server).await;
        live.send(&connect_msg(WIRE_VERSION, APP_KEY, &token)).await;
        assert_eq!(live.connack().await.code, ConnAckCode::ACCEPTED);

        // Kick.
        let mut newer = duplex_client(&server).await;
        newer
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        assert_eq!(newer.connack().await.code, ConnAckCode::ACCEPTED);
        expect_disconnect(&mut live, DisconnectReason::KICKED).await;

        // Block.
        server.block("alice", 1).await.unwrap();
        expect_disconnect(&mut newer, DisconnectReason::USER_BLOCKED).await;
        let mut refused = duplex_client(&server).await;
        refused
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        assert_eq!(refused.connack().await.code, ConnAckCode::USER_BLOCKED);
        refused.expect_closed().await;
        server.unblock("alice").await.unwrap();

        // Token expiry.
        server
            .expire_tokens("alice", now_ms() + 60_000)
            .await
            .unwrap();
        let mut expired = duplex_client(&server).await;
        expired
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        assert_eq!(expired.connack().await.code, ConnAckCode::TOKEN_EXPIRED);
        assert_eq!(server.stats().kicks, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_covers_in_process_connections() {
        let TestServer { server, _dir } = server().await;
        let token = server.issue_token("alice", "Alice").unwrap();
        let mut client = duplex_client(&server).await;
        client
            .send(&connect_msg(WIRE_VERSION, APP_KEY, &token))
            .await;
        assert_eq!(client.connack().await.code, ConnAckCode::ACCEPTED);
        let mut idle = duplex_client(&server).await;
        let shutdown = tokio::spawn(server.shutdown());
        expect_disconnect(&mut client, DisconnectReason::SERVER_SHUTDOWN).await;
        idle.expect_closed().await;
        shutdown.await.unwrap();
    }
}

/// Messaging: publish and PubAck codes, de-duplication, groups, sync paging, live
/// pushes and the seam between them, acks, the Server API's publish and group
/// endpoints, and the bulk path.
mod messaging {
    use super::*;
    use rcim_proto::message::{ConversationKey, ConversationType, MAX_CONTENT_LEN};
    use rcim_proto::upstream::{InboxEntry, PubAck, Publish};
    use rcim_server::api_client::{post_raw, sign};
    use std::collections::HashSet;

    const TXT: &str = "RC:TxtMsg";

    fn publish_msg(
        req_id: u64,
        client_msg_id: &str,
        to: ConversationKey,
        content: &str,
    ) -> ClientMsg {
        ClientMsg::Publish(Publish {
            req_id,
            client_msg_id: client_msg_id.into(),
            conversation: to,
            object_name: TXT.into(),
            content: content.into(),
        })
    }

    impl<S: AsyncRead + AsyncWrite> Client<S> {
        /// Sends `msg` (a Publish) and returns its PubAck.
        async fn publish(&mut self, msg: ClientMsg) -> PubAck {
            let ClientMsg::Publish(Publish { req_id, .. }) = &msg else {
                panic!("not a publish: {msg:?}");
            };
            let req_id = *req_id;
            self.send(&msg).await;
            match self.recv().await {
                ServerMsg::PubAck(ack) => {
                    assert_eq!(ack.req_id, req_id);
                    ack
                }
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }

        /// Sends a private text message and returns its PubAck.
        async fn say(&mut self, req_id: u64, to: &str, text: &str) -> PubAck {
            let id = format!("c-{req_id}-{text}");
            self.publish(publish_msg(req_id, &id, ConversationKey::private(to), text))
                .await
        }

        /// Sends `Sync{since}` and returns the batch.
        async fn sync(&mut self, since_seq: u64) -> (Vec<InboxEntry>, bool) {
            self.send(&ClientMsg::Sync { since_seq }).await;
            match self.recv().await {
                ServerMsg::SyncBatch { entries, has_more } => (entries, has_more),
                other => panic!("expected SYNCBATCH, got {other:?}"),
            }
        }

        /// Syncs from `since` until a batch says `has_more: false`; returns every
        /// entry and each batch's size.
        async fn sync_all(&mut self, mut since: u64) -> (Vec<InboxEntry>, Vec<usize>) {
            let (mut all, mut sizes) = (Vec::new(), Vec::new());
            loop {
                let (entries, has_more) = self.sync(since).await;
                sizes.push(entries.len());
                if let Some(last) = entries.last() {
                    since = last.seq;
                }
                all.extend(entries);
                if !has_more {
                    return (all, sizes);
                }
            }
        }

        async fn push(&mut self) -> InboxEntry {
            match self.recv().await {
                ServerMsg::Push(entry) => entry,
                other => panic!("expected PUSH, got {other:?}"),
            }
        }
    }

    /// Connects as `user` and syncs until live.
    async fn live_as(server: &RunningServer, user: &str) -> Client {
        live_on(server, user, "desktop").await
    }

    async fn live_on(server: &RunningServer, user: &str, platform: &str) -> Client {
        let mut client = connect_on(server, user, platform).await;
        client.sync_all(0).await;
        client
    }

    /// Asserts `seqs` are exactly `from..=to`.
    fn assert_contiguous(seqs: &[u64], from: u64, to: u64) {
        let want: Vec<u64> = (from..=to).collect();
        assert_eq!(seqs.len(), want.len(), "count");
        assert!(seqs == want, "not contiguous from {from} to {to}");
    }

    fn seqs(entries: &[InboxEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.seq).collect()
    }

    /// Polls an async condition until it holds or [`SOON`] passes.
    async fn eventually_async<F: std::future::Future<Output = bool>>(
        what: &str,
        mut f: impl FnMut() -> F,
    ) {
        let deadline = tokio::time::Instant::now() + SOON;
        while !f().await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn publish_is_acked_pushed_to_live_recipients_and_synced_by_offline_ones() {
        let server = server().await;
        let mut alice = connect_as(&server, "alice").await;
        let mut bob = live_as(&server, "bob").await;
        let before = now_ms();
        let ack = alice.say(1, "bob", "hello").await;
        assert_eq!(ack.code, 0, "{ack:?}");
        let uid = ack.message_uid.clone().expect("a uid");
        assert!(
            ack.sent_time_ms >= before && ack.sent_time_ms <= now_ms(),
            "{ack:?}"
        );

        let push = bob.push().await;
        assert_eq!(push.seq, 1);
        assert_eq!(push.message.uid, uid);
        assert_eq!(push.message.conversation, ConversationKey::private("alice"));
        assert_eq!(push.message.sender, "alice");
        assert_eq!(push.message.object_name, TXT);
        assert_eq!(push.message.content, "hello");
        assert_eq!(push.message.sent_time_ms, ack.sent_time_ms);
        expect_alive(&mut bob).await; // exactly one push: the pong comes next
        expect_alive(&mut alice).await; // the sender gets no copy

        // Carol is offline; she gets it by syncing later.
        let ack = alice.say(2, "carol", "later").await;
        assert_eq!(ack.code, 0);
        let mut carol = connect_as(&server, "carol").await;
        let (entries, has_more) = carol.sync(0).await;
        assert!(!has_more);
        assert_eq!(seqs(&entries), vec![1]);
        assert_eq!(entries[0].message.uid, ack.message_uid.unwrap());
        assert_eq!(entries[0].message.content, "later");
        assert_eq!(server.stats().messages, 2);
    }

    #[tokio::test]
    async fn a_resent_client_message_id_is_one_message() {
        let server = server().await;
        let mut bob = live_as(&server, "bob").await;
        let mut alice = connect_as(&server, "alice").await;
        let msg = publish_msg(1, "cid-1", ConversationKey::private("bob"), "once");
        let first = alice.publish(msg.clone()).await;
        assert_eq!(first.code, 0);
        let again = alice.publish(msg.clone()).await;
        assert_eq!(again, first, "same uid and time");

        // And across a reconnect (the new connection kicks the old one).
        let mut alice2 = connect_as(&server, "alice").await;
        expect_disconnect(&mut alice, DisconnectReason::KICKED).await;
        let third = alice2.publish(msg).await;
        assert_eq!(
            (third.message_uid.as_deref(), third.sent_time_ms),
            (first.message_uid.as_deref(), first.sent_time_ms)
        );

        assert_eq!(
            bob.push().await.message.uid,
            first.message_uid.clone().unwrap()
        );
        expect_alive(&mut bob).await;
        assert_eq!(server.inbox_uids("bob").await.unwrap().len(), 1);
        assert_eq!(
            server.messages_from("alice").await.unwrap(),
            vec![("cid-1".to_owned(), first.message_uid.unwrap())]
        );
        assert_eq!(server.stats().messages, 1);
    }

    #[tokio::test]
    async fn group_messages_fan_out_to_members_but_the_sender() {
        let server = server().await;
        post_ok(
            &server,
            "/group/create.json",
            &[
                ("userId", "alice"),
                ("userId", "bob"),
                ("groupId", "g1"),
                ("groupName", "G"),
            ],
        )
        .await;
        post_ok(
            &server,
            "/group/join.json",
            &[("userId", "carol"), ("groupId", "g1")],
        )
        .await;
        assert_eq!(
            server.group_members("g1").await.unwrap(),
            ["alice", "bob", "carol"]
        );
        let mut alice = live_as(&server, "alice").await;
        let mut bob = live_as(&server, "bob").await;
        let mut carol = live_as(&server, "carol").await;
        let mut dave = live_as(&server, "dave").await;

        let to_g1 = || ConversationKey::group("g1");
        let ack = alice.publish(publish_msg(1, "a1", to_g1(), "hi all")).await;
        assert_eq!(ack.code, 0);
        for member in [&mut bob, &mut carol] {
            let push = member.push().await;
            assert_eq!(push.message.conversation, to_g1());
            assert_eq!(push.message.sender, "alice");
            assert_eq!(Some(push.message.uid), ack.message_uid);
        }
        expect_alive(&mut alice).await;
        assert!(server.inbox_uids("alice").await.unwrap().is_empty());
        assert_eq!(server.stats().messages, 1, "a group message counts once");

        let ack = dave
            .publish(publish_msg(1, "d1", to_g1(), "let me in"))
            .await;
        assert_eq!((ack.code, ack.message_uid), (22406, None));

        post_ok(
            &server,
            "/group/quit.json",
            &[("userId", "carol"), ("groupId", "g1")],
        )
        .await;
        let ack = alice
            .publish(publish_msg(2, "a2", to_g1(), "carol left"))
            .await;
        assert_eq!(ack.code, 0);
        assert_eq!(bob.push().await.seq, 2);
        expect_alive(&mut carol).await;
        assert_eq!(server.inbox_uids("carol").await.unwrap().len(), 1);

        post_ok(
            &server,
            "/group/dismiss.json",
            &[("userId", "bob"), ("groupId", "g1")],
        )
        .await;
        let ack = alice
            .publish(publish_msg(3, "a3", to_g1(), "anyone?"))
            .await;
        assert_eq!(ack.code, 22406);
        expect_alive(&mut bob).await;
        assert_eq!(server.stats().messages, 2);
    }

    #[tokio::test]
    async fn sync_pages_by_200_then_pushes_live() {
        let server = server().await;
        server
            .publish_private_bulk("sys", "bob", 450, TXT, "m")
            .await
            .unwrap();
        let mut bob = connect_as(&server, "bob").await;
        let (entries, sizes) = bob.sync_all(0).await;
        assert_eq!(sizes, vec![200, 200, 50]);
        assert_contiguous(&seqs(&entries), 1, 450);
        assert_eq!(entries[449].message.content, "m449");
        let uids: Vec<_> = entries
            .iter()
            .map(|e| (e.seq, e.message.uid.clone()))
            .collect();
        assert_eq!(uids, server.inbox_uids("bob").await.unwrap());

        let uid = server
            .publish_private("sys", &["bob"], TXT, "live")
            .await
            .unwrap();
        let push = bob.push().await;
        assert_eq!((push.seq, push.message.uid), (451, uid[0].clone()));

        // A re-sync while live is answered, and pushes resume after it.
        let (entries, has_more) = bob.sync(440).await;
        assert_eq!((seqs(&entries), has_more), ((441..=451).collect(), false));
        server
            .publish_private("sys", &["bob"], TXT, "again")
            .await
            .unwrap();
        assert_eq!(bob.push().await.seq, 452);
        expect_alive(&mut bob).await;
    }

    /// Publishes `count` messages to `to` one by one while `client` syncs from 0
    /// and then listens; checks the client saw every inbox entry exactly once, in
    /// order, with the same uids as the server's inbox.
    async fn sync_while_publishing(server: &RunningServer, to: &str, count: usize) {
        let mut client = connect_as(server, to).await;
        let publisher = async {
            for i in 0..count {
                server
                    .publish_private("sys", &[to], TXT, &format!("p{i}"))
                    .await
                    .unwrap();
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        };
        let total = server.inbox_uids(to).await.unwrap().len() + count;
        let receiver = async {
            let mut got: Vec<InboxEntry> = Vec::new();
            let mut since = 0;
            loop {
                let (entries, has_more) = client.sync(since).await;
                if let Some(last) = entries.last() {
                    since = last.seq;
                }
                got.extend(entries);
                if !has_more {
                    break;
                }
            }
            while got.len() < total {
                got.push(client.push().await);
            }
            got
        };
        let ((), got) = tokio::join!(publisher, receiver);
        expect_alive(&mut client).await; // nothing extra was pushed
        let inbox = server.inbox_uids(to).await.unwrap();
        assert_eq!(inbox.len(), total);
        let seen: Vec<_> = got.iter().map(|e| (e.seq, e.message.uid.clone())).collect();
        assert_eq!(seen, inbox, "every entry once, in order");
        assert_contiguous(&seqs(&got), 1, total as u64);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_gap_and_no_duplicate_when_messages_arrive_during_the_sync() {
        let server = server().await;
        for round in 0..4 {
            let user = format!("bob{round}");
            server
                .publish_private_bulk("sys", &user, 450 + round * 37, TXT, "b")
                .await
                .unwrap();
            sync_while_publishing(&server, &user, 300).await;
        }
        // With nothing before the sync, too.
        sync_while_publishing(&server, "carol", 300).await;
    }

    #[tokio::test]
    async fn acks_are_recorded_and_an_ack_beyond_the_inbox_is_a_protocol_error() {
        let server = server().await;
        server
            .publish_private_bulk("sys", "bob", 5, TXT, "a")
            .await
            .unwrap();
        let mut bob = live_as(&server, "bob").await;
        bob.send(&ClientMsg::Ack { seq: 3 }).await;
        bob.send(&ClientMsg::Ack { seq: 2 }).await;
        expect_alive(&mut bob).await;
        eventually_async("ack 3 recorded", || async {
            server.inbox_state("bob").await.unwrap() == (5, 3)
        })
        .await;

        // A connection that has not synced may ack what an earlier one received.
        let mut mobile = connect_on(&server, "bob", "mobile").await;
        mobile.send(&ClientMsg::Ack { seq: 5 }).await;
        expect_alive(&mut mobile).await;
        assert_eq!(server.inbox_state("bob").await.unwrap(), (5, 5));

        bob.send(&ClientMsg::Ack { seq: 6 }).await;
        expect_disconnect(&mut bob, DisconnectReason::PROTOCOL_ERROR).await;
        assert_eq!(server.inbox_state("bob").await.unwrap(), (5, 5));
        let mut nobody = connect_as(&server, "nobody").await;
        nobody.send(&ClientMsg::Ack { seq: 0 }).await;
        expect_alive(&mut nobody).await;
        nobody.send(&ClientMsg::Ack { seq: 1 }).await;
        expect_disconnect(&mut nobody, DisconnectReason::PROTOCOL_ERROR).await;
    }

    #[tokio::test]
    async fn bad_publishes_get_their_codes_and_the_connection_stays() {
        let server = server().await;
        let mut alice = connect_as(&server, "alice").await;
        let bob = || ConversationKey::private("bob");
        let with_object = |object_name: &str| {
            ClientMsg::Publish(Publish {
                req_id: 1,
                client_msg_id: "x".into(),
                conversation: bob(),
                object_name: object_name.into(),
                content: "{}".into(),
            })
        };
        for (msg, code) in [
            (with_object(""), 33003),
            (with_object("RC: Txt"), 33003),
            (with_object(&"X".repeat(33)), 33003),
            (
                publish_msg(2, "big", bob(), &"x".repeat(MAX_CONTENT_LEN + 1)),
                30016,
            ),
            (
                publish_msg(
                    3,
                    "sys",
                    ConversationKey {
                        kind: ConversationType::System,
                        target_id: "bob".into(),
                    },
                    "{}",
                ),
                33003,
            ),
            (
                publish_msg(
                    4,
                    "room",
                    ConversationKey {
                        kind: ConversationType::Chatroom,
                        target_id: "r1".into(),
                    },
                    "{}",
                ),
                33003,
            ),
            (
                publish_msg(5, "slash", ConversationKey::private("a/b"), "{}"),
                33003,
            ),
            (publish_msg(6, "", bob(), "{}"), 33003),
        ] {
            let ack = alice.publish(msg.clone()).await;
            assert_eq!(
                (ack.code, ack.message_uid.as_deref()),
                (code, None),
                "{msg:?}"
            );
        }
        // The largest content is fine.
        let big = publish_msg(7, "max", bob(), &"x".repeat(MAX_CONTENT_LEN));
        assert_eq!(alice.publish(big).await.code, 0);
        expect_alive(&mut alice).await;
        assert_eq!(server.stats().messages, 1);
        assert_eq!(server.inbox_uids("bob").await.unwrap().len(), 1);

        // A full-size backlog still syncs: batches stay under the frame cap.
        server
            .publish_private_bulk("sys", "bob", 3, TXT, &"y".repeat(MAX_CONTENT_LEN - 8))
            .await
            .unwrap();
        for i in 0..10 {
            let big = publish_msg(
                10 + i,
                &format!("max{i}"),
                bob(),
                &"x".repeat(MAX_CONTENT_LEN),
            );
            assert_eq!(alice.publish(big).await.code, 0);
        }
        let mut bob_client = connect_as(&server, "bob").await;
        let (entries, sizes) = bob_client.sync_all(0).await;
        assert_contiguous(&seqs(&entries), 1, 14);
        assert!(sizes.len() >= 2, "{sizes:?}");
    }

    #[tokio::test]
    async fn server_api_publishes_private_system_and_group_messages() {
        let server = server().await;
        let mut bob = live_as(&server, "bob").await;
        post_ok(
            &server,
            "/message/private/publish.json",
            &[
                ("fromUserId", "shop"),
                ("toUserId", "bob"),
                ("toUserId", "carol"),
                ("objectName", TXT),
                ("content", r#"{"content":"sale"}"#),
                ("pushContent", "ignored"),
                ("isIncludeSender", "0"),
                ("count", "1"),
            ],
        )
        .await;
        let push = bob.push().await;
        assert_eq!(push.message.conversation, ConversationKey::private("shop"));
        assert_eq!(push.message.content, r#"{"content":"sale"}"#);
        let carol = server.inbox_uids("carol").await.unwrap();
        assert_eq!(carol.len(), 1);
        assert_ne!(carol[0].1, push.message.uid, "one message per recipient");

        post_ok(
            &server,
            "/message/system/publish.json",
            &[
                ("fromUserId", "news"),
                ("toUserId", "bob"),
                ("objectName", TXT),
                ("content", "{}"),
            ],
        )
        .await;
        let push = bob.push().await;
        assert_eq!(
            push.message.conversation,
            ConversationKey {
                kind: ConversationType::System,
                target_id: "news".into()
            }
        );

        // A group message from the back-end: its sender need not be a member.
        server
            .create_group("g1", "G", &["bob", "carol"])
            .await
            .unwrap();
        post_ok(
            &server,
            "/message/group/publish.json",
            &[
                ("fromUserId", "admin"),
                ("toGroupId", "g1"),
                ("objectName", TXT),
                ("content", "{}"),
            ],
        )
        .await;
        let push = bob.push().await;
        assert_eq!(push.message.conversation, ConversationKey::group("g1"));
        assert_eq!(push.message.sender, "admin");
        assert_eq!(server.inbox_uids("carol").await.unwrap().len(), 2);
        expect_alive(&mut bob).await;
        assert_eq!(server.stats().messages, 4);

        // The in-process helpers share the implementation.
        let uids = server
            .publish_system("news", &["bob", "bob", "dave"], TXT, "{}")
            .await
            .unwrap();
        assert_eq!(uids.len(), 2, "repeats count once");
        assert_eq!(bob.push().await.message.uid, uids[0]);
        server.join_group("g1", &["dave"]).await.unwrap();
        server.quit_group("g1", &["carol"]).await.unwrap();
        assert_eq!(server.group_members("g1").await.unwrap(), ["bob", "dave"]);
        let uid = server.publish_group("bob", "g1", TXT, "{}").await.unwrap();
        assert_eq!(
            server.inbox_uids("dave").await.unwrap().last().unwrap().1,
            uid
        );
        expect_alive(&mut bob).await; // the sender gets no copy
    }

    #[tokio::test]
    async fn server_api_checks_message_and_group_parameters() {
        let server = server().await;
        let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
        let mut too_many: Vec<(&str, &str)> =
            many.iter().map(|u| ("toUserId", u.as_str())).collect();
        too_many.extend([("fromUserId", "a"), ("objectName", TXT), ("content", "{}")]);
        let hundred_one: Vec<(&str, &str)> = too_many[..101]
            .iter()
            .copied()
            .chain([("fromUserId", "a"), ("objectName", TXT), ("content", "{}")])
            .collect();
        let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (
                "/message/private/publish.json",
                vec![("toUserId", "b"), ("objectName", TXT), ("content", "{}")],
            ),
            (
                "/message/private/publish.json",
                vec![("fromUserId", "a"), ("objectName", TXT), ("content", "{}")],
            ),
            (
                "/message/private/publish.json",
                vec![("fromUserId", "a"), ("toUserId", "b"), ("content", "{}")],
            ),
            (
                "/message/private/publish.json",
                vec![("fromUserId", "a"), ("toUserId", "b"), ("objectName", TXT)],
            ),
            (
                "/message/private/publish.json",
                vec![
                    ("fromUserId", "a"),
                    ("toUserId", "b/c"),
                    ("objectName", TXT),
                    ("content", "{}"),
                ],
            ),
            (
                "/message/private/publish.json",
                vec![
                    ("fromUserId", "a"),
                    ("toUserId", "b"),
                    ("objectName", "RC: x"),
                    ("content", "{}"),
                ],
            ),
            ("/message/private/publish.json", too_many.clone()),
            ("/message/system/publish.json", hundred_one),
            (
                "/message/system/publish.json",
                vec![
                    ("fromUserId", ""),
                    ("toUserId", "b"),
                    ("objectName", TXT),
                    ("content", "{}"),
                ],
            ),
            (
                "/message/group/publish.json",
                vec![("fromUserId", "a"), ("objectName", TXT), ("content", "{}")],
            ),
            (
                "/message/group/publish.json",
                vec![
                    ("fromUserId", "a"),
                    ("toGroupId", "g1"),
                    ("toGroupId", "g2"),
                    ("toGroupId", "g3"),
                    ("toGroupId", "g4"),
                    ("objectName", TXT),
                    ("content", "{}"),
                ],
            ),
            (
                "/group/create.json",
                vec![("userId", "a"), ("groupId", "g1")],
            ),
            (
                "/group/create.json",
                vec![("groupId", "g1"), ("groupName", "G")],
            ),
            (
                "/group/create.json",
                vec![("userId", "a"), ("groupId", "g/1"), ("groupName", "G")],
            ),
            ("/group/join.json", vec![("userId", "a")]),
            ("/group/quit.json", vec![("groupId", "g1")]),
            ("/group/dismiss.json", vec![("groupId", "g1")]),
            ("/group/dismiss.json", vec![("userId", "a")]),
        ];
        for (path, form) in &cases {
            let (status, json) = post(&server, path, form).await;
            assert_eq!(
                (status, json["code"].as_i64()),
                (400, Some(1002)),
                "{path} {:?}: {json}",
                &form[..form.len().min(4)]
            );
            assert!(
                json["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
                "{json}"
            );
        }
        assert_eq!(server.stats().messages, 0);
        assert!(server.inbox_uids("b").await.unwrap().is_empty());
        // Exactly 1000 recipients is fine.
        let mut thousand = too_many;
        thousand.remove(0);
        post_ok(&server, "/message/private/publish.json", &thousand).await;
        assert_eq!(server.stats().messages, 1000);
    }

    #[tokio::test]
    async fn message_and_group_endpoints_need_a_signature() {
        let server = server().await;
        let url = server.api_url();
        let bad_sig = sign("wrong-secret", "n1", "1700000000");
        let headers = [
            ("App-Key", APP_KEY),
            ("Nonce", "n1"),
            ("Timestamp", "1700000000"),
            ("Signature", bad_sig.as_str()),
        ];
        for (path, body) in [
            (
                "/message/private/publish.json",
                "fromUserId=a&toUserId=b&objectName=RC:TxtMsg&content=x",
            ),
            (
                "/message/system/publish.json",
                "fromUserId=a&toUserId=b&objectName=RC:TxtMsg&content=x",
            ),
            (
                "/message/group/publish.json",
                "fromUserId=a&toGroupId=g&objectName=RC:TxtMsg&content=x",
            ),
            ("/group/create.json", "userId=b&groupId=g&groupName=G"),
            ("/group/join.json", "userId=b&groupId=g"),
            ("/group/quit.json", "userId=b&groupId=g"),
            ("/group/dismiss.json", "userId=b&groupId=g"),
            ("/rcim/inbox/query.json", "userId=b"),
            ("/rcim/message/sent.json", "fromUserId=a"),
            (
                "/rcim/message/bulk.json",
                "fromUserId=a&toUserId=b&count=5&objectName=RC:TxtMsg",
            ),
        ] {
            for headers in [&headers[..], &[]] {
                let (status, json) = post_raw(&url, path, headers, body.as_bytes())
                    .await
                    .unwrap();
                assert_eq!(
                    (status, json["code"].as_i64()),
                    (401, Some(1004)),
                    "{path}: {json}"
                );
            }
        }
        // Nothing was done.
        assert_eq!(server.stats().messages, 0);
        assert!(server.group_members("g").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn rcim_inspection_endpoints_list_inboxes_and_sent_messages() {
        let server = server().await;
        let (status, json) = post(
            &server,
            "/rcim/message/bulk.json",
            &[
                ("fromUserId", "sys"),
                ("toUserId", "bob"),
                ("count", "1500"),
                ("objectName", TXT),
                ("contentPrefix", "n"),
            ],
        )
        .await;
        assert_eq!(
            (status, &json["count"]),
            (200, &serde_json::json!(1500)),
            "{json}"
        );
        let (status, json) = post(&server, "/rcim/inbox/query.json", &[("userId", "bob")]).await;
        assert_eq!(status, 200, "{json}");
        let entries = json["entries"].as_array().unwrap();
        let inbox = server.inbox_uids("bob").await.unwrap();
        assert_eq!(entries.len(), 1500);
        assert_eq!(entries[1499]["seq"], 1500);
        assert_eq!(entries[0]["uid"].as_str(), Some(inbox[0].1.as_str()));

        let mut alice = connect_as(&server, "alice").await;
        let ack = alice.say(1, "bob", "x").await;
        let (_, json) = post(
            &server,
            "/rcim/message/sent.json",
            &[("fromUserId", "alice")],
        )
        .await;
        assert_eq!(
            json["messages"],
            serde_json::json!([{ "clientMsgId": "c-1-x", "uid": ack.message_uid.unwrap() }])
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn bulk_streams_20000_messages_exactly_once_in_order() {
        const COUNT: usize = 20_000;
        let server = server().await;
        let mut live = live_as(&server, "bob").await;
        let started = std::time::Instant::now();
        let bulk = server.publish_private_bulk("sys", "bob", COUNT as u32, TXT, "bulk-");
        let receive = async {
            let mut got = Vec::with_capacity(COUNT);
            while got.len() < COUNT {
                got.push(live.push().await);
            }
            got
        };
        let (uids, pushed) = tokio::join!(bulk, receive);
        let uids = uids.unwrap();
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
        assert_eq!(uids.len(), COUNT);
        assert_contiguous(&seqs(&pushed), 1, COUNT as u64);
        assert!(pushed.iter().map(|e| &e.message.uid).eq(uids.iter()));
        assert_eq!(
            pushed[COUNT - 1].message.content,
            format!("bulk-{}", COUNT - 1)
        );
        expect_alive(&mut live).await;

        // A second device syncs the whole backlog in packages of 200.
        let mut other = connect_on(&server, "bob", "mobile").await;
        let (entries, sizes) = other.sync_all(0).await;
        assert_eq!(
            sizes,
            vec![200; COUNT / 200],
            "the last full package says no more"
        );
        assert_contiguous(&seqs(&entries), 1, COUNT as u64);
        let distinct: HashSet<_> = entries.iter().map(|e| &e.message.uid).collect();
        assert_eq!(distinct.len(), COUNT);
        assert_eq!(server.stats().messages, COUNT as u64);
    }

    #[tokio::test]
    async fn messages_and_sequence_numbers_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(config_in(dir.path())).await.unwrap();
        server
            .create_group("g1", "G", &["alice", "bob"])
            .await
            .unwrap();
        let first = server
            .publish_private("sys", &["bob"], TXT, "1")
            .await
            .unwrap();
        server.shutdown().await;
        let server = start(config_in(dir.path())).await.unwrap();
        let mut alice = connect_as(&server, "alice").await;
        let ack = alice
            .publish(publish_msg(1, "g", ConversationKey::group("g1"), "2"))
            .await;
        assert_eq!(ack.code, 0, "membership survived");
        let inbox = server.inbox_uids("bob").await.unwrap();
        assert_eq!(
            inbox,
            vec![(1, first[0].clone()), (2, ack.message_uid.unwrap())]
        );
        server.shutdown().await;
    }

    #[tokio::test(start_paused = true)]
    async fn messaging_works_in_process_under_paused_time() {
        let server = server().await;
        let token = server.issue_token("bob", "Bob").unwrap();
        let (client_side, server_side) = tokio::io::duplex(64 * 1024);
        server.serve_stream(server_side);
        let mut bob = Client::over(client_side);
        bob.send(&connect_msg(WIRE_VERSION, APP_KEY, &token)).await;
        assert_eq!(bob.connack().await.code, ConnAckCode::ACCEPTED);
        server
            .publish_private_bulk("sys", "bob", 250, TXT, "x")
            .await
            .unwrap();
        let (entries, sizes) = bob.sync_all(0).await;
        assert_eq!(sizes, vec![200, 50]);
        assert_contiguous(&seqs(&entries), 1, 250);
        let uid = server
            .publish_private("alice", &["bob"], TXT, "hi")
            .await
            .unwrap();
        assert_eq!(bob.push().await.message.uid, uid[0]);
        bob.send(&ClientMsg::Ack { seq: 251 }).await;
        expect_alive(&mut bob).await;
        // The heartbeat still runs on the paused clock while live.
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(600), bob.reader.read::<ServerMsg>())
                .await
                .unwrap()
                .unwrap(),
            Some(ServerMsg::Disconnect {
                reason: DisconnectReason::HEARTBEAT_TIMEOUT
            })
        );
        assert_eq!(server.inbox_state("bob").await.unwrap(), (251, 251));
    }
}

mod replay {
    //! Signature replay over HTTP: a request captured on the wire cannot be sent
    //! again, and an old one is refused for its timestamp, each with a clear message.
    use super::*;
    use rcim_server::api_client::{post_raw, sign};

    fn now_s() -> i64 {
        now_ms() / 1000
    }

    async fn send(
        server: &RunningServer,
        nonce: &str,
        timestamp: &str,
    ) -> (u16, serde_json::Value) {
        let signature = sign(APP_SECRET, nonce, timestamp);
        let headers = [
            ("App-Key", APP_KEY),
            ("Nonce", nonce),
            ("Timestamp", timestamp),
            ("Signature", signature.as_str()),
        ];
        post_raw(
            &server.api_url(),
            "/user/getToken.json",
            &headers,
            b"userId=alice&name=Alice",
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn a_reused_nonce_is_refused_with_1004() {
        let server = server().await;
        let ts = now_s().to_string();
        let (status, json) = send(&server, "replay-me", &ts).await;
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
        let (status, json) = send(&server, "replay-me", &ts).await;
        assert_eq!((status, json["code"].as_i64()), (401, Some(1004)), "{json}");
        let message = json["errorMessage"].as_str().unwrap();
        assert!(message.contains("Nonce was already used"), "{message}");
        // A fresh nonce is fine, in milliseconds too.
        let (status, json) = send(&server, "fresh", &now_ms().to_string()).await;
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
    }

    #[tokio::test]
    async fn a_timestamp_outside_five_minutes_is_refused_with_1004() {
        let server = server().await;
        for (nonce, ts) in [
            ("old-s", (now_s() - 301).to_string()),
            ("old-ms", (now_ms() - 301_000).to_string()),
            ("future", (now_s() + 3600).to_string()),
            ("not-a-time", "yesterday".to_string()),
        ] {
            let (status, json) = send(&server, nonce, &ts).await;
            assert_eq!(
                (status, json["code"].as_i64()),
                (401, Some(1004)),
                "{nonce}: {json}"
            );
            let message = json["errorMessage"].as_str().unwrap();
            assert!(message.contains("Timestamp"), "{nonce}: {message}");
        }
        // A refused request did not use up its nonce.
        let (status, json) = send(&server, "old-s", &now_s().to_string()).await;
        assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
    }

    #[tokio::test]
    async fn an_unknown_app_key_is_1001_and_the_signed_client_never_repeats_a_nonce() {
        let server = server().await;
        let (status, json) = rcim_server::api_client::post_signed(
            &server.api_url(),
            "someone-elses-key",
            APP_SECRET,
            "/stats.json",
            &[],
        )
        .await
        .unwrap();
        assert_eq!((status, json["code"].as_i64()), (401, Some(1001)), "{json}");
        // The signed client picks a fresh nonce per call, so back-to-back calls in
        // the same second all pass the replay guard.
        for _ in 0..50 {
            let (status, json) = post(&server, "/stats.json", &[]).await;
            assert_eq!((status, json["code"].as_i64()), (200, Some(200)), "{json}");
        }
    }
}
