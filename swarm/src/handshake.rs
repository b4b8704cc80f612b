//! The secret of one connection attempt, known to its two peers only.
//!
//! A connect request and its answer travel through the DHT node holding
//! the server's record: whatever they carry in the clear, that node (and
//! anyone on the path) knows. So neither carries the relay session id nor
//! the probe tag. Each side sends a fresh X25519 public key (its
//! ephemeral), signed with its identity (ed25519) over the topic, both
//! identities and the ephemerals sent so far (the client signs its own,
//! the server both), and each derives the attempt's secret from the X25519
//! shared secret and that transcript, the way a Noise handshake binds its
//! keys to the handshake hash. A node passing the messages on cannot
//! compute the secret (it holds neither ephemeral's secret half) nor
//! substitute its own ephemeral (it cannot sign for either identity), nor
//! pass a client's offer to another server (the offer names the server).
//!
//! Two values come from the secret: the relay session id (sent to the
//! relay, which therefore learns it) and the probe tag (never sent to the
//! relay), so a relay cannot forge probes either. Pure: no I/O, the
//! randomness comes in.

use curve25519_dalek::montgomery::MontgomeryPoint;
use hyper_core::{KeyPair, PublicKey, Signature};

use crate::codec::bytes32;
use crate::messages::Holepunch;

const OFFER: &[u8] = b"hyper-swarm 2026 punch offer";
const ANSWER: &[u8] = b"hyper-swarm 2026 punch answer";
const SECRET: &str = "hyper-swarm 2026 punch secret";
const RELAY: &str = "hyper-swarm 2026 relay session";
const PROBE: &str = "hyper-swarm 2026 probe tag";

/// One side's X25519 key pair for one attempt; never reused.
pub struct Ephemeral {
    secret: [u8; 32],
    /// The public half, sent in [`Holepunch::ephemeral`].
    pub public: [u8; 32],
}

impl Ephemeral {
    /// The key pair of the 32 random bytes `secret`.
    pub fn from_secret(secret: [u8; 32]) -> Ephemeral {
        Ephemeral {
            public: MontgomeryPoint::mul_base_clamped(secret).to_bytes(),
            secret,
        }
    }
}

/// What an attempt's secret gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    /// The session id both sides register at a relay.
    pub relay: [u8; 32],
    /// The tag of this attempt's probes.
    pub probe: [u8; 32],
}

/// Who an attempt is between, and for which topic: what both signatures
/// and the secret are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// The topic the server announced.
    pub topic: [u8; 32],
    /// The identity the client proves.
    pub client: PublicKey,
    /// The identity the server proves.
    pub server: PublicKey,
}

impl Attempt {
    fn transcript(&self, client_ephemeral: &[u8; 32]) -> Vec<u8> {
        [
            &self.topic[..],
            &self.client.0,
            &self.server.0,
            client_ephemeral,
        ]
        .concat()
    }

    fn offer_message(&self, client_ephemeral: &[u8; 32]) -> Vec<u8> {
        [OFFER, &self.transcript(client_ephemeral)].concat()
    }

    fn answer_message(&self, client_ephemeral: &[u8; 32], server_ephemeral: &[u8; 32]) -> Vec<u8> {
        [ANSWER, &self.transcript(client_ephemeral), server_ephemeral].concat()
    }

    /// The client's signature over its ephemeral (made with the key pair of
    /// [`Attempt::client`]).
    pub fn sign_offer(&self, identity: &KeyPair, ephemeral: &Ephemeral) -> Signature {
        identity.sign(&self.offer_message(&ephemeral.public))
    }

    /// The server's signature over both ephemerals (made with the key pair
    /// of [`Attempt::server`]).
    pub fn sign_answer(
        &self,
        identity: &KeyPair,
        client_ephemeral: &[u8; 32],
        ephemeral: &Ephemeral,
    ) -> Signature {
        identity.sign(&self.answer_message(client_ephemeral, &ephemeral.public))
    }

