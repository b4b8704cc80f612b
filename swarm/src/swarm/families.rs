//! Dual stack: one DHT node per address family, each with its own socket,
//! routing table and id (ids derive from the address), bootstrapped from
//! the bootstrap nodes of its family. The two DHTs are separate networks:
//! a record announced on one is found only there, and a peer found there
//! is reached (connect request, hole punching, relay) on that family. The
//! listening QUIC endpoint is one dual-stack socket for both.

use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

use tokio::sync::mpsc;

use super::config::SwarmConfig;
use crate::dht::Dht;
use crate::error::Result;
use crate::node::Config;
use crate::query::FoundRecord;

/// An IP address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// IPv4 (an IPv4-mapped IPv6 address counts as IPv4).
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of `addr`; an IPv4-mapped IPv6 address is IPv4's.
    pub fn of(addr: &SocketAddr) -> Family {
        if addr.ip().to_canonical().is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// `addr` with an IPv4-mapped IPv6 address written as IPv4.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The swarm's DHT nodes: at most one per family.
#[derive(Clone, Default)]
pub(super) struct Dhts {
    v4: Option<Dht>,
    v6: Option<Dht>,
}

impl Dhts {
    /// Starts a node for each family that is on in `config`
    /// ([`SwarmConfig::ipv4`], [`SwarmConfig::ipv6`]) and has bootstrap
    /// nodes. A family whose socket cannot be bound (no such address on
    /// this host) stays off; the error is returned only if no family that
    /// was wanted could start.
    pub(super) async fn start(config: &SwarmConfig) -> Result<Dhts> {
        if !config.dht {
            return Ok(Dhts::default());
        }
        let mut failed = None;
        let mut started = Dhts::default();
        let wanted = [
            (Family::V4, SocketAddr::V4(config.listen_v4), config.ipv4),
            (Family::V6, SocketAddr::V6(config.listen_v6), config.ipv6),
        ];
        for (family, listen, on) in wanted {
            let bootstrap: Vec<SocketAddr> = config
                .bootstrap
                .iter()
                .map(|a| canonical(*a))
                .filter(|a| Family::of(a) == family)
                .collect();
            if !on || bootstrap.is_empty() {
                continue;
            }
            let node = Config {
                bootstrap,
                reachability: config.reachability,
                relay: config.relay,
                ..Config::default()
            };
            match Dht::bind(listen, node).await {
                Ok(dht) => match family {
                    Family::V4 => started.v4 = Some(dht),
                    Family::V6 => started.v6 = Some(dht),
                },
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            Some(e) if started.is_empty() => Err(e),
            _ => Ok(started),
        }
    }

    /// The node of `family`, if it runs.
    pub(super) fn get(&self, family: Family) -> Option<&Dht> {
        match family {
            Family::V4 => self.v4.as_ref(),
            Family::V6 => self.v6.as_ref(),
        }
    }

    /// The node of `addr`'s family, if it runs.
    pub(super) fn for_addr(&self, addr: &SocketAddr) -> Option<&Dht> {
        self.get(Family::of(addr))
    }

    /// The nodes running, IPv4's first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Family, &Dht)> {
        let v4 = self.v4.iter().map(|d| (Family::V4, d));
        v4.chain(self.v6.iter().map(|d| (Family::V6, d)))
    }

    /// Whether no node runs.
    pub(super) fn is_empty(&self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }

    /// Runs `f` on every running node at once; what each returned.
    pub(super) async fn each<T, F, Fut>(&self, f: F) -> Vec<(Family, T)>
    where
        F: Fn(Family, Dht) -> Fut,
        Fut: Future<Output = T>,
    {
        let on = |family: Family| {
            let dht = self.get(family).cloned();
            let f = &f;
            async move {
                match dht {
                    Some(dht) => Some((family, f(family, dht).await)),
                    None => None,
                }
            }
        };
        let (v4, v6) = tokio::join!(on(Family::V4), on(Family::V6));
        v4.into_iter().chain(v6).collect()
    }

    /// Looks `topic` up on every running node at once: the records of
    /// both, as they are found, on one receiver that ends when every
    /// lookup has.
    pub(super) fn lookup(&self, topic: [u8; 32]) -> mpsc::UnboundedReceiver<FoundRecord> {
        let (found, merged) = mpsc::unbounded_channel();
        for (_, dht) in self.iter() {
            let Ok((mut records, _done)) = dht.lookup(topic) else {
                continue;
            };
            let found = found.clone();
            tokio::spawn(async move {
                while let Some(record) = records.recv().await {
                    if found.send(record).is_err() {
                        return;
                    }
                }
            });
        }
        merged
    }
}

/// The default DHT sockets: any address of the family, any port.
pub(super) fn any_v4() -> SocketAddrV4 {
    SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0)
}

/// See [`any_v4`].
pub(super) fn any_v6() -> SocketAddrV6 {
    SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, 0, 0, 0)
}
