//! An encrypted core read through a replication, over real TCP between
//! real stores: a blind seeder (the core key only) clones and serves the
//! ciphertext; a reader whose `ReplicatedSource` is made on an encrypted
//! handle reads plaintext (gets, a read stream); a wrong key is
//! `Error::Decrypt`, never garbage; a reader without a key sees what the
//! seeder holds, ciphertext.

mod common;

use std::sync::Arc;
use std::time::Duration;

use hyper_core::{BlockSource, Core, EncryptionKey, ReadOptions, ReadStream, Store};
use hyper_wire::{ReplicatedSource, Replication, connect_tcp};

const BLOCKS: u64 = 200;

fn secret(i: u64) -> Vec<u8> {
    format!("secret {i}").into_bytes()
}

/// A blind seeder of an encrypted core of [`BLOCKS`] blocks, on a TCP
/// port: (its store and plain handle, the encryption key, the address).
struct Blind {
    _writer: (tempfile::TempDir, Store, Replication),
    _seeder: (tempfile::TempDir, Store, Replication),
    core: Core,
    key: EncryptionKey,
    addr: std::net::SocketAddr,
}

async fn blind_seeder() -> Blind {
    let (wd, ws) = common::eventual_store();
    let key = EncryptionKey::generate().expect("key");
    let writer = ws
        .create_core()
        .expect("core")
        .with_encryption(&key)
        .expect("encrypted");
    let blocks: Vec<Vec<u8>> = (0..BLOCKS).map(secret).collect();
    writer.append_batch(&blocks).expect("append");
    let (serving, waddr) = common::serve(&ws).await;

    let (sd, ss) = common::eventual_store();
    let core = ss.replica(&writer.key()).expect("replica");
    common::clone_from(&common::replication(&ss), &core, waddr).await;
    let (seeder, addr) = common::serve(&ss).await;
    Blind {
        _writer: (wd, ws, serving),
        _seeder: (sd, ss, seeder),
        core,
        key,
        addr,
    }
}

/// A reader of the blind seeder's core through `key` (`None`: a plain
/// handle).
async fn reader(
    blind: &Blind,
    key: Option<&EncryptionKey>,
) -> (tempfile::TempDir, Store, Core, ReplicatedSource) {
    let (dir, store) = common::eventual_store();
    let plain = store.replica(&blind.core.key()).expect("replica");
    let core = match key {
        Some(k) => plain.with_encryption(k).expect("encrypted handle"),
        None => plain,
    };
    let replication = common::replication(&store);
    let source = ReplicatedSource::new(&replication, &core);
    connect_tcp(&replication, blind.addr)
        .await
        .expect("connect");
    (dir, store, core, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blind_seeder_serves_a_reader_that_decrypts() {
    let blind = blind_seeder().await;
    // The seeder holds every block and can read none.
    let info = blind.core.info().expect("info");
    assert_eq!((info.length, info.blocks_stored), (BLOCKS, BLOCKS));
    for i in [0, 77, BLOCKS - 1] {
        let stored = blind.core.get(i).expect("stored");
        assert!(
            !stored.windows(6).any(|w| w == b"secret"),
            "block {i} is readable on the seeder"
        );
    }

    let (_rd, _rs, core, source) = reader(&blind, Some(&blind.key)).await;
    let timeout = Duration::from_secs(10);
    assert_eq!(source.get(77, timeout).await.expect("get"), secret(77));
    // Stored as ciphertext, read back as plaintext.
    assert_eq!(core.get(77).expect("local"), secret(77));
    assert_eq!(source.get(77, timeout).await.expect("again"), secret(77));
    let mut stream = ReadStream::new(
        Arc::new(source),
        &ReadOptions {
            start: 100,
            end: Some(150),
            ..ReadOptions::default()
        },
    )
    .expect("stream");
    for i in 100..150 {
        let (index, block) = stream.next().await.expect("block").expect("read");
        assert_eq!((index, block), (i, secret(i)));
    }
    assert!(stream.next().await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_decrypt_error_and_no_key_reads_ciphertext() {
    let blind = blind_seeder().await;
    let wrong = EncryptionKey::generate().expect("key");
    let (_rd, _rs, core, source) = reader(&blind, Some(&wrong)).await;
    let timeout = Duration::from_secs(10);
    let got = source.get(5, timeout).await;
    assert!(
        matches!(got, Err(hyper_core::Error::Decrypt { index: 5, .. })),
        "{got:?}"
    );
    // The block came and verified (the key is wrong, not the data): the
    // next read fails the same way at once, without a fetch.
    assert!(core.has(5).expect("has"));
    assert!(matches!(
        source.get(5, Duration::ZERO).await,
        Err(hyper_core::Error::Decrypt { index: 5, .. })
    ));

    let (_pd, _ps, _plain, plain_source) = reader(&blind, None).await;
    let ciphertext = plain_source.get(5, timeout).await.expect("get");
    assert_eq!(ciphertext, blind.core.get(5).expect("stored"));
    assert_ne!(ciphertext, secret(5));
}
