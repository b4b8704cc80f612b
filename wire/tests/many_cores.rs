//! Many cores over one connection (issue 15's L3, scaled down): a reader
//! that opens hundreds of cores on one TCP connection to an all-cores
//! seeder and starts every download at once, with the default configs on
//! both sides, must get every block of every core, without tripping the
//! seeder's limits on hostile peers and without stalls waiting for a
//! timeout. Real stores in tempdirs, real TCP on loopback.

use std::time::{Duration, Instant};

use hyper_core::{Core, KeyPair, Store};
use hyper_wire::{
    Config, DownloadRange, Limits, Replication, ReplicationOptions, connect_tcp, listen_tcp,
    serve_tcp,
};

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

/// Replicates every core of a fresh `cores` x `blocks` seeder (serving
/// all its cores with `seeder_options`) to a fresh reader (with
/// `reader_options`) over one TCP connection, every download at once;
/// fails if the connection ends or if not everything arrives within
/// `bound`. Returns the time it took.
async fn replicate_all_at_once(
    cores: usize,
    blocks: u64,
    seeder_options: ReplicationOptions,
    reader_options: ReplicationOptions,
    bound: Duration,
) -> Duration {
    let (_sd, seeder, originals) = seeder_store(cores, blocks);
    let serving = Replication::new(
        seeder.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            all_cores: true,
            ..seeder_options
        },
    );
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let _server = serve_tcp(&serving, listener);
    let (_rd, reader) = common::eventual_store();
    let replication = Replication::new(
        reader.clone(),
        KeyPair::generate().expect("keys"),
        reader_options,
    );
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
        let (serving, replication) = (serving.clone(), replication.clone());
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
    // What the reader keeps in flight and the seeder holds queued, sampled.
    let peak = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let sampler = {
        let (serving, replication, peak) = (serving.clone(), replication.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                let inflight = replication.resources().await.largest_inflight;
                let queued = serving.resources().await.queued_requests;
                {
                    let mut p = peak.lock().expect("peak");
                    *p = (p.0.max(inflight), p.1.max(queued));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
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
            if std::env::var_os("MANY_CORES_TRACE").is_some()
                && last.elapsed() > Duration::from_millis(500)
            {
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
    sampler.abort();
    assert_eq!(done, cores);
    let (inflight, queued) = *peak.lock().expect("peak");
    let bound = Config::default().max_inflight_per_peer;
    assert!(
        inflight > 0 && inflight <= bound,
        "the reader had {inflight} requests in flight at most (bound {bound})"
    );
    // Its requests, and one `Want` per download.
    assert!(
        queued <= bound + cores,
        "the seeder held {queued} of the reader's requests and wants queued (bound {bound} + {cores})"
    );
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

/// 384 cores of 20 blocks, default configs on both sides: more requests
/// (384 upgrades, then 20 blocks per core) than the seeder's
/// `max_queued_requests` of 4,096 if the reader bounded them per core
/// only. In a debug build the reader is too slow (one store transaction
/// per core's upgrade, the signature checks) to fill the seeder's 16 MiB
/// backlog, so the seeder's queue stays short even without the per-peer
/// bound: this checks the whole path with defaults and the peaks; the
/// congested test below is the one that reproduces the cut-off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_cores_replicate_at_once_over_one_connection() {
    let took = replicate_all_at_once(
        384,
        20,
        ReplicationOptions::default(),
        ReplicationOptions::default(),
        Duration::from_secs(120),
    )
    .await;
    eprintln!("384 cores x 20 blocks in {took:?}");
}

/// A seeder whose writer is nearly always full (a 32 KiB backlog bound):
/// every answer waits for room, so the seeder must be woken each time its
/// writer makes some, however little, and the reader's requests pile up
/// in the seeder's queue as far as the reader lets them: 96 cores of 96
/// blocks, 9,216 requests if bounded per core only, past the 4,096 that
/// cut a reader off as a flood. The reader never gives up on a silent peer here (a
/// 10-minute stall timeout), so one lost wake-up hangs the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_congested_seeder_is_woken_as_its_writer_makes_room() {
    let seeder = ReplicationOptions {
        limits: Limits {
            max_backlog: 32 << 10,
            ..Limits::default()
        },
        ..ReplicationOptions::default()
    };
    let reader = ReplicationOptions {
        config: Config {
            stall_timeout: Duration::from_secs(600),
            ..Config::default()
        },
        // A reader that reads no further ahead than its driver handles:
        // the socket fills and the seeder's writer with it.
        limits: Limits {
            inbox_bytes: 64 << 10,
            ..Limits::default()
        },
        ..ReplicationOptions::default()
    };
    let took = replicate_all_at_once(96, 96, seeder, reader, Duration::from_secs(120)).await;
    eprintln!("96 cores x 96 blocks through a 32 KiB backlog in {took:?}");
}
