//! The replicator spreads requests over the peers that have the blocks, and
//! moves them off a peer that stalls. Three replicators over real stores,
//! messages passed in order through in-process queues, a virtual clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hyper_core::{Core, Store};
use hyper_wire::messages::{Body, Message};
use hyper_wire::{Capabilities, Config, Event, PeerId, Replicator};

const BLOCKS: u64 = 2000;

struct Node {
    _dir: tempfile::TempDir,
    core: Core,
    replicator: Replicator<Core>,
}

/// A connection: each side's peer id, and messages in flight each way.
struct Link {
    a: usize,
    b: usize,
    peer_a: PeerId,
    peer_b: PeerId,
    to_a: VecDeque<Message>,
    to_b: VecDeque<Message>,
    /// Messages from `b` to `a` vanish (a peer that stopped answering).
    b_silent: bool,
}

struct Net {
    nodes: Vec<Node>,
    links: Vec<Link>,
    base: Instant,
    now: Duration,
    /// Block requests each node received.
    requests_served: Vec<u64>,
}

mod common;

fn node(core: impl FnOnce(&Store) -> Core) -> Node {
    let (dir, store) = common::eventual_store();
    let core = core(&store);
    Node {
        _dir: dir,
        core,
        replicator: Replicator::new(Config {
            max_inflight: 16,
            ..Config::default()
        }),
    }
}

impl Net {
    fn now(&self) -> Instant {
        self.base + self.now
    }

    fn connect(&mut self, a: usize, b: usize) {
        let now = self.now();
        let caps = [a as u8 + 1; 32];
        let peer_a = self.nodes[a]
            .replicator
            .connect(now, Capabilities::new(caps, true));
        let peer_b = self.nodes[b]
            .replicator
            .connect(now, Capabilities::new(caps, false));
        self.links.push(Link {
            a,
            b,
            peer_a,
            peer_b,
            to_a: VecDeque::new(),
            to_b: VecDeque::new(),
            b_silent: false,
        });
    }

    /// Moves every node's output into the links, stores what is to be
    /// stored, delivers every message; until nothing moves.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.nodes.len() {
                let now = self.now();
                while let Some(event) = self.nodes[i].replicator.poll_event() {
                    moved = true;
                    if let Event::Store { batch, proofs, .. } = event {
                        let result = self.nodes[i].core.apply(&proofs);
                        self.nodes[i].replicator.stored(now, batch, result);
                    }
                }
                while let Some((peer, m)) = self.nodes[i].replicator.poll_transmit() {
                    moved = true;
                    for link in &mut self.links {
                        if link.a == i && link.peer_a == peer {
                            link.to_b.push_back(m.clone());
                        } else if link.b == i && link.peer_b == peer && !link.b_silent {
                            link.to_a.push_back(m.clone());
                        }
                    }
                }
            }
            for l in 0..self.links.len() {
                let now = self.now();
                while let Some(m) = self.links[l].to_b.pop_front() {
                    moved = true;
                    let (b, peer) = (self.links[l].b, self.links[l].peer_b);
                    if matches!(m.body, Some(Body::Request(_))) {
                        self.requests_served[b] += 1;
                    }
                    self.nodes[b].replicator.handle_message(now, peer, m);
                }
                while let Some(m) = self.links[l].to_a.pop_front() {
                    moved = true;
                    let (a, peer) = (self.links[l].a, self.links[l].peer_a);
                    if matches!(m.body, Some(Body::Request(_))) {
                        self.requests_served[a] += 1;
                    }
                    self.nodes[a].replicator.handle_message(now, peer, m);
                }
            }
            if !moved {
                return;
            }
        }
    }
}

/// A writer, a second full copy of its core, and an empty reader that
/// connects to both (the reader is node 2, the first two serve it).
fn setup() -> Net {
    let writer = node(|s| {
        let core = s.create_core().expect("core");
        let blocks: Vec<Vec<u8>> = (0..BLOCKS)
            .map(|i| format!("block {i}").into_bytes())
            .collect();
        core.append_batch(&blocks).expect("append");
        core
    });
    let key = writer.core.key();
    let copy = node(|s| s.replica(&key).expect("replica"));
    let reader = node(|s| s.replica(&key).expect("replica"));
    let mut net = Net {
        nodes: vec![writer, copy, reader],
        links: Vec::new(),
        base: Instant::now(),
        now: Duration::ZERO,
        requests_served: vec![0; 3],
    };
    let now = net.now();
    for n in &mut net.nodes {
        let core = n.core.clone();
        n.replicator.add_core(now, core);
    }
    // Node 1 copies everything from the writer first.
    net.connect(0, 1);
    net.nodes[1].replicator.download(now, key, 0, None, false);
    net.run();
    assert!(net.nodes[1].core.has_range(0..BLOCKS).expect("has_range"));
    net.requests_served = vec![0; 3];
    net
}

#[test]
fn requests_spread_over_the_peers_that_have_the_blocks() {
    let mut net = setup();
    net.connect(0, 2);
    net.connect(1, 2);
    let key = net.nodes[2].core.key();
    let now = net.now();
    net.nodes[2].replicator.download(now, key, 0, None, false);
    net.run();
    assert!(net.nodes[2].core.has_range(0..BLOCKS).expect("has_range"));
    let (w, c) = (net.requests_served[0], net.requests_served[1]);
    assert!(w + c >= BLOCKS, "every block asked for once: {w} + {c}");
    assert!(
        w > BLOCKS / 4 && c > BLOCKS / 4,
        "both peers served: {w} and {c}"
    );
}

#[test]
fn a_stalled_peer_loses_its_requests_to_the_others() {
    let mut net = setup();
    net.connect(0, 2);
    net.connect(2, 1);
    let key = net.nodes[2].core.key();
    let now = net.now();
    // The copy pairs, then goes silent (answers nothing more).
    net.run();
    let link = net.links.len() - 1;
    net.links[link].b_silent = true;
    net.nodes[2].replicator.download(now, key, 0, None, false);
    net.run();
    assert!(!net.nodes[2].core.has_range(0..BLOCKS).expect("has_range"));
    // Time passes: the reader times the copy out and asks the writer.
    let deadline = net.nodes[2]
        .replicator
        .poll_timeout()
        .expect("a stall timer");
    net.now = deadline.duration_since(net.base);
    let now = net.now();
    net.nodes[2].replicator.handle_timeout(now);
    net.run();
    assert!(net.nodes[2].core.has_range(0..BLOCKS).expect("has_range"));
    assert!(net.requests_served[1] > 0, "the copy had been asked too");
}
