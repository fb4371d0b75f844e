//! What the server's integration tests share: a server on loopback ports with its
//! data in a temp dir ([`TestServer`]), a raw upstream client over any byte stream
//! ([`Client`]), CONNECT helpers that check the CONNACK, signed Server API calls
//! with the answers every test expects (`post_ok`, `expect_1002`), token claims,
//! and polling with a deadline.

use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::frame::{FrameReader, MAX_UPSTREAM_FRAME, write_frame};
use rcim_proto::upstream::{ClientInfo, ClientMsg, ConnAck, Connect, ServerMsg};
use rcim_proto::{Token, WIRE_VERSION};
use rcim_server::{RunningServer, ServerConfig, start};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use rcim_proto::time::now_ms;

pub const APP_KEY: &str = "test-app-key";
pub const APP_SECRET: &str = "test-app-secret";
/// Generous bound for anything that should happen "at once".
pub const SOON: Duration = Duration::from_secs(5);

/// A started server and the temp dir holding its data (deleted on drop).
pub struct TestServer {
    pub server: RunningServer,
    pub _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestServer {
    type Target = RunningServer;
    fn deref(&self) -> &RunningServer {
        &self.server
    }
}

/// The test configuration: loopback, ports 0, data under `dir`.
pub fn config_in(dir: &std::path::Path) -> ServerConfig {
    ServerConfig::local(dir.join("data"), APP_KEY, APP_SECRET)
}

/// A server with the test configuration changed by `change`.
pub async fn server_from(change: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    change(&mut config);
    let server = start(config).await.unwrap();
    TestServer { server, _dir: dir }
}

/// A server with the given heartbeat timeout.
pub async fn server_with(heartbeat_timeout: Duration) -> TestServer {
    server_from(|c| c.heartbeat_timeout = heartbeat_timeout).await
}

/// A server with the test configuration.
pub async fn server() -> TestServer {
    server_with(Duration::from_secs(90)).await
}

/// A raw upstream client connection over any byte stream (TCP by default).
pub struct Client<S = TcpStream> {
    pub reader: FrameReader<ReadHalf<S>>,
    pub writer: WriteHalf<S>,
}

impl Client {
    /// A client over a new TCP connection to `addr`.
    pub async fn open(addr: SocketAddr) -> Self {
        Self::over(TcpStream::connect(addr).await.unwrap())
    }
}

impl<S: AsyncRead + AsyncWrite> Client<S> {
    /// A client over `stream`.
    pub fn over(stream: S) -> Self {
        let (r, w) = tokio::io::split(stream);
        Self {
            reader: FrameReader::new(r, MAX_UPSTREAM_FRAME),
            writer: w,
        }
    }

    /// Sends one frame.
    pub async fn send(&mut self, msg: &ClientMsg) {
        write_frame(&mut self.writer, msg, MAX_UPSTREAM_FRAME)
            .await
            .unwrap();
    }

    /// The next frame, within [`SOON`].
    pub async fn recv(&mut self) -> ServerMsg {
        tokio::time::timeout(SOON, self.reader.read::<ServerMsg>())
            .await
            .expect("no answer in time")
            .expect("read failed")
            .expect("closed instead of answering")
    }

