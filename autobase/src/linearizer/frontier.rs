//! The linearizer's frontier: what it needs to go on without the indexed
//! prefix (the module docs of `linearizer.rs` say why it is enough), and
//! starting a linearizer from one. Pure, like the rest of the linearizer.

use hyper_core::CoreKey;

use super::{Linearizer, bad};
use crate::error::{Error, Result};
use crate::node::{Causal, Head, Node};

/// One writer at a frontier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontierWriter {
    /// The writer's core key.
    pub key: CoreKey,
    /// How many of its nodes are indexed (a batch ends there).
    pub length: u64,
    /// The facts of its batch ending at `length` (`None` exactly when
    /// `length` is 0).
    pub causal: Option<Causal>,
}

/// What a linearizer needs to go on from an indexed point without the
/// batches before it: see [`Linearizer::frontier`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    /// How many batches the indexed prefix holds.
    pub batches: u64,
    /// The newest committed leader round of the epoch the frontier is in
    /// (`None`: nothing committed in it yet).
    pub committed_round: Option<u64>,
    /// Every writer the linearizer knows, sorted by key.
    pub writers: Vec<FrontierWriter>,
    /// The indexer sets the indexers changed to, oldest first (each sorted
    /// and distinct): the frontier is in epoch `epochs.len()`; the base's
    /// first indexers are epoch 0's.
    pub epochs: Vec<Vec<CoreKey>>,
}

