//! The bee against a `BTreeMap`: random puts, deletes, batches and
//! compare-and-swaps, compared after every step (gets, and ranges in both
//! directions with random bounds and limits), after reopening the store,
//! and at old versions (checkouts against model snapshots). The B-tree's
//! shape (node sizes, equal leaf depth, key order) is checked from the raw
//! blocks.

use std::collections::BTreeMap;
use std::ops::Bound;

use hyper_bee::messages::{Entry, Level};
use hyper_bee::{Bee, Condition, MAX_KEYS, MIN_KEYS, RangeOptions};
use hyper_core::{Core, Durability, Store, StoreOptions};
use proptest::prelude::*;
use prost::Message as _;

#[derive(Debug, Clone)]
enum Op {
    Put(u16, u8),
    Del(u16),
    Batch(Vec<(u16, Option<u8>)>),
    PutIfAbsent(u16, u8),
    PutIfEquals(u16, u8, u8),
    DelIfEquals(u16, u8),
    Reopen,
}

fn key(k: u16) -> Vec<u8> {
    format!("k{k:05}").into_bytes()
}

fn value(v: u8) -> Vec<u8> {
    vec![v; usize::from(v % 7) + 1]
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (0..keys).prop_map(Op::Del),
        2 => prop::collection::vec((0..keys, prop::option::of(any::<u8>())), 0..20).prop_map(Op::Batch),
        1 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
        1 => (0..keys, any::<u8>(), any::<u8>()).prop_map(|(k, a, b)| Op::PutIfEquals(k, a, b)),
        1 => (0..keys, any::<u8>()).prop_map(|(k, v)| Op::DelIfEquals(k, v)),
        1 => Just(Op::Reopen),
    ]
}

fn entry(core: &Core, block: u64) -> Entry {
    Entry::decode(core.get(block).expect("block").as_slice()).expect("decodes")
}

/// Walks the tree at `version` from the raw blocks: returns the keys in
/// order; asserts node sizes and that every leaf is at the same depth.
fn check_shape(core: &Core, version: u64) -> Vec<Vec<u8>> {
    if version <= 1 {
        return Vec::new();
    }
    let root = entry(core, version - 1);
    let mut keys = Vec::new();
    let mut leaf_depths = Vec::new();
    fn visit(
        core: &Core,
        level: &Level,
        depth: usize,
        root: bool,
        keys: &mut Vec<Vec<u8>>,
        leaves: &mut Vec<usize>,
    ) {
        assert!(level.keys.len() <= MAX_KEYS, "node over the maximum");
        if !root {
            assert!(level.keys.len() >= MIN_KEYS, "node under the minimum");
        }
        let child = |i: usize| {
            let e = entry(core, level.child_blocks[i]);
            e.levels[level.child_levels[i] as usize].clone()
        };
        if level.child_blocks.is_empty() {
            leaves.push(depth);
        }
        for (i, &k) in level.keys.iter().enumerate() {
            if !level.child_blocks.is_empty() {
                visit(core, &child(i), depth + 1, false, keys, leaves);
            }
            keys.push(entry(core, k).key);
        }
        if !level.child_blocks.is_empty() {
            visit(
                core,
                &child(level.keys.len()),
                depth + 1,
                false,
                keys,
                leaves,
            );
        }
    }
    if let Some(top) = root.levels.first() {
        visit(core, top, 0, true, &mut keys, &mut leaf_depths);
    }
    assert!(
        leaf_depths.windows(2).all(|w| w[0] == w[1]),
        "leaves at different depths"
    );
    keys
}

fn bound(k: Option<u16>) -> Option<Vec<u8>> {
    k.map(key)
}

/// The model: what the bee should hold.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

type Probe = (Option<u16>, Option<u16>, bool, bool, bool, Option<usize>);

fn compare(bee: &Bee, model: &BTreeMap<Vec<u8>, Vec<u8>>, probes: &[Probe], shape: bool) {
    for (k, v) in model {
        assert_eq!(bee.get(k).expect("get").as_ref(), Some(v));
    }
    let all = bee.range(&RangeOptions::default()).expect("range");
    let got: Vec<(Vec<u8>, Vec<u8>)> = all.into_iter().map(|i| (i.key, i.value)).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, want);
    if shape {
        let version = bee.version().expect("version");
        let keys = check_shape(bee.core(), version);
        assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
    }
    for &(lo, hi, lo_incl, hi_incl, reverse, limit) in probes {
        let options = RangeOptions {
            gt: if lo_incl { None } else { bound(lo) },
            gte: if lo_incl { bound(lo) } else { None },
            lt: if hi_incl { None } else { bound(hi) },
            lte: if hi_incl { bound(hi) } else { None },
            reverse,
            limit,
        };
        let lower = match bound(lo) {
            None => Bound::Unbounded,
            Some(b) if lo_incl => Bound::Included(b),
            Some(b) => Bound::Excluded(b),
        };
        let upper = match bound(hi) {
            None => Bound::Unbounded,
            Some(b) if hi_incl => Bound::Included(b),
            Some(b) => Bound::Excluded(b),
        };
        let empty = matches!((&lower, &upper), (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) if a > b)
            || matches!((&lower, &upper), (Bound::Excluded(a), Bound::Excluded(b)) if a == b);
        let mut want: Vec<Vec<u8>> = if empty {
            Vec::new()
        } else {
            model
                .range((lower, upper))
                .map(|(k, _)| k.clone())
                .collect()
        };
        if reverse {
            want.reverse();
        }
        if let Some(l) = limit {
            want.truncate(l);
        }
        let got: Vec<Vec<u8>> = bee
            .range(&options)
            .expect("range")
            .into_iter()
            .map(|i| i.key)
            .collect();
        assert_eq!(got, want, "range {options:?}");
    }
}

