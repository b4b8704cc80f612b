//! The Noise handshake from the side of a victim facing a forger. The first
//! byte picks the mode:
//! - even: the rest is a handshake payload (`Handshake` protobuf: identity
//!   and signature) checked as the handshake checks the peer's, against a
//!   fixed Noise static key. Property: decoded or a typed error; a payload
//!   that proves an identity names it and proves it for that static key
//!   only (it cannot be replayed for another); protobuf round trip.
//! - odd: the rest is everything a peer sends during the handshake
//!   (length-prefixed Noise messages), fed to a real responder (bit 1
//!   clear) or initiator over an in-memory stream. Property: it ends in a
//!   typed error, without a panic or a hang, never a secured stream (the
//!   forger cannot know the victim's fresh ephemeral key).
#![no_main]

use std::time::Duration;

use hyper_core::KeyPair;
use hyper_wire::EncryptedStream;
use hyper_wire::fuzzing::check_identity_payload;
use hyper_wire::messages::Handshake;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;
use tokio::io::AsyncWriteExt;

const STATIC_KEY: [u8; 32] = [0x5a; 32];

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        payload(rest);
    } else {
        transcript(rest, mode & 2 == 0);
    }
});

fn payload(bytes: &[u8]) {
    if let Ok(h) = Handshake::decode(bytes) {
        assert_eq!(
            Handshake::decode(h.encode_to_vec().as_slice()).ok(),
            Some(h)
        );
    }
    if let Ok(identity) = check_identity_payload(bytes, Some(&STATIC_KEY)) {
        // Only a signature by the identity over this very static key
        // proves it: the same payload for another static key does not.
        let h = Handshake::decode(bytes).expect("a payload that proves decodes");
        assert_eq!(h.identity, identity.0.to_vec());
        let mut other = STATIC_KEY;
        other[0] ^= 1;
        assert!(
            check_identity_payload(bytes, Some(&other)).is_err(),
            "a payload proves its identity for two static keys"
        );
    }
    assert!(check_identity_payload(bytes, None).is_err());
}

fn transcript(bytes: &[u8], victim_is_responder: bool) {
    let victim = KeyPair::from_seed([2; 32]);
    RUNTIME.with(|rt| {
        rt.block_on(async {
            let (mut forger, io) = tokio::io::duplex(1 << 17);
            forger
                .write_all(bytes)
                .await
                .expect("the stream takes the bytes");
            // The forger stops writing after its bytes (and keeps reading,
            // so the victim's own messages go through): the victim must end.
            forger.shutdown().await.expect("shutdown");
            let result = tokio::time::timeout(
                Duration::from_secs(5),
                EncryptedStream::handshake(io, &victim, !victim_is_responder),
            )
            .await
            .expect("the handshake ends once the forger's bytes run out");
            assert!(result.is_err(), "a forged handshake succeeded");
            drop(forger);
        });
    });
}
