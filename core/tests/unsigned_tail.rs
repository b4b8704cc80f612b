//! Issue 12's core part, on real stores: an unsigned tail (`length` runs
//! ahead of `signed_length`, peers only see the signed part), signatures
//! added one signer at a time so a multi-device quorum works, and store
//! batches that truncate and append several cores in one transaction.

mod common;

use std::future::Future as _;

use hyper_core::{Core, Error, KeyPair, Manifest, NodeRequest, ProofRequest, Store, VerifyError};

/// Three devices, each holding one key of a 2-of-3 manifest.
fn devices() -> (Vec<common::TempStore>, Vec<Core>, Manifest) {
    let pairs: Vec<KeyPair> = (0..3u8).map(|i| KeyPair::from_seed([40 + i; 32])).collect();
    let manifest =
        Manifest::quorum(pairs.iter().map(KeyPair::public_key).collect(), 2).expect("manifest");
    let stores: Vec<common::TempStore> = (0..3).map(|_| common::store()).collect();
    let cores = stores
        .iter()
        .zip(pairs)
        .map(|(s, pair)| {
            s.store
                .create_with_manifest(manifest.clone(), vec![pair])
                .expect("core")
        })
        .collect();
    (stores, cores, manifest)
}

#[test]
fn an_unsigned_tail_is_read_locally_and_never_served() {
    let (w, writer) = common::writer(&[b"a", b"b", b"c"]);
    writer.append_unsigned(&[b"d", b"e"]).expect("tail");
    let info = writer.info().expect("info");
    assert_eq!((info.length, info.signed_length), (5, 3));
    assert_eq!(info.byte_length, 5);
    assert_eq!(writer.get(4).expect("tail block"), b"e");
    assert_eq!(writer.signed_state().expect("state").length, 3);
    // States of the tail are those of a log signed that far.
    let all: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
    for length in [4, 5] {
        let (_o, signed) = common::writer(&all[..length as usize]);
        let state = writer.state_at(length).expect("tail state");
        assert_eq!(state.roots, signed.signed_state().expect("state").roots);
        assert!(state.signatures.is_empty());
    }
    assert!(matches!(
        writer.state_at(6),
        Err(Error::OutOfBounds {
            index: 6,
            length: 5
        })
    ));

    // A peer sees the signed part only.
    let reader = common::store();
    let replica = reader.store.replica(&writer.key()).expect("replica");
    replica
        .apply(&[common::honest_upgrade(&writer, &replica)])
        .expect("upgrade");
    assert_eq!(replica.info().expect("info").length, 3);
    let tail_block = writer.proof(&ProofRequest {
        block: Some(NodeRequest { index: 3, nodes: 0 }),
        ..Default::default()
    });
    assert!(matches!(
        tail_block,
        Err(Error::OutOfBounds {
            index: 3,
            length: 3
        })
    ));
    // A core with a tail does not take proofs from peers.
    assert!(matches!(
        writer.apply(&[common::honest_upgrade(&writer, &replica)]),
        Err(Error::InvalidArgument(_))
    ));

    // The tail survives a reopen; a signed append signs it too.
    let key = writer.key();
    drop(writer);
    let dir = w.dir;
    drop(w.store);
    let store = Store::open(dir.path()).expect("reopen");
    let writer = store.core(&key).expect("core");
    let info = writer.info().expect("info");
    assert_eq!((info.length, info.signed_length), (5, 3));
    writer.append(b"f").expect("signed append");
    let info = writer.info().expect("info");
    assert_eq!((info.length, info.signed_length), (6, 6));
    replica
        .apply(&[common::honest_block(&writer, &replica, 4)])
        .expect("now served");
    assert_eq!(replica.get(4).expect("get"), b"e");
}

