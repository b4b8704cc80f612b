//! The linearizer: the writers' nodes in, one deterministic order out.
//! Pure logic: no I/O, no clock, no randomness.
//!
//! # The order
//!
//! Nodes are grouped into batches (a batch is one vertex of the DAG: it is
//! ordered, applied and undone as a unit). A batch depends on the batch
//! before it in its writer's log and on its heads. The order is the
//! **indexed prefix** (final: it never changes on any peer) followed by the
//! **tip**: every other known batch, sorted by (Lamport depth, writer key,
//! start). Sorting by Lamport depth puts every batch after its
//! dependencies; the writer key and start break ties, so the same set of
//! batches gives the same order whatever order they arrived in.
//!
//! # Finality: rounds, leaders and votes among the indexers
//!
//! Only the indexers' batches drive finality (a DAG-consensus commit rule
//! in the style of Bullshark, for indexers that cannot equivocate: each
//! indexer's log is a signed core, so two histories under one key are
//! detected by hyper-core). With `n` indexers the quorum is `q = n / 2 + 1`,
//! so any two quorums share an indexer.
//!
//! - **Rounds.** An indexer's batch `b` is in round `m + 1` when `m` is the
//!   highest round among the indexer batches in its causal past and that
//!   past holds round-`m` batches of at least `q` distinct indexers;
//!   otherwise it is in round `m` (round 0 when its past holds no indexer
//!   batch). A round depends only on `b`'s causal past, which never
//!   changes, so every peer computes the same rounds. Per indexer only its
//!   first batch of a round counts.
//! - **Leaders.** Even rounds have a leader: indexer `(r / 2) mod n` in key
//!   order; its first batch of round `r` is the leader batch (there is none
//!   when that indexer skipped the round).
//! - **Votes.** Indexer `j` votes for the leader batch `L` of round `r` when
//!   its first batch of round `r + 1` has `L` in its past. `q` votes commit
//!   `L` directly.
//! - **Commit.** When `L` commits, the leaders of earlier uncommitted even
//!   rounds are committed too, newest first, each one that is in the causal
//!   past of the last leader taken; then, oldest first, each committed
//!   leader's causal past that is not indexed yet is appended to the
//!   indexed prefix, sorted as the tip is.
//!
//! Why two peers never disagree: if any peer directly commits `L` (round
//! `r`), `q` indexers' first round-`r + 1` batches hold `L` in their past.
//! Any batch of round `r + 2` has in its past the first round-`r + 1`
//! batches of `q` indexers; the two sets share an indexer, so every batch
//! of round `r + 2` or later holds `L`. Every peer that commits a later
//! leader therefore reaches `L` while walking back, and commits the same
//! leaders in the same order (the leader batch of a round is unique).
//!
//! Liveness: finality needs a majority of the indexers appending (acks
//! count); writes and the optimistic tip go on without them.

use std::collections::HashMap;

use hyper_core::CoreKey;

use crate::error::{Error, Result};
use crate::node::{Head, Node};

/// A batch as the order holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The writer's core key.
    pub writer: CoreKey,
    /// How many of the writer's nodes precede the batch (its first node is
    /// block `start + 1` of the writer's core, after the header).
    pub start: u64,
    /// The batch's values, one per node (`None`: an ack).
    pub values: Vec<Option<Vec<u8>>>,
}

impl Batch {
    /// How many of the writer's nodes precede the batch or are in it.
    pub fn end(&self) -> u64 {
        self.start + self.values.len() as u64
    }

    /// Whether every node of the batch is an ack.
    pub fn is_ack(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }
}

/// What changed in the order since the previous [`Linearizer::update`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Update {
    /// How many batches of the previous order are unchanged (a prefix).
    pub shared: usize,
    /// How many batches of the previous order to undo, last first (the
    /// previous order's length minus `shared`).
    pub undo: usize,
    /// The batches that now follow the shared prefix, in order.
    pub tip: Vec<Batch>,
    /// How many batches of the new order are indexed (final).
    pub indexed: usize,
}

