//! Attaching: Welcome, Refused, version mismatch, no daemon, waiting for a daemon.

use crate::util::{FakeDaemon, snapshot};
use rcim_client::{Client, ClientError, ClientOptions};
use rcim_proto::ipc::{DaemonFrame, Refused, Welcome};
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

#[tokio::test]
async fn refused_gives_the_reason() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.hello().await;
        peer.send(DaemonFrame::Refused(Refused {
            protocol: PROTOCOL_VERSION,
            reason: "too many clients".into(),
        }))
        .await;
    });
    let err = Client::attach(daemon.options()).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(reason) if reason == "too many clients"),
        "{err:?}"
    );
}

#[tokio::test]
async fn refused_for_another_version_is_a_mismatch() {
    let daemon = FakeDaemon::start(|mut peer| async move {
        peer.hello().await;
        peer.send(DaemonFrame::Refused(Refused {
            protocol: PROTOCOL_VERSION + 1,
            reason: "unsupported protocol".into(),
        }))
        .await;
    });
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
        "cargo run -p rcimd -- --dev",
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
