//! Fast-forward on real stores over real TCP loopback: a new peer that
//! fetches the base's header, the signed views and the signed system core
//! adopts the quorum-signed state at open without applying the history,
//! then fetches only what its base says it needs (the nodes after the
//! frontier and the few below it that later heads name), reaches the same
//! view as the peers that applied everything, resumes from the adopted
//! state after a reopen, and once added as a writer writes nodes the full
//! peers accept. A base far behind keeps the view prefix it holds; a
//! signed state whose view hash its signed view does not match is refused
//! and the view rebuilt.

mod common;

use common::*;
use hyper_autobase::{Base, HOLD_BACK};
use hyper_core::Store;

const ROUNDS: u32 = 40;

/// Fetches what `base` says it needs from the fetcher's server and updates,
/// until a round needs nothing new; returns how many rounds fetched.
fn fetch_needed(fetcher: &Fetcher, base: &mut Base<Log>) -> usize {
    let mut done = std::collections::HashSet::new();
    let mut rounds = 0;
    loop {
        let needed: Vec<_> = base
            .needed()
            .expect("needed")
            .into_iter()
            .filter(|n| done.insert(*n))
            .collect();
        if needed.is_empty() {
            return rounds;
        }
        rounds += 1;
        for n in needed {
            fetcher.fetch(&n.core, n.start, n.end);
        }
        base.update().expect("update");
    }
}

fn stored(store: &Store, key: &hyper_core::CoreKey) -> (u64, u64) {
    let info = store.replica(key).expect("core").info().expect("info");
    (info.blocks_stored, info.length)
}

#[test]
fn a_new_peer_adopts_the_signed_state_and_fetches_only_what_follows_it() {
    let peers = Peers::new(4);
    let mesh = peers.mesh(&[0, 1, 2]);
    let mut bases = peers.bases_of(3, &[1, 2]);
    let key = bases[0].key();
    // Many rounds of all three writing: a long history of batches.
    for round in 0..ROUNDS {
        for (i, base) in bases.iter_mut().enumerate() {
            append(base, i, round..round + 1);
        }
        drive(
            &mut bases,
            |i| {
                i.views
                    .first()
                    .is_some_and(|v| v.length == 3 * (round as u64 + 1))
            },
            "a round reaches every peer",
        );
    }
    let total = 3 * ROUNDS as u64;
    drive(
        &mut bases,
        |i| settled_at(total)(i) && i.system.signed_length == i.system.length,
        "all signed",
    );
    // Store 0 takes no more nodes: what it holds is what it serves.
    // (A writer core whose last block did not arrive holds the tip back
    // for HOLD_BACK.)
    drop(mesh);
    std::thread::sleep(HOLD_BACK);
    bases[0].update().expect("update");
    let full = bases[0].info();
    let early = bases[0].signed_state().expect("state").expect("signed");
    assert!(early.frontier.batches > 100, "{:?}", early.frontier);

    // The new peer: the header, then the signed cores, nothing else.
    let fresh = &peers.stores[3];
    let fetcher = Fetcher::new(&peers.stores[0], fresh);
    fetcher.fetch(&key, 0, Some(1));
    let base = Base::join(fresh, key, NAME, &[VIEW], Log).expect("join");
    assert_eq!(base.info().fast_forwarded, 0, "nothing signed is here yet");
    for core in base.signed_cores() {
        fetcher.fetch(&core, 0, None);
    }
    drop(base);
    let mut base = Base::join(fresh, key, NAME, &[VIEW], Log).expect("reopen");
    // The newest entry it fetched: the server's newest signed one.
    let signed = base.signed_state().expect("state").expect("signed");
    assert_eq!(
        signed,
        bases[0].signed_state().expect("state").expect("signed")
    );
    assert!(signed.frontier.batches >= early.frontier.batches);
    assert_eq!(base.info().fast_forwarded, signed.frontier.batches);
    let adopted = signed.views[0].length;
    assert!(adopted > 0);
    assert_eq!(
        log(&base)[..adopted as usize],
        log(&bases[0])[..adopted as usize]
    );

    // What follows the frontier, and nothing of the history before it.
    let rounds = fetch_needed(&fetcher, &mut base);
    assert!(rounds >= 1);
    std::thread::sleep(HOLD_BACK);
    base.update().expect("update");
    let after = base.info();
    assert_eq!(log(&base), log(&bases[0]), "the same view as a full peer");
    assert_eq!(after.batches, full.batches);
    assert_eq!(after.views[0].indexed_length, full.views[0].indexed_length);
    for w in &peers.writers[..3] {
        let (blocks, length) = stored(fresh, w);
        assert!(
            blocks < length / 2,
            "writer {w}: {blocks} of {length} blocks fetched"
        );
    }

    // A reopen starts from the same signed state and resumes its views.
    drop(base);
    let mut base = Base::join(fresh, key, NAME, &[VIEW], Log).expect("reopen");
    std::thread::sleep(HOLD_BACK);
    base.update().expect("update");
    assert_eq!(base.info().fast_forwarded, signed.frontier.batches);
    // (Resumed from its undo log: all of it unless a writer still
    // downloading held the tip back at open.)
    assert!(base.info().resumed > 0);
    assert_eq!(base.info().batches, after.batches);
    assert_eq!(log(&base), log(&bases[0]));

    // Added as a writer, its nodes (heads at the frontier, causal facts
    // from it) are taken by the peers that hold the whole history.
    drop(fetcher);
    let _mesh = peers.mesh(&[0, 1, 2, 3]);
    let added = format!("add:{}", base.writer_key().expect("a writer"));
    bases[0].append(&[added.as_bytes()]).expect("add");
    bases.push(base);
    drive(
        &mut bases,
        |i| i.writers.len() == 4,
        "the new writer is added everywhere",
    );
    let n = bases.len() - 1;
    append(&mut bases[n], 3, 0..3);
    drive(&mut bases, settled_at(total + 3), "its values are final");
    let logs: Vec<_> = bases.iter().map(log).collect();
    assert!(logs.windows(2).all(|w| w[0] == w[1]));
}

