//! The layers above the core, encrypted end to end over real TCP between
//! three real stores: a writer, a blind seeder that holds only the core
//! keys (it clones and serves, and cannot open what it serves), and a
//! reader with the encryption key that reads through the seeder alone,
//! fetching sparsely. A bee (`Bee::open` on an encrypted handle) and a
//! drive (`Drive::encrypted`: both of its cores under one key).

use std::time::Duration;

use hyper_bee::{Bee, with_fetch};
use hyper_core::{Core, CoreKey, EncryptionKey, KeyPair, Store};
use hyper_drive::fetch::ReplicationFetch;
use hyper_drive::{Drive, FileMeta};
use hyper_tests::eventual_store as store;
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
};

const WAIT: Duration = Duration::from_secs(20);

/// A replication of `store` serving every core it holds, on a loopback
/// port: the replication (keep it) and its address.
async fn serve(store: &Store) -> (Replication, std::net::SocketAddr) {
    let replication = Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            all_cores: true,
            ..ReplicationOptions::default()
        },
    );
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let _server = serve_tcp(&replication, listener);
    (replication, addr)
}

/// A replication of `store` connected to `addr`.
async fn reader(store: &Store, addr: std::net::SocketAddr) -> Replication {
    let replication = Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions::default(),
    );
    connect_tcp(&replication, addr).await.expect("connect");
    replication
}

/// The blind seeder's step: replicas of `keys` in `store`, every block
/// downloaded from `addr`; none of them can be read as plaintext.
async fn clone_blind(store: &Store, keys: &[CoreKey], addr: std::net::SocketAddr) -> Replication {
    let replication = reader(store, addr).await;
    for key in keys {
        let core = store.replica(key).expect("replica");
        replication.add_core(&core);
        replication.update(&core, WAIT).await.expect("update");
        tokio::time::timeout(WAIT, replication.download(&core, DownloadRange::all()))
            .await
            .expect("in time")
            .expect("download");
        let info = core.info().expect("info");
        assert!(info.length > 0 && info.contiguous_length == info.length);
    }
    replication
}

