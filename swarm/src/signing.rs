//! Signed DHT payloads: peer records, unannounces and mutable values, and
//! the targets values are stored at. Each signature covers a domain string
//! and every field it vouches for (layouts in `proto/dht.proto`).

use hyper_core::{KeyPair, PublicKey, Signature};
use prost::Message as _;

use crate::codec::bytes32;
use crate::messages::{MutableValue, PeerRecord, SignedRecord, Unannounce};

const ANNOUNCE: &[u8] = b"hyper-swarm 2026 announce";
const UNANNOUNCE: &[u8] = b"hyper-swarm 2026 unannounce";
const MUTABLE: &str = "hyper-swarm 2026 mutable";

fn signature(bytes: &[u8]) -> Option<Signature> {
    Signature::from_slice(bytes)
}

fn public_key(bytes: &[u8]) -> Option<PublicKey> {
    bytes32(bytes).map(PublicKey)
}

fn record_message(topic: &[u8; 32], record: &[u8]) -> Vec<u8> {
    [ANNOUNCE, topic, record].concat()
}

/// Signs `record` for `topic` with `keypair` (whose public key it names).
pub fn sign_record(keypair: &KeyPair, topic: &[u8; 32], record: &PeerRecord) -> SignedRecord {
    let bytes = record.encode_to_vec();
    let signature = keypair.sign(&record_message(topic, &bytes));
    SignedRecord {
        record: bytes,
        signature: signature.0.to_vec(),
    }
}

/// The record and its signer, if `signed` decodes and its signature by the
/// key it names verifies for `topic`.
pub fn verify_record(topic: &[u8; 32], signed: &SignedRecord) -> Option<(PeerRecord, PublicKey)> {
    let record = PeerRecord::decode(signed.record.as_slice()).ok()?;
    let key = public_key(&record.public_key)?;
    let sig = signature(&signed.signature)?;
    key.verify(&record_message(topic, &signed.record), &sig)
        .then_some((record, key))
}

fn unannounce_message(topic: &[u8], key: &[u8], timestamp: u64) -> Vec<u8> {
    [UNANNOUNCE, topic, key, &timestamp.to_be_bytes()].concat()
}

/// A signed request to remove `keypair`'s records for `topic` made before
/// `timestamp` (its token is filled in per node).
pub fn sign_unannounce(keypair: &KeyPair, topic: &[u8; 32], timestamp: u64) -> Unannounce {
    let key = keypair.public_key();
    let sig = keypair.sign(&unannounce_message(topic, &key.0, timestamp));
    Unannounce {
        topic: topic.to_vec(),
        public_key: key.0.to_vec(),
        timestamp,
        signature: sig.0.to_vec(),
        token: Vec::new(),
    }
}

/// Whether the unannounce is signed by the key it names.
pub fn verify_unannounce(request: &Unannounce) -> bool {
    let (Some(key), Some(sig)) = (
        public_key(&request.public_key),
        signature(&request.signature),
    ) else {
        return false;
    };
    key.verify(
        &unannounce_message(&request.topic, &request.public_key, request.timestamp),
        &sig,
    )
}

/// Where a mutable value signed by `key` is stored.
pub fn mutable_target(key: &PublicKey) -> [u8; 32] {
    blake3::derive_key(MUTABLE, &key.0)
}

/// Where an immutable value is stored: its BLAKE3 hash.
pub fn immutable_target(value: &[u8]) -> [u8; 32] {
    *blake3::hash(value).as_bytes()
}

fn mutable_message(seq: u64, value: &[u8]) -> Vec<u8> {
    [MUTABLE.as_bytes(), &seq.to_be_bytes(), value].concat()
}

/// `value` as version `seq` of `keypair`'s mutable value.
pub fn sign_mutable(keypair: &KeyPair, seq: u64, value: Vec<u8>) -> MutableValue {
    let signature = keypair.sign(&mutable_message(seq, &value));
    MutableValue {
        public_key: keypair.public_key().0.to_vec(),
        seq,
        value,
        signature: signature.0.to_vec(),
    }
}

/// The signer, if the value's signature by the key it names verifies.
pub fn verify_mutable(value: &MutableValue) -> Option<PublicKey> {
    let key = public_key(&value.public_key)?;
    let sig = signature(&value.signature)?;
    key.verify(&mutable_message(value.seq, &value.value), &sig)
        .then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_any_change_breaks_them() {
        let keypair = KeyPair::from_seed([5; 32]);
        let record = PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: Vec::new(),
            relays: Vec::new(),
            local_addresses: Vec::new(),
            timestamp: 9,
        };
        let signed = sign_record(&keypair, &[1; 32], &record);
        assert_eq!(
            verify_record(&[1; 32], &signed),
            Some((record, keypair.public_key()))
        );
        assert_eq!(verify_record(&[2; 32], &signed), None, "another topic");
        let mut forged = signed.clone();
        forged.record.push(0);
        assert_eq!(verify_record(&[1; 32], &forged), None);

        let un = sign_unannounce(&keypair, &[1; 32], 10);
        assert!(verify_unannounce(&un));
        assert!(!verify_unannounce(&Unannounce {
            timestamp: 11,
            ..un
        }));

        let value = sign_mutable(&keypair, 3, b"pointer".to_vec());
        assert_eq!(verify_mutable(&value), Some(keypair.public_key()));
        assert_eq!(verify_mutable(&MutableValue { seq: 4, ..value }), None);
    }
}
