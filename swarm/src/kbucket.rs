//! The routing table: 256 k-buckets by distance from the local id, each
//! holding at most [`K`] nodes, least recently seen first. Pure: the caller
//! decides when a node was seen and pings the eviction candidate.

use std::collections::VecDeque;

use crate::id::{Distance, NodeId};
use crate::limits::Prefix;

/// Nodes per bucket (and results per lookup).
pub const K: usize = 20;

/// Nodes of one /24 (IPv4) or /64 (IPv6) in one bucket, one answer or one
/// lookup result at most (local networks exempt).
pub const MAX_PER_PREFIX: usize = 2;

/// What the table stores with a node: its prefix, for the caps per
/// prefix ([`MAX_PER_PREFIX`]).
pub trait Contact: Clone {
    /// The node's capped prefix (see [`Prefix::capped`]), `None` if exempt.
    fn prefix(&self) -> Option<Prefix>;
}

impl Contact for std::net::SocketAddr {
    fn prefix(&self) -> Option<Prefix> {
        Prefix::capped(self.ip())
    }
}

impl Contact for () {
    fn prefix(&self) -> Option<Prefix> {
        None
    }
}

/// What [`RoutingTable::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// Added, or moved to the most recently seen end.
    Inserted,
    /// The bucket is full: ping this least recently seen node; if it does
    /// not answer, [`RoutingTable::remove`] it and insert again.
    Full {
        /// The node to ping.
        oldest: NodeId,
    },
    /// The local id: never stored.
    Local,
    /// The bucket already holds [`MAX_PER_PREFIX`] nodes of the same /24
    /// or /64: not stored.
    Crowded,
}

/// A Kademlia routing table around one local id.
pub struct RoutingTable<T> {
    local: NodeId,
    buckets: Vec<VecDeque<(NodeId, T)>>,
}

impl<T: Contact> RoutingTable<T> {
    /// An empty table around `local`.
    pub fn new(local: NodeId) -> Self {
        RoutingTable {
            local,
            buckets: (0..256).map(|_| VecDeque::new()).collect(),
        }
    }

    /// The local id.
    pub fn local(&self) -> NodeId {
        self.local
    }

    fn bucket(&mut self, id: &NodeId) -> Option<&mut VecDeque<(NodeId, T)>> {
        let index = self.local.distance(id).bucket()?;
        self.buckets.get_mut(index)
    }

    /// Records that `id` (with its contact `value`) was seen alive.
    pub fn insert(&mut self, id: NodeId, value: T) -> Insert {
        let Some(bucket) = self.bucket(&id) else {
            return Insert::Local;
        };
        if let Some(pos) = bucket.iter().position(|(n, _)| *n == id) {
            bucket.remove(pos);
            bucket.push_back((id, value));
            return Insert::Inserted;
        }
        if let Some(prefix) = value.prefix()
            && bucket
                .iter()
                .filter(|(_, v)| v.prefix() == Some(prefix))
                .count()
                >= MAX_PER_PREFIX
        {
            return Insert::Crowded;
        }
        if bucket.len() < K {
            bucket.push_back((id, value));
            return Insert::Inserted;
        }
        // Full (K > 0 entries): the least recently seen is at the front.
        let oldest = bucket.front().map(|(n, _)| *n).unwrap_or(id);
        Insert::Full { oldest }
    }

    /// Forgets `id`; whether it was there.
    pub fn remove(&mut self, id: &NodeId) -> bool {
        let Some(bucket) = self.bucket(id) else {
            return false;
        };
        match bucket.iter().position(|(n, _)| n == id) {
            Some(pos) => {
                bucket.remove(pos);
                true
            }
            None => false,
        }
    }