/// Whether any block of `core` (as stored) holds `needle`.
fn leaks(core: &Core, needle: &[u8]) -> bool {
    let length = core.info().expect("info").length;
    (0..length).any(|i| {
        let block = core.get(i).expect("stored block");
        block.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_bee_through_a_blind_seeder() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let [writer, seeder, reader_store] = [0, 1, 2].map(|i| store(dirs[i].path()));
    let secret = EncryptionKey::generate().expect("key");
    let bee = Bee::open(
        writer
            .named("kv")
            .expect("core")
            .with_encryption(&secret)
            .expect("enc"),
    )
    .expect("bee");
    let mut batch = bee.batch();
    for i in 0..500u32 {
        batch.put(
            format!("user/{i:04}").as_bytes(),
            format!("secret value {i}").as_bytes(),
        );
    }
    batch.commit().expect("commit");
    let key = bee.core().key();
    let (_w, waddr) = serve(&writer).await;

    let _blind = clone_blind(&seeder, &[key], waddr).await;
    let held = seeder.core(&key).expect("held");
    assert!(!leaks(&held, b"secret value"), "the seeder holds plaintext");
    assert!(!leaks(&held, b"user/"), "the seeder holds plaintext keys");
    assert!(Bee::open(held).is_err(), "the seeder opened the bee");
    let (_s, saddr) = serve(&seeder).await;

    // The reader: fetches through the seeder only the blocks its lookups walk.
    let replication = reader(&reader_store, saddr).await;
    let replica = reader_store.replica(&key).expect("replica");
    replication.add_core(&replica);
    let replica = replica.with_encryption(&secret).expect("enc");
    replication.get(&replica, 0, WAIT).await.expect("header");
    let remote = Bee::open(replica.clone()).expect("a bee with the key");
    for i in [0u32, 17, 250, 499] {
        let got = with_fetch(
            || remote.get(format!("user/{i:04}").as_bytes()),
            |seq| {
                let (r, c) = (replication.clone(), replica.clone());
                async move { r.get(&c, seq, WAIT).await.map(|_| ()) }
            },
            |e| hyper_bee::Error::Fetch(Box::new(e)),
        )
        .await
        .expect("get");
        assert_eq!(got, Some(format!("secret value {i}").into_bytes()));
    }
    let stored = replica.info().expect("info").blocks_stored;
    assert!(
        stored < bee.version().expect("version"),
        "a sparse read fetched everything"
    );

    // A wrong key is an error, never a garbled bee.
    let wrong = reader_store
        .replica(&key)
        .expect("replica")
        .with_encryption(&EncryptionKey::generate().expect("key"))
        .expect("a replica checks the key at its first read");
    assert!(Bee::open(wrong).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_drive_through_a_blind_seeder() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
    let [writer, seeder, reader_store] = [0, 1, 2].map(|i| store(dirs[i].path()));
    let secret = EncryptionKey::generate().expect("key");
    let drive = Drive::encrypted(&secret)
        .named(&writer, "site")
        .expect("drive");
    // Several blocks of text that does not repeat (so the chunker makes
    // distinct chunks), and a small file.
    let big: Vec<u8> = (0..40_000u32)
        .flat_map(|i| format!("line {i} of the private report\n").into_bytes())
        .collect();
    drive
        .put("/report.txt", &big, &FileMeta::default())
        .expect("put");
    drive
        .put("/notes/todo.txt", b"buy milk", &FileMeta::default())
        .expect("put");
    let keys = [drive.key(), drive.blobs().key()];
    assert!(drive.blobs().info().expect("info").length > 3);
    // This store refuses the drive without the key.
    assert!(matches!(
        Drive::open(&writer, &drive.key()),
        Err(hyper_drive::Error::Core(hyper_core::Error::EncryptionKeyRequired(k))) if k == drive.key()
    ));
    let (_w, waddr) = serve(&writer).await;

    // The blind seeder clones both cores by key (the header that links
    // them is encrypted, so it is given both) and cannot open the drive.
    let _blind = clone_blind(&seeder, &keys, waddr).await;
    for key in &keys {
        let held = seeder.core(key).expect("held");
        assert!(
            !leaks(&held, b"private report"),
            "the seeder holds plaintext"
        );
        assert!(!leaks(&held, b"todo.txt"), "the seeder holds a path");
    }
    assert!(Drive::open(&seeder, &drive.key()).is_err());
    let (_s, saddr) = serve(&seeder).await;

    // The reader opens it through the seeder with the key, reads one file
    // and a byte range of the other, fetching only what those reads need.
    let replication = reader(&reader_store, saddr).await;
    for key in &keys {
        replication.add_core(&reader_store.replica(key).expect("replica"));
    }
    let fetch = ReplicationFetch::new(replication.clone(), WAIT);
    let remote = Drive::encrypted(&secret)
        .open_replica(&reader_store, &drive.key(), &fetch)
        .await
        .expect("open with the key");
    let todo = remote
        .with_fetch(&fetch, |d| d.get("/notes/todo.txt"))
        .await
        .expect("get");
    assert_eq!(todo, Some(b"buy milk".to_vec()));
    let names = remote
        .with_fetch(&fetch, |d| d.readdir("/"))
        .await
        .expect("readdir");
    let names: Vec<String> = names.into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["notes", "report.txt"]);
    let start = big.len() as u64 - 100;
    let tail = remote
        .with_fetch(&fetch, |d| {
            let mut stream = d.read_stream("/report.txt", start, None)?;
            let mut out = Vec::new();
            while let Some(chunk) = stream.next_chunk()? {
                out.extend(chunk);
            }
            Ok(out)
        })
        .await
        .expect("read the tail");
    assert_eq!(tail, big[big.len() - 100..]);
    let blobs = remote.blobs().info().expect("info");
    assert!(
        blobs.blocks_stored < blobs.length,
        "a sparse read fetched every blob"
    );

    // Without the key, or with another, the reader cannot open it.
    let other = tempfile::tempdir().expect("dir");
    let other = store(other.path());
    let replication = reader(&other, saddr).await;
    replication.add_core(&other.replica(&drive.key()).expect("replica"));
    let fetch = ReplicationFetch::new(replication, WAIT);
    let wrong = EncryptionKey::generate().expect("key");
    let refused = Drive::encrypted(&wrong)
        .open_replica(&other, &drive.key(), &fetch)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("does not decrypt"), "{refused}");
    assert!(
        hyper_drive::fetch::open_replica(&other, &drive.key(), &fetch)
            .await
            .is_err()
    );
}
