//! What the local link announced, as a bounded table (pure: no sockets, time
//! passed in).
//!
//! An announcement is only a hint that a key might be reached at some
//! addresses for a topic: nothing in it is trusted, because the QUIC
//! handshake later proves the key. So the table only has to stay small and
//! fair under hostile input:
//!
//! - an announcement whose key or topic is not 64 hex digits, whose port
//!   is 0, or that has no usable address is refused ([`parse`]); usable
//!   means on this host's links: loopback, IPv6 link-local, or inside the
//!   subnet of one of this host's interfaces, so an announcement cannot
//!   send dials off the link;
//! - at most [`MAX_ENTRIES`] announcements are kept (the oldest is
//!   forgotten first), at most [`MAX_PER_IP`] of them naming one IP, and a
//!   key's addresses are capped at [`MAX_ADDRESSES`];
//! - several announcements may claim one key (a spoofer copying an honest
//!   peer's key): their addresses are merged, so the honest address is
//!   dialled beside the forged one, and only the handshake decides;
//! - a key whose dial failed is not offered again until its backoff
//!   (1 s doubling to 60 s) has passed, so a flood of keys that answer
//!   nothing is dialled once each and then rests.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use hyper_core::PublicKey;

/// Announcements kept at most.
pub(crate) const MAX_ENTRIES: usize = 128;
/// Announcements kept at most that name one IP address.
pub(crate) const MAX_PER_IP: usize = 16;
/// Addresses dialled at most for one key.
pub(crate) const MAX_ADDRESSES: usize = 16;
/// The first pause after a failed dial.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest pause after failed dials.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One announcement from the link, checked for form only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// The key the announcer claims (unproven).
    pub(crate) public_key: PublicKey,
    /// The topic it claims to serve.
    pub(crate) topic: [u8; 32],
    /// Where it says it listens for QUIC.
    pub(crate) addresses: Vec<SocketAddr>,
}

/// Why an announcement was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The key is missing or not 64 hex digits.
    Key,
    /// The topic is missing or not 64 hex digits.
    Topic,
    /// Port 0, or no address that could be dialled.
    Address,
    /// The announcer's IP already fills its share of the table.
    Crowded,
}

/// A subnet of one of this host's interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subnet {
    /// The interface's address.
    pub(crate) ip: IpAddr,
    /// The prefix length of its subnet.
    pub(crate) prefix: u8,
}

impl Subnet {
    /// Whether `ip` lies inside this subnet.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let (ours, theirs, bits) = match (self.ip, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix).min(bits);
        let shift = bits - prefix;
        ours.checked_shr(shift).unwrap_or(0) == theirs.checked_shr(shift).unwrap_or(0)
    }
}

/// Whether a peer at `ip` can be on one of this host's links.
fn on_link(ip: IpAddr, link: &[Subnet]) -> bool {
    let special = match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local(),
    };
    special || link.iter().any(|s| s.contains(ip))
}

/// Checks the form of an announcement: `key` and `topic` as hex, `port`,
/// and the announcer's IPs (an IPv6 address with its interface index, for
/// link-local ones). Unspecified, multicast and broadcast IPs, and IPs on
/// none of this host's links (`link`), are dropped.
pub(crate) fn parse(
    key: Option<&str>,
    topic: Option<&str>,
    port: u16,
    ips: impl IntoIterator<Item = (IpAddr, u32)>,
    link: &[Subnet],
) -> Result<Announcement, Refused> {
    let public_key = key
        .and_then(|k| k.parse::<PublicKey>().ok())
        .ok_or(Refused::Key)?;
    let topic = topic
        .and_then(|t| t.parse::<hyper_core::DiscoveryKey>().ok())
        .ok_or(Refused::Topic)?
        .0;
    if port == 0 {
        return Err(Refused::Address);
    }
    let mut addresses: Vec<SocketAddr> = Vec::new();
    for (ip, scope) in ips {
        let usable = !ip.is_unspecified()
            && !ip.is_multicast()
            && ip != IpAddr::from(std::net::Ipv4Addr::BROADCAST)
            && on_link(ip, link);
        let addr = match ip {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))
            }
            ip => SocketAddr::new(ip, port),
        };
        if usable && !addresses.contains(&addr) && addresses.len() < MAX_ADDRESSES {
            addresses.push(addr);
        }
    }
    if addresses.is_empty() {
        return Err(Refused::Address);
    }
    // Loopback first: on one machine it always works; then IPv4, then IPv6.
    addresses.sort_by_key(|a| (!a.ip().is_loopback(), a.is_ipv6()));
    Ok(Announcement {
        public_key,
        topic,
        addresses,
    })
}

