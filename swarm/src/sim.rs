//! A deterministic network of DHT [`Node`]s in one process, for tests and
//! benchmarks: a virtual clock, seeded per-packet latency and loss, nodes
//! that go offline, and nodes behind a simulated NAT that drops what they
//! did not ask for. The same seed replays the same run.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::node::{Config, Event, Node, QueryId, Reachability};
use crate::query::{QueryKind, QueryOutcome};

/// Settings of a simulated network.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Replays the run.
    pub seed: u64,
    /// One-way latency is uniform in this range.
    pub latency: (Duration, Duration),
    /// Fraction of datagrams lost.
    pub loss: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            latency: (Duration::from_millis(5), Duration::from_millis(60)),
            loss: 0.0,
        }
    }
}

/// A hostile node's behaviour: given the time, the sender and a datagram
/// that reached it, the datagrams it sends (destination, bytes), with any
/// source it likes (forged sources are the first element's `from`).
pub type Hostile = Box<dyn FnMut(Instant, SocketAddr, &[u8]) -> Vec<Forged>>;

/// A datagram a hostile node sends: from (forged or its own), to, bytes.
pub type Forged = (SocketAddr, SocketAddr, Vec<u8>);

struct Datagram {
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

/// The simulated network.
pub struct Sim {
    config: SimConfig,
    rng: u64,
    start: Instant,
    now: Instant,
    seq: u64,
    nodes: BTreeMap<SocketAddr, Node>,
    in_flight: BinaryHeap<Reverse<(Instant, u64)>>,
    datagrams: HashMap<u64, Datagram>,
    timers: BinaryHeap<Reverse<(Instant, SocketAddr)>>,
    offline: HashSet<SocketAddr>,
    natted: HashMap<SocketAddr, HashSet<SocketAddr>>,
    events: HashMap<SocketAddr, Vec<Event>>,
    /// Datagrams sent to addresses with no node, by address.
    unrouted: HashMap<SocketAddr, u64>,
    /// Bytes sent to addresses with no node, by address.
    unrouted_bytes: HashMap<SocketAddr, u64>,
    /// Hostile nodes by address.
    hostile: HashMap<SocketAddr, Hostile>,
    /// Datagrams delivered so far.
    pub delivered: u64,
}

/// An encoded empty reply (tid `tid`) to `to`, claiming `id`, for
/// injecting.
pub fn reply_datagram(tid: u32, to: SocketAddr, id: Option<crate::id::NodeId>) -> Vec<u8> {
    crate::codec::encode(&crate::messages::Packet {
        tid,
        id: id.map(|i| i.0.to_vec()).unwrap_or_default(),
        to: Some(crate::codec::address(to)),
        flags: 0,
        body: Some(crate::messages::Body::Reply(
            crate::messages::Reply::default(),
        )),
        ..crate::messages::Packet::default()
    })
}

/// An encoded find-node request (tid `tid`) to `to`, claiming `id`, for
/// injecting.
pub fn find_node_datagram(tid: u32, to: SocketAddr, id: crate::id::NodeId) -> Vec<u8> {
    crate::codec::encode(&crate::messages::Packet {
        tid,
        id: id.0.to_vec(),
        to: Some(crate::codec::address(to)),
        flags: 0,
        body: Some(crate::messages::Body::FindNode(crate::messages::FindNode {
            target: id.0.to_vec(),
        })),
        ..crate::messages::Packet::default()
    })
}

/// An encoded ping (tid `tid`) addressed to `to`, for injecting.
pub fn ping_datagram(tid: u32, to: SocketAddr) -> Vec<u8> {
    crate::codec::encode(&crate::messages::Packet {
        tid,
        id: Vec::new(),
        to: Some(crate::codec::address(to)),
        flags: 0,
        body: Some(crate::messages::Body::Ping(crate::messages::Ping {})),
        ..crate::messages::Packet::default()
    })
}

impl Sim {
    /// An empty network.
    pub fn new(config: SimConfig) -> Self {
        let now = Instant::now();
        Sim {
            rng: config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            config,
            start: now,
            now,
            seq: 0,
            nodes: BTreeMap::new(),
            in_flight: BinaryHeap::new(),
            datagrams: HashMap::new(),
            timers: BinaryHeap::new(),
            offline: HashSet::new(),
            natted: HashMap::new(),
            events: HashMap::new(),
            unrouted: HashMap::new(),
            unrouted_bytes: HashMap::new(),
            hostile: HashMap::new(),
            delivered: 0,
        }
    }