    /// Number of nodes in the table.
    pub fn len(&self) -> usize {
        self.buckets.iter().map(VecDeque::len).sum()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `n` known nodes closest to `target`, closest first. Visits
    /// buckets in order of their distance range from the target and stops
    /// once `n` are found: bucket `b` (the target's own, where `b` is the
    /// highest bit of local ⊕ target) holds the nodes nearer than `2^b`,
    /// the buckets below `b` together those in `[2^b, 2^(b+1))`, and each
    /// bucket above `b` its own range. Only the visited nodes are sorted
    /// and only the `n` returned are cloned.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<(NodeId, T)> {
        let groups: Vec<Vec<usize>> = match self.local.distance(target).bucket() {
            // The target is the local id: bucket i holds distances [2^i, 2^(i+1)).
            None => (0..256).map(|i| vec![i]).collect(),
            Some(b) => std::iter::once(vec![b])
                .chain(std::iter::once((0..b).collect()))
                .chain((b + 1..256).map(|i| vec![i]))
                .collect(),
        };
        let mut out: Vec<(Distance, &NodeId, &T)> = Vec::with_capacity(n.min(self.len()));
        for group in groups {
            if out.len() >= n {
                break;
            }
            let start = out.len();
            for index in group {
                if let Some(bucket) = self.buckets.get(index) {
                    out.extend(bucket.iter().map(|(id, v)| (id.distance(target), id, v)));
                }
            }
            if let Some(added) = out.get_mut(start..) {
                added.sort_unstable_by_key(|a| a.0);
            }
        }
        out.truncate(n);
        out.into_iter().map(|(_, id, v)| (*id, v.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(bytes: [u8; 32]) -> NodeId {
        NodeId(bytes)
    }

    proptest! {
        #[test]
        fn closest_matches_a_brute_force_sort(
            local in any::<[u8; 32]>(),
            nodes in prop::collection::vec(any::<[u8; 32]>(), 0..200),
            target in any::<[u8; 32]>(),
            n in 1usize..30,
        ) {
            let mut table = RoutingTable::new(id(local));
            let mut kept = Vec::new();
            for node in &nodes {
                if table.insert(id(*node), ()) == Insert::Inserted && !kept.contains(node) {
                    kept.push(*node);
                }
            }
            prop_assert_eq!(table.len(), kept.len());
            let mut want: Vec<NodeId> = kept.iter().map(|b| id(*b)).collect();
            want.sort_by_key(|x| x.distance(&id(target)));
            want.truncate(n);
            let got: Vec<NodeId> = table.closest(&id(target), n).into_iter().map(|(x, _)| x).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn buckets_hold_at_most_k_and_full_names_the_oldest(local in any::<[u8; 32]>(), seeds in prop::collection::vec(any::<u64>(), 0..300)) {
            let mut table = RoutingTable::new(id(local));
            for s in seeds {
                // Ids sharing the local id's first byte's top bit pattern
                // land in few buckets, so buckets fill.
                let mut b = local;
                b[0] ^= 0x80;
                b[24..].copy_from_slice(&s.to_be_bytes());
                match table.insert(id(b), ()) {
                    Insert::Full { oldest } => prop_assert!(table.closest(&id(b), 300).iter().any(|(x, _)| *x == oldest)),
                    Insert::Inserted | Insert::Local | Insert::Crowded => {}
                }
            }
            for bucket in &table.buckets {
                prop_assert!(bucket.len() <= K);
            }
        }
    }

    #[test]
    fn a_bucket_holds_at_most_two_nodes_of_one_prefix() {
        let mut table = RoutingTable::new(id([0; 32]));
        let mut inserted = 0;
        for host in 0..=255u8 {
            let addr = std::net::SocketAddr::from(([203, 0, 113, host], 4000));
            let mut b = [0u8; 32];
            b[0] = 0x80;
            b[31] = host;
            if table.insert(id(b), addr) == Insert::Inserted {
                inserted += 1;
            }
        }
        assert_eq!(inserted, MAX_PER_PREFIX);
        let local = std::net::SocketAddr::from(([10, 0, 0, 1], 4000));
        for n in 0..5u8 {
            let mut b = [0u8; 32];
            b[0] = 0x80;
            b[30] = 1;
            b[31] = n;
            assert_eq!(
                table.insert(id(b), local),
                Insert::Inserted,
                "local: exempt"
            );
        }
    }

    #[test]
    fn the_local_id_is_never_stored_and_seen_nodes_move_to_the_back() {
        let local = id([1; 32]);
        let mut table = RoutingTable::new(local);
        assert_eq!(table.insert(local, ()), Insert::Local);
        let mut far = [1u8; 32];
        far[0] = 0x81;
        let mut ids = Vec::new();
        for i in 0..K as u8 {
            let mut b = far;
            b[31] = i;
            ids.push(id(b));
            assert_eq!(table.insert(id(b), ()), Insert::Inserted);
        }
        let mut extra = far;
        extra[31] = 200;
        assert_eq!(table.insert(id(extra), ()), Insert::Full { oldest: ids[0] });
        // Seen again: no longer the oldest.
        assert_eq!(table.insert(ids[0], ()), Insert::Inserted);
        assert_eq!(table.insert(id(extra), ()), Insert::Full { oldest: ids[1] });
        assert!(table.remove(&ids[1]));
        assert_eq!(table.insert(id(extra), ()), Insert::Inserted);
    }
}
