//! [`ReplicatedSource`] over TCP on loopback between real stores: a get
//! waits for a block from the seeder (and moves only it), a block no peer
//! has is a typed error after the timeout, a prefetch downloads its range
//! in the background and stops when dropped; a local core never waits.

use std::time::{Duration, Instant};

use hyper_core::{BlockSource, Core, Store};
use hyper_wire::{ReplicatedSource, Replication, connect_tcp, listen_tcp, serve_tcp};

mod common;

async fn reader_of(
    seeder: &Store,
    key: &hyper_core::CoreKey,
) -> (
    tempfile::TempDir,
    Store,
    Core,
    ReplicatedSource,
    Replication,
) {
    let serving = common::all_cores(seeder);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let _server = serve_tcp(&serving, listener);
    let (dir, store) = common::eventual_store();
    let replica = store.replica(key).expect("replica");
    let reader = common::replication(&store);
    let source = ReplicatedSource::new(&reader, &replica);
    connect_tcp(&reader, addr).await.expect("connect");
    (dir, store, replica, source, serving)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_waits_for_the_block_and_moves_only_it() {
    let (_wd, ws, wc) = common::writer(1000);
    let (_rd, _rs, replica, source, _serving) = reader_of(&ws, &wc.key()).await;
    let block = source.get(700, Duration::from_secs(10)).await.expect("get");
    assert_eq!(block, b"block 700");
    assert!(source.remote());
    let info = replica.info().expect("info");
    assert_eq!((info.length, info.blocks_stored), (1000, 1));
    // Stored: the next get is answered from the local copy.
    assert_eq!(
        source.get(700, Duration::ZERO).await.expect("again"),
        b"block 700"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_no_peer_has_is_a_fetch_error_after_the_timeout() {
    let (_wd, ws, wc) = common::writer(10);
    let (_rd, _rs, _replica, source, _serving) = reader_of(&ws, &wc.key()).await;
    source
        .get(0, Duration::from_secs(10))
        .await
        .expect("length known");
    let started = Instant::now();
    let got = source.get(50, Duration::from_millis(300)).await;
    assert!(
        matches!(got, Err(hyper_core::Error::Fetch { index: 50, .. })),
        "{got:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "honours its timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefetch_downloads_its_range_in_the_background() {
    let (_wd, ws, wc) = common::writer(2000);
    let (_rd, _rs, replica, source, _serving) = reader_of(&ws, &wc.key()).await;
    source
        .get(0, Duration::from_secs(10))
        .await
        .expect("length known");
    let prefetch = source.prefetch(100..1100);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !replica.has_range(100..1100).expect("has") {
        assert!(Instant::now() < deadline, "the prefetch did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(prefetch);
    let info = replica.info().expect("info");
    assert_eq!(info.blocks_stored, 1001, "only the range and block 0");
    // A range held already starts nothing.
    assert!(format!("{:?}", source.prefetch(100..1100)).contains("false"));
}

#[test]
fn a_local_core_never_waits() {
    let (_d, _s, core) = common::writer(3);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut got = BlockSource::get(&core, 2, Duration::from_secs(60));
    match got.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(block) => assert_eq!(block.expect("block"), b"block 2"),
        std::task::Poll::Pending => panic!("a local get waited"),
    }
    let mut past = BlockSource::get(&core, 9, Duration::from_secs(60));
    assert!(matches!(
        past.as_mut().poll(&mut cx),
        std::task::Poll::Ready(Err(hyper_core::Error::OutOfBounds { index: 9, .. }))
    ));
    assert!(!core.remote());
    assert_eq!(BlockSource::length(&core).expect("length"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_read_stream_follows_a_writer_over_tcp() {
    let (_wd, ws, wc) = common::writer(100);
    let (_rd, _rs, replica, source, _serving) = reader_of(&ws, &wc.key()).await;
    let mut stream = hyper_core::ReadStream::new(
        std::sync::Arc::new(source),
        &hyper_core::ReadOptions {
            live: true,
            ..hyper_core::ReadOptions::default()
        },
    )
    .expect("stream");
    let writer = {
        let wc = wc.clone();
        tokio::task::spawn_blocking(move || {
            for i in 100..600u64 {
                wc.append(format!("block {i}").as_bytes()).expect("append");
                if i % 100 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    for i in 0..600u64 {
        let next = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .unwrap_or_else(|_| panic!("stalled at block {i}"))
            .expect("live: no end")
            .expect("block");
        assert_eq!(next, (i, format!("block {i}").into_bytes()));
    }
    writer.await.expect("writer");
    assert_eq!(replica.info().expect("info").contiguous_length, 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_byte_stream_seeks_on_a_sparse_replica_fetching_few_blocks() {
    // 2,000 blocks of 1 to 200 bytes.
    let (_wd, ws) = common::eventual_store();
    let wc = ws.create_core().expect("core");
    let blocks: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| vec![(i % 251) as u8; 1 + (i as usize * 37) % 200])
        .collect();
    wc.append_batch(&blocks).expect("append");
    let all: Vec<u8> = blocks.concat();
    let (_rd, _rs, replica, source, _serving) = reader_of(&ws, &wc.key()).await;
    source
        .get(0, Duration::from_secs(10))
        .await
        .expect("length known");
    let source: std::sync::Arc<dyn BlockSource> = std::sync::Arc::new(source);
    let offset = all.len() as u64 * 2 / 3 + 11;
    // The local tree alone cannot seek there.
    assert!(matches!(
        hyper_core::ByteStream::new(source.clone(), offset, Some(500), Duration::from_secs(1)),
        Err(hyper_core::Error::NodeNotAvailable { .. })
    ));
    let before = replica.info().expect("info").blocks_stored;
    let mut bytes =
        hyper_core::ByteStream::open(source, offset, Some(500), Duration::from_secs(10))
            .await
            .expect("open");
    let mut got = Vec::new();
    while let Some(chunk) = bytes.next().await {
        got.extend(chunk.expect("chunk"));
    }
    let start = offset as usize;
    assert_eq!(got, all[start..start + 500]);
    let fetched = replica.info().expect("info").blocks_stored - before;
    eprintln!("the seek and 500 bytes fetched {fetched} blocks");
    assert!(fetched < 40, "fetched {fetched} blocks");
}
