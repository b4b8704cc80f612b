//! An iterative Kademlia lookup as a state machine (after libp2p's
//! `ClosestPeersIter`): no I/O, time passed in. Ask [`Lookup::next`] what
//! to do, send the queries it names, and report each answer with
//! [`Lookup::on_success`] (with the closer nodes the peer returned) or
//! [`Lookup::on_failure`].

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::id::{Distance, NodeId};
use crate::kbucket::K;

/// Queries in flight at once.
pub const PARALLELISM: usize = 10;

/// What the caller should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupState {
    /// Send a query to this node.
    Query(NodeId),
    /// Wait for answers (nothing more to send now).
    Waiting,
    /// [`PARALLELISM`] queries are in flight; wait.
    AtCapacity,
    /// Done: the `K` closest nodes that answered are in [`Lookup::result`].
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerState {
    NotContacted,
    Waiting { deadline: Instant },
    Succeeded,
    Failed,
}

/// One iterative lookup of the nodes closest to a target.
pub struct Lookup {
    target: NodeId,
    /// Candidates by distance: id, state, and how many answers led to it
    /// (0 for a seed).
    peers: BTreeMap<Distance, (NodeId, PeerState, usize)>,
    timeout: Duration,
}

impl Lookup {
    /// A lookup of `target`, starting from `seeds` (usually the routing
    /// table's closest), each query timing out after `timeout`.
    pub fn new(target: NodeId, seeds: impl IntoIterator<Item = NodeId>, timeout: Duration) -> Self {
        let mut lookup = Lookup {
            target,
            peers: BTreeMap::new(),
            timeout,
        };
        lookup.add(seeds, 0);
        lookup
    }

    fn add(&mut self, nodes: impl IntoIterator<Item = NodeId>, depth: usize) {
        for id in nodes {
            self.peers.entry(id.distance(&self.target)).or_insert((
                id,
                PeerState::NotContacted,
                depth,
            ));
        }
    }

    /// The target.
    pub fn target(&self) -> NodeId {
        self.target
    }

    /// What to do at `now`: queries past their deadline count as failed.
    pub fn next(&mut self, now: Instant) -> LookupState {
        let mut in_flight = 0;
        for (_, state, _) in self.peers.values_mut() {
            if let PeerState::Waiting { deadline } = *state {
                if deadline <= now {
                    *state = PeerState::Failed;
                } else {
                    in_flight += 1;
                }
            }
        }
        // Walk the live candidates closest first: done when the K closest
        // have all answered; a query still out among them holds the finish;
        // otherwise query the closest not yet asked.
        let mut live = 0;
        let mut waiting = false;
        for (id, state, _) in self.peers.values_mut() {
            match *state {
                PeerState::Failed => continue,
                PeerState::Succeeded => live += 1,
                PeerState::Waiting { .. } => {
                    live += 1;
                    waiting = true;
                }
                PeerState::NotContacted => {
                    if in_flight >= PARALLELISM {
                        return LookupState::AtCapacity;
                    }
                    *state = PeerState::Waiting {
                        deadline: now + self.timeout,
                    };
                    return LookupState::Query(*id);
                }
            }
            if live == K {
                break;
            }
        }
        if waiting || in_flight > 0 {
            LookupState::Waiting
        } else {
            LookupState::Finished
        }
    }

    /// `peer` answered with the nodes it knows closest to the target.
    pub fn on_success(&mut self, peer: &NodeId, closer: impl IntoIterator<Item = NodeId>) {
        let mut depth = 0;
        if let Some((_, state, at)) = self.peers.get_mut(&peer.distance(&self.target))
            && matches!(state, PeerState::Waiting { .. } | PeerState::Failed)
        {
            *state = PeerState::Succeeded;
            depth = *at;
        }
        self.add(closer, depth + 1);
    }

    /// `peer` did not answer, or answered with an error.
    pub fn on_failure(&mut self, peer: &NodeId) {
        if let Some((_, state, _)) = self.peers.get_mut(&peer.distance(&self.target)) {
            *state = PeerState::Failed;
        }
    }

    /// The (up to) `K` closest nodes that answered, closest first.
    pub fn result(&self) -> Vec<NodeId> {
        self.peers
            .values()
            .filter(|(_, s, _)| *s == PeerState::Succeeded)
            .map(|(id, _, _)| *id)
            .take(K)
            .collect()
    }

    /// Hops: the longest chain of answers that led to a node of the result
    /// (1 when the seeds were already the closest).
    pub fn hops(&self) -> usize {
        self.peers
            .values()
            .filter(|(_, s, _)| *s == PeerState::Succeeded)
            .take(K)
            .map(|(_, _, depth)| depth + 1)
            .max()
            .unwrap_or(0)
    }

    /// Whether any query is still waiting for an answer.
    pub fn in_flight(&self) -> bool {
        self.peers
            .values()
            .any(|(_, s, _)| matches!(s, PeerState::Waiting { .. }))
    }
}
