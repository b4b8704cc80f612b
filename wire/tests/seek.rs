//! Seek proofs requested from peers, over real TCP between real stores: a
//! sparse replica finds the block holding a byte offset of a 10,000-block
//! core with one request that moves O(log n) tree nodes and no block,
//! then reads from there; a seek nobody can answer ends at its timeout; a
//! peer that answers another offset than the one asked is dropped.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::hostile::altering_server;
use hyper_core::{BlockSource, ByteStream, Core, Store};
use hyper_wire::{Error, ReplicatedSource, Replication, connect_tcp};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BLOCKS: u64 = 10_000;

/// A writer of [`BLOCKS`] blocks of 1 to 200 bytes each, and the blocks.
fn writer() -> (tempfile::TempDir, Store, Core, Vec<Vec<u8>>) {
    let (dir, store) = common::eventual_store();
    let core = store.create_core().expect("core");
    let blocks: Vec<Vec<u8>> = (0..BLOCKS)
        .map(|i| {
            let len = 1 + (i as usize * 37) % 200;
            (0..len).map(|j| (i as usize * 7 + j) as u8).collect()
        })
        .collect();
    core.append_batch(&blocks).expect("append");
    (dir, store, core, blocks)
}

/// A TCP relay to `to` that counts the bytes it passes from `to` back to
/// whoever dialled it.
async fn counting_relay(to: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let down = Arc::new(AtomicU64::new(0));
    let counted = down.clone();
    tokio::spawn(async move {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let Ok(server) = tokio::net::TcpStream::connect(to).await else {
            return;
        };
        let (mut client_read, mut client_write) = client.into_split();
        let (mut server_read, mut server_write) = server.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        });
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = server_read.read(&mut buf).await {
            if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
            counted.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    (addr, down)
}

/// A reader of `core`'s key with nothing stored, connected to `addr`.
async fn reader_at(
    key: &hyper_core::CoreKey,
    addr: SocketAddr,
) -> (
    tempfile::TempDir,
    Store,
    Core,
    Replication,
    ReplicatedSource,
) {
    let (dir, store) = common::eventual_store();
    let replica = store.replica(key).expect("replica");
    let reader = common::replication(&store);
    let source = ReplicatedSource::new(&reader, &replica);
    connect_tcp(&reader, addr).await.expect("connect");
    (dir, store, replica, reader, source)
}

/// Waits until `count` stops moving for 200 ms.
async fn settled(count: &AtomicU64) -> u64 {
    let mut last = count.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = count.load(Ordering::Relaxed);
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_seek_is_one_proof_of_log_n_nodes_and_no_block() {
    let (_wd, ws, wc, blocks) = writer();
    let (_serving, seeder) = common::serve(&ws).await;
    let (relay, down) = counting_relay(seeder).await;
    let (_rd, _rs, replica, reader, source) = reader_at(&wc.key(), relay).await;
    assert_eq!(
        reader
            .update(&replica, Duration::from_secs(10))
            .await
            .expect("length known"),
        BLOCKS
    );
    let before = settled(&down).await;

    let target = 7_003u64;
    let start: u64 = blocks[..target as usize]
        .iter()
        .map(|b| b.len() as u64)
        .sum();
    let offset = start + blocks[target as usize].len() as u64 / 2;
    // The local tree alone cannot find it.
    assert!(
        matches!(
            replica.seek(offset),
            Err(hyper_core::Error::NodeNotAvailable { .. })
        ),
        "{:?}",
        replica.seek(offset)
    );
    let found = source
        .seek(offset, Duration::from_secs(10))
        .await
        .expect("seek");
    assert_eq!(found, (target, offset - start));
    let moved = settled(&down).await - before;
    // About 14 sibling hashes with their sizes, framed and encrypted;
    // a fetch per tree level moved 14 blocks and their proofs instead.
    eprintln!("the seek moved {moved} bytes");
    assert!(moved < 1200, "the seek moved {moved} bytes");
    assert_eq!(replica.info().expect("info").blocks_stored, 0, "no block");
    assert_eq!(reader.stats(&replica).await.total.blocks_down, 0);
    // The path is stored: the local tree seeks there now.
    assert_eq!(replica.seek(offset).expect("local seek"), found);

    let source: Arc<dyn BlockSource> = Arc::new(source);
    let mut bytes = ByteStream::open(source, offset, Some(400), Duration::from_secs(10))
        .await
        .expect("open");
    let mut got = Vec::new();
    while let Some(chunk) = bytes.next().await {
        got.extend(chunk.expect("chunk"));
    }
    let all: Vec<u8> = blocks.concat();
    assert_eq!(got, all[offset as usize..offset as usize + 400]);
    let stored = replica.info().expect("info").blocks_stored;
    // The blocks it spans and the read-ahead windows past them, no more.
    assert!(stored < 20, "read 400 bytes with {stored} blocks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_on_a_replica_that_knows_nothing_upgrades_it_too() {
    let (_wd, ws, wc, blocks) = writer();
    let (_serving, seeder) = common::serve(&ws).await;
    let (_rd, _rs, replica, reader, source) = reader_at(&wc.key(), seeder).await;
    let found = source
        .seek(0, Duration::from_secs(10))
        .await
        .expect("seek byte 0");
    assert_eq!(found, (0, 0));
    // The one answer carried the upgrade to the writer's length.
    let info = replica.info().expect("info");
    assert_eq!((info.length, info.blocks_stored), (BLOCKS, 0));
    let last = blocks.iter().map(|b| b.len() as u64).sum::<u64>() - 1;
    assert_eq!(
        reader
            .seek(&replica, last, Duration::from_secs(10))
            .await
            .expect("seek the last byte"),
        (BLOCKS - 1, blocks[BLOCKS as usize - 1].len() as u64 - 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_nobody_can_answer_ends_at_its_timeout() {
    let (_wd, ws, wc, blocks) = writer();
    let (_serving, seeder) = common::serve(&ws).await;
    let (_rd, _rs, replica, reader, source) = reader_at(&wc.key(), seeder).await;
    reader
        .update(&replica, Duration::from_secs(10))
        .await
        .expect("length known");
    let past = blocks.iter().map(|b| b.len() as u64).sum::<u64>() + 10;
    let started = Instant::now();
    let got = source.seek(past, Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(
        matches!(&got, Err(hyper_core::Error::SeekFetch { bytes, .. }) if *bytes == past),
        "{got:?}"
    );
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "ended after {took:?}"
    );
}

#[tokio::test]
async fn a_peer_that_answers_another_offset_is_dropped() {
    let (_wd, _ws, wc, _blocks) = writer();
    // Every seek answered with a genuine seek proof of another offset.
    let liar = altering_server(wc.clone(), |asked| {
        if let Some(bytes) = asked.seek.as_mut() {
            *bytes += 5_000;
        }
        true
    })
    .await;
    let (_rd, rs) = common::eventual_store();
    let replica = rs.replica(&wc.key()).expect("replica");
    let reader = common::replication(&rs);
    reader.add_core(&replica);
    let connection = connect_tcp(&reader, liar).await.expect("connect");
    let seek = reader.seek(&replica, 100, Duration::from_secs(3));
    let (ended, got) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), connection.closed()),
        seek
    );
    let ended = ended.expect("the liar must be dropped");
    assert!(matches!(ended, Err(Error::Malformed(_))), "{ended:?}");
    assert!(got.is_err(), "{got:?}");
    // Nothing it sent was stored: not even the upgrade that came with it.
    assert_eq!(replica.info().expect("info").length, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_that_timed_out_on_a_silent_peer_frees_its_slot() {
    let (_wd, ws, wc, blocks) = writer();
    let (_serving, seeder) = common::serve(&ws).await;
    let (_rd, rs) = common::eventual_store();
    let replica = rs.replica(&wc.key()).expect("replica");
    let reader = common::replication(&rs);
    reader.add_core(&replica);
    // The length is known first, so the silent peer is never ahead.
    let honest = connect_tcp(&reader, seeder).await.expect("connect");
    reader
        .update(&replica, Duration::from_secs(10))
        .await
        .expect("length known");
    honest.close();
    // It tells its state and never answers a request.
    let silent = altering_server(wc.clone(), |_| false).await;
    let _quiet = connect_tcp(&reader, silent).await.expect("connect");
    let start: u64 = blocks[..7_000].iter().map(|b| b.len() as u64).sum();
    let deadline = Instant::now() + Duration::from_secs(5);
    while reader.synced_peers(&replica).await < 1 {
        assert!(Instant::now() < deadline, "the silent peer did not sync");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = reader
        .seek(&replica, start, Duration::from_millis(300))
        .await;
    assert!(matches!(got, Err(Error::Timeout)), "{got:?}");
    // An honest seeder answers the next seek at once: the one that timed
    // out no longer holds the core's upgrade slot, which the silent peer
    // would otherwise keep until it is found stalled (15 s), and the peer
    // that left a seek unanswered is asked last.
    let _honest = connect_tcp(&reader, seeder).await.expect("connect");
    while reader.synced_peers(&replica).await < 2 {
        assert!(Instant::now() < deadline, "the seeder did not sync");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let found = reader
        .seek(&replica, start, Duration::from_secs(5))
        .await
        .expect("seek");
    assert_eq!(found, (7_000, 0));
    assert!(started.elapsed() < Duration::from_secs(4));
}
