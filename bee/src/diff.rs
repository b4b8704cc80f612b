//! Differences between two versions of a bee: two in-order walks side by
//! side that skip any subtree both versions share (the same stored node),
//! so unchanged parts of the tree are never read, and subtrees below the
//! range's lower bound are passed over. Resumable ([`Walk`]): a missing
//! block fails the step and changes nothing. Each cursor is bounded in
//! depth ([`MAX_DEPTH`]) and in the nodes it enters (the version's blocks).

use std::sync::Arc;

use crate::bee::{Bee, RangeOptions, above_upper, below_lower};
use crate::error::{Error, Result};
use crate::messages::Entry;
use crate::tree::{self, EntrySource, MAX_DEPTH, NodeRef};
use crate::walk::Walk;

/// A key whose entry differs between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The key.
    pub key: Vec<u8>,
    /// Its value in the older version (`None`: absent there).
    pub old: Option<Vec<u8>>,
    /// Its value in the newer version (`None`: deleted).
    pub new: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Subtree(NodeRef),
    Key(u64),
}

struct Frame {
    keys: Vec<u64>,
    children: Vec<NodeRef>,
    /// Position in the node's tokens: child 0, key 0, child 1, ... (a leaf:
    /// its keys).
    at: usize,
}

impl Frame {
    fn token(&self) -> Option<Token> {
        self.token_at(self.at)
    }

    fn token_at(&self, at: usize) -> Option<Token> {
        if self.children.is_empty() {
            self.keys.get(at).copied().map(Token::Key)
        } else if at.is_multiple_of(2) {
            self.children.get(at / 2).copied().map(Token::Subtree)
        } else {
            self.keys.get(at / 2).copied().map(Token::Key)
        }
    }
}

/// An in-order walk that yields subtrees before entering them.
struct Cursor {
    /// The root, until it is entered.
    root: Option<NodeRef>,
    stack: Vec<Frame>,
    visits: u64,
    max_visits: u64,
}

impl Cursor {
    fn new(root: Option<NodeRef>, max_visits: u64) -> Self {
        Cursor {
            root,
            stack: Vec::new(),
            visits: 0,
            max_visits,
        }
    }

    /// Enters the root if it was not yet.
    fn start(&mut self, src: &impl EntrySource) -> Result<()> {
        if let Some(root) = self.root {
            // A block without levels: the empty tree.
            if !src.entry(root.block)?.levels.is_empty() {
                let frame = self.load(src, root)?;
                self.stack.push(frame);
            }
            self.root = None;
        }
        Ok(())
    }

    fn load(&mut self, src: &impl EntrySource, node: NodeRef) -> Result<Frame> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(tree::too_deep(node.block));
        }
        if self.visits >= self.max_visits {
            return Err(Error::Corrupt {
                block: node.block,
                reason: "a diff visits more nodes than the version has blocks (crafted)",
            });
        }
        let (keys, children) = tree::load(src, node)?;
        self.visits += 1;
        Ok(Frame {
            keys,
            children,
            at: 0,
        })
    }

    /// Steps past the subtree at the top and enters it (loaded first, so a
    /// missing block moves nothing).
    fn enter(&mut self, src: &impl EntrySource, node: NodeRef) -> Result<()> {
        let frame = self.load(src, node)?;
        self.advance();
        self.stack.push(frame);
        Ok(())
    }

    /// Passes over a subtree at the top whose keys all lie below the
    /// range: the key after it (its upper separator) is below the bound.
    fn skip_below(&mut self, src: &impl EntrySource, options: &RangeOptions) -> Result<()> {
        while let Some(top) = self.stack.last() {
            let Some(Token::Subtree(_)) = top.token() else {
                return Ok(());
            };
            let Some(&sep) = top.keys.get(top.at / 2) else {
                return Ok(());
            };
            if !below_lower(options, &tree::key_value(src, sep)?.key) {
                return Ok(());
            }
            self.advance();
        }
        Ok(())
    }

    /// The blocks this cursor reads next, from its frames.
    fn upcoming(&self, other: &Cursor, max: usize, out: &mut Vec<u64>) {
        if let Some(root) = self.root {
            out.push(root.block);
        }
        for frame in self.stack.iter().rev() {
            for i in frame.at.. {
                if out.len() >= max {
                    return;
                }
                match frame.token_at(i) {
                    None => break,
                    Some(Token::Key(seq)) => out.push(seq),
                    // A subtree the other side shares is never read.
                    Some(Token::Subtree(node)) if !other.shares(node) => out.push(node.block),
                    Some(Token::Subtree(_)) => {}
                }
            }
        }
    }

    /// Whether `node` is among the subtrees this cursor has still to pass.
    fn shares(&self, node: NodeRef) -> bool {
        self.stack.iter().any(|f| f.children.contains(&node))
    }

    fn peek(&mut self) -> Option<Token> {
        while let Some(top) = self.stack.last() {
            match top.token() {
                Some(t) => return Some(t),
                None => {
                    self.stack.pop();
                }
            }
        }
        None
    }

    fn advance(&mut self) {
        if let Some(top) = self.stack.last_mut() {
            top.at += 1;
        }
    }
}

