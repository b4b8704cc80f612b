//! Channel capabilities: proof, bound to one connection and one direction,
//! that the sender of an `Open` knows the core key.
//!
//! `capability = BLAKE3-derive-key("hyper-wire 2026 capability",
//! handshake hash ‖ sender-is-initiator byte ‖ core key)`. The handshake hash
//! differs on every connection, so a capability cannot be replayed on
//! another; the role byte makes the two directions differ, so a capability
//! reflected back to its sender does not verify.

use hyper_core::CoreKey;

/// The capabilities of one connection, seen from one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    handshake_hash: [u8; 32],
    initiator: bool,
}

impl Capabilities {
    /// For the side that was (or was not) the handshake's initiator.
    pub fn new(handshake_hash: [u8; 32], initiator: bool) -> Self {
        Capabilities {
            handshake_hash,
            initiator,
        }
    }

    /// The capability this side sends to open a channel for `key`.
    pub fn local(&self, key: &CoreKey) -> [u8; 32] {
        compute(&self.handshake_hash, self.initiator, key)
    }

    /// Whether `capability` is the one the peer must send for `key`
    /// (compared in constant time).
    pub fn verify_remote(&self, key: &CoreKey, capability: &[u8]) -> bool {
        let expected = blake3::Hash::from(compute(&self.handshake_hash, !self.initiator, key));
        <[u8; 32]>::try_from(capability).is_ok_and(|c| expected == blake3::Hash::from(c))
    }
}

fn compute(handshake_hash: &[u8; 32], sender_is_initiator: bool, key: &CoreKey) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("hyper-wire 2026 capability");
    h.update(handshake_hash);
    h.update(&[u8::from(sender_is_initiator)]);
    h.update(&key.0);
    *h.finalize().as_bytes()
}
