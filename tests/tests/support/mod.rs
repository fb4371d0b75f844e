//! Helpers shared by the reliability tests (chaos, churn): a receiver process that
//! survives its own restarts. (Looking into the daemon's database and /proc is in
//! the testkit, `rcim_tests`.)
#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The RC-shaped test client.
pub const CLIENT: &str = env!("CARGO_BIN_EXE_rcim-test-client");

/// A `rcim-test-client --receive --print-ids` process and the ids it printed,
/// across its restarts (each restart subscribes after the last id it printed).
pub struct Receiver {
    /// Its name in messages.
    pub name: String,
    child: Option<Child>,
    reader: Option<JoinHandle<()>>,
    ids: Arc<Mutex<Vec<i64>>>,
    alive: Arc<Mutex<bool>>,
    stopped: bool,
    /// How often it was started.
    pub starts: u32,
    /// For each start: the `--since` it was given and how many ids it had then.
    pub history: Vec<(i64, usize)>,
}

impl Receiver {
    pub fn new(name: String) -> Self {
        Self {
            name,
            child: None,
            reader: None,
            ids: Arc::default(),
            alive: Arc::default(),
            stopped: false,
            starts: 0,
            history: Vec::new(),
        }
    }

    pub fn last_id(&self) -> i64 {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .copied()
            .unwrap_or(0)
    }

    pub fn ids(&self) -> Vec<i64> {
        self.ids.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_alive(&self) -> bool {
        *self.alive.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the process (subscribing after the last id it printed) and waits until
    /// it is subscribed. `false` if it could not attach (the daemon is down).
    pub fn start(&mut self, socket: &Path) -> bool {
        self.reap();
        let since = self.last_id();
        self.history.push((since, self.ids().len()));
        let mut child = Command::new(CLIENT)
            .args(["--receive", "1000000000", "--print-ids"])
            .args(["--since", &since.to_string()])
            .env("RCIM_SOCKET", socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a receiver");
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready) = mpsc::channel();
        let ids = Arc::clone(&self.ids);
        let alive = Arc::clone(&self.alive);
        *alive.lock().unwrap_or_else(|e| e.into_inner()) = true;
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"ready\"") {
                    let _ = ready_tx.send(true);
                } else if let Ok(id) = line.trim().parse::<i64>() {
                    ids.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                }
            }
            *alive.lock().unwrap_or_else(|e| e.into_inner()) = false;
            let _ = ready_tx.send(false);
        });
        self.child = Some(child);
        self.reader = Some(reader);
        self.starts += 1;
        matches!(ready.recv_timeout(Duration::from_secs(10)), Ok(true))
    }

    /// Kills the process (if any) and collects every line it printed.
    pub fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.stopped {
                signal(&child, "-CONT");
                self.stopped = false;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// The process id of the current process, if one runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it was stopped (SIGSTOP) and not continued yet.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    pub fn pause(&mut self) {
        if let Some(child) = &self.child {
            signal(child, "-STOP");
            self.stopped = true;
        }
    }

    pub fn resume(&mut self) {
        if let Some(child) = &self.child
            && self.stopped
        {
            signal(child, "-CONT");
        }
        self.stopped = false;
    }
}

fn signal(child: &Child, which: &str) {
    let _ = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status();
}

/// Where `got` first departs from `want`, with the neighbourhood of both and the
/// receiver's start history, for a failure message.
pub fn divergence(receiver: &Receiver, want: &[i64]) -> String {
    let got = receiver.ids();
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let window = |ids: &[i64]| ids[at.saturating_sub(3)..(at + 4).min(ids.len())].to_vec();
    let starts: Vec<_> = receiver
        .history
        .iter()
        .filter(|(_, len)| len.abs_diff(at) < 3)
        .collect();
    format!(
        "first difference at index {at} of {} received / {} stored: received {:?}, stored \
         {:?}; starts (since, ids then) near it: {starts:?}",
        got.len(),
        want.len(),
        window(&got),
        window(want)
    )
}
