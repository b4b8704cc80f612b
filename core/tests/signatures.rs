//! Upgrades padded with wrong signatures, and manifests that list a key
//! twice, from a lying peer.

mod common;

use std::time::{Duration, Instant};

use hyper_core::{
    Error, KeyPair, MANIFEST_VERSION, Manifest, Signature, SignerSignature, VerifyError,
};

#[test]
fn an_upgrade_padded_with_100_000_wrong_signatures_is_refused_cheaply() {
    let (_w, writer) = common::writer(&[b"a", b"b", b"c"]);
    let reader = common::store();
    let replica = reader.store.replica(&writer.key()).expect("replica");
    let mut proof = common::honest_upgrade(&writer, &replica);
    let upgrade = proof.upgrade.as_mut().expect("upgrade");
    let good = upgrade.signatures[0];
    upgrade.signatures = (0..100_000u32)
        .map(|i| SignerSignature {
            signer: (i % 256) as u8,
            signature: Signature([(i % 251) as u8; 64]),
        })
        .collect();
    upgrade.signatures.push(good);
    let started = Instant::now();
    let err = replica
        .apply(std::slice::from_ref(&proof))
        .expect_err("padded upgrade accepted");
    assert!(
        matches!(
            err,
            Error::Verify(VerifyError::TooManySignatures {
                count: 100_001,
                signers: 1
            })
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(replica.info().expect("info").length, 0);
    // The honest upgrade still goes in.
    let upgrade = proof.upgrade.as_mut().expect("upgrade");
    upgrade.signatures = vec![good];
    replica.apply(&[proof]).expect("honest upgrade");
    assert_eq!(replica.info().expect("info").length, 3);
}

/// A manifest that lists one key twice with quorum 2: one signature would
/// count twice.
fn doubled() -> (KeyPair, Manifest) {
    let pair = KeyPair::from_seed([5; 32]);
    let m = Manifest {
        version: MANIFEST_VERSION,
        signers: vec![pair.public_key(), pair.public_key()],
        quorum: 2,
        prologue: None,
    };
    (pair, m)
}

#[test]
fn a_manifest_listing_a_key_twice_is_refused_from_a_peer() {
    let (pair, manifest) = doubled();
    let key = manifest.key();
    let roots = vec![hyper_core::Node::leaf(0, b"x")];
    let message = hyper_core::signable_message(&key, &roots, 1, 0);
    let sig = pair.sign(&message);
    let proof = common::upgrade_only(
        &manifest,
        0,
        hyper_core::UpgradeProof {
            start: 0,
            length: 1,
            roots,
            nodes: vec![],
            signatures: vec![
                SignerSignature {
                    signer: 0,
                    signature: sig,
                },
                SignerSignature {
                    signer: 1,
                    signature: sig,
                },
            ],
        },
    );
    let reader = common::store();
    let replica = reader.store.replica(&key).expect("replica");
    let err = replica.apply(&[proof]).expect_err("doubled key accepted");
    assert!(
        matches!(err, Error::Verify(VerifyError::Malformed("manifest"))),
        "{err:?}"
    );
    assert_eq!(replica.manifest().expect("manifest"), None);
    assert!(Manifest::decode(&manifest.encode()).is_err());
}

#[test]
fn a_manifest_listing_a_key_twice_cannot_be_created() {
    let (pair, manifest) = doubled();
    let s = common::store();
    assert!(matches!(
        s.store.create_with_manifest(manifest, vec![pair]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(s.store.list().expect("list").is_empty());
}
