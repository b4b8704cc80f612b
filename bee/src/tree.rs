//! The B-tree algorithms, pure: nodes come from a [`EntrySource`], a write
//! returns the levels of the block it appends. Nodes hold at most
//! [`MAX_KEYS`] keys (and so at most eight children) and, except the root,
//! at least [`MIN_KEYS`]: insertion splits full nodes on the way down,
//! deletion borrows from or merges with a sibling on the way down (the
//! textbook top-down algorithms), so the tree stays balanced under any mix
//! of puts and deletes.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::messages::{Entry, Level};

/// Minimum degree: nodes hold `MIN_KEYS..=MAX_KEYS` keys.
const DEGREE: usize = 4;
/// Most keys in a node.
pub const MAX_KEYS: usize = 2 * DEGREE - 1;
/// Fewest keys in a node other than the root.
pub const MIN_KEYS: usize = DEGREE - 1;

/// Deepest tree a read or write follows. Every node but the root has at
/// least `MIN_KEYS + 1` children, so a bee of 2^56 entries (past any length
/// a core accepts) is at most 29 levels deep; a deeper one is crafted.
pub const MAX_DEPTH: usize = 48;

/// Where decoded entries come from.
pub trait EntrySource {
    /// The entry in block `seq` (1 or more). [`Error::Missing`] when it is
    /// not stored locally.
    fn entry(&self, seq: u64) -> Result<Arc<Entry>>;
}

/// The root of the tree at `version` (the core's length then): the first
/// level of block `version - 1`, if there is a write (a block without
/// levels is the empty tree too; readers check).
pub fn root_of(version: u64) -> Option<NodeRef> {
    (version > 1).then(|| NodeRef {
        block: version - 1,
        level: 0,
    })
}

/// A pointer to a stored node: (block, position in its levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRef {
    /// The block.
    pub block: u64,
    /// The position among the block's levels.
    pub level: u32,
}

#[derive(Debug, Clone, Copy)]
enum Ptr {
    Stored(NodeRef),
    New(usize),
}

#[derive(Debug, Clone)]
struct Node {
    keys: Vec<u64>,
    children: Vec<Ptr>,
}

fn corrupt(block: u64, reason: &'static str) -> Error {
    Error::Corrupt { block, reason }
}

/// A walk went past [`MAX_DEPTH`] at `block`.
pub(crate) fn too_deep(block: u64) -> Error {
    corrupt(block, "the tree is deeper than 48 levels (crafted)")
}

