//! A throw-away PostgreSQL for tests (cargo feature `testpg`).
//!
//! [`TestPostgres::start`] runs `initdb` into a fresh temp dir and starts the server
//! on a free loopback port, with its Unix socket in that dir and `trust`
//! authentication for the superuser `rcim`. The binaries come from `RCIM_PG_BIN`
//! when set, else from Debian's `/usr/lib/postgresql/<newest>/bin`, else from
//! `PATH`. PostgreSQL refuses to run as root, so when the tests run as root (CI
//! does) the cluster belongs to, and runs as, the `postgres` system user (or
//! `nobody` when there is none).
//!
//! An instance is stopped (`pg_ctl stop -m immediate`) and its directory removed
//! when the guard drops. So that a test process that is killed or aborts does not
//! leave a postmaster behind, every instance also has a watchdog: a `sh` loop that
//! stops the cluster once the test process is gone.
//!
//! [`TestPostgres::stop`] and [`TestPostgres::restart`] take the database away and
//! bring it back on the same port and data, for the tests of a database outage.
//! [`TestPostgres::create_database`] makes a fresh, empty database, so that tests
//! can share one cluster ([`shared`]) and still not see each other's rows.
//!
//! Functions return errors with the command and its output, so that a missing
//! package or a failed start says what to install or why.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use tempfile::TempDir;

