//! Bees crafted by a hostile writer: raw blocks appended to a core, as
//! no honest bee writes them. Shared by `bee/tests/hostile.rs` and the
//! hostile-reader tests of hyper-cli (`cli/tests/hostile_reader.rs`), which
//! include this file by `#[path]`.

use hyper_bee::messages::{Entry, Header, Level};
use hyper_core::{Core, Store};
use prost::Message as _;

/// The encoded bee header.
pub fn header() -> Vec<u8> {
    Header {
        protocol: "hyper-bee".into(),
        version: 1,
    }
    .encode_to_vec()
}

/// Entry `seq` (key `kSEQ`, value `v`) with these tree levels.
pub fn entry(seq: u64, levels: Vec<Level>) -> Vec<u8> {
    Entry {
        key: format!("k{seq:07}").into_bytes(),
        value: b"v".to_vec(),
        deleted: false,
        levels,
    }
    .encode_to_vec()
}

/// A tree level holding the keys of these seqs and these children
/// (block, level).
pub fn node(keys: Vec<u64>, children: &[(u64, u32)]) -> Level {
    Level {
        keys,
        child_blocks: children.iter().map(|c| c.0).collect(),
        child_levels: children.iter().map(|c| c.1).collect(),
    }
}

/// A core holding the header and `blocks`, in a store kept by the caller.
pub fn crafted(blocks: Vec<Vec<u8>>) -> (tempfile::TempDir, Store, Core) {
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

/// Entries 1..=`levels`: each block's root has block `s - 1`'s root as
/// its first child, a chain as deep as the core is long (keys ascend, so
/// only the depth is wrong).
pub fn deep_chain(levels: u64) -> Vec<Vec<u8>> {
    let mut blocks = vec![entry(1, vec![node(vec![1], &[])])];
    for s in 2..=levels {
        blocks.push(entry(
            s,
            vec![node(vec![s], &[(s - 1, 0), (s, 1)]), node(vec![s], &[])],
        ));
    }
    blocks
}

/// Entries 1..=`depth`: each block's root has 7 keys and 8 children that
/// are all block `s - 1`'s root (a walk following them visits 8^depth
/// nodes).
pub fn repeated_children(depth: u64) -> Vec<Vec<u8>> {
    let mut blocks = vec![entry(1, vec![node(vec![1], &[])])];
    for s in 2..=depth {
        blocks.push(entry(s, vec![node(vec![s; 7], &[(s - 1, 0); 8])]));
    }
    blocks
}
