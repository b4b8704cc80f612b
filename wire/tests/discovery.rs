//! An all-cores seeder of a store of 2,000 cores against a hostile peer
//! over real TCP that opens thousands of discovery keys the store lacks:
//! each costs one point lookup in the store's index, never a listing of
//! the store (`Store::stats` counts both), and a known core asked for
//! after them is still answered at once. An open held for a key the store
//! lacks is answered once the core appears.

mod common;

use std::time::{Duration, Instant};

use common::hostile::{Hostile, on};
use hyper_core::Store;
use hyper_wire::messages::{Body, Message, Open};

/// The first `Open` the seeder sends within `wait`.
async fn next_open(peer: &mut Hostile, wait: Duration) -> Option<Open> {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if let Message {
            body: Some(Body::Open(open)),
            ..
        } = peer.recv(left).await?
        {
            return Some(open);
        }
    }
    None
}

/// An `Open` on `channel` for a discovery key no store holds.
fn unknown_open(channel: u32) -> Message {
    let mut dk = [0xa5u8; 32];
    dk[..4].copy_from_slice(&channel.to_le_bytes());
    on(
        channel,
        Body::Open(Open {
            discovery_key: dk.to_vec(),
            capability: vec![0; 32],
        }),
    )
}

#[tokio::test]
async fn unknown_discovery_keys_cost_point_lookups_never_listings() {
    const CORES: usize = 2_000;
    const UNKNOWN: u32 = 10_000;
    let (_dir, store) = common::eventual_store();
    let cores: Vec<_> = (0..CORES)
        .map(|_| store.create_core().expect("core"))
        .collect();
    cores[1234]
        .append_batch(&[b"wanted".as_slice()])
        .expect("append");
    let (seeder, addr) = common::serve(&store).await;
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    let started = Instant::now();
    let opens: Vec<Message> = (1..=UNKNOWN).map(unknown_open).collect();
    for batch in opens.chunks(1000) {
        peer.send(batch).await.expect("send");
    }
    peer.send(&[peer.open(UNKNOWN + 1, &cores[1234].key())])
        .await
        .expect("send");
    let answer = next_open(&mut peer, Duration::from_secs(20))
        .await
        .expect("the known core is answered");
    assert_eq!(
        answer.discovery_key,
        cores[1234].key().discovery_key().0.to_vec()
    );
    let took = started.elapsed();
    let stats = store.stats();
    // Every open was looked up (the rechecks of held ones add at most
    // MAX_PENDING_OPENS each); not one listed the store.
    assert_eq!(stats.lists, 0, "{stats:?}");
    assert!(stats.discovery_lookups > u64::from(UNKNOWN), "{stats:?}");
    assert!(took < Duration::from_secs(15), "answered after {took:?}");
    assert!(seeder.resources().await.held_opens <= hyper_wire::MAX_PENDING_OPENS);
}

#[tokio::test]
async fn an_open_held_for_a_missing_core_is_answered_once_it_appears() {
    let (_dir, store) = common::eventual_store();
    let (_seeder, addr) = common::serve(&store).await;
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let key = Store::open(elsewhere.path())
        .expect("store")
        .create_core()
        .expect("core")
        .key();
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    peer.send(&[peer.open(1, &key)]).await.expect("send");
    assert!(
        next_open(&mut peer, Duration::from_millis(500))
            .await
            .is_none(),
        "the seeder has no such core yet"
    );
    store.replica(&key).expect("replica");
    let answer = next_open(&mut peer, Duration::from_secs(15))
        .await
        .expect("answered at the next recheck");
    assert_eq!(answer.discovery_key, key.discovery_key().0.to_vec());
    assert!(store.stats().discovery_lookups >= 2);
    assert_eq!(store.stats().lists, 0);
}