/// Why a test PostgreSQL could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "PostgreSQL server binaries not found (looked in $RCIM_PG_BIN, \
         /usr/lib/postgresql/*/bin and PATH); install Debian's postgresql-15 \
         (or any PostgreSQL >= 13) or set RCIM_PG_BIN to the directory holding initdb"
    )]
    NotInstalled,
    /// A command could not be run or failed.
    #[error("{command}: {detail}")]
    Command {
        /// What was run.
        command: String,
        /// Its exit status and output, or why it could not start.
        detail: String,
    },
    /// A file-system step failed.
    #[error("{what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        cause: std::io::Error,
    },
}

/// The user the cluster runs as when the tests run as root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A running test PostgreSQL. Stopped and removed on drop.
#[derive(Debug)]
pub struct TestPostgres {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    run_as: Option<RunAs>,
    databases: AtomicU32,
    /// Serialises stop and restart (a test may stop while another asks for a URL).
    lifecycle: Mutex<()>,
}

/// The superuser of every test cluster.
pub const SUPERUSER: &str = "rcim";

impl TestPostgres {
    /// Initialises and starts a new cluster. Takes about a second.
    pub fn start() -> Result<Self, PgError> {
        let bin = find_bin()?;
        let run_as = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix("rcim-pg-")
            // A short, world-traversable parent: the socket path must stay under
            // 107 bytes, and the postgres user must reach the directory.
            .tempdir_in("/tmp")
            .map_err(|cause| io("create the PostgreSQL temp dir", cause))?;
        if let Some(user) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid))
                .map_err(|cause| io("hand the temp dir to the postgres user", cause))?;
        }
        let data = dir.path().join("data");
        run(command(&bin, "initdb", run_as)
            .arg("--no-sync")
            .args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8"])
            .arg("--no-locale")
            .arg("-D")
            .arg(&data))?;
        let mut pg = Self {
            bin,
            dir,
            port: 0,
            run_as,
            databases: AtomicU32::new(0),
            lifecycle: Mutex::new(()),
        };
        // The free port is found by binding and releasing it, so another process
        // may take it first: try a few.
        let mut tries = 0;
        loop {
            pg.port = free_port().map_err(|cause| io("find a free port", cause))?;
            match pg.write_config().and_then(|()| pg.pg_ctl_start()) {
                Ok(()) => break,
                Err(e) if tries == 4 => return Err(e),
                Err(_) => tries += 1,
            }
        }
        pg.spawn_watchdog()?;
        Ok(pg)
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the database `name` (which must exist; `postgres` always does).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates a fresh, empty database and returns its URL.
    pub fn create_database(&self) -> Result<String, PgError> {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        run(Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", SUPERUSER])
            .arg(&name))?;
        Ok(self.url(&name))
    }

    /// Stops the server (`fast`: clients are disconnected, the data is kept).
    pub fn stop(&self) -> Result<(), PgError> {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        self.pg_ctl_stop("fast")
    }

    /// Kills the server without a clean shutdown (`immediate`; it recovers from
    /// its WAL at the next start).
    pub fn crash(&self) -> Result<(), PgError> {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        self.pg_ctl_stop("immediate")
    }

    /// Starts the server again after [`TestPostgres::stop`] or
    /// [`TestPostgres::crash`], on the same port with the same data.
    pub fn restart(&self) -> Result<(), PgError> {
        let _guard = self.lifecycle.lock().unwrap_or_else(|e| e.into_inner());
        self.pg_ctl_start()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_config(&self) -> Result<(), PgError> {
        // Test settings: no fsync (a crash of this machine is not under test, a
        // crash of the server is, and WAL replay covers it), room for several
        // nodes' pools, and the socket in our own dir.
        let config = format!(
            "listen_addresses = '127.0.0.1'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             max_connections = 300\n\
             shared_buffers = 32MB\n\
             log_min_messages = warning\n",
            self.port,
            self.dir.path().display()
        );
        let path = self.data().join("postgresql.auto.conf");
        std::fs::write(&path, config)
            .map_err(|cause| io(&format!("write {}", path.display()), cause))
    }

    fn pg_ctl_start(&self) -> Result<(), PgError> {
        let log = self.dir.path().join("postgres.log");
        let started = run(command(&self.bin, "pg_ctl", self.run_as)
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "30", "start"]));
        started.map_err(|e| match std::fs::read_to_string(&log) {
            Ok(text) if !text.is_empty() => PgError::Command {
                command: "pg_ctl start".into(),
                detail: format!("{e}\n--- postgres.log ---\n{text}"),
            },
            _ => e,
        })
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), PgError> {
        run(command(&self.bin, "pg_ctl", self.run_as)
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-t", "30", "-m", mode, "stop"]))
    }

    /// A detached `sh` loop that stops the cluster when this process is gone: it
    /// sends the postmaster SIGQUIT (an immediate shutdown), then removes the dir.
    /// It runs as the caller, so that it may watch a root test process, and root
    /// may signal the postgres user's postmaster.
    fn spawn_watchdog(&self) -> Result<(), PgError> {
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             pm=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null) && kill -QUIT \"$pm\"; \
             sleep 3; rm -rf '{dir}'",
            pid = std::process::id(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|cause| io("start the PostgreSQL watchdog", cause))
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop("immediate");
    }
}

/// One cluster per test process, started on first use, for tests that only need a
/// database of their own ([`TestPostgres::create_database`]) and never stop the
/// server. Tests that stop or crash the server start their own. The watchdog
/// stops it when the process exits.
pub fn shared() -> Result<&'static TestPostgres, PgError> {
    static SHARED: OnceLock<Result<TestPostgres, String>> = OnceLock::new();
    match SHARED.get_or_init(|| TestPostgres::start().map_err(|e| e.to_string())) {
        Ok(pg) => Ok(pg),
        Err(e) => Err(PgError::Command {
            command: "start the shared test PostgreSQL".into(),
            detail: e.clone(),
        }),
    }
}

/// A fresh database on the [`shared`] cluster: its URL. Panics with the reason
/// when PostgreSQL cannot be started, like the other test fixtures.
pub fn fresh_database() -> String {
    shared()
        .and_then(TestPostgres::create_database)
        .unwrap_or_else(|e| panic!("test PostgreSQL: {e}"))
}

fn io(what: &str, cause: std::io::Error) -> PgError {
    PgError::Io {
        what: what.to_owned(),
        cause,
    }
}

/// The directory holding `initdb`, `pg_ctl` and `createdb`.
fn find_bin() -> Result<PathBuf, PgError> {
    if let Some(dir) = std::env::var_os("RCIM_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(PgError::NotInstalled)
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path).find(|dir| {
                dir.join("initdb").is_file()
                    && dir.join("pg_ctl").is_file()
                    && dir.join("createdb").is_file()
            })
        })
        .ok_or(PgError::NotInstalled)
}

/// `None` when not root; else the `postgres` user, or `nobody`.
fn run_as() -> Result<Option<RunAs>, PgError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let passwd =
        std::fs::read_to_string("/etc/passwd").map_err(|cause| io("read /etc/passwd", cause))?;
    let find = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 4 && fields[0] == name).then(|| {
                Some(RunAs {
                    uid: fields[2].parse().ok()?,
                    gid: fields[3].parse().ok()?,
                })
            })?
        })
    };
    find("postgres")
        .or_else(|| find("nobody"))
        .map(Some)
        .ok_or_else(|| PgError::Command {
            command: "find an unprivileged user for PostgreSQL".into(),
            detail: "running as root, and /etc/passwd has neither `postgres` nor `nobody`".into(),
        })
}

fn command(bin: &Path, program: &str, run_as: Option<RunAs>) -> Command {
    let mut command = Command::new(bin.join(program));
    if let Some(user) = run_as {
        use std::os::unix::process::CommandExt as _;
        // (The supplementary groups stay root's: `groups` is unstable; postgres
        // only refuses an effective uid of 0.)
        command.uid(user.uid).gid(user.gid);
        // initdb and pg_ctl look at HOME and the working directory; root's are
        // not readable by the postgres user.
        command.current_dir("/tmp").env("HOME", "/tmp");
    }
    command.env_remove("PGDATA").env("LC_ALL", "C");
    command
}

fn run(command: &mut Command) -> Result<(), PgError> {
    let name = format!("{:?}", command.get_program());
    let output: Output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| PgError::Command {
            command: name.clone(),
            detail: format!("cannot start: {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(PgError::Command {
        command: name,
        detail: format!(
            "{}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_creates_databases_and_survives_a_restart() {
        let pg = TestPostgres::start().unwrap();
        let a = pg.create_database().unwrap();
        let b = pg.create_database().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("postgres://rcim@127.0.0.1:{}/", pg.port())));
        let pid_file = pg.data().join("postmaster.pid");
        assert!(pid_file.exists(), "running");
        pg.stop().unwrap();
        assert!(!pid_file.exists(), "stopped");
        pg.restart().unwrap();
        assert!(pid_file.exists(), "running again");
        pg.crash().unwrap();
        pg.restart().unwrap();
        // The databases made before are still there.
        run(Command::new(pg.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &pg.port().to_string()])
            .args(["-U", SUPERUSER, "-d", a.rsplit('/').next().unwrap()])
            .args(["-c", "SELECT 1"]))
        .unwrap();
        let dir = pg.dir.path().to_owned();
        drop(pg);
        assert!(!dir.exists(), "removed on drop");
    }

    #[test]
    fn the_shared_cluster_gives_each_caller_its_own_database() {
        let a = fresh_database();
        let b = fresh_database();
        assert_ne!(a, b);
        assert_eq!(shared().unwrap().port(), shared().unwrap().port());
    }
}