/// A record names at most this many local addresses.
pub(crate) const MAX_RECORD_ADDRESSES: usize = 4;

/// The addresses a DHT record names as this peer's own networks: each
/// interface address but loopback, IPv6 link-local and unspecified ones
/// (meaningless to another host), IPv4 first, at most
/// [`MAX_RECORD_ADDRESSES`], with `port`.
pub(crate) fn record_addresses(link: &[Subnet], port: u16) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = link
        .iter()
        .map(|s| s.ip)
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified() && !ip.is_multicast())
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    out.sort_by_key(SocketAddr::is_ipv6);
    out.dedup();
    out.truncate(MAX_RECORD_ADDRESSES);
    out
}

/// Of the local addresses a DHT record names, those worth dialling from
/// here: inside one of this host's subnets (`link`) and not loopback (a
/// record comes from afar; it must not aim dials at this host itself), at
/// most [`MAX_RECORD_ADDRESSES`].
pub(crate) fn dialable_record_addresses(named: &[SocketAddr], link: &[Subnet]) -> Vec<SocketAddr> {
    named
        .iter()
        .filter(|a| a.port() != 0 && !a.ip().is_loopback())
        .filter(|a| link.iter().any(|s| s.contains(a.ip())))
        .take(MAX_RECORD_ADDRESSES)
        .copied()
        .collect()
}

struct Entry {
    announcement: Announcement,
    seen: Instant,
}

/// The announcements heard on the link, by the name they were announced
/// under, and the dial backoff per key.
#[derive(Default)]
pub(crate) struct LocalPeers {
    entries: HashMap<String, Entry>,
    backoff: HashMap<PublicKey, (Instant, Duration)>,
}

