//! The local link as a discovery source: multicast DNS service discovery
//! (RFC 6762/6763, through the `mdns-sd` crate) with no bootstrap node and
//! no internet.
//!
//! A peer serving a topic registers one service instance of type
//! [`SERVICE_TYPE`] per topic, on the port of the swarm's listening QUIC
//! endpoint, with two TXT properties: `k` (its public key, hex) and `t`
//! (the topic, hex); `mdns-sd` fills in the addresses of each interface it
//! answers on, IPv4 and IPv6. Every swarm browses the type; what it hears
//! goes through [`local_table`](super::local_table) (form checks, bounds,
//! backoff) and, for topics joined as a client, becomes a [`Candidate`]
//! dialled straight at the announced addresses. The announcement is only
//! a hint: the QUIC handshake proves the key.

use std::net::IpAddr;
use std::sync::Weak;
use std::time::Duration;

use hyper_core::PublicKey;
use mdns_sd::{ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};

use super::candidate::{Candidate, Hint};
use super::local_table::{
    Announcement, Subnet, dialable_record_addresses, parse, record_addresses,
};
use super::{Inner, Swarm, lock};
use crate::error::{Error, Result};

/// The DNS-SD service type every hyper peer announces.
pub(crate) const SERVICE_TYPE: &str = "_hyper._udp.local.";
/// How often known local peers of client topics are offered again (after
/// a lost connection or a backoff).
const REOFFER: Duration = Duration::from_secs(2);
/// How often this host's addresses are compared with the last seen.
const ADDRESS_CHECK: Duration = Duration::from_secs(2);

/// The mDNS responder and browser of one swarm.
pub(super) struct LocalDiscovery {
    daemon: ServiceDaemon,
    key: PublicKey,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The instance name of `key`'s announcement of `topic` (at most 63 bytes,
/// as DNS labels must be).
fn instance(key: &PublicKey, topic: &[u8; 32]) -> String {
    format!("{}-{}", hex(&key.0[..12]), hex(&topic[..12]))
}

fn local_error(e: mdns_sd::Error) -> Error {
    Error::Local(e.to_string())
}

impl LocalDiscovery {
    /// Starts the responder and browses [`SERVICE_TYPE`]; the browse
    /// events go to [`run`].
    pub(super) fn start(
        key: PublicKey,
    ) -> Result<(LocalDiscovery, mdns_sd::Receiver<ServiceEvent>)> {
        let daemon = ServiceDaemon::new().map_err(local_error)?;
        let events = daemon.browse(SERVICE_TYPE).map_err(local_error)?;
        Ok((LocalDiscovery { daemon, key }, events))
    }

    /// Announces this peer for `topic`, listening on `port`.
    pub(super) fn announce(&self, topic: &[u8; 32], port: u16) -> Result<()> {
        let host = format!("hyper-{}.local.", hex(&self.key.0[..8]));
        let properties = [("k", hex(&self.key.0)), ("t", hex(topic))];
        let info = ServiceInfo::new(
            SERVICE_TYPE,
            &instance(&self.key, topic),
            &host,
            "",
            port,
            &properties[..],
        )
        .map_err(local_error)?
        .enable_addr_auto();
        self.daemon.register(info).map_err(local_error)
    }

    /// Withdraws the announcement of `topic` (a goodbye packet tells the
    /// link at once).
    pub(super) fn unannounce(&self, topic: &[u8; 32]) {
        let name = format!("{}.{SERVICE_TYPE}", instance(&self.key, topic));
        let _ = self.daemon.unregister(&name);
    }

    /// Says goodbye for every announcement and stops the daemon's thread.
    pub(super) fn stop(&self) {
        let _ = self.daemon.shutdown();
    }
}

/// The IPs of a resolved service, IPv6 ones with their interface index.
fn ips(service: &ResolvedService) -> Vec<(IpAddr, u32)> {
    service
        .get_addresses()
        .iter()
        .map(|ip| match ip {
            ScopedIp::V6(v6) => (IpAddr::V6(*v6.addr()), v6.scope_id().index),
            other => (other.to_ip_addr(), 0),
        })
        .collect()
}

/// The subnets of this host's interfaces now.
pub(super) fn subnets() -> Vec<Subnet> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) => Subnet {
                ip: IpAddr::V4(v4.ip),
                prefix: v4.prefixlen,
            },
            if_addrs::IfAddr::V6(v6) => Subnet {
                ip: IpAddr::V6(v6.ip),
                prefix: v6.prefixlen,
            },
        })
        .collect()
}

