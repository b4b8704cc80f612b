//! The linearizer when the indexers change: a commit that indexes a value
//! waits for its confirmation, a new indexer set drives finality from the
//! next epoch on, and batches that misstate their epoch are refused or held
//! back. (The seeded simulation changes indexers at random too.)

use hyper_autobase::{Causal, Linearizer, Node};
use hyper_core::CoreKey;

/// Appends a one-node batch of `value` by `me` naming every head it sees.
fn append(lin: &mut Linearizer, me: CoreKey, value: Option<&[u8]>) {
    let heads = lin.heads(&me);
    let causal = lin.causal_for(&me, &heads).expect("own facts");
    lin.push(
        &me,
        Node::new(value.map(<[u8]>::to_vec), heads, 0).with_causal(causal),
    )
    .expect("own node");
}

fn indexed_values(lin: &mut Linearizer) -> Vec<Vec<u8>> {
    lin.update();
    lin.indexed_from(0)
        .flat_map(|b| b.values.iter().flatten().cloned())
        .collect()
}

#[test]
fn a_new_indexer_set_drives_finality_from_the_commit_that_confirmed_it() {
    let (a, b) = (CoreKey([1; 32]), CoreKey([2; 32]));
    let mut lin = Linearizer::new(&[a]).expect("indexers");
    lin.confirm_each_commit();
    lin.add_writer(b);
    append(&mut lin, a, Some(b"x"));
    append(&mut lin, a, None);
    assert!(lin.awaiting(), "the commit indexing x waits");
    assert_eq!(indexed_values(&mut lin), [b"x".to_vec()]);
    // More acks of a commit nothing while the commit waits.
    append(&mut lin, a, None);
    assert!(lin.confirm(&[]).is_err(), "a base keeps an indexer");
    lin.confirm(&[b]).expect("b replaces a");
    assert_eq!((lin.epoch(), lin.indexers()), (1, &[b][..]));
    assert_eq!(lin.commits().last().map(|c| c.switches), Some(true));
    assert!(lin.confirm(&[b]).is_err(), "nothing waits now");

    // a is no indexer of epoch 1: its acks index nothing.
    append(&mut lin, a, Some(b"y"));
    for _ in 0..4 {
        append(&mut lin, a, None);
    }
    assert!(!lin.should_ack(&a, true), "a is no indexer now");
    assert_eq!(indexed_values(&mut lin), [b"x".to_vec()]);
    // b's batches of epoch 1 do: round 0 (b leads it), then a vote.
    assert!(lin.should_ack(&b, true));
    append(&mut lin, b, None);
    append(&mut lin, b, None);
    assert!(lin.awaiting(), "the commit indexing y waits");
    assert_eq!(
        lin.commits().last().map(|c| (c.epoch, c.round)),
        Some((1, 0))
    );
    lin.confirm(&[b]).expect("no change");
    assert_eq!(indexed_values(&mut lin), [b"x".to_vec(), b"y".to_vec()]);
    assert_eq!(lin.epoch(), 1);
    let frontier = lin.frontier();
    assert_eq!(frontier.epochs, vec![vec![b]]);
}

#[test]
fn batches_of_a_wrong_epoch_are_refused_and_of_a_later_one_held_back() {
    let (a, b, c, d) = (
        CoreKey([1; 32]),
        CoreKey([2; 32]),
        CoreKey([3; 32]),
        CoreKey([4; 32]),
    );
    let mut lin = Linearizer::new(&[a]).expect("indexers");
    lin.confirm_each_commit();
    for k in [b, c, d] {
        lin.add_writer(k);
    }
    append(&mut lin, a, Some(b"x"));
    append(&mut lin, a, None);
    lin.confirm(&[a, b]).expect("b joins");
    append(&mut lin, b, Some(b"in epoch 1"));

    // c names b's epoch-1 batch but states epoch 0.
    let heads = lin.heads(&c);
    let mut forged = lin.causal_for(&c, &heads).expect("facts");
    assert_eq!(forged.epoch, 1);
    forged.epoch = 0;
    let err = lin
        .push(
            &c,
            Node::new(Some(b"c".to_vec()), heads, 0).with_causal(forged),
        )
        .expect_err("refused");
    assert!(err.to_string().contains("epoch"), "{err}");

    // d states epoch 2, which this linearizer has not reached: held back.
    let heads = lin.heads(&d);
    let facts = lin.causal_for(&d, &heads).expect("facts");
    let later = Causal {
        epoch: 2,
        round: None,
        round_set: 0,
        ..facts
    };
    lin.push(
        &d,
        Node::new(Some(b"d".to_vec()), heads, 0).with_causal(later),
    )
    .expect("held back, not refused");
    lin.update();
    assert!(
        lin.order().all(|batch| batch.writer != d),
        "not ordered yet"
    );

    // Epoch 2 starts (b leaves); d's batch goes in with the facts it stated.
    append(&mut lin, a, None);
    append(&mut lin, b, None);
    append(&mut lin, a, None);
    append(&mut lin, b, None);
    assert!(lin.awaiting());
    lin.confirm(&[a]).expect("b leaves");
    assert_eq!(lin.epoch(), 2);
    lin.update();
    assert!(lin.order().any(|batch| batch.writer == d), "d is ordered");
    assert!(
        lin.faulty().iter().all(|(k, _)| *k == c),
        "only c is faulty"
    );
}
