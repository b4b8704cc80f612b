//! Reads as resumable state machines: a [`Walk`] takes one step at a time
//! and, when a block is not stored locally, fails that step with
//! [`Error::Missing`] and changes nothing, so the same step can run again
//! once the block is there. [`Iter`] runs a walk on local blocks; the
//! stream of [`crate::stream`] fetches what a step misses (and what the
//! walk will want next) and runs it again.
//!
//! Walks are iterative (an explicit stack, never deeper than
//! [`MAX_DEPTH`]) and bounded: a range walk checks that every node's keys
//! are strictly ordered and inside its parent's separators, and visits at
//! most as many nodes as the version has blocks, so a crafted tree is an
//! error, never a stack overflow or an exponential walk.

use std::sync::Arc;

use crate::bee::{Bee, Change, Item, RangeOptions, above_upper, below_lower};
use crate::error::{Error, Result};
use crate::messages::Entry;
use crate::tree::{self, EntrySource, MAX_DEPTH, NodeRef};

/// A read that goes one result at a time.
pub(crate) trait Walk: Send {
    /// What it yields.
    type Item;
    /// The next result, `None` at the end. [`Error::Missing`] leaves the
    /// walk as it was: run the step again once the block is stored.
    fn step(&mut self, bee: &Bee) -> Result<Option<Self::Item>>;
    /// Blocks this walk will read soon, nearest first (at most `max`):
    /// what a stream fetches ahead. Reads only local blocks.
    fn upcoming(&self, bee: &Bee, max: usize, out: &mut Vec<u64>);
    /// The contiguous run of blocks the walk has still to read, if it
    /// reads that way (history), and whether from its end backwards: a
    /// stream downloads it chunk by chunk ahead of the walk.
    fn window(&self) -> Option<(std::ops::Range<u64>, bool)> {
        None
    }
    /// Every block a large run of this walk may read (a range without a
    /// limit: every write), for a stream to download in bulk once the read
    /// has proved large, or at once if the flag says it reads them all (a
    /// range without bounds).
    fn bulk(&self) -> Option<(std::ops::Range<u64>, bool)> {
        None
    }
}

/// The results of a read, from local blocks: each [`Iterator::next`] runs
/// the walk until its next result. On a sparse replica a block that is not
/// stored ends the iteration with [`Error::Missing`] (use the bee's
/// `*_stream` reads to fetch). After an error it yields nothing more.
pub struct Iter<T> {
    bee: Bee,
    walk: Box<dyn Walk<Item = T>>,
    done: bool,
}

impl<T> Iter<T> {
    pub(crate) fn new(bee: Bee, walk: Box<dyn Walk<Item = T>>) -> Iter<T> {
        Iter {
            bee,
            walk,
            done: false,
        }
    }
}