type VertexId = usize;

/// One batch in the DAG, with what is derived from its causal past.
#[derive(Debug)]
struct Vertex {
    writer: usize,
    batch: Batch,
    /// For each writer (by local index), the length of its core that this
    /// batch's causal past (itself included) covers.
    clock: Vec<u64>,
    /// 1 + the largest depth of its dependencies.
    depth: u64,
    /// The highest indexer round in its causal past, itself included.
    max_round: Option<u64>,
}

impl Vertex {
    fn covers(&self, writer: usize, length: u64) -> bool {
        self.clock.get(writer).is_some_and(|&l| l >= length)
    }

    fn sort_key(&self) -> (u64, CoreKey, u64) {
        (self.depth, self.batch.writer, self.batch.start)
    }
}

/// A writer as the linearizer knows it.
#[derive(Debug, Default)]
struct Writer {
    /// Its batches in log order.
    batches: Vec<VertexId>,
    /// The nodes of a batch not complete yet, with the first node's heads.
    open: Vec<Option<Vec<u8>>>,
    open_heads: Vec<Head>,
    /// The open batch's last node's `batch_remaining`.
    open_remaining: u32,
    /// Complete batches waiting for a dependency, in log order.
    waiting: std::collections::VecDeque<(Batch, Vec<Head>)>,
    /// Its core length as far as nodes have been pushed.
    pushed: u64,
    /// How much of its log is indexed.
    indexed: u64,
    /// `Some(position)` for an indexer: its place in key order.
    indexer: Option<usize>,
    /// Its first batch of each round (indexers only), by round.
    first_of_round: Vec<VertexId>,
}

/// The linearizer of one base: see the crate docs and `linearizer.rs` (how the order and finality are decided).
#[derive(Debug)]
pub struct Linearizer {
    indexers: Vec<CoreKey>,
    quorum: usize,
    writers: Vec<Writer>,
    by_key: HashMap<CoreKey, usize>,
    vertices: Vec<Vertex>,
    /// The indexed prefix.
    indexed: Vec<VertexId>,
    /// The tip: every batch in the DAG not indexed, kept sorted by
    /// [`Vertex::sort_key`] as batches arrive (each goes in at its place)
    /// and as batches are indexed (they leave it).
    tip: Vec<VertexId>,
    /// Where the order (indexed prefix, then tip) may first differ from
    /// `reported`: everything before it is unchanged since the last
    /// `update` (`usize::MAX`: nothing changed).
    changed_from: usize,
    /// Votes per even round: which indexers voted for its leader.
    votes: HashMap<u64, Vec<usize>>,
    /// The newest committed leader round.
    committed_round: Option<u64>,
    /// The order as last reported by `update`.
    reported: Vec<VertexId>,
}

impl Linearizer {
    /// A linearizer for a base whose indexers are `indexers` (at least
    /// one); each is also registered as a writer.
    pub fn new(indexers: &[CoreKey]) -> Result<Self> {
        let mut sorted = indexers.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() {
            return Err(Error::Malformed("a base needs at least one indexer"));
        }
        let mut lin = Linearizer {
            quorum: sorted.len() / 2 + 1,
            indexers: sorted.clone(),
            writers: Vec::new(),
            by_key: HashMap::new(),
            vertices: Vec::new(),
            indexed: Vec::new(),
            tip: Vec::new(),
            changed_from: usize::MAX,
            votes: HashMap::new(),
            committed_round: None,
            reported: Vec::new(),
        };
        for (position, key) in sorted.iter().enumerate() {
            let w = lin.add_writer(*key);
            if let Some(writer) = lin.writers.get_mut(w) {
                writer.indexer = Some(position);
            }
        }
        Ok(lin)
    }

    /// Registers a writer (a no-op for one already known). A batch whose
    /// heads name a writer not registered waits until it is.
    pub fn add_writer(&mut self, key: CoreKey) -> usize {
        *self.by_key.entry(key).or_insert_with(|| {
            self.writers.push(Writer::default());
            self.writers.len() - 1
        })
    }

