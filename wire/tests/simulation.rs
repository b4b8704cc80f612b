//! Deterministic simulation of many replicating peers in one process.
//!
//! 2 to 8 nodes, each a `Replicator` over a real store (redb in a tempdir),
//! connected by a virtual network with a virtual clock. Node 0 writes:
//! random appends and truncations. The others read: most follow the core
//! live, some fetch random blocks sparsely. While the network is in chaos
//! it delays messages by random amounts (so messages of different
//! connections reorder), silently loses requests and answers (a peer that
//! stalls), and drops, duplicates or reorders messages inside a
//! connection. Inside one connection the protocol runs on an ordered,
//! encrypted stream, where a duplicated, reordered or lost message fails
//! the Noise nonce check, so those faults break the connection, which
//! reconnects later. The replicator has to ride out each fault, never store
//! anything false, and, once the network heals, every live reader must
//! converge to the writer's exact state.
//!
//! Every run is decided by one seed. A failure names it;
//! `SIM_SEED=<seed> cargo test -p hyper-wire --test simulation` replays it,
//! and `SIM_SEEDS=<n>` runs more seeds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use hyper_core::{Core, Durability, Store, StoreOptions};
use hyper_wire::messages::{Body, Message};
use hyper_wire::{Capabilities, Config, Event, PeerId, Replicator};
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

struct Node {
    _dir: tempfile::TempDir,
    core: Core,
    replicator: Replicator<Core>,
    live: bool,
}

/// One connection between two nodes, in one incarnation.
#[derive(Clone, Copy)]
struct Link {
    a: usize,
    b: usize,
    peer_a: PeerId,
    peer_b: PeerId,
    generation: u64,
}

struct Packet {
    link: usize,
    generation: u64,
    /// Duplicated or reordered in its stream: the receiver's Noise layer
    /// rejects it and the connection breaks.
    garbled: bool,
    /// Sender's side: true when node `a` sent it.
    from_a: bool,
    bytes: Vec<u8>,
}

struct Sim {
    rng: StdRng,
    base: Instant,
    now_ms: u64,
    nodes: Vec<Node>,
    /// Per pair of nodes in the topology; `None` while broken.
    links: Vec<(usize, usize, Option<Link>, u64)>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    packets: BTreeMap<usize, Packet>,
    next_packet: usize,
    next_generation: u64,
    chaos: bool,
    reconnect_at: BTreeMap<usize, u64>,
    /// Per link and direction (true: from `a`), the latest delivery time
    /// queued: a stream delivers in order.
    last_delivery: BTreeMap<(usize, bool), u64>,
}

