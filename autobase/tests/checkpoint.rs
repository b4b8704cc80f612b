//! Quorum-signed checkpoints on real stores replicating their writer cores
//! live over real TCP loopback connections: three indexers sign what they
//! indexed, two of three still sign, one alone does not (while writes go
//! on), and forged checkpoints are refused.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::*;
use hyper_autobase::{Base, Causal, Node, ViewSignature};
use hyper_core::{Core, CoreKey, Signature, Store};
#[test]
fn three_indexers_sign_what_they_indexed() {
    let peers = Peers::new(4);
    let _mesh = peers.mesh(&[0, 1, 2, 3]);
    let mut bases = peers.bases(&[1, 2]);
    let mut reader = bases.pop().expect("store 3 joined, not added");
    for (i, base) in bases.iter_mut().enumerate() {
        append(base, i, 0..5);
    }
    drive(&mut bases, settled_at(15), "signed_length reaches 15");
    // The same view, the same signed core key, a quorum of signatures.
    let signed_key = bases[0].signed_view(VIEW).expect("signed").key();
    for base in &bases {
        assert_eq!(log(base), log(&bases[0]));
        assert_eq!(base.signed_view(VIEW).expect("signed").key(), signed_key);
        assert!(signers_of(base).len() >= 2, "{:?}", signers_of(base));
        assert!(base.info().refused_signatures.is_empty());
    }
    // A peer that is not a writer follows the indexers' nodes and checks
    // their signatures against its own copy: it reaches the same signed
    // state.
    wait(
        || {
            reader.update().expect("update");
            reader.info().views[0].signed_length == 15
        },
        "the reader's signed length",
    );
    assert_eq!(log(&reader), log(&bases[0]));
    let signed = reader.signed_view(VIEW).expect("signed");
    assert_eq!(signed.key(), signed_key);
    let (ours, theirs) = (
        signed.signed_state().expect("state"),
        bases[0]
            .signed_view(VIEW)
            .expect("signed")
            .signed_state()
            .expect("state"),
    );
    assert_eq!(ours.roots, theirs.roots);
}

#[test]
fn two_of_three_indexers_still_sign_and_the_third_catches_up() {
    let (peers, mesh, mut bases) = three_signed_at_3();
    // Indexer 2 goes offline: its store is not connected and its base
    // does not run.
    drop(mesh);
    let two = peers.mesh(&[0, 1]);
    append(&mut bases[0], 0, 1..5);
    append(&mut bases[1], 1, 1..5);
    drive(&mut bases[..2], settled_at(11), "two of three sign 11");
    // Signed by 0 and 1 only (positions among the indexers, in writer key
    // order).
    let mut online: Vec<u8> = [0usize, 1]
        .iter()
        .map(|i| {
            bases[0]
                .info()
                .indexers
                .iter()
                .position(|k| *k == peers.writers[*i])
                .expect("an indexer") as u8
        })
        .collect();
    online.sort_unstable();
    for base in &bases[..2] {
        assert_eq!(signers_of(base), online);
    }
    assert_eq!(bases[2].info().views[0].signed_length, 3);
    // It comes back: it catches up and ends with the same signed view.
    drop(two);
    let _all = peers.mesh(&[0, 1, 2]);
    drive(&mut bases, settled_at(11), "the third catches up");
    assert_eq!(log(&bases[2]), log(&bases[0]));
}

#[test]
fn one_indexer_of_three_alone_cannot_sign_but_writes_go_on() {
    let (peers, mesh, mut bases) = three_signed_at_3();
    drop(mesh);
    // Indexer 0 alone: it writes, its optimistic view grows, nothing more
    // becomes final or signed, and its acks stop.
    append(&mut bases[0], 0, 1..6);
    let writer = peers.stores[0].named(NAME).expect("writer");
    let mut lengths = Vec::new();
    for _ in 0..20 {
        bases[0].update().expect("update");
        bases[0].ack_until_settled(true).expect("ack");
        lengths.push(writer.info().expect("info").length);
        thread::sleep(Duration::from_millis(10));
    }
    let view = &bases[0].info().views[0];
    assert_eq!(
        (view.length, view.indexed_length, view.signed_length),
        (8, 3, 3)
    );
    assert!(
        lengths.windows(2).skip(1).all(|w| w[0] == w[1]),
        "acks stop: {lengths:?}"
    );
    // The others come back: finality and signatures move on.
    let _all = peers.mesh(&[0, 1, 2]);
    drive(
        &mut bases,
        settled_at(8),
        "signed again once a majority is back",
    );
}

