//! The bee's decoded-block cache follows the core's fork: after the core
//! is truncated and written again, reads see the new blocks, never the
//! cached entries of the old fork at the same sequence numbers.

use hyper_bee::{Bee, RangeOptions};
use hyper_core::Store;

fn keys(bee: &Bee) -> Vec<(Vec<u8>, Vec<u8>)> {
    bee.range(&RangeOptions::default())
        .expect("range")
        .into_iter()
        .map(|i| (i.key, i.value))
        .collect()
}

#[test]
fn reads_after_a_truncation_never_return_stale_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let bee = Bee::open(store.named("db").expect("core")).expect("bee");
    bee.put(b"a", b"1").expect("put"); // block 1
    bee.put(b"b", b"2").expect("put"); // block 2
    bee.put(b"c", b"3").expect("put"); // block 3
    // Every block read once: all of them in the cache.
    assert_eq!(keys(&bee).len(), 3);
    assert_eq!(bee.get(b"c").expect("get"), Some(b"3".to_vec()));
    assert_eq!(bee.history(0..10, false).expect("history").len(), 3);

    // Back to the state after "a", then other writes at blocks 2 and 3
    // through another handle of the core (another process's bee, or the
    // writer a replica follows).
    bee.core().truncate(2).expect("truncate");
    let other = Bee::open(bee.core().clone()).expect("another bee");
    other.put(b"d", b"4").expect("put"); // block 2 again
    other.put(b"e", b"5").expect("put"); // block 3 again
    assert_eq!(
        keys(&bee),
        [
            (b"a".to_vec(), b"1".to_vec()),
            (b"d".to_vec(), b"4".to_vec()),
            (b"e".to_vec(), b"5".to_vec()),
        ]
    );
    assert_eq!(bee.get(b"b").expect("get"), None);
    assert_eq!(bee.get(b"c").expect("get"), None);
    assert_eq!(bee.get(b"e").expect("get"), Some(b"5".to_vec()));
    let history: Vec<Vec<u8>> = bee
        .history(0..10, false)
        .expect("history")
        .into_iter()
        .map(|c| c.key)
        .collect();
    assert_eq!(history, [b"a".to_vec(), b"d".to_vec(), b"e".to_vec()]);
    assert_eq!(
        bee.get_by_seq(3).expect("seq").map(|c| c.key),
        Some(b"e".to_vec())
    );
    // Written through this bee after the truncation: the same.
    bee.core().truncate(2).expect("truncate");
    other.put(b"f", b"6").expect("put");
    bee.put(b"g", b"7").expect("put");
    assert_eq!(keys(&bee).len(), 3);
    assert_eq!(bee.get(b"d").expect("get"), None);
    assert_eq!(other.get(b"g").expect("get"), Some(b"7".to_vec()));
}

#[test]
fn a_read_between_a_truncation_and_its_callbacks_sees_the_new_blocks() {
    use std::sync::{Arc, Mutex};
    // Block 2 of a bee that wrote "a" then "d".
    let other_dir = tempfile::tempdir().expect("tempdir");
    let other = Bee::open(
        Store::open(other_dir.path())
            .expect("store")
            .named("db")
            .expect("core"),
    )
    .expect("bee");
    other.put(b"a", b"1").expect("put");
    other.put(b"d", b"4").expect("put");
    let d_block = other.core().get(2).expect("block 2");

    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let core = store.named("db").expect("core");
    // Registered before the bee opens, so it runs before anything the bee
    // may register: the moment a reader on another thread can hit, the
    // change visible and no callback run yet.
    // What a read of "b" and of "d" returned, each time the callback ran.
    type Reads = Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>;
    let seen: Arc<Mutex<Reads>> = Arc::default();
    let slot: Arc<Mutex<Option<Bee>>> = Arc::default();
    let _subscription = core.subscribe({
        let (seen, slot) = (seen.clone(), slot.clone());
        move || {
            if let Some(bee) = slot.lock().expect("slot").as_ref() {
                let b = bee.get(b"b").expect("get b");
                let d = bee.get(b"d").expect("get d");
                seen.lock().expect("seen").push((b, d));
            }
        }
    });
    let bee = Bee::open(core).expect("bee");
    bee.put(b"a", b"1").expect("put"); // block 1
    bee.put(b"b", b"2").expect("put"); // block 2
    assert_eq!(keys(&bee).len(), 2, "every block cached");
    *slot.lock().expect("slot") = Some(bee.clone());
    // Block 2 replaced in one commit (as a replica following a fork does).
    let blocks = [d_block];
    let mut batch = store.batch();
    batch.truncate(bee.core(), 2).append(bee.core(), &blocks);
    batch.commit().expect("commit");
    assert_eq!(*seen.lock().expect("seen"), [(None, Some(b"4".to_vec()))]);
}

#[test]
fn watches_and_live_history_see_the_writes_after_a_truncation() {
    use std::time::Duration;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let bee = Bee::open(store.named("db").expect("core")).expect("bee");
    for k in [b"a", b"b", b"c"] {
        bee.put(k, b"1").expect("put"); // blocks 1, 2, 3
    }
    let mut all = bee.watch(None).expect("watch");
    let only_a = RangeOptions {
        gte: Some(b"a".to_vec()),
        lte: Some(b"a".to_vec()),
        ..Default::default()
    };
    let mut a = bee.watch(Some(only_a)).expect("watch");
    let mut c = bee.get_and_watch(b"c").expect("key watch");
    let mut live = bee.history_live(1).expect("live");
    for seq in 1..=3 {
        let got = live.next(Duration::ZERO).expect("live").map(|c| c.seq);
        assert_eq!(got, Some(seq));
    }
    // Back to the state after "a"; one new write, at block 2: the bee is
    // shorter than the version the watches last saw.
    bee.core().truncate(2).expect("truncate");
    bee.put(b"d", b"2").expect("put");
    let wait = Duration::from_secs(2);
    assert_eq!(all.next(wait).expect("next"), Some(3));
    // "a" did not change; a truncation below what a range watch saw
    // may have, so it wakes once, then waits for real changes again.
    assert_eq!(a.next(wait).expect("next"), Some(3));
    assert_eq!(a.next(Duration::from_millis(100)).expect("next"), None);
    // "c" was cut: deleted, as far as its watch can tell.
    assert_eq!(c.next(wait).expect("next"), Some(None));
    let next = live.next(wait).expect("live").map(|c| (c.seq, c.key));
    assert_eq!(next, Some((2, b"d".to_vec())));
}