fn probe() -> impl Strategy<Value = Probe> {
    (
        prop::option::of(0u16..300),
        prop::option::of(0u16..300),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0usize..20),
    )
}

/// Runs `ops`, comparing after each; the tree's shape is checked from the
/// raw blocks every `shape_every` steps and at the end.
fn run(ops: Vec<Op>, probes: Vec<Probe>, shape_every: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |dir: &std::path::Path| {
        Store::open_with(
            dir,
            StoreOptions {
                durability: Durability::Eventual,
                ..Default::default()
            },
        )
        .expect("store")
    };
    let mut store = open(dir.path());
    let mut bee = Bee::open(store.named("bee").expect("core")).expect("bee");
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut snapshots: Vec<(u64, Model)> = Vec::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                bee.put(&key(k), &value(v)).expect("put");
                model.insert(key(k), value(v));
            }
            Op::Del(k) => {
                let had = model.remove(&key(k)).is_some();
                assert_eq!(bee.del(&key(k)).expect("del"), had);
            }
            Op::Batch(items) => {
                let mut batch = bee.batch();
                for (k, v) in items {
                    match v {
                        Some(v) => {
                            batch.put(&key(k), &value(v));
                            model.insert(key(k), value(v));
                        }
                        None => {
                            batch.del(&key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                batch.commit().expect("batch");
            }
            Op::PutIfAbsent(k, v) => {
                let absent = !model.contains_key(&key(k));
                assert_eq!(
                    bee.put_if(&key(k), &value(v), &Condition::Absent)
                        .expect("cas"),
                    absent
                );
                if absent {
                    model.insert(key(k), value(v));
                }
            }
            Op::PutIfEquals(k, expected, v) => {
                let holds = model.get(&key(k)) == Some(&value(expected));
                let done = bee
                    .put_if(&key(k), &value(v), &Condition::Equals(value(expected)))
                    .expect("cas");
                assert_eq!(done, holds);
                if holds {
                    model.insert(key(k), value(v));
                }
            }
            Op::DelIfEquals(k, expected) => {
                let holds = model.get(&key(k)) == Some(&value(expected));
                assert_eq!(
                    bee.del_if(&key(k), &Condition::Equals(value(expected)))
                        .expect("cas"),
                    holds
                );
                if holds {
                    model.remove(&key(k));
                }
            }
            Op::Reopen => {
                drop(bee);
                store.flush().expect("flush");
                drop(store);
                store = open(dir.path());
                bee = Bee::open(store.named("bee").expect("core")).expect("bee");
            }
        }
        compare(
            &bee,
            &model,
            &probes,
            snapshots.len().is_multiple_of(shape_every),
        );
        snapshots.push((bee.version().expect("version"), model.clone()));
    }
    // Old versions, at most 60 of them spread over the run; and the diff
    // from each to the next sampled one against the models' difference.
    let every = snapshots.len().div_ceil(60).max(1);
    let sampled: Vec<(u64, Model)> = snapshots.into_iter().step_by(every).collect();
    for pair in sampled.windows(2) {
        let ((v1, m1), (v2, m2)) = (&pair[0], &pair[1]);
        let newer = bee.checkout(*v2).expect("checkout");
        let got = newer.diff(*v1).expect("diff");
        let mut want = Vec::new();
        for k in m1
            .keys()
            .chain(m2.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let (a, b) = (m1.get(k), m2.get(k));
            if a != b {
                want.push(hyper_bee::Difference {
                    key: k.clone(),
                    old: a.cloned(),
                    new: b.cloned(),
                });
            }
        }
        assert_eq!(got, want, "diff from {v1} to {v2}");
    }
    for (version, snapshot) in sampled {
        let old = bee.checkout(version).expect("checkout");
        compare(&old, &snapshot, &probes[..probes.len().min(2)], true);
    }
    compare(&bee, &model, &probes, true);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn matches_a_btreemap(ops in prop::collection::vec(op(300), 1..120), probes in prop::collection::vec(probe(), 4)) {
        run(ops, probes, 1);
    }
}

/// Thousands of operations on few keys: many splits and merges.
#[test]
fn thousands_of_operations() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let ops: Vec<Op> = (0..3000)
        .map(|_| match rng.random_range(0..10) {
            0..=5 => Op::Put(rng.random_range(0..400), rng.random()),
            6..=8 => Op::Del(rng.random_range(0..400)),
            _ => Op::Batch(
                (0..rng.random_range(0..50))
                    .map(|_| {
                        (
                            rng.random_range(0..400),
                            rng.random_bool(0.7).then(|| rng.random()),
                        )
                    })
                    .collect(),
            ),
        })
        .collect();
    // Compared after every step too, with a few fixed probes.
    let probes = vec![
        (Some(10), Some(200), true, false, false, None),
        (Some(50), None, false, true, true, Some(7)),
        (None, Some(300), true, true, true, None),
    ];
    run(ops, probes, 50);
}
