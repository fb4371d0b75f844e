//! The chaos run: real processes, random faults, and a message-by-message account
//! at the end.
//!
//! The reference server runs in the test process (for its bulk publisher and its
//! authoritative inboxes); `rcimd` is a real process behind the fault proxy;
//! receivers are real `rcim-test-client --receive` processes that print every
//! message id they get; senders are real `rcimctl send` processes. For a number of
//! rounds the server publishes to alice and alice sends to bob while a seeded
//! random schedule picks faults:
//!
//! - `kill -9` rcimd (then a restart and `rcimctl connect --token-stdin`, as after
//!   a crash: the memory token store forgets the token),
//! - a restart of the server,
//! - a black hole on the upstream (no byte moves, no FIN; only the heartbeat can
//!   tell) or a cut of every upstream connection,
//! - `kill -9` of a receiver (restarted with `--since <last id it printed>`) or of a
//!   sender in the middle of its call,
//! - SIGSTOP of a receiver, SIGCONT a little later;
//!
//! and, while the faults strike, recalls: bob (through the server, as the Server
//! API does) recalls a message alice stored, and alice recalls one she sent
//! (`rcimctl recall`, which fails cleanly while she is disconnected); and reads:
//! once a round, at a random one of two moments (while the burst arrives, just
//! before the faults, or after them), alice reads her conversation with bob
//! (`rcimctl read`, queued while she is disconnected).
//!
//! At the end, message by message: the server's inbox for alice equals the
//! daemon's database (and `PRAGMA integrity_check` is ok) equals what each
//! receiver printed, across its restarts (no gap, no duplicate, in order); every
//! message alice saved is on the server exactly once (by client message id, with
//! the uid the daemon recorded) and in bob's inbox once; every send rcimctl
//! reported as saved is among them. Recall commands (`RC:RcCmd`), read receipts
//! (`RC:ReadNtf`) and read syncs (`RC:SRSMsg`) are inbox entries that are applied,
//! not stored, so they are left out of those counts; a recalled message keeps its
//! place and still counts as a message. Recalls: every recall that was confirmed
//! is an `RC:RcNtf` in alice's database, no message nobody tried to recall is, and
//! no notification holds any original text. Reads: every queued read went out,
//! each read receipt and read sync is on the server once (by client message id),
//! none is stored as a message, alice's own inbox holds each sync once and bob's
//! inbox the messages plus the receipts, and alice's unread count is exactly the
//! messages sent after her read position (a recall changes no unread count).
//!
//! `RCIM_CHAOS_ROUNDS` (default 10) sets the number of rounds, `RCIM_SEED` replays
//! a schedule (the seed is printed first). The summary line is printed at the end.
//!
//! `after_a_restart_a_subscriber_gets_what_the_previous_rcimd_stored` is the
//! regression test for the bug the chaos run found: a restarted rcimd replayed to a
//! subscriber only what it had published itself (fixed: the replay reads the
//! database first).

mod support;

use rcim_tests::proxy::{FaultProxy, Mode};
use rcim_tests::{
    InProcessServer, Rng, TestDaemon, ctl, eventually, query_db, stored_ids, stored_uids,
};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::Receiver;
/// Receivers attached at all times (each restarted when it dies).
const RECEIVERS: usize = 3;
/// The daemon notices a black hole within about a second.
const DAEMON_FLAGS: &[&str] = &["--ping-interval", "0.5", "--pong-timeout", "0.5"];

/// What one kind of fault did, counted.
#[derive(Default, Debug)]
struct Faults {
    daemon_kill9: u32,
    server_restart: u32,
    blackhole: u32,
    upstream_drop: u32,
    receiver_kill9: u32,
    sender_kill9: u32,
    receiver_stop: u32,
    /// Recalls bob asked for through the server, and how many took effect.
    recalls_by_server: u32,
    recalls_by_server_done: u32,
    /// Recalls alice asked for with rcimctl, and how many it reported done.
    recalls_by_ctl: u32,
    recalls_by_ctl_done: u32,
}

/// One count from alice's database.
fn count(data_dir: &Path, sql: &str) -> i64 {
    query_db(data_dir, "alice", sql)
        .first()
        .map_or(0, |row| row[0].parse().unwrap_or(0))
}

