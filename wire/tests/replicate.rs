//! Replication end to end between real stores (redb files in tempdirs),
//! over in-memory pairs and TCP on loopback.

use std::time::Duration;

use hyper_core::{Core, KeyPair, Store};
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, connect_memory, connect_tcp, listen_tcp,
    serve_tcp,
};

mod common;

fn store() -> (tempfile::TempDir, Store) {
    common::eventual_store()
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
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
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
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_replicates_every_core_both_sides_know() {
    let (_wd, ws) = store();
    let cores: Vec<Core> = (0..3)
        .map(|i| {
            let core = ws.named(&format!("core{i}")).expect("core");
            let blocks: Vec<Vec<u8>> = (0..50 + i)
                .map(|j| format!("{i}/{j}").into_bytes())
                .collect();
            core.append_batch(&blocks).expect("append");
            core
        })
        .collect();
    let (_rd, rs) = store();
    // The reader knows two of the three keys; the third stays secret.
    let replicas: Vec<Core> = cores[..2]
        .iter()
        .map(|c| rs.replica(&c.key()).expect("replica"))
        .collect();
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
    let (ca, _cb) = connect_memory(&b, &a).await.expect("connect");
    for (replica, core) in replicas.iter().zip(&cores) {
        tokio::time::timeout(
            Duration::from_secs(20),
            b.download(replica, DownloadRange::all()),
        )
        .await
        .expect("in time")
        .expect("download");
        assert_same(core, replica);
    }
    assert_eq!(b.peers().await, vec![ca.peer()]);
    assert!(
        rs.core(&cores[2].key()).is_err(),
        "the unknown core was not created"
    );
}

/// A live download of `replica` through `b`, on its own task.
fn spawn_live(b: &Replication, replica: &Core) -> tokio::task::JoinHandle<hyper_wire::Result<()>> {
    let (b, replica) = (b.clone(), replica.clone());
    tokio::spawn(async move { b.download(&replica, DownloadRange::live()).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_readers_follow_appends_and_truncations() {
    let (_wd, ws, wc) = writer(200, 10);
    let (_rd, rs) = store();
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
    let _conns = connect_memory(&b, &a).await.expect("connect");
    let replica = rs.replica(&wc.key()).expect("replica");
    let live = spawn_live(&b, &replica);
    let converged = |want: u64, fork: u64| {
        let replica = replica.clone();
        async move {
            for _ in 0..400 {
                let s = replica.signed_state().expect("state");
                if s.length == want && s.fork == fork && replica.has_range(0..want).expect("has") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("reader did not reach length {want} on fork {fork}");
        }
    };
    converged(200, 0).await;
    wc.append_batch(&[b"more".as_slice(); 30]).expect("append");
    converged(230, 0).await;
    // A truncation: the reader follows the new fork and drops what it cut.
    wc.truncate(120).expect("truncate");
    wc.append_batch(&[b"new fork".as_slice(); 5])
        .expect("append");
    converged(125, 1).await;
    assert_same(&wc, &replica);
    assert_eq!(replica.info().expect("info").blocks_stored, 125);
    live.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_messages_reach_peers_with_the_core_open() {
    let (_wd, ws, wc) = writer(10, 10);
    let (_rd, rs) = store();
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
    let replica = rs.replica(&wc.key()).expect("replica");
    b.add_core(&replica);
    let mut inbox = b.extensions();
    let (ca, _cb) = connect_memory(&a, &b).await.expect("connect");
    // Wait until the channel is paired: the reader learns the length.
    b.get(&replica, 0, Duration::from_secs(10))
        .await
        .expect("paired");
    a.send_extension(&wc, "chat", b"hello").expect("send");
    let got = tokio::time::timeout(Duration::from_secs(10), inbox.recv())
        .await
        .expect("in time")
        .expect("a message");
    assert_eq!(
        (got.key, got.name.as_str(), got.message.as_slice()),
        (wc.key(), "chat", &b"hello"[..])
    );
    let _ = ca;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_nobody_can_answer_times_out_and_a_dropped_one_is_cancelled() {
    let (_wd, ws, wc) = writer(10, 10);
    let (_rd, rs) = store();
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
    let replica = rs.replica(&wc.key()).expect("replica");
    let _conns = connect_memory(&a, &b).await.expect("connect");
    // Past the writer's length: no peer has it.
    let missing = b.get(&replica, 50, Duration::from_millis(300)).await;
    assert!(
        matches!(missing, Err(hyper_wire::Error::Timeout)),
        "{missing:?}"
    );
    // Dropped before it finishes: nothing breaks, later gets still work.
    let dropped = tokio::time::timeout(
        Duration::from_millis(1),
        b.get(&replica, 60, Duration::from_secs(60)),
    )
    .await;
    assert!(dropped.is_err());
    assert_eq!(
        b.get(&replica, 9, Duration::from_secs(10))
            .await
            .expect("get"),
        wc.get(9).expect("writer")
    );
}

/// Dropping a download's future cancels it at once (the session is told
/// by the dropped future, it does not look for abandoned ones): a live
/// download whose task is aborted fetches none of the blocks appended
/// after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_live_download_fetches_nothing_more() {
    let (_wd, ws, wc) = writer(10, 10);
    let (_rd, rs) = store();
    let (a, b) = (common::all_cores(&ws), common::all_cores(&rs));
    let _conns = connect_memory(&b, &a).await.expect("connect");
    let replica = rs.replica(&wc.key()).expect("replica");
    let live = spawn_live(&b, &replica);
    for _ in 0..400 {
        if replica.has_range(0..10).expect("has") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        replica.has_range(0..10).expect("has"),
        "the live download ran"
    );
    live.abort();
    assert!(live.await.is_err_and(|e| e.is_cancelled()));
    wc.append_batch(&[b"after".as_slice(); 5]).expect("append");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !replica.has_range(10..11).expect("has"),
        "a cancelled download fetched a block appended after it"
    );
}

/// On a transport that is already secured (the swarm's QUIC), frames go
/// without Noise and capabilities come from a secret of that connection:
/// the same secret on both ends replicates; another secret (a peer that
/// did not share this connection) pairs no channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_streams_replicate_only_with_the_connection_secret() {
    let (_wd, ws, wc) = writer(300, 64);
    let (wk, rk) = (
        KeyPair::generate().expect("keys"),
        KeyPair::generate().expect("keys"),
    );
    for (binding_b, works) in [([7u8; 32], true), ([8u8; 32], false)] {
        let (_rd, rs) = store();
        let a = Replication::new(ws.clone(), wk.clone(), ReplicationOptions::default());
        a.add_core(&wc);
        let b = Replication::new(rs.clone(), rk.clone(), ReplicationOptions::default());
        let replica = rs.replica(&wc.key()).expect("replica");
        b.add_core(&replica);
        let (x, y) = hyper_wire::memory_pair();
        let (ca, cb) = tokio::join!(
            a.add_secured_stream(x, rk.public_key(), [7; 32], true),
            b.add_secured_stream(y, wk.public_key(), binding_b, false),
        );
        let (_ca, cb) = (ca.expect("a"), cb.expect("b"));
        assert_eq!(cb.remote_identity(), wk.public_key());
        let got = tokio::time::timeout(
            Duration::from_secs(3),
            b.download(&replica, DownloadRange::all()),
        )
        .await;
        if works {
            got.expect("in time").expect("download");
            assert_same(&wc, &replica);
        } else {
            assert!(got.is_err(), "replicated without the connection's secret");
            assert_eq!(replica.info().expect("info").blocks_stored, 0);
        }
    }
}
