//! Queries: a walk toward a target with a [`Lookup`], then, for writes, a
//! store on the closest nodes that answered, each with the write token it
//! gave.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper_core::PublicKey;

use crate::codec::{bytes32, socket_addr};
use crate::id::NodeId;
use crate::kbucket::{K, MAX_PER_PREFIX};
use crate::limits::Prefix;
use crate::lookup::{Lookup, LookupState};
use crate::messages::{
    Announce, Body, FindNode, ImmutableGet, ImmutablePut, Lookup as LookupRequest, MutableGet,
    MutablePut, MutableValue, PeerRecord, Reply, SignedRecord, Unannounce,
};
use crate::node::{Event, Node, Purpose, QueryId};
use crate::signing::{immutable_target, mutable_target, verify_mutable, verify_record};

/// What a query looks for or stores.
#[derive(Debug, Clone)]
pub enum QueryKind {
    /// The nodes closest to an id.
    FindNode(NodeId),
    /// The records of a topic.
    Lookup([u8; 32]),
    /// Store a signed record under a topic.
    Announce {
        /// The topic.
        topic: [u8; 32],
        /// The record.
        record: SignedRecord,
    },
    /// Remove a record (a signed [`Unannounce`]; tokens are filled in).
    Unannounce(Unannounce),
    /// Store a signed mutable value.
    MutablePut(MutableValue),
    /// Read the newest mutable value of a key, at least version `seq`.
    MutableGet {
        /// The signer.
        public_key: PublicKey,
        /// Lowest version wanted.
        seq: u64,
    },
    /// Store an immutable value.
    ImmutablePut(Vec<u8>),
    /// Read the immutable value with this hash.
    ImmutableGet([u8; 32]),
}

impl QueryKind {
    fn target(&self) -> [u8; 32] {
        match self {
            QueryKind::FindNode(id) => id.0,
            QueryKind::Lookup(topic) | QueryKind::Announce { topic, .. } => *topic,
            QueryKind::Unannounce(u) => bytes32(&u.topic).unwrap_or([0; 32]),
            QueryKind::MutablePut(value) => bytes32(&value.public_key)
                .map(|k| mutable_target(&PublicKey(k)))
                .unwrap_or([0; 32]),
            QueryKind::MutableGet { public_key, .. } => mutable_target(public_key),
            QueryKind::ImmutablePut(value) => immutable_target(value),
            QueryKind::ImmutableGet(target) => *target,
        }
    }

    /// The request sent to each node on the walk.
    fn walk_request(&self, target: [u8; 32]) -> Body {
        match self {
            QueryKind::FindNode(_) => Body::FindNode(FindNode {
                target: target.to_vec(),
            }),
            QueryKind::Lookup(_) | QueryKind::Announce { .. } | QueryKind::Unannounce(_) => {
                Body::Lookup(LookupRequest {
                    topic: target.to_vec(),
                })
            }
            QueryKind::MutablePut(_) => Body::MutableGet(MutableGet {
                target: target.to_vec(),
                seq: u64::MAX,
            }),
            QueryKind::MutableGet { seq, .. } => Body::MutableGet(MutableGet {
                target: target.to_vec(),
                seq: *seq,
            }),
            QueryKind::ImmutablePut(_) | QueryKind::ImmutableGet(_) => {
                Body::ImmutableGet(ImmutableGet {
                    target: target.to_vec(),
                })
            }
        }
    }

    /// The store request for a node that gave `token`, for writes.
    fn store_request(&self, token: Vec<u8>) -> Option<Body> {
        match self {
            QueryKind::Announce { topic, record } => Some(Body::Announce(Announce {
                topic: topic.to_vec(),
                record: Some(record.clone()),
                token,
            })),
            QueryKind::Unannounce(u) => Some(Body::Unannounce(Unannounce { token, ..u.clone() })),
            QueryKind::MutablePut(value) => Some(Body::MutablePut(MutablePut {
                value: Some(value.clone()),
                token,
            })),
            QueryKind::ImmutablePut(value) => Some(Body::ImmutablePut(ImmutablePut {
                value: value.clone(),
                token,
            })),
            QueryKind::FindNode(_)
            | QueryKind::Lookup(_)
            | QueryKind::MutableGet { .. }
            | QueryKind::ImmutableGet(_) => None,
        }
    }
}

/// A verified peer record found by a lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecord {
    /// The topic.
    pub topic: [u8; 32],
    /// The peer's identity (the record's signer).
    pub public_key: PublicKey,
    /// The record.
    pub record: PeerRecord,
    /// The node it was found on: connect requests go there.
    pub holder: SocketAddr,
}

