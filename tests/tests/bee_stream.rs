//! A whole bee read remotely over TCP on loopback through the one read
//! path (`ReplicatedSource` + the bee's streams): `ls` and `history` of
//! 2,000 and 8,000 keys stay within 3x of clone-then-read-locally and
//! grow linearly; a remote get still moves O(log n) blocks.
//! `HYPER_BEE_STREAM_KEYS=50000` adds a larger size. A replica that
//! follows the writer's fork never reads its cached entries of the old one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_bee::{Bee, HistoryOptions, RangeOptions};
use hyper_core::KeyPair;
use hyper_wire::{
    DownloadRange, ReplicatedSource, Replication, ReplicationOptions, connect_tcp, listen_tcp,
    serve_tcp,
};

const TIMEOUT: Duration = Duration::from_secs(30);

use hyper_tests::{eventual_store as store, scrambled_key as key};

struct Seeder {
    _dir: tempfile::TempDir,
    bee: Bee,
    _replication: Replication,
    addr: std::net::SocketAddr,
    key: hyper_core::CoreKey,
    length: u64,
}

async fn seeder(keys: u32) -> Seeder {
    let dir = tempfile::tempdir().expect("dir");
    let store = store(dir.path());
    let bee = Bee::open(store.named("bee").expect("core")).expect("bee");
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1000) {
        let mut batch = bee.batch();
        for &i in chunk {
            batch.put(&key(i), format!("value {i}").as_bytes());
        }
        batch.commit().expect("batch");
    }
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
    Seeder {
        _dir: dir,
        bee: bee.clone(),
        _replication: replication,
        addr,
        key: bee.core().key(),
        length: bee.version().expect("version"),
    }
}

/// A fresh reader connected to the seeder: its bee on a replicated source.
async fn reader(seeder: &Seeder) -> (tempfile::TempDir, Replication, Bee) {
    let dir = tempfile::tempdir().expect("dir");
    let store = store(dir.path());
    let replica = store.replica(&seeder.key).expect("replica");
    let replication = Replication::new(
        store,
        KeyPair::generate().expect("keys"),
        ReplicationOptions::default(),
    );
    let source = ReplicatedSource::new(&replication, &replica);
    connect_tcp(&replication, seeder.addr)
        .await
        .expect("connect");
    let bee = Bee::open_source(Arc::new(source), TIMEOUT)
        .await
        .expect("bee");
    (dir, replication, bee)
}

#[derive(Debug, Clone, Copy)]
struct Times {
    ls: f64,
    history: f64,
    clone_then_ls: f64,
    clone_then_history: f64,
}

