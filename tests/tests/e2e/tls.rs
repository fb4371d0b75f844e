//! rcims:// across real processes: a CA made at test time, the server serving TLS,
//! the daemon verifying it; a wrong CA is a clear, transient error.

use crate::CLIENT;
use rcim_server::testca::TestCa;
use rcim_tests::{Seen, TestDaemon, TestServer, client_output, eventually, spawn_client};
use std::time::Duration;

fn tls_server(dir: &std::path::Path) -> (TestServer, std::path::PathBuf) {
    let ca = TestCa::new();
    let (ca_path, cert, key) = ca.write_files(dir);
    let cert = cert.to_string_lossy().into_owned();
    let key = key.to_string_lossy().into_owned();
    let server = TestServer::start_with(&["--tls-cert", &cert, "--tls-key", &key]);
    (server, ca_path)
}

fn rcims_url(server: &TestServer) -> String {
    let port = server.im_addr.rsplit(':').next().expect("port");
    format!("rcims://localhost:{port}")
}

#[test]
fn a_daemon_trusting_the_ca_connects_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, ca) = tls_server(dir.path());
    let token = server.token("alice");
    let ca = ca.to_string_lossy().into_owned();
    let daemon = TestDaemon::start(&rcims_url(&server), &["--ca-file", &ca]);
    assert_eq!(
        client_output(spawn_client(CLIENT, &daemon.socket, &token, 10)),
        vec![
            Seen::DatabaseOpened(0),
            Seen::Connected(0, Some("alice".into()))
        ]
    );
    assert_eq!(daemon.status()["server"], rcims_url(&server));
}

#[test]
fn a_wrong_ca_is_a_clear_transient_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _right_ca) = tls_server(dir.path());
    let token = server.token("alice");
    let other = tempfile::tempdir().expect("tempdir");
    let (wrong_ca, _, _) = TestCa::new().write_files(other.path());
    let wrong_ca = wrong_ca.to_string_lossy().into_owned();
    let daemon = TestDaemon::start(&rcims_url(&server), &["--ca-file", &wrong_ca]);
    let caller = spawn_client(CLIENT, &daemon.socket, &token, 3);
    let seen = client_output(caller);
    assert_eq!(
        seen,
        vec![Seen::DatabaseOpened(0), Seen::Connected(34006, None)]
    );
    // It was retried (transient), and the status says what is wrong.
    let ok = eventually(Duration::from_secs(5), || {
        let status = daemon.status();
        status["last_error"]["code"] == 34032 || status["last_error"]["code"] == 34006
    });
    assert!(ok, "{}", daemon.status());
    assert!(
        daemon.proc.log().contains("34032") && daemon.proc.log().contains("certificate"),
        "the log names the certificate problem:\n{}",
        daemon.proc.log()
    );
    assert_eq!(
        server.stats().connects_accepted + server.stats().connects_rejected,
        0
    );
}
