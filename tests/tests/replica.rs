//! Readers that hold only the key verify and store proofs from a writer,
//! serve them on, follow truncations, and refuse lies, all on real stores.

mod common;

use common::{fetch, request, stores};
use hyper_core::{Error, KeyPair, Manifest, ProofRequest, UpgradeRequest, VerifyError};

#[test]
fn sparse_reader_then_full_then_chain() {
    let (_d, s) = stores(3);
    let writer = s[0].named("w").expect("writer");
    let blocks: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("block {i}").into_bytes())
        .collect();
    writer.append_batch(&blocks).expect("append");

    let b = s[1].replica(&writer.key()).expect("replica");
    assert!(!b.writable().expect("writable"));
    fetch(&writer, &b, 57).expect("sparse fetch");
    assert_eq!(b.get(57).expect("get"), blocks[57]);
    assert!(matches!(b.get(3), Err(Error::NotAvailable { index: 3 })));
    let info = b.info().expect("info");
    assert_eq!((info.length, info.blocks_stored), (100, 1));

    // Download the rest in one batch of proofs, applied in one transaction.
    let proofs: Vec<_> = (0..100)
        .filter(|i| *i != 57)
        .map(|i| writer.proof(&request(&b, i)).expect("proof"))
        .collect();
    b.apply(&proofs).expect("apply batch");
    assert_eq!(b.info().expect("info").contiguous_length, 100);

    // C downloads from B, which only ever was a reader.
    let c = s[2].replica(&writer.key()).expect("replica");
    for i in (0..100).rev() {
        fetch(&b, &c, i).expect("chain fetch");
    }
    for (i, want) in blocks.iter().enumerate() {
        assert_eq!(&c.get(i as u64).expect("get"), want);
    }
    // Readers learn new appends through upgrades.
    writer.append(b"new").expect("append");
    fetch(&writer, &b, 100).expect("upgrade");
    assert_eq!(b.info().expect("info").length, 101);
    assert_eq!(b.seek(0).expect("seek"), (0, 0));
}

#[test]
fn reader_follows_a_truncation_and_keeps_the_common_prefix() {
    let (_d, s) = stores(2);
    let writer = s[0].named("w").expect("writer");
    let blocks: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_le_bytes().repeat(3)).collect();
    writer.append_batch(&blocks).expect("append");
    let r = s[1].replica(&writer.key()).expect("replica");
    let proofs: Vec<_> = (0..300)
        .map(|i| writer.proof(&request(&r, i)).expect("proof"))
        .collect();
    r.apply(&proofs).expect("download all");
    writer.truncate(250).expect("truncate");
    writer
        .append_batch(&[b"x".to_vec(), b"y".to_vec()])
        .expect("append");
    // An upgrade across the fork. New roots: blocks 0..128, 128..192,
    // 192..224, 224..240, 240..248 (all unchanged) and 248..252 (changed);
    // the reader descends into the changed root and finds the fork point.
    fetch(&writer, &r, 251).expect("fork upgrade");
    let info = r.info().expect("info");
    assert_eq!((info.fork, info.length), (1, 252));
    assert_eq!(r.get(251).expect("new block"), b"y");
    // Every block before the fork point is kept ...
    assert_eq!(info.blocks_stored, 250 + 1);
    assert_eq!(r.get(0).expect("kept"), blocks[0]);
    assert_eq!(r.get(249).expect("kept"), blocks[249]);
    // ... the rewritten block is dropped, never served stale.
    assert!(matches!(r.get(250), Err(Error::NotAvailable { .. })));
    fetch(&writer, &r, 250).expect("refetch");
    assert_eq!(r.get(250).expect("new block"), b"x");
    assert_eq!(r.info().expect("info").contiguous_length, 252);
}

#[test]
fn lies_are_rejected_and_the_reader_stays_valid() {
    let (_d, s) = stores(3);
    let writer = s[0].named("w").expect("writer");
    writer
        .append_batch(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec()])
        .expect("append");
    let r = s[1].replica(&writer.key()).expect("replica");
    fetch(&writer, &r, 0).expect("fetch");

    // Forged block bytes.
    let mut p = writer.proof(&request(&r, 1)).expect("proof");
    if let Some(b) = &mut p.block {
        b.value = b"B".to_vec();
    }
    assert!(matches!(
        r.apply(&[p]),
        Err(Error::Verify(VerifyError::HashMismatch { .. }))
    ));

    // A valid proof in the same batch as a forged one: nothing is stored.
    let good = writer.proof(&request(&r, 2)).expect("proof");
    let mut bad = writer.proof(&request(&r, 1)).expect("proof");
    if let Some(b) = &mut bad.block {
        b.value.push(0);
    }
    assert!(r.apply(&[good, bad]).is_err());
    assert!(!r.has(2).expect("has"));

    // A different writer signing a state for this key.
    let impostor = s[2].named("impostor").expect("impostor");
    impostor
        .append_batch(&[b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()])
        .expect("append");
    let fresh = s[2].replica(&writer.key()).expect("replica");
    let mut p = impostor.proof(&request(&fresh, 3)).expect("proof");
    p.manifest = writer.manifest().expect("manifest");
    assert!(matches!(
        fresh.apply(&[p]),
        Err(Error::Verify(VerifyError::Signature { .. }))
    ));
    // The impostor's manifest does not hash to the key.
    let p = impostor
        .proof(&ProofRequest {
            manifest: true,
            upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
            ..Default::default()
        })
        .expect("proof");
    assert!(matches!(
        fresh.apply(&[p]),
        Err(Error::Verify(VerifyError::ManifestMismatch))
    ));

    // Everything the reader stored still verifies.
    assert_eq!(r.get(0).expect("get"), b"a");
    assert_eq!(r.info().expect("info").blocks_stored, 1);
    fetch(&writer, &r, 2).expect("honest fetch still works");
}

#[test]
fn quorum_of_signers_is_required() {
    let (_d, s) = stores(2);
    let pairs: Vec<KeyPair> = (0..3u8).map(|i| KeyPair::from_seed([i + 10; 32])).collect();
    let manifest =
        Manifest::quorum(pairs.iter().map(KeyPair::public_key).collect(), 2).expect("manifest");
    // One of three keys is not enough to write.
    let lonely = s[0]
        .create_with_manifest(manifest.clone(), pairs[..1].to_vec())
        .expect("core");
    assert!(matches!(lonely.append(b"x"), Err(Error::NotWritable(_))));
    s[0].delete(&lonely.key()).expect("delete");
    let writer = s[0]
        .create_with_manifest(manifest, pairs[1..].to_vec())
        .expect("core");
    writer
        .append_batch(&[b"x".to_vec(), b"y".to_vec()])
        .expect("append");
    let r = s[1].replica(&writer.key()).expect("replica");
    let mut p = writer.proof(&request(&r, 1)).expect("proof");
    let full = p.clone();
    if let Some(u) = &mut p.upgrade {
        u.signatures.truncate(1);
    }
    assert!(matches!(
        r.apply(&[p]),
        Err(Error::Verify(VerifyError::Signature {
            valid: 1,
            quorum: 2
        }))
    ));
    r.apply(&[full]).expect("two of three verify");
    assert_eq!(r.get(1).expect("get"), b"y");
}
