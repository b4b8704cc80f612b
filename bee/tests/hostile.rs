//! Bees crafted by a hostile writer (raw core appends) are refused with a
//! clear error: a 200,000-level chain never overflows the stack, and nodes
//! whose children repeat (or share their subtrees) never make a read walk
//! 2^depth or 8^depth nodes.

use std::sync::mpsc;
use std::time::Duration;

use hyper_bee::{Bee, Error, RangeOptions};

#[path = "common/crafted.rs"]
mod crafted;

use crafted::{crafted, deep_chain, entry, node, repeated_children};

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
    // A chain as deep as the core is long; only the depth is wrong.
    let blocks = deep_chain(200_000);
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
    // 8 children that are all the previous block's root: a walk that
    // followed them would visit 8^depth nodes.
    let blocks = repeated_children(30);
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
