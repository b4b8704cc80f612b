//! The replicator's timers with many cores on one connection: every get
//! fails at its own deadline (not before, not later), every core's
//! requests to a peer that answers none are cancelled at the stall
//! timeout, and every core asks again once the backoff ends. Two
//! replicators over real stores, messages passed in process, a virtual
//! clock.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use hyper_core::{Core, Store};
use hyper_wire::messages::{Body, Message};
use hyper_wire::{Capabilities, Config, Error, Event, Handle, PeerId, Replicator};

mod common;

const CORES: usize = 200;
const GET_TIMEOUT: Duration = Duration::from_secs(1);

/// A reader of `CORES` cores connected to a seeder of them that answers
/// no request (its `Data` and `NoData` never arrive).
struct Pair {
    _dirs: [tempfile::TempDir; 2],
    reader: Replicator<Core>,
    seeder: Replicator<Core>,
    /// The reader's id of the seeder, and the seeder's of the reader.
    at_reader: PeerId,
    at_seeder: PeerId,
    replicas: Vec<Core>,
    config: Config,
}

impl Pair {
    fn new(now: Instant) -> Pair {
        let (seeder_dir, seeder_store) = common::eventual_store();
        let (reader_dir, reader_store) = common::eventual_store();
        let config = Config::default();
        let mut seeder = Replicator::new(config.clone());
        let mut reader = Replicator::new(config.clone());
        let replicas = (0..CORES)
            .map(|i| {
                let core = seeder_store.create_core().expect("core");
                core.append_batch(&[format!("core {i}").into_bytes()])
                    .expect("append");
                seeder.add_core(now, core.clone());
                let replica = replica(&reader_store, &core);
                reader.add_core(now, replica.clone());
                replica
            })
            .collect();
        let caps = [7u8; 32];
        let at_reader = reader.connect(now, Capabilities::new(caps, true));
        let at_seeder = seeder.connect(now, Capabilities::new(caps, false));
        Pair {
            _dirs: [seeder_dir, reader_dir],
            reader,
            seeder,
            at_reader,
            at_seeder,
            replicas,
            config,
        }
    }

    /// Delivers messages both ways until none move; returns what the
    /// reader sent.
    fn pump(&mut self, now: Instant) -> Vec<Message> {
        let mut sent = Vec::new();
        loop {
            let mut moved = false;
            while let Some((_, m)) = self.reader.poll_transmit() {
                moved = true;
                sent.push(m.clone());
                self.seeder.handle_message(now, self.at_seeder, m);
            }
            while let Some((_, m)) = self.seeder.poll_transmit() {
                moved = true;
                if !matches!(m.body, Some(Body::Data(_) | Body::NoData(_))) {
                    self.reader.handle_message(now, self.at_reader, m);
                }
            }
            if !moved {
                return sent;
            }
        }
    }
}

fn replica(store: &Store, core: &Core) -> Core {
    store.replica(&core.key()).expect("replica")
}

/// The distinct channels that messages of the kind `is` went out on.
fn channels(sent: &[Message], is: fn(&Body) -> bool) -> BTreeSet<u32> {
    sent.iter()
        .filter(|m| m.body.as_ref().is_some_and(is))
        .map(|m| m.channel)
        .collect()
}

#[test]
fn every_core_of_many_times_out_on_time() {
    let base = Instant::now();
    let mut pair = Pair::new(base);
    let mut sent = pair.pump(base);
    // One get per core, their deadlines 1 ms apart.
    let mut deadlines: HashMap<Handle, Instant> = HashMap::new();
    for (i, core) in pair.replicas.iter().enumerate() {
        let timeout = GET_TIMEOUT + Duration::from_millis(i as u64);
        let handle = pair.reader.get(base, core.key(), 0, timeout);
        deadlines.insert(handle, base + timeout);
    }
    sent.extend(pair.pump(base));
    let upgrades = channels(&sent, |b| matches!(b, Body::Request(_)));
    assert_eq!(upgrades.len(), CORES, "each core asked for its upgrade");
    while pair.reader.poll_event().is_some() {}

    // Stepping from timeout to timeout, every get fails at its deadline.
    let stall = base + pair.config.stall_timeout;
    let mut failed = 0;
    while let Some(at) = pair.reader.poll_timeout().filter(|&at| at < stall) {
        pair.reader.handle_timeout(at);
        while let Some(event) = pair.reader.poll_event() {
            let Event::Failed { handle, error, .. } = event else {
                continue;
            };
            assert!(matches!(error, Error::Timeout), "{error:?}");
            assert_eq!(deadlines.get(&handle), Some(&at), "failed at its deadline");
            failed += 1;
        }
        pair.pump(at);
    }
    assert_eq!(failed, CORES, "every get failed");

    // Just before the stall timeout, nothing is cancelled; at it, the
    // request of every core is.
    assert_eq!(pair.reader.poll_timeout(), Some(stall));
    pair.reader.handle_timeout(stall - Duration::from_millis(1));
    let sent = pair.pump(stall - Duration::from_millis(1));
    assert!(channels(&sent, |b| matches!(b, Body::Cancel(_))).is_empty());
    pair.reader.handle_timeout(stall);
    let sent = pair.pump(stall);
    let cancelled = channels(&sent, |b| matches!(b, Body::Cancel(_)));
    assert_eq!(cancelled, upgrades, "every core's request was cancelled");

    // Once the backoff ends, every core asks again.
    let backoff = stall + pair.config.stall_backoff;
    assert_eq!(pair.reader.poll_timeout(), Some(backoff));
    pair.reader.handle_timeout(backoff);
    let sent = pair.pump(backoff);
    let again = channels(&sent, |b| matches!(b, Body::Request(_)));
    assert_eq!(again, upgrades, "every core asked again after the backoff");
}
