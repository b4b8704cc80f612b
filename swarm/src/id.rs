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
    /// The id a node at `addr` may claim: BLAKE3 derive-key of the address
    /// (16 bytes of IPv6 or IPv4-mapped IPv6, then the port big-endian).
    pub fn for_address(addr: std::net::SocketAddr) -> NodeId {
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            std::net::IpAddr::V6(v6) => v6.octets(),
        };
        let mut hasher = blake3::Hasher::new_derive_key("hyper-swarm 2026 node id");
        hasher.update(&ip);
        hasher.update(&addr.port().to_be_bytes());
        NodeId(*hasher.finalize().as_bytes())
    }
}
