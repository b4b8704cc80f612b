//! 256-bit node ids and their XOR distance.

use std::fmt;

/// A node id (or a topic, or any key of the id space): 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; 32]);

/// The XOR distance between two ids, compared as a 256-bit big-endian
/// number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Distance(pub [u8; 32]);

impl NodeId {
    /// The XOR distance to `other`.
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; 32];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0.get(i).copied().unwrap_or(0) ^ other.0.get(i).copied().unwrap_or(0);
        }
        Distance(d)
    }
}

impl Distance {
    /// The index of the highest set bit (0..=255), `None` for distance 0:
    /// the k-bucket a node at this distance belongs in.
    pub fn bucket(&self) -> Option<usize> {
        let first = self.0.iter().position(|&b| b != 0)?;
        let byte = self.0.get(first).copied().unwrap_or(0);
        Some((31 - first) * 8 + (7 - byte.leading_zeros() as usize))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(4) {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…")
    }
}

impl NodeId {
    /// The id a node at `addr` may claim (BEP 42 style): BLAKE3
    /// derive-key of the IP alone for a global address (an IPv6 address
    /// masked to its /64), so one address (or /64) has exactly one id
    /// whatever its ports; on a local network ([`crate::limits::is_local`])
    /// of the IP (IPv4 as IPv4-mapped IPv6) and the port, so many nodes
    /// can share one host there.
    pub fn for_address(addr: std::net::SocketAddr) -> NodeId {
        let ip = crate::limits::canonical(addr.ip());
        let mut bytes = match ip {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        let mut hasher = blake3::Hasher::new_derive_key("hyper-swarm 2026 node id");
        if crate::limits::is_local(ip) {
            hasher.update(&bytes);
            hasher.update(&addr.port().to_be_bytes());
        } else {
            if ip.is_ipv6() {
                bytes[8..].fill(0);
            }
            hasher.update(b"global");
            hasher.update(&bytes);
        }
        NodeId(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_address_has_one_id_whatever_its_port() {
        let id = |s: &str| NodeId::for_address(s.parse().expect("addr"));
        assert_eq!(id("203.0.113.5:1"), id("203.0.113.5:65535"));
        assert_eq!(id("203.0.113.5:1"), id("[::ffff:203.0.113.5]:7"));
        assert_ne!(id("203.0.113.5:1"), id("203.0.113.6:1"));
        assert_eq!(
            id("[2001:db8:0:1::1]:1"),
            id("[2001:db8:0:1:ffff::2]:2"),
            "one per /64"
        );
        assert_ne!(id("[2001:db8:0:1::1]:1"), id("[2001:db8:0:2::1]:1"));
        assert_ne!(
            id("10.0.0.1:1"),
            id("10.0.0.1:2"),
            "a local host keeps its ports"
        );
        assert_ne!(id("127.0.0.1:1"), id("127.0.0.1:2"));
    }
}
