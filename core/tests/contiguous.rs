//! The contiguous length `Core::info` reports is kept in the core's state
//! (not found by a scan): on real stores, through random appends, downloads
//! (honest proofs applied to a replica), clears and truncations (the
//! replica follows the writer's new fork), it always equals a naive scan
//! of `Core::has`, and a reopened store reports the same.

mod common;

use hyper_core::{Core, Store};
use proptest::prelude::*;

/// What a naive scan of the core finds: the first index not stored.
fn naive(core: &Core) -> u64 {
    let length = core.info().expect("info").length;
    (0..length)
        .find(|i| !core.has(*i).expect("has"))
        .unwrap_or(length)
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Download(u16),
    ClearWriter(u16, u16),
    ClearReplica(u16, u16),
    Truncate(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..40).prop_map(Op::Append),
        4 => any::<u16>().prop_map(Op::Download),
        1 => (any::<u16>(), 0u16..60).prop_map(|(s, l)| Op::ClearWriter(s, l)),
        2 => (any::<u16>(), 0u16..60).prop_map(|(s, l)| Op::ClearReplica(s, l)),
        1 => any::<u16>().prop_map(Op::Truncate),
    ]
}

fn apply(op: &Op, writer: &Core, replica: &Core) {
    let length = writer.info().expect("info").length;
    match *op {
        Op::Append(n) => {
            let blocks: Vec<Vec<u8>> = (0..u64::from(n))
                .map(|i| format!("block {}", length + i).into_bytes())
                .collect();
            writer.append_batch(&blocks).expect("append");
        }
        Op::Download(i) if length > 0 => {
            let index = u64::from(i) % length;
            if writer.has(index).expect("has") {
                let proof = common::honest_block(writer, replica, index);
                replica.apply(&[proof]).expect("an honest proof applies");
            }
        }
        Op::ClearWriter(s, l) | Op::ClearReplica(s, l) if length > 0 => {
            let start = u64::from(s) % length;
            let core = if matches!(op, Op::ClearWriter(..)) {
                writer
            } else {
                replica
            };
            core.clear(start..start + u64::from(l)).expect("clear");
        }
        Op::Truncate(to) if length > 0 => {
            writer.truncate(u64::from(to) % length).expect("truncate");
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn the_kept_contiguous_length_matches_a_scan(ops in prop::collection::vec(op(), 1..40)) {
        let (w, writer) = common::writer(&[]);
        let r = common::store();
        let replica = r.store.replica(&writer.key()).expect("replica");
        for op in &ops {
            apply(op, &writer, &replica);
            for core in [&writer, &replica] {
                prop_assert_eq!(core.info().expect("info").contiguous_length, naive(core), "after {:?}", op);
            }
        }
        let before = [&writer, &replica].map(|c| c.info().expect("info"));
        let (wkey, rdir) = (writer.key(), r.dir);
        drop((writer, replica, r.store));
        let wstore = w.store;
        // The writer's store reopened in place of a new handle, the
        // replica's from its directory.
        let writer = wstore.core(&wkey).expect("writer");
        prop_assert_eq!(writer.info().expect("info"), before[0]);
        drop((writer, wstore));
        let writer = Store::open(w.dir.path()).expect("reopen").core(&wkey).expect("writer");
        let replica = Store::open(rdir.path()).expect("reopen").core(&wkey).expect("replica");
        prop_assert_eq!(writer.info().expect("info"), before[0]);
        prop_assert_eq!(replica.info().expect("info"), before[1]);
        prop_assert_eq!(replica.info().expect("info").contiguous_length, naive(&replica));
    }
}

/// Downloads that fill a gap extend the prefix past everything stored
/// after it; a clear below it cuts it to the cleared start.
#[test]
fn a_filled_gap_joins_what_follows_and_a_clear_cuts() {
    let blocks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10]).collect();
    let (_w, writer) = common::writer(&blocks.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let r = common::store();
    let replica = r.store.replica(&writer.key()).expect("replica");
    let contiguous = |c: &Core| c.info().expect("info").contiguous_length;
    for i in (1..20).chain([0]) {
        let proof = common::honest_block(&writer, &replica, i);
        replica.apply(&[proof]).expect("apply");
        assert_eq!(contiguous(&replica), if i == 0 { 20 } else { 0 });
    }
    replica.clear(7..9).expect("clear");
    assert_eq!(contiguous(&replica), 7);
    writer.truncate(5).expect("truncate");
    assert_eq!(contiguous(&writer), 5);
}