    /// The indexers, in key order.
    pub fn indexers(&self) -> &[CoreKey] {
        &self.indexers
    }

    /// How many nodes of `writer`'s log have been pushed.
    pub fn pushed(&self, writer: &CoreKey) -> u64 {
        self.writer(writer).map_or(0, |w| w.pushed)
    }

    /// Adds the next node of `writer`'s log (nodes of one writer come in
    /// log order; writers in any order). A batch enters the DAG once its
    /// last node and every batch it depends on are here. A node that breaks
    /// the rules is refused and changes nothing.
    pub fn push(&mut self, writer: &CoreKey, node: Node) -> Result<()> {
        let w = *self
            .by_key
            .get(writer)
            .ok_or_else(|| bad(writer, 0, "not a writer of this base"))?;
        let state = self
            .writers
            .get(w)
            .ok_or(Error::Malformed("writer index"))?;
        let length = state.pushed + 1;
        node.validate()?;
        let first = state.open.is_empty();
        if !first && !node.heads.is_empty() {
            return Err(bad(writer, length, "heads on a node inside a batch"));
        }
        if !first && Some(node.batch_remaining) != state.open_remaining.checked_sub(1) {
            return Err(bad(writer, length, "a batch's nodes do not count down"));
        }
        if node.heads.iter().any(|h| h.writer == *writer) {
            return Err(bad(writer, length, "a head names its own writer"));
        }
        let state = self
            .writers
            .get_mut(w)
            .ok_or(Error::Malformed("writer index"))?;
        state.pushed = length;
        if first {
            state.open_heads = node.heads;
        }
        state.open_remaining = node.batch_remaining;
        state.open.push(node.value);
        if node.batch_remaining == 0 {
            let values = std::mem::take(&mut state.open);
            let batch = Batch {
                writer: *writer,
                start: length - values.len() as u64,
                values,
            };
            let heads = std::mem::take(&mut state.open_heads);
            state.waiting.push_back((batch, heads));
            self.insert_ready()?;
        }
        Ok(())
    }

    /// The heads a new local node of `me` should name: the newest batch of
    /// every other writer that no other newest batch already covers.
    pub fn heads(&self, me: &CoreKey) -> Vec<Head> {
        let mut heads = self.dag_heads();
        heads.retain(|h| h.writer != *me);
        heads
    }

    /// The DAG's heads: the newest batch of every writer that no other
    /// writer's newest batch covers.
    pub fn dag_heads(&self) -> Vec<Head> {
        let latest: Vec<&Vertex> = self
            .writers
            .iter()
            .filter_map(|w| w.batches.last())
            .filter_map(|&v| self.vertices.get(v))
            .collect();
        latest
            .iter()
            .filter(|v| {
                !latest
                    .iter()
                    .any(|o| o.batch.writer != v.batch.writer && o.covers(v.writer, v.batch.end()))
            })
            .map(|v| Head {
                writer: v.batch.writer,
                length: v.batch.end(),
            })
            .collect()
    }

    /// Whether indexer `me` should append an ack now: a batch with a value
    /// is not indexed yet, and `me` has seen a batch its own newest batch
    /// does not cover (new information), or, with `timer` (its ack timer
    /// fired), an ack would move it to a later round. So a lone indexer
    /// acks its own head until it is indexed, acks stop when nothing is
    /// left to index, and an indexer whose peers are offline stops acking.
    pub fn should_ack(&self, me: &CoreKey, timer: bool) -> bool {
        let Some(w) = self
            .by_key
            .get(me)
            .and_then(|&w| self.writers.get(w).map(|s| (w, s)))
        else {
            return false;
        };
        let (w, state) = w;
        if state.indexer.is_none() || !self.has_unindexed_values() {
            return false;
        }
        let newest = state.batches.last().and_then(|&v| self.vertices.get(v));
        let Some(newest) = newest else {
            return true;
        };
        let unseen = self.writers.iter().enumerate().any(|(i, other)| {
            i != w
                && other
                    .batches
                    .last()
                    .and_then(|&v| self.vertices.get(v))
                    .is_some_and(|v| !newest.covers(i, v.batch.end()))
        });
        unseen || (timer && self.ack_advances(newest))
    }