impl Frontier {
    /// Checks what every frontier keeps: writers sorted and distinct, facts
    /// exactly for a non-zero length, and valid.
    pub fn validate(&self) -> Result<()> {
        if !self.writers.windows(2).all(|w| w[0].key < w[1].key) {
            return Err(Error::Malformed(
                "frontier writers are not sorted and distinct",
            ));
        }
        for set in &self.epochs {
            if set.is_empty()
                || set.len() > crate::node::MAX_INDEXERS
                || !set.windows(2).all(|w| w[0] < w[1])
            {
                return Err(Error::Malformed(
                    "a frontier's indexer set is empty, too large, or not sorted and distinct",
                ));
            }
        }
        let epoch = self.epochs.len() as u64;
        for w in &self.writers {
            if w.causal.is_some_and(|c| c.epoch > epoch) {
                return Err(Error::Malformed(
                    "a frontier writer's facts are of a later epoch than the frontier",
                ));
            }
            match (w.length, w.causal) {
                (0, None) => {}
                (1.., Some(c)) => c.validate()?,
                _ => {
                    return Err(Error::Malformed(
                        "a frontier writer has facts exactly when its length is not 0",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One leader commit: the indexed prefix grew by the leader of `round` and
/// the part of its causal past not indexed before. Every peer commits the
/// same leaders in the same order and indexes the same batches at each
/// (see the module docs of `linearizer.rs`), however many commits one
/// update happens to make, so the commits are the points of the indexed
/// prefix every peer passes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The epoch the leader was committed in ([`Linearizer::epoch`]).
    pub epoch: u64,
    /// The committed leader's round (even), in that epoch.
    pub round: u64,
    /// How many batches the indexed prefix holds after it, the batches
    /// before this linearizer's frontier included.
    pub batches: u64,
    /// Whether a batch it indexed holds a value (is not an ack).
    pub values: bool,
    /// Whether the indexers changed right after it: the next epoch starts
    /// here ([`Linearizer::confirm`]).
    pub switches: bool,
}

impl Linearizer {
    /// Appends the `segment` the leader of `round` indexes (sorted) to the
    /// indexed prefix and records the commit.
    /// Whether it indexed a batch of a watched writer
    /// ([`Linearizer::watch`]).
    pub(super) fn record_commit(&mut self, round: u64, segment: Vec<super::VertexId>) -> bool {
        let mut values = false;
        let mut watched = false;
        for &v in &segment {
            let at = self.indexed.len();
            if let Some(x) = self.vertices.get_mut(v) {
                x.indexed_at = at;
                values |= !x.batch.is_ack();
                watched |= self.watched.contains(&x.writer);
            }
            self.indexed.push(v);
        }
        self.commits.push(Commit {
            epoch: self.epoch(),
            round,
            batches: self.skipped + self.indexed.len() as u64,
            values,
            switches: false,
        });
        watched
    }

    /// Every leader commit since this linearizer started (from empty or
    /// from a frontier), oldest first: see [`Commit`].
    pub fn commits(&self) -> &[Commit] {
        &self.commits
    }

    /// The frontier of the indexed prefix now: per writer its indexed
    /// length and the facts of its batch ending there, and the newest
    /// committed leader round. [`Linearizer::from_frontier`] given it (and
    /// then the nodes after those lengths) orders and indexes every later
    /// batch as this linearizer does. The same on every peer for the same
    /// indexed prefix (the prefix grows a committed leader at a time).
    pub fn frontier(&self) -> Frontier {
        self.frontier_until(self.indexed.len(), self.committed_round, self.epoch())
    }

    /// The frontier just after commit `i` of [`Linearizer::commits`] (what
    /// [`Linearizer::frontier`] gave right after that commit, for every
    /// writer this linearizer knows now); `None` past the last commit.
    /// Every peer that made commit `i` gets the same frontier for the
    /// writers both know.
    pub fn frontier_at_commit(&self, i: usize) -> Option<Frontier> {
        let c = self.commits.get(i)?;
        let held = usize::try_from(c.batches.checked_sub(self.skipped)?).ok()?;
        Some(match c.switches {
            // The next epoch starts with nothing committed in it.
            true => self.frontier_until(held, None, c.epoch + 1),
            false => self.frontier_until(held, Some(c.round), c.epoch),
        })
    }

    /// The frontier when the indexed prefix held its first `held` batches
    /// (after the skipped ones), in epoch `epoch` with `committed_round`
    /// committed in it.
    fn frontier_until(&self, held: usize, committed_round: Option<u64>, epoch: u64) -> Frontier {
        let mut writers: Vec<FrontierWriter> = self
            .by_key
            .iter()
            .filter_map(|(key, &w)| {
                let state = self.writers.get(w)?;
                // A writer's indexed batches are a prefix of its log, in
                // the order they were indexed.
                let count = state.batches.partition_point(|&v| {
                    self.vertices.get(v).is_some_and(|x| x.indexed_at < held)
                });
                let last = count
                    .checked_sub(1)
                    .and_then(|i| state.batches.get(i))
                    .and_then(|&v| self.vertices.get(v));
                let (length, causal) = match last {
                    Some(v) => (v.batch.end(), Some(v.causal)),
                    None => (state.floor, state.floor_causal),
                };
                Some(FrontierWriter {
                    key: *key,
                    length,
                    causal,
                })
            })
            .collect();
        writers.sort_unstable_by_key(|w| w.key);
        Frontier {
            batches: self.skipped + held as u64,
            committed_round,
            writers,
            epochs: self.later_sets(epoch),
        }
    }

    /// A linearizer for a base whose first indexers are `indexers`, started from
    /// `frontier` (taken from [`Linearizer::frontier`] of a peer, or from a
    /// quorum-signed system entry): it holds no batch of the prefix, each
    /// writer's next node to push is the one after its frontier length, and
    /// heads that name older batches wait until their nodes are given
    /// ([`Linearizer::missing`], [`Linearizer::provide`]). Its order and
    /// indexed counts start after the prefix ([`Linearizer::skipped`]).
    pub fn from_frontier(indexers: &[CoreKey], frontier: &Frontier) -> Result<Self> {
        frontier.validate()?;
        let mut lin = Linearizer::new(indexers)?;
        for set in &frontier.epochs {
            let next = super::Epoch::new(set)?;
            lin.switch(next);
        }
        for fw in &frontier.writers {
            let w = lin.add_writer(fw.key);
            let Some(state) = lin.writers.get_mut(w) else {
                continue;
            };
            state.floor = fw.length;
            state.floor_causal = fw.causal;
            state.indexed = fw.length;
            state.pushed = fw.length;
            if state.indexer.is_some() {
                state.last_round = fw
                    .causal
                    .filter(|c| c.epoch == frontier.epochs.len() as u64)
                    .and_then(|c| c.round);
            }
        }
        lin.committed_round = frontier.committed_round;
        lin.skipped = frontier.batches;
        Ok(lin)
    }

    /// How many batches were indexed before the frontier this linearizer
    /// started from (0 for one started empty): its order and
    /// [`Linearizer::indexed_len`] count from there.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The heads, named by waiting batches, of batches below the frontier
    /// whose facts this linearizer does not have: give each one's node
    /// (the node at that length of that writer's log) to
    /// [`Linearizer::provide`]. Empty for a linearizer started empty.
    pub fn missing(&self) -> Vec<Head> {
        let mut out: Vec<Head> = self
            .writers
            .iter()
            .filter(|s| s.fault.is_none())
            .filter_map(|s| s.waiting.front())
            .flat_map(|(_, heads, _)| heads.iter().filter(|h| self.old_unknown(h)).copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether `head` is below its writer's frontier and its facts are not
    /// known.
    pub(super) fn old_unknown(&self, head: &Head) -> bool {
        self.by_key
            .get(&head.writer)
            .and_then(|&o| Some((o, self.writers.get(o)?)))
            .is_some_and(|(o, other)| {
                head.length < other.floor && !self.old.contains_key(&(o, head.length))
            })
    }

    /// Gives `node`, the node at `length` of `writer`'s log, below that
    /// writer's frontier (inside the indexed prefix the frontier came
    /// with, so its stated facts are taken as they are: the peers that
    /// indexed it checked them). A node that does not end a batch makes
    /// the batches naming it refused, as a full linearizer refuses them.
    pub fn provide(&mut self, writer: &CoreKey, length: u64, node: &Node) -> Result<()> {
        let w = *self
            .by_key
            .get(writer)
            .ok_or_else(|| bad(writer, length, "not a writer of this base"))?;
        let floor = self.writers.get(w).map_or(0, |s| s.floor);
        if length == 0 || length >= floor {
            return Err(bad(writer, length, "not below the writer's frontier"));
        }
        node.validate()?;
        let causal = if node.batch_remaining == 0 {
            node.causal
        } else {
            None
        };
        self.old.insert((w, length), causal);
        self.insert_ready();
        Ok(())
    }
}
