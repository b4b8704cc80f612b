//! Block encryption on real stores: a writer encrypts, a blind seeder that
//! holds only the core key stores, verifies and serves the ciphertext, and
//! a third store that has the encryption key reads plaintext from it.

mod common;

use common::{fetch, fetch_all, stores};
use hyper_core::{ENCRYPTION_OVERHEAD, EncryptionKey, Error, Store};

fn plaintexts() -> Vec<Vec<u8>> {
    (0..40u32)
        .map(|i| {
            format!("private record {i} ")
                .repeat(i as usize % 5 + 1)
                .into_bytes()
        })
        .collect()
}

#[test]
fn blind_seeder_serves_ciphertext_a_reader_with_the_key_decrypts() {
    let (_d, s) = stores(3);
    let key = EncryptionKey::generate().expect("key");
    let writer = s[0]
        .named("private")
        .expect("core")
        .with_encryption(&key)
        .expect("enc");
    let blocks = plaintexts();
    writer.append_batch(&blocks[..30]).expect("append");
    for b in &blocks[30..] {
        writer.append(b).expect("append one");
    }
    assert_eq!(writer.get(7).expect("get"), blocks[7]);

    // The blind seeder: no encryption key. Every block arrives through a
    // verified proof; what it stores is the ciphertext with its framing.
    let seeder = s[1].replica(&writer.key()).expect("replica");
    fetch_all(&writer, &seeder).expect("seeder downloads");
    let info = seeder.info().expect("info");
    assert_eq!((info.length, info.contiguous_length), (40, 40));
    for (i, plain) in blocks.iter().enumerate() {
        let stored = seeder.get(i as u64).expect("ciphertext");
        assert_eq!(stored.len(), plain.len() + ENCRYPTION_OVERHEAD);
        let needle = &plain[..12];
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle),
            "block {i} leaks its plaintext"
        );
    }
    let total: usize = blocks.iter().map(|b| b.len() + ENCRYPTION_OVERHEAD).sum();
    assert_eq!(info.byte_length, total as u64);

    // A reader with the key, fed only by the seeder.
    let reader = s[2].replica(&writer.key()).expect("replica");
    fetch_all(&seeder, &reader).expect("reader downloads from the seeder");
    let reader = reader.with_encryption(&key).expect("enc");
    for (i, plain) in blocks.iter().enumerate() {
        assert_eq!(&reader.get(i as u64).expect("plaintext"), plain);
    }
    let all: Vec<Vec<u8>> = reader
        .blocks(0..40)
        .expect("blocks")
        .map(|b| b.expect("block").1)
        .collect();
    assert_eq!(all, blocks);
    let snap = reader.snapshot().expect("snapshot");
    assert_eq!(snap.get(39).expect("snapshot get"), blocks[39]);

    // A wrong key on the replica is a clear error on every read, never garbage.
    let wrong = reader
        .with_encryption(&EncryptionKey::generate().expect("key"))
        .expect("a replica cannot check the key up front");
    assert!(matches!(
        wrong.get(3),
        Err(Error::Decrypt { index: 3, core }) if core == writer.key()
    ));
    assert!(wrong.blocks(0..40).expect("blocks").all(|b| b.is_err()));
}

#[test]
fn the_writers_store_refuses_plain_handles_and_wrong_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = EncryptionKey::from_bytes([9; 32]);
    let core_key = {
        let store = Store::open(dir.path()).expect("open");
        let core = store
            .create_core()
            .expect("core")
            .with_encryption(&key)
            .expect("enc");
        core.append(b"one").expect("append");
        core.key()
    };
    // Reopened: the store remembers that the core is encrypted (not the key).
    let store = Store::open(dir.path()).expect("reopen");
    let plain = store.core(&core_key).expect("core");
    assert!(matches!(plain.append(b"leak"), Err(Error::EncryptionKeyRequired(k)) if k == core_key));
    assert!(matches!(plain.get(0), Err(Error::EncryptionKeyRequired(_))));
    assert!(matches!(
        plain.blocks(0..1),
        Err(Error::EncryptionKeyRequired(_))
    ));
    assert!(matches!(
        plain.with_encryption(&EncryptionKey::from_bytes([8; 32])),
        Err(Error::WrongEncryptionKey(k)) if k == core_key
    ));
    let core = plain.with_encryption(&key).expect("right key");
    assert_eq!(core.get(0).expect("get"), b"one");
    assert_eq!(core.info().expect("info").length, 1);
    // Proofs still serve the ciphertext from a plain handle.
    let proof = plain
        .proof(&common::request(&plain, 0))
        .expect("proof from a plain handle");
    let served = proof.block.expect("block").value;
    assert_eq!(served.len(), 3 + ENCRYPTION_OVERHEAD);
}

