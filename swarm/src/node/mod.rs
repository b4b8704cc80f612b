//! One DHT node as a state machine, in the style of quinn-proto: no sockets
//! and no clock. Datagrams go in through [`Node::handle_packet`], time
//! through [`Node::handle_timeout`]; what to send comes out of
//! [`Node::poll_transmit`], what happened out of [`Node::poll_event`], and
//! when to wake next out of [`Node::poll_timeout`].
//!
//! Who owns what: the routing table holds only nodes whose claimed id is
//! the hash of the address their packets come from; [`Records`] holds what
//! others stored here; the queries (`query.rs`) walk the network with a
//! [`crate::Lookup`] each; requests this node answers live in `serve.rs`.
//!
//! Here: sending requests and answers, timers, and taking packets apart;
//! `answers` ends a request with its answer or its silence; `own_address`
//! learns this node's address and claims its id; `tokens` proves
//! requesters' addresses and pads our own requests (amplification).

mod answers;
mod own_address;
mod tokens;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::announced::Announced;
use crate::codec::{self, MAX_PACKET, address, bytes32, socket_addr};
use crate::id::NodeId;
use crate::kbucket::{Insert, K, RoutingTable};
use crate::limits::{AddressSet, Buckets, Prefix, TokenBucket, TokenCache};
use crate::messages::{Body, ErrorCode, FLAG_RELAY, Holepunch, Packet, Ping, Reply};
use crate::query::{Query, QueryKind};
use crate::records::Records;

pub use crate::node_types::{
    Config, ConnectToken, Event, QueryId, RateLimit, Reachability, RequestError, RequestId,
    Transmit,
};

/// What an outstanding request is for.
#[derive(Debug, Clone)]
pub(crate) enum Purpose {
    /// A step of a query, sent to the node with this (lookup) id.
    Query(QueryId, NodeId),
    /// The store phase of a query.
    Store(QueryId),
    /// A ping of the oldest node of a full bucket; `candidate` replaces it
    /// if it does not answer.
    Evict {
        oldest: NodeId,
        candidate: (NodeId, SocketAddr),
    },
    /// A request of the application.
    Request(RequestId),
    /// A connect request passed on for `client`.
    Forward { client: SocketAddr, tid: u32 },
    /// Asking another node to ping us.
    CheckReachable,
    /// A ping whose answer nobody waits for.
    Quiet,
}

struct Pending {
    to: SocketAddr,
    deadline: Instant,
    tries_left: u8,
    bytes: Vec<u8>,
    purpose: Purpose,
}

/// The header of an answer, for [`Node::on_answer`].
struct Answered {
    from: SocketAddr,
    tid: u32,
    claimed: Option<NodeId>,
    /// Where the answerer says it sent the answer: our address as it sees it.
    to: Option<SocketAddr>,
    /// Whether the answerer says it relays.
    relays: bool,
}

/// One DHT node.
pub struct Node {
    pub(crate) config: Config,
    /// The claimed id, once reachable; until then a random id orders the
    /// table.
    claimed: Option<NodeId>,
    pub(crate) table: RoutingTable<SocketAddr>,
    next_tid: u32,
    next_id: u64,
    pending: HashMap<u32, Pending>,
    pub(crate) queries: HashMap<QueryId, Query>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    pub(crate) records: Records,
    /// The holders of this node's own announcements.
    pub(crate) announced: Announced,
    secrets: [[u8; 32]; 2],
    secret_rotated: Instant,
    /// What each reporting prefix said our address is.
    observed: VecDeque<(Prefix, SocketAddr)>,
    public_address: Option<SocketAddr>,
    contacted: AddressSet,
    /// Addresses that answered a request of ours: a round trip proved them.
    validated: AddressSet,
    /// Validation tokens other nodes gave us.
    tokens: TokenCache,
    /// Bytes of answers this node may still send (all sources together).
    answer_bytes: TokenBucket,
    /// `PingTarget`s this node may still act on.
    ping_targets: TokenBucket,
    /// Pings this node may still send to check a requester before taking
    /// it in, and the addresses it checked.
    verify_budget: TokenBucket,
    verifying: AddressSet,
    /// The size the answer being built may have (see [`Node::budget`]).
    budget: usize,
    /// A reading of the wall clock: at this instant, these milliseconds
    /// since the Unix epoch.
    wall: Option<(Instant, u64)>,
    /// Recent requesters (any), to ask for reachability pings.
    recent: VecDeque<SocketAddr>,
    rates: Buckets<Prefix>,
    evicting: HashSet<NodeId>,
    relays: VecDeque<SocketAddr>,
    next_refresh: Instant,
    next_expire: Instant,
    next_check: Option<Instant>,
    check_every: Duration,
    bootstrapped: bool,
}

