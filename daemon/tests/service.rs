//! rcimd as a service, as a process: socket activation and sd_notify (READY,
//! STATUS, WATCHDOG, STOPPING) seen on a real datagram socket, the systemd
//! credential as a token source, SIGHUP reload, SIGTERM drain, and how flags, the
//! environment and the config file combine. The upstream is a real rcim-server in
//! this process; rcimd is the real binary.

use rcim_proto::PROTOCOL_VERSION;
use rcim_proto::frame::{FrameReader, MAX_IPC_FRAME, encode};
use rcim_proto::ipc::{ClientFrame, DaemonFrame, Hello};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const RCIMD: &str = env!("CARGO_BIN_EXE_rcimd");

/// A child process killed when dropped, its stderr in a file printed on failure.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn spawn(mut command: Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start rcimd");
        Daemon { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, signal: rustix::process::Signal) {
        rustix::process::kill_process(rustix::process::Pid::from_child(&self.child), signal)
            .expect("kill");
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "rcimd did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the log never said {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("----- rcimd log -----\n{}\n-----", self.log());
        }
    }
}

/// The test's end of `NOTIFY_SOCKET`: every line systemd would have seen.
struct Notifications {
    socket: UnixDatagram,
    lines: Vec<String>,
}

impl Notifications {
    fn bind(path: &Path) -> Notifications {
        let socket = UnixDatagram::bind(path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        Notifications {
            socket,
            lines: Vec::new(),
        }
    }

    /// Reads what has arrived so far.
    fn poll(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.lines.extend(text.lines().map(str::to_owned));
        }
    }

    /// Waits for a line for which `want` holds and returns it.
    fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            self.poll();
            if let Some(line) = self.lines.iter().find(|l| want(l)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {what} among the notifications: {:?}",
                self.lines
            );
        }
    }
}