/// A lone-indexer base in `peers` store 0 with `batches` values, each
/// its own batch, all final and signed.
fn signed_solo(peers: &Peers, batches: u32) -> Base<Log> {
    let mut base = Base::create(&peers.stores[0], NAME, &[], &[VIEW], Log).expect("create");
    grow(&mut base, 0..batches);
    base
}

/// Appends the values `values` one batch each and acks until signed.
fn grow(base: &mut Base<Log>, values: std::ops::Range<u32>) {
    for v in values {
        append(base, 0, v..v + 1);
    }
    base.ack_until_settled(true).expect("acks");
    let info = base.info();
    assert_eq!(
        info.views[0].signed_length, info.views[0].length,
        "{info:?}"
    );
    assert_eq!(info.system.signed_length, info.system.length, "{info:?}");
}

#[test]
fn a_base_far_behind_keeps_its_view_prefix_and_jumps_to_the_signed_state() {
    let peers = Peers::new(2);
    let mut full = signed_solo(&peers, 10);
    let key = full.key();
    let reader = &peers.stores[1];
    let fetcher = Fetcher::new(&peers.stores[0], reader);
    // The reader applies the first 10 values itself (nothing signed is
    // here yet, so it does not jump).
    fetcher.fetch(&key, 0, None);
    let base = Base::read(reader, key, &[VIEW], Log).expect("read");
    assert_eq!(base.info().fast_forwarded, 0);
    assert_eq!(log(&base), log(&full));
    let signed_cores = base.signed_cores();
    drop(base);
    // It falls FAST_FORWARD_AFTER batches behind the signed state.
    let far = hyper_autobase::FAST_FORWARD_AFTER as u32 + 20;
    grow(&mut full, 10..10 + far);
    for core in &signed_cores {
        fetcher.fetch(core, 0, None);
    }
    let mut base = Base::read(reader, key, &[VIEW], Log).expect("reopen");
    let state = base.signed_state().expect("state").expect("signed");
    assert_eq!(base.info().fast_forwarded, state.frontier.batches);
    assert!(state.frontier.batches >= 10 + u64::from(far), "{state:?}");
    let adopted = state.views[0].length as usize;
    assert_eq!(
        log(&base),
        log(&full)[..adopted],
        "the signed view, kept prefix included"
    );
    assert!(base.info().refused_signatures.is_empty());
    // What follows the state comes from the writer core.
    fetch_needed(&fetcher, &mut base);
    std::thread::sleep(HOLD_BACK);
    base.update().expect("update");
    assert_eq!(log(&base), log(&full));
    assert_eq!(base.info().batches, full.info().batches);
}

#[test]
fn a_signed_state_whose_view_hash_is_forged_is_refused_and_the_view_rebuilt() {
    let peers = Peers::new(3);
    let full = signed_solo(&peers, 30);
    let key = full.key();
    let system = full.signed_system().expect("system core");
    let length = system.info().expect("info").signed_length;
    // The indexer's key signs an entry naming a view hash its signed view
    // does not have (a quorum that lies, or a bug): a forger's copy of
    // the system core, its newest entry altered.
    let forger = &peers.stores[2];
    let keys = peers.stores[0]
        .named(NAME)
        .expect("writer")
        .export_key_pairs()
        .expect("keys");
    let manifest = system.manifest().expect("manifest").expect("signed core");
    let forged = forger
        .create_with_manifest(manifest, keys)
        .expect("forged core");
    assert_eq!(forged.key(), system.key());
    let mut entries: Vec<Vec<u8>> = (0..length).map(|i| system.get(i).expect("entry")).collect();
    let mut newest =
        hyper_autobase::SystemEntry::decode(entries.last().expect("one")).expect("decode");
    newest.views[0].tree_hash = [7; 32];
    *entries.last_mut().expect("one") = newest.encode();
    forged
        .append_batch(&entries)
        .expect("signed forged entries");

    // The victim has the writer core and the real signed view from the
    // indexer, the system core from the forger.
    let victim = &peers.stores[1];
    let honest = Fetcher::new(&peers.stores[0], victim);
    honest.fetch(&key, 0, None);
    honest.fetch(&full.signed_view(VIEW).expect("signed view").key(), 0, None);
    Fetcher::new(forger, victim).fetch(&forged.key(), 0, None);
    let base = Base::read(victim, key, &[VIEW], Log).expect("read");
    let info = base.info();
    assert_eq!(info.fast_forwarded, 0, "the forged state is not adopted");
    assert!(
        info.refused_signatures
            .iter()
            .any(|r| r.contains("not adopted")
                && r.contains(blake3::Hash::from([7; 32]).to_hex().as_str())),
        "{:?}",
        info.refused_signatures
    );
    // The view is rebuilt from the writer core: the same as the indexer's.
    assert_eq!(log(&base), log(&full));
    assert_eq!(info.batches, full.info().batches);
}