#[test]
fn a_tail_truncation_needs_no_key_and_keeps_the_fork() {
    let (_s, cores, _) = devices();
    let view = &cores[0];
    assert!(!view.writable().expect("writable"));
    view.append_unsigned(&[b"1", b"2", b"3", b"4"])
        .expect("tail");
    view.truncate(2).expect("cut the tail");
    let info = view.info().expect("info");
    assert_eq!((info.length, info.signed_length, info.fork), (2, 0, 0));
    assert!(matches!(view.get(2), Err(Error::OutOfBounds { .. })));
    view.append_unsigned(&[b"x"]).expect("tail again");
    assert_eq!(view.get(2).expect("get"), b"x");
    assert!(matches!(view.truncate(5), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_multi_device_quorum_signs_one_signature_at_a_time() {
    let (_s, cores, manifest) = devices();
    // Every device computes the same view locally.
    for c in &cores {
        c.append_unsigned(&[b"v0", b"v1", b"v2"]).expect("tail");
    }
    let state = cores[0].state_at(3).expect("state");
    let sign = |i: usize| {
        let own = cores[i].state_at(3).expect("state");
        assert_eq!(own.roots, state.roots);
        cores[i].sign_local(&own).expect("sign").remove(0)
    };
    let (k1, s1) = sign(1);
    let (k2, s2) = sign(2);
    assert_eq!(k1, manifest.signers[1]);

    // One signature is not the quorum; the same signer twice neither.
    assert_eq!(cores[0].add_signature(&state, &k1, &s1).expect("add"), 0);
    assert_eq!(cores[0].add_signature(&state, &k1, &s1).expect("add"), 0);
    assert_eq!(cores[0].info().expect("info").signed_length, 0);
    // A bad signature and a stranger's key are refused.
    let mut bad = s2;
    bad.0[0] ^= 1;
    assert!(matches!(
        cores[0].add_signature(&state, &k2, &bad),
        Err(Error::Verify(VerifyError::Signature { .. }))
    ));
    let stranger = KeyPair::from_seed([99; 32]);
    assert!(matches!(
        cores[0].add_signature(&state, &stranger.public_key(), &s2),
        Err(Error::InvalidArgument(_))
    ));
    // The second signer reaches the quorum: the signed length moves.
    assert_eq!(cores[0].add_signature(&state, &k2, &s2).expect("add"), 3);
    let info = cores[0].info().expect("info");
    assert_eq!((info.length, info.signed_length), (3, 3));

    // A reader verifies the quorum-signed state from that device.
    let reader = common::store();
    let replica = reader.store.replica(&cores[0].key()).expect("replica");
    for i in 0..3 {
        replica
            .apply(&[common::honest_block(&cores[0], &replica, i)])
            .expect("quorum-signed");
    }
    assert_eq!(replica.get(2).expect("get"), b"v2");
}

#[test]
fn a_signature_over_another_tree_is_refused() {
    let (_s, cores, _) = devices();
    cores[0].append_unsigned(&[b"a", b"b"]).expect("tail");
    cores[1]
        .append_unsigned(&[b"a".as_slice(), b"other"])
        .expect("tail");
    let theirs = cores[1].state_at(2).expect("state");
    let (k1, s1) = cores[1].sign_local(&theirs).expect("sign").remove(0);
    assert!(matches!(
        cores[0].add_signature(&theirs, &k1, &s1),
        Err(Error::Verify(VerifyError::HashMismatch { .. }))
    ));
    assert_eq!(cores[0].info().expect("info").signed_length, 0);
}

#[test]
fn a_store_batch_truncates_and_appends_several_cores_at_once() {
    let s = common::store();
    let pair = KeyPair::from_seed([50; 32]);
    let other = KeyPair::from_seed([51; 32]);
    let quorum = Manifest::quorum(vec![pair.public_key(), other.public_key()], 2).expect("m");
    let view = s
        .store
        .create_with_manifest(quorum, vec![pair])
        .expect("view");
    let system = s.store.named("system").expect("system");
    view.append_unsigned(&[b"0", b"1", b"2", b"3"])
        .expect("tail");
    system.append_batch(&[b"s0"]).expect("append");

    // A reorder: roll the view back to 2 and apply again, and record it in
    // the system core, in one transaction.
    let redo = [b"2'".as_slice(), b"3'"];
    let note = [b"reordered".as_slice()];
    let out = {
        let mut batch = s.store.batch();
        batch
            .truncate(&view, 2)
            .append_unsigned(&view, &redo)
            .append(&system, &note);
        batch.commit().expect("commit")
    };
    assert_eq!((out[0].length, out[1].length), (4, 2));
    assert_eq!(view.get(3).expect("get"), b"3'");
    assert_eq!(system.get(1).expect("get"), b"reordered");

    // A batch with one bad part changes nothing at all.
    let more = [b"4".as_slice()];
    let mut batch = s.store.batch();
    batch
        .truncate(&view, 1)
        .append_unsigned(&view, &more)
        .truncate(&system, 9);
    assert!(matches!(batch.commit(), Err(Error::InvalidArgument(_))));
    assert_eq!(view.info().expect("info").length, 4);
    assert_eq!(view.get(2).expect("untouched"), b"2'");
    assert_eq!(system.info().expect("info").length, 2);

    // What committed is on disk.
    let (vk, sk) = (view.key(), system.key());
    drop((view, system));
    let dir = s.dir;
    drop(s.store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.core(&vk).expect("view").get(2).expect("get"), b"2'");
    assert_eq!(
        store
            .core(&sk)
            .expect("system")
            .info()
            .expect("info")
            .length,
        2
    );
}

#[test]
fn the_tail_seeks_and_streams_like_the_signed_part() {
    let (_w, writer) = common::writer(&[b"aa", b"bb"]);
    writer
        .append_unsigned(&[b"ccc".as_slice(), b"d"])
        .expect("tail");
    assert_eq!(writer.info().expect("info").byte_length, 8);
    // Offsets in the tail map to tail blocks, as get reads them.
    assert_eq!(writer.seek(3).expect("signed part"), (1, 1));
    assert_eq!(writer.seek(5).expect("into the tail"), (2, 1));
    assert_eq!(writer.seek(7).expect("last byte"), (3, 0));
    assert!(writer.seek(8).is_err());
    // A byte stream from an offset in the tail (a local source is ready at
    // once, so polling with a no-op waker finishes it).
    let source: std::sync::Arc<dyn hyper_core::BlockSource> = std::sync::Arc::new(writer.clone());
    let mut stream =
        hyper_core::ByteStream::new(source, 5, None, std::time::Duration::from_secs(1))
            .expect("byte stream");
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut bytes = Vec::new();
    loop {
        let next = std::pin::pin!(stream.next()).poll(&mut cx);
        match next {
            std::task::Poll::Ready(Some(chunk)) => bytes.extend(chunk.expect("chunk")),
            std::task::Poll::Ready(None) => break,
            std::task::Poll::Pending => panic!("a local source waited"),
        }
    }
    assert_eq!(bytes, b"ccd");
}

#[test]
fn an_encrypted_core_keeps_its_tail_encrypted_and_a_plain_tail_is_not_marked() {
    let key = hyper_core::EncryptionKey::generate().expect("key");
    // An encrypted handle's tail is encrypted, read back, cut and rewritten
    // (a fresh salt: same index, same fork), then signed and served as
    // ciphertext.
    let (_w, plain) = common::writer(&[]);
    let writer = plain.with_encryption(&key).expect("encrypted");
    writer.append(b"signed").expect("append");
    writer
        .append_unsigned(&[b"t1".as_slice(), b"t2"])
        .expect("tail");
    assert_eq!(writer.get(2).expect("tail block"), b"t2");
    assert!(matches!(plain.get(1), Err(Error::EncryptionKeyRequired(_))));
    let first = {
        let reader = common::store();
        let replica = reader.store.replica(&writer.key()).expect("replica");
        writer.truncate(2).expect("cut the tail");
        writer.append_unsigned(&[b"t2'"]).expect("rewrite");
        writer.append(b"sign it all").expect("signed append");
        replica
            .apply(&[common::honest_block(&writer, &replica, 2)])
            .expect("served");
        let stored = replica.get(2).expect("ciphertext");
        assert_ne!(stored.as_slice(), b"t2'");
        let readable = replica.with_encryption(&key).expect("key");
        assert_eq!(readable.get(2).expect("decrypted"), b"t2'");
        stored
    };
    assert_eq!(first.len(), 3 + hyper_core::ENCRYPTION_OVERHEAD);

    // A plain tail on a writable core: the key is refused at once, and
    // the core stays plain (the tail's blocks were stored, unsigned).
    let (_p, core) = common::writer(&[]);
    core.append_unsigned(&[b"plain"]).expect("plain tail");
    assert!(matches!(
        core.with_encryption(&key),
        Err(Error::Decrypt { index: 0, .. })
    ));
    assert_eq!(core.get(0).expect("still plain"), b"plain");
}

#[test]
fn tail_changes_are_tail_events_and_each_truncation_names_its_fork() {
    use hyper_core::Event;
    let (_s, cores, _) = devices();
    let view = &cores[0];
    let events = view.events();
    view.append_unsigned(&[b"1".as_slice(), b"22", b"333"])
        .expect("tail");
    view.truncate(3).expect("the tail ends there: no change");
    view.truncate(1).expect("cut the tail");
    // Two signers sign the view's state at 1: the signed length moves.
    let at_one = view.state_at(1).expect("state");
    for signer in &cores[1..] {
        signer.append_unsigned(&[b"1"]).expect("same view");
        let (k, sig) = signer.sign_local(&at_one).expect("sign").remove(0);
        view.add_signature(&at_one, &k, &sig).expect("add");
    }
    let seen: Vec<Event> = std::iter::from_fn(|| events.try_next()).collect();
    assert_eq!(
        seen,
        vec![
            Event::Tail {
                length: 3,
                byte_length: 6
            },
            Event::Tail {
                length: 1,
                byte_length: 1
            },
            Event::Appended {
                length: 1,
                byte_length: 1
            },
        ]
    );

    // A batch cutting one writable core twice reports each fork it made.
    let (w, writer) = common::writer(&[b"a", b"b", b"c"]);
    let events = writer.events();
    let mut batch = w.store.batch();
    batch.truncate(&writer, 2).truncate(&writer, 1);
    batch.commit().expect("two truncations");
    let seen: Vec<Event> = std::iter::from_fn(|| events.try_next()).collect();
    assert_eq!(
        seen,
        vec![
            Event::Truncated { fork: 1, length: 2 },
            Event::Truncated { fork: 2, length: 1 },
        ]
    );
}

#[test]
fn cuts_move_with_every_change_that_replaces_blocks_and_only_then() {
    let (_s, cores, _) = devices();
    let view = &cores[0];
    let cuts = || view.cuts().expect("cuts");
    assert_eq!(cuts(), 0);
    view.append_unsigned(&[b"1".as_slice(), b"22", b"333"])
        .expect("tail");
    view.truncate(3).expect("no change");
    assert_eq!(cuts(), 0, "appends and a no-op cut replace nothing");
    view.truncate(2).expect("cut the tail");
    assert_eq!(cuts(), 1, "a cut within the tail keeps the fork");
    let (p, signed) = common::writer(&[b"a", b"b", b"c"]);
    signed.append(b"more").expect("append");
    assert_eq!(signed.cuts().expect("cuts"), 0);
    signed.truncate(1).expect("new fork");
    signed.append(b"d").expect("append");
    assert_eq!(signed.cuts().expect("cuts"), 1);
    // One commit that cuts and appends counts once.
    let mut batch = p.store.batch();
    batch.truncate(&signed, 1).append(&signed, &[b"e"]);
    batch.commit().expect("batch");
    assert_eq!(signed.cuts().expect("cuts"), 2);
}
