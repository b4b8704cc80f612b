//! Differences between two versions of a bee: two in-order walks side by
//! side that skip any subtree both versions share (the same stored node),
//! so unchanged parts of the tree are never read.

use crate::error::Result;
use crate::tree::{self, BlockSource, NodeRef};

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
        if self.children.is_empty() {
            self.keys.get(self.at).copied().map(Token::Key)
        } else if self.at.is_multiple_of(2) {
            self.children.get(self.at / 2).copied().map(Token::Subtree)
        } else {
            self.keys.get(self.at / 2).copied().map(Token::Key)
        }
    }
}

/// An in-order walk that yields subtrees before entering them.
struct Cursor<'s, S> {
    src: &'s S,
    stack: Vec<Frame>,
}

impl<'s, S: BlockSource> Cursor<'s, S> {
    fn new(src: &'s S, root: Option<NodeRef>) -> Result<Self> {
        let mut c = Cursor {
            src,
            stack: Vec::new(),
        };
        if let Some(root) = root {
            c.enter(root)?;
        }
        Ok(c)
    }

    fn enter(&mut self, node: NodeRef) -> Result<()> {
        let (keys, children) = tree::load(self.src, node)?;
        self.stack.push(Frame {
            keys,
            children,
            at: 0,
        });
        Ok(())
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

    /// Moves to the next key, entering subtrees on the way.
    fn next_key(&mut self) -> Result<Option<u64>> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some(Token::Key(seq)) => {
                    self.advance();
                    return Ok(Some(seq));
                }
                Some(Token::Subtree(node)) => {
                    self.advance();
                    self.enter(node)?;
                }
            }
        }
    }
}

/// The differences from the tree at `old` to the tree at `new`, in key
/// order, over the keys starting with `prefix` (stripped from the result).
pub fn diff(
    src: &impl BlockSource,
    old: Option<NodeRef>,
    new: Option<NodeRef>,
    prefix: &[u8],
) -> Result<Vec<Difference>> {
    let mut left = Cursor::new(src, old)?;
    let mut right = Cursor::new(src, new)?;
    let mut out = Vec::new();
    let mut emit = |key: &[u8], old: Option<Vec<u8>>, new: Option<Vec<u8>>| {
        if let Some(k) = key.strip_prefix(prefix) {
            out.push(Difference {
                key: k.to_vec(),
                old,
                new,
            });
        }
    };
    loop {
        // Shared subtrees are skipped whole; any other subtree is entered.
        match (left.peek(), right.peek()) {
            (Some(Token::Subtree(a)), Some(Token::Subtree(b))) if a == b => {
                left.advance();
                right.advance();
                continue;
            }
            (Some(Token::Subtree(a)), _) => {
                left.advance();
                left.enter(a)?;
                continue;
            }
            (_, Some(Token::Subtree(b))) => {
                right.advance();
                right.enter(b)?;
                continue;
            }
            _ => {}
        }
        match (left.peek(), right.peek()) {
            (None, None) => return Ok(out),
            (Some(Token::Key(a)), Some(Token::Key(b))) if a == b => {
                left.advance();
                right.advance();
            }
            (Some(Token::Key(a)), Some(Token::Key(b))) => {
                let (ea, eb) = (tree::key_value(src, a)?, tree::key_value(src, b)?);
                match ea.key.cmp(&eb.key) {
                    std::cmp::Ordering::Equal => {
                        left.advance();
                        right.advance();
                        if ea.value != eb.value {
                            emit(&ea.key, Some(ea.value.clone()), Some(eb.value.clone()));
                        }
                    }
                    std::cmp::Ordering::Less => {
                        left.advance();
                        emit(&ea.key, Some(ea.value.clone()), None);
                    }
                    std::cmp::Ordering::Greater => {
                        right.advance();
                        emit(&eb.key, None, Some(eb.value.clone()));
                    }
                }
            }
            (Some(Token::Key(_)), None) => {
                if let Some(a) = left.next_key()? {
                    let ea = tree::key_value(src, a)?;
                    emit(&ea.key, Some(ea.value.clone()), None);
                }
            }
            (None, Some(Token::Key(_))) => {
                if let Some(b) = right.next_key()? {
                    let eb = tree::key_value(src, b)?;
                    emit(&eb.key, None, Some(eb.value.clone()));
                }
            }
            // Subtrees were handled above.
            _ => {}
        }
    }
}
