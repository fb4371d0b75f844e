//! Real processes: finding the workspace's binaries (built by the testkit's
//! [`rcim_tests::binaries`], as for the cross-process tests), starting
//! `rcimd`, `rcim-server` and subscribers, and reading what `/proc` says about
//! them (resident memory, CPU time) and about the machine.
//!
//! Every child is held in a [`Proc`] that kills it (by its own pid) when dropped,
//! so a failed scenario leaves nothing running.

use anyhow::{Context as _, bail};
use rcim_tests::binaries::{TargetDir, WithoutCargo};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The app key every benchmark server uses.
pub const APP_KEY: &str = "bench-app-key";
/// The app secret every benchmark server uses.
pub const APP_SECRET: &str = "bench-app-secret";

/// Where the workspace binaries are: next to this executable.
#[derive(Clone, Debug)]
pub struct Bins {
    dir: TargetDir,
}

impl Bins {
    /// Builds `rcimd`, `rcim-server`, `rcimctl` and `bench-subscriber` with the
    /// profile this driver was built with (so a run always measures the current
    /// code), then finds them. Without cargo, the binaries already built are used.
    pub fn build() -> anyhow::Result<Self> {
        let dir = TargetDir::of_current_exe()?;
        eprintln!(
            "building the binaries under test ({})…",
            dir.path().display()
        );
        dir.build(
            &["rcimd", "rcim-server", "rcimctl", "rcim-bench"],
            WithoutCargo::UseBuilt,
        )?;
        let bins = Self { dir };
        for name in ["rcimd", "rcim-server", "rcimctl", "bench-subscriber"] {
            let path = bins.path(name);
            if !path.exists() {
                bail!(
                    "{} is missing: build it with cargo build --release --bins",
                    path.display()
                );
            }
        }
        Ok(bins)
    }

    /// The path of binary `name`. `RCIM_BENCH_SUBSCRIBER=PATH` runs another
    /// build of `bench-subscriber` (to compare two versions of `rcim-client`).
    pub fn path(&self, name: &str) -> PathBuf {
        if name == "bench-subscriber"
            && let Some(path) = std::env::var_os("RCIM_BENCH_SUBSCRIBER")
        {
            return PathBuf::from(path);
        }
        self.dir.binary(name)
    }
}

/// A child process, killed and reaped when dropped.
pub struct Proc {
    child: Child,
    name: String,
}

impl Proc {
    /// Starts `command` (stdin null, stdout piped, stderr to `log`).
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::create(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            child,
            name: name.into(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited.
    pub fn alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited early: {status}", self.name),
            None => Ok(()),
        }
    }

