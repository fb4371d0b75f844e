//! The `rcim-server` binary end to end: the ready line, serving (with and without
//! TLS), SIGTERM, and clear errors for bad flags, files and directories.

use crate::util::*;
use rcim_proto::WIRE_VERSION;
use rcim_proto::code::{ConnAckCode, DisconnectReason};
use rcim_proto::upstream::ServerMsg;
use std::io::{BufRead as _, BufReader, Read as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;

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
    let (status, out, err) = wait(spawn(&[&base[..], &["--tls-cert", "/x.pem"]].concat())).await;
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
    client.connect_accepted(&token, "desktop", "alice").await;

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
