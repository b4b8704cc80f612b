//! This node's own address and id: votes from answers to its requests
//! (one per /24 or /64), reachability checks, and claiming the id bound to
//! the address the votes agree on.

use std::net::SocketAddr;
use std::time::Instant;

use super::{CHECK_MAX, Event, Node, OBSERVERS, Purpose, Reachability};
use crate::id::NodeId;
use crate::kbucket::RoutingTable;
use crate::limits::Prefix;
use crate::messages::{Body, CheckReachable};

impl Node {
    /// A reporter said our address is `to`.
    ///
    /// Called only for answers to our requests (a round trip), and the
    /// reporters vote per /24 or /64: the latest report of a prefix
    /// replaces its earlier one, so one network casts one vote.
    pub(super) fn observe(&mut self, now: Instant, reporter: SocketAddr, to: Option<SocketAddr>) {
        let Some(to) = to else {
            return;
        };
        let prefix = Prefix::of(reporter.ip());
        self.observed.retain(|(r, _)| *r != prefix);
        if self.observed.len() >= OBSERVERS {
            self.observed.pop_back();
        }
        self.observed.push_front((prefix, to));
        // The address most reporters agree on.
        let mut best: Option<(SocketAddr, usize)> = None;
        for (_, addr) in &self.observed {
            let votes = self.observed.iter().filter(|(_, a)| a == addr).count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((*addr, votes));
            }
        }
        let Some((addr, _)) = best else {
            return;
        };
        let first = self.public_address.is_none();
        self.public_address = Some(addr);
        match self.config.reachability {
            Reachability::Public if self.claimed.is_none() => self.claim(addr),
            Reachability::Auto if first && self.claimed.is_none() => self.next_check = Some(now),
            _ => {}
        }
    }

    /// A request came from an address this node never wrote to, saying it
    /// was sent to `to`: someone we never wrote to got through, so this
    /// node is reachable, if `to` is the address our own requests' answers
    /// agree on (one packet's `to` cannot choose our id).
    pub(super) fn reached_unsolicited(&mut self, now: Instant, to: Option<SocketAddr>) {
        if self.claimed.is_some() || self.config.reachability != Reachability::Auto {
            return;
        }
        if let Some(to) = to.filter(|to| self.public_address == Some(*to)) {
            self.claim(to);
            self.events.push_back(Event::Reachable {
                id: NodeId::for_address(to),
                address: to,
            });
            self.bootstrap(now);
        }
    }

    /// This host's addresses changed (a new network, a resumed laptop):
    /// forgets what answers said our address is and the id bound to it
    /// (unless the address was configured), and walks the network again
    /// at once. Until that walk ends the node counts as not bootstrapped,
    /// so an announcement waits for the fresh votes instead of naming the
    /// old address; with [`Reachability::Auto`] reachability is checked
    /// anew once the first vote is in. The routing table is kept: its
    /// nodes have not moved.
    pub fn network_changed(&mut self, now: Instant) {
        self.observed.clear();
        self.public_address = None;
        if self.config.public_address.is_none() {
            self.claimed = None;
        }
        self.next_check = None;
        self.check_every = super::CHECK_FIRST;
        self.bootstrapped = false;
        self.bootstrap(now);
    }

    /// Takes the id bound to `addr` and re-keys the table around it.
    pub(super) fn claim(&mut self, addr: SocketAddr) {
        let id = NodeId::for_address(addr);
        self.claimed = Some(id);
        self.public_address = Some(addr);
        let old = std::mem::replace(&mut self.table, RoutingTable::new(id));
        for (node, at) in old.closest(&id, usize::MAX) {
            let _ = self.table.insert(node, at);
        }
    }

    /// Asks up to two nodes to have someone else ping us.
    pub(super) fn check_reachable(&mut self, now: Instant) {
        if self.claimed.is_some() || self.config.reachability != Reachability::Auto {
            return;
        }
        let mut asked: Vec<SocketAddr> = self
            .table
            .closest(&self.table.local(), 2)
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        for addr in &self.config.bootstrap {
            if asked.len() >= 2 {
                break;
            }
            if !asked.contains(addr) {
                asked.push(*addr);
            }
        }
        for to in asked {
            self.send_request(
                now,
                to,
                Body::CheckReachable(CheckReachable {}),
                Purpose::CheckReachable,
            );
        }
        self.next_check = Some(now + self.check_every);
        self.check_every = (self.check_every * 2).min(CHECK_MAX);
    }
}
