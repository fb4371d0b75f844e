//! The testkit: real processes on real sockets, for the tests under `tests/`.
//!
//! - [`bin`] builds (once per test process) and finds the workspace's binaries,
//!   through [`binaries`], which the bench uses too.
//! - [`TestServer`] runs `rcim-server` on loopback with ports 0 and a fresh data
//!   dir, and talks to its signed Server API.
//! - [`TestDaemon`] runs `rcimd` on a socket in a fresh temp dir against a server.
//! - [`ctl`] runs `rcimctl`; [`spawn_client`] runs the RC-shaped test client.
//! - [`proxy`] puts a fault-injecting TCP proxy between the daemon and the server.
//!
//! Every process is killed when its guard drops, and a daemon's or server's log is
//! printed when the test that owns it fails.

pub mod binaries;
pub mod proxy;

use anyhow::{Context as _, bail};
use binaries::{BuildError, TargetDir, WithoutCargo};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The app key every test server uses.
pub const APP_KEY: &str = "test-app-key";
/// The app secret every test server uses.
pub const APP_SECRET: &str = "test-app-secret";

/// The path of a workspace binary, built once per test process so tests always run
/// the current code.
pub fn bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<TargetDir, BuildError>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let dir = TargetDir::of_current_exe()?;
        dir.build(&["rcimd", "rcim-server", "rcimctl"], WithoutCargo::Fail)?;
        Ok(dir)
    });
    match built {
        Ok(dir) => dir.binary(name),
        Err(e) => panic!("{e}"),
    }
}

/// A shared runtime for the few async calls the testkit makes (the Server API).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("testkit runtime")
    })
}

/// A child process that is killed when dropped, with its stderr captured to a file.
pub struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut command: Command, log: PathBuf) -> anyhow::Result<Self> {
        let file = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            child,
            name: name.into(),
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit status (at most 10 s).
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.child.id());
        }
        self.wait_exit(Duration::from_secs(10))
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("{} did not exit within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Reads one line of stdout (blocking).
    fn read_stdout_line(&mut self) -> anyhow::Result<String> {
        let stdout = self.child.stdout.as_mut().context("no stdout")?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match stdout.read(&mut byte)? {
                0 => bail!("{} closed stdout; log:\n{}", self.name, self.log()),
                _ if byte[0] == b'\n' => break,
                _ => line.push(byte[0]),
            }
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "----- {} log -----\n{}\n----- end of {} log -----",
                self.name,
                self.log(),
                self.name
            );
        }
    }
}

/// `rcim-server` on loopback with a fresh data dir.
pub struct TestServer {
    /// The process.
    pub proc: Proc,
    /// `127.0.0.1:PORT` of the IM endpoint.
    pub im_addr: String,
    /// `http://127.0.0.1:PORT` of the Server API.
    pub api_url: String,
    extra: Vec<String>,
    dir: TempDir,
}