/// Reads one resolved service into an announcement.
fn announcement(service: &ResolvedService) -> Option<Announcement> {
    parse(
        service.get_property_val_str("k"),
        service.get_property_val_str("t"),
        service.get_port(),
        ips(service),
        &subnets(),
    )
    .ok()
}

/// Feeds what the link announces into the swarm's table and offers the
/// peers of client topics, until the swarm is gone or the daemon stops.
pub(super) async fn run(weak: Weak<Inner>, events: mdns_sd::Receiver<ServiceEvent>) {
    let mut tick = tokio::time::interval(REOFFER);
    loop {
        let event = tokio::select! {
            event = events.recv_async() => match event {
                Ok(event) => Some(event),
                Err(_) => return,
            },
            _ = tick.tick() => None,
        };
        let Some(inner) = weak.upgrade() else { return };
        let swarm = Swarm { inner };
        match event {
            Some(ServiceEvent::ServiceResolved(service)) => {
                if let Some(found) = announcement(&service) {
                    let now = std::time::Instant::now();
                    let _ =
                        lock(&swarm.inner.local_peers).insert(service.get_fullname(), found, now);
                }
            }
            Some(ServiceEvent::ServiceRemoved(_, name)) => {
                lock(&swarm.inner.local_peers).remove(&name);
                continue;
            }
            Some(_) => continue,
            None => {}
        }
        swarm.offer_local();
    }
}

/// Watches this host's addresses (every 2 s) until the swarm is gone:
/// when one is gained or lost, the swarm goes through
/// [`network`](super::network)'s steps (stranded connections closed, the
/// DHT's address and NAT re-learned, every topic announced again, its
/// DHT records then naming the new LAN addresses, and looked up again);
/// `mdns-sd` follows interface changes on its own.
pub(super) async fn watch_addresses(weak: Weak<Inner>) {
    let mut known = addresses_now();
    let mut tick = tokio::time::interval(ADDRESS_CHECK);
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let now = addresses_now();
        if now != known {
            let gone: Vec<IpAddr> = known
                .iter()
                .filter(|ip| !now.contains(ip))
                .copied()
                .collect();
            known = now;
            inner.network_changed(&gone);
        }
    }
}

/// This host's interface addresses, sorted.
fn addresses_now() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = subnets().into_iter().map(|s| s.ip).collect();
    ips.sort();
    ips.dedup();
    ips
}

impl Swarm {
    /// The local addresses this peer's DHT records name (none with local
    /// discovery off).
    pub(super) fn record_addresses(&self) -> Vec<std::net::SocketAddr> {
        match (self.inner.config.local, self.inner.listener.local_addr()) {
            (true, Ok(listen)) => record_addresses(&subnets(), listen.port()),
            _ => Vec::new(),
        }
    }

    /// The local addresses a record of another peer names that this host's
    /// networks hold (none with local discovery off).
    pub(super) fn dialable(&self, named: &[crate::messages::Address]) -> Vec<std::net::SocketAddr> {
        if !self.inner.config.local {
            return Vec::new();
        }
        let named: Vec<std::net::SocketAddr> =
            named.iter().filter_map(crate::codec::socket_addr).collect();
        dialable_record_addresses(&named, &subnets())
    }

    /// Offers every local peer of every client topic that may be dialled.
    pub(super) fn offer_local(&self) {
        let topics: Vec<([u8; 32], Option<PublicKey>)> = lock(&self.inner.topics)
            .iter()
            .filter(|(_, t)| t.client && t.identity.is_none())
            .map(|(topic, t)| (*topic, t.only))
            .collect();
        let now = std::time::Instant::now();
        for (topic, only) in topics {
            let found = lock(&self.inner.local_peers).candidates(&topic, now);
            for (public_key, addresses) in found {
                if only.is_some_and(|key| key != public_key) {
                    continue;
                }
                self.offer(Candidate {
                    public_key,
                    topic,
                    hint: Hint::Local(addresses),
                });
            }
        }
    }
}