    /// The next frame, which must be a CONNACK.
    pub async fn connack(&mut self) -> ConnAck {
        match self.recv().await {
            ServerMsg::ConnAck(ack) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Sends CONNECT with `token` on `platform` and checks the CONNACK accepts it
    /// as `user_id`.
    pub async fn connect_accepted(&mut self, token: &str, platform: &str, user_id: &str) {
        self.send(&connect_msg_on(WIRE_VERSION, APP_KEY, token, platform))
            .await;
        let ack = self.connack().await;
        assert_eq!(
            (ack.code, ack.user_id.as_deref()),
            (ConnAckCode::ACCEPTED, Some(user_id))
        );
    }

    /// Asserts the server closes the connection (clean end or reset) soon.
    pub async fn expect_closed(&mut self) {
        let read = tokio::time::timeout(SOON, self.reader.read::<ServerMsg>())
            .await
            .expect("the server did not close the connection");
        assert!(!matches!(read, Ok(Some(_))), "expected close, got {read:?}");
    }
}

/// A client whose IM connection runs over an in-memory pipe, served by
/// [`RunningServer::serve_stream`] (for tests under paused time).
pub async fn duplex_client(server: &RunningServer) -> Client<DuplexStream> {
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    server.serve_stream(server_side);
    Client::over(client)
}

/// A CONNECT on platform `desktop`.
pub fn connect_msg(protocol: u32, app_key: &str, token: &str) -> ClientMsg {
    connect_msg_on(protocol, app_key, token, "desktop")
}

/// A CONNECT on `platform`.
pub fn connect_msg_on(protocol: u32, app_key: &str, token: &str, platform: &str) -> ClientMsg {
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
pub async fn connect_as(server: &RunningServer, user_id: &str) -> Client {
    connect_on(server, user_id, "desktop").await
}

/// Connects as `user_id` on `platform` and checks the CONNACK is 0.
pub async fn connect_on(server: &RunningServer, user_id: &str, platform: &str) -> Client {
    let token = server.issue_token(user_id, "Test User").unwrap();
    connect_with(server, &token, platform).await
}

/// Connects with `token` on `platform` and checks the CONNACK is 0.
pub async fn connect_with(server: &RunningServer, token: &str, platform: &str) -> Client {
    let mut client = Client::open(server.im_addr()).await;
    client
        .send(&connect_msg_on(WIRE_VERSION, APP_KEY, token, platform))
        .await;
    let ack = client.connack().await;
    assert_eq!(ack.code, ConnAckCode::ACCEPTED);
    client
}

/// The CONNACK code for a CONNECT with `token` (closed afterwards unless 0).
pub async fn code_for(server: &RunningServer, token: &str) -> ConnAckCode {
    connack_code(server, WIRE_VERSION, APP_KEY, token).await
}

/// Sends one CONNECT and returns the CONNACK code, checking the connection is then
/// closed when the code is not 0.
pub async fn connack_code(
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
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + SOON;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Asserts the next message is `Disconnect { reason }` and the connection then closes.
pub async fn expect_disconnect<S: AsyncRead + AsyncWrite>(
    client: &mut Client<S>,
    reason: DisconnectReason,
) {
    assert_eq!(client.recv().await, ServerMsg::Disconnect { reason });
    client.expect_closed().await;
}

/// Asserts the connection is still served: a ping gets a pong.
pub async fn expect_alive<S: AsyncRead + AsyncWrite>(client: &mut Client<S>) {
    client.send(&ClientMsg::Ping).await;
    assert_eq!(client.recv().await, ServerMsg::Pong);
}

/// POSTs a signed form to `path`.
pub async fn post(
    server: &RunningServer,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    rcim_server::api_client::post_signed(&server.api_url(), APP_KEY, APP_SECRET, path, form)
        .await
        .unwrap()
}

/// POSTs a signed form to `path` and checks the answer is exactly `{"code":200}`.
pub async fn post_ok(server: &RunningServer, path: &str, form: &[(&str, &str)]) {
    let (status, json) = post(server, path, form).await;
    assert_eq!(
        (status, json),
        (200, serde_json::json!({ "code": 200 })),
        "{path} {form:?}"
    );
}

/// The `issued_at_ms` and `expires_at_ms` claims of a token.
pub fn claim_times(token: &str) -> (i64, i64) {
    let claims = rcim_proto::token::TokenClaims::peek(token).unwrap();
    (claims.issued_at_ms, claims.expires_at_ms)
}

/// Sleeps until the wall clock is past `ms` (since the Unix epoch).
pub async fn sleep_past(ms: i64) {
    while now_ms() <= ms {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Asserts a signed POST of `form` to `path` is refused as a bad parameter: HTTP
/// 400, RC code 1002, and an error message.
pub async fn expect_1002(server: &RunningServer, path: &str, form: &[(&str, &str)]) {
    let (status, json) = post(server, path, form).await;
    // The first fields tell the cases apart; some forms repeat a field 1,000 times.
    let shown = &form[..form.len().min(4)];
    assert_eq!(
        (status, json["code"].as_i64()),
        (400, Some(1002)),
        "{path} {shown:?}: {json}"
    );
    assert!(
        json["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{path} {shown:?}: {json}"
    );
}

/// Polls an async condition until it holds or [`SOON`] passes.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(
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

/// Posts each `(path, body)` with a wrong signature and with no signature headers
/// at all, and checks that every one is refused with 401 and RC's 1004.
pub async fn expect_unsigned_refused(server: &RunningServer, calls: &[(&str, &str)]) {
    let url = server.api_url();
    let bad_sig = rcim_server::api_client::sign("wrong-secret", "n1", "1700000000");
    let headers = [
        ("App-Key", APP_KEY),
        ("Nonce", "n1"),
        ("Timestamp", "1700000000"),
        ("Signature", bad_sig.as_str()),
    ];
    for (path, body) in calls {
        for headers in [&headers[..], &[]] {
            let (status, json) =
                rcim_server::api_client::post_raw(&url, path, headers, body.as_bytes())
                    .await
                    .unwrap();
            assert_eq!(
                (status, json["code"].as_i64()),
                (401, Some(1004)),
                "{path}: {json}"
            );
        }
    }
}
