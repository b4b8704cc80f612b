//! Hostile seeders against a real `hyper-cli` reader process (issue 17,
//! the store-integrity cases): a TCP peer that speaks Noise and the wire's
//! messages (`wire/tests/common/hostile.rs`, shared with the library-level
//! tests) answers `clone` and `bee ls` with lies built as the core's own
//! tests build them. Each case asserts the limit that holds (the command
//! ends in bounded time with an error naming the problem) and that the
//! reader's store was not damaged (an honest seeder serves it afterwards,
//! the blocks it held are kept).

mod common;
#[path = "../../bee/tests/common/crafted.rs"]
mod crafted;
#[allow(dead_code)]
#[path = "common/victim.rs"]
mod victim;
#[path = "../../wire/tests/common/mod.rs"]
mod wire_common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_core::{
    Core, Hash, KeyPair, MANIFEST_VERSION, Manifest, Node, NodeRequest, Proof, ProofRequest,
    Signature, SignerSignature, Store, UpgradeProof, flat,
};

use victim::{cli_within, clone_json, failed};
use wire_common::hostile::{altering_server, lying_server, lying_server_of};

/// How long a reader may take to give up on a liar: its `--retry-for`
/// (4 s) plus the time to start, connect and reconnect, with room for a
/// loaded machine.
const GIVE_UP: Duration = Duration::from_secs(30);

/// `clone KEY --connect ADDR --retry-for 4` into `store`, which must fail
/// within [`GIVE_UP`], giving up (nothing it can store came for the retry
/// time): its stderr.
fn clone_refused(store: &std::path::Path, key: &str, addr: &str) -> String {
    let (out, took) = cli_within(
        store,
        &["clone", key, "--connect", addr, "--retry-for", "4"],
        GIVE_UP,
    );
    let stderr = failed(&out);
    eprintln!("clone from the liar ended after {took:?}: {stderr}");
    // The last line says why it gave up (every connection failed, the
    // core is incomplete, or, on a loaded machine, nothing came in time)
    // and names the core.
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("hyper-cli: ") && last.contains(&format!("core {key}")),
        "the last line names the core: {stderr}"
    );
    stderr
}

/// A clone of `key` into `reader` from the liar at `liar`, on a blocking
/// thread: it must be refused (see [`clone_refused`]) after the liar
/// answered at least one request (`answered`), with `reason` in its
/// stderr; the stderr.
async fn liar_refused(
    reader: &std::path::Path,
    key: &str,
    liar: std::net::SocketAddr,
    answered: &AtomicU64,
    reason: &str,
) -> String {
    let (r, k, l) = (reader.to_path_buf(), key.to_string(), liar.to_string());
    let stderr = tokio::task::spawn_blocking(move || clone_refused(&r, &k, &l))
        .await
        .expect("clone");
    assert!(
        answered.load(Ordering::SeqCst) > 0,
        "the liar was never asked"
    );
    assert!(stderr.contains(reason), "{reason:?} not said: {stderr}");
    stderr
}

/// After a liar: a clone of `key` into the same `reader` store from an
/// honest seeder of `store` succeeds (nothing the liar sent was kept to
/// fail the honest proofs); its JSON line.
async fn honest_clone_after(
    reader: &std::path::Path,
    store: &Store,
    key: &str,
) -> serde_json::Value {
    let (_serving, honest) = wire_common::serve(store).await;
    let (r, k, h) = (reader.to_path_buf(), key.to_string(), honest.to_string());
    tokio::task::spawn_blocking(move || clone_json(&r, &k, &h))
        .await
        .expect("clone")
}

/// Moves one byte of size from the proven node of `proof`'s hash part to
/// its first sibling: the sum their parent commits is unchanged, the split
/// is forged. Whether there was a sibling to forge.
fn forge_split(proof: &mut Proof) -> bool {
    let Some(hash) = proof.hash.as_mut() else {
        return false;
    };
    let Some(sibling) = hash.nodes.first_mut() else {
        return false;
    };
    if hash.node.size == 0 {
        return false;
    }
    hash.node.size -= 1;
    sibling.size += 1;
    true
}

