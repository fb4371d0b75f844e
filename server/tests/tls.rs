//! TLS on the IM endpoint, with a CA made at test time by `rcim_server::testca`.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_server::testca::TestCa;
use rcim_server::{RunningServer, TlsFiles, start};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use tokio::net::TcpStream;
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
    let stream = tokio::time::timeout(SOON, TlsConnector::from(client_config).connect(name, tcp))
        .await
        .expect("TLS handshake hung")?;
    Ok(Client::over(stream))
}

#[tokio::test]
async fn a_client_trusting_the_ca_connects() {
    let ca = TestCa::new();
    let server = tls_server(&ca).await;
    let mut clients = Vec::new();
    for name in ["localhost", "127.0.0.1"] {
        let mut client = tls_open(&server, ca.client_config(), name).await.unwrap();
        let token = server.issue_token("alice", "Alice").unwrap();
        client.connect_accepted(&token, name, "alice").await;
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
