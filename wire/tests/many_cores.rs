//! Many cores over one connection (issue 15's L3, scaled down): a reader
//! that opens hundreds of cores on one TCP connection to an all-cores
//! seeder and starts every download at once, with the default configs on
//! both sides, must get every block of every core, without tripping the
//! seeder's limits on hostile peers and without stalls waiting for a
//! timeout. Real stores in tempdirs, real TCP on loopback.

use std::time::{Duration, Instant};

use hyper_core::{Core, Store};
use hyper_wire::{DownloadRange, Replication, connect_tcp};

mod common;

/// A seeder store of `cores` cores of `blocks` blocks of 1 KiB each.
fn seeder_store(cores: usize, blocks: u64) -> (tempfile::TempDir, Store, Vec<Core>) {
    let (dir, store) = common::eventual_store();
    let made = (0..cores)
        .map(|c| {
            let core = store.create_core().expect("core");
            let data: Vec<Vec<u8>> = (0..blocks)
                .map(|i| {
                    let mut b = vec![(c % 251) as u8; 1024];
                    b[..8].copy_from_slice(&i.to_le_bytes());
                    b[8..16].copy_from_slice(&(c as u64).to_le_bytes());
                    b
                })
                .collect();
            core.append_batch(&data).expect("append");
            core
        })
        .collect();
    (dir, store, made)
}

/// Replicates every core of a fresh `cores` x `blocks` seeder to a fresh
/// reader over one TCP connection, every download at once; fails if the
/// connection ends or if not everything arrives within `bound`. Returns
/// the time it took.
async fn replicate_all_at_once(cores: usize, blocks: u64, bound: Duration) -> Duration {
    let (_sd, seeder, originals) = seeder_store(cores, blocks);
    let (_serving, addr) = common::serve(&seeder).await;
    let (_rd, reader) = common::eventual_store();
    let replication = common::replication(&reader);
    let replicas: Vec<Core> = originals
        .iter()
        .map(|c| reader.replica(&c.key()).expect("replica"))
        .collect();
    // Every core is opened in the connection's first burst of messages.
    for replica in &replicas {
        replication.add_core(replica);
    }
    let start = Instant::now();
    if std::env::var_os("MANY_CORES_TRACE").is_some() {
        let (serving, replication) = (_serving.clone(), replication.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1000)).await;
                eprintln!(
                    "{:?}: seeder {:?}\n   reader {:?}",
                    start.elapsed(),
                    serving.resources().await,
                    replication.resources().await
                );
            }
        });
    }
    let connection = connect_tcp(&replication, addr).await.expect("connect");
    let mut downloads = tokio::task::JoinSet::new();
    for replica in &replicas {
        let (replication, replica): (Replication, Core) = (replication.clone(), replica.clone());
        downloads.spawn(async move { replication.download(&replica, DownloadRange::all()).await });
    }
    let all = async {
        let mut done = 0usize;
        let mut last = Instant::now();
        while let Some(result) = downloads.join_next().await {
            result.expect("download task").expect("download");
            done += 1;
            if std::env::var_os("MANY_CORES_TRACE").is_some() && last.elapsed() > Duration::from_millis(500) {
                last = Instant::now();
                eprintln!("{:?}: {done} cores done", start.elapsed());
            }
        }
        done
    };
    let ended = connection.closed();
    tokio::pin!(ended);
    let done = tokio::select! {
        done = tokio::time::timeout(bound, all) => done,
        end = &mut ended => panic!("the connection ended mid-way: {end:?}"),
    };
    let held = replicas
        .iter()
        .filter(|r| r.info().expect("info").contiguous_length == blocks)
        .count();
    let done = done.unwrap_or_else(|_| {
        panic!("{held} of {cores} cores complete after {bound:?}: replication stalled")
    });
    let took = start.elapsed();
    assert_eq!(done, cores);
    for (original, replica) in originals.iter().zip(&replicas) {
        assert_eq!(replica.info().expect("info").contiguous_length, blocks);
        for i in [0, blocks / 2, blocks - 1] {
            assert_eq!(
                replica.get(i).expect("replica block"),
                original.get(i).expect("original block"),
                "core {} block {i}",
                original.key()
            );
        }
    }
    took
}

/// 768 cores of 20 blocks: far more requests at once (768 upgrades, then
/// 20 blocks per core) than the seeder's `max_queued_requests` of 4,096
/// if the reader bounded them per core only; and no part of it may wait
/// for the 15 s stall timeout to move on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_cores_replicate_at_once_over_one_connection() {
    let took = replicate_all_at_once(768, 20, Duration::from_secs(60)).await;
    eprintln!("768 cores x 20 blocks in {took:?}");
}