impl TestServer {
    /// Starts a server and waits for its ready line.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra arguments.
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (proc, im_addr, api_url) =
            Self::launch(dir.path(), "127.0.0.1:0", "127.0.0.1:0", extra);
        Self {
            proc,
            im_addr,
            api_url,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
        }
    }

    fn launch(dir: &Path, im: &str, api: &str, extra: &[&str]) -> (Proc, String, String) {
        let mut command = Command::new(bin("rcim-server"));
        command
            .args(["--im-listen", im, "--api-listen", api])
            .arg("--data-dir")
            .arg(dir.join("server-data"))
            .args(["--app-key", APP_KEY, "--app-secret", APP_SECRET])
            .args(extra);
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let mut proc = Proc::spawn("rcim-server", command, dir.join(format!("server-{n}.log")))
            .expect("start rcim-server");
        let line = proc.read_stdout_line().expect("ready line");
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("ready line is not JSON ({e}): {line}"));
        assert_eq!(ready["event"], "ready", "{line}");
        let im_addr = ready["im_addr"].as_str().expect("im_addr").to_owned();
        let api_url = ready["api_url"].as_str().expect("api_url").to_owned();
        (proc, im_addr, api_url)
    }

    /// Kills the server with SIGKILL (no goodbye to its clients).
    pub fn kill(&mut self) {
        self.proc.kill9();
    }

    /// Starts the server again on the same ports and data dir (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.proc.kill9();
        let api = self.api_url.trim_start_matches("http://").to_owned();
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let (proc, _, _) = Self::launch(self.dir.path(), &self.im_addr, &api, &extra);
        self.proc = proc;
    }

    /// `rcim://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("rcim://{}", self.im_addr)
    }

    /// Calls a signed Server API endpoint; returns the HTTP status and JSON body.
    pub fn api(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        runtime()
            .block_on(rcim_server::api_client::post_signed(
                &self.api_url,
                APP_KEY,
                APP_SECRET,
                path,
                form,
            ))
            .unwrap_or_else(|e| panic!("{path}: {e:#}"))
    }

    /// A fresh token for `user` from `/user/getToken.json`.
    pub fn token(&self, user: &str) -> String {
        let (status, body) = self.api("/user/getToken.json", &[("userId", user), ("name", user)]);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["code"], 200, "{body}");
        body["token"].as_str().expect("token").to_owned()
    }

    /// `/stats.json`.
    pub fn stats(&self) -> Stats {
        let (status, body) = self.api("/stats.json", &[]);
        assert_eq!(status, 200, "{body}");
        let field = |name: &str| {
            body[name]
                .as_u64()
                .unwrap_or_else(|| panic!("{name} in {body}"))
        };
        Stats {
            connects_accepted: field("connects_accepted"),
            connects_rejected: field("connects_rejected"),
            online: field("online"),
        }
    }

    /// The server's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The server's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// CONNECTs answered 0.
    pub connects_accepted: u64,
    /// CONNECTs answered non-zero.
    pub connects_rejected: u64,
    /// Live connections.
    pub online: u64,
}

/// `rcimd` on a socket in a fresh temp dir.
pub struct TestDaemon {
    /// The process.
    pub proc: Proc,
    /// The socket.
    pub socket: PathBuf,
    /// The data dir.
    pub data_dir: PathBuf,
    dir: TempDir,
}

impl TestDaemon {
    /// Starts `rcimd` against `server_url` with the memory token store and waits
    /// until its socket answers.
    pub fn start(server_url: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("run").join("rcimd.sock");
        let data_dir = dir.path().join("data");
        let mut daemon = Self {
            proc: Self::spawn(dir.path(), &socket, &data_dir, server_url, extra),
            socket,
            data_dir,
            dir,
        };
        daemon.wait_ready();
        daemon
    }

