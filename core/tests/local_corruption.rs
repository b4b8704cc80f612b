//! A stored tree node that disagrees with a peer's verified path: if the
//! local node does not hash up to the signed roots it is local corruption
//! (`Corruption::TreeNode`, naming the core and the node), not the fault of
//! the honest peer that brought it to light; if it does, the peer lied.

mod common;

use redb::ReadableTable;

use hyper_core::{BlockProof, Core, Corruption, Error, NodeRequest, ProofRequest, VerifyError};

const NODES: redb::TableDefinition<(u64, u64), &[u8]> = redb::TableDefinition::new("nodes");

/// Flips a bit of the stored hash of node `index` of core id 0 in the
/// store at `dir` (the node page layout of `nodepage.rs`: a 16-byte bitmap,
/// then 40 bytes per present node in slot order).
fn damage_node(dir: &std::path::Path, index: u64) {
    let db = redb::Database::create(dir.join("store.redb")).expect("redb");
    let txn = db.begin_write().expect("txn");
    {
        let mut t = txn.open_table(NODES).expect("nodes");
        let (page, slot) = (index / 128, index % 128);
        let mut bytes = t
            .get((0, page))
            .expect("get")
            .expect("page")
            .value()
            .to_vec();
        let bits = u128::from_le_bytes(bytes[..16].try_into().expect("bitmap"));
        assert!(bits & (1 << slot) != 0, "node {index} is stored");
        let at = 16 + 40 * (bits & ((1u128 << slot) - 1)).count_ones() as usize;
        bytes[at] ^= 1;
        t.insert((0, page), bytes.as_slice()).expect("insert");
    }
    txn.commit().expect("commit");
}

/// A replica holding block 0 of an 8-block log with its full path (nodes
/// 0, 2, 1, 5, 3, 11 and the root 7).
fn replica_with_block_0(writer: &Core) -> (common::TempStore, Core) {
    let reader = common::store();
    let replica = reader.store.replica(&writer.key()).expect("replica");
    replica
        .apply(&[common::honest_block(writer, &replica, 0)])
        .expect("honest");
    (reader, replica)
}

fn blocks() -> Vec<Vec<u8>> {
    (0..8u8).map(|i| vec![i; usize::from(i) + 1]).collect()
}

#[test]
fn a_damaged_local_node_is_corruption_not_the_honest_peers_fault() {
    let data = blocks();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, writer) = common::writer(&refs);
    let (reader, replica) = replica_with_block_0(&writer);
    let key = replica.key();
    drop(replica);
    let dir = reader.dir;
    drop(reader.store);
    damage_node(dir.path(), 5);

    let store = hyper_core::Store::open(dir.path()).expect("reopen");
    let replica = store.core(&key).expect("core");
    // Block 2 sits under node 5: the honest path meets the damaged node.
    assert_eq!(replica.missing_nodes(2).expect("missing"), 1);
    let honest = common::honest_block(&writer, &replica, 2);
    let err = replica
        .apply(&[honest])
        .expect_err("damaged node went unnoticed");
    assert!(
        matches!(&err, Error::Corrupt(Corruption::TreeNode { core, index: 5 }) if *core == key),
        "{err:?}"
    );
    assert!(err.to_string().contains(&key.to_string()), "{err}");
}

#[test]
fn a_peer_path_that_disagrees_with_a_sound_local_node_is_the_peers_fault() {
    let data = blocks();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let (_w, writer) = common::writer(&refs);
    let (_r, replica) = replica_with_block_0(&writer);
    let mut lie = writer
        .proof(&ProofRequest {
            block: Some(NodeRequest { index: 2, nodes: 1 }),
            ..Default::default()
        })
        .expect("proof");
    let b: &mut BlockProof = lie.block.as_mut().expect("block");
    b.nodes[0].hash.0[3] ^= 0x40;
    let err = replica.apply(&[lie]).expect_err("lie accepted");
    assert!(
        matches!(err, Error::Verify(VerifyError::HashMismatch { index: 5 })),
        "{err:?}"
    );
    // The honest proof still goes in.
    replica
        .apply(&[common::honest_block(&writer, &replica, 2)])
        .expect("honest");
    assert_eq!(replica.get(2).expect("get"), data[2]);
}
