//! The signed system core on real stores replicating their writer cores
//! live over real TCP loopback connections: three indexers (and two of
//! three) sign it; its newest signed entry is the linearizer's frontier at
//! that commit and the signed views' states; peers that indexed the same
//! prefix in one update or in many, or again after a reopen, wrote the
//! same bytes; and a linearizer started from the decoded entry orders the
//! later nodes as one holding the whole history.

mod common;

use common::*;
use hyper_autobase::{Base, BaseInfo, Frontier, Linearizer, Node, SystemEntry};
use hyper_core::{Core, CoreKey, Store};

/// The log view and the system core are both signed as far as they go,
/// the view at `n` entries.
fn all_signed_at(n: u64) -> impl Fn(&BaseInfo) -> bool {
    move |i| settled_at(n)(i) && i.system.length > 0 && i.system.signed_length == i.system.length
}

fn blocks(core: &Core) -> Vec<Vec<u8>> {
    let length = core.info().expect("info").length;
    (0..length).map(|i| core.get(i).expect("block")).collect()
}

fn system_blocks(base: &Base<Log>) -> Vec<Vec<u8>> {
    blocks(base.signed_system().expect("a system core"))
}

/// The nodes of writer core `key` as `store` holds them.
fn nodes(store: &Store, key: &CoreKey) -> Vec<Node> {
    let core = store.replica(key).expect("replica");
    let length = core.info().expect("info").contiguous_length;
    (1..length)
        .map(|i| Node::decode(&core.get(i).expect("block")).expect("node"))
        .collect()
}

/// A new linearizer fed every node `store` holds of the base's writers.
fn full(store: &Store, base: &Base<Log>) -> Linearizer {
    let mut lin = Linearizer::new(&base.info().indexers).expect("indexers");
    for key in base.cores() {
        lin.add_writer(key);
    }
    for key in base.cores() {
        for node in nodes(store, &key) {
            lin.push(&key, node).expect("an honest node");
        }
    }
    lin.update();
    lin
}

/// The frontier after the `entry`-th leader commit of `lin` that indexed a
/// value (the one system entry `entry` is written for).
fn frontier_of_entry(lin: &Linearizer, entry: u64) -> Frontier {
    let (i, _) = lin
        .commits()
        .iter()
        .enumerate()
        .filter(|(_, c)| c.values)
        .nth(entry as usize)
        .expect("as many commits with values as entries");
    lin.frontier_at_commit(i).expect("a commit")
}

/// The tree hash the system entry's view states carry (the bytes the proto
/// file names), computed here from `core`'s roots at `length`.
fn tree_hash(core: &Core, length: u64) -> [u8; 32] {
    let roots = core.roots_at(&[length]).expect("roots");
    let mut h = blake3::Hasher::new();
    h.update(&length.to_le_bytes());
    for root in roots.first().expect("one length") {
        h.update(&root.index.to_le_bytes());
        h.update(&root.size.to_le_bytes());
        h.update(root.hash.as_bytes());
    }
    *h.finalize().as_bytes()
}

/// `base`'s newest signed entry is the frontier a linearizer fed the same
/// nodes gives at that commit, names the indexers as members, and holds
/// the signed view's state.
fn check_signed_entry(store: &Store, base: &Base<Log>) -> SystemEntry {
    let info = base.info();
    let entry = base.signed_state().expect("read").expect("a signed entry");
    let lin = full(store, base);
    assert_eq!(
        entry.frontier,
        frontier_of_entry(&lin, info.system.signed_length - 1)
    );
    let indexers: Vec<CoreKey> = entry
        .members
        .iter()
        .filter(|m| m.indexer && !m.removed)
        .map(|m| m.key)
        .collect();
    assert_eq!(indexers, info.indexers);
    let view = &info.views[0];
    let signed = base.signed_view(VIEW).expect("signed view");
    assert_eq!(entry.views.len(), 1);
    assert_eq!(entry.views[0].name, VIEW);
    assert_eq!(entry.views[0].length, view.signed_length);
    assert_eq!(
        entry.views[0].tree_hash,
        tree_hash(signed, view.signed_length)
    );
    entry
}