    /// Reads one line of stdout (blocking).
    pub fn read_line(&mut self) -> anyhow::Result<String> {
        let stdout = self.child.stdout.as_mut().context("no stdout")?;
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            match stdout.read(&mut byte)? {
                0 => bail!("{} closed its stdout", self.name),
                _ if byte[0] == b'\n' => break,
                _ => line.push(byte[0]),
            }
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    /// Kills the process with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself (at most `limit`, then kills it).
    pub fn wait(&mut self, limit: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                bail!("{} did not exit within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `rcimd` on a socket in `dir`, with a fresh data dir and the token store asked for
/// (`memory`, the default of every scenario but the encryption one, keeps the
/// database plain; an OS keyring encrypts it).
pub struct Daemon {
    /// The process.
    pub proc: Proc,
    /// Its socket.
    pub socket: PathBuf,
}

impl Daemon {
    /// Starts `rcimd` against `server_url` with the memory token store and waits
    /// until its socket answers.
    pub fn start(bins: &Bins, dir: &Path, server_url: &str) -> anyhow::Result<Self> {
        Self::start_with_store(bins, dir, server_url, "memory")
    }

    /// [`Daemon::start`] with `--token-store token_store`.
    pub fn start_with_store(
        bins: &Bins,
        dir: &Path,
        server_url: &str,
        token_store: &str,
    ) -> anyhow::Result<Self> {
        let socket = dir.join("run").join("rcimd.sock");
        // For profiling: `RCIM_BENCH_WRAP="perf record -g --"` (any command
        // prefix) runs rcimd under a profiler, its output going to the log;
        // `RCIM_BENCH_RCIMD=PATH` runs another rcimd build (one with debug info
        // and frame pointers, say).
        let rcimd =
            std::env::var_os("RCIM_BENCH_RCIMD").map_or_else(|| bins.path("rcimd"), PathBuf::from);
        let mut command = match std::env::var("RCIM_BENCH_WRAP") {
            Ok(wrap) if !wrap.trim().is_empty() => {
                let mut words = wrap.split_whitespace();
                let mut command = Command::new(words.next().unwrap_or("env"));
                command.args(words).arg(&rcimd);
                command
            }
            _ => Command::new(&rcimd),
        };
        command
            .arg("--socket")
            .arg(&socket)
            .arg("--data-dir")
            .arg(dir.join("rcimd-data"))
            .args([
                "--server",
                server_url,
                "--app-key",
                APP_KEY,
                "--token-store",
                token_store,
            ])
            .args(["--log", "warn"])
            .env_remove("RCIM_SOCKET")
            .env_remove("RCIM_CONFIG")
            .env("XDG_CONFIG_HOME", dir.join("config"));
        let mut proc = Proc::spawn("rcimd", command, &dir.join("rcimd.log"))?;
        if std::env::var_os("RCIM_BENCH_WRAP").is_some() {
            eprintln!(
                "rcimd pid {} (log {})",
                proc.pid(),
                dir.join("rcimd.log").display()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            proc.alive()?;
            if Instant::now() > deadline {
                bail!(
                    "rcimd did not open its socket within 60 s (see {})",
                    dir.join("rcimd.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Self { proc, socket })
    }
}

impl Drop for Daemon {
    /// Under a profiler (`RCIM_BENCH_WRAP`), stops rcimd with SIGTERM and waits for
    /// it, so the profiler writes its output; otherwise [`Proc`] kills it.
    fn drop(&mut self) {
        if std::env::var_os("RCIM_BENCH_WRAP").is_none() {
            return;
        }
        if let Some(pid) = i32::try_from(self.proc.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            let _ = self.proc.wait(Duration::from_secs(120));
        }
    }
}

/// `rcim-server` on loopback.
pub struct Server {
    /// The process.
    pub proc: Proc,
    /// `127.0.0.1:PORT` of the IM endpoint.
    pub im_addr: String,
    api_addr: String,
    data_dir: PathBuf,
    log_dir: PathBuf,
    starts: usize,
}

impl Server {
    /// Starts a server with a fresh data dir under `dir`.
    pub fn start(bins: &Bins, dir: &Path) -> anyhow::Result<Self> {
        let mut server = Self {
            proc: Self::launch(
                bins,
                dir,
                &dir.join("server-data"),
                "127.0.0.1:0",
                "127.0.0.1:0",
                0,
            )?,
            im_addr: String::new(),
            api_addr: String::new(),
            data_dir: dir.join("server-data"),
            log_dir: dir.to_owned(),
            starts: 1,
        };
        let line = server.proc.read_line()?;
        let ready: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("the ready line is not JSON: {line}"))?;
        server.im_addr = ready["im_addr"].as_str().context("no im_addr")?.to_owned();
        server.api_addr = ready["api_url"]
            .as_str()
            .context("no api_url")?
            .trim_start_matches("http://")
            .to_owned();
        Ok(server)
    }

    fn launch(
        bins: &Bins,
        log_dir: &Path,
        data_dir: &Path,
        im: &str,
        api: &str,
        n: usize,
    ) -> anyhow::Result<Proc> {
        let mut command = Command::new(bins.path("rcim-server"));
        command
            .args(["--im-listen", im, "--api-listen", api])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--app-key", APP_KEY, "--app-secret", APP_SECRET]);
        Proc::spawn(
            "rcim-server",
            command,
            &log_dir.join(format!("server-{n}.log")),
        )
    }

    /// `rcim://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("rcim://{}", self.im_addr)
    }

    /// Kills the server with SIGKILL: no goodbye to its clients.
    pub fn kill(&mut self) {
        self.proc.kill();
    }

    /// Starts the server again on the same ports and data dir; returns once its
    /// ready line is printed (the listener is bound).
    pub fn restart(&mut self, bins: &Bins) -> anyhow::Result<()> {
        let proc = Self::launch(
            bins,
            &self.log_dir,
            &self.data_dir,
            &self.im_addr,
            &self.api_addr,
            self.starts,
        )?;
        self.starts += 1;
        self.proc = proc;
        self.proc.read_line()?;
        Ok(())
    }
}

/// A token for `user`, signed with the benchmark app secret: `rcim-server`
/// accepts it, and the bench upstream (which checks nothing) gets the user id the
/// daemon reads from its claims.
pub fn token(user: &str) -> String {
    let issuer = rcim_server::token::TokenIssuer::new(APP_KEY, APP_SECRET);
    let now = i64::try_from(crate::payload::now_ns() / 1_000_000).unwrap_or(0);
    issuer.issue(user, now, 0).expose().to_owned()
}

/// `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    status_kib(pid, "VmRSS")
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `RssAnon`, `RssFile`, …).
pub fn status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/PID/status"))
}

/// CPU time of `pid` from `/proc/PID/stat` (utime + stime), in milliseconds, at
/// the kernel's tick resolution (usually 10 ms).
pub fn cpu_stat_ms(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after ')'.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = fields.get(11).context("no utime")?.parse()?;
    let stime: f64 = fields.get(12).context("no stime")?.parse()?;
    let tick = rustix::param::clock_ticks_per_second() as f64;
    Ok((utime + stime) * 1_000.0 / tick)
}

/// CPU time of every thread of `pid` from `/proc/PID/task/*/schedstat`, in
/// milliseconds, at nanosecond resolution.
pub fn cpu_sched_ms(pid: u32) -> anyhow::Result<f64> {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        if let Ok(text) = std::fs::read_to_string(path) {
            ns += text
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e6)
}

/// The machine, for the report: CPU count, model and kernel.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    serde_json::json!({
        "nproc": nproc,
        "cpu_model": model,
        "kernel": kernel,
        "mem_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
    })
}

/// Raises this process's open-file limit to its hard limit (children inherit it),
/// so 1,000 attached clients fit.
pub fn raise_nofile() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.maximum.is_some() || limit.current.is_some() {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
