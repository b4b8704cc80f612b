//! Sub-databases, history, snapshots and versions.

use hyper_bee::{Bee, Change, RangeOptions};
use hyper_core::Store;

mod common;
use common::now;

fn bee() -> (tempfile::TempDir, Bee) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let bee = Bee::open(store.named("views").expect("core")).expect("bee");
    (dir, bee)
}

fn keys(items: Vec<hyper_bee::Item>) -> Vec<Vec<u8>> {
    items.into_iter().map(|i| i.key).collect()
}

#[test]
fn subs_are_isolated_nest_and_share_the_core() {
    let (_d, root) = bee();
    let users = root.sub(b"users");
    let admins = users.sub(b"admins");
    root.put(b"a", b"root").expect("put");
    root.put(b"users", b"a root key named like the sub")
        .expect("put");
    users.put(b"alice", b"1").expect("put");
    users.put(b"bob", b"2").expect("put");
    admins.put(b"carol", b"3").expect("put");
    root.put(b"bob", b"a root key named like a user")
        .expect("put");
    assert!(users.del(b"bob").expect("del"), "the sub's bob");
    assert_eq!(
        root.get(b"bob").expect("get"),
        Some(b"a root key named like a user".to_vec())
    );
    users.put(b"bob", b"2").expect("put");
    let mut batch = users.batch();
    batch.put(b"dave", b"4");
    batch.del(b"bob");
    batch.commit().expect("batch");

    assert_eq!(users.get(b"alice").expect("get"), Some(b"1".to_vec()));
    assert_eq!(root.get(b"alice").expect("get"), None);
    assert_eq!(users.get(b"carol").expect("get"), None);
    assert_eq!(admins.get(b"carol").expect("get"), Some(b"3".to_vec()));
    // The sub's range holds its own keys only (the nested sub's keys sit
    // under their own prefix, "admins\0...").
    let own = keys(users.range(&RangeOptions::default()).expect("range"));
    assert_eq!(
        own,
        vec![
            b"admins\0carol".to_vec(),
            b"alice".to_vec(),
            b"dave".to_vec()
        ]
    );
    let bounded = keys(
        users
            .range(&RangeOptions {
                gt: Some(b"alice".to_vec()),
                reverse: true,
                ..Default::default()
            })
            .expect("range"),
    );
    assert_eq!(bounded, vec![b"dave".to_vec()]);
    assert_eq!(
        keys(admins.range(&RangeOptions::default()).expect("range")),
        vec![b"carol".to_vec()]
    );
    // One core: the root sees every write.
    assert_eq!(
        root.version().expect("version"),
        users.version().expect("version")
    );
    // History of the sub: its writes only, keys without the prefix.
    let history = users.history(0..u64::MAX, false).expect("history");
    let named: Vec<(Vec<u8>, bool)> = history
        .iter()
        .map(|c| (c.key.clone(), c.value.is_some()))
        .collect();
    assert_eq!(
        named,
        vec![
            (b"alice".to_vec(), true),
            (b"bob".to_vec(), true),
            (b"admins\0carol".to_vec(), true),
            (b"bob".to_vec(), false),
            (b"bob".to_vec(), true),
            (b"dave".to_vec(), true),
            (b"bob".to_vec(), false),
        ]
    );
}

#[test]
fn history_versions_and_snapshots() {
    let (_d, bee) = bee();
    assert_eq!(bee.version().expect("version"), 1, "the header block");
    bee.put(b"x", b"1").expect("put");
    bee.put(b"y", b"2").expect("put");
    let frozen = bee.snapshot().expect("snapshot");
    bee.del(b"x").expect("del");
    bee.put(b"y", b"3").expect("put");
    assert_eq!(bee.version().expect("version"), 5);
    assert_eq!(frozen.version().expect("version"), 3);
    assert_eq!(frozen.get(b"x").expect("get"), Some(b"1".to_vec()));
    assert_eq!(frozen.get(b"y").expect("get"), Some(b"2".to_vec()));
    assert!(
        matches!(frozen.put(b"z", b"no"), Err(hyper_bee::Error::ReadOnly)),
        "a snapshot is read-only"
    );
    assert_eq!(bee.get_item(b"y").expect("get").expect("some").seq, 4);
    let newest_first = bee.history(2..5, true).expect("history");
    assert_eq!(
        newest_first,
        vec![
            Change {
                seq: 4,
                key: b"y".to_vec(),
                value: Some(b"3".to_vec())
            },
            Change {
                seq: 3,
                key: b"x".to_vec(),
                value: None
            },
            Change {
                seq: 2,
                key: b"y".to_vec(),
                value: Some(b"2".to_vec())
            },
        ]
    );
    assert!(matches!(
        frozen.diff(4),
        Err(hyper_bee::Error::NoSuchVersion {
            version: 4,
            length: 3
        })
    ));
    assert!(matches!(
        bee.checkout(99),
        Err(hyper_bee::Error::NoSuchVersion {
            version: 99,
            length: 5
        })
    ));
}