#[test]
fn three_indexers_sign_the_system_core_and_a_frontier_from_it_orders_as_the_full_history() {
    let peers = Peers::new(3);
    let mesh = peers.mesh(&[0, 1, 2]);
    let mut bases = peers.bases(&[1, 2]);
    for (i, base) in bases.iter_mut().enumerate() {
        append(base, i, 0..5);
    }
    drive(&mut bases, all_signed_at(15), "the system core signed");
    let key = bases[0].signed_system().expect("system").key();
    let first = system_blocks(&bases[0]);
    for (i, base) in bases.iter().enumerate() {
        // One key, the same entries, a quorum of signatures.
        let system = base.signed_system().expect("system");
        assert_eq!(system.key(), key);
        assert_ne!(key, base.signed_view(VIEW).expect("view").key());
        assert_eq!(system_blocks(base), first);
        assert!(system.signed_state().expect("state").signatures.len() >= 2);
        assert!(base.info().refused_signatures.is_empty());
        check_signed_entry(&peers.stores[i], base);
    }
    // More values after the signed entry: a linearizer started from the
    // decoded entry and fed only the nodes after it (and the old ones its
    // heads name) orders and indexes them as one fed the whole history.
    let entry = bases[0].signed_state().expect("read").expect("signed");
    for (i, base) in bases.iter_mut().enumerate() {
        append(base, i, 5..8);
    }
    drive(&mut bases, all_signed_at(24), "signed again at 24");
    // Offline, so store 0 holds no node its base has not read.
    drop(mesh);
    bases[0].update().expect("update");
    let store = &peers.stores[0];
    let whole = full(store, &bases[0]);
    let mut ff = Linearizer::from_frontier(&bases[0].info().indexers, &entry.frontier)
        .expect("from the entry");
    for key in bases[0].cores() {
        ff.add_writer(key);
    }
    for key in bases[0].cores() {
        let from = ff.pushed(&key) as usize;
        for node in nodes(store, &key).into_iter().skip(from) {
            ff.push(&key, node).expect("an honest node");
            for head in ff.missing() {
                let old = nodes(store, &head.writer)[head.length as usize - 1].clone();
                ff.provide(&head.writer, head.length, &old)
                    .expect("provide");
            }
        }
    }
    ff.update();
    let skip = entry.frontier.batches as usize;
    let order: Vec<_> = whole.order().cloned().collect();
    assert!(ff.order().count() > 0, "nodes after the entry");
    assert!(ff.order().cloned().eq(order[skip..].iter().cloned()));
    assert_eq!(skip + ff.indexed_len(), whole.indexed_len());
    assert_eq!(ff.frontier(), whole.frontier());
    // And the base's own order is that order.
    assert!(bases[0].order().cloned().eq(order.iter().cloned()));
    check_signed_entry(store, &bases[0]);
}

#[test]
fn two_of_three_indexers_sign_the_system_core_and_the_third_catches_up() {
    let (peers, mesh, mut bases) = three_signed_at_3();
    drive(&mut bases, all_signed_at(3), "the system core signed at 3");
    let before = bases[2].info().system;
    drop(mesh);
    let two = peers.mesh(&[0, 1]);
    append(&mut bases[0], 0, 1..5);
    append(&mut bases[1], 1, 1..5);
    drive(&mut bases[..2], all_signed_at(11), "two of three sign 11");
    for (i, base) in bases[..2].iter().enumerate() {
        let system = base.info().system;
        assert!(system.signed_length > before.signed_length, "{system:?}");
        let entry = check_signed_entry(&peers.stores[i], base);
        assert_eq!(entry.views[0].length, 11);
        // Signed by the two online indexers only.
        let signers = base
            .signed_system()
            .expect("system")
            .signed_state()
            .expect("state")
            .signatures
            .len();
        assert_eq!(signers, 2);
    }
    assert_eq!(bases[2].info().system, before);
    drop(two);
    let _all = peers.mesh(&[0, 1, 2]);
    drive(&mut bases, all_signed_at(11), "the third catches up");
    assert_eq!(system_blocks(&bases[2]), system_blocks(&bases[0]));
    check_signed_entry(&peers.stores[2], &bases[2]);
}