/// What a query found and did.
#[derive(Debug, Clone, Default)]
pub struct QueryOutcome {
    /// The closest nodes that answered, closest first.
    pub closest: Vec<(NodeId, SocketAddr)>,
    /// Records found (newest per peer), for lookups.
    pub records: Vec<FoundRecord>,
    /// The newest verified mutable value found.
    pub mutable: Option<MutableValue>,
    /// The immutable value found (its hash checked).
    pub immutable: Option<Vec<u8>>,
    /// Nodes that accepted the write, for writes.
    pub stored_at: Vec<SocketAddr>,
    /// Hops of the walk (see [`Lookup::hops`]).
    pub hops: usize,
    /// Requests the walk sent.
    pub requests: usize,
}

enum Phase {
    Walking,
    Storing { outstanding: usize },
}

/// A query in progress.
pub(crate) struct Query {
    kind: QueryKind,
    target: [u8; 32],
    pub(crate) lookup: Lookup,
    addrs: HashMap<NodeId, SocketAddr>,
    /// Candidates per capped prefix.
    prefixes: HashMap<Prefix, usize>,
    tokens: HashMap<NodeId, Vec<u8>>,
    phase: Phase,
    outcome: QueryOutcome,
}

/// How long a walk waits for one node at most (requests fail earlier,
/// after their resends).
const WALK_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Starts a query; its result comes as [`Event::QueryDone`] (and, for
    /// lookups, each record as [`Event::Found`] on arrival).
    pub fn query(&mut self, now: Instant, kind: QueryKind) -> QueryId {
        let id = self.next_query_id();
        let target = kind.target();
        if let QueryKind::Unannounce(_) = &kind {
            self.announced.withdrawn(&target);
        }
        // At most MAX_PER_PREFIX candidates of one /24 or /64, seeds too.
        let mut prefixes: HashMap<Prefix, usize> = HashMap::new();
        let seeds: Vec<(NodeId, SocketAddr)> = self
            .seeds(&NodeId(target))
            .into_iter()
            .filter(|(_, addr)| match Prefix::capped(addr.ip()) {
                Some(prefix) => {
                    let n = prefixes.entry(prefix).or_insert(0);
                    *n += 1;
                    *n <= MAX_PER_PREFIX
                }
                None => true,
            })
            .collect();
        let lookup = Lookup::new(NodeId(target), seeds.iter().map(|(n, _)| *n), WALK_TIMEOUT);
        let outcome = self.held_here(&kind, target);
        let found = outcome.records.clone();
        let query = Query {
            kind,
            target,
            lookup,
            addrs: seeds.into_iter().collect(),
            prefixes,
            tokens: HashMap::new(),
            phase: Phase::Walking,
            outcome,
        };
        self.queries.insert(id, query);
        for record in found {
            self.push_event(Event::Found { id, record });
        }
        self.drive_queries(now);
        id
    }

    /// What this node itself holds for a read: other nodes stored it here
    /// because it is among the closest, so a walk from here may not find
    /// it elsewhere. Records need this node's public address as their
    /// holder (connect requests go there).
    fn held_here(&self, kind: &QueryKind, target: [u8; 32]) -> QueryOutcome {
        let mut outcome = QueryOutcome::default();
        match kind {
            QueryKind::Lookup(topic) => {
                if let Some(holder) = self.public_address() {
                    outcome.records = self
                        .records
                        .lookup(topic)
                        .iter()
                        .filter_map(|signed| verify_record(topic, signed))
                        .map(|(record, public_key)| FoundRecord {
                            topic: *topic,
                            public_key,
                            record,
                            holder,
                        })
                        .collect();
                }
            }
            QueryKind::MutableGet { seq, .. } => {
                outcome.mutable = self.records.get_mutable(&target, *seq).cloned();
            }
            QueryKind::ImmutableGet(_) => {
                outcome.immutable = self.records.get_immutable(&target).map(<[u8]>::to_vec);
            }
            _ => {}
        }
        outcome
    }

    /// Sends what every walking query can send now; finishes those done.
    pub(crate) fn drive_queries(&mut self, now: Instant) {
        let ids: Vec<QueryId> = self.queries.keys().copied().collect();
        for id in ids {
            while let Some(query) = self.queries.get_mut(&id) {
                if !matches!(query.phase, Phase::Walking) {
                    break;
                }
                match query.lookup.next(now) {
                    LookupState::Query(node) => {
                        let Some(addr) = query.addrs.get(&node).copied() else {
                            query.lookup.on_failure(&node);
                            continue;
                        };
                        query.outcome.requests += 1;
                        let body = query.kind.walk_request(query.target);
                        self.send_request(now, addr, body, Purpose::Query(id, node));
                    }
                    LookupState::Waiting | LookupState::AtCapacity => break,
                    LookupState::Finished => {
                        self.walked(now, id);
                        break;
                    }
                }
            }
        }
    }

    /// The walk of `id` is over: store, or finish.
    fn walked(&mut self, now: Instant, id: QueryId) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        let closest: Vec<(NodeId, SocketAddr)> = query
            .lookup
            .result()
            .into_iter()
            .filter_map(|n| query.addrs.get(&n).map(|a| (n, *a)))
            .collect();
        query.outcome.hops = query.lookup.hops();
        query.outcome.closest = closest.clone();
        let mut stores = Vec::new();
        for (node, addr) in closest {
            let token = query.tokens.get(&node).cloned().unwrap_or_default();
            if let Some(body) = query.kind.store_request(token) {
                stores.push((addr, body));
            }
        }
        if stores.is_empty() {
            self.finish(id);
            return;
        }
        query.phase = Phase::Storing {
            outstanding: stores.len(),
        };
        for (addr, body) in stores {
            self.send_request(now, addr, body, Purpose::Store(id));
        }
    }

    fn finish(&mut self, id: QueryId) {
        if let Some(query) = self.queries.remove(&id) {
            if matches!(query.kind, QueryKind::FindNode(t) if t == self.table.local()) {
                self.set_bootstrapped();
            }
            self.push_event(Event::QueryDone {
                id,
                outcome: query.outcome,
            });
        }
    }

    pub(crate) fn on_store_answer(
        &mut self,
        now: Instant,
        id: QueryId,
        from: SocketAddr,
        stored: bool,
    ) {
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        if let Phase::Storing { outstanding } = &mut query.phase {
            *outstanding = outstanding.saturating_sub(1);
            if stored {
                query.outcome.stored_at.push(from);
                if let QueryKind::Announce { topic, .. } = &query.kind {
                    // Only this holder may pass connects on for the topic.
                    let until = now + self.records.limits().ttl;
                    self.announced.stored(*topic, from, until);
                }
            }
            if *outstanding == 0 {
                self.finish(id);
            }
        }
    }

    pub(crate) fn on_query_reply(
        &mut self,
        _now: Instant,
        id: QueryId,
        node: NodeId,
        from: SocketAddr,
        claimed: Option<NodeId>,
        reply: Reply,
    ) {
        let local = self.id();
        let Some(query) = self.queries.get_mut(&id) else {
            return;
        };
        // Only nodes whose id is bound to their address are followed.
        let mut closer = Vec::new();
        for info in reply.closer.iter().take(K) {
            let (Some(nid), Some(addr)) = (
                bytes32(&info.id),
                info.address.as_ref().and_then(socket_addr),
            ) else {
                continue;
            };
            let nid = NodeId(nid);
            if nid != NodeId::for_address(addr) || Some(nid) == local {
                continue;
            }
            // One node runs one family: an address of the other cannot be
            // reached from this socket (a confused or hostile answer).
            if addr.ip().to_canonical().is_ipv4() != from.ip().to_canonical().is_ipv4() {
                continue;
            }
            // At most MAX_PER_PREFIX candidates of one /24 or /64.
            if query.addrs.contains_key(&nid) {
                closer.push(nid);
                continue;
            }
            if let Some(prefix) = Prefix::capped(addr.ip()) {
                let n = query.prefixes.entry(prefix).or_insert(0);
                if *n >= MAX_PER_PREFIX {
                    continue;
                }
                *n += 1;
            }
            query.addrs.insert(nid, addr);
            closer.push(nid);
        }
        query.lookup.on_success(&node, closer);
        if let Some(real) = claimed
            && real != node
        {
            query.addrs.entry(real).or_insert(from);
        }
        if !reply.token.is_empty() {
            query.tokens.insert(node, reply.token);
        }
        let mut found = Vec::new();
        for signed in &reply.records {
            if let Some((record, public_key)) = verify_record(&query.target, signed) {
                let newer = query
                    .outcome
                    .records
                    .iter()
                    .position(|r| r.public_key == public_key);
                let record = FoundRecord {
                    topic: query.target,
                    public_key,
                    record,
                    holder: from,
                };
                match newer {
                    Some(i) => {
                        if let Some(old) = query.outcome.records.get_mut(i)
                            && old.record.timestamp < record.record.timestamp
                        {
                            *old = record;
                        }
                    }
                    None => {
                        query.outcome.records.push(record.clone());
                        found.push(record);
                    }
                }
            }
        }
        if let (Some(value), QueryKind::MutableGet { public_key, .. }) =
            (reply.mutable, &query.kind)
            && verify_mutable(&value) == Some(*public_key)
            && query
                .outcome
                .mutable
                .as_ref()
                .is_none_or(|m| m.seq < value.seq)
        {
            query.outcome.mutable = Some(value);
        }
        if !reply.immutable.is_empty() && immutable_target(&reply.immutable) == query.target {
            query.outcome.immutable = Some(reply.immutable);
        }
        for record in found {
            self.push_event(Event::Found { id, record });
        }
    }
}