/// The differences between two versions' trees, in key order, within a
/// range of stored keys (see [`Bee::diff_iter`]).
pub(crate) struct DiffWalk {
    left: Cursor,
    right: Cursor,
    options: RangeOptions,
    prefix: usize,
    remaining: usize,
    done: bool,
}

impl DiffWalk {
    /// From the tree at `old` to the tree at `new` (of a bee of `version`
    /// blocks), over `options` in stored keys, stripping `prefix` bytes.
    pub fn new(
        old: Option<NodeRef>,
        new: Option<NodeRef>,
        options: RangeOptions,
        prefix: usize,
        version: u64,
    ) -> Self {
        let remaining = options.limit.unwrap_or(usize::MAX);
        DiffWalk {
            left: Cursor::new(old, version),
            right: Cursor::new(new, version),
            options,
            prefix,
            remaining,
            done: remaining == 0,
        }
    }

    /// `Some` for a key inside the range; ends the walk past its end.
    fn emit(
        &mut self,
        entry: &Arc<Entry>,
        old: Option<&Arc<Entry>>,
        new: Option<&Arc<Entry>>,
    ) -> Option<Difference> {
        if above_upper(&self.options, &entry.key) {
            self.done = true;
            return None;
        }
        if below_lower(&self.options, &entry.key) {
            return None;
        }
        self.remaining -= 1;
        self.done = self.remaining == 0;
        Some(Difference {
            key: entry.key.get(self.prefix..).unwrap_or_default().to_vec(),
            old: old.map(|e| e.value.clone()),
            new: new.map(|e| e.value.clone()),
        })
    }
}

impl Walk for DiffWalk {
    type Item = Difference;

    fn step(&mut self, bee: &Bee) -> Result<Option<Difference>> {
        self.left.start(bee)?;
        self.right.start(bee)?;
        while !self.done {
            self.left.skip_below(bee, &self.options)?;
            self.right.skip_below(bee, &self.options)?;
            // Shared subtrees are skipped whole; any other subtree is entered.
            match (self.left.peek(), self.right.peek()) {
                (Some(Token::Subtree(a)), Some(Token::Subtree(b))) if a == b => {
                    self.left.advance();
                    self.right.advance();
                    continue;
                }
                (Some(Token::Subtree(a)), _) => {
                    self.left.enter(bee, a)?;
                    continue;
                }
                (_, Some(Token::Subtree(b))) => {
                    self.right.enter(bee, b)?;
                    continue;
                }
                _ => {}
            }
            let found = match (self.left.peek(), self.right.peek()) {
                (None, None) => {
                    self.done = true;
                    None
                }
                (Some(Token::Key(a)), Some(Token::Key(b))) if a == b => {
                    self.left.advance();
                    self.right.advance();
                    None
                }
                (Some(Token::Key(a)), Some(Token::Key(b))) => {
                    let (ea, eb) = (tree::key_value(bee, a)?, tree::key_value(bee, b)?);
                    match ea.key.cmp(&eb.key) {
                        std::cmp::Ordering::Equal => {
                            self.left.advance();
                            self.right.advance();
                            if ea.value == eb.value {
                                None
                            } else {
                                self.emit(&ea, Some(&ea), Some(&eb))
                            }
                        }
                        std::cmp::Ordering::Less => {
                            self.left.advance();
                            self.emit(&ea, Some(&ea), None)
                        }
                        std::cmp::Ordering::Greater => {
                            self.right.advance();
                            self.emit(&eb, None, Some(&eb))
                        }
                    }
                }
                (Some(Token::Key(a)), None) => {
                    let ea = tree::key_value(bee, a)?;
                    self.left.advance();
                    self.emit(&ea, Some(&ea), None)
                }
                (None, Some(Token::Key(b))) => {
                    let eb = tree::key_value(bee, b)?;
                    self.right.advance();
                    self.emit(&eb, None, Some(&eb))
                }
                // Subtrees were handled above.
                _ => None,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    fn upcoming(&self, _bee: &Bee, max: usize, out: &mut Vec<u64>) {
        let max = max.min(self.remaining.saturating_mul(4).saturating_add(32));
        self.left.upcoming(&self.right, max, out);
        self.right.upcoming(&self.left, max, out);
    }
}