#[test]
fn one_update_many_updates_and_a_reopen_write_the_same_system_core() {
    let peers = Peers::new(3);
    let mesh = peers.mesh(&[0, 1, 2]);
    let mut bases = peers.bases(&[1, 2]);
    // Many small rounds: each base updates as the others' nodes trickle in.
    for round in 0..4 {
        for (i, base) in bases.iter_mut().enumerate() {
            append(base, i, round..round + 1);
            base.ack_until_settled(true).expect("ack");
        }
    }
    drive(&mut bases, all_signed_at(12), "signed at 12");
    let want = system_blocks(&bases[0]);
    assert!(want.len() > 1, "several entries: {}", want.len());
    for base in &bases[1..] {
        assert_eq!(system_blocks(base), want);
    }
    // A store that was offline throughout fetches the writer cores and
    // indexes the whole prefix in the one update of its open.
    let dir = tempfile::tempdir().expect("tempdir");
    let late = Store::open(dir.path()).expect("store");
    drop(mesh);
    let _fetch = Mesh::new(&[&peers.stores[0], &late], &peers.writers);
    for key in &peers.writers {
        let theirs = peers.stores[0].replica(key).expect("replica");
        let ours = late.replica(key).expect("replica");
        let length = theirs.info().expect("info").length;
        wait(
            || ours.info().expect("info").contiguous_length == length,
            "the writer cores",
        );
    }
    let key = bases[0].key();
    let reader = Base::join(&late, key, NAME, &[VIEW], Log).expect("join");
    assert_eq!(system_blocks(&reader), want, "one update, the same entries");
    assert_eq!(reader.info().system, bases[0].info().system);
    assert_eq!(
        reader.signed_state().expect("read"),
        bases[0].signed_state().expect("read")
    );
    // A reopened base reads its history again and appends nothing twice.
    let store = peers.stores[1].clone();
    drop(bases.remove(1));
    let reopened = Base::join(&store, key, NAME, &[VIEW], Log).expect("reopen");
    assert_eq!(system_blocks(&reopened), want);
    assert_eq!(reopened.info().system.signed_length, want.len() as u64);
}

#[test]
fn a_writer_known_only_through_a_batch_not_indexed_is_in_no_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    // A lone indexer: its second batch commits its first.
    let mut base = Base::create(&store, NAME, &[], &[VIEW], Log).expect("create");
    let x = CoreKey([9; 32]);
    base.append(&[b"v1"]).expect("append");
    base.append(&[format!("add:{x}").as_bytes()])
        .expect("append");
    let info = base.info();
    assert!(info.writers.contains(&x), "the add is applied");
    assert!(base.cores().contains(&x), "and its core is read");
    assert_eq!((info.indexed_batches, info.system.length), (1, 1));
    let system = base.signed_system().expect("system").clone();
    let entry = SystemEntry::decode(&system.get(0).expect("block")).expect("entry");
    assert!(entry.frontier.writers.iter().all(|w| w.key != x));
    assert!(entry.members.iter().all(|m| m.key != x));
    assert_eq!(entry.views[0].length, 1);
    // Once the add is indexed, the next entry names the writer: a member
    // with no indexed node.
    base.ack_until_settled(true).expect("ack");
    let length = base.info().system.length;
    assert!(length >= 2, "{length}");
    let entry = SystemEntry::decode(&system.get(length - 1).expect("block")).expect("entry");
    assert!(
        entry
            .members
            .iter()
            .any(|m| m.key == x && !m.indexer && !m.removed)
    );
    assert!(
        entry
            .frontier
            .writers
            .iter()
            .any(|w| w.key == x && w.length == 0)
    );
    // A lone indexer signs alone.
    assert_eq!(base.info().system.signed_length, length);
}