    /// The next pseudo-random number (xorshift64*).
    pub fn random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 32 pseudo-random bytes.
    pub fn random_bytes(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.random().to_be_bytes());
        }
        out
    }

    /// A network of `n` public nodes at [`Sim::address`]`(0..n)` that
    /// bootstrap from node 0, one joining every 20 ms of virtual time, then
    /// left to run for `settle` (past 5 minutes, every table has been
    /// refreshed once, as in a network that has been running).
    pub fn public_network(config: SimConfig, n: usize, settle: Duration) -> Sim {
        let addresses: Vec<SocketAddr> = (0..n).map(Sim::address).collect();
        Sim::network_at(config, &addresses, settle)
    }

    /// As [`Sim::public_network`], with public nodes at `addresses` (the
    /// first is the bootstrap node).
    pub fn network_at(config: SimConfig, addresses: &[SocketAddr], settle: Duration) -> Sim {
        let mut sim = Sim::new(config);
        let first = addresses.first().copied();
        for addr in addresses {
            let config = Config {
                bootstrap: first.filter(|f| f != addr).into_iter().collect(),
                reachability: Reachability::Public,
                ..Config::default()
            };
            sim.add(*addr, config, false);
            sim.run_for(Duration::from_millis(20));
        }
        sim.run_for(settle);
        sim
    }

    /// The `n`th host with a global address, each in its own /24
    /// (20.0.0.1, 20.0.1.1, ...): the caps per prefix apply to them.
    pub fn global_address(n: usize) -> SocketAddr {
        let n = u32::try_from(n).unwrap_or(u32::MAX) & 0xffff;
        SocketAddr::from((Ipv4Addr::from(0x1400_0001 + (n << 8)), 4000))
    }

    /// Adds a hostile node at `addr`: what reaches it goes to `behaviour`,
    /// which sends what it likes from any source.
    pub fn add_hostile(&mut self, addr: SocketAddr, behaviour: Hostile) {
        self.hostile.insert(addr, behaviour);
    }

    /// Sends what a hostile node wants sent, as if it arrived after one
    /// latency.
    pub fn forge(&mut self, datagrams: Vec<Forged>) {
        let (low, _) = self.config.latency;
        for (from, to, bytes) in datagrams {
            self.send(from, to, bytes, low);
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The virtual wall clock nodes are given: the simulation starts at
    /// the Unix epoch.
    pub fn unix_ms(&self) -> u64 {
        u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The address of the `n`th simulated host.
    pub fn address(n: usize) -> SocketAddr {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 4000))
    }

    /// Adds a node at `addr` and starts its bootstrap. With `behind_nat`,
    /// datagrams reach it only from addresses it sent to.
    pub fn add(&mut self, addr: SocketAddr, mut config: Config, behind_nat: bool) -> QueryId {
        if config.reachability == Reachability::Public && config.public_address.is_none() {
            config.public_address = Some(addr);
        }
        if behind_nat {
            self.natted.insert(addr, HashSet::new());
        }
        let seed = self.random_bytes();
        let mut node = Node::new(config, self.now, seed);
        node.set_clock(self.now, self.unix_ms());
        let id = node.bootstrap(self.now);
        self.nodes.insert(addr, node);
        self.flush(addr);
        id
    }

    /// The node at `addr`.
    pub fn node(&self, addr: &SocketAddr) -> Option<&Node> {
        self.nodes.get(addr)
    }

    /// Every node's address.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.nodes.keys().copied().collect()
    }

    /// Takes `addr` off the network (or back on).
    pub fn set_offline(&mut self, addr: SocketAddr, offline: bool) {
        if offline {
            self.offline.insert(addr);
        } else {
            self.offline.remove(&addr);
        }
    }

    /// Whether `addr` is off the network.
    pub fn is_offline(&self, addr: &SocketAddr) -> bool {
        self.offline.contains(addr)
    }

    /// Runs `f` on the node at `addr` at the current time, then sends what
    /// it queued.
    pub fn with<T>(
        &mut self,
        addr: SocketAddr,
        f: impl FnOnce(&mut Node, Instant) -> T,
    ) -> Option<T> {
        let now = self.now;
        let out = self.nodes.get_mut(&addr).map(|node| f(node, now));
        self.flush(addr);
        out
    }

    /// Injects a raw datagram from `from` (which need not be a node).
    pub fn inject(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.send(from, to, bytes, Duration::ZERO);
    }

    /// The (destination, tid) of DHT datagrams `from` has sent that are
    /// still on their way.
    pub fn in_flight_from(&self, from: &SocketAddr) -> Vec<(SocketAddr, u32)> {
        let mut out: Vec<(u64, SocketAddr, u32)> = self
            .datagrams
            .iter()
            .filter(|(_, d)| d.from == *from)
            .filter_map(|(seq, d)| match crate::codec::decode(&d.bytes) {
                Ok(crate::codec::Datagram::Dht(p)) => Some((*seq, d.to, p.tid)),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.into_iter().map(|(_, to, tid)| (to, tid)).collect()
    }

    /// Datagrams that arrived for `addr`, which is not a node.
    pub fn answers_to(&self, addr: &SocketAddr) -> u64 {
        self.unrouted.get(addr).copied().unwrap_or(0)
    }

    /// Bytes that arrived for `addr`, which is not a node.
    pub fn bytes_to(&self, addr: &SocketAddr) -> u64 {
        self.unrouted_bytes.get(addr).copied().unwrap_or(0)
    }

    /// Events the node at `addr` produced so far (taken).
    pub fn take_events(&mut self, addr: &SocketAddr) -> Vec<Event> {
        self.events.remove(addr).unwrap_or_default()
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>, latency: Duration) {
        if let Some(allowed) = self.natted.get_mut(&from) {
            allowed.insert(to);
        }
        self.seq += 1;
        self.in_flight.push(Reverse((self.now + latency, self.seq)));
        self.datagrams
            .insert(self.seq, Datagram { from, to, bytes });
    }

    fn flush(&mut self, addr: SocketAddr) {
        let (low, high) = self.config.latency;
        let mut out = Vec::new();
        let mut events = Vec::new();
        let timeout = if let Some(node) = self.nodes.get_mut(&addr) {
            while let Some(t) = node.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = node.poll_event() {
                events.push(e);
            }
            node.poll_timeout()
        } else {
            None
        };
        self.events.entry(addr).or_default().extend(events);
        if let Some(at) = timeout {
            self.timers.push(Reverse((at, addr)));
        }
        for t in out {
            let span = (high - low).as_micros().max(1) as u64;
            let latency = low + Duration::from_micros(self.random() % span);
            let lost = (self.random() % 1_000_000) as f64 / 1_000_000.0 < self.config.loss;
            if !lost {
                self.send(addr, t.to, t.bytes, latency);
            }
        }
    }

    /// Processes the next datagram or timer; false when nothing is left
    /// before `until`.
    pub fn step(&mut self, until: Instant) -> bool {
        let next_packet = self.in_flight.peek().map(|Reverse((at, _))| *at);
        let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
        let packet_first = match (next_packet, next_timer) {
            (Some(p), Some(t)) => p <= t,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return false,
        };
        if packet_first {
            let Some(Reverse((at, seq))) = self.in_flight.pop() else {
                return false;
            };
            if at > until {
                self.in_flight.push(Reverse((at, seq)));
                self.now = until;
                return false;
            }
            self.now = self.now.max(at);
            let Some(d) = self.datagrams.remove(&seq) else {
                return true;
            };
            let blocked = self.offline.contains(&d.to)
                || self.offline.contains(&d.from)
                || self
                    .natted
                    .get(&d.to)
                    .is_some_and(|allowed| !allowed.contains(&d.from));
            if blocked {
                return true;
            }
            if let Some(behaviour) = self.hostile.get_mut(&d.to) {
                let out = behaviour(self.now, d.from, &d.bytes);
                self.delivered += 1;
                self.forge(out);
                return true;
            }
            match self.nodes.get_mut(&d.to) {
                Some(node) => {
                    node.handle_packet(self.now, d.from, &d.bytes);
                    self.delivered += 1;
                    self.flush(d.to);
                }
                None => {
                    *self.unrouted.entry(d.to).or_insert(0) += 1;
                    *self.unrouted_bytes.entry(d.to).or_insert(0) += d.bytes.len() as u64;
                }
            }
        } else {
            let Some(Reverse((at, addr))) = self.timers.pop() else {
                return false;
            };
            if at > until {
                self.timers.push(Reverse((at, addr)));
                self.now = until;
                return false;
            }
            self.now = self.now.max(at);
            if self.offline.contains(&addr) {
                return true;
            }
            let due = self
                .nodes
                .get(&addr)
                .and_then(Node::poll_timeout)
                .is_some_and(|t| t <= self.now);
            if due && let Some(node) = self.nodes.get_mut(&addr) {
                node.handle_timeout(self.now);
                self.flush(addr);
            }
        }
        true
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        let until = self.now + duration;
        while self.step(until) {}
        self.now = self.now.max(until);
    }

    /// Runs until query `id` of the node at `addr` is done (or `limit` of
    /// virtual time passes).
    pub fn run_query(
        &mut self,
        addr: SocketAddr,
        id: QueryId,
        limit: Duration,
    ) -> Option<QueryOutcome> {
        let until = self.now + limit;
        loop {
            if let Some(events) = self.events.get_mut(&addr)
                && let Some(pos) = events
                    .iter()
                    .position(|e| matches!(e, Event::QueryDone { id: done, .. } if *done == id))
                && let Event::QueryDone { outcome, .. } = events.remove(pos)
            {
                return Some(outcome);
            }
            if !self.step(until) {
                return None;
            }
        }
    }

    /// Starts `kind` on the node at `addr` and runs until it is done.
    pub fn query(&mut self, addr: SocketAddr, kind: QueryKind) -> Option<QueryOutcome> {
        let id = self.with(addr, |node, now| node.query(now, kind))?;
        self.run_query(addr, id, Duration::from_secs(120))
    }
}
