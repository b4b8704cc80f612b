//! Bees crafted by a hostile writer (raw core appends) are refused with a
//! clear error: a 200,000-level chain never overflows the stack, and nodes
//! whose children repeat (or share their subtrees) never make a read walk
//! 2^depth or 8^depth nodes.

use std::sync::mpsc;
use std::time::Duration;

use hyper_bee::messages::{Entry, Header, Level};
use hyper_bee::{Bee, Error, RangeOptions};
use hyper_core::{Core, Store};
use prost::Message as _;

fn header() -> Vec<u8> {
    Header {
        protocol: "hyper-bee".into(),
        version: 1,
    }
    .encode_to_vec()
}

fn entry(seq: u64, levels: Vec<Level>) -> Vec<u8> {
    Entry {
        key: format!("k{seq:07}").into_bytes(),
        value: b"v".to_vec(),
        deleted: false,
        levels,
    }
    .encode_to_vec()
}

fn node(keys: Vec<u64>, children: &[(u64, u32)]) -> Level {
    Level {
        keys,
        child_blocks: children.iter().map(|c| c.0).collect(),
        child_levels: children.iter().map(|c| c.1).collect(),
    }
}

/// A core holding the header and `blocks`, in a store kept by the caller.
fn crafted(blocks: Vec<Vec<u8>>) -> (tempfile::TempDir, Store, Core) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let core = store.create_core().expect("core");
    let mut all = vec![header()];
    all.extend(blocks);
    for chunk in all.chunks(20_000) {
        core.append_batch(chunk).expect("append");
    }
    (dir, store, core)
}

/// Runs `read` on its own thread: it must end within 30 s (a stack
/// overflow aborts the test process, an exponential walk times out).
fn bounded<T: Send + 'static>(what: &str, read: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(read());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} did not end within 30 s"))
}

fn assert_refused<T: std::fmt::Debug>(what: &str, got: hyper_bee::Result<T>, reason: &str) {
    match got {
        Err(Error::Corrupt { reason: r, .. }) if r.contains(reason) => {}
        other => panic!("{what}: expected a corruption error naming {reason:?}, got {other:?}"),
    }
}

#[test]
fn a_200000_level_chain_is_refused_without_overflowing_the_stack() {
    // Block s: one inner node whose first child is block s - 1's root, a
    // chain as deep as the core is long. Keys ascend with s, so every node
    // is in order; only the depth is wrong.
    const LEVELS: u64 = 200_000;
    let mut blocks = vec![entry(1, vec![node(vec![1], &[])])];
    for s in 2..=LEVELS {
        blocks.push(entry(
            s,
            vec![node(vec![s], &[(s - 1, 0), (s, 1)]), node(vec![s], &[])],
        ));
    }
    let (_d, _s, core) = crafted(blocks);
    let bee = Bee::open(core).expect("the header is fine");
    let b = bee.clone();
    let ranged = bounded("range", move || {
        b.range_iter(&RangeOptions::default())
            .and_then(|it| it.collect::<hyper_bee::Result<Vec<_>>>())
    });
    assert_refused("range", ranged, "deeper than 48 levels");
    let b = bee.clone();
    let got = bounded("get", move || b.get(b"k0000001"));
    assert_refused("get", got, "deeper than 48 levels");
    let b = bee.clone();
    let diff = bounded("diff", move || b.diff(0));
    assert_refused("diff", diff, "deeper than 48 levels");
    let b = bee.clone();
    let put = bounded("put", move || b.put(b"k0000000", b"x"));
    assert_refused("put", put, "deeper than 48 levels");
}

#[test]
fn children_that_repeat_one_node_are_refused() {
    // Block s: 7 keys and 8 children that are all block s - 1's root: a
    // walk that followed them would visit 8^depth nodes.
    const DEPTH: u64 = 30;
    let mut blocks = vec![entry(1, vec![node(vec![1], &[])])];
    for s in 2..=DEPTH {
        blocks.push(entry(s, vec![node(vec![s; 7], &[(s - 1, 0); 8])]));
    }
    let (_d, _s, core) = crafted(blocks);
    let bee = Bee::open(core).expect("the header is fine");
    let b = bee.clone();
    let ranged = bounded("range", move || b.range(&RangeOptions::default()));
    assert_refused("range", ranged, "children of a node are the same node");
    let b = bee.clone();
    let diff = bounded("diff", move || b.diff(0));
    assert_refused("diff", diff, "children of a node are the same node");
}

#[test]
fn distinct_children_that_share_their_subtrees_are_refused() {
    // Block s: two nodes, each with both of block s - 1's nodes as
    // children: every child pointer differs, yet the walk would double at
    // each of 40 levels (2^40 nodes).
    const DEPTH: u64 = 40;
    let mut blocks = vec![entry(1, vec![node(vec![1], &[]), node(vec![1], &[])])];
    for s in 2..=DEPTH {
        let children = [(s - 1, 0), (s - 1, 1)];
        blocks.push(entry(
            s,
            vec![node(vec![s], &children), node(vec![s], &children)],
        ));
    }
    let (_d, _s, core) = crafted(blocks);
    let bee = Bee::open(core).expect("the header is fine");
    let b = bee.clone();
    let ranged = bounded("range", move || b.range(&RangeOptions::default()));
    assert_refused("range", ranged, "keys out of order");
    // A diff does not compare separators; it stops at its visit bound.
    let b = bee.clone();
    let diff = bounded("diff", move || b.diff(0));
    assert_refused(
        "diff",
        diff,
        "visits more nodes than the version has blocks",
    );
}

#[test]
fn keys_out_of_order_in_a_node_are_refused() {
    // A leaf whose keys are not strictly ascending (a repeated key block).
    let blocks = vec![
        entry(1, vec![node(vec![1], &[])]),
        entry(2, vec![node(vec![2, 1], &[])]),
    ];
    let (_d, _s, core) = crafted(blocks);
    let bee = Bee::open(core).expect("the header is fine");
    assert_refused(
        "range",
        bee.range(&RangeOptions::default()),
        "keys out of order",
    );
}
