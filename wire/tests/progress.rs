//! Events, stats and `update()` over real TCP between two real stores,
//! asserted against what moved.

mod common;

use std::time::Duration;

use hyper_wire::{DownloadRange, Error, ReplicationEvent, connect_tcp, listen_tcp, serve_tcp};

/// Receives events until `n` match `want`, or fails after 5 s.
async fn collect(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<ReplicationEvent>,
    n: usize,
    want: impl Fn(&ReplicationEvent) -> bool,
) -> Vec<ReplicationEvent> {
    let mut got = Vec::new();
    while got.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("events in time")
            .expect("open");
        if want(&e) {
            got.push(e);
        }
    }
    got
}

#[tokio::test]
async fn events_stats_and_update_match_what_moved() {
    let (_wd, ws, wc) = common::writer(30);
    let seeder = common::replication(&ws);
    seeder.add_core(&wc);
    let mut uploads = seeder.events();
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&seeder, listener);

    let (_rd, rs) = common::eventual_store();
    let reader = common::replication(&rs);
    let replica = rs.replica(&wc.key()).expect("replica");
    // Nobody serves it yet: update times out.
    assert!(matches!(
        reader.update(&replica, Duration::from_millis(300)).await,
        Err(Error::Timeout)
    ));
    let mut events = reader.events();
    let connection = connect_tcp(&reader, addr).await.expect("connect");
    let peer = connection.peer();
    // Up to date in length only: no block moved.
    assert_eq!(
        reader
            .update(&replica, Duration::from_secs(5))
            .await
            .expect("update"),
        30
    );
    assert!(!replica.has(0).expect("has"));
    let added = collect(&mut events, 1, |e| {
        matches!(e, ReplicationEvent::PeerAdded { .. })
    })
    .await;
    assert_eq!(
        added[0],
        ReplicationEvent::PeerAdded {
            key: wc.key(),
            peer,
            length: 30,
            contiguous_length: 30
        }
    );

    reader
        .download(&replica, DownloadRange::all())
        .await
        .expect("download");
    let sizes: Vec<u64> = (0..30).map(|i| format!("block {i}").len() as u64).collect();
    let total: u64 = sizes.iter().sum();
    let mut down = collect(&mut events, 30, |e| {
        matches!(e, ReplicationEvent::Downloaded { .. })
    })
    .await;
    down.sort_by_key(|e| match e {
        ReplicationEvent::Downloaded { index, .. } => *index,
        _ => u64::MAX,
    });
    for (i, e) in down.iter().enumerate() {
        assert_eq!(
            *e,
            ReplicationEvent::Downloaded {
                key: wc.key(),
                peer,
                index: i as u64,
                bytes: sizes[i]
            }
        );
    }
    let up = collect(&mut uploads, 30, |e| {
        matches!(e, ReplicationEvent::Uploaded { .. })
    })
    .await;
    assert_eq!(up.len(), 30);

    let stats = reader.stats(&replica).await;
    assert_eq!(
        (stats.total.blocks_down, stats.total.bytes_down),
        (30, total)
    );
    assert_eq!(stats.total.blocks_up, 0);
    assert_eq!(stats.peers.len(), 1);
    assert_eq!(
        (stats.peers[0].length, stats.peers[0].contiguous_length),
        (30, 30)
    );
    let served = seeder.stats(&wc).await;
    assert_eq!((served.total.blocks_up, served.total.bytes_up), (30, total));
    // Each side's stats name the other by its proven identity.
    assert_eq!(stats.peers[0].remote, seeder.identity());
    assert_eq!(served.peers.len(), 1);
    assert_eq!(served.peers[0].remote, reader.identity());

    // The writer appends: update learns the new length.
    wc.append_batch(&[b"x".as_slice(); 5]).expect("append");
    let mut length = 0;
    for _ in 0..50 {
        length = reader
            .update(&replica, Duration::from_secs(5))
            .await
            .expect("update");
        if length == 35 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(length, 35);

    connection.close();
    let removed = collect(&mut events, 1, |e| {
        matches!(e, ReplicationEvent::PeerRemoved { .. })
    })
    .await;
    assert_eq!(
        removed[0],
        ReplicationEvent::PeerRemoved {
            key: wc.key(),
            peer
        }
    );
}
