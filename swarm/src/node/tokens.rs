//! Validation tokens: what this node gives a requester to prove its
//! address (a keyed hash under a rotating secret), and what its own
//! requests carry, a token or padding, so that answers to it may be large
//! (see [`AMPLIFICATION`](super::AMPLIFICATION)).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::{Node, PADDED_REQUEST};
use crate::codec;
use crate::messages::{Body, Packet};

impl Node {
    /// A request to `to`: with the validation token `to` gave us, or, for
    /// a request whose answer may be large, padded to [`PADDED_REQUEST`]
    /// (so the answer fits [`AMPLIFICATION`] times it).
    pub(super) fn request_packet(
        &self,
        now: Instant,
        tid: u32,
        to: SocketAddr,
        body: Body,
    ) -> Packet {
        let large = matches!(
            body,
            Body::FindNode(_) | Body::Lookup(_) | Body::MutableGet(_) | Body::ImmutableGet(_)
        );
        let mut packet = self.header(tid, to, body);
        match self.tokens.get(now, &to) {
            Some(token) => packet.token = token.to_vec(),
            None if large => {
                let len = codec::encode(&packet).len();
                // The padding field's own tag and length take three bytes.
                packet.padding = vec![0; PADDED_REQUEST.saturating_sub(len + 3)];
            }
            None => {}
        }
        packet
    }

    /// A write token for `addr`, valid until the secret rotates twice.
    pub(crate) fn token(&self, addr: SocketAddr, secret: usize) -> [u8; 32] {
        let key = self.secrets.get(secret).copied().unwrap_or([0; 32]);
        let mut hasher = blake3::Hasher::new_keyed(&key);
        hasher.update(&address_bytes(addr));
        *hasher.finalize().as_bytes()
    }

    /// Whether `token` was given to `addr` recently.
    pub(crate) fn valid_token(&self, addr: SocketAddr, token: &[u8]) -> bool {
        token.len() == 32 && (0..2).any(|s| self.token(addr, s).as_slice() == token)
    }
}

fn address_bytes(addr: SocketAddr) -> Vec<u8> {
    let mut out = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    out.extend_from_slice(&addr.port().to_be_bytes());
    out
}