#[test]
fn forged_checkpoints_are_refused_without_harming_the_view() {
    // Stores 0-2 are the indexers; 3 is a writer that is not one.
    let peers = Peers::new(4);
    let _mesh = peers.mesh(&[0, 1, 2, 3]);
    let mut bases = peers.bases(&[1, 2]);
    let hostile_writer = peers.writers[3];
    bases[0]
        .append(&[format!("add:{hostile_writer}").as_bytes()])
        .expect("add");
    append(&mut bases[1], 1, 0..2);
    drive(&mut bases, settled_at(2), "signed 2");
    let base_signed = bases[0].signed_view(VIEW).expect("signed").key();
    // A real, valid signature of indexer 1, read from its log.
    let indexer_log = peers.stores[0].replica(&peers.writers[1]).expect("log");
    let genuine: ViewSignature = (1..indexer_log.info().expect("info").length)
        .filter_map(|i| Node::decode(&indexer_log.get(i).expect("block")).ok())
        .find_map(|n| n.checkpoint.iter().find(|s| s.view == base_signed).copied())
        .expect("indexer 1 shipped a checkpoint");
    let system = bases[0].signed_system().expect("system").key();
    let system_next = bases[0].info().system.length + 1;
    // Stores 2 and 3 turn hostile: they stop running their bases and append
    // crafted nodes to their own (signed) writer cores, which replicate.
    let mut honest: Vec<Base<Log>> = bases.drain(..2).collect();
    drop(bases);
    // The non-indexer replays the indexer's genuine signature as its own.
    let replay = Node::new(Some(b"3:replayed".to_vec()), vec![], 0).with_checkpoint(vec![genuine]);
    // The indexer forges: garbage over the next state of the view and of
    // the system core, and one far ahead.
    let forged = Node::new(Some(b"2:forged".to_vec()), vec![], 0).with_checkpoint(vec![
        ViewSignature {
            view: base_signed,
            length: 4,
            signature: Signature([7; 64]),
        },
        ViewSignature {
            view: system,
            length: system_next,
            signature: Signature([6; 64]),
        },
    ]);
    let far = Node::new(None, vec![], 0).with_checkpoint(vec![ViewSignature {
        view: base_signed,
        length: 1_000_000,
        signature: Signature([8; 64]),
    }]);
    let unknown_view = Node::new(None, vec![], 0).with_checkpoint(vec![ViewSignature {
        view: CoreKey([9; 32]),
        length: 1,
        signature: Signature([9; 64]),
    }]);
    let indexers = honest[0].info().indexers;
    let position = indexers.iter().position(|k| *k == peers.writers[2]);
    let three = peers.stores[3].named(NAME).expect("writer");
    three
        .append(&replay.with_causal(next_causal(&three, None)).encode())
        .expect("append");
    let two = peers.stores[2].named(NAME).expect("writer");
    for node in [forged, far, unknown_view] {
        two.append(&node.with_causal(next_causal(&two, position)).encode())
            .expect("append");
    }
    // The honest peers hold the hostile nodes before anything else is
    // written, so the forged signature's length is checked, not passed.
    for store in &peers.stores[..2] {
        let (two, three) = (
            store.replica(&peers.writers[2]).expect("replica"),
            store.replica(&peers.writers[3]).expect("replica"),
        );
        let want = (
            peers.stores[2]
                .named(NAME)
                .expect("writer")
                .info()
                .expect("info")
                .length,
            peers.stores[3]
                .named(NAME)
                .expect("writer")
                .info()
                .expect("info")
                .length,
        );
        wait(
            || {
                (
                    two.info().expect("info").contiguous_length,
                    three.info().expect("info").contiguous_length,
                ) == want
            },
            "the hostile nodes",
        );
    }
    append(&mut honest[0], 0, 0..2);
    // 2 values before, 2 hostile values, 2 honest ones: all indexed and
    // signed by the two honest indexers.
    drive(&mut honest, settled_at(6), "the honest two sign 6");
    for base in &honest {
        let refused = base.info().refused_signatures;
        let text = refused.join("\n");
        assert!(
            text.contains(&format!(
                "checkpoint of writer {hostile_writer} refused: it is not an indexer"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "signature of indexer {} for view 'log' of epoch 0 at length 4 refused",
                peers.writers[2]
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "signature of indexer {} for the system core of epoch 0 at length {system_next} refused",
                peers.writers[2]
            )),
            "{text}"
        );
        assert!(text.contains("is not a view of this base"), "{text}");
        let view = &base.info().views[0];
        assert_eq!(view.signed_length, 6);
        assert!(signers_of(base).len() >= 2, "{:?}", signers_of(base));
    }
    assert_eq!(log(&honest[0]), log(&honest[1]));
    assert!(log(&honest[0]).contains(&b"3:replayed".to_vec()));
    assert!(log(&honest[0]).contains(&b"2:forged".to_vec()));
}

