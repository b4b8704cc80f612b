//! Replication end to end between real stores (redb files in tempdirs),
//! over in-memory pairs and TCP on loopback.

use std::time::Duration;

use hyper_core::{Core, Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, connect_memory, connect_tcp, listen_tcp,
    serve_tcp,
};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
        },
    )
    .expect("store");
    (dir, store)
}

fn writer(blocks: u64, size: usize) -> (tempfile::TempDir, Store, Core) {
    let (dir, store) = store();
    let core = store.create_core().expect("core");
    let data: Vec<Vec<u8>> = (0..blocks)
        .map(|i| {
            let mut b = vec![(i % 251) as u8; size];
            b[..8].copy_from_slice(&i.to_le_bytes());
            b
        })
        .collect();
    for chunk in data.chunks(1000) {
        core.append_batch(chunk).expect("append");
    }
    (dir, store, core)
}

fn replication(store: &Store) -> Replication {
    Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            all_cores: true,
            ..ReplicationOptions::default()
        },
    )
}

fn assert_same(a: &Core, b: &Core) {
    let (sa, sb) = (a.signed_state().expect("a"), b.signed_state().expect("b"));
    assert_eq!((sa.fork, sa.length), (sb.fork, sb.length));
    for i in 0..sa.length {
        assert_eq!(
            a.get(i).expect("a block"),
            b.get(i).expect("b block"),
            "block {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_download_over_memory() {
    let (_wd, ws, wc) = writer(3000, 100);
    let (_rd, rs) = store();
    let (a, b) = (replication(&ws), replication(&rs));
    let _conns = connect_memory(&b, &a).await.expect("connect");
    let replica = rs.replica(&wc.key()).expect("replica");
    tokio::time::timeout(
        Duration::from_secs(30),
        b.download(&replica, DownloadRange::all()),
    )
    .await
    .expect("in time")
    .expect("download");
    assert_same(&wc, &replica);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_get_over_tcp_fetches_only_that_block() {
    let (_wd, ws, wc) = writer(1000, 64);
    let (_rd, rs) = store();
    let (a, b) = (replication(&ws), replication(&rs));
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let _server = serve_tcp(&a, listener);
    let _conn = connect_tcp(&b, addr).await.expect("connect");
    let replica = rs.replica(&wc.key()).expect("replica");
    let block = b
        .get(&replica, 777, Duration::from_secs(10))
        .await
        .expect("get");
    assert_eq!(block, wc.get(777).expect("writer block"));
    let info = replica.info().expect("info");
    assert_eq!(info.length, 1000);
    assert_eq!(info.blocks_stored, 1, "only the block asked for is stored");
}