/// A genuine proof of `asked` from `core`, with an unrequested hash part
/// (leaf 2 and its sibling) whose two sizes are split another way.
fn with_forged_sizes(core: &Core, asked: &ProofRequest) -> Proof {
    let mut asked = asked.clone();
    asked.hash = Some(NodeRequest { index: 2, nodes: 1 });
    let mut proof = core.proof(&asked).expect("proof");
    assert!(forge_split(&mut proof), "the hash part has a sibling");
    proof
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_sibling_sizes_do_not_poison_a_clone() {
    let (_wd, ws, wc) = wire_common::writer(40);
    let key = wc.key().to_string();
    let (liar, answered) = lying_server_of(wc, |core, asked| {
        Some(if asked.block.is_some() {
            with_forged_sizes(core, asked)
        } else {
            core.proof(asked).expect("proof")
        })
    })
    .await;
    let reader = tempfile::tempdir().expect("tempdir");
    liar_refused(
        reader.path(),
        &key,
        liar,
        &answered,
        "carries parts it did not ask for",
    )
    .await;
    let json = honest_clone_after(reader.path(), &ws, &key).await;
    assert_eq!(
        (json["blocks"].as_u64(), json["length"].as_u64()),
        (Some(40), Some(40)),
        "{json}"
    );
}

/// A writer that signs whatever tree it likes: an upgrade to `length` with
/// made-up roots, validly signed (as `core/tests/huge_length.rs` builds
/// it).
fn signed_upgrade(pair: &KeyPair, manifest: &Manifest, length: u64) -> Proof {
    let roots: Vec<Node> = flat::roots(length)
        .into_iter()
        .map(|index| Node {
            index,
            size: 1,
            hash: Hash([7; 32]),
        })
        .collect();
    let message = hyper_core::signable_message(&manifest.key(), &roots, length, 0);
    Proof {
        fork: 0,
        manifest: Some(manifest.clone()),
        block: None,
        hash: None,
        seek: None,
        upgrade: Some(UpgradeProof {
            start: 0,
            length,
            signatures: manifest.sign(&message, std::slice::from_ref(pair)),
            roots,
            nodes: Vec::new(),
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_length_near_2_pow_62_or_past_2_pow_63_ends_a_clone_in_time() {
    let pair = KeyPair::from_seed([77; 32]);
    let manifest = Manifest::single(pair.public_key());
    let key = manifest.key().to_string();
    for length in [(1u64 << 62) + 3, (1 << 63) + 1] {
        let (p, m) = (pair.clone(), manifest.clone());
        let (liar, answered) = lying_server(manifest.key(), 0, length, move |asked| {
            asked.upgrade.map(|_| signed_upgrade(&p, &m, length))
        })
        .await;
        let reader = tempfile::tempdir().expect("tempdir");
        liar_refused(
            reader.path(),
            &key,
            liar,
            &answered,
            "upgrade length is not below 2^56",
        )
        .await;
    }
    // Just below the cap (2^56 - 1) the signed length is accepted; the
    // liar then sends no block: the clone, whose scans cost what is
    // stored and not the length, ends as incomplete within its retry time.
    let length = hyper_core::MAX_LENGTH - 1;
    let (p, m) = (pair.clone(), manifest.clone());
    let (liar, answered) = lying_server(manifest.key(), 0, length, move |asked| {
        asked.upgrade.map(|_| signed_upgrade(&p, &m, length))
    })
    .await;
    let reader = tempfile::tempdir().expect("tempdir");
    liar_refused(
        reader.path(),
        &key,
        liar,
        &answered,
        &format!("is incomplete: 0 of {length} blocks stored"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_padded_with_100_000_signatures_is_refused_fast() {
    let (_wd, ws, wc) = wire_common::writer(20);
    let key = wc.key().to_string();
    let (liar, answered) = lying_server_of(wc, |core, asked| {
        let mut proof = core.proof(asked).expect("proof");
        if let Some(upgrade) = proof.upgrade.as_mut() {
            let good = upgrade.signatures[0];
            upgrade.signatures = (0..100_000u32)
                .map(|i| SignerSignature {
                    signer: (i % 256) as u8,
                    signature: Signature([(i % 251) as u8; 64]),
                })
                .collect();
            upgrade.signatures.push(good);
        }
        Some(proof)
    })
    .await;
    let reader = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    liar_refused(
        reader.path(),
        &key,
        liar,
        &answered,
        "100001 signatures for 1 signers",
    )
    .await;
    let took = started.elapsed();
    // Each padded upgrade cost 3.8 s of checks before; now it is refused
    // before any is checked, so the reader asks again and again within
    // its 4 s of retrying.
    let asked = answered.load(Ordering::SeqCst);
    assert!(
        took < Duration::from_secs(20),
        "{took:?} for {asked} upgrades"
    );
    let json = honest_clone_after(reader.path(), &ws, &key).await;
    assert_eq!(json["blocks"].as_u64(), Some(20), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_listing_one_key_twice_is_refused() {
    // One key listed twice with a quorum of two: one signature counted
    // twice would pass (as `core/tests/signatures.rs` builds it).
    let pair = KeyPair::from_seed([5; 32]);
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        signers: vec![pair.public_key(), pair.public_key()],
        quorum: 2,
        prologue: None,
    };
    let key = manifest.key();
    let roots = vec![Node::leaf(0, b"x")];
    let signature = pair.sign(&hyper_core::signable_message(&key, &roots, 1, 0));
    let proof = Proof {
        fork: 0,
        manifest: Some(manifest.clone()),
        block: None,
        hash: None,
        seek: None,
        upgrade: Some(UpgradeProof {
            start: 0,
            length: 1,
            roots,
            nodes: Vec::new(),
            signatures: (0..2)
                .map(|signer| SignerSignature { signer, signature })
                .collect(),
        }),
    };
    let (liar, answered) =
        lying_server(key, 0, 1, move |asked| asked.upgrade.map(|_| proof.clone())).await;
    let reader = tempfile::tempdir().expect("tempdir");
    liar_refused(
        reader.path(),
        &key.to_string(),
        liar,
        &answered,
        "malformed proof: manifest",
    )
    .await;
}

/// `bee ls KEY --connect` of a crafted bee served by a real `seed`
/// process must fail within 60 s with an error naming `reason`.
fn bee_ls_refused(blocks: Vec<Vec<u8>>, reason: &str) {
    let (dir, store, core) = crafted::crafted(blocks);
    let key = core.key().to_string();
    drop((core, store));
    let seeder = common::seed(dir.path(), &["--listen", "127.0.0.1:0"]);
    let reader = tempfile::tempdir().expect("tempdir");
    let (out, took) = cli_within(
        reader.path(),
        &["bee", "ls", &key, "--connect", &seeder.addr],
        Duration::from_secs(60),
    );
    let stderr = failed(&out);
    assert!(stderr.contains(reason), "{stderr}");
    assert!(
        !stderr.contains("overflow"),
        "the reader's stack overflowed: {stderr}"
    );
    eprintln!("bee ls ended after {took:?}: {stderr}");
}

#[test]
fn a_200000_level_bee_ends_bee_ls_with_an_error() {
    bee_ls_refused(crafted::deep_chain(200_000), "deeper than 48 levels");
}

#[test]
fn a_bee_whose_children_repeat_one_node_ends_bee_ls_with_an_error() {
    bee_ls_refused(
        crafted::repeated_children(30),
        "children of a node are the same node",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_at_a_power_of_two_length_keeps_the_matching_prefix() {
    let writer = tempfile::tempdir().expect("tempdir");
    let key = common::writer_of(writer.path(), 8);
    let reader = tempfile::tempdir().expect("tempdir");
    {
        let seeder = common::seed(writer.path(), &["--listen", "127.0.0.1:0"]);
        let json = clone_json(reader.path(), &key, &seeder.addr);
        assert_eq!(json["blocks"].as_u64(), Some(8), "{json}");
    }
    // The writer rewrites block 7 of 8: the tree's single root differs, so
    // keeping whole matching roots would discard the replica.
    let store = Store::open(writer.path()).expect("store");
    let core = store.core(&key.parse().expect("key")).expect("core");
    core.truncate(7).expect("truncate");
    core.append_batch(&[b"line seven, again\n".as_slice()])
        .expect("append");
    // A seeder of the new history that serves block 7 and nothing before
    // it: the clone completes only if blocks 0-6 were kept.
    let seeder = altering_server(core.clone(), |asked| {
        asked.block.is_none_or(|b| b.index == 7)
    })
    .await;
    let json = clone_json(reader.path(), &key, &seeder.to_string());
    assert_eq!(
        (
            json["fork"].as_u64(),
            json["length"].as_u64(),
            json["blocks"].as_u64()
        ),
        (Some(1), Some(8), Some(8)),
        "{json}"
    );
    let (out, _) = cli_within(
        reader.path(),
        &["core", "get", &key, "7"],
        Duration::from_secs(20),
    );
    assert_eq!(common::ok(out), "line seven, again\n");
}

/// A store holding a core of `blocks` under the fixed key pair every
/// history of the equivocating writer shares (as
/// `wire/tests/equivocation.rs` builds it); its key.
fn equivocating_history(dir: &std::path::Path, blocks: &[&[u8]]) -> String {
    let store = Store::open(dir).expect("store");
    let pair = KeyPair::from_seed([33; 32]);
    let core = store
        .create_with_manifest(Manifest::single(pair.public_key()), vec![pair])
        .expect("writer");
    core.append_batch(blocks).expect("append");
    core.key().to_string()
}

#[test]
fn an_equivocating_writer_is_reported_and_the_evidence_kept() {
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let key = equivocating_history(a.path(), &[b"0", b"1", b"2", b"3"]);
    assert_eq!(
        equivocating_history(b.path(), &[b"0", b"one", b"2", b"3", b"4", b"5"]),
        key
    );
    let reader = tempfile::tempdir().expect("tempdir");
    let seed_a = common::seed(a.path(), &["--listen", "127.0.0.1:0"]);
    let json = clone_json(reader.path(), &key, &seed_a.addr);
    assert_eq!(json["length"].as_u64(), Some(4), "{json}");
    drop(seed_a);
    let seed_b = common::seed(b.path(), &["--listen", "127.0.0.1:0"]);
    let (out, took) = cli_within(
        reader.path(),
        &["clone", &key, "--connect", &seed_b.addr, "--retry-for", "2"],
        GIVE_UP,
    );
    let stderr = failed(&out);
    eprintln!("the clone from B ended after {took:?}: {stderr}");
    assert!(
        stderr.contains("signed two conflicting histories"),
        "{stderr}"
    );
    assert!(stderr.contains(&key), "the line names the key: {stderr}");
    // The reader keeps its own history, and both signed states.
    let store = Store::open(reader.path()).expect("store");
    let core = store.core(&key.parse().expect("key")).expect("core");
    assert_eq!(core.info().expect("info").length, 4);
    assert_eq!(core.get(1).expect("block"), b"1");
    let evidence = core.equivocation().expect("read").expect("evidence kept");
    assert_eq!(evidence.remote.length, 6);
    assert_eq!(evidence.local.length, 4);
}