    /// Whether a batch on top of `newest` (seeing nothing more) would be in
    /// a later round: only then can an ack with no new information move
    /// finality on (it is what a lone indexer needs; with the other
    /// indexers offline it is false, so timer acks stop).
    fn ack_advances(&self, newest: &Vertex) -> bool {
        newest
            .max_round
            .is_none_or(|m| self.round_count(&newest.clock, m) >= self.quorum)
    }

    fn has_unindexed_values(&self) -> bool {
        self.writers.iter().any(|w| {
            w.batches
                .iter()
                .rev()
                .filter_map(|&v| self.vertices.get(v))
                .take_while(|v| v.batch.end() > w.indexed)
                .any(|v| !v.batch.is_ack())
        })
    }

    /// For each writer whose next batch waits for a dependency, the first
    /// head that is not here yet (a writer not registered, or not that long
    /// yet). A head that is never met stalls only its own writer.
    pub fn waiting(&self) -> Vec<(CoreKey, Head)> {
        self.writers
            .iter()
            .filter_map(|w| {
                let (batch, heads) = w.waiting.front()?;
                let unmet = heads.iter().find(|h| {
                    self.writer(&h.writer).is_none_or(|o| {
                        o.batches
                            .last()
                            .and_then(|&v| self.vertices.get(v))
                            .is_none_or(|v| v.batch.end() < h.length)
                    })
                })?;
                Some((batch.writer, *unmet))
            })
            .collect()
    }

    /// How many batches are indexed (final).
    pub fn indexed_len(&self) -> usize {
        self.indexed.len()
    }

    /// The whole current order (indexed prefix, then the tip).
    pub fn order(&self) -> impl Iterator<Item = &Batch> {
        self.order_from(0)
    }

    /// The current order from batch `from` on (empty past its end), without
    /// walking the batches before it.
    pub fn order_from(&self, from: usize) -> impl Iterator<Item = &Batch> {
        self.reported
            .get(from..)
            .unwrap_or_default()
            .iter()
            .filter_map(|&v| self.vertices.get(v))
            .map(|v| &v.batch)
    }

    /// Reports what changed in the order since the previous call. Costs
    /// O(c) for c batches from the first place the order may have changed
    /// (where a batch arrived in the tip, or where the indexed prefix grew)
    /// to its end, whatever the history: a batch that sorts last costs
    /// O(1).
    pub fn update(&mut self) -> Update {
        let from = self.changed_from.min(self.reported.len());
        self.changed_from = usize::MAX;
        let new: Vec<VertexId> = match self.indexed.get(from..) {
            Some(rest) => rest.iter().chain(&self.tip).copied().collect(),
            None => self
                .tip
                .get(from - self.indexed.len()..)
                .unwrap_or_default()
                .to_vec(),
        };
        let same = self
            .reported
            .get(from..)
            .unwrap_or_default()
            .iter()
            .zip(&new)
            .take_while(|(a, b)| a == b)
            .count();
        let shared = from + same;
        let update = Update {
            shared,
            undo: self.reported.len() - shared,
            tip: new
                .get(same..)
                .unwrap_or_default()
                .iter()
                .filter_map(|&v| self.vertices.get(v))
                .map(|v| v.batch.clone())
                .collect(),
            indexed: self.indexed.len(),
        };
        self.reported.truncate(shared);
        self.reported
            .extend(new.get(same..).unwrap_or_default().iter().copied());
        update
    }

    /// Puts the new batch `id` in the tip at its place.
    fn enter_tip(&mut self, id: VertexId) {
        let key = self.vertices.get(id).map(Vertex::sort_key);
        let at = self
            .tip
            .partition_point(|&v| self.vertices.get(v).map(Vertex::sort_key) < key);
        self.tip.insert(at, id);
        self.changed_from = self.changed_from.min(self.indexed.len() + at);
    }