const SECRET_ROTATION: Duration = Duration::from_secs(5 * 60);
const EXPIRE_EVERY: Duration = Duration::from_secs(60);
/// Reachability checks start this soon after a failed one, doubling up to
/// [`CHECK_MAX`].
const CHECK_FIRST: Duration = Duration::from_secs(1);
const CHECK_MAX: Duration = Duration::from_secs(120);
const OBSERVERS: usize = 8;
const RECENT: usize = 32;
const RELAYS: usize = 8;
/// Source prefixes with a rate bucket at most.
const MAX_RATE_SOURCES: usize = 65_536;
/// Pings per second (and at once) to requesters this node would take into
/// its table (see [`Node::verify_later`]).
const VERIFY_PER_SECOND: f64 = 50.0;
/// `PingTarget` requests acted on per second (from validated nodes only).
const PING_TARGETS_PER_SECOND: f64 = 20.0;
/// An answer to a source whose address is not validated is at most this
/// many times the size of its request (QUIC's rule, RFC 9000 section 8).
pub const AMPLIFICATION: usize = 3;
/// Requests whose answers may be large are padded to this size while the
/// recipient has not validated the sender, so that their answers fit
/// [`AMPLIFICATION`] times it.
pub const PADDED_REQUEST: usize = MAX_PACKET / AMPLIFICATION + 1;

impl Node {
    /// A node that has not yet talked to anyone. `seed` gives the random
    /// bits (the table's provisional id, token secrets); pass fresh random
    /// bytes, or a fixed seed in simulations.
    pub fn new(config: Config, now: Instant, seed: [u8; 32]) -> Self {
        let provisional = NodeId(blake3::derive_key("hyper-swarm 2026 provisional id", &seed));
        let secret = blake3::derive_key("hyper-swarm 2026 token secret", &seed);
        let limits = config.limits.clone();
        let mut node = Node {
            claimed: None,
            table: RoutingTable::new(provisional),
            next_tid: u32::from_be_bytes([seed[0], seed[1], seed[2], seed[3]]),
            next_id: 0,
            pending: HashMap::new(),
            queries: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            records: Records::new(limits),
            announced: Announced::default(),
            secrets: [secret, secret],
            secret_rotated: now,
            observed: VecDeque::new(),
            public_address: None,
            contacted: AddressSet::default(),
            validated: AddressSet::default(),
            tokens: TokenCache::default(),
            answer_bytes: TokenBucket::new(
                now,
                config.answer_bytes_per_second as f64,
                config.answer_bytes_per_second as f64,
            ),
            ping_targets: TokenBucket::new(now, PING_TARGETS_PER_SECOND, PING_TARGETS_PER_SECOND),
            verify_budget: TokenBucket::new(now, VERIFY_PER_SECOND, VERIFY_PER_SECOND),
            verifying: AddressSet::default(),
            budget: MAX_PACKET,
            wall: None,
            recent: VecDeque::new(),
            rates: Buckets::new(
                f64::from(config.rate_limit.per_second),
                f64::from(config.rate_limit.burst),
                MAX_RATE_SOURCES,
            ),
            evicting: HashSet::new(),
            relays: VecDeque::new(),
            next_refresh: now + config.refresh_interval,
            next_expire: now + EXPIRE_EVERY,
            next_check: None,
            check_every: CHECK_FIRST,
            bootstrapped: false,
            config,
        };
        if node.config.reachability == Reachability::Public
            && let Some(addr) = node.config.public_address
        {
            node.claim(addr);
        }
        node
    }

