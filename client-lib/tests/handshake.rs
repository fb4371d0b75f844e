//! Attaching: Welcome, Refused, version mismatch, no daemon, waiting for a daemon.

use crate::util::{FakeDaemon, snapshot};
use rcim_client::{Client, ClientError, ClientOptions, Token};
use rcim_proto::ipc::{DaemonFrame, Refused, Reply, Welcome};
use rcim_proto::{ConnectionStatus, PROTOCOL_VERSION};
use std::time::Duration;

#[tokio::test]
async fn welcome_is_kept_and_hello_names_the_client() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        let hello = peer.welcome().await;
        assert_eq!(hello.client_name, "test");
        assert_eq!(hello.client_version, env!("CARGO_PKG_VERSION"));
        // Keep the connection open until the client is done.
        let _ = peer.read().await;
    });
    let client = Client::attach(daemon.options()).await.unwrap();
    assert_eq!(client.welcome().daemon_version, "9.9.9-fake");
    assert_eq!(client.welcome().protocol, PROTOCOL_VERSION);
    assert_eq!(client.link_state().status, ConnectionStatus::Unconnected);
    assert!(!client.is_closed());
    assert_eq!(client.socket(), daemon.socket);
}

/// A fake daemon that reads the Hello and refuses it, saying `protocol` and `reason`.
fn refusing(protocol: u32, reason: &'static str) -> FakeDaemon {
    FakeDaemon::start(move |mut peer| async move {
        peer.hello().await;
        peer.send(DaemonFrame::Refused(Refused {
            protocol,
            reason: reason.into(),
        }))
        .await;
    })
}

#[tokio::test]
async fn refused_gives_the_reason() {
    let daemon = refusing(PROTOCOL_VERSION, "too many clients");
    let err = Client::attach(daemon.options()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(reason) if reason == "too many clients"),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_for_another_version_is_a_mismatch() {
    let daemon = refusing(PROTOCOL_VERSION + 1, "unsupported protocol");
    let err = Client::attach(daemon.options()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::ProtocolMismatch { client, daemon }
            if client == PROTOCOL_VERSION && daemon == PROTOCOL_VERSION + 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn welcome_with_another_version_is_a_mismatch_naming_both() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.hello().await;
        peer.send(DaemonFrame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION + 41,
            daemon_version: "99".into(),
            status: snapshot(ConnectionStatus::Connected),
        }))
        .await;
    });
    let err = Client::attach(daemon.options()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::ProtocolMismatch { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&PROTOCOL_VERSION.to_string()), "{text}");
    assert!(
        text.contains(&(PROTOCOL_VERSION + 41).to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn close_before_welcome_is_disconnected() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.hello().await;
    });
    let err = Client::attach(daemon.options()).await.unwrap_err();
    assert!(matches!(err, ClientError::Disconnected), "{err:?}");
}

#[tokio::test]
async fn missing_socket_is_daemon_not_running_with_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("nothing-here.sock");
    let err = Client::attach(ClientOptions {
        socket: Some(socket.clone()),
        ..ClientOptions::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, ClientError::DaemonNotRunning { socket: s } if *s == socket),
        "{err:?}"
    );
    let text = err.to_string();
    for needle in [
        "rcimd",
        "systemctl --user start rcimd",
        "cargo run -p rcimd --features dev-server -- --dev",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in: {text}");
    }
}

#[tokio::test]
async fn stale_socket_file_is_daemon_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rcimd.sock");
    drop(tokio::net::UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let err = Client::attach(ClientOptions {
        socket: Some(socket),
        ..ClientOptions::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, ClientError::DaemonNotRunning { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn wait_for_daemon_retries_until_it_listens() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rcimd.sock");
    let late = socket.clone();
    let daemon = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let listener = tokio::net::UnixListener::bind(&late).unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut reader = rcim_proto::FrameReader::new(read, rcim_proto::frame::MAX_IPC_FRAME);
        let _hello: Option<rcim_proto::ipc::ClientFrame> = reader.read().await.unwrap();
        let welcome = DaemonFrame::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            daemon_version: "late".into(),
            status: snapshot(ConnectionStatus::Unconnected),
        });
        rcim_proto::frame::write_frame(&mut write, &welcome, rcim_proto::frame::MAX_IPC_FRAME)
            .await
            .unwrap();
        let _ = reader.read::<rcim_proto::ipc::ClientFrame>().await;
    });
    let client = Client::attach(ClientOptions {
        socket: Some(socket),
        wait_for_daemon: Duration::from_secs(5),
        ..ClientOptions::default()
    })
    .await
    .unwrap();
    assert_eq!(client.welcome().daemon_version, "late");
    drop(client);
    daemon.await.unwrap();
}

/// `attach_and_connect` writes the connect request with the Hello: the daemon has
/// both before it answers anything, and the call then goes on as `connect` does.
#[tokio::test]
async fn attach_and_connect_sends_the_connect_with_the_hello() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        let (id, token) = peer.pipelined_connect(ConnectionStatus::Connected).await;
        assert_eq!(token, "token-alice");
        peer.accept_connect(id, "alice").await;
        // Later requests take ids of their own.
        let (next, since) = peer.subscribe_request().await;
        assert_ne!(next, id);
        assert_eq!(since, 7);
        peer.respond(next, Reply::Code(0)).await;
        let _ = peer.read().await;
    });
    let (client, _events, call) =
        Client::attach_and_connect(daemon.options(), Token::new("token-alice"), 30)
            .await
            .unwrap();
    assert_eq!(
        client.welcome().status.link.status,
        ConnectionStatus::Connected
    );
    assert_eq!(call.code(), 0);
    let connected = call.connected().await;
    assert_eq!(connected.code, 0);
    assert_eq!(connected.user_id.as_deref(), Some("alice"));
    assert_eq!(connected.database_opened, Some(0));
    assert_eq!(client.subscribe(7).await.unwrap(), 0);
}

#[tokio::test]
async fn attach_and_connect_refused_is_the_attach_error() {
    let daemon = refusing(PROTOCOL_VERSION, "too many clients");
    let err = Client::attach_and_connect(daemon.options(), Token::new("token-alice"), 30)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(reason) if reason == "too many clients"),
        "{err:?}"
    );
}

/// A token that fails the local check is never sent: the client attaches and the
/// call is rejected with 33003 (INVALID_PARAMETER), as `connect` would be.
#[tokio::test]
async fn attach_and_connect_with_a_bad_token_attaches_and_sends_nothing() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.welcome().await;
        let next = peer.read().await;
        assert!(next.is_none(), "the client sent {next:?}");
    });
    let (client, events, call) =
        Client::attach_and_connect(daemon.options(), Token::new("bad token"), 30)
            .await
            .unwrap();
    assert_eq!(call.code(), 33003);
    assert_eq!(call.connected().await.code, 33003);
    drop((client, events));
    daemon.task.await.unwrap();
}