    /// The client's ephemeral from its `offer`, if the offer names
    /// [`Attempt::client`] and its signature by that key verifies.
    pub fn verify_offer(&self, offer: &Holepunch) -> Option<[u8; 32]> {
        let ephemeral = bytes32(&offer.ephemeral)?;
        let signature = Signature::from_slice(&offer.signature)?;
        (offer.public_key == self.client.0
            && self
                .client
                .verify(&self.offer_message(&ephemeral), &signature))
        .then_some(ephemeral)
    }

    /// The server's ephemeral from its `answer` to the client's ephemeral
    /// `client_ephemeral`, if the answer names [`Attempt::server`] and its
    /// signature by that key over both ephemerals verifies.
    pub fn verify_answer(
        &self,
        client_ephemeral: &[u8; 32],
        answer: &Holepunch,
    ) -> Option<[u8; 32]> {
        let ephemeral = bytes32(&answer.ephemeral)?;
        let signature = Signature::from_slice(&answer.signature)?;
        (answer.public_key == self.server.0
            && self.server.verify(
                &self.answer_message(client_ephemeral, &ephemeral),
                &signature,
            ))
        .then_some(ephemeral)
    }

    /// The attempt's keys, from this side's ephemeral `ours` and the other
    /// side's public ephemeral `theirs` (`client_side` says which of the two
    /// is the client's). `None` if `theirs` is a low-order point (the shared
    /// secret would be all zeroes, known to anyone).
    pub fn keys(&self, ours: &Ephemeral, theirs: &[u8; 32], client_side: bool) -> Option<Keys> {
        let shared = MontgomeryPoint(*theirs).mul_clamped(ours.secret).to_bytes();
        if shared == [0; 32] {
            return None;
        }
        let (client_ephemeral, server_ephemeral) = if client_side {
            (&ours.public, theirs)
        } else {
            (theirs, &ours.public)
        };
        let mut hasher = blake3::Hasher::new_derive_key(SECRET);
        hasher.update(&shared);
        hasher.update(&self.transcript(client_ephemeral));
        hasher.update(server_ephemeral);
        let secret = *hasher.finalize().as_bytes();
        Some(Keys {
            relay: blake3::derive_key(RELAY, &secret),
            probe: blake3::derive_key(PROBE, &secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attempt(client: &KeyPair, server: &KeyPair) -> Attempt {
        Attempt {
            topic: [5; 32],
            client: client.public_key(),
            server: server.public_key(),
        }
    }

    fn offer(attempt: &Attempt, identity: &KeyPair, ephemeral: &Ephemeral) -> Holepunch {
        Holepunch {
            public_key: identity.public_key().0.to_vec(),
            ephemeral: ephemeral.public.to_vec(),
            signature: attempt.sign_offer(identity, ephemeral).0.to_vec(),
            ..Holepunch::default()
        }
    }

    fn answer(
        attempt: &Attempt,
        identity: &KeyPair,
        client_ephemeral: &[u8; 32],
        ephemeral: &Ephemeral,
    ) -> Holepunch {
        Holepunch {
            public_key: identity.public_key().0.to_vec(),
            ephemeral: ephemeral.public.to_vec(),
            signature: attempt
                .sign_answer(identity, client_ephemeral, ephemeral)
                .0
                .to_vec(),
            ..Holepunch::default()
        }
    }

    fn unhex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
        }
        out
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn ephemerals_are_x25519_and_keys_snapshot() {
        // RFC 7748 section 6.1: Alice's and Bob's key pairs.
        let alice = Ephemeral::from_secret(unhex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let bob = Ephemeral::from_secret(unhex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        assert_eq!(
            hex(&alice.public),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        assert_eq!(
            hex(&bob.public),
            "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
        );
        let a = attempt(&KeyPair::from_seed([1; 32]), &KeyPair::from_seed([2; 32]));
        let keys = a.keys(&alice, &bob.public, true).expect("keys");
        assert_eq!(
            hex(&keys.relay),
            "ec27377594af91de84b5cdb553b908e3947ef0c987f678fbcb680d6366a1c1ec"
        );
        assert_eq!(
            hex(&keys.probe),
            "ac1f312e822aac6d006b10fc52a60a8150db5a27f53f23bd130d26925481be43"
        );
        assert_eq!(keys, a.keys(&bob, &alice.public, false).expect("keys"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn both_sides_derive_the_same_keys_and_nobody_else_does(
            seeds in any::<([u8; 32], [u8; 32], [u8; 32], [u8; 32], [u8; 32])>()
        ) {
            let (cs, ss, ce, se, he) = seeds;
            let client = KeyPair::from_seed(cs);
            let server = KeyPair::from_seed(ss);
            let a = attempt(&client, &server);
            let (c, s, h) = (
                Ephemeral::from_secret(ce),
                Ephemeral::from_secret(se),
                Ephemeral::from_secret(he),
            );
            let offered = a.verify_offer(&offer(&a, &client, &c));
            prop_assert_eq!(offered, Some(c.public));
            let answered = a.verify_answer(&c.public, &answer(&a, &server, &c.public, &s));
            prop_assert_eq!(answered, Some(s.public));
            let ours = a.keys(&c, &s.public, true);
            prop_assert!(ours.is_some());
            prop_assert_eq!(ours, a.keys(&s, &c.public, false));
            // A third ephemeral (a holder's) shares no keys with either.
            prop_assert_ne!(ours, a.keys(&h, &s.public, true));
            prop_assert_ne!(ours, a.keys(&h, &c.public, false));
            // Another topic or identity gives other keys.
            let other = Attempt { topic: [6; 32], ..a };
            prop_assert_ne!(ours, other.keys(&c, &s.public, true));
        }
    }

    #[test]
    fn holepunch_snapshot_and_round_trip() {
        use prost::Message as _;
        let holepunch = Holepunch {
            public_key: vec![1; 32],
            addresses: vec![crate::codec::address("10.0.0.1:9".parse().expect("addr"))],
            nat: crate::messages::NatKind::Consistent as i32,
            relay: None,
            ephemeral: vec![2; 32],
            signature: vec![3; 64],
        };
        let bytes = holepunch.encode_to_vec();
        assert_eq!(
            hex(&bytes),
            "0a20010101010101010101010101010101010101010101010101010101010101010112080a040a00000110091802322002020202020202020202020202020202020202020202020202020202020202023a4003030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303"
        );
        assert_eq!(Holepunch::decode(bytes.as_slice()).ok(), Some(holepunch));
    }

    #[test]
    fn a_holder_cannot_substitute_an_ephemeral_nor_move_an_offer() {
        let client = KeyPair::from_seed([1; 32]);
        let server = KeyPair::from_seed([2; 32]);
        let holder = KeyPair::from_seed([9; 32]);
        let a = attempt(&client, &server);
        let (c, s, h) = (
            Ephemeral::from_secret([3; 32]),
            Ephemeral::from_secret([4; 32]),
            Ephemeral::from_secret([8; 32]),
        );
        // The holder's ephemeral under the client's signature or its own.
        let mut forged = offer(&a, &client, &c);
        forged.ephemeral = h.public.to_vec();
        assert_eq!(a.verify_offer(&forged), None);
        let mut signed_by_holder = offer(&a, &holder, &h);
        signed_by_holder.public_key = client.public_key().0.to_vec();
        assert_eq!(a.verify_offer(&signed_by_holder), None);
        // The client's offer passed on to another server.
        let elsewhere = Attempt {
            server: holder.public_key(),
            ..a
        };
        assert_eq!(elsewhere.verify_offer(&offer(&a, &client, &c)), None);
        // The server's answer with the holder's ephemeral, or answering
        // another client ephemeral.
        let mut answered = answer(&a, &server, &c.public, &s);
        answered.ephemeral = h.public.to_vec();
        assert_eq!(a.verify_answer(&c.public, &answered), None);
        let to_holder = answer(&a, &server, &h.public, &s);
        assert_eq!(a.verify_answer(&c.public, &to_holder), None);
        // Missing or short fields.
        assert_eq!(a.verify_offer(&Holepunch::default()), None);
        // A low-order point makes no keys.
        assert_eq!(a.keys(&c, &[0; 32], true), None);
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(a.keys(&c, &one, true), None);
    }
}