#[test]
fn diff_and_get_on_a_sparse_replica_read_only_what_they_walk() {
    let (_d, bee) = bee();
    let mut batch = bee.batch();
    for i in 0..5000u32 {
        batch.put(format!("{i:06}").as_bytes(), b"v");
    }
    batch.commit().expect("batch");
    let before = bee.version().expect("version");
    bee.put(b"002500", b"changed").expect("put");
    let writer = bee.core().clone();

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let replica = store.replica(&writer.key()).expect("replica");
    // The replica learns the length and holds no block yet.
    let upgrade = writer
        .proof(&hyper_core::ProofRequest {
            upgrade: Some(hyper_core::UpgradeRequest { start: 0, fork: 0 }),
            manifest: true,
            ..Default::default()
        })
        .expect("proof");
    replica.apply(&[upgrade]).expect("apply");
    let fetch = |seq: u64| {
        let nodes = replica.missing_nodes(seq).expect("nodes");
        let proof = writer
            .proof(&hyper_core::ProofRequest {
                block: Some(hyper_core::NodeRequest { index: seq, nodes }),
                ..Default::default()
            })
            .expect("proof");
        std::future::ready(replica.apply(&[proof]).map(|_| ()))
    };
    now(fetch(0)).expect("header");
    let sparse = Bee::open(replica.clone()).expect("bee");
    let diff = now(hyper_bee::with_fetch(
        || sparse.diff(before),
        fetch,
        hyper_bee::Error::from,
    ))
    .expect("diff");
    assert_eq!(
        diff,
        vec![hyper_bee::Difference {
            key: b"002500".to_vec(),
            old: Some(b"v".to_vec()),
            new: Some(b"changed".to_vec()),
        }]
    );
    let fetched = replica.info().expect("info").blocks_stored;
    eprintln!("the diff read {fetched} of {before} blocks");
    assert!(fetched < 60, "the diff read {fetched} of {before} blocks");
}

#[test]
fn watch_wakes_on_changes_in_its_range() {
    let (_d, bee) = bee();
    let mut all = bee.watch(None).expect("watch");
    let mut only_b = bee
        .watch(Some(RangeOptions {
            gte: Some(b"b".to_vec()),
            lt: Some(b"c".to_vec()),
            ..Default::default()
        }))
        .expect("watch");
    let short = std::time::Duration::from_millis(50);
    assert_eq!(all.next(short).expect("next"), None, "nothing yet");
    let writer = {
        let bee = bee.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            bee.put(b"apple", b"1").expect("put");
            bee.put(b"banana", b"2").expect("put");
        })
    };
    let long = std::time::Duration::from_secs(10);
    let first = all.next(long).expect("next").expect("a change");
    assert!(first >= 2);
    // The range watch skips "apple" and wakes for "banana" (version 3).
    assert_eq!(only_b.next(long).expect("next"), Some(3));
    writer.join().expect("writer");
    bee.put(b"cherry", b"3").expect("put");
    assert_eq!(only_b.next(short).expect("next"), None, "cherry is outside");
}

#[test]
fn live_history_returns_past_writes_then_waits_for_new_ones() {
    let (_d, bee) = bee();
    bee.put(b"a", b"1").expect("put");
    bee.del(b"a").expect("del");
    let mut live = bee.history_live(0).expect("live");
    let short = std::time::Duration::from_millis(50);
    let first = live.next(short).expect("next").expect("a write");
    assert_eq!((first.seq, first.value), (1, Some(b"1".to_vec())));
    assert_eq!(live.next(short).expect("next").map(|c| c.seq), Some(2));
    assert_eq!(live.next(short).expect("next"), None, "caught up");
    let writer = {
        let bee = bee.clone();
        std::thread::spawn(move || bee.put(b"b", b"2").expect("put"))
    };
    let next = live
        .next(std::time::Duration::from_secs(10))
        .expect("next")
        .expect("the new write");
    assert_eq!((next.seq, next.key), (3, b"b".to_vec()));
    writer.join().expect("writer");
}