impl<T> Iterator for Iter<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.done {
            return None;
        }
        match self.walk.step(&self.bee) {
            Ok(Some(item)) => Some(Ok(item)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn corrupt(block: u64, reason: &'static str) -> Error {
    Error::Corrupt { block, reason }
}

/// One node on a range walk's stack, its key entries loaded.
struct Frame {
    block: u64,
    keys: Vec<(u64, Arc<Entry>)>,
    children: Vec<NodeRef>,
    /// Keys of this subtree lie strictly between these (the parent's
    /// separators; `None`: open).
    lower: Option<Arc<Entry>>,
    upper: Option<Arc<Entry>>,
    /// The next token in walk order.
    at: usize,
}

/// A token of a node: child i, or key i.
#[derive(Clone, Copy)]
enum Token {
    Child(usize),
    Key(usize),
}

impl Frame {
    fn tokens(&self) -> usize {
        if self.children.is_empty() {
            self.keys.len()
        } else {
            2 * self.keys.len() + 1
        }
    }

    /// The `i`th token in walk order. Forward: child 0, key 0, child 1,
    /// ..., child n (a leaf: its keys); reversed: the same backwards.
    fn token(&self, i: usize, reverse: bool) -> Option<Token> {
        let n = self.tokens();
        if i >= n {
            return None;
        }
        let j = if reverse { n - 1 - i } else { i };
        Some(if self.children.is_empty() {
            Token::Key(j)
        } else if j.is_multiple_of(2) {
            Token::Child(j / 2)
        } else {
            Token::Key(j / 2)
        })
    }

    /// Whether child `c` may hold keys inside the range.
    fn child_in_range(&self, c: usize, options: &RangeOptions) -> bool {
        let after_low = self
            .keys
            .get(c)
            .is_none_or(|(_, e)| !below_lower(options, &e.key));
        let before_high = c == 0
            || self
                .keys
                .get(c - 1)
                .is_none_or(|(_, e)| !above_upper(options, &e.key));
        after_low && before_high
    }
}

/// An in-order walk over a key range (see [`Bee::range_iter`]).
pub(crate) struct RangeWalk {
    options: RangeOptions,
    prefix: usize,
    /// The root, until it is loaded.
    root: Option<NodeRef>,
    stack: Vec<Frame>,
    left: usize,
    visits: u64,
    max_visits: u64,
    done: bool,
}

impl RangeWalk {
    /// A walk of the tree at `root` (of a bee of `version` blocks) over
    /// `options` in stored keys, stripping `prefix` bytes from each key.
    pub fn new(root: Option<NodeRef>, options: RangeOptions, prefix: usize, version: u64) -> Self {
        let left = options.limit.unwrap_or(usize::MAX);
        RangeWalk {
            options,
            prefix,
            root,
            stack: Vec::new(),
            left,
            visits: 0,
            max_visits: version,
            done: left == 0,
        }
    }

    /// Loads node `at` with its keys and checks them: strictly ordered,
    /// inside the separators, at least one below the root.
    fn load(
        &self,
        bee: &Bee,
        at: NodeRef,
        lower: Option<Arc<Entry>>,
        upper: Option<Arc<Entry>>,
        root: bool,
    ) -> Result<Frame> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(tree::too_deep(at.block));
        }
        // A tree of a version's blocks has fewer nodes than blocks.
        if self.visits >= self.max_visits {
            return Err(corrupt(
                at.block,
                "a read visits more nodes than the version has blocks (crafted)",
            ));
        }
        let (keys, children) = tree::load(bee, at)?;
        if !root && keys.is_empty() {
            return Err(corrupt(at.block, "empty node below the root"));
        }
        // The keys are read next: in one transaction of the core, not one
        // each.
        bee.prefetch(&keys);
        let keys = keys
            .into_iter()
            .map(|seq| tree::key_value(bee, seq).map(|e| (seq, e)))
            .collect::<Result<Vec<_>>>()?;
        let mut prev = lower.as_deref().map(|e| e.key.as_slice());
        for (_, e) in &keys {
            if prev.is_some_and(|p| p >= e.key.as_slice()) {
                return Err(corrupt(at.block, "node keys out of order"));
            }
            prev = Some(&e.key);
        }
        if let (Some(last), Some(upper)) = (prev, upper.as_deref())
            && last >= upper.key.as_slice()
        {
            return Err(corrupt(at.block, "node keys out of order"));
        }
        let frame = Frame {
            block: at.block,
            keys,
            children,
            lower,
            upper,
            at: 0,
        };
        // So are the children the walk will enter: those in its range.
        let ahead: Vec<u64> = (0..frame.children.len())
            .filter(|&c| frame.child_in_range(c, &self.options))
            .filter_map(|c| frame.children.get(c).map(|n| n.block))
            .collect();
        bee.prefetch(&ahead);
        Ok(frame)
    }
}

impl Walk for RangeWalk {
    type Item = Item;

    fn step(&mut self, bee: &Bee) -> Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        if let Some(root) = self.root {
            if bee.entry(root.block)?.levels.is_empty() {
                // A block without levels: the empty tree.
                self.root = None;
                self.done = true;
                return Ok(None);
            }
            let frame = self.load(bee, root, None, None, true)?;
            self.visits += 1;
            self.stack.push(frame);
            self.root = None;
        }
        let reverse = self.options.reverse;
        loop {
            let Some(top) = self.stack.last_mut() else {
                self.done = true;
                return Ok(None);
            };
            let Some(token) = top.token(top.at, reverse) else {
                self.stack.pop();
                continue;
            };
            match token {
                Token::Child(c) => {
                    if !top.child_in_range(c, &self.options) {
                        top.at += 1;
                        continue;
                    }
                    let Some(&child) = top.children.get(c) else {
                        return Err(corrupt(top.block, "child index out of step"));
                    };
                    let lower = match c.checked_sub(1) {
                        Some(k) => top.keys.get(k).map(|(_, e)| e.clone()),
                        None => top.lower.clone(),
                    };
                    let upper = match top.keys.get(c) {
                        Some((_, e)) => Some(e.clone()),
                        None => top.upper.clone(),
                    };
                    // Loaded before anything moves: a missing block leaves
                    // the walk where it was.
                    let frame = self.load(bee, child, lower, upper, false)?;
                    self.visits += 1;
                    if let Some(top) = self.stack.last_mut() {
                        top.at += 1;
                    }
                    self.stack.push(frame);
                }
                Token::Key(k) => {
                    top.at += 1;
                    let Some((seq, e)) = top.keys.get(k) else {
                        return Err(corrupt(top.block, "key index out of step"));
                    };
                    let (low, high) = (
                        below_lower(&self.options, &e.key),
                        above_upper(&self.options, &e.key),
                    );
                    if (reverse && low) || (!reverse && high) {
                        self.done = true;
                        return Ok(None);
                    }
                    if low || high {
                        continue;
                    }
                    let item = Item {
                        key: e.key.get(self.prefix..).unwrap_or_default().to_vec(),
                        value: e.value.clone(),
                        seq: *seq,
                    };
                    self.left -= 1;
                    self.done = self.left == 0;
                    return Ok(Some(item));
                }
            }
        }
    }

    fn bulk(&self) -> Option<(std::ops::Range<u64>, bool)> {
        let o = &self.options;
        let whole = o.gt.is_none() && o.gte.is_none() && o.lt.is_none() && o.lte.is_none();
        (o.limit.is_none() && !self.done).then_some((1..self.max_visits, whole))
    }

    fn upcoming(&self, bee: &Bee, max: usize, out: &mut Vec<u64>) {
        // A limit bounds the look ahead: its entries and a path of nodes.
        let max = max.min(self.left.saturating_mul(2).saturating_add(32));
        if let Some(root) = self.root {
            peek_subtree(bee, root, self.options.reverse, max, out);
            return;
        }
        let reverse = self.options.reverse;
        for frame in self.stack.iter().rev() {
            let mut i = frame.at;
            while let Some(token) = frame.token(i, reverse) {
                if out.len() >= max {
                    return;
                }
                if let Token::Child(c) = token
                    && frame.child_in_range(c, &self.options)
                    && let Some(&child) = frame.children.get(c)
                {
                    peek_subtree(bee, child, reverse, max, out);
                }
                i += 1;
            }
        }
    }
}