    /// Tells the node the wall clock: at `now`, `unix_ms` milliseconds
    /// since the Unix epoch. Until it is told, record timestamps are not
    /// checked against the clock.
    pub fn set_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall = Some((now, unix_ms));
    }

    /// The wall clock at `now` in milliseconds since the Unix epoch, if
    /// told ([`Node::set_clock`]).
    pub fn unix_ms(&self, now: Instant) -> Option<u64> {
        let (at, ms) = self.wall?;
        let since =
            u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX);
        Some(ms.saturating_add(since))
    }

    /// The id this node serves under, once it does.
    pub fn id(&self) -> Option<NodeId> {
        self.claimed
    }

    /// The address others see this node at, once known.
    pub fn public_address(&self) -> Option<SocketAddr> {
        self.public_address.or(self.config.public_address)
    }

    /// Nodes in the routing table.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// The `n` known nodes closest to `target`.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<(NodeId, SocketAddr)> {
        self.table.closest(target, n)
    }

    /// The addresses of up to `n` nodes of the table closest to this one.
    pub fn neighbours(&self, n: usize) -> Vec<SocketAddr> {
        self.table
            .closest(&self.table.local(), n)
            .into_iter()
            .map(|(_, a)| a)
            .collect()
    }

    /// Entries stored here for others.
    pub fn stored(&self) -> usize {
        self.records.len()
    }

    /// Nodes that said they relay, most recent first.
    pub fn relays(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.relays.iter().copied()
    }

    /// Whether the first walk of the network is done.
    pub fn is_bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// Walks toward the own id from the bootstrap nodes and the table, so
    /// the table fills and close nodes learn of this one.
    pub fn bootstrap(&mut self, now: Instant) -> QueryId {
        let target = self.table.local();
        self.query(now, QueryKind::FindNode(target))
    }

    pub(crate) fn next_query_id(&mut self) -> QueryId {
        self.next_id += 1;
        QueryId(self.next_id)
    }

    fn fresh_tid(&mut self) -> u32 {
        loop {
            self.next_tid = self.next_tid.wrapping_add(1);
            if !self.pending.contains_key(&self.next_tid) {
                return self.next_tid;
            }
        }
    }

    fn header(&self, tid: u32, to: SocketAddr, body: Body) -> Packet {
        Packet {
            tid,
            id: self.claimed.map(|id| id.0.to_vec()).unwrap_or_default(),
            to: Some(address(to)),
            flags: if self.config.relay { FLAG_RELAY } else { 0 },
            body: Some(body),
            token: Vec::new(),
            padding: Vec::new(),
        }
    }

    /// Sends a request and remembers it; returns its tid.
    pub(crate) fn send_request(
        &mut self,
        now: Instant,
        to: SocketAddr,
        body: Body,
        purpose: Purpose,
    ) -> u32 {
        let tid = self.fresh_tid();
        let bytes = codec::encode(&self.request_packet(now, tid, to, body));
        self.contacted.insert(to);
        self.transmits.push_back(Transmit {
            to,
            bytes: bytes.clone(),
        });
        self.pending.insert(
            tid,
            Pending {
                to,
                deadline: now + self.config.request_timeout,
                tries_left: self.config.retries,
                bytes,
                purpose,
            },
        );
        tid
    }

    /// Sends an answer, trimmed to fit the budget of the request being
    /// answered ([`Node::budget`]; a whole packet outside of one).
    pub(crate) fn send_answer(&mut self, to: SocketAddr, tid: u32, body: Body) {
        let mut packet = self.header(tid, to, body);
        crate::serve::fit(&mut packet, self.budget);
        let bytes = codec::encode(&packet);
        if bytes.len() > self.budget {
            return;
        }
        self.contacted.insert(to);
        self.transmits.push_back(Transmit { to, bytes });
    }

    pub(crate) fn send_error(&mut self, to: SocketAddr, tid: u32, code: ErrorCode) {
        self.send_answer(
            to,
            tid,
            Body::Error(crate::messages::Error { code: code as i32 }),
        );
    }

    /// Sends one request to `to`; its answer comes as [`Event::Response`].
    pub fn request(&mut self, now: Instant, to: SocketAddr, body: Body) -> RequestId {
        self.next_id += 1;
        let id = RequestId(self.next_id);
        self.send_request(now, to, body, Purpose::Request(id));
        id
    }

    /// Pings `to`, for keeping a NAT mapping open; nobody hears the answer.
    pub fn keep_alive(&mut self, now: Instant, to: SocketAddr) {
        self.send_request(now, to, Body::Ping(Ping {}), Purpose::Quiet);
    }

    /// Answers a [`Event::ConnectRequest`]: with this node's details, or
    /// `None` to refuse.
    pub fn answer_connect(&mut self, token: ConnectToken, holepunch: Option<Holepunch>) {
        match holepunch {
            Some(holepunch) => self.send_answer(
                token.holder,
                token.tid,
                Body::Reply(Reply {
                    holepunch: Some(holepunch),
                    ..Reply::default()
                }),
            ),
            None => self.send_error(token.holder, token.tid, ErrorCode::NotFound),
        }
    }

    pub(crate) fn push_event(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.values().map(|p| p.deadline).min();
        let timers = [
            Some(self.next_refresh),
            Some(self.next_expire),
            Some(self.secret_rotated + SECRET_ROTATION),
            self.next_check,
            pending,
        ];
        timers.into_iter().flatten().min()
    }

    /// Resends or fails overdue requests, refreshes, expires, rotates.
    pub fn handle_timeout(&mut self, now: Instant) {
        let overdue: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(tid, _)| *tid)
            .collect();
        for tid in overdue {
            let Some(mut pending) = self.pending.remove(&tid) else {
                continue;
            };
            if pending.tries_left > 0 {
                pending.tries_left -= 1;
                pending.deadline = now + self.config.request_timeout;
                self.transmits.push_back(Transmit {
                    to: pending.to,
                    bytes: pending.bytes.clone(),
                });
                self.pending.insert(tid, pending);
            } else {
                self.on_failure(now, pending.to, pending.purpose, RequestError::Timeout);
            }
        }
        if now >= self.secret_rotated + SECRET_ROTATION {
            self.secrets[1] = self.secrets[0];
            self.secrets[0] = blake3::derive_key("hyper-swarm 2026 token secret", &self.secrets[1]);
            self.secret_rotated = now;
        }
        if now >= self.next_expire {
            self.records.expire(now);
            self.announced.expire(now);
            self.next_expire = now + EXPIRE_EVERY;
            self.rates.expire(now);
        }
        if now >= self.next_refresh {
            self.next_refresh = now + self.config.refresh_interval;
            self.bootstrap(now);
            let mut random = self.table.local().0;
            random.reverse();
            random[0] ^= self.secrets[0][0];
            self.query(now, QueryKind::FindNode(NodeId(random)));
        }
        if self.next_check.is_some_and(|at| now >= at) {
            self.next_check = None;
            self.check_reachable(now);
        }
        self.drive_queries(now);
    }

    /// Handles one received datagram from `from`.
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let Ok(codec::Datagram::Dht(packet)) = codec::decode(bytes) else {
            return;
        };
        let Some(body) = packet.body else {
            return;
        };
        let claimed = bytes32(&packet.id)
            .map(NodeId)
            .filter(|id| *id == NodeId::for_address(from));
        let header = Answered {
            from,
            tid: packet.tid,
            claimed,
            to: packet.to.as_ref().and_then(socket_addr),
            relays: packet.flags & FLAG_RELAY != 0,
        };
        match body {
            Body::Reply(reply) => self.on_answer(now, header, Ok(reply)),
            Body::Error(error) => {
                let code = ErrorCode::try_from(error.code).unwrap_or(ErrorCode::Unknown);
                self.on_answer(now, header, Err(code));
            }
            request => {
                if !self.answer_bytes.has(now) || !self.rates.take(now, Prefix::of(from.ip())) {
                    return;
                }
                let validated =
                    self.validated.contains(&from) || self.valid_token(from, &packet.token);
                self.budget = if validated {
                    MAX_PACKET
                } else {
                    (AMPLIFICATION * bytes.len()).min(MAX_PACKET)
                };
                if self.recent.len() >= RECENT {
                    self.recent.pop_back();
                }
                if !self.recent.contains(&from) {
                    self.recent.push_front(from);
                }
                if !self.contacted.contains(&from) {
                    self.reached_unsolicited(now, header.to);
                }
                if let Some(id) = claimed {
                    self.verify_later(now, id, from);
                }
                let queued = self.transmits.len();
                self.serve(now, from, packet.tid, request, validated);
                self.budget = MAX_PACKET;
                let answered: usize = self
                    .transmits
                    .iter()
                    .skip(queued)
                    .map(|t| t.bytes.len())
                    .sum();
                self.answer_bytes.charge(now, answered as f64);
            }
        }
        self.drive_queries(now);
    }

    /// Takes one of the `PingTarget`s this node acts on per second.
    pub(crate) fn may_ping_target(&mut self, now: Instant) -> bool {
        self.ping_targets.take(now, 1.0)
    }

    /// A request claimed `id` at `from`: a request proves nothing (its
    /// source may be forged), so a node not in the table gets a ping, and
    /// enters the table only if it answers (in [`Node::on_answer`]). At
    /// most [`VERIFY_PER_SECOND`] such pings, and one per address per
    /// generation of the set of addresses asked.
    fn verify_later(&mut self, now: Instant, id: NodeId, from: SocketAddr) {
        let known = self
            .table
            .closest(&id, 1)
            .first()
            .is_some_and(|(n, _)| *n == id);
        if known || Some(id) == self.claimed || self.verifying.contains(&from) {
            return;
        }
        if self.verify_budget.take(now, 1.0) {
            self.verifying.insert(from);
            self.send_request(now, from, Body::Ping(Ping {}), Purpose::Quiet);
        }
    }

    /// `id` at `from` answered a request of ours: into the table, or ping
    /// the oldest of its full bucket.
    pub(crate) fn seen(&mut self, now: Instant, id: NodeId, from: SocketAddr) {
        if Some(id) == self.claimed {
            return;
        }
        if let Insert::Full { oldest } = self.table.insert(id, from)
            && self.evicting.insert(oldest)
            && let Some(addr) = self
                .table
                .closest(&oldest, 1)
                .into_iter()
                .find(|(n, _)| *n == oldest)
                .map(|(_, a)| a)
        {
            self.send_request(
                now,
                addr,
                Body::Ping(Ping {}),
                Purpose::Evict {
                    oldest,
                    candidate: (id, from),
                },
            );
        }
    }

    pub(crate) fn set_bootstrapped(&mut self) {
        self.bootstrapped = true;
    }

    /// The seeds of a walk toward `target`: the table's closest, and the
    /// bootstrap nodes under the ids their addresses would give them.
    pub(crate) fn seeds(&self, target: &NodeId) -> Vec<(NodeId, SocketAddr)> {
        let mut seeds = self.table.closest(target, K);
        for addr in &self.config.bootstrap {
            if !seeds.iter().any(|(_, a)| a == addr) {
                seeds.push((NodeId::for_address(*addr), *addr));
            }
        }
        seeds
    }

    /// A recent requester other than `not`, to ask for a ping.
    ///
    /// Picked at random among the table's nodes and recent requesters, so
    /// that a requester's retries reach helpers it may never have written
    /// to (only a ping from such a helper proves anything).
    pub(crate) fn other_node(&mut self, not: SocketAddr) -> Option<SocketAddr> {
        let mut candidates: Vec<SocketAddr> = self
            .table
            .closest(&NodeId::for_address(not), K)
            .into_iter()
            .map(|(_, a)| a)
            .chain(self.recent.iter().copied())
            .filter(|a| *a != not)
            .collect();
        candidates.dedup();
        self.next_id += 1;
        let mut hasher = blake3::Hasher::new_keyed(&self.secrets[0]);
        hasher.update(&self.next_id.to_be_bytes());
        let pick = u64::from_be_bytes(
            hasher.finalize().as_bytes()[..8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let len = u64::try_from(candidates.len()).ok().filter(|l| *l > 0)?;
        candidates.get(usize::try_from(pick % len).ok()?).copied()
    }
}
