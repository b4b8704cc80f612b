//! Helpers shared by the integration tests of hyper-wire.
#![allow(dead_code)] // each test binary uses some of them

use hyper_core::{Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{Replication, ReplicationOptions};
use rand::Rng;

/// A store in a fresh tempdir, committing without an fsync per batch.
pub fn eventual_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )
    .expect("store");
    (dir, store)
}

/// A replication of `store` under a fresh identity, of the cores added
/// to it (the default options).
pub fn replication(store: &Store) -> Replication {
    Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions::default(),
    )
}

/// A replication of `store` under a fresh identity that serves every core
/// of the store (`all_cores`).
pub fn all_cores(store: &Store) -> Replication {
    Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            all_cores: true,
            ..ReplicationOptions::default()
        },
    )
}

/// A fuzz input: random bytes (30%) or `valid`, then up to `max_edits`
/// bit flips, byte replacements or truncations.
pub fn mutated(
    rng: &mut impl Rng,
    valid: &[u8],
    max_random: usize,
    edits: std::ops::Range<usize>,
) -> Vec<u8> {
    let mut input = if rng.random_bool(0.3) {
        let mut bytes = vec![0u8; rng.random_range(0..max_random)];
        rng.fill_bytes(&mut bytes);
        bytes
    } else {
        valid.to_vec()
    };
    for _ in 0..rng.random_range(edits) {
        if input.is_empty() {
            break;
        }
        let at = rng.random_range(0..input.len());
        match rng.random_range(0..3) {
            0 => input[at] ^= 1 << rng.random_range(0..8),
            1 => input[at] = rng.random(),
            _ => input.truncate(at),
        }
    }
    input
}

pub mod hostile;

/// A store holding one core of `blocks` small blocks.
pub fn writer(blocks: u64) -> (tempfile::TempDir, Store, hyper_core::Core) {
    let (dir, store) = eventual_store();
    let core = store.create_core().expect("core");
    let data: Vec<Vec<u8>> = (0..blocks)
        .map(|i| format!("block {i}").into_bytes())
        .collect();
    core.append_batch(&data).expect("append");
    (dir, store, core)
}

/// Serves every core of `store` on a loopback TCP port (`all_cores`).
pub async fn serve(store: &Store) -> (Replication, std::net::SocketAddr) {
    let serving = all_cores(store);
    let (listener, addr) = hyper_wire::listen_tcp("127.0.0.1:0").await.expect("listen");
    hyper_wire::serve_tcp(&serving, listener);
    (serving, addr)
}

/// Downloads all of `core` through `replication` from the peer at `addr`
/// (within 20 s), then closes that connection: from then on the store
/// holds the core on its own.
pub async fn clone_from(
    replication: &Replication,
    core: &hyper_core::Core,
    addr: std::net::SocketAddr,
) {
    let upstream = hyper_wire::connect_tcp(replication, addr)
        .await
        .expect("connect");
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        replication.download(core, hyper_wire::DownloadRange::all()),
    )
    .await
    .expect("clone in time")
    .expect("clone");
    upstream.close();
}