/// The causal facts of a batch with no heads appended next to `core` by the
/// indexer at `position` (`None`: not an indexer) of a base of three
/// indexers: its only dependency is the core's last batch.
fn next_causal(core: &Core, position: Option<usize>) -> Causal {
    let length = core.info().expect("info").length;
    // Block 0 is the header: no batch before.
    let last: Vec<Causal> = (length > 1)
        .then(|| Node::decode(&core.get(length - 1).expect("block")).expect("node"))
        .and_then(|n| n.causal)
        .into_iter()
        .collect();
    Causal::after(&last, 0, position, 2)
}

#[test]
fn peers_are_served_only_the_signed_part_of_a_view() {
    let peers = Peers::new(3);
    let _mesh = peers.mesh(&[0, 1, 2]);
    let mut bases = peers.bases(&[1, 2]);
    for (i, base) in bases.iter_mut().enumerate() {
        append(base, i, 0..3);
    }
    // Acks without the timer index the values, but nothing is appended
    // once all is indexed, so the last signatures stay unshipped.
    let started = Instant::now();
    while bases.iter().any(|b| b.info().views[0].indexed_length < 9) {
        for base in bases.iter_mut() {
            base.update().expect("update");
            base.ack_until_settled(false).expect("ack");
        }
        assert!(started.elapsed() < PATIENCE, "indexing 9");
        thread::sleep(Duration::from_millis(10));
    }
    let info = bases[0].info().views[0].clone();
    assert!(
        info.signed_length < info.indexed_length,
        "precondition: an unsigned tail: {info:?}"
    );
    // A plain replica of store 0's signed view core, over TCP.
    let signed = bases[0].signed_view(VIEW).expect("signed").clone();
    let reader_dir = tempfile::tempdir().expect("tempdir");
    let reader = Store::open(reader_dir.path()).expect("store");
    let serve = Mesh::new(&[&peers.stores[0], &reader], &[signed.key()]);
    let copy = reader.replica(&signed.key()).expect("replica");
    wait(
        || copy.info().expect("info").length == info.signed_length,
        "the signed part",
    );
    // More time brings no unsigned entry.
    thread::sleep(Duration::from_millis(300));
    assert_eq!(copy.info().expect("info").length, info.signed_length);
    let view = bases[0].view(VIEW).expect("view");
    for i in 0..info.signed_length {
        assert_eq!(copy.get(i).expect("block"), view.get(i).expect("block"));
    }
    // Once the indexers ship their signatures (timer acks), the replica
    // follows to the whole indexed view.
    drive(&mut bases, settled_at(9), "signed 9");
    wait(
        || copy.info().expect("info").length == 9,
        "the replica follows the signed length",
    );
    drop(serve);
}
