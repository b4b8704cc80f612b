//! Network changes: what the swarm does when this host's addresses change
//! (an address gained or lost, seen by polling the interfaces every 2 s)
//! and when it resumes from [`Swarm::suspend`](super::Swarm::suspend).
//!
//! - **Sockets.** Every socket the swarm opens (the DHT sockets with the
//!   default [`SwarmConfig::listen_v4`](super::SwarmConfig::listen_v4)
//!   and [`SwarmConfig::listen_v6`](super::SwarmConfig::listen_v6), the
//!   listening endpoint, each punched connection's socket) is bound to
//!   the unspecified address, so none loses its address: the kernel picks
//!   the new source address for the next datagram. There is nothing to
//!   rebind. (A DHT socket bound to a specific address by configuration is
//!   not rebound.)
//! - **Connections this side dialled** (QUIC clients) carry on: their
//!   packets leave from the new address, and the peer (a QUIC server,
//!   which allows migration) validates the new path and answers there.
//!   Behind a NAT whose filter the new mapping does not get through, the
//!   connection times out and the peer is dialled again.
//! - **Connections this side accepted** (QUIC servers) send from the
//!   address the handshake arrived at and cannot migrate (a QUIC client
//!   drops datagrams from an address it did not dial): those whose local
//!   address is gone are closed at once, so that the peer table forgets
//!   them and their topics look up again. The peer sees its connection
//!   time out, looks the topic up, and dials this side's new address.
//! - **The NAT kind and public address.** Each DHT node (one per family)
//!   forgets its observed address and the id bound to it and walks its
//!   network again
//!   ([`Dht::network_changed`](crate::Dht::network_changed)); every punch
//!   attempt classifies its NAT afresh on its fresh socket anyway.
//! - **Announcements.** Every topic announces again (once the DHT's walk
//!   has re-learned the public address, so the records name the new one
//!   and the nodes holding them pass connect requests to where the
//!   announcement now comes from) and looks up again at once.

use std::net::IpAddr;

use super::{Inner, lock};

impl Inner {
    /// This host's addresses changed (`gone`: the ones lost): does what
    /// [`Inner::relearn`] does, counts the change and wakes every topic to
    /// announce and look up again.
    pub(super) fn network_changed(&self, gone: &[IpAddr]) {
        self.counters.moved();
        self.relearn(gone);
        self.moved.send_modify(|generation| *generation += 1);
    }

    /// Closes accepted connections whose local address is among `gone` and
    /// makes the DHT re-learn its public address and NAT (announcements
    /// made from now on wait for that).
    pub(super) fn relearn(&self, gone: &[IpAddr]) {
        for live in lock(&self.peers).values() {
            let stranded = live
                .connection
                .local_ip()
                .is_some_and(|ip| gone.contains(&ip.to_canonical()));
            if stranded {
                live.close(b"local address gone");
            }
        }
        for (_, dht) in self.dhts.iter() {
            let _ = dht.network_changed();
        }
    }
}