/// A client that completes the handshake, or panics.
async fn handshake(socket: &Path) {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let hello = ClientFrame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        client_name: "service-test".into(),
        client_version: "0".into(),
    });
    write
        .write_all(&encode(&hello, MAX_IPC_FRAME).expect("encode"))
        .await
        .expect("write");
    let mut reader = FrameReader::new(read, MAX_IPC_FRAME);
    let answer = tokio::time::timeout(Duration::from_secs(2), reader.read::<DaemonFrame>())
        .await
        .expect("the daemon answers at once after READY=1");
    assert!(
        matches!(answer, Ok(Some(DaemonFrame::Welcome(_)))),
        "expected a Welcome, got {answer:?}"
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

async fn server(dir: &Path) -> rcim_server::RunningServer {
    let config = rcim_server::ServerConfig::local(dir.join("server"), "app", "secret");
    rcim_server::start(config).await.expect("server")
}

/// Socket activation as systemd does it (`systemd-socket-activate` binds, then
/// execs rcimd with the listener as fd 3 on the first connection), with a systemd
/// credential as the token and NOTIFY_SOCKET pointing at this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn socket_activation_ready_status_watchdog_and_stopping() {
    let Some(activate) = which("systemd-socket-activate") else {
        eprintln!("skipped: systemd-socket-activate is not installed (apt-get install systemd)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let token = server.issue_token("alice", "Alice").unwrap();
    std::fs::write(creds.join("rcim-token"), format!("{token}\n")).unwrap();
    let mut notes = Notifications::bind(&dir.path().join("notify.sock"));
    let socket = dir.path().join("rcimd.sock");

    let mut command = Command::new(activate);
    command
        .arg("-l")
        .arg(&socket)
        .arg("--fdname=rcimd")
        .arg(format!(
            "--setenv=NOTIFY_SOCKET={}",
            dir.path().join("notify.sock").display()
        ))
        .arg("--setenv=WATCHDOG_USEC=400000")
        .arg(format!(
            "--setenv=CREDENTIALS_DIRECTORY={}",
            creds.display()
        ))
        .arg(RCIMD)
        .args(["--server", &server.im_url(), "--app-key", "app"])
        .args(["--token-store", "memory", "--log-level", "debug"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        // Ignored: the inherited listener wins.
        .arg("--socket")
        .arg(dir.path().join("unused.sock"));
    let mut daemon = Daemon::spawn(command, dir.path().join("rcimd.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the socket was never bound");
        std::thread::sleep(Duration::from_millis(20));
    }
    notes.poll();
    assert!(
        notes.lines.is_empty(),
        "nothing before rcimd runs: {:?}",
        notes.lines
    );

    // The first client starts rcimd (as systemd would) and waits in the backlog.
    let first = tokio::spawn({
        let socket = socket.clone();
        async move { handshake(&socket).await }
    });
    notes.wait_for("READY=1", |l| l == "READY=1");
    // Ready means ready: a new client is served at once.
    handshake(&socket).await;
    first.await.expect("the first client got its Welcome too");
    assert!(!dir.path().join("unused.sock").exists());

    // The credential's token connects without any `connect` call, and STATUS=
    // follows the connection.
    notes.wait_for("STATUS=connected", |l| l == "STATUS=connected as alice");
    let log = daemon.log();
    assert!(log.contains("inherited"), "{log}");
    assert!(!log.contains(&token), "the token is in the log");
    notes.wait_for("WATCHDOG=1", |l| l == "WATCHDOG=1");

    server.shutdown().await;
    notes.wait_for("STATUS=suspend or connecting", |l| {
        l.starts_with("STATUS=suspend") || l.starts_with("STATUS=connecting")
    });

    daemon.signal(rustix::process::Signal::TERM);
    notes.wait_for("STOPPING=1", |l| l == "STOPPING=1");
    let status = daemon.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "SIGTERM exits 0, got {status}");
    assert!(
        socket.exists(),
        "the socket file belongs to the service manager"
    );
}

/// SIGTERM while connected: exit 0 within the bound, and the server learns at once
/// that the device is gone (the goodbye DISCONNECT).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_says_goodbye_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(
        creds.join("rcim-token"),
        server.issue_token("bob", "Bob").unwrap(),
    )
    .unwrap();
    let mut command = Command::new(RCIMD);
    command
        .args(["--server", &server.im_url(), "--app-key", "app"])
        .args(["--token-store", "memory", "--log-level", "debug"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("run/rcimd.sock"))
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env_remove("NOTIFY_SOCKET");
    let mut daemon = Daemon::spawn(command, dir.path().join("rcimd.log"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.is_online("bob") {
        assert!(
            Instant::now() < deadline,
            "never connected:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    daemon.signal(rustix::process::Signal::TERM);
    let status = daemon.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit 0, got {status}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.is_online("bob") {
        assert!(
            Instant::now() < deadline,
            "the server still sees bob online"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// SIGHUP re-reads the config file and applies the log level and the heartbeat,
/// and says so; options that need a restart are named, not applied.
#[test]
fn sighup_reloads_the_log_level_and_the_heartbeat() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rcimd.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let file = |extra: &str| {
        format!(
            "server = \"rcim://127.0.0.1:{port}\"\napp_key = \"app\"\ntoken_store = \"memory\"\n{extra}"
        )
    };
    std::fs::write(&config, file("log_level = \"info\"\nping_interval = 30\n")).unwrap();
    let mut command = Command::new(RCIMD);
    command
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("run/rcimd.sock"))
        .env_remove("RUST_LOG")
        .env_remove("RCIM_LOG")
        .env_remove("RCIM_LOG_LEVEL");
    let mut daemon = Daemon::spawn(command, dir.path().join("rcimd.log"));
    daemon.wait_log("ready on");
    std::fs::write(
        &config,
        file("log_level = \"debug\"\nping_interval = 5\npong_timeout = 2\napp_key = \"other\"\n")
            .replace("app_key = \"app\"\n", ""),
    )
    .unwrap();
    daemon.signal(rustix::process::Signal::HUP);
    let log = daemon.wait_log("reloaded the configuration: log level info -> debug; heartbeat");
    assert!(
        log.contains("app_key changed; restart rcimd to apply"),
        "{log}"
    );
    // A broken file leaves the running configuration as it is.
    std::fs::write(&config, file("bogus = 1\n")).unwrap();
    daemon.signal(rustix::process::Signal::HUP);
    daemon.wait_log("reload failed, the running configuration stays");
    daemon.signal(rustix::process::Signal::TERM);
    assert!(daemon.wait_exit(Duration::from_secs(15)).success());
}

fn print_config(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(RCIMD);
    command
        .arg("--config")
        .arg(config)
        .arg("--print-config")
        .args(args);
    for var in [
        "RCIM_SOCKET",
        "RCIM_SERVER",
        "RCIM_PING_INTERVAL",
        "RCIM_PONG_TIMEOUT",
        "RCIM_TOKEN_STORE",
        "RCIM_LOG_LEVEL",
        "RCIM_LOG",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let out = command.output().expect("run rcimd");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rcimd.toml");
    std::fs::write(
        &config,
        "server = \"rcim://file:1\"\nping_interval = 11\npong_timeout = 3\ntoken_store = \"keyring\"\nlog_level = \"warn\"\n",
    )
    .unwrap();
    let (ok, out, err) = print_config(
        &config,
        &["--pong-timeout", "4"],
        &[
            ("RCIM_PING_INTERVAL", "12"),
            ("RCIM_PONG_TIMEOUT", "5"),
            ("RUST_LOG", "trace"),
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("# config file: {}", config.display())),
        "{out}"
    );
    assert!(out.contains("server = \"rcim://file:1\""), "file: {out}");
    assert!(out.contains("ping_interval = 12\n"), "env over file: {out}");
    assert!(out.contains("pong_timeout = 4\n"), "flag over env: {out}");
    assert!(
        out.contains("token_store = \"auto\""),
        "keyring = auto: {out}"
    );
    assert!(
        out.contains("log_level = \"warn\""),
        "file over RUST_LOG: {out}"
    );
}

#[test]
fn a_bad_config_file_is_refused_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rcimd.toml");
    std::fs::write(&config, "server = \"rcim://h:1\"\nping_intervall = 3\n").unwrap();
    let (ok, _, err) = print_config(&config, &[], &[]);
    assert!(!ok);
    assert!(err.contains("unknown field `ping_intervall`"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let (ok, _, err) = print_config(&dir.path().join("missing.toml"), &[], &[]);
    assert!(!ok);
    assert!(err.contains("cannot read the config file"), "{err}");
}

#[test]
fn no_working_keyring_is_an_error_that_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(RCIMD)
        .args(["--server", "rcim://127.0.0.1:9", "--app-key", "app"])
        .args(["--token-store", "secret-service"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--socket")
        .arg(dir.path().join("run/rcimd.sock"))
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", dir.path().join("no-bus").display()),
        )
        .output()
        .expect("run rcimd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("secret-service token store does not work here"),
        "{err}"
    );
    assert!(err.contains("start a keyring daemon"), "{err}");
    assert!(err.contains("--token-store"), "{err}");
}
