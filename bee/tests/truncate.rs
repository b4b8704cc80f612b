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
    let seen: Arc<Mutex<Vec<(Option<Vec<u8>>, Option<Vec<u8>>)>>> = Arc::default();
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
