//! Gets share a read view (one read transaction and the chunk headers read
//! through it) until the store's next commit: every get after an append,
//! a truncation or a clear returns the bytes now stored.

use hyper_core::{Error, Store};

fn block(i: u64, tag: u8) -> Vec<u8> {
    let mut b = vec![tag; 700 + (i as usize % 5) * 100];
    b[..8].copy_from_slice(&i.to_le_bytes());
    b
}

#[test]
fn gets_follow_appends_truncations_and_clears() {
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path()).expect("store");
    let core = store.create_core().expect("core");
    let first: Vec<Vec<u8>> = (0..100).map(|i| block(i, 1)).collect();
    core.append_batch(&first).expect("append");
    // Warm the view: every chunk header of the first batch is cached.
    for i in 0..100 {
        assert_eq!(core.get(i).expect("get"), first[i as usize]);
    }
    let second: Vec<Vec<u8>> = (100..150).map(|i| block(i, 2)).collect();
    core.append_batch(&second).expect("append");
    assert_eq!(core.get(120).expect("get"), second[20]);
    assert_eq!(core.get(99).expect("get"), first[99]);

    // A truncation into the first chunk, then other bytes at the same
    // indexes: a cached header of the old chunk would cut them wrongly.
    core.truncate(40).expect("truncate");
    assert!(matches!(core.get(60), Err(Error::OutOfBounds { .. })));
    let third: Vec<Vec<u8>> = (40..90).map(|i| block(i * 7, 3)).collect();
    core.append_batch(&third).expect("append");
    for i in 0..90u64 {
        let want = if i < 40 {
            &first[i as usize]
        } else {
            &third[i as usize - 40]
        };
        assert_eq!(&core.get(i).expect("get"), want, "block {i}");
    }

    // A clear cuts the chunk; the rest still reads, the cleared ones not.
    core.clear(10..20).expect("clear");
    assert!(matches!(
        core.get(15),
        Err(Error::NotAvailable { index: 15 })
    ));
    assert_eq!(core.get(9).expect("get"), first[9]);
    assert_eq!(core.get(25).expect("get"), first[25]);
    let many = core.get_many(&[9, 15, 25, 50]).expect("get_many");
    assert_eq!(many[1], None);
    assert_eq!(many[3].as_deref(), Some(third[10].as_slice()));
}

#[test]
fn a_get_through_another_core_sees_the_commit() {
    // One view serves every core of the store; a commit to one drops it.
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open(dir.path()).expect("store");
    let a = store.create_core().expect("a");
    let b = store.create_core().expect("b");
    a.append_batch(&[b"a0".as_slice()]).expect("append a");
    assert_eq!(a.get(0).expect("get"), b"a0");
    b.append_batch(&[b"b0".as_slice(), b"b1".as_slice()])
        .expect("append b");
    assert_eq!(b.get(1).expect("get"), b"b1");
    assert_eq!(a.get(0).expect("get"), b"a0");
}

#[test]
fn compaction_with_a_kept_view() {
    let dir = tempfile::tempdir().expect("dir");
    let mut store = Store::open(dir.path()).expect("store");
    {
        let core = store.create_core().expect("core");
        core.append_batch(&[vec![5u8; 5000]]).expect("append");
        assert_eq!(core.get(0).expect("get"), vec![5u8; 5000]);
    }
    // The view kept by the get must not make compaction fail.
    store.compact().expect("compact");
}
