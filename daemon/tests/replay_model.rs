//! The daemon's persistent queues against simple in-memory models, with random
//! restarts (as TDLib tests its persistent queue), and the reconnect schedule
//! against its bounds.
//!
//! The store is driven through its public query functions on a real SQLite file
//! opened with [`StoreOpener`]; a "crash" drops every handle and opens the file
//! again. Incoming entries arrive as the network delivers them after drops and
//! restarts: in random batches, duplicated, out of order, and re-delivered after
//! they were committed (a kill between the commit and the ack). They are applied by
//! the link's rule (strictly in sequence after the committed cursor; anything at or
//! below it is a re-delivery), and a subscriber pages through the stored messages
//! with `messages_after` from the last id it saw, across the restarts. Outgoing
//! messages go through the outbox with duplicated and late PubAcks.
//!
//! Checked after every step: the cursor never goes back, the stored messages are
//! exactly the inbox prefix up to the cursor (nothing lost, nothing twice, in
//! order), the outbox is exactly the model's, and the subscriber saw every stored
//! message once, in order.

use proptest::prelude::*;
use rcim_proto::message::{ConversationKey, Message, WireMessage};
use rcim_proto::upstream::InboxEntry;
use rcimd::link::backoff::{JITTER, backoff, jittered, random_unit};
use rcimd::store::{Outgoing, StoreError, StoreHandle, StoreOpener};
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

/// Inbox entries the server holds for the user.
const INBOX: u64 = 60;

fn entry(seq: u64) -> InboxEntry {
    InboxEntry {
        seq,
        message: WireMessage {
            uid: format!("uid-{seq:04}"),
            conversation: ConversationKey::private(format!("sender{}", seq % 3)),
            sender: format!("sender{}", seq % 3),
            object_name: "RC:TxtMsg".into(),
            content: format!("{{\"content\":\"{seq}\"}}"),
            sent_time_ms: 1_700_000_000_000 + seq as i64,
        },
    }
}

/// One step of a run.
#[derive(Clone, Debug)]
enum Step {
    /// The network delivers these inbox entries (any order, repeats allowed).
    Deliver(Vec<u64>),
    /// Already committed entries arrive again (the ack was lost).
    Redeliver(Vec<u64>),
    /// The daemon dies and starts again.
    Restart,
    /// The subscriber reads up to this many messages after its last id.
    Read(u32),
    /// An app sends a message.
    Send,
    /// The server acknowledges the outbox entry at this index (modulo its length),
    /// possibly for the second time.
    Ack(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => proptest::collection::vec(1..=INBOX, 1..12).prop_map(Step::Deliver),
        2 => proptest::collection::vec(1..=INBOX, 1..6).prop_map(Step::Redeliver),
        2 => Just(Step::Restart),
        3 => (1u32..25).prop_map(Step::Read),
        2 => Just(Step::Send),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(i, twice)| Step::Ack(i, twice)),
    ]
}

/// What the store must hold.
#[derive(Default, Debug)]
struct Model {
    /// The committed inbox cursor: entries 1..=cursor are stored.
    cursor: u64,
    /// Outgoing messages still in the outbox (local ids, oldest first).
    outbox: Vec<i64>,
    /// Outgoing messages the server acknowledged.
    sent: BTreeSet<i64>,
    /// The subscriber's last seen local id and everything it saw.
    last_seen: i64,
    seen: Vec<String>,
    sends: u32,
}

struct Harness {
    runtime: tokio::runtime::Runtime,
    opener: StoreOpener,
    store: Option<StoreHandle>,
    _dir: tempfile::TempDir,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let opener = StoreOpener::new(dir.path());
        let mut harness = Self {
            runtime,
            opener,
            store: None,
            _dir: dir,
        };
        harness.open();
        harness
    }

    fn open(&mut self) {
        let store = self
            .runtime
            .block_on(self.opener.open("alice"))
            .expect("open");
        self.store = Some(store);
    }

    /// Runs one store call to the end.
    fn call<'a, T, Fut>(&'a self, f: impl FnOnce(&'a StoreHandle) -> Fut) -> T
    where
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let store = self.store.as_ref().expect("open");
        self.runtime.block_on(f(store)).expect("query")
    }

    /// Applies delivered entries by the link's rule: in sequence after the committed
    /// cursor, skipping what is at or below it; entries after a gap wait (here: are
    /// dropped, and the "server" delivers them again later).
    fn apply(&self, seqs: &[u64]) -> Vec<Message> {
        let cursor = self.call(|s| s.sync_cursor());
        let wanted: BTreeSet<u64> = seqs.iter().copied().filter(|&s| s > cursor).collect();
        let mut batch = Vec::new();
        let mut next = cursor + 1;
        while wanted.contains(&next) {
            batch.push(entry(next));
            next += 1;
        }
        if batch.is_empty() {
            return Vec::new();
        }
        self.call(|s| s.insert_incoming(batch, 0))
    }
}