/// Reads a stored node, checking its shape: an inner node has one more
/// child than keys, keys and children point at earlier blocks (so no walk
/// can loop), and no two children are the same node (or one node could be
/// walked 8^depth times).
pub fn load(src: &impl EntrySource, at: NodeRef) -> Result<(Vec<u64>, Vec<NodeRef>)> {
    let entry = src.entry(at.block)?;
    let level = entry
        .levels
        .get(at.level as usize)
        .ok_or(corrupt(at.block, "node position past the block's levels"))?;
    if level.child_blocks.len() != level.child_levels.len() {
        return Err(corrupt(
            at.block,
            "child blocks and positions differ in number",
        ));
    }
    if !level.child_blocks.is_empty() && level.child_blocks.len() != level.keys.len() + 1 {
        return Err(corrupt(
            at.block,
            "inner node without one more child than keys",
        ));
    }
    if level.keys.iter().any(|&k| k == 0 || k > at.block) {
        return Err(corrupt(at.block, "key pointer outside the earlier blocks"));
    }
    let children = level
        .child_blocks
        .iter()
        .zip(&level.child_levels)
        .map(|(&block, &level)| {
            if block == 0 || block > at.block || (block == at.block && level <= at.level) {
                Err(corrupt(at.block, "child pointer past the end"))
            } else {
                Ok(NodeRef { block, level })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    for (i, c) in children.iter().enumerate() {
        if children.get(i + 1..).is_some_and(|rest| rest.contains(c)) {
            return Err(corrupt(
                at.block,
                "two children of a node are the same node",
            ));
        }
    }
    Ok((level.keys.clone(), children))
}

/// The key and value an entry block holds; a key pointer must not point at a
/// deletion.
pub fn key_value(src: &impl EntrySource, seq: u64) -> Result<Arc<Entry>> {
    let entry = src.entry(seq)?;
    if entry.deleted {
        return Err(corrupt(seq, "key pointer to a deletion"));
    }
    Ok(entry)
}

/// Position of `key` among a node's keys: `Ok(i)` if keys[i] holds it, else
/// `Err(i)` with the child to descend into.
fn search(
    src: &impl EntrySource,
    keys: &[u64],
    key: &[u8],
    fresh: Option<(u64, &[u8])>,
) -> Result<std::result::Result<usize, usize>> {
    let (mut lo, mut hi) = (0, keys.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let seq = keys.get(mid).copied().unwrap_or_default();
        let ord = match fresh {
            Some((s, k)) if s == seq => k.cmp(key),
            _ => key_value(src, seq)?.key.as_slice().cmp(key),
        };
        match ord {
            Ordering::Equal => return Ok(Ok(mid)),
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
        }
    }
    Ok(Err(lo))
}

/// The block holding `key` in the tree rooted at `root`, if any.
pub fn get(src: &impl EntrySource, root: Option<NodeRef>, key: &[u8]) -> Result<Option<u64>> {
    let mut at = root;
    let mut depth = 0;
    while let Some(node) = at {
        depth += 1;
        if depth > MAX_DEPTH {
            return Err(too_deep(node.block));
        }
        let (keys, children) = load(src, node)?;
        match search(src, &keys, key, None)? {
            Ok(i) => return Ok(keys.get(i).copied()),
            Err(i) => at = children.get(i).copied(),
        }
    }
    Ok(None)
}

/// A write in progress: copies of the nodes it changes.
struct Write<'s, S> {
    src: &'s S,
    seq: u64,
    key: &'s [u8],
    arena: Vec<Node>,
}

impl<S: EntrySource> Write<'_, S> {
    fn load_new(&mut self, at: NodeRef) -> Result<usize> {
        // A write copies the path and at most two siblings per level: an
        // arena past that is a crafted tree, and bounding it bounds every
        // descent (and the recursion of a delete) below.
        if self.arena.len() >= 3 * MAX_DEPTH {
            return Err(too_deep(at.block));
        }
        let (keys, children) = load(self.src, at)?;
        self.arena.push(Node {
            keys,
            children: children.into_iter().map(Ptr::Stored).collect(),
        });
        Ok(self.arena.len() - 1)
    }

    /// Child `i` of arena node `n`, copied into the arena (once).
    fn child(&mut self, n: usize, i: usize) -> Result<usize> {
        let ptr = self
            .arena
            .get(n)
            .and_then(|node| node.children.get(i))
            .copied()
            .ok_or(Error::Corrupt {
                block: self.seq,
                reason: "child index out of step",
            })?;
        match ptr {
            Ptr::New(c) => Ok(c),
            Ptr::Stored(at) => {
                let c = self.load_new(at)?;
                if let Some(slot) = self
                    .arena
                    .get_mut(n)
                    .and_then(|node| node.children.get_mut(i))
                {
                    *slot = Ptr::New(c);
                }
                Ok(c)
            }
        }
    }

    // Arena indexes are made by this write only, so they are in range.
    #[allow(clippy::indexing_slicing)]
    fn node(&self, n: usize) -> &Node {
        &self.arena[n]
    }

    #[allow(clippy::indexing_slicing)]
    fn node_mut(&mut self, n: usize) -> &mut Node {
        &mut self.arena[n]
    }

    fn corrupt(&self) -> Error {
        Error::Corrupt {
            block: self.seq,
            reason: "tree nodes out of shape (leaves at different depths)",
        }
    }

    fn set_key(&mut self, n: usize, i: usize, seq: u64) -> Result<()> {
        let err = self.corrupt();
        *self.node_mut(n).keys.get_mut(i).ok_or(err)? = seq;
        Ok(())
    }

    fn search(&self, n: usize, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        search(
            self.src,
            &self.node(n).keys,
            key,
            Some((self.seq, self.key)),
        )
    }

    /// Splits the full child `i` of `n` around its median key.
    fn split_child(&mut self, n: usize, i: usize) -> Result<()> {
        let c = self.child(n, i)?;
        let (median, right) = {
            let child = self.node_mut(c);
            let right_keys = child.keys.split_off(DEGREE);
            let median = child.keys.pop().unwrap_or_default();
            let right_children = if child.children.is_empty() {
                Vec::new()
            } else {
                child.children.split_off(DEGREE)
            };
            (
                median,
                Node {
                    keys: right_keys,
                    children: right_children,
                },
            )
        };
        self.arena.push(right);
        let r = self.arena.len() - 1;
        let parent = self.node_mut(n);
        parent.keys.insert(i, median);
        parent.children.insert(i + 1, Ptr::New(r));
        Ok(())
    }

    /// The levels of the block: the arena nodes reachable from `root`,
    /// root first, children pointing into this block where they are new.
    fn finish(self, root: usize) -> Vec<Level> {
        let mut order = vec![root];
        let mut position: HashMap<usize, u32> = HashMap::from([(root, 0)]);
        let mut i = 0;
        while let Some(&n) = order.get(i) {
            for ptr in &self.node(n).children {
                if let Ptr::New(c) = ptr
                    && !position.contains_key(c)
                {
                    position.insert(*c, order.len() as u32);
                    order.push(*c);
                }
            }
            i += 1;
        }
        order
            .iter()
            .map(|&n| {
                let node = self.node(n);
                let (child_blocks, child_levels) = node
                    .children
                    .iter()
                    .map(|p| match p {
                        Ptr::Stored(at) => (at.block, at.level),
                        Ptr::New(c) => (self.seq, position.get(c).copied().unwrap_or_default()),
                    })
                    .unzip();
                Level {
                    keys: node.keys.clone(),
                    child_blocks,
                    child_levels,
                }
            })
            .collect()
    }
}

/// The levels of block `seq` that puts `key` (its entry is block `seq`)
/// into the tree rooted at `root`.
pub fn put(
    src: &impl EntrySource,
    root: Option<NodeRef>,
    seq: u64,
    key: &[u8],
) -> Result<Vec<Level>> {
    let mut w = Write {
        src,
        seq,
        key,
        arena: Vec::new(),
    };
    let Some(root) = root else {
        w.arena.push(Node {
            keys: vec![seq],
            children: Vec::new(),
        });
        return Ok(w.finish(0));
    };
    let mut top = w.load_new(root)?;
    // An existing key: point its slot at the new entry, nothing else moves.
    {
        let mut n = top;
        loop {
            match w.search(n, key)? {
                Ok(i) => {
                    w.set_key(n, i, seq)?;
                    return Ok(w.finish(top));
                }
                Err(i) if !w.node(n).children.is_empty() => n = w.child(n, i)?,
                Err(_) => break,
            }
        }
    }
    if w.node(top).keys.len() == MAX_KEYS {
        w.arena.push(Node {
            keys: Vec::new(),
            children: vec![Ptr::New(top)],
        });
        let new_top = w.arena.len() - 1;
        w.split_child(new_top, 0)?;
        top = new_top;
    }
    let mut n = top;
    loop {
        let i = match w.search(n, key)? {
            Ok(i) | Err(i) => i,
        };
        if w.node(n).children.is_empty() {
            w.node_mut(n).keys.insert(i, seq);
            return Ok(w.finish(top));
        }
        let c = w.child(n, i)?;
        let mut next = i;
        if w.node(c).keys.len() == MAX_KEYS {
            w.split_child(n, i)?;
            // The median moved up: go left or right of it.
            next = match w.search(n, key)? {
                Err(j) | Ok(j) => j,
            };
        }
        n = w.child(n, next)?;
    }
}

/// The levels of block `seq` that deletes `key` from the tree rooted at
/// `root`, or `None` when the key is not in it (nothing to write). An empty
/// tree after the delete is one empty root level.
pub fn del(
    src: &impl EntrySource,
    root: Option<NodeRef>,
    seq: u64,
    key: &[u8],
) -> Result<Option<Vec<Level>>> {
    if get(src, root, key)?.is_none() {
        return Ok(None);
    }
    let Some(root) = root else {
        return Ok(None);
    };
    let mut w = Write {
        src,
        seq,
        key,
        arena: Vec::new(),
    };
    let top = w.load_new(root)?;
    w.delete_from(top, key)?;
    // A root left without keys hands over to its only child.
    let mut top = top;
    while w.node(top).keys.is_empty() && !w.node(top).children.is_empty() {
        top = w.child(top, 0)?;
    }
    Ok(Some(w.finish(top)))
}

impl<S: EntrySource> Write<'_, S> {
    /// Deletes `key` from the subtree at arena node `n`, which holds more
    /// than the minimum of keys (or is the root).
    fn delete_from(&mut self, n: usize, key: &[u8]) -> Result<()> {
        let leaf = self.node(n).children.is_empty();
        match self.search(n, key)? {
            Ok(i) if leaf => {
                self.node_mut(n).keys.remove(i);
                Ok(())
            }
            Ok(i) => {
                let left = self.child(n, i)?;
                let right = self.child(n, i + 1)?;
                if self.node(left).keys.len() > MIN_KEYS {
                    let pred = self.extreme(left, true)?;
                    self.set_key(n, i, pred)?;
                    let pred_key = key_value(self.src, pred)?.key.clone();
                    self.delete_from(left, &pred_key)
                } else if self.node(right).keys.len() > MIN_KEYS {
                    let succ = self.extreme(right, false)?;
                    self.set_key(n, i, succ)?;
                    let succ_key = key_value(self.src, succ)?.key.clone();
                    self.delete_from(right, &succ_key)
                } else {
                    self.merge(n, i)?;
                    self.delete_from(left, key)
                }
            }
            Err(_) if leaf => Ok(()),
            Err(i) => {
                let c = self.child(n, i)?;
                let c = if self.node(c).keys.len() == MIN_KEYS {
                    self.fill(n, i)?
                } else {
                    c
                };
                self.delete_from(c, key)
            }
        }
    }

    /// The largest (`max`) or smallest key in the subtree at `n`.
    fn extreme(&mut self, n: usize, max: bool) -> Result<u64> {
        let mut at = n;
        loop {
            let node = self.node(at);
            if node.children.is_empty() {
                let k = if max {
                    node.keys.last()
                } else {
                    node.keys.first()
                };
                return k.copied().ok_or(Error::Corrupt {
                    block: self.seq,
                    reason: "empty node below the root",
                });
            }
            let i = if max { node.children.len() - 1 } else { 0 };
            at = self.child(at, i)?;
        }
    }

    /// Merges child `i + 1` of `n` and the key between them into child `i`.
    fn merge(&mut self, n: usize, i: usize) -> Result<()> {
        let left = self.child(n, i)?;
        let right = self.child(n, i + 1)?;
        if self.node(left).children.is_empty() != self.node(right).children.is_empty()
            || i >= self.node(n).keys.len()
        {
            return Err(self.corrupt());
        }
        let separator = self.node_mut(n).keys.remove(i);
        self.node_mut(n).children.remove(i + 1);
        let moved = std::mem::replace(
            self.node_mut(right),
            Node {
                keys: Vec::new(),
                children: Vec::new(),
            },
        );
        let l = self.node_mut(left);
        l.keys.push(separator);
        l.keys.extend(moved.keys);
        l.children.extend(moved.children);
        Ok(())
    }

    /// Child `i` of `n` holds the minimum: borrow a key from a sibling
    /// through the parent, or merge with one. Returns the arena node to
    /// descend into.
    fn fill(&mut self, n: usize, i: usize) -> Result<usize> {
        let count = self.node(n).children.len();
        if i > 0 {
            let left = self.child(n, i - 1)?;
            if self.node(left).keys.len() > MIN_KEYS {
                let c = self.child(n, i)?;
                let (k, child) = {
                    let l = self.node_mut(left);
                    (l.keys.pop().unwrap_or_default(), l.children.pop())
                };
                let err = self.corrupt();
                let slot = self.node_mut(n).keys.get_mut(i - 1).ok_or(err)?;
                let sep = std::mem::replace(slot, k);
                let cn = self.node_mut(c);
                cn.keys.insert(0, sep);
                if let Some(child) = child {
                    cn.children.insert(0, child);
                }
                return Ok(c);
            }
        }
        if i + 1 < count {
            let right = self.child(n, i + 1)?;
            if self.node(right).keys.len() > MIN_KEYS {
                let c = self.child(n, i)?;
                let (k, child) = {
                    let r = self.node_mut(right);
                    let k = r.keys.remove(0);
                    let child = if r.children.is_empty() {
                        None
                    } else {
                        Some(r.children.remove(0))
                    };
                    (k, child)
                };
                let err = self.corrupt();
                let slot = self.node_mut(n).keys.get_mut(i).ok_or(err)?;
                let sep = std::mem::replace(slot, k);
                let cn = self.node_mut(c);
                cn.keys.push(sep);
                if let Some(child) = child {
                    cn.children.push(child);
                }
                return Ok(c);
            }
            self.merge(n, i)?;
            return self.child(n, i);
        }
        self.merge(n, i - 1)?;
        self.child(n, i - 1)
    }
}
