//! The day-two bee API: diff over a range, history with a limit,
//! `get_by_seq`, a batch reading its own writes, `get_and_watch`, an async
//! watch, and streams on a local core (never waiting) agreeing with the
//! sync reads.

use std::time::Duration;

use hyper_bee::{Bee, Change, Difference, Error, HistoryOptions, RangeOptions};
use hyper_core::Store;

mod common;
use common::now;

fn bee() -> (tempfile::TempDir, Bee) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let bee = Bee::open(store.named("db").expect("core")).expect("bee");
    (dir, bee)
}

fn range(gte: &str, lt: &str) -> RangeOptions {
    RangeOptions {
        gte: Some(gte.as_bytes().to_vec()),
        lt: Some(lt.as_bytes().to_vec()),
        ..Default::default()
    }
}

#[test]
fn diff_takes_a_range_and_a_limit() {
    let (_d, bee) = bee();
    let mut batch = bee.batch();
    for i in 0..300u32 {
        batch.put(format!("k{i:03}").as_bytes(), b"old");
    }
    batch.commit().expect("batch");
    let before = bee.version().expect("version");
    for k in ["k005", "k150", "k151", "k299"] {
        bee.put(k.as_bytes(), b"new").expect("put");
    }
    bee.del(b"k152").expect("del");
    let got: Vec<Difference> = bee
        .diff_iter(before, &range("k100", "k200"))
        .expect("diff")
        .collect::<Result<_, _>>()
        .expect("diff");
    let keys: Vec<&[u8]> = got.iter().map(|d| d.key.as_slice()).collect();
    assert_eq!(keys, [b"k150".as_slice(), b"k151", b"k152"]);
    assert_eq!(got[2].new, None, "k152 was deleted");
    let limited = RangeOptions {
        limit: Some(2),
        ..Default::default()
    };
    let first_two: Vec<Difference> = bee
        .diff_iter(before, &limited)
        .expect("diff")
        .collect::<Result<_, _>>()
        .expect("diff");
    assert_eq!(first_two.len(), 2);
    assert_eq!(first_two[0].key, b"k005");
    // The whole diff is the old API's answer.
    assert_eq!(bee.diff(before).expect("diff").len(), 5);
}

#[test]
fn history_takes_a_limit_and_get_by_seq_reads_one_write() {
    let (_d, bee) = bee();
    for i in 0..10u32 {
        bee.put(format!("k{i}").as_bytes(), format!("v{i}").as_bytes())
            .expect("put");
    }
    bee.del(b"k3").expect("del");
    let newest: Vec<u64> = bee
        .history_iter(&HistoryOptions {
            reverse: true,
            limit: Some(3),
            ..Default::default()
        })
        .expect("history")
        .map(|c| c.expect("change").seq)
        .collect();
    assert_eq!(newest, [11, 10, 9]);
    let middle: Vec<u64> = bee
        .history_iter(&HistoryOptions {
            start: 4,
            end: Some(8),
            limit: Some(10),
            ..Default::default()
        })
        .expect("history")
        .map(|c| c.expect("change").seq)
        .collect();
    assert_eq!(middle, [4, 5, 6, 7]);
    assert_eq!(
        bee.get_by_seq(2).expect("seq 2"),
        Some(Change {
            seq: 2,
            key: b"k1".to_vec(),
            value: Some(b"v1".to_vec())
        })
    );
    assert_eq!(
        bee.get_by_seq(11).expect("seq 11").and_then(|c| c.value),
        None
    );
    assert_eq!(bee.get_by_seq(0).expect("header"), None);
    assert!(matches!(
        bee.get_by_seq(12),
        Err(Error::NoSuchVersion {
            version: 12,
            length: 12
        })
    ));
    // In a sub, writes of other keys are not its own.
    let sub = bee.sub(b"s");
    sub.put(b"x", b"1").expect("put");
    assert_eq!(
        sub.get_by_seq(12).expect("seq").map(|c| c.key),
        Some(b"x".to_vec())
    );
    assert_eq!(sub.get_by_seq(2).expect("seq"), None);
    assert_eq!(
        now(sub.get_by_seq_async(12)).expect("async").map(|c| c.seq),
        Some(12)
    );
}