    fn writer(&self, key: &CoreKey) -> Option<&Writer> {
        self.by_key.get(key).and_then(|&w| self.writers.get(w))
    }

    fn sort(&self, ids: &mut [VertexId]) {
        ids.sort_unstable_by_key(|&v| self.vertices.get(v).map(Vertex::sort_key));
    }

    /// Inserts every waiting batch whose dependencies are all in the DAG.
    fn insert_ready(&mut self) -> Result<()> {
        loop {
            let mut progress = false;
            for w in 0..self.writers.len() {
                while let Some(deps) = self.ready(w)? {
                    let Some((batch, _)) =
                        self.writers.get_mut(w).and_then(|s| s.waiting.pop_front())
                    else {
                        break;
                    };
                    self.insert(w, batch, deps);
                    progress = true;
                }
            }
            if !progress {
                return Ok(());
            }
        }
    }

    /// The dependencies of writer `w`'s first waiting batch if they are all
    /// in the DAG; an error if a head can never be met (it does not end a
    /// batch of its writer).
    fn ready(&self, w: usize) -> Result<Option<Vec<VertexId>>> {
        let Some(state) = self.writers.get(w) else {
            return Ok(None);
        };
        let Some((batch, heads)) = state.waiting.front() else {
            return Ok(None);
        };
        let mut deps: Vec<VertexId> = state.batches.last().copied().into_iter().collect();
        for h in heads {
            // A writer not registered yet may be added later (by a batch
            // that is applied first): wait for it.
            let Some(other) = self.writer(&h.writer) else {
                return Ok(None);
            };
            match other.batches.binary_search_by_key(&h.length, |&v| {
                self.vertices.get(v).map_or(0, |x| x.batch.end())
            }) {
                Ok(i) => deps.extend(other.batches.get(i).copied()),
                Err(i) if i < other.batches.len() => {
                    return Err(bad(
                        &batch.writer,
                        batch.end(),
                        "a head does not end a batch",
                    ));
                }
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(deps))
    }

    fn insert(&mut self, w: usize, batch: Batch, deps: Vec<VertexId>) {
        let mut clock = vec![0u64; self.writers.len()];
        let mut depth = 0;
        let mut max_round: Option<u64> = None;
        for &d in &deps {
            let Some(dep) = self.vertices.get(d) else {
                continue;
            };
            for (c, &l) in clock.iter_mut().zip(&dep.clock) {
                *c = (*c).max(l);
            }
            depth = depth.max(dep.depth);
            max_round = max_round.max(dep.max_round);
        }
        if let Some(c) = clock.get_mut(w) {
            *c = batch.end();
        }
        let id = self.vertices.len();
        let indexer = self.writers.get(w).and_then(|s| s.indexer);
        let round = indexer.map(|_| match max_round {
            None => 0,
            Some(m) if self.round_count(&clock, m) >= self.quorum => m + 1,
            Some(m) => m,
        });
        self.vertices.push(Vertex {
            writer: w,
            batch,
            clock,
            depth: depth + 1,
            max_round: max_round.max(round),
        });
        let Some(state) = self.writers.get_mut(w) else {
            return;
        };
        state.batches.push(id);
        // In the tip before its vote, which may index it.
        self.enter_tip(id);
        let Some(state) = self.writers.get_mut(w) else {
            return;
        };
        let (Some(round), Some(position)) = (round, indexer) else {
            return;
        };
        // Only an indexer's first batch of a round counts.
        if state.first_of_round.len() as u64 > round {
            return;
        }
        while (state.first_of_round.len() as u64) <= round {
            state.first_of_round.push(id);
        }
        if round % 2 == 1 {
            self.vote(round - 1, position, id);
        }
    }

    /// How many indexers have a round-`round` batch inside `clock`.
    fn round_count(&self, clock: &[u64], round: u64) -> usize {
        self.indexer_states()
            .filter(|(w, s)| {
                self.first_of(s, round)
                    .is_some_and(|v| clock.get(*w).is_some_and(|&l| l >= v.batch.end()))
            })
            .count()
    }

    fn indexer_states(&self) -> impl Iterator<Item = (usize, &Writer)> {
        self.writers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.indexer.is_some())
    }