impl LocalPeers {
    /// Records `announcement` under `name` (a newer one under the same name
    /// replaces it). Refuses it if its IPs already fill their share (the
    /// entry it would replace not counted); makes room by forgetting the
    /// oldest entry when full.
    pub(crate) fn insert(
        &mut self,
        name: &str,
        announcement: Announcement,
        now: Instant,
    ) -> Result<(), Refused> {
        let crowded = announcement.addresses.iter().any(|a| {
            self.entries
                .iter()
                .filter(|(n, e)| {
                    n.as_str() != name && e.announcement.addresses.iter().any(|b| b.ip() == a.ip())
                })
                .count()
                >= MAX_PER_IP
        });
        if crowded {
            return Err(Refused::Crowded);
        }
        if !self.entries.contains_key(name)
            && self.entries.len() >= MAX_ENTRIES
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.seen)
                .map(|(n, _)| n.clone())
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(
            name.to_string(),
            Entry {
                announcement,
                seen: now,
            },
        );
        let keys: Vec<PublicKey> = self.backoff.keys().copied().collect();
        for key in keys {
            if !self.knows(&key) {
                self.backoff.remove(&key);
            }
        }
        Ok(())
    }

    /// Forgets the announcement under `name` (it said goodbye or expired).
    pub(crate) fn remove(&mut self, name: &str) {
        if let Some(entry) = self.entries.remove(name) {
            let key = entry.announcement.public_key;
            if !self.knows(&key) {
                self.backoff.remove(&key);
            }
        }
    }

    fn knows(&self, key: &PublicKey) -> bool {
        self.entries
            .values()
            .any(|e| e.announcement.public_key == *key)
    }

    /// How many announcements of `topic` are kept.
    pub(crate) fn count(&self, topic: &[u8; 32]) -> usize {
        self.entries
            .values()
            .filter(|e| e.announcement.topic == *topic)
            .count()
    }

    /// The keys announced for `topic` that may be dialled at `now`, each
    /// with every address announced for it (capped at [`MAX_ADDRESSES`]).
    pub(crate) fn candidates(
        &self,
        topic: &[u8; 32],
        now: Instant,
    ) -> Vec<(PublicKey, Vec<SocketAddr>)> {
        let mut by_key: Vec<(PublicKey, Vec<SocketAddr>)> = Vec::new();
        let mut entries: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.announcement.topic == *topic)
            .collect();
        // Newest first: a peer that just appeared goes ahead of a flood
        // heard earlier.
        entries.sort_by_key(|e| std::cmp::Reverse(e.seen));
        for entry in entries {
            let key = entry.announcement.public_key;
            if self.backoff.get(&key).is_some_and(|(at, _)| now < *at) {
                continue;
            }
            let slot = match by_key.iter().position(|(k, _)| *k == key) {
                Some(i) => i,
                None => {
                    by_key.push((key, Vec::new()));
                    by_key.len() - 1
                }
            };
            if let Some((_, addresses)) = by_key.get_mut(slot) {
                for a in &entry.announcement.addresses {
                    if !addresses.contains(a) && addresses.len() < MAX_ADDRESSES {
                        addresses.push(*a);
                    }
                }
            }
        }
        by_key
    }

    /// A dial to `key` failed: rest it, longer each time.
    pub(crate) fn failed(&mut self, key: &PublicKey, now: Instant) {
        if !self.knows(key) {
            return;
        }
        let delay = self
            .backoff
            .get(key)
            .map_or(BACKOFF_FIRST, |(_, d)| (*d * 2).min(BACKOFF_MAX));
        self.backoff.insert(*key, (now + delay, delay));
    }

    /// A dial to `key` succeeded: no more rest.
    pub(crate) fn succeeded(&mut self, key: &PublicKey) {
        self.backoff.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOPIC: [u8; 32] = [7; 32];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// 10.0.0.0/8 and 192.168.1.0/24 are on the link in these tests.
    const LINK: [Subnet; 2] = [
        Subnet {
            ip: IpAddr::V4(std::net::Ipv4Addr::new(10, 9, 9, 9)),
            prefix: 8,
        },
        Subnet {
            ip: IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 1)),
            prefix: 24,
        },
    ];

    fn announcement(key: u8, ip: [u8; 4], port: u16) -> Announcement {
        parse(
            Some(&hex(&[key; 32])),
            Some(&hex(&TOPIC)),
            port,
            [(IpAddr::from(ip), 0)],
            &LINK,
        )
        .expect("well formed")
    }

    #[test]
    fn only_addresses_on_the_link_are_kept() {
        let key = hex(&[1; 32]);
        let topic = hex(&TOPIC);
        let off = [
            (IpAddr::from([192, 168, 2, 1]), 0),
            (IpAddr::from([8, 8, 8, 8]), 0),
            ("2001:db8::1".parse().expect("ip"), 0),
        ];
        assert_eq!(
            parse(Some(&key), Some(&topic), 1, off, &LINK).err(),
            Some(Refused::Address)
        );
        let on = [
            (IpAddr::from([192, 168, 1, 200]), 0),
            (IpAddr::from([127, 0, 0, 1]), 0),
            ("::1".parse().expect("ip"), 0),
        ];
        let ok = parse(Some(&key), Some(&topic), 1, on, &LINK).expect("ok");
        assert_eq!(ok.addresses.len(), 3);
        let v6 = Subnet {
            ip: "fd00::2".parse().expect("ip"),
            prefix: 64,
        };
        assert!(v6.contains("fd00::99".parse().expect("ip")));
        assert!(!v6.contains("fd00:0:0:1::99".parse().expect("ip")));
        assert!(!v6.contains(IpAddr::from([10, 0, 0, 1])));
        let all = Subnet {
            ip: IpAddr::from([10, 0, 0, 1]),
            prefix: 0,
        };
        assert!(all.contains(IpAddr::from([1, 2, 3, 4])));
    }

    #[test]
    fn parse_checks_every_field() {
        let key = hex(&[1; 32]);
        let topic = hex(&TOPIC);
        let ip = [(IpAddr::from([192, 168, 1, 2]), 0)];
        assert_eq!(
            parse(None, Some(&topic), 1, ip, &LINK).err(),
            Some(Refused::Key)
        );
        assert_eq!(
            parse(Some("zz"), Some(&topic), 1, ip, &LINK).err(),
            Some(Refused::Key)
        );
        assert_eq!(
            parse(Some(&key), Some(&key[1..]), 1, ip, &LINK).err(),
            Some(Refused::Topic)
        );
        assert_eq!(
            parse(Some(&key), Some(&topic), 0, ip, &LINK).err(),
            Some(Refused::Address)
        );
        let junk = [
            (IpAddr::from([0, 0, 0, 0]), 0),
            (IpAddr::from([224, 0, 0, 251]), 0),
            (IpAddr::from([255, 255, 255, 255]), 0),
        ];
        assert_eq!(
            parse(Some(&key), Some(&topic), 1, junk, &LINK).err(),
            Some(Refused::Address)
        );
        let ok = parse(Some(&key), Some(&topic), 9, ip, &LINK).expect("ok");
        assert_eq!(ok.public_key, PublicKey([1; 32]));
        assert_eq!(ok.addresses, vec![SocketAddr::from(([192, 168, 1, 2], 9))]);
    }

    #[test]
    fn link_local_ipv6_keeps_its_interface_and_loopback_comes_first() {
        let fe80: IpAddr = "fe80::1".parse().expect("ip");
        let ok = parse(
            Some(&hex(&[1; 32])),
            Some(&hex(&TOPIC)),
            9,
            [
                (fe80, 3),
                (IpAddr::from([10, 0, 0, 1]), 0),
                (IpAddr::from([127, 0, 0, 1]), 0),
            ],
            &LINK,
        )
        .expect("ok");
        assert_eq!(ok.addresses.len(), 3);
        assert!(ok.addresses[0].ip().is_loopback());
        assert_eq!(ok.addresses[1], SocketAddr::from(([10, 0, 0, 1], 9)));
        match ok.addresses[2] {
            SocketAddr::V6(v6) => assert_eq!(v6.scope_id(), 3),
            other => panic!("expected IPv6, got {other}"),
        }
    }

    #[test]
    fn a_spoofed_key_merges_with_the_honest_addresses() {
        let now = Instant::now();
        let mut table = LocalPeers::default();
        table
            .insert("honest", announcement(1, [10, 0, 0, 1], 5000), now)
            .expect("insert");
        table
            .insert("spoof", announcement(1, [10, 0, 0, 66], 6666), now)
            .expect("insert");
        let found = table.candidates(&TOPIC, now);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].1.len(), 2);
        assert!(
            found[0]
                .1
                .contains(&SocketAddr::from(([10, 0, 0, 1], 5000)))
        );
    }

    #[test]
    fn a_flood_stays_bounded_and_one_ip_gets_its_share() {
        let now = Instant::now();
        let mut table = LocalPeers::default();
        let mut refused = 0;
        for i in 0..100u8 {
            if table
                .insert(
                    &format!("flood{i}"),
                    announcement(i, [10, 0, 0, 66], 7000),
                    now,
                )
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(table.count(&TOPIC), MAX_PER_IP);
        assert_eq!(refused, 100 - MAX_PER_IP);
        // Many IPs: the table holds MAX_ENTRIES, the newest kept.
        for i in 0..=255u8 {
            let at = now + Duration::from_millis(u64::from(i));
            let _ = table.insert(
                &format!("wide{i}"),
                announcement(i, [10, 1, 0, i], 7000),
                at,
            );
        }
        assert_eq!(table.entries.len(), MAX_ENTRIES);
        assert!(table.entries.contains_key("wide255"));
        assert!(!table.entries.contains_key("flood0"));
    }

    #[test]
    fn announcing_again_under_a_kept_name_cannot_crowd_one_ip() {
        let now = Instant::now();
        let mut table = LocalPeers::default();
        // Entries at IPs of their own, then each announced again at one IP.
        for i in 0..40u8 {
            table
                .insert(&format!("n{i}"), announcement(i, [10, 2, 0, i], 7000), now)
                .expect("insert");
        }
        let mut refused = 0;
        for i in 0..40u8 {
            if table
                .insert(&format!("n{i}"), announcement(i, [10, 0, 0, 66], 7000), now)
                .is_err()
            {
                refused += 1;
            }
        }
        let at_one_ip = table
            .entries
            .values()
            .filter(|e| e.announcement.addresses[0].ip() == IpAddr::from([10, 0, 0, 66]))
            .count();
        assert_eq!(at_one_ip, MAX_PER_IP);
        assert_eq!(refused, 40 - MAX_PER_IP);
        // An entry already counted there may still be announced again.
        let kept = table
            .entries
            .iter()
            .find(|(_, e)| e.announcement.addresses[0].ip() == IpAddr::from([10, 0, 0, 66]))
            .map(|(n, e)| (n.clone(), e.announcement.clone()))
            .expect("one at the IP");
        table.insert(&kept.0, kept.1, now).expect("refreshed");
    }

    #[test]
    fn failures_back_off_and_success_clears_it() {
        let now = Instant::now();
        let mut table = LocalPeers::default();
        table
            .insert("a", announcement(1, [10, 0, 0, 1], 5000), now)
            .expect("insert");
        let key = PublicKey([1; 32]);
        table.failed(&key, now);
        assert!(table.candidates(&TOPIC, now).is_empty());
        assert_eq!(table.candidates(&TOPIC, now + BACKOFF_FIRST).len(), 1);
        table.failed(&key, now);
        assert!(table.candidates(&TOPIC, now + BACKOFF_FIRST).is_empty());
        table.succeeded(&key);
        assert_eq!(table.candidates(&TOPIC, now).len(), 1);
        assert!(table.candidates(&[8; 32], now).is_empty());
        table.remove("a");
        assert!(table.candidates(&TOPIC, now).is_empty());
        assert!(table.backoff.is_empty());
    }

    #[test]
    fn records_name_own_networks_and_dialers_keep_only_their_own() {
        let link = [
            Subnet {
                ip: IpAddr::from([127, 0, 0, 1]),
                prefix: 8,
            },
            Subnet {
                ip: "fe80::1".parse().expect("ip"),
                prefix: 64,
            },
            Subnet {
                ip: "fd00::2".parse().expect("ip"),
                prefix: 64,
            },
            Subnet {
                ip: IpAddr::from([192, 168, 1, 7]),
                prefix: 24,
            },
        ];
        let named = record_addresses(&link, 4000);
        assert_eq!(
            named,
            vec![
                SocketAddr::from(([192, 168, 1, 7], 4000)),
                "[fd00::2]:4000".parse().expect("addr"),
            ]
        );
        // A dialer on 192.168.1.0/24 only keeps the IPv4 one; loopback
        // named by a record is never dialled.
        let mine = [Subnet {
            ip: IpAddr::from([192, 168, 1, 20]),
            prefix: 24,
        }];
        let mut hostile = named.clone();
        hostile.push(SocketAddr::from(([127, 0, 0, 1], 22)));
        hostile.push(SocketAddr::from(([192, 168, 1, 30], 0)));
        assert_eq!(
            dialable_record_addresses(&hostile, &mine),
            vec![SocketAddr::from(([192, 168, 1, 7], 4000))]
        );
        assert!(dialable_record_addresses(&named, &[]).is_empty());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_bounds_addresses(
            key in ".{0,80}",
            topic in "[0-9a-f]{0,70}",
            port in any::<u16>(),
            ips in proptest::collection::vec((any::<u128>(), any::<u32>()), 0..40),
        ) {
            let ips = ips.into_iter().map(|(bits, scope)| {
                let ip = if bits % 2 == 0 {
                    IpAddr::from(std::net::Ipv6Addr::from(bits))
                } else {
                    IpAddr::from(std::net::Ipv4Addr::from(bits as u32))
                };
                (ip, scope)
            });
            if let Ok(a) = parse(Some(&key), Some(&topic), port, ips, &LINK) {
                prop_assert!(!a.addresses.is_empty());
                prop_assert!(a.addresses.len() <= MAX_ADDRESSES);
                prop_assert!(a.addresses.iter().all(|s| s.port() == port && port != 0));
            }
        }
    }
}