const STORE: StoreOptions = StoreOptions {
    durability: Durability::Eventual,
    cache_bytes: StoreOptions::DEFAULT_CACHE_BYTES,
};

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = rng.random_range(2..=8usize);
        let config = Config {
            max_inflight: rng.random_range(1..=16),
            max_batch: rng.random_range(1..=64),
            ..Config::default()
        };
        let base = Instant::now();
        let writer_dir = tempfile::tempdir().expect("tempdir");
        let writer_store = Store::open_with(writer_dir.path(), STORE).expect("store");
        let core = writer_store.create_core().expect("core");
        let key = core.key();
        let mut nodes = vec![Node {
            _dir: writer_dir,
            core,
            replicator: Replicator::new(config.clone()),
            live: false,
        }];
        for i in 1..n {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = Store::open_with(dir.path(), STORE).expect("store");
            let core = store.replica(&key).expect("replica");
            nodes.push(Node {
                _dir: dir,
                core,
                replicator: Replicator::new(config.clone()),
                // Node 1 always follows live, so there is a reader; others
                // may be sparse readers.
                live: i == 1 || rng.random_bool(0.7),
            });
        }
        // A random connected topology: a random tree whose inner nodes are
        // the writer or live readers (a sparse reader does not relay what it
        // never fetched), plus extra edges anywhere.
        let mut links = Vec::new();
        for i in 1..n {
            let relays: Vec<usize> = (0..i).filter(|&j| j == 0 || nodes[j].live).collect();
            let parent = relays[rng.random_range(0..relays.len())];
            links.push((parent, i, None, 0));
        }
        for _ in 0..rng.random_range(0..n) {
            let a = rng.random_range(0..n);
            let b = rng.random_range(0..n);
            if a != b
                && !links
                    .iter()
                    .any(|l| (l.0, l.1) == (a, b) || (l.0, l.1) == (b, a))
            {
                links.push((a, b, None, 0));
            }
        }
        let mut sim = Sim {
            rng,
            base,
            now_ms: 0,
            nodes,
            links,
            queue: BinaryHeap::new(),
            packets: BTreeMap::new(),
            next_packet: 0,
            next_generation: 0,
            chaos: true,
            reconnect_at: BTreeMap::new(),
            last_delivery: BTreeMap::new(),
        };
        let now = sim.now();
        for node in &mut sim.nodes {
            let core = node.core.clone();
            node.replicator.add_core(now, core);
        }
        for i in 1..n {
            let node = &mut sim.nodes[i];
            if node.live {
                node.replicator.download(now, key, 0, None, true);
            }
        }
        for l in 0..sim.links.len() {
            sim.connect(l);
        }
        sim
    }

    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.now_ms)
    }

    fn connect(&mut self, l: usize) {
        let now = self.now();
        let mut hash = [0u8; 32];
        self.rng.fill(&mut hash);
        let (a, b, ..) = self.links[l];
        let peer_a = self.nodes[a]
            .replicator
            .connect(now, Capabilities::new(hash, true));
        let peer_b = self.nodes[b]
            .replicator
            .connect(now, Capabilities::new(hash, false));
        self.next_generation += 1;
        self.links[l].2 = Some(Link {
            a,
            b,
            peer_a,
            peer_b,
            generation: self.next_generation,
        });
        self.links[l].3 = self.next_generation;
    }

    fn break_link(&mut self, l: usize) {
        let now = self.now();
        if let Some(link) = self.links[l].2.take() {
            self.nodes[link.a].replicator.disconnect(now, link.peer_a);
            self.nodes[link.b].replicator.disconnect(now, link.peer_b);
            let delay = self.rng.random_range(10..2000);
            self.reconnect_at.insert(l, self.now_ms + delay);
        }
    }

    fn link_of(&self, node: usize, peer: PeerId) -> Option<usize> {
        self.links.iter().position(|(_, _, link, _)| {
            link.is_some_and(|k| {
                (k.a == node && k.peer_a == peer) || (k.b == node && k.peer_b == peer)
            })
        })
    }

    /// Runs node `i`'s outputs: events (stores applied at once) and
    /// transmits (into the network).
    fn pump(&mut self, i: usize) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.nodes[i].replicator.poll_event() {
                progressed = true;
                let now = self.now();
                match event {
                    Event::Store { batch, proofs, .. } => {
                        let result = self.nodes[i].core.apply(&proofs);
                        self.nodes[i].replicator.stored(now, batch, result);
                    }
                    Event::PeerError { peer, .. } => {
                        if let Some(l) = self.link_of(i, peer) {
                            self.break_link(l);
                        }
                    }
                    _ => {}
                }
            }
            while let Some((peer, message)) = self.nodes[i].replicator.poll_transmit() {
                progressed = true;
                if let Some(l) = self.link_of(i, peer) {
                    self.send(l, i, &message);
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn send(&mut self, l: usize, from: usize, message: &Message) {
        let Some(link) = self.links[l].2 else {
            return;
        };
        let bytes = message.encode_to_vec();
        let mut garbled = false;
        if self.chaos {
            if self.rng.random_bool(0.01) {
                let loss_tolerated = matches!(
                    message.body,
                    Some(Body::Request(_) | Body::Data(_) | Body::NoData(_))
                );
                if loss_tolerated && self.rng.random_bool(0.5) {
                    return; // never answered: a stalled peer
                }
                self.break_link(l);
                return;
            }
            garbled = self.rng.random_bool(0.005);
        }
        let from_a = from == link.a;
        let delay = if self.chaos {
            self.rng.random_range(1..80)
        } else {
            5
        };
        let last = self.last_delivery.entry((l, from_a)).or_insert(0);
        let at = (self.now_ms + delay).max(*last);
        *last = at;
        let id = self.next_packet;
        self.next_packet += 1;
        self.packets.insert(
            id,
            Packet {
                link: l,
                generation: link.generation,
                garbled,
                from_a,
                bytes,
            },
        );
        self.queue.push(Reverse((at, id as u64, id)));
    }

    fn deliver(&mut self, id: usize) {
        let Some(packet) = self.packets.remove(&id) else {
            return;
        };
        let Some(link) = self.links[packet.link].2 else {
            return;
        };
        if link.generation != packet.generation {
            return;
        }
        if packet.garbled {
            self.break_link(packet.link);
            return;
        }
        let (to, peer) = if packet.from_a {
            (link.b, link.peer_b)
        } else {
            (link.a, link.peer_a)
        };
        let message = Message::decode(packet.bytes.as_slice()).expect("we encoded it");
        let now = self.now();
        self.nodes[to].replicator.handle_message(now, peer, message);
        self.pump(to);
    }

    fn writer_acts(&mut self) {
        let core = self.nodes[0].core.clone();
        let length = core.signed_state().expect("state").length;
        if length > 4 && self.rng.random_bool(0.08) {
            let to = self.rng.random_range(length / 2..length);
            core.truncate(to).expect("truncate");
        } else {
            let n = self.rng.random_range(1..20);
            let tag: u64 = self.rng.random();
            let blocks: Vec<Vec<u8>> = (0..n)
                .map(|i| format!("{tag:x}-{i}-{}", "x".repeat(i % 7)).into_bytes())
                .collect();
            core.append_batch(&blocks).expect("append");
        }
        let now = self.now();
        let key = core.key();
        self.nodes[0].replicator.local_changed(now, key);
        self.pump(0);
    }

    fn sparse_reads(&mut self) {
        let length = self.nodes[0].core.signed_state().expect("state").length;
        if length == 0 {
            return;
        }
        let now = self.now();
        for i in 1..self.nodes.len() {
            if !self.nodes[i].live && self.rng.random_bool(0.3) {
                let index = self.rng.random_range(0..length);
                let key = self.nodes[i].core.key();
                self.nodes[i]
                    .replicator
                    .get(now, key, index, Duration::from_secs(5));
                self.pump(i);
            }
        }
    }

    /// Advances the clock to the next packet, timeout or reconnect and runs
    /// it. Returns false when nothing is left to do.
    fn step(&mut self) -> bool {
        let next_packet = self.queue.peek().map(|Reverse((t, _, _))| *t);
        let next_reconnect = self.reconnect_at.values().min().copied();
        let next_timeout = self
            .nodes
            .iter()
            .filter_map(|n| n.replicator.poll_timeout())
            .min()
            .map(|t| t.duration_since(self.base).as_millis() as u64);
        let Some(t) = [next_packet, next_reconnect, next_timeout]
            .into_iter()
            .flatten()
            .min()
        else {
            return false;
        };
        self.now_ms = self.now_ms.max(t);
        if next_packet == Some(t) {
            if let Some(Reverse((_, _, id))) = self.queue.pop() {
                self.deliver(id);
            }
        } else if next_reconnect == Some(t) {
            let due: Vec<usize> = self
                .reconnect_at
                .iter()
                .filter(|(_, at)| **at <= t)
                .map(|(l, _)| *l)
                .collect();
            for l in due {
                self.reconnect_at.remove(&l);
                self.connect(l);
                let (a, b, ..) = self.links[l];
                self.pump(a);
                self.pump(b);
            }
        } else {
            let now = self.now();
            for i in 0..self.nodes.len() {
                if self.nodes[i]
                    .replicator
                    .poll_timeout()
                    .is_some_and(|d| d <= now)
                {
                    self.nodes[i].replicator.handle_timeout(now);
                    self.pump(i);
                }
            }
        }
        true
    }

    fn check_valid(&self) {
        // Whatever a reader stored verifies and, when on the writer's fork
        // and length, equals the writer's block.
        let writer = &self.nodes[0].core;
        let ws = writer.signed_state().expect("writer state");
        for node in &self.nodes[1..] {
            let rs = node.core.signed_state().expect("reader state");
            let info = node.core.info().expect("reader info");
            for i in 0..rs.length {
                if node.core.has(i).expect("has") {
                    let block = node.core.get(i).expect("stored blocks verify");
                    if rs.fork == ws.fork && i < ws.length {
                        assert_eq!(block, writer.get(i).expect("writer"), "block {i}");
                    }
                }
            }
            assert!(info.blocks_stored <= rs.length);
        }
    }
}

fn run(seed: u64) {
    let mut sim = Sim::new(seed);
    let chaos_steps = sim.rng.random_range(200..1500);
    for step in 0..chaos_steps {
        if step % 10 == 0 {
            sim.writer_acts();
        }
        if step % 15 == 0 {
            sim.sparse_reads();
        }
        if !sim.step() {
            sim.now_ms += 10;
        }
    }
    sim.check_valid();
    // Heal: no more faults, every link up, run until quiet.
    sim.chaos = false;
    sim.reconnect_at.clear();
    for l in 0..sim.links.len() {
        if sim.links[l].2.is_none() {
            sim.connect(l);
            let (a, b, ..) = sim.links[l];
            sim.pump(a);
            sim.pump(b);
        }
    }
    let deadline = sim.now_ms + 600_000;
    while sim.now_ms < deadline && sim.step() {
        if sim.live_converged() {
            break;
        }
    }
    let ws = sim.nodes[0].core.signed_state().expect("writer state");
    for (i, node) in sim.nodes.iter().enumerate().skip(1) {
        if !node.live {
            continue;
        }
        let rs = node.core.signed_state().expect("reader state");
        assert_eq!(
            (rs.fork, rs.length),
            (ws.fork, ws.length),
            "reader {i} did not converge"
        );
        if !node.core.has_range(0..ws.length).expect("has_range") {
            let missing = node.core.next_missing(0..ws.length).expect("next_missing");
            eprintln!(
                "writer fork {} length {}; links {:?}",
                ws.fork,
                ws.length,
                sim.links
                    .iter()
                    .map(|l| (l.0, l.1, l.2.is_some()))
                    .collect::<Vec<_>>()
            );
            for (j, n) in sim.nodes.iter().enumerate() {
                let st = n.core.signed_state().expect("state");
                let inf = n.core.info().expect("info");
                eprintln!(
                    "node {j} live {} fork {} length {} stored {} has missing {:?}: {:?}",
                    n.live,
                    st.fork,
                    st.length,
                    inf.blocks_stored,
                    missing,
                    missing.map(|m| n.core.has(m))
                );
                eprintln!("{}", n.replicator.describe(&n.core.key()));
            }
            panic!("reader {i} lacks blocks");
        }
    }
    sim.check_valid();
}

impl Sim {
    fn live_converged(&self) -> bool {
        let ws = self.nodes[0].core.signed_state().expect("writer state");
        self.nodes.iter().skip(1).filter(|n| n.live).all(|n| {
            let rs = n.core.signed_state().expect("state");
            (rs.fork, rs.length) == (ws.fork, ws.length)
                && n.core.has_range(0..ws.length).expect("has_range")
        })
    }
}

#[test]
fn peers_converge_after_chaos() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("SIM_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(24);
            (0..n).collect()
        }
    };
    for seed in seeds {
        let result = std::panic::catch_unwind(|| run(seed));
        if let Err(panic) = result {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "simulation failed with seed {seed}: {text}\n\
                 replay: SIM_SEED={seed} cargo test -p hyper-wire --test simulation"
            );
        }
    }
}