/// The blocks of the subtree at `at` in about walk order, as far as they
/// are known here: a node whose block is local adds its keys and children.
fn peek_subtree(bee: &Bee, at: NodeRef, reverse: bool, max: usize, out: &mut Vec<u64>) {
    let mut stack = vec![(at, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        if out.len() >= max {
            return;
        }
        out.push(node.block);
        let Some(entry) = bee.local_entry(node.block) else {
            continue;
        };
        let Some(level) = entry.levels.get(node.level as usize) else {
            continue;
        };
        out.extend(level.keys.iter().take(max.saturating_sub(out.len())));
        if depth >= MAX_DEPTH {
            continue;
        }
        let children = level.child_blocks.iter().zip(&level.child_levels);
        let refs = children.map(|(&block, &level)| (NodeRef { block, level }, depth + 1));
        // Popped in walk order.
        if reverse {
            stack.extend(refs);
        } else {
            stack.extend(refs.rev());
        }
    }
}

/// The writes of a sequence range (see [`Bee::history_iter`]).
pub(crate) struct HistoryWalk {
    next: u64,
    end: u64,
    reverse: bool,
    left: usize,
    prefix: Vec<u8>,
}

impl HistoryWalk {
    /// Writes `start..end` (header excluded), in order or newest first, of
    /// the keys under `prefix` (stripped), at most `limit`.
    pub fn new(start: u64, end: u64, reverse: bool, limit: Option<usize>, prefix: Vec<u8>) -> Self {
        let start = start.max(1);
        let end = end.max(start);
        HistoryWalk {
            next: if reverse { end } else { start },
            end: if reverse { start } else { end },
            reverse,
            left: limit.unwrap_or(usize::MAX),
            prefix,
        }
    }

    fn exhausted(&self) -> bool {
        self.left == 0 || self.next == self.end
    }
}

impl Walk for HistoryWalk {
    type Item = Change;

    fn step(&mut self, bee: &Bee) -> Result<Option<Change>> {
        while !self.exhausted() {
            let seq = if self.reverse {
                self.next - 1
            } else {
                self.next
            };
            let entry = bee.entry(seq)?;
            if self.reverse {
                self.next -= 1;
            } else {
                self.next += 1;
            }
            if let Some(change) = Change::of(seq, &entry, &self.prefix) {
                self.left -= 1;
                return Ok(Some(change));
            }
        }
        Ok(None)
    }

    /// Nothing one at a time: the run downloads (see `window`).
    fn upcoming(&self, _bee: &Bee, _max: usize, _out: &mut Vec<u64>) {}

    fn window(&self) -> Option<(std::ops::Range<u64>, bool)> {
        if self.exhausted() {
            return None;
        }
        // A limit bounds what is fetched ahead (twice the writes still to
        // return: some may be outside a sub-database).
        let span = (self.left as u64).saturating_mul(2).max(64);
        Some(if self.reverse {
            (
                self.end.max(self.next.saturating_sub(span))..self.next,
                true,
            )
        } else {
            (
                self.next..self.end.min(self.next.saturating_add(span)),
                false,
            )
        })
    }
}
