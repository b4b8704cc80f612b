//! How many tree nodes a replica asks for with a block: the walk up to the
//! nearest node it stores (or a root), and the bound a requester that
//! expects a lower node from an earlier request gives it.

mod common;

use common::{honest_block, honest_upgrade, store, writer};

#[test]
fn the_walk_stops_at_a_stored_node_a_root_or_its_bound() {
    let blocks: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 100]).collect();
    let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
    let (_w, source) = writer(&refs);
    let r = store();
    let replica = r.store.replica(&source.key()).expect("replica");
    replica
        .apply(&[honest_upgrade(&source, &replica)])
        .expect("upgrade");
    // 64 blocks: one root six levels above the leaves, nothing else stored.
    assert_eq!(replica.missing_nodes(5).expect("missing"), 6);
    let bounded = replica
        .missing_nodes_within(&[(5, 3), (5, 6), (5, 7), (5, u64::MAX), (5, 1)])
        .expect("bounded");
    assert_eq!(bounded, [3, 6, 6, 6, 1]);
    // Block 4's proof stores the siblings on 4's path: block 5's leaf is one.
    replica
        .apply(&[honest_block(&source, &replica, 4)])
        .expect("block 4");
    assert_eq!(replica.missing_nodes(5).expect("missing"), 0);
    assert_eq!(
        replica
            .missing_nodes_within(&[(5, 2), (6, u64::MAX), (6, 1), (63, 2)])
            .expect("bounded"),
        [0, 1, 1, 2]
    );
}
