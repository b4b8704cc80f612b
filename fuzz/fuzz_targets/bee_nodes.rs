//! The bee's B-tree over decoded entry blocks, honest and crafted.
//!
//! The input is a script: first up to 255 puts and deletes of small keys
//! (the bee's own `put`/`del` algorithms write the blocks, as a commit
//! does); then the rest of the input overwrites bytes of one written block
//! (as a hostile writer or a damaged disk would). Properties: after the
//! honest phase every key reads back as a `BTreeMap` model says, and the
//! tree keeps its shape (non-root nodes hold `MIN_KEYS..=MAX_KEYS` keys,
//! leaves all at one depth, keys in order); after the damage, reads,
//! puts and deletes return a value or a typed error, never panic or loop.
#![no_main]

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper_bee::fuzzing::{EntrySource, NodeRef, del, get, key_value, load, put};
use hyper_bee::messages::Entry;
use hyper_bee::{Error, MAX_DEPTH, MAX_KEYS, MIN_KEYS};
use hyper_fuzz::Script;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

/// Entry blocks 1.. (block 0 is the header), as encoded on the core.
struct Blocks(Vec<Vec<u8>>);

impl EntrySource for Blocks {
    fn entry(&self, seq: u64) -> hyper_bee::Result<Arc<Entry>> {
        let bytes = usize::try_from(seq)
            .ok()
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| self.0.get(i))
            .ok_or(Error::Missing(seq))?;
        Entry::decode(bytes.as_slice())
            .map(Arc::new)
            .map_err(|_| Error::Corrupt {
                block: seq,
                reason: "entry does not decode",
            })
    }
}

impl Blocks {
    /// The root at the current length: level 0 of the last block, if it has
    /// levels.
    fn root(&self) -> Option<NodeRef> {
        let block = self.0.len() as u64;
        let entry = self.entry(block).ok()?;
        (!entry.levels.is_empty()).then_some(NodeRef { block, level: 0 })
    }

    fn append(&mut self, entry: Entry) {
        self.0.push(entry.encode_to_vec());
    }
}

fuzz_target!(|data: &[u8]| {
    let mut script = Script::new(data);
    let ops = script.u8().unwrap_or(0);
    let mut blocks = Blocks(Vec::new());
    let mut model = BTreeMap::new();
    for _ in 0..ops {
        let (Some(op), Some(value)) = (script.u8(), script.u8()) else {
            break;
        };
        let key = vec![b'k', op % 64];
        let seq = blocks.0.len() as u64 + 1;
        let root = blocks.root();
        if op >= 160 {
            let levels = del(&blocks, root, seq, &key).expect("an honest delete");
            assert_eq!(
                levels.is_some(),
                model.remove(&key).is_some(),
                "delete of {key:?}"
            );
            if let Some(levels) = levels {
                blocks.append(Entry {
                    key,
                    value: Vec::new(),
                    deleted: true,
                    levels,
                });
            }
        } else {
            let levels = put(&blocks, root, seq, &key).expect("an honest put");
            model.insert(key.clone(), vec![value]);
            blocks.append(Entry {
                key,
                value: vec![value],
                deleted: false,
                levels,
            });
        }
    }
    check_honest(&blocks, &model);

    // Damage: overwrite bytes of one block with the rest of the input.
    let (Some(at), Some(offset)) = (script.u8(), script.u8()) else {
        return;
    };
    let damage = script.rest();
    if blocks.0.is_empty() {
        blocks.0.push(damage.to_vec());
    } else {
        let i = usize::from(at) % blocks.0.len();
        let block = &mut blocks.0[i];
        let start = usize::from(offset).min(block.len());
        block.truncate(start);
        block.extend_from_slice(damage);
    }
    let seq = blocks.0.len() as u64 + 1;
    let root = blocks.root();
    for k in 0..64u8 {
        let key = [b'k', k];
        if let Ok(Some(found)) = get(&blocks, root, &key) {
            let entry = key_value(&blocks, found).expect("a found key's entry reads");
            assert_eq!(entry.key, key);
        }
    }
    let _ = put(&blocks, root, seq, b"kz");
    let _ = del(&blocks, root, seq, b"k\x05");
    let _ = walk(&blocks, root, 0, &mut Vec::new(), &mut 0);
});

/// Every key reads back as the model says, and the tree has the B-tree
/// shape.
fn check_honest(blocks: &Blocks, model: &BTreeMap<Vec<u8>, Vec<u8>>) {
    let root = blocks.root();
    for k in 0..64u8 {
        let key = vec![b'k', k];
        let found = get(blocks, root, &key).expect("an honest read");
        let value = found.map(|seq| key_value(blocks, seq).expect("entry").value.clone());
        assert_eq!(value.as_ref(), model.get(&key), "read of {key:?}");
    }
    let mut keys = Vec::new();
    let mut leaf_depth = 0;
    walk(blocks, root, 0, &mut keys, &mut leaf_depth).expect("an honest walk");
    let expected: Vec<Vec<u8>> = model.keys().cloned().collect();
    assert_eq!(keys, expected, "in-order keys");
}

/// In-order walk collecting keys; checks node sizes and that every leaf is
/// at the same depth (`leaf_depth`, 0 until the first leaf).
fn walk(
    blocks: &Blocks,
    at: Option<NodeRef>,
    depth: usize,
    keys: &mut Vec<Vec<u8>>,
    leaf_depth: &mut usize,
) -> hyper_bee::Result<()> {
    let Some(node) = at else {
        return Ok(());
    };
    if depth > MAX_DEPTH || keys.len() > 10_000 {
        return Err(Error::Corrupt {
            block: node.block,
            reason: "too deep",
        });
    }
    let (node_keys, children) = load(blocks, node)?;
    if node_keys.len() > MAX_KEYS || (depth > 0 && node_keys.len() < MIN_KEYS) {
        return Err(Error::Corrupt {
            block: node.block,
            reason: "node size",
        });
    }
    if children.is_empty() {
        if *leaf_depth == 0 {
            *leaf_depth = depth + 1;
        } else if *leaf_depth != depth + 1 {
            return Err(Error::Corrupt {
                block: node.block,
                reason: "leaves at two depths",
            });
        }
    }
    for (i, &seq) in node_keys.iter().enumerate() {
        walk(
            blocks,
            children.get(i).copied(),
            depth + 1,
            keys,
            leaf_depth,
        )?;
        keys.push(key_value(blocks, seq)?.key.clone());
    }
    walk(
        blocks,
        children.last().copied().filter(|_| !children.is_empty()),
        depth + 1,
        keys,
        leaf_depth,
    )
}