#[test]
fn a_batch_reads_its_own_writes() {
    let (_d, bee) = bee();
    bee.put(b"a", b"1").expect("put");
    bee.put(b"b", b"2").expect("put");
    let mut batch = bee.batch();
    assert_eq!(
        batch.get(b"a").expect("get"),
        Some(b"1".to_vec()),
        "the bee's"
    );
    batch.put(b"a", b"10");
    batch.del(b"b");
    batch.put(b"c", b"3");
    batch.put(b"c", b"30");
    assert_eq!(batch.get(b"a").expect("get"), Some(b"10".to_vec()));
    assert_eq!(batch.get(b"b").expect("get"), None);
    assert_eq!(batch.get(b"c").expect("get"), Some(b"30".to_vec()));
    assert_eq!(bee.get(b"a").expect("get"), Some(b"1".to_vec()), "not yet");
    batch.commit().expect("commit");
    assert_eq!(bee.get(b"c").expect("get"), Some(b"30".to_vec()));
    // In a sub, through the sub's prefix.
    let sub = bee.sub(b"s");
    let mut batch = sub.batch();
    batch.put(b"a", b"sub");
    assert_eq!(batch.get(b"a").expect("get"), Some(b"sub".to_vec()));
    assert_eq!(batch.get(b"c").expect("get"), None);
}

#[test]
fn get_and_watch_returns_each_new_value_of_its_key() {
    let (_d, bee) = bee();
    bee.put(b"k", b"1").expect("put");
    let mut watch = bee.get_and_watch(b"k").expect("watch");
    assert_eq!(watch.value(), Some(b"1".as_slice()));
    let short = Duration::from_millis(50);
    bee.put(b"other", b"x").expect("put");
    assert_eq!(watch.next(short).expect("next"), None, "another key");
    let writer = {
        let bee = bee.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            bee.put(b"k", b"2").expect("put");
        })
    };
    let long = Duration::from_secs(10);
    assert_eq!(watch.next(long).expect("next"), Some(Some(b"2".to_vec())));
    writer.join().expect("writer");
    bee.put(b"k", b"2").expect("same value");
    assert_eq!(
        watch.next(short).expect("next"),
        None,
        "the value did not change"
    );
    bee.del(b"k").expect("del");
    assert_eq!(watch.next(long).expect("next"), Some(None));
    assert_eq!(watch.value(), None);
}

#[tokio::test]
async fn an_async_watch_wakes_on_a_write_in_its_range() {
    let (_d, bee) = bee();
    let mut watch = bee.watch(Some(range("b", "c"))).expect("watch");
    let mut key = bee.get_and_watch(b"banana").expect("key watch");
    let writer = {
        let bee = bee.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            bee.put(b"apple", b"1").expect("put");
            bee.put(b"banana", b"2").expect("put");
        })
    };
    let version = tokio::time::timeout(Duration::from_secs(10), watch.next_async())
        .await
        .expect("woken in time")
        .expect("watch");
    assert_eq!(version, 3, "apple (version 2) is outside the range");
    let value = tokio::time::timeout(Duration::from_secs(10), key.next_async())
        .await
        .expect("woken in time")
        .expect("key watch");
    assert_eq!(value, Some(b"2".to_vec()));
    writer.join().expect("writer");
    // Nothing more: it keeps waiting.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), watch.next_async())
            .await
            .is_err()
    );
}

#[test]
fn streams_on_a_local_core_never_wait_and_agree_with_the_sync_reads() {
    let (_d, bee) = bee();
    let mut batch = bee.batch();
    for i in 0..500u32 {
        batch.put(format!("{i:04}").as_bytes(), &i.to_le_bytes());
    }
    batch.commit().expect("batch");
    let before = bee.version().expect("version");
    bee.put(b"0250", b"x").expect("put");
    let options = RangeOptions {
        gt: Some(b"0100".to_vec()),
        reverse: true,
        limit: Some(40),
        ..Default::default()
    };
    let streamed = now(bee.range_stream(&options).expect("stream").collect()).expect("range");
    assert_eq!(streamed, bee.range(&options).expect("range"));
    assert_eq!(streamed.len(), 40);
    assert_eq!(streamed[0].key, b"0499");
    let history = now(bee
        .history_stream(&HistoryOptions::default())
        .expect("s")
        .collect());
    assert_eq!(
        history.expect("history"),
        bee.history(0..u64::MAX, false).expect("h")
    );
    let diff = now(bee
        .diff_stream(before, &RangeOptions::default())
        .expect("s")
        .collect());
    assert_eq!(diff.expect("diff"), bee.diff(before).expect("diff"));
    assert_eq!(
        now(bee.get_async(b"0250")).expect("get"),
        Some(b"x".to_vec())
    );
    assert_eq!(
        now(bee.peek_async(&RangeOptions::default()))
            .expect("peek")
            .map(|i| i.key),
        Some(b"0000".to_vec())
    );
}
