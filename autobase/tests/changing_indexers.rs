//! Indexers added and removed after a base was created, on real stores
//! replicating over loopback TCP: the new indexers index and sign without
//! the old ones, each epoch has its own signed cores, the last indexer
//! cannot be removed, and a reopened base ends where it was.

mod common;

use std::time::Instant;

use common::{Fetcher, Log, NAME, PATIENCE, Peers, VIEW, append, drive, log, settled_at};
use hyper_autobase::Base;

/// Runs the bases (update, then ack with the timer fired) until `done`
/// holds for every base.
fn until(bases: &mut [Base<Log>], done: impl Fn(&Base<Log>) -> bool, what: &str) {
    let started = Instant::now();
    loop {
        for base in bases.iter_mut() {
            base.update().expect("update");
            base.ack_until_settled(true).expect("ack");
        }
        if bases.iter().all(&done) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}: {:?}",
            bases
                .iter()
                .map(|b| b.info().refused_signatures)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// How much of its view the base's newest epoch's signed core has signed.
fn newest_signed(base: &Base<Log>) -> u64 {
    let core = base.signed_view(VIEW).expect("view core");
    core.info().expect("info").signed_length
}

/// Appends the ops as one batch each from `base`.
fn ops(base: &mut Base<Log>, ops: &[String]) {
    for op in ops {
        base.append(&[op.as_bytes()]).expect("append");
    }
}

#[test]
fn new_indexers_index_and_sign_once_the_creator_left() {
    let peers = Peers::new(4);
    let (w0, w1, w2) = (peers.writers[0], peers.writers[1], peers.writers[2]);
    let mesh = peers.mesh(&[0, 1, 2]);
    let mut bases = peers.bases_of(3, &[]);
    let first_signed = bases[0].signed_view(VIEW).expect("view core").key();
    // The creator, alone an indexer, makes 1 and 2 writers, then
    // indexers, then steps down to a plain writer.
    ops(
        &mut bases[0],
        &[
            format!("add:{w1}"),
            format!("add:{w2}"),
            "a".into(),
            format!("indexer:{w1}"),
            format!("indexer:{w2}"),
            "b".into(),
        ],
    );
    // The two count once a batch of each is indexed (they ack for it).
    let mut set = vec![w0, w1, w2];
    set.sort();
    drive(
        &mut bases,
        |i| settled_at(2)(i) && i.indexers == set,
        "three indexers now",
    );
    ops(&mut bases[0], &[format!("writer:{w0}"), "c".into()]);
    let mut set = vec![w1, w2];
    set.sort();
    drive(
        &mut bases,
        |i| settled_at(3)(i) && i.indexers == set,
        "the creator is no indexer",
    );
    // The view as the old indexers signed it; the new ones sign it again
    // in their epoch's core.
    until(
        &mut bases,
        |b| newest_signed(b) == 3,
        "the new indexers sign their epoch's core",
    );
    for base in &bases {
        assert_eq!(base.info().writers.len(), 3, "all three still write");
        let signed = base.signed_view(VIEW).expect("view core");
        assert_ne!(signed.key(), first_signed, "a new epoch's core");
        // (One epoch per change of the set: how many depends on which
        // commits the changes landed in.)
        let cores = base.signed_cores().len();
        assert!(
            cores >= 3 * 2 && cores % 2 == 0,
            "epochs of two cores each: {cores}"
        );
    }

    // The creator goes offline: the two new indexers go on alone.
    drop(mesh);
    let _mesh = peers.mesh(&[1, 2]);
    let mut rest: Vec<Base<Log>> = bases.drain(1..).collect();
    append(&mut rest[0], 1, 0..2);
    append(&mut rest[1], 2, 0..2);
    drive(&mut rest, settled_at(7), "the new indexers index and sign");
    until(
        &mut rest,
        |b| newest_signed(b) == 7,
        "in their own epoch's core",
    );
    assert_eq!(log(&rest[0]), log(&rest[1]));
    assert_eq!(
        &log(&rest[0])[..3],
        [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );

    // The last indexer cannot go: 2 removes 1, then itself, which is
    // refused (logged); its value after that is applied.
    ops(
        &mut rest[1],
        &[format!("remove:{w1}"), format!("remove:{w2}"), "d".into()],
    );
    drive(
        &mut rest,
        |i| settled_at(9)(i) && i.indexers == [w2],
        "one indexer is left",
    );
    let tail = log(&rest[1]);
    assert_eq!(&tail[7..], [b"refused".to_vec(), b"d".to_vec()]);
    assert_eq!(rest[1].info().writers.len(), 2, "writer 1 is removed");
    until(
        &mut rest,
        |b| newest_signed(b) == 9 && b.info().system.signed_length == b.info().system.length,
        "the last indexer signs its epoch's cores",
    );

    // A new peer trusts the first indexer alone (the header), and follows
    // the signed system entries that changed the indexers from epoch to
    // epoch: it fetches each epoch's signed cores as it learns their keys,
    // then adopts the newest signed state.
    let key = rest[1].key();
    let fresh = &peers.stores[3];
    let fetcher = Fetcher::new(&peers.stores[2], fresh);
    fetcher.fetch(&key, 0, Some(1));
    let mut fetched = Vec::new();
    let mut late = loop {
        let base = Base::read(fresh, key, &[VIEW], Log).expect("read");
        let new: Vec<_> = base
            .signed_cores()
            .into_iter()
            .filter(|k| !fetched.contains(k))
            .collect();
        if new.is_empty() {
            break base;
        }
        for core in new {
            fetcher.fetch(&core, 0, None);
            fetched.push(core);
        }
    };
    assert_eq!(fetched, rest[1].signed_cores(), "every epoch's cores");
    // (A reopen jumps only far ahead, FAST_FORWARD_AFTER; a sync would
    // fetch the writers' nodes after the state it holds.)
    late.fast_forward().expect("fast-forward");
    let info = late.info();
    assert!(info.fast_forwarded > 0, "{info:?}");
    assert_eq!(info.indexers, [w2]);
    assert_eq!(log(&late), tail, "the signed view");
    assert_eq!(
        late.signed_state().expect("state"),
        rest[1].signed_state().expect("state")
    );
    drop(late);

    // Reopened, a base is where it was: same view, indexers and signed
    // length.
    let before = rest[1].info();
    let store = peers.stores[2].clone();
    rest.truncate(1);
    let reopened = Base::join(&store, key, NAME, &[VIEW], Log).expect("reopen");
    let after = reopened.info();
    assert_eq!(after.indexers, before.indexers);
    assert_eq!(after.views, before.views);
    assert_eq!(log(&reopened), tail);
    drop(bases);
}

#[test]
fn an_indexer_no_device_writes_never_holds_finality_back() {
    let peers = Peers::new(1);
    let mut bases = peers.bases_of(1, &[]);
    let me = peers.writers[0];
    let ghost: hyper_core::CoreKey = "ab".repeat(32).parse().expect("key");
    ops(&mut bases[0], &[format!("indexer:{ghost}"), "a".into()]);
    // The ghost is an indexer by role, but pending until a batch of it is
    // indexed: this indexer alone still indexes and signs.
    drive(
        &mut bases,
        settled_at(1),
        "indexed and signed without the ghost",
    );
    ops(&mut bases[0], &["b".into()]);
    drive(&mut bases, settled_at(2), "still");
    assert_eq!(bases[0].info().indexers, [me]);
    let entry = bases[0].signed_state().expect("state").expect("signed");
    let ghost_member = entry
        .members
        .iter()
        .find(|m| m.key == ghost)
        .expect("member");
    assert!(
        ghost_member.pending && !ghost_member.indexer,
        "{ghost_member:?}"
    );
    // And it can be removed again.
    ops(&mut bases[0], &[format!("remove:{ghost}"), "c".into()]);
    drive(&mut bases, settled_at(3), "after the removal");
    assert_eq!(bases[0].info().indexers, [me]);
}
