//! Model test: random append / get / truncate / clear / reopen against a
//! plain vector, compared after every step.

use hyper_core::{Error, Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<Vec<u8>>),
    Truncate(usize),
    Clear(usize, usize),
    Reopen,
}

/// Operations on blocks of up to `max_block` bytes.
fn op(max_block: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => prop::collection::vec(prop::collection::vec(any::<u8>(), 0..max_block), 1..20).prop_map(Op::Append),
        1 => any::<usize>().prop_map(Op::Truncate),
        1 => (any::<usize>(), 0usize..10).prop_map(|(a, b)| Op::Clear(a, b)),
        1 => Just(Op::Reopen),
    ]
}

fn check(
    store: &Store,
    model: &[Option<Vec<u8>>],
    logical: &[Vec<u8>],
    fork: u64,
) -> Result<(), TestCaseError> {
    let core = store.named("model").expect("open");
    let info = core.info().expect("info");
    prop_assert_eq!(info.length, logical.len() as u64);
    prop_assert_eq!(
        info.byte_length,
        logical.iter().map(|b| b.len() as u64).sum::<u64>()
    );
    prop_assert_eq!(info.fork, fork);
    prop_assert_eq!(
        info.blocks_stored,
        model.iter().filter(|b| b.is_some()).count() as u64
    );
    prop_assert_eq!(
        info.bytes_stored,
        model.iter().flatten().map(|b| b.len() as u64).sum::<u64>()
    );
    let contiguous = model
        .iter()
        .position(Option::is_none)
        .unwrap_or(model.len());
    prop_assert_eq!(info.contiguous_length, contiguous as u64);
    for (i, expected) in model.iter().enumerate() {
        match (core.get(i as u64), expected) {
            (Ok(got), Some(want)) => prop_assert_eq!(&got, want),
            (Err(Error::NotAvailable { .. }), None) => {}
            (other, want) => prop_assert!(
                false,
                "block {}: got {:?}, want {:?}",
                i,
                other.map(|_| ()),
                want.is_some()
            ),
        }
        prop_assert_eq!(core.has(i as u64).expect("has"), expected.is_some());
    }
    let past_end = matches!(core.get(model.len() as u64), Err(Error::OutOfBounds { .. }));
    prop_assert!(past_end, "get past the end must be OutOfBounds");
    // Seek agrees with the logical sizes.
    let mut offset = 0u64;
    for (i, b) in logical.iter().enumerate() {
        if !b.is_empty() {
            prop_assert_eq!(core.seek(offset).expect("seek"), (i as u64, 0));
            prop_assert_eq!(
                core.seek(offset + b.len() as u64 - 1).expect("seek"),
                (i as u64, b.len() as u64 - 1)
            );
        }
        offset += b.len() as u64;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn core_matches_vec_model(ops in prop::collection::vec(op(64), 1..40)) {
        run_model(ops)?;
    }
}

proptest! {
    // Blocks up to 40 KB: chunks span several parts, and clear/truncate cut
    // through them.
    #![proptest_config(ProptestConfig::with_cases(6))]

    #[test]
    fn core_matches_vec_model_with_large_blocks(ops in prop::collection::vec(op(40_000), 1..16)) {
        run_model(ops)?;
    }
}

fn run_model(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let mut model: Vec<Option<Vec<u8>>> = Vec::new();
    let mut logical: Vec<Vec<u8>> = Vec::new();
    let mut fork = 0;
    for op in ops {
        let core = store.named("model").expect("open core");
        match op {
            Op::Append(blocks) => {
                let out = core.append_batch(&blocks).expect("append");
                model.extend(blocks.iter().cloned().map(Some));
                logical.extend(blocks);
                prop_assert_eq!(out.length, logical.len() as u64);
            }
            Op::Truncate(n) => {
                let n = if logical.is_empty() {
                    0
                } else {
                    n % (logical.len() + 1)
                };
                core.truncate(n as u64).expect("truncate");
                model.truncate(n);
                logical.truncate(n);
                fork += 1;
            }
            Op::Clear(start, len) => {
                let start = if model.is_empty() {
                    0
                } else {
                    start % model.len()
                };
                let end = (start + len).min(model.len());
                core.clear(start as u64..end as u64).expect("clear");
                for b in &mut model[start..end] {
                    *b = None;
                }
            }
            Op::Reopen => {
                drop(core);
                drop(store);
                store = Store::open(dir.path()).expect("reopen");
            }
        }
        check(&store, &model, &logical, fork)?;
    }
    Ok(())
}

#[test]
fn snapshot_is_frozen_and_invalidated_by_truncation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let core = store.named("snap").expect("core");
    core.append_batch(&[b"a", b"b", b"c"]).expect("append");
    let snap = core.snapshot().expect("snapshot");
    core.append(b"d").expect("append");
    assert_eq!(snap.length(), 3);
    assert_eq!(snap.get(2).expect("get"), b"c");
    assert!(matches!(snap.get(3), Err(Error::OutOfBounds { .. })));
    core.truncate(2).expect("truncate");
    assert_eq!(snap.get(1).expect("still valid below the cut"), b"b");
    assert!(matches!(
        snap.get(2),
        Err(Error::SnapshotInvalidated { .. })
    ));
}

#[test]
fn user_data_iterator_named_keys_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let a = store.named("a").expect("core");
    let key = a.key();
    a.set_user_data("cursor", Some(b"42")).expect("set");
    assert_eq!(a.user_data("cursor").expect("get"), Some(b"42".to_vec()));
    a.set_user_data("cursor", None).expect("unset");
    assert_eq!(a.user_data("cursor").expect("get"), None);
    a.append_batch(&[b"x", b"y", b"z"]).expect("append");
    let got: Vec<Vec<u8>> = a
        .blocks(1..3)
        .expect("iter")
        .map(|r| r.expect("block").1)
        .collect();
    assert_eq!(got, vec![b"y".to_vec(), b"z".to_vec()]);
    drop(a);
    drop(store);
    // Same name, same store: same key, even after reopening.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(store.named("a").expect("core").key(), key);
    assert_ne!(store.named("b").expect("core").key(), key);
    assert_eq!(store.list().expect("list").len(), 2);
    let handle = store.core(&key).expect("core");
    store.delete(&key).expect("delete");
    assert!(matches!(store.core(&key), Err(Error::UnknownCore(_))));
    assert!(matches!(handle.get(0), Err(Error::UnknownCore(_))));
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn batch_across_cores_is_atomic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let a = store.named("a").expect("a");
    let b = store.named("b").expect("b");
    let reader = store
        .replica(&hyper_core::CoreKey([5; 32]))
        .expect("replica");
    let blocks_a = [b"1".to_vec(), b"2".to_vec()];
    let blocks_b = [b"3".to_vec()];
    let mut batch = store.batch();
    batch.append(&a, &blocks_a).append(&b, &blocks_b);
    let out = batch.commit().expect("commit");
    assert_eq!(out.iter().map(|o| o.length).collect::<Vec<_>>(), vec![2, 1]);
    // A batch that includes a core it cannot write commits nothing.
    let mut batch = store.batch();
    batch.append(&a, &blocks_a).append(&reader, &blocks_b);
    assert!(matches!(batch.commit(), Err(Error::NotWritable(_))));
    assert_eq!(a.info().expect("info").length, 2);
    assert_eq!(reader.info().expect("info").length, 0);
}