async fn measure(seeder: &Seeder, keys: u32) -> Times {
    // Remote ls, streamed.
    let (_d, _r, bee) = reader(seeder).await;
    let start = Instant::now();
    let mut stream = bee.range_stream(&RangeOptions::default()).expect("stream");
    let mut count = 0u32;
    let mut last: Option<Vec<u8>> = None;
    while let Some(item) = stream.next().await {
        let item = item.expect("item");
        assert!(last.as_ref().is_none_or(|l| *l < item.key), "in order");
        last = Some(item.key);
        count += 1;
    }
    let ls = start.elapsed().as_secs_f64();
    assert_eq!(count, keys);

    // Remote history, streamed.
    let (_d, _r, bee) = reader(seeder).await;
    let start = Instant::now();
    let history = bee
        .history_stream(&HistoryOptions::default())
        .expect("stream")
        .collect()
        .await
        .expect("history");
    let history_secs = start.elapsed().as_secs_f64();
    assert_eq!(history.len() as u64, seeder.length - 1);

    // Clone, then read locally.
    let (_d, replication, bee) = reader(seeder).await;
    let start = Instant::now();
    replication
        .download(bee.core(), DownloadRange::all())
        .await
        .expect("clone");
    let cloned = start.elapsed().as_secs_f64();
    let local = Bee::open(bee.core().clone()).expect("local bee");
    let start = Instant::now();
    assert_eq!(
        local.range(&RangeOptions::default()).expect("ls").len() as u32,
        keys
    );
    let clone_then_ls = cloned + start.elapsed().as_secs_f64();
    let start = Instant::now();
    assert_eq!(
        local.history(0..u64::MAX, false).expect("history").len(),
        history.len()
    );
    let clone_then_history = cloned + start.elapsed().as_secs_f64();
    let t = Times {
        ls,
        history: history_secs,
        clone_then_ls,
        clone_then_history,
    };
    eprintln!("{keys} keys: {t:?}");
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_ls_and_history_stream_within_3x_of_a_clone_and_linearly() {
    let mut sizes = vec![2_000u32, 8_000];
    if let Some(n) = std::env::var("HYPER_BEE_STREAM_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        sizes.push(n);
    }
    let mut times = Vec::new();
    for &keys in &sizes {
        let seeder = seeder(keys).await;
        let t = measure(&seeder, keys).await;
        // Small runs are dominated by fixed costs: allow 50 ms on top.
        assert!(t.ls <= 3.0 * t.clone_then_ls + 0.05, "ls of {keys}: {t:?}");
        assert!(
            t.history <= 3.0 * t.clone_then_history + 0.05,
            "history of {keys}: {t:?}"
        );
        times.push((keys, t));
    }
    // Linear: 4x the keys take well under 16x (quadratic) the time.
    let (small, large) = (times[0].1, times[1].1);
    assert!(
        large.ls < 8.0 * small.ls + 0.1,
        "ls grows faster than linearly: {times:?}"
    );
    assert!(
        large.history < 8.0 * small.history + 0.1,
        "history grows faster than linearly: {times:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_get_moves_only_its_path() {
    let seeder = seeder(8_000).await;
    let (_d, _r, bee) = reader(&seeder).await;
    for i in [0u32, 3_999, 7_999] {
        assert_eq!(
            bee.get_async(&key(i)).await.expect("get"),
            Some(format!("value {i}").into_bytes())
        );
    }
    assert_eq!(bee.get_async(b"absent").await.expect("get"), None);
    // Per lookup: a node and a binary search (3 of its at most 7 keys) per
    // level, about 6 levels for 8,000 keys.
    let stored = bee.core().info().expect("info").blocks_stored;
    eprintln!("4 gets stored {stored} of {} blocks", seeder.length);
    assert!(stored <= 1 + 4 * 6 * 4, "{stored} blocks for 4 gets");

    // Limited streams fetch about what they return.
    let (_d, _r, bee) = reader(&seeder).await;
    let newest = bee
        .history_stream(&HistoryOptions {
            reverse: true,
            limit: Some(10),
            ..Default::default()
        })
        .expect("stream")
        .collect()
        .await
        .expect("history");
    assert_eq!(newest.first().map(|c| c.seq), Some(seeder.length - 1));
    assert_eq!(newest.len(), 10);
    let first = bee
        .range_stream(&RangeOptions {
            limit: Some(10),
            ..Default::default()
        })
        .expect("stream")
        .collect()
        .await
        .expect("range");
    assert_eq!(first.len(), 10);
    let stored = bee.core().info().expect("info").blocks_stored;
    eprintln!("10 writes and 10 entries stored {stored} blocks");
    assert!(stored < 200, "{stored} blocks for 10 writes and 10 entries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_follows_a_fork_never_reads_stale_entries() {
    let seeder = seeder(3).await;
    let (_d, _r, bee) = reader(&seeder).await;
    let all = RangeOptions::default();
    let before = bee.range_stream(&all).expect("stream").collect().await;
    assert_eq!(before.expect("ls").len(), 3, "every block read and cached");
    // The writer goes back to its first write and writes other keys at
    // blocks 2 and 3.
    let writer = &seeder.bee;
    writer.core().truncate(2).expect("truncate");
    writer.put(b"d", b"4").expect("put");
    writer.put(b"e", b"5").expect("put");
    let deadline = Instant::now() + TIMEOUT;
    while bee.core().info().expect("info").fork != 1 || bee.version().expect("v") != 4 {
        assert!(
            Instant::now() < deadline,
            "the replica did not follow the fork"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after: Vec<Vec<u8>> = bee
        .range_stream(&all)
        .expect("stream")
        .collect()
        .await
        .expect("ls")
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(after, [key(0), b"d".to_vec(), b"e".to_vec()]);
    assert_eq!(bee.get_async(&key(1)).await.expect("get"), None);
}