/// Alice's outgoing messages: (content, client message id, uid or "").
fn stored_outgoing(data_dir: &Path) -> Vec<(String, String, String)> {
    query_db(
        data_dir,
        "alice",
        "SELECT content, client_msg_id, COALESCE(uid, '') FROM messages WHERE direction = 0 ORDER BY id",
    )
    .into_iter()
    .map(|row| (row[0].clone(), row[1].clone(), row[2].clone()))
    .collect()
}

fn outbox_len(data_dir: &Path) -> usize {
    query_db(data_dir, "alice", "SELECT COUNT(*) FROM outbox")
        .first()
        .map_or(0, |row| row[0].parse().unwrap_or(0))
}

fn connect(daemon: &TestDaemon, token: &str) {
    // The link may be mid-reconnect through a fault that just ended; try twice.
    for attempt in 0..3 {
        let out = ctl(
            &daemon.socket,
            &["connect", "--token-stdin", "--timeout", "20"],
            Some(token),
        );
        if out.status.success() {
            return;
        }
        assert!(
            attempt < 2,
            "connect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What alice sent through rcimctl.
#[derive(Default)]
struct Sends {
    /// Contents rcimctl reported as saved (exit 0 with --no-wait).
    saved: Vec<String>,
    /// Sends tried.
    tried: u32,
}

impl Sends {
    /// One `rcimctl send --no-wait`; counted as saved when it says so.
    fn send(&mut self, socket: &Path) {
        self.tried += 1;
        let text = format!("out-{}", self.tried);
        let out = ctl(
            socket,
            &["send", "--to", "bob", "--text", &text, "--no-wait"],
            None,
        );
        if out.status.success() {
            self.saved.push(text);
        }
    }

    /// A waiting `rcimctl send` killed after `after`: saved or not, never twice.
    fn send_and_kill(&mut self, socket: &Path, after: Duration) {
        self.tried += 1;
        let text = format!("out-{}", self.tried);
        let mut child = Command::new(rcim_tests::bin("rcimctl"))
            .args(["send", "--to", "bob", "--text", &text, "--timeout", "5"])
            .env("RCIM_SOCKET", socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rcimctl");
        std::thread::sleep(after);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The chaos world: every process and what has been sent.
struct World {
    server: InProcessServer,
    proxy: FaultProxy,
    daemon: TestDaemon,
    token: String,
    receivers: Vec<Receiver>,
    faults: Faults,
    published: usize,
    sends: Sends,
    /// Uids a recall was asked for (confirmed or not), and the confirmed ones.
    recall_tried: HashSet<String>,
    recalled: HashSet<String>,
    /// `rcimctl read` calls tried, and answered 0.
    reads: (u32, u32),
}

impl World {
    fn start() -> Self {
        let server = InProcessServer::start();
        let token = server.get().issue_token("alice", "Alice").expect("token");
        let proxy = FaultProxy::start(server.get().im_addr());
        let daemon = TestDaemon::start(&proxy.url(), DAEMON_FLAGS);
        connect(&daemon, &token);
        let mut world = Self {
            server,
            proxy,
            daemon,
            token,
            receivers: (0..RECEIVERS)
                .map(|i| Receiver::new(format!("receiver-{i}")))
                .collect(),
            faults: Faults::default(),
            published: 0,
            sends: Sends::default(),
            recall_tried: HashSet::new(),
            recalled: HashSet::new(),
            reads: (0, 0),
        };
        world.revive_receivers();
        world
    }

    fn revive_receivers(&mut self) {
        let socket = self.daemon.socket.clone();
        for receiver in &mut self.receivers {
            receiver.resume();
            if !receiver.is_alive() {
                receiver.start(&socket);
            }
        }
    }

    fn round(&mut self, rng: &mut Rng) {
        let burst = 20 + rng.below(180) as u32;
        let pause = Duration::from_millis(rng.below(300));
        let kill_daemon = rng.below(3) == 0;
        let net = rng.below(4); // 0 black hole, 1 drop, 2-3 nothing
        let restart_server = rng.below(5) == 0;
        let victim = rng.below(RECEIVERS as u64) as usize;
        let client_fault = rng.below(4); // 0 kill, 1 stop, 2 kill a sender, 3 nothing
        let sends = 1 + rng.below(4);
        let hole = Duration::from_millis(300 + rng.below(1500));
        let recall_incoming = rng.below(2) == 0;
        let recall_outgoing = rng.below(2) == 0;
        let pick = rng.below(1_000_000);
        let read_before_faults = rng.below(2) == 0;

        // Traffic both ways while the faults strike.
        let World {
            server,
            proxy,
            daemon,
            receivers,
            faults,
            sends: sent,
            recall_tried,
            recalled,
            reads,
            ..
        } = self;
        let socket = daemon.socket.clone();
        let published = std::thread::scope(|scope| {
            let server = &*server;
            let publisher = scope.spawn(move || {
                server
                    .block_on(server.get().publish_private_bulk(
                        "bob",
                        "alice",
                        burst,
                        "RC:TxtMsg",
                        "in",
                    ))
                    .expect("publish")
                    .len()
            });
            for _ in 0..sends {
                sent.send(&socket);
            }
            if recall_incoming && let Some(uid) = pick_uid(&daemon.data_dir, 1, pick) {
                faults.recalls_by_server += 1;
                recall_tried.insert(uid.clone());
                if matches!(server.block_on(server.get().recall("bob", &uid)), Ok(true)) {
                    faults.recalls_by_server_done += 1;
                    recalled.insert(uid);
                }
            }
            if recall_outgoing && let Some(uid) = pick_uid(&daemon.data_dir, 0, pick) {
                faults.recalls_by_ctl += 1;
                recall_tried.insert(uid.clone());
                if ctl(&socket, &["recall", "--uid", &uid], None)
                    .status
                    .success()
                {
                    faults.recalls_by_ctl_done += 1;
                    recalled.insert(uid);
                }
            }
            std::thread::sleep(pause);
            if read_before_faults {
                // Alice reads while the burst arrives, just before the faults.
                reads.0 += 1;
                if ctl(&socket, &["read", "--with", "bob"], None)
                    .status
                    .success()
                {
                    reads.1 += 1;
                }
            }
            match net {
                0 => {
                    proxy.set_mode(Mode::BlackHole);
                    faults.blackhole += 1;
                }
                1 => {
                    proxy.drop_all();
                    faults.upstream_drop += 1;
                }
                _ => {}
            }
            match client_fault {
                0 => {
                    receivers[victim].reap();
                    faults.receiver_kill9 += 1;
                }
                1 => {
                    receivers[victim].pause();
                    faults.receiver_stop += 1;
                }
                2 => {
                    sent.send_and_kill(&socket, Duration::from_millis(rng.below(60)));
                    faults.sender_kill9 += 1;
                }
                _ => {}
            }
            if kill_daemon {
                daemon.proc.kill9();
                faults.daemon_kill9 += 1;
            }
            if net == 0 {
                std::thread::sleep(hole);
                proxy.set_mode(Mode::Pass);
            }
            publisher.join().expect("publisher")
        });
        self.published += published;
        if restart_server {
            self.server.restart();
            self.faults.server_restart += 1;
        }
        if kill_daemon {
            self.daemon.restart(&self.proxy.url(), DAEMON_FLAGS);
            connect(&self.daemon, &self.token);
        }
        // A stopped receiver stays stopped for a moment while traffic goes on.
        self.sends.send(&self.daemon.socket.clone());
        if !read_before_faults {
            self.reads.0 += 1;
            if ctl(&self.daemon.socket, &["read", "--with", "bob"], None)
                .status
                .success()
            {
                self.reads.1 += 1;
            }
        }
        self.revive_receivers();
    }

    /// Waits until everything that was sent has arrived everywhere.
    fn settle(&mut self) {
        self.proxy.set_mode(Mode::Pass);
        self.revive_receivers();
        self.daemon.wait_status("connected");
        let data_dir = self.daemon.data_dir.clone();
        let published = self.published;
        let arrived = eventually(Duration::from_secs(120), || {
            stored_ids(&data_dir, "alice").len() >= published
                && outbox_len(&data_dir) == 0
                && count(&data_dir, "SELECT COUNT(*) FROM command_outbox") == 0
        });
        assert!(
            arrived,
            "the daemon holds {} of {published} messages, {} still in its outbox, \
             {} in its command outbox",
            stored_ids(&data_dir, "alice").len(),
            outbox_len(&data_dir),
            count(&data_dir, "SELECT COUNT(*) FROM command_outbox")
        );
        let stored = stored_ids(&data_dir, "alice").len();
        let socket = self.daemon.socket.clone();
        for receiver in &mut self.receivers {
            let caught_up = eventually(Duration::from_secs(60), || {
                if !receiver.is_alive() {
                    receiver.start(&socket);
                }
                receiver.ids().len() >= stored
            });
            if !caught_up {
                // Everything the daemon said about this receiver, and who is attached.
                let pid = receiver
                    .pid()
                    .map(|p| format!("(pid {p})"))
                    .unwrap_or_default();
                let log = self.daemon.proc.log();
                let about: Vec<&str> = log.lines().filter(|l| l.contains(&pid)).collect();
                let clients = ctl(&socket, &["clients", "--json"], None);
                panic!(
                    "{} {pid} has {} of {stored} messages (last id {}, alive {}, stopped {});\n\
                     {}\nrcimctl clients: {}\nrcimd about it:\n{}",
                    receiver.name,
                    receiver.ids().len(),
                    receiver.last_id(),
                    receiver.is_alive(),
                    receiver.is_stopped(),
                    support::divergence(receiver, &stored_ids(&data_dir, "alice")),
                    String::from_utf8_lossy(&clients.stdout),
                    about.join("\n")
                );
            }
            receiver.reap();
        }
    }
}

/// A uid of a text message alice stores in `direction` (0 sent, 1 received),
/// chosen by `pick`; `None` when there is none yet.
fn pick_uid(data_dir: &Path, direction: u8, pick: u64) -> Option<String> {
    let uids: Vec<String> = query_db(
        data_dir,
        "alice",
        &format!(
            "SELECT uid FROM messages WHERE direction = {direction} AND uid IS NOT NULL \
             AND object_name = 'RC:TxtMsg' ORDER BY id"
        ),
    )
    .into_iter()
    .map(|row| row[0].clone())
    .collect();
    let index = usize::try_from(pick).ok()? % uids.len().max(1);
    uids.get(index).cloned()
}

fn rounds() -> u32 {
    std::env::var("RCIM_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

#[test]
fn chaos_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let mut rng = Rng::from_env("chaos");
    let rounds = rounds();
    let mut world = World::start();
    for round in 0..rounds {
        world.round(&mut rng);
        if rounds > 20 && round % 20 == 19 {
            eprintln!(
                "chaos: round {}/{rounds}, {:?}, {:?}",
                round + 1,
                world.faults,
                started.elapsed()
            );
        }
    }
    world.settle();
    let data_dir = world.daemon.data_dir.clone();

    // Recall commands are applied, not stored: they are not messages to count.
    let commands = |user: &str| -> HashSet<String> {
        world
            .server
            .block_on(world.server.get().recall_commands(user))
            .expect("recall commands")
            .into_iter()
            .collect()
    };
    let alice_commands = commands("alice");
    // alice's read receipts and read syncs, by uid (they share the inboxes with
    // messages but are never stored as messages). A message alice sent and
    // recalled is an `RC:RcNtf` now, a message still.
    let read_uids: BTreeMap<String, String> = world
        .server
        .block_on(world.server.get().object_names_from("alice"))
        .expect("object names")
        .into_iter()
        .filter(|(_, name)| name == "RC:ReadNtf" || name == "RC:SRSMsg")
        .collect();
    let receipts = read_uids.values().filter(|n| *n == "RC:ReadNtf").count();
    let syncs = read_uids.len() - receipts;

    // Incoming: server inbox = database = every receiver, message by message.
    let inbox_all: Vec<String> = world
        .server
        .block_on(world.server.get().inbox_uids("alice"))
        .expect("inbox")
        .into_iter()
        .map(|(_, uid)| uid)
        .collect();
    let inbox: Vec<String> = inbox_all
        .iter()
        .filter(|uid| !alice_commands.contains(*uid) && !read_uids.contains_key(*uid))
        .cloned()
        .collect();
    let synced: Vec<&String> = inbox_all
        .iter()
        .filter(|uid| read_uids.contains_key(*uid))
        .collect();
    let synced_unique: HashSet<&&String> = synced.iter().collect();
    assert!(
        synced.iter().all(|uid| read_uids[*uid] == "RC:SRSMsg"),
        "a read receipt alice sent is in her own inbox"
    );
    assert_eq!(
        (synced.len(), synced_unique.len()),
        (syncs, syncs),
        "every read sync is in alice's own inbox once"
    );
    assert_eq!(inbox.len(), world.published, "the server's inbox");
    let (stored_uids, integrity) = stored_uids(&data_dir, "alice");
    assert_eq!(integrity, "ok", "PRAGMA integrity_check");
    let lost = inbox.iter().filter(|u| !stored_uids.contains(u)).count();
    let unique: HashSet<&String> = stored_uids.iter().collect();
    let duplicated = stored_uids.len() - unique.len();
    assert_eq!(
        (lost, duplicated),
        (0, 0),
        "lost / duplicated in the database"
    );
    assert_eq!(stored_uids, inbox, "the database holds the inbox, in order");
    let ids = stored_ids(&data_dir, "alice");
    let mut receiver_starts = 0;
    for receiver in &world.receivers {
        assert!(
            receiver.ids() == ids,
            "{}: not every message once, in order, across {} starts: {}",
            receiver.name,
            receiver.starts,
            support::divergence(receiver, &ids)
        );
        receiver_starts += receiver.starts;
    }

    // Outgoing: every saved message on the server exactly once, with its uid.
    let outgoing = stored_outgoing(&data_dir);
    let on_server: Vec<(String, String)> = world
        .server
        .block_on(world.server.get().messages_from("alice"))
        .expect("messages from alice");
    let by_client_id: BTreeMap<&str, &str> = on_server
        .iter()
        .map(|(client, uid)| (client.as_str(), uid.as_str()))
        .collect();
    assert_eq!(
        by_client_id.len(),
        on_server.len(),
        "a client message id accepted twice"
    );
    let messages_on_server = on_server
        .iter()
        .filter(|(_, uid)| !read_uids.contains_key(uid))
        .count();
    assert_eq!(messages_on_server, outgoing.len(), "sent vs saved");
    for (content, client_id, uid) in &outgoing {
        assert_eq!(
            by_client_id.get(client_id.as_str()).copied(),
            Some(uid.as_str()),
            "{content}: the server's uid for {client_id}"
        );
    }
    // rcimctl sends text messages: the content is `{"content": TEXT}`.
    let texts: HashSet<String> = outgoing
        .iter()
        .filter_map(|(content, _, _)| {
            let json: serde_json::Value = serde_json::from_str(content).ok()?;
            json["content"].as_str().map(str::to_owned)
        })
        .collect();
    // A recalled message keeps its row, uid and client id, not its text.
    let recalled_out = outgoing
        .iter()
        .filter(|(content, _, uid)| {
            !content.contains("\"content\"") && world.recall_tried.contains(uid)
        })
        .count();
    let missing = world
        .sends
        .saved
        .iter()
        .filter(|text| !texts.contains(*text))
        .count();
    assert!(
        missing <= recalled_out,
        "{missing} saved texts are gone, only {recalled_out} of alice's messages were recalled"
    );
    let bob_commands = commands("bob");
    let bob: Vec<String> = world
        .server
        .block_on(world.server.get().inbox_uids("bob"))
        .expect("bob's inbox")
        .into_iter()
        .map(|(_, uid)| uid)
        .filter(|uid| !bob_commands.contains(uid))
        .collect();
    let bob_unique: HashSet<&String> = bob.iter().collect();
    assert_eq!(bob.len(), outgoing.len() + receipts, "bob's inbox");
    let bob_receipts = bob
        .iter()
        .filter(|uid| read_uids.get(*uid).is_some_and(|n| n == "RC:ReadNtf"))
        .count();
    assert_eq!(
        (bob_receipts, bob.len() - bob_receipts),
        (receipts, outgoing.len()),
        "bob's inbox: the read receipts, the messages"
    );
    // Reads: none stored as a message, and the unread count is exact (a recalled
    // message keeps its row, sent time and unread flag: recalls change no count).
    assert_eq!(
        count(
            &data_dir,
            "SELECT COUNT(*) FROM messages WHERE object_name IN ('RC:ReadNtf', 'RC:SRSMsg')"
        ),
        0
    );
    let read_time = count(
        &data_dir,
        "SELECT COALESCE(MAX(read_time), 0) FROM read_state",
    );
    let unread_expected = count(
        &data_dir,
        &format!("SELECT COUNT(*) FROM messages WHERE direction = 1 AND sent_time > {read_time}"),
    );
    assert_eq!(
        world.daemon.status()["unread_total"],
        unread_expected,
        "unread after reading up to {read_time}"
    );
    assert_eq!(
        count(&data_dir, "SELECT COUNT(*) FROM messages WHERE unread = 1"),
        unread_expected
    );
    assert_eq!(bob_unique.len(), bob.len(), "bob got a message twice");

    // Recalls: every confirmed one is a notification in alice's database (once
    // the commands are all applied), none nobody asked for is, and no
    // notification keeps original text.
    let notifications = || -> Vec<(String, String)> {
        query_db(
            &data_dir,
            "alice",
            "SELECT uid, content FROM messages WHERE object_name = 'RC:RcNtf'",
        )
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
    };
    let all_applied = eventually(Duration::from_secs(30), || {
        let now: HashSet<String> = notifications().into_iter().map(|(uid, _)| uid).collect();
        world.recalled.iter().all(|uid| now.contains(uid))
    });
    assert!(
        all_applied,
        "a confirmed recall is not applied in alice's database"
    );
    for (uid, content) in notifications() {
        assert!(
            world.recall_tried.contains(&uid),
            "{uid} recalled, never asked"
        );
        assert!(!content.contains("\"content\""), "{uid}: {content}");
    }
    let recalled_rows = notifications().len();

    let f = &world.faults;
    eprintln!(
        "chaos recalls: by the server {} asked, {} done; by rcimctl {} asked, {} done; \
         {recalled_rows} notifications in alice's database, {} commands in her inbox, {} in bob's",
        f.recalls_by_server,
        f.recalls_by_server_done,
        f.recalls_by_ctl,
        f.recalls_by_ctl_done,
        alice_commands.len(),
        bob_commands.len()
    );
    eprintln!(
        "chaos summary: rounds={rounds} faults: daemon_kill9={} server_restart={} blackhole={} \
         upstream_drop={} receiver_kill9={} receiver_stop={} sender_kill9={} | messages in={} \
         out={} (saved by rcimctl: {}, sends tried: {}) | receivers={RECEIVERS} \
         receiver_starts={receiver_starts} | reads tried={} ok={} receipts={receipts} \
         syncs={syncs} unread={unread_expected} | lost=0 duplicated=0 integrity=ok | {:.1}s",
        f.daemon_kill9,
        f.server_restart,
        f.blackhole,
        f.upstream_drop,
        f.receiver_kill9,
        f.receiver_stop,
        f.sender_kill9,
        inbox.len(),
        outgoing.len(),
        world.sends.saved.len(),
        world.sends.tried,
        world.reads.0,
        world.reads.1,
        started.elapsed().as_secs_f64()
    );
}

/// Known daemon bug, found by the chaos run (seeds 1795802705684281744 and
/// 1795804886649011532, 200 rounds): after rcimd restarts, a client that subscribes
/// from a point below the messages already in the database gets no replay until
/// something new is published, and then only the new messages: a gap.
///
/// Why: the hub's `last_message` (daemon/src/hub.rs) starts at 0 in every rcimd
/// process and only moves on `publish`; the session's replay (`Subscribe`,
/// daemon/src/session.rs) asks `replay_step(since)` first, and the hub answers
/// `Live` when `since >= last_message`, so nothing is read from the database. Fix:
/// seed `last_message` from the database (the largest received message id) when
/// the user's store opens, or have the session read `messages_after` until the
/// database has nothing more before it asks the hub (every message is committed
/// before it is published, so that order is safe).
#[test]
fn after_a_restart_a_subscriber_gets_what_the_previous_rcimd_stored() {
    let server = InProcessServer::start();
    let token = server.get().issue_token("alice", "Alice").expect("token");
    let mut daemon = TestDaemon::start(&server.url(), DAEMON_FLAGS);
    connect(&daemon, &token);
    server
        .block_on(
            server
                .get()
                .publish_private_bulk("bob", "alice", 100, "RC:TxtMsg", "m"),
        )
        .expect("publish");
    assert!(eventually(Duration::from_secs(20), || stored_ids(
        &daemon.data_dir,
        "alice"
    )
    .len()
        == 100));
    daemon.proc.kill9();
    daemon.restart(&server.url(), DAEMON_FLAGS);
    connect(&daemon, &token);
    // Nothing new to sync: the daemon's hub has published nothing in this process.
    let mut receiver = Receiver::new("after-restart".into());
    assert!(receiver.start(&daemon.socket), "attach");
    server
        .block_on(
            server
                .get()
                .publish_private_bulk("bob", "alice", 1, "RC:TxtMsg", "m"),
        )
        .expect("publish");
    let stored = {
        assert!(eventually(Duration::from_secs(20), || stored_ids(
            &daemon.data_dir,
            "alice"
        )
        .len()
            == 101));
        stored_ids(&daemon.data_dir, "alice")
    };
    let complete = eventually(Duration::from_secs(10), || receiver.ids().len() >= 101);
    let report = support::divergence(&receiver, &stored);
    receiver.reap();
    assert!(
        complete && receiver.ids() == stored,
        "the replay from 0 after a restart: {report}"
    );
}