/// The stored bytes of block `index` that `from` serves to `to`.
fn served(from: &hyper_core::Core, to: &hyper_core::Core, index: u64) -> Vec<u8> {
    let proof = from.proof(&common::request(to, index)).expect("proof");
    proof.block.expect("block").value
}

#[test]
fn a_truncated_and_rewritten_block_gets_a_new_nonce_and_replicas_follow() {
    let (_d, s) = stores(2);
    let key = EncryptionKey::generate().expect("key");
    let writer = s[0]
        .create_core()
        .expect("core")
        .with_encryption(&key)
        .expect("enc");
    writer.append_batch(&[b"a", b"b", b"c"]).expect("append");
    let before = s[0].core(&writer.key()).expect("core");
    let reader = s[1].replica(&writer.key()).expect("replica");
    fetch_all(&before, &reader).expect("download");
    let old = served(&writer, &reader, 2);

    writer.truncate(2).expect("truncate");
    writer
        .append(b"c")
        .expect("same plaintext, same index, new fork");
    let new = served(&writer, &reader, 2);
    assert_eq!(old.len(), new.len());
    // Another fork and salt in the nonce: another key stream.
    assert_ne!(old[ENCRYPTION_OVERHEAD..], new[ENCRYPTION_OVERHEAD..]);
    assert_eq!(new[..8], 1u64.to_le_bytes());

    fetch(&writer, &reader, 2).expect("follow the fork");
    let reader = reader.with_encryption(&key).expect("enc");
    assert_eq!(reader.info().expect("info").fork, 1);
    assert_eq!(reader.get(2).expect("new block"), b"c");
    assert_eq!(reader.get(0).expect("kept block"), b"a");
}

#[test]
fn a_key_on_a_plain_core_is_an_error_not_garbage() {
    let (_d, s) = stores(2);
    let writer = s[0].create_core().expect("core");
    writer
        .append(b"plain text block of some length")
        .expect("append");
    let reader = s[1].replica(&writer.key()).expect("replica");
    fetch(&writer, &reader, 0).expect("download");
    let wrong = reader
        .with_encryption(&EncryptionKey::generate().expect("key"))
        .expect("handle");
    assert!(matches!(wrong.get(0), Err(Error::Decrypt { index: 0, .. })));
}

#[test]
fn a_plain_core_with_blocks_cannot_be_turned_encrypted() {
    let (_d, s) = stores(2);
    let plain = s[0].create_core().expect("core");
    plain.append(b"written plain").expect("append");
    let key = EncryptionKey::generate().expect("key");
    assert!(matches!(
        plain.with_encryption(&key),
        Err(Error::Decrypt { index: 0, .. })
    ));
    plain
        .append(b"still plain")
        .expect("not marked: plain appends go on");

    // An encrypted core whose key pair moves to a store that cloned it is
    // marked by its first encrypted handle there, after block 0 decrypted.
    let enc = s[0]
        .create_core()
        .expect("core")
        .with_encryption(&key)
        .expect("enc");
    enc.append(b"secret").expect("append");
    let clone = s[1].replica(&enc.key()).expect("replica");
    fetch_all(&enc, &clone).expect("clone");
    let pair = enc.export_key_pairs().expect("pairs").remove(0);
    let moved = s[1].import_key_pair(pair).expect("import");
    let wrong = EncryptionKey::generate().expect("key");
    assert!(matches!(
        moved.with_encryption(&wrong),
        Err(Error::Decrypt { .. })
    ));
    let moved = moved.with_encryption(&key).expect("right key");
    moved.append(b"more").expect("append");
    let plain_handle = s[1].core(&enc.key()).expect("core");
    assert!(matches!(
        plain_handle.append(b"leak"),
        Err(Error::EncryptionKeyRequired(_))
    ));
    assert_eq!(moved.get(1).expect("get"), b"more");
}