    fn spawn(dir: &Path, socket: &Path, data_dir: &Path, server_url: &str, extra: &[&str]) -> Proc {
        let mut command = Command::new(bin("rcimd"));
        command
            .arg("--socket")
            .arg(socket)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--server",
                server_url,
                "--app-key",
                APP_KEY,
                "--token-store",
                "memory",
            ])
            .args(["--log", "debug"])
            .args(extra)
            .env_remove("RCIM_SOCKET")
            // Never pick up a developer's own config file.
            .env("XDG_CONFIG_HOME", dir.join("config"));
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        Proc::spawn("rcimd", command, dir.join(format!("rcimd-{n}.log"))).expect("start rcimd")
    }

    /// Starts a new `rcimd` on the same socket and data dir (after the old one
    /// exited or was killed).
    pub fn restart(&mut self, server_url: &str, extra: &[&str]) {
        self.proc = Self::spawn(
            self.dir.path(),
            &self.socket,
            &self.data_dir,
            server_url,
            extra,
        );
        self.wait_ready();
    }

    /// Waits until the socket accepts connections (at most 10 s).
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.proc.child.try_wait() {
                panic!("rcimd exited early ({status}); log:\n{}", self.proc.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("rcimd did not open its socket; log:\n{}", self.proc.log());
    }

    /// Runs `rcimctl` against this daemon.
    pub fn ctl(&self, args: &[&str]) -> Output {
        ctl(&self.socket, args, None)
    }

    /// `rcimctl connect --token-stdin` with a 20 s limit; panics unless it connects.
    pub fn connect(&self, token: &str) {
        let out = ctl(
            &self.socket,
            &["connect", "--token-stdin", "--timeout", "20"],
            Some(token),
        );
        assert!(
            out.status.success(),
            "connect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `rcimctl status --json`, parsed.
    pub fn status(&self) -> Value {
        let out = self.ctl(&["status", "--json"]);
        assert!(
            out.status.success(),
            "rcimctl status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "status is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Polls `rcimctl status --json` until `status` is `want` (at most 10 s).
    pub fn wait_status(&self, want: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.status();
            if status["status"] == want {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "status never became {want}: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The temp dir holding the socket, data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Runs `rcimctl` with `RCIM_SOCKET` pointing at `socket`, feeding `stdin`.
pub fn ctl(socket: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(bin("rcimctl"))
        .args(args)
        .env("RCIM_SOCKET", socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rcimctl");
    // The pipe is dropped (closed) at the end of this statement either way.
    if let (Some(mut pipe), Some(text)) = (child.stdin.take(), stdin) {
        let _ = pipe.write_all(text.as_bytes());
    }
    child.wait_with_output().expect("rcimctl output")
}

/// Collects every status event a real `rcim-client` sees, on a thread of its own.
pub struct StatusWatcher {
    seen: std::sync::Arc<std::sync::Mutex<Vec<rcim_proto::status::LinkState>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StatusWatcher {
    /// Attaches to the daemon at `socket` and starts collecting.
    pub fn start(socket: &Path) -> Self {
        use rcim_client::{Client, ClientOptions, Event};
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let options = ClientOptions {
            socket: Some(socket.to_owned()),
            ..ClientOptions::named("status-watcher")
        };
        let sink = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("watcher runtime");
            rt.block_on(async move {
                use futures_util::StreamExt;
                let (_client, mut events) = match Client::attach_with_events(options).await {
                    Ok(parts) => parts,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        event = events.next() => match event {
                            Some(Ok(Event::StatusChanged(state))) => {
                                sink.lock().unwrap_or_else(|e| e.into_inner()).push(state);
                            }
                            Some(Ok(_) | Err(_)) => {}
                            None => return,
                        },
                    }
                }
            });
        });
        match ready.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("status watcher cannot attach: {e}"),
            Err(_) => panic!("status watcher did not attach in time"),
        }
        Self {
            seen,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Every status seen so far, in order.
    pub fn statuses(&self) -> Vec<String> {
        self.states()
            .iter()
            .map(|s| s.status.name().to_owned())
            .collect()
    }

    /// Every state seen so far, in order.
    pub fn states(&self) -> Vec<rcim_proto::status::LinkState> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for StatusWatcher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line the test client printed: a callback with its code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// `onDatabaseOpened(code)`.
    DatabaseOpened(i64),
    /// `onConnected(code, userId)`.
    Connected(i64, Option<String>),
    /// The immediate return code of `connect`, when non-zero.
    Rejected(i64),
}

/// Starts the RC-shaped test client process: it calls `connect(token, timeout)` and
/// prints each callback as a JSON line, then exits.
/// `client_bin` is `env!("CARGO_BIN_EXE_rcim-test-client")` of the calling test.
pub fn spawn_client(client_bin: &str, socket: &Path, token: &str, timeout: i32) -> Child {
    Command::new(client_bin)
        .args(["--timeout", &timeout.to_string()])
        .env("RCIM_SOCKET", socket)
        .env("RCIM_TEST_TOKEN", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rcim-test-client")
}

/// Waits for a test client and returns what it saw, in order.
pub fn client_output(child: Child) -> Vec<Seen> {
    let out = child.wait_with_output().expect("client output");
    assert!(
        out.status.success(),
        "test client failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    BufReader::new(&out.stdout[..])
        .lines()
        .map(|line| {
            let line = line.expect("utf-8");
            let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let code = v["code"].as_i64().expect("code");
            match v["event"].as_str() {
                Some("database_opened") => Seen::DatabaseOpened(code),
                Some("connected") => {
                    Seen::Connected(code, v["user_id"].as_str().map(str::to_owned))
                }
                Some("rejected") => Seen::Rejected(code),
                other => panic!("unknown event {other:?}: {line}"),
            }
        })
        .collect()
}

/// Waits until `check` holds, polling every 20 ms, at most `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The reference server inside the test process (for the bulk and inspection
/// helpers that only the library offers), listening on loopback like the binary.
pub struct InProcessServer {
    /// The server.
    pub server: Option<rcim_server::RunningServer>,
    dir: TempDir,
    im_addr: std::net::SocketAddr,
}

impl InProcessServer {
    /// Starts a server with a fresh data dir.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config =
            rcim_server::ServerConfig::local(dir.path().join("server"), APP_KEY, APP_SECRET);
        let server = runtime()
            .block_on(rcim_server::start(config))
            .expect("start the server");
        let im_addr = server.im_addr();
        Self {
            server: Some(server),
            dir,
            im_addr,
        }
    }

    /// The running server.
    pub fn get(&self) -> &rcim_server::RunningServer {
        self.server.as_ref().expect("the server is running")
    }

    /// `rcim://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("rcim://{}", self.im_addr)
    }

    /// Runs a future on the testkit's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        runtime().block_on(future)
    }

    /// Spawns a future on the testkit's runtime.
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        runtime().spawn(future)
    }

    /// Has the server send `count` messages from bob to alice (each `content`
    /// followed by its number).
    pub fn publish_bob_to_alice(&self, count: u32, content: &str) {
        self.block_on(
            self.get()
                .publish_private_bulk("bob", "alice", count, "RC:TxtMsg", content),
        )
        .expect("publish");
    }

    /// Stops the server (its clients see the connection end) and starts it again
    /// on the same port and data dir.
    pub fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            runtime().block_on(server.shutdown());
        }
        let mut config =
            rcim_server::ServerConfig::local(self.dir.path().join("server"), APP_KEY, APP_SECRET);
        config.im_listen = self.im_addr;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match runtime().block_on(rcim_server::start(config.clone())) {
                Ok(server) => {
                    self.server = Some(server);
                    return;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restart: {e:#}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("cannot restart the server: {e:#}"),
            }
        }
    }
}

/// The reference server in-process and an rcimd (with `flags`) connected to it as
/// alice; the token is returned too.
pub fn alice_connected(flags: &[&str]) -> (InProcessServer, String, TestDaemon) {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let daemon = TestDaemon::start(&server.url(), flags);
    daemon.connect(&token);
    (server, token, daemon)
}

/// Waits up to `limit` until `user`'s database in `daemon` holds exactly `count`
/// received messages.
pub fn wait_stored(daemon: &TestDaemon, user: &str, count: usize, limit: Duration) {
    assert!(
        eventually(limit, || stored_ids(&daemon.data_dir, user).len() == count),
        "the database holds {} of {count} messages",
        stored_ids(&daemon.data_dir, user).len()
    );
}

/// Every regular file under `dir`, recursively (symlinks are not followed).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out
}

/// Whether `needle` occurs in `haystack` (never for an empty needle).
pub fn bytes_contain(haystack: &[u8], needle: &str) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
}

/// The local ids of `user`'s received messages in a daemon's database, in order;
/// none while the database does not exist yet.
pub fn stored_ids(data_dir: &Path, user: &str) -> Vec<i64> {
    query_db(
        data_dir,
        user,
        "SELECT id FROM messages WHERE direction = 1 ORDER BY id",
    )
    .into_iter()
    .map(|row| row[0].parse().expect("id"))
    .collect()
}

/// Runs `sql` on `user`'s database in a daemon's data dir (read-only) and returns
/// every row as text; no rows while the database does not exist yet.
pub fn query_db(data_dir: &Path, user: &str, sql: &str) -> Vec<Vec<String>> {
    let path = data_dir.join("users").join(user).join("rcim.db");
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut stmt = conn.prepare(sql).expect("query");
    let columns = stmt.column_count();
    stmt.query_map([], |r| {
        (0..columns)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                    rusqlite::types::Value::Integer(n) => n.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    _ => String::new(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .expect("rows")
    .collect::<Result<_, _>>()
    .expect("values")
}

/// The resident set size of a process, in KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The number of open file descriptors of a process.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The received message uids in a daemon's database for `user`, in local order,
/// and the result of `PRAGMA integrity_check`.
pub fn stored_uids(data_dir: &Path, user: &str) -> (Vec<String>, String) {
    let path = data_dir.join("users").join(user).join("rcim.db");
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    let mut stmt = conn
        .prepare("SELECT uid FROM messages WHERE direction = 1 ORDER BY id")
        .expect("query");
    let uids = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .expect("rows")
        .collect::<Result<Vec<_>, _>>()
        .expect("uids");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    (uids, check)
}

/// A small seeded random generator for fault schedules (the seed is printed so a
/// failing run can be replayed with `RCIM_SEED`).
pub struct Rng(u64);

impl Rng {
    /// Seeded from `RCIM_SEED` or the clock; prints the seed.
    pub fn from_env(test: &str) -> Self {
        let seed = std::env::var("RCIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: RCIM_SEED={seed}");
        Self(seed.max(1))
    }

    /// The next number in `0..bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound.max(1)
    }
}