fn check(h: &Harness, model: &Model) -> Result<(), TestCaseError> {
    let cursor = h.call(|s| s.sync_cursor());
    prop_assert_eq!(cursor, model.cursor, "cursor");
    let stored: Vec<String> = h
        .call(|s| s.messages_after(0, 10_000))
        .into_iter()
        .filter_map(|m| m.uid)
        .collect();
    let expected: Vec<String> = (1..=model.cursor).map(|s| entry(s).message.uid).collect();
    prop_assert_eq!(
        &stored,
        &expected,
        "stored = the inbox prefix, once each, in order"
    );
    let queued: Vec<i64> = h.call(|s| s.outbox()).into_iter().map(|m| m.id).collect();
    prop_assert_eq!(&queued, &model.outbox, "outbox");
    prop_assert!(
        model.seen.len() <= stored.len() && stored[..model.seen.len()] == model.seen[..],
        "the subscriber saw a prefix of the stored messages: {:?}",
        model.seen
    );
    Ok(())
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut h = Harness::new();
    let mut model = Model::default();
    for step in steps {
        let before = h.call(|s| s.sync_cursor());
        match step {
            Step::Deliver(seqs) => {
                let new = h.apply(&seqs);
                model.cursor += new.len() as u64;
            }
            Step::Redeliver(seqs) => {
                // Straight into the store, as a batch committed before a crash would
                // be handed over again: nothing may change.
                let old: Vec<InboxEntry> = seqs
                    .into_iter()
                    .filter(|&s| s <= model.cursor)
                    .map(entry)
                    .collect();
                let new = h.call(|s| s.insert_incoming(old, 0));
                prop_assert!(
                    new.is_empty(),
                    "a re-delivery stored {} messages again",
                    new.len()
                );
            }
            Step::Restart => {
                h.store = None;
                h.open();
            }
            Step::Read(limit) => {
                let after = model.last_seen;
                let page = h.call(|s| s.messages_after(after, limit));
                prop_assert!(page.len() <= limit as usize);
                for m in page {
                    prop_assert!(m.id > model.last_seen, "ids only grow");
                    model.last_seen = m.id;
                    model.seen.push(m.uid.unwrap_or_default());
                }
            }
            Step::Send => {
                model.sends += 1;
                let outgoing = Outgoing {
                    sender: "alice".into(),
                    conversation: ConversationKey::private("bob"),
                    object_name: "RC:TxtMsg".into(),
                    content: format!("out {}", model.sends),
                    client_msg_id: format!("cmid-{}", model.sends),
                };
                let saved = h.call(|s| s.save_outgoing(outgoing, 0));
                model.outbox.push(saved.id);
            }
            Step::Ack(index, twice) => {
                let all: Vec<i64> = model.outbox.iter().chain(&model.sent).copied().collect();
                if !all.is_empty() {
                    let id = all[index % all.len()];
                    for _ in 0..(1 + usize::from(twice)) {
                        let uid = format!("server-{id}");
                        let stored = h.call(|s| s.mark_sent(id, uid, 1));
                        prop_assert!(stored.is_some());
                    }
                    model.outbox.retain(|&o| o != id);
                    model.sent.insert(id);
                }
            }
        }
        let after = h.call(|s| s.sync_cursor());
        prop_assert!(
            after >= before,
            "the cursor went back from {} to {}",
            before,
            after
        );
        check(&h, &model)?;
    }
    // In the end the server delivers everything and the subscriber catches up:
    // nothing was lost on the way.
    let all: Vec<u64> = (1..=INBOX).collect();
    model.cursor += h.apply(&all).len() as u64;
    loop {
        let after = model.last_seen;
        let page = h.call(|s| s.messages_after(after, 7));
        if page.is_empty() {
            break;
        }
        for m in page {
            model.last_seen = m.id;
            model.seen.push(m.uid.unwrap_or_default());
        }
    }
    prop_assert_eq!(model.cursor, INBOX);
    check(&h, &model)?;
    let everything: Vec<String> = (1..=INBOX).map(|s| entry(s).message.uid).collect();
    prop_assert_eq!(
        &model.seen,
        &everything,
        "the subscriber saw every message once"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_store_against_its_model_with_restarts(steps in proptest::collection::vec(step(), 1..40)) {
        run(steps)?;
    }

    #[test]
    fn the_backoff_schedule_stays_within_rc_bounds(retry in any::<u32>()) {
        let wait = backoff(retry);
        prop_assert!(wait >= Duration::from_millis(50) && wait <= Duration::from_secs(64));
        prop_assert!(backoff(retry.saturating_add(1)) >= wait, "never shorter than the last");
        if retry >= 10 {
            prop_assert_eq!(wait, Duration::from_secs(64), "every 64 s for ever");
        }
    }

    #[test]
    fn jitter_stays_within_twenty_percent(
        retry in 1u32..20,
        unit in prop_oneof![any::<f64>(), 0.0f64..1.0],
    ) {
        let base = backoff(retry);
        let wait = jittered(base, unit);
        let low = base.mul_f64(1.0 - JITTER);
        let high = base.mul_f64(1.0 + JITTER);
        prop_assert!(wait >= low && wait <= high, "{:?} from {:?} with {}", wait, base, unit);
    }
}

#[test]
fn random_units_are_in_range() {
    for _ in 0..10_000 {
        let unit = random_unit();
        assert!((0.0..1.0).contains(&unit), "{unit}");
    }
}
