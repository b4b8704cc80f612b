//! `Core::clear` on a seeder tells its peers (`Range` with `drop`), over
//! real TCP between real stores: a reader connected to two seeders stops
//! believing the clearing one holds the range and fetches it from the
//! other at once; with only the clearing seeder, a get of a cleared block
//! ends at its own timeout.

mod common;

use std::time::{Duration, Instant};

use hyper_core::{Core, CoreKey, Store};
use hyper_wire::{
    Connection, Error, PeerId, Replication, ReplicationEvent, connect_tcp, listen_tcp, serve_tcp,
};

const BLOCKS: u64 = 1000;

/// A full clone of `key` taken from `source`, serving it on a TCP port of
/// its own.
struct Seeder {
    _dir: tempfile::TempDir,
    _store: Store,
    core: Core,
    _replication: Replication,
    addr: std::net::SocketAddr,
}

async fn seeder_of(source: std::net::SocketAddr, key: &CoreKey) -> Seeder {
    let (dir, store) = common::eventual_store();
    let core = store.replica(key).expect("replica");
    let replication = common::replication(&store);
    // From now on it serves only what it holds itself.
    common::clone_from(&replication, &core, source).await;
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&replication, listener);
    Seeder {
        _dir: dir,
        _store: store,
        core,
        _replication: replication,
        addr,
    }
}

/// A writer of [`BLOCKS`] blocks, served over TCP.
async fn writer() -> (
    tempfile::TempDir,
    Store,
    Core,
    Replication,
    std::net::SocketAddr,
) {
    let (dir, store, core) = common::writer(BLOCKS);
    let (serving, addr) = common::serve(&store).await;
    (dir, store, core, serving, addr)
}

/// What `reader` believes `peer` holds of `core` from block 0 on.
async fn contiguous_of(reader: &Replication, core: &Core, peer: PeerId) -> Option<u64> {
    reader
        .stats(core)
        .await
        .peers
        .iter()
        .find(|p| p.peer == peer)
        .map(|p| p.contiguous_length)
}

/// Waits until `reader` believes `peer` holds exactly `0..length` of
/// `core` contiguously.
async fn wait_contiguous(reader: &Replication, core: &Core, peer: &Connection, length: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = contiguous_of(reader, core, peer.peer()).await;
        if now == Some(length) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the reader believes the peer holds {now:?} blocks from 0, not {length}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_range_is_fetched_from_the_other_seeder_at_once() {
    let (_wd, _ws, wc, _serving, waddr) = writer().await;
    let key = wc.key();
    let first = seeder_of(waddr, &key).await;
    let second = seeder_of(waddr, &key).await;

    let (_rd, rs) = common::eventual_store();
    let replica = rs.replica(&key).expect("replica");
    let reader = common::replication(&rs);
    reader.add_core(&replica);
    let mut events = reader.events();
    let to_first = connect_tcp(&reader, first.addr).await.expect("connect");
    let to_second = connect_tcp(&reader, second.addr).await.expect("connect");
    wait_contiguous(&reader, &replica, &to_first, BLOCKS).await;
    wait_contiguous(&reader, &replica, &to_second, BLOCKS).await;

    let freed = first.core.clear(300..600).expect("clear");
    assert!(freed > 0, "the clear freed block bytes");
    // The clearing seeder said so: the reader's view of it shrank.
    wait_contiguous(&reader, &replica, &to_first, 300).await;
    let believed = reader.stats(&replica).await;
    let first_view = believed
        .peers
        .iter()
        .find(|p| p.peer == to_first.peer())
        .expect("first seeder");
    assert_eq!(first_view.length, BLOCKS, "its length did not change");

    let started = Instant::now();
    let gets: Vec<_> = (300..600u64)
        .map(|i| {
            let (reader, replica) = (reader.clone(), replica.clone());
            tokio::spawn(async move { (i, reader.get(&replica, i, Duration::from_secs(10)).await) })
        })
        .collect();
    for get in gets {
        let (i, block) = get.await.expect("task");
        assert_eq!(block.expect("get"), format!("block {i}").into_bytes());
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "300 gets took {took:?}: some waited for a timeout"
    );
    // Every block came from the second seeder; the first was asked nothing
    // it could answer.
    // A get can return before its Downloaded event is delivered: wait for
    // the events (bounded), not only for what is queued already.
    let mut from_second = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while from_second < 300 {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await else {
            break;
        };
        if let ReplicationEvent::Downloaded { peer, index, .. } = event {
            assert_eq!(
                peer,
                to_second.peer(),
                "block {index} from the clearing seeder"
            );
            from_second += 1;
        }
    }
    assert_eq!(from_second, 300);
    assert_eq!(first.core.info().expect("info").blocks_stored, BLOCKS - 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_of_a_block_only_cleared_here_ends_at_its_timeout() {
    let (_wd, _ws, wc, _serving, waddr) = writer().await;
    let key = wc.key();
    let only = seeder_of(waddr, &key).await;

    let (_rd, rs) = common::eventual_store();
    let replica = rs.replica(&key).expect("replica");
    let reader = common::replication(&rs);
    reader.add_core(&replica);
    let connection = connect_tcp(&reader, only.addr).await.expect("connect");
    wait_contiguous(&reader, &replica, &connection, BLOCKS).await;

    only.core.clear(300..600).expect("clear");
    wait_contiguous(&reader, &replica, &connection, 300).await;
    let started = Instant::now();
    let got = reader.get(&replica, 450, Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(matches!(got, Err(Error::Timeout)), "{got:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "the get ended after {took:?}, not at its timeout"
    );
    // What the seeder still holds is served as before.
    assert_eq!(
        reader
            .get(&replica, 299, Duration::from_secs(5))
            .await
            .expect("kept block"),
        b"block 299"
    );
    assert!(!replica.has(450).expect("has"));
}