    /// An indexer's first batch of `round`, if it has one in that round
    /// (a batch that jumped past the round does not count for it).
    fn first_of(&self, state: &Writer, round: u64) -> Option<&Vertex> {
        let v = *state.first_of_round.get(usize::try_from(round).ok()?)?;
        // A round the indexer skipped points at its first batch of a later
        // round (an indexer batch's `max_round` is its own round).
        self.vertices.get(v).filter(|x| x.max_round == Some(round))
    }

    /// The leader batch of an even round.
    fn leader(&self, round: u64) -> Option<(VertexId, &Vertex)> {
        let n = self.indexers.len() as u64;
        let key = self.indexers.get(((round / 2) % n) as usize)?;
        let state = self.writer(key)?;
        let v = *state.first_of_round.get(usize::try_from(round).ok()?)?;
        let vertex = self.first_of(state, round)?;
        Some((v, vertex))
    }

    /// Indexer `voter`'s first batch of round `round + 1` is `id`: if it
    /// holds the leader of `round`, it votes for it.
    fn vote(&mut self, round: u64, voter: usize, id: VertexId) {
        let Some((_, leader)) = self.leader(round) else {
            return;
        };
        let holds = self
            .vertices
            .get(id)
            .is_some_and(|v| v.covers(leader.writer, leader.batch.end()));
        if !holds {
            return;
        }
        let votes = self.votes.entry(round).or_default();
        if !votes.contains(&voter) {
            votes.push(voter);
        }
        if votes.len() >= self.quorum && self.committed_round.is_none_or(|c| round > c) {
            self.commit(round);
        }
    }

    /// Commits the leader of `round` and, through it, the uncommitted
    /// leaders before it.
    fn commit(&mut self, round: u64) {
        let Some((top, _)) = self.leader(round) else {
            return;
        };
        let mut anchors = vec![top];
        let mut r = round;
        let floor = self.committed_round.map_or(0, |c| c + 2);
        while r >= floor + 2 {
            r -= 2;
            let Some(anchor) = anchors.last().and_then(|&a| self.vertices.get(a)) else {
                break;
            };
            if let Some((id, l)) = self.leader(r)
                && anchor.covers(l.writer, l.batch.end())
            {
                anchors.push(id);
            }
        }
        for &a in anchors.iter().rev() {
            let Some(clock) = self.vertices.get(a).map(|v| v.clock.clone()) else {
                continue;
            };
            let mut segment = Vec::new();
            for (w, state) in self.writers.iter_mut().enumerate() {
                let upto = clock.get(w).copied().unwrap_or(0);
                if upto <= state.indexed {
                    continue;
                }
                let vertices = &self.vertices;
                let from = state.batches.partition_point(|&v| {
                    vertices
                        .get(v)
                        .is_some_and(|x| x.batch.end() <= state.indexed)
                });
                let to = state
                    .batches
                    .partition_point(|&v| vertices.get(v).is_some_and(|x| x.batch.end() <= upto));
                segment.extend(state.batches.get(from..to).unwrap_or_default());
                state.indexed = upto;
            }
            self.sort(&mut segment);
            self.changed_from = self.changed_from.min(self.indexed.len());
            self.indexed.extend(segment);
        }
        // The batches indexed now leave the tip (it stays sorted).
        let (vertices, writers) = (&self.vertices, &self.writers);
        self.tip.retain(|&v| {
            vertices.get(v).is_some_and(|x| {
                writers
                    .get(x.writer)
                    .is_some_and(|w| x.batch.end() > w.indexed)
            })
        });
        self.committed_round = Some(round);
        self.votes.retain(|&r, _| r > round);
    }
}

fn bad(writer: &CoreKey, length: u64, reason: &'static str) -> Error {
    Error::BadNode {
        writer: writer.to_string(),
        length,
        reason,
    }
}
