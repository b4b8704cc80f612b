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
//!
//! # Causal facts: what a batch's past gives it
//!
//! A round depends on the batch's past only through three facts
//! ([`Causal`]): its Lamport depth, the highest round `m` in its past and
//! the set of indexers with a round-`m` batch there (the *round set*, a
//! bit per indexer). They combine over the dependencies alone
//! ([`Causal::after`]): the past of `b` is `b` and its dependencies' pasts,
//! and a round-`m` batch can only be in the past of a dependency whose own
//! highest round is `m`, so `b`'s round set before itself is the union of
//! the round sets of its dependencies of round `m`. Each writer states its
//! batch's facts on the node that ends it; every peer derives them and
//! marks a writer that states other facts faulty (a forged clock).
//!
//! # Changing the indexers
//!
//! The indexers may change, but only at a commit: whether a batch changes
//! them is up to the application's `apply`, so a linearizer told to
//! ([`Linearizer::confirm_each_commit`]) stops after each commit that
//! indexes a value until its caller has applied the indexed prefix and
//! [`Linearizer::confirm`]s the indexers after it. The indexed prefix is
//! the same on every peer, so every peer confirms the same sets at the same
//! commits. A new set starts a new **epoch** right after that commit:
//! leaders of the old epoch not committed yet never will be, and rounds,
//! leaders and votes count again from round 0 among the new indexers'
//! batches *of the new epoch*. The batches left in the tip are indexed
//! by the new epoch's commits, as the causal pasts of its leaders.
//!
//! A batch states its epoch in its [`Causal`] facts: at least every
//! dependency's (refused otherwise), and its round facts count only the
//! dependencies of that epoch, with that epoch's indexer positions and
//! quorum. A writer states the epoch its own linearizer is in; a batch of
//! an epoch this linearizer has not reached waits, with the rest of its
//! writer's log, until it has (a batch of an epoch that never comes stalls
//! only its writer, who never saw that epoch start). A batch of an older
//! epoch than the current one is ordered as any other but drives nothing.
//! Why two peers still agree: within an epoch the argument above holds as
//! it is (its batches and rounds are a function of their pasts), and every
//! peer ends each epoch at the same commit. Liveness: the new epoch needs a
//! majority of the new indexers appending; an indexer whose newest batch
//! is of an older epoch acks once to enter it ([`Linearizer::should_ack`]).
//!
//! # Starting from a frontier (fast-forward)
//!
//! [`Linearizer::frontier`] is what a linearizer needs to go on without
//! the indexed prefix: per writer its indexed length and the facts of the
//! batch ending there, and the newest committed leader round.
//! [`Linearizer::from_frontier`] starts from it and orders and commits the
//! later batches exactly as a linearizer that holds the whole prefix:
//!
//! - the order is the indexed prefix, then the tip sorted by depth: a tip
//!   batch's depth comes from its dependencies' facts, which are known for
//!   batches below the frontier too (the frontier's, or the stated facts of
//!   an older batch a head names, given with [`Linearizer::provide`];
//!   stated facts inside a quorum-signed prefix were checked by the peers
//!   that indexed it);
//! - rounds come from the facts alone (above);
//! - a vertex's vector clock is used only against batches that are not
//!   indexed: votes and commits are about leaders of rounds above the
//!   committed one, and an indexed batch is in the past of a committed
//!   leader, so its round is at most the committed round. The indexed
//!   prefix is causally closed, so a batch's past meets it inside the
//!   frontier, and the clock of a dependency below the frontier is taken
//!   as the frontier's lengths: it differs from the true clock only on
//!   indexed batches;
//! - votes for rounds above the committed one are cast by batches of
//!   those rounds, which are not indexed, so they are counted again from
//!   the batches after the frontier; an indexer's first batch of a round
//!   is one whose round is above its previous batch's (rounds grow along
//!   a writer's log).

use std::collections::{BTreeMap, HashMap};

use hyper_core::CoreKey;

use crate::error::{Error, Result};
use crate::node::{Causal, Head, Node};

mod commit;
mod frontier;
pub use frontier::{Commit, Frontier, FrontierWriter};

impl Causal {
    /// The facts of a batch of epoch `epoch` whose dependencies (the batch
    /// before it in its writer's log and its heads) have the facts `deps`
    /// (none of a later epoch), written by the indexer at position
    /// `indexer` in that epoch's key order (`None`: not one of its
    /// indexers), when that epoch's indexer quorum is `quorum`. Only
    /// dependencies of the same epoch give it rounds.
    pub fn after(deps: &[Causal], epoch: u64, indexer: Option<usize>, quorum: usize) -> Causal {
        let depth = deps.iter().map(|d| d.depth).max().unwrap_or(0) + 1;
        let same = || deps.iter().filter(|d| d.epoch == epoch);
        let past = same().filter_map(|d| d.round).max();
        let past_set = same()
            .filter(|d| d.round == past && past.is_some())
            .fold(0u64, |set, d| set | d.round_set);
        let Some(position) = indexer else {
            return Causal {
                depth,
                epoch,
                round: past,
                round_set: past_set,
            };
        };
        let me = 1u64.checked_shl(position as u32).unwrap_or(0);
        let (round, round_set) = match past {
            None => (0, me),
            Some(m) if past_set.count_ones() as usize >= quorum => (m + 1, me),
            Some(m) => (m, past_set | me),
        };
        Causal {
            depth,
            epoch,
            round: Some(round),
            round_set,
        }
    }
}

/// One indexer set of the base's history: the first one, or one a
/// confirmed commit changed to (see "Changing the indexers").
#[derive(Debug, Clone)]
struct Epoch {
    /// Sorted and distinct, at least one.
    indexers: Vec<CoreKey>,
    quorum: usize,
}

impl Epoch {
    fn new(indexers: &[CoreKey]) -> Result<Epoch> {
        let mut sorted = indexers.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.is_empty() {
            return Err(Error::Malformed("a base needs at least one indexer"));
        }
        if sorted.len() > crate::node::MAX_INDEXERS {
            return Err(Error::Malformed("more indexers than MAX_INDEXERS"));
        }
        Ok(Epoch {
            quorum: sorted.len() / 2 + 1,
            indexers: sorted,
        })
    }

    fn position(&self, key: &CoreKey) -> Option<usize> {
        self.indexers.binary_search(key).ok()
    }
}

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
    /// batch's causal past (itself included) covers (below a frontier:
    /// the frontier's lengths, see the module docs).
    clock: Vec<u64>,
    /// Depth, highest round in its past and round set.
    causal: Causal,
    /// Its position in the indexed prefix (`usize::MAX`: not indexed).
    indexed_at: usize,
}

/// A dependency of a batch being inserted: a batch in the DAG, or one below
/// the frontier (only its facts are known).
#[derive(Debug, Clone, Copy)]
enum Dep {
    Vertex(VertexId),
    Old(Causal),
}

impl Vertex {
    fn covers(&self, writer: usize, length: u64) -> bool {
        self.clock.get(writer).is_some_and(|&l| l >= length)
    }

    fn sort_key(&self) -> (u64, CoreKey, u64) {
        (self.causal.depth, self.batch.writer, self.batch.start)
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
    /// Complete batches waiting for a dependency, in log order, with the
    /// facts their writer stated.
    waiting: std::collections::VecDeque<(Batch, Vec<Head>, Causal)>,
    /// Its core length as far as nodes have been pushed.
    pushed: u64,
    /// How much of its log is indexed.
    indexed: u64,
    /// `Some(position)` for an indexer: its place in key order.
    indexer: Option<usize>,
    /// Its first batch of each round it has one in (indexers only).
    first_of_round: BTreeMap<u64, VertexId>,
    /// The round of its newest batch (indexers only).
    last_round: Option<u64>,
    /// How much of its log lies below the frontier this linearizer started
    /// from (not held), and the facts of its batch ending there.
    floor: u64,
    floor_causal: Option<Causal>,
    /// Why it is faulty (the length of the node or batch refused, and the
    /// reason): nothing more of its log is taken.
    fault: Option<(u64, &'static str)>,
}

/// The linearizer of one base: see the crate docs and `linearizer.rs` (how the order and finality are decided).
#[derive(Debug)]
pub struct Linearizer {
    /// The indexer set finality counts in now.
    epoch: Epoch,
    /// The sets before it, oldest first: `epoch` is number `earlier.len()`.
    earlier: Vec<Epoch>,
    /// Whether a commit that indexes a value waits for
    /// [`Linearizer::confirm`] ([`Linearizer::confirm_each_commit`]).
    confirming: bool,
    /// A commit waits for [`Linearizer::confirm`]: no later one is made.
    awaiting: bool,
    /// Writers (local indexes) a commit that indexes a batch of also waits
    /// for confirmation ([`Linearizer::watch`]).
    watched: std::collections::HashSet<usize>,
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
    /// Facts of batches below the frontier that heads name, as given to
    /// [`Linearizer::provide`] (`None`: that node does not end a batch).
    old: HashMap<(usize, u64), Option<Causal>>,
    /// Batches indexed before the frontier this linearizer started from.
    skipped: u64,
    /// Every leader commit since this linearizer started, oldest first.
    commits: Vec<Commit>,
}

impl Linearizer {
    /// A linearizer for a base whose indexers are `indexers` (at least
    /// one); each is also registered as a writer.
    pub fn new(indexers: &[CoreKey]) -> Result<Self> {
        let epoch = Epoch::new(indexers)?;
        let mut lin = Linearizer {
            epoch: epoch.clone(),
            earlier: Vec::new(),
            confirming: false,
            awaiting: false,
            watched: std::collections::HashSet::new(),
            writers: Vec::new(),
            by_key: HashMap::new(),
            vertices: Vec::new(),
            indexed: Vec::new(),
            tip: Vec::new(),
            changed_from: usize::MAX,
            votes: HashMap::new(),
            committed_round: None,
            reported: Vec::new(),
            old: HashMap::new(),
            skipped: 0,
            commits: Vec::new(),
        };
        for (position, key) in epoch.indexers.iter().enumerate() {
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

    /// The indexers finality counts now, in key order.
    pub fn indexers(&self) -> &[CoreKey] {
        &self.epoch.indexers
    }

    /// The number of the indexer set finality counts in now: 0 for the
    /// first, one more after each change ([`Linearizer::confirm`]).
    pub fn epoch(&self) -> u64 {
        self.earlier.len() as u64
    }

    /// The indexers of epoch `epoch`, in key order (`None`: not reached
    /// yet).
    pub fn epoch_indexers(&self, epoch: u64) -> Option<&[CoreKey]> {
        self.epoch_at(epoch).map(|e| e.indexers.as_slice())
    }

    /// The indexer set of epoch `epoch` (`None`: not reached yet).
    fn epoch_at(&self, epoch: u64) -> Option<&Epoch> {
        match usize::try_from(epoch).ok()? {
            e if e == self.earlier.len() => Some(&self.epoch),
            e => self.earlier.get(e),
        }
    }

    /// The indexer sets after the first, oldest first, up to epoch
    /// `epoch` (what a [`Frontier`] carries).
    fn later_sets(&self, epoch: u64) -> Vec<Vec<CoreKey>> {
        (1..=epoch)
            .filter_map(|e| self.epoch_at(e))
            .map(|e| e.indexers.clone())
            .collect()
    }

    /// From now on every commit that indexes a batch with a value waits
    /// for [`Linearizer::confirm`] before any later commit is made: what a
    /// base does, whose application may change the indexers in any batch
    /// it applies. Off by default (the indexers never change).
    pub fn confirm_each_commit(&mut self) {
        self.confirming = true;
    }

    /// With [`Linearizer::confirm_each_commit`], a commit that indexes a
    /// batch of one of `writers` waits for confirmation too, values or not
    /// (a base watches its pending indexers: their first indexed batch
    /// makes them count). Replaces the writers watched before.
    pub fn watch(&mut self, writers: &[CoreKey]) {
        self.watched = writers.iter().map(|k| self.add_writer(*k)).collect();
    }

    /// Whether the newest commit waits for [`Linearizer::confirm`].
    pub fn awaiting(&self) -> bool {
        self.awaiting
    }

    /// Confirms the commit that waits ([`Linearizer::awaiting`]): after
    /// the indexed prefix it ended, the indexers are `indexers` (at least
    /// one, at most [`crate::MAX_INDEXERS`]). The same set goes on to the
    /// next commit; another one starts a new epoch right after this
    /// commit: rounds, leaders and votes count among the new indexers'
    /// batches of the new epoch, from round 0, and the leaders of the old
    /// epoch not committed yet never will be (their batches are indexed by
    /// the new epoch's commits). Every peer confirms the same sets at the
    /// same commits (they are a function of the indexed prefix), so every
    /// peer changes epochs at the same points.
    pub fn confirm(&mut self, indexers: &[CoreKey]) -> Result<()> {
        if !self.awaiting {
            return Err(Error::Malformed("no commit waits for confirmation"));
        }
        let next = Epoch::new(indexers)?;
        self.awaiting = false;
        if next.indexers == self.epoch.indexers {
            // Commit what was held back: the highest round with a quorum
            // of votes (its past holds the leaders below it).
            let top = self
                .votes
                .iter()
                .filter(|(r, v)| {
                    v.len() >= self.epoch.quorum && self.committed_round.is_none_or(|c| **r > c)
                })
                .map(|(r, _)| *r)
                .max();
            if let Some(round) = top {
                self.commit(round);
            }
        } else {
            self.switch(next);
        }
        self.insert_ready();
        Ok(())
    }

    /// Starts epoch `next` after the newest commit.
    fn switch(&mut self, next: Epoch) {
        for key in &next.indexers {
            self.add_writer(*key);
        }
        let before = std::mem::replace(&mut self.epoch, next);
        self.earlier.push(before);
        if let Some(c) = self.commits.last_mut() {
            c.switches = true;
        }
        self.votes.clear();
        self.committed_round = None;
        for (key, &w) in &self.by_key {
            if let Some(state) = self.writers.get_mut(w) {
                state.indexer = self.epoch.position(key);
                state.first_of_round.clear();
                state.last_round = None;
            }
        }
    }

    /// The indexed prefix from batch `from` on (after the frontier this
    /// linearizer started from), as it is now: unlike
    /// [`Linearizer::order_from`], not as last reported by an update.
    pub fn indexed_from(&self, from: usize) -> impl Iterator<Item = &Batch> {
        self.indexed
            .get(from..)
            .unwrap_or_default()
            .iter()
            .filter_map(|&v| self.vertices.get(v))
            .map(|v| &v.batch)
    }

    /// How many nodes of `writer`'s log are indexed.
    pub fn indexed_length(&self, writer: &CoreKey) -> u64 {
        self.writer(writer).map_or(0, |w| w.indexed)
    }

    /// How many nodes of `writer`'s log have been pushed.
    pub fn pushed(&self, writer: &CoreKey) -> u64 {
        self.writer(writer).map_or(0, |w| w.pushed)
    }

    /// Adds the next node of `writer`'s log (nodes of one writer come in
    /// log order; writers in any order). A batch enters the DAG once its
    /// last node and every batch it depends on are here. A node that breaks
    /// the rules is refused and makes its writer faulty: nothing more of
    /// its log is taken ([`Linearizer::faulty`]); so is a batch whose
    /// stated causal facts are not its own, or whose head does not end a
    /// batch, once its dependencies are here (which may be while another
    /// writer's node is pushed: that push still succeeds).
    pub fn push(&mut self, writer: &CoreKey, node: Node) -> Result<()> {
        let w = *self
            .by_key
            .get(writer)
            .ok_or_else(|| bad(writer, 0, "not a writer of this base"))?;
        let state = self
            .writers
            .get(w)
            .ok_or(Error::Malformed("writer index"))?;
        if let Some((length, reason)) = state.fault {
            return Err(bad(writer, length, reason));
        }
        let length = state.pushed + 1;
        if let Err(e) = self.check_node(writer, length, &node) {
            let reason = match &e {
                Error::Malformed(m) | Error::BadNode { reason: m, .. } => m,
                _ => "refused",
            };
            self.fault(w, length, reason);
            return Err(e);
        }
        let first = self.writers.get(w).is_none_or(|s| s.open.is_empty());
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
        if let (0, Some(causal)) = (node.batch_remaining, node.causal) {
            let values = std::mem::take(&mut state.open);
            let batch = Batch {
                writer: *writer,
                start: length - values.len() as u64,
                values,
            };
            let heads = std::mem::take(&mut state.open_heads);
            state.waiting.push_back((batch, heads, causal));
            self.insert_ready();
        }
        match self.writers.get(w).and_then(|s| s.fault) {
            Some((length, reason)) => Err(bad(writer, length, reason)),
            None => Ok(()),
        }
    }

    /// The rules a node keeps where it is: valid, heads only on a batch's
    /// first node, a batch counting down, no head naming its own writer.
    fn check_node(&self, writer: &CoreKey, length: u64, node: &Node) -> Result<()> {
        let state = self
            .writer(writer)
            .ok_or(Error::Malformed("writer index"))?;
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
        Ok(())
    }

    /// Marks writer `w` faulty for the node or batch ending at `length`:
    /// what waits of its log is dropped and nothing more is taken.
    fn fault(&mut self, w: usize, length: u64, reason: &'static str) {
        if let Some(state) = self.writers.get_mut(w)
            && state.fault.is_none()
        {
            state.fault = Some((length, reason));
            state.waiting.clear();
            state.open.clear();
            state.open_heads.clear();
        }
    }

    /// The writers whose logs were refused, with the error (see
    /// [`Linearizer::push`]).
    pub fn faulty(&self) -> Vec<(CoreKey, Error)> {
        let mut out: Vec<(CoreKey, Error)> = self
            .by_key
            .iter()
            .filter_map(|(k, &w)| {
                let (length, reason) = self.writers.get(w)?.fault?;
                Some((*k, bad(k, length, reason)))
            })
            .collect();
        out.sort_unstable_by_key(|(k, _)| *k);
        out
    }

    /// The causal facts of a batch `writer` would append now naming
    /// `heads` (what its node ending the batch must state). Every head must
    /// end a batch in the DAG (or be a frontier's); [`Linearizer::heads`]
    /// gives such heads.
    pub fn causal_for(&self, writer: &CoreKey, heads: &[Head]) -> Result<Causal> {
        let w = *self
            .by_key
            .get(writer)
            .ok_or_else(|| bad(writer, 0, "not a writer of this base"))?;
        let deps = self
            .deps(w, heads)
            .map_err(|reason| bad(writer, self.pushed(writer), reason))?
            .ok_or_else(|| bad(writer, self.pushed(writer), "a head is not in the DAG"))?;
        let facts: Vec<Causal> = deps.iter().filter_map(|d| self.dep_causal(*d)).collect();
        let indexer = self.writers.get(w).and_then(|s| s.indexer);
        Ok(Causal::after(
            &facts,
            self.epoch(),
            indexer,
            self.epoch.quorum,
        ))
    }

    /// The causal facts of a batch of a writer this linearizer does not
    /// know (a candidate, not added yet, so not an indexer) whose previous
    /// batch has the facts `previous` (stated on the node that ends it),
    /// naming `heads`, which must be known as for
    /// [`Linearizer::causal_for`].
    pub fn causal_for_unknown(&self, previous: Option<Causal>, heads: &[Head]) -> Result<Causal> {
        let mut facts: Vec<Causal> = previous.into_iter().collect();
        for h in heads {
            let deps = self
                .deps(usize::MAX, std::slice::from_ref(h))
                .ok()
                .flatten()
                .ok_or_else(|| bad(&h.writer, h.length, "a head is not in the DAG"))?;
            facts.extend(deps.iter().filter_map(|d| self.dep_causal(*d)));
        }
        Ok(Causal::after(&facts, self.epoch(), None, self.epoch.quorum))
    }

    fn dep_causal(&self, dep: Dep) -> Option<Causal> {
        match dep {
            Dep::Vertex(v) => self.vertices.get(v).map(|x| x.causal),
            Dep::Old(c) => Some(c),
        }
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
        let mut heads: Vec<Head> = latest
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
            .collect();
        // A writer whose log after a frontier holds nothing yet: its batch
        // ending at the frontier, unless a newer batch covers it.
        for (k, &w) in &self.by_key {
            let Some(state) = self.writers.get(w) else {
                continue;
            };
            if state.batches.is_empty()
                && state.floor > 0
                && !latest.iter().any(|o| o.covers(w, state.floor))
            {
                heads.push(Head {
                    writer: *k,
                    length: state.floor,
                });
            }
        }
        heads.sort_unstable();
        heads
    }

    /// Whether indexer `me` should append an ack now: a batch with a value
    /// (or of a watched writer) is not indexed yet, and `me` has seen a batch its own newest batch
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
        if state.indexer.is_none() || !(self.has_unindexed_values() || self.has_unindexed_watched())
        {
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
        newest.causal.epoch < self.epoch()
            || newest.causal.round.is_none()
            || newest.causal.round_set.count_ones() as usize >= self.epoch.quorum
    }

    /// Whether a watched writer ([`Linearizer::watch`]) has a batch not
    /// indexed yet: the indexers ack for it as for a value.
    fn has_unindexed_watched(&self) -> bool {
        self.watched.iter().any(|&w| {
            self.writers.get(w).is_some_and(|s| {
                s.batches
                    .last()
                    .and_then(|&v| self.vertices.get(v))
                    .is_some_and(|v| v.batch.end() > s.indexed)
            })
        })
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
                let (batch, heads, _) = w.waiting.front()?;
                let unmet = heads.iter().find(|h| {
                    self.writer(&h.writer).is_none_or(|o| {
                        let known = o
                            .batches
                            .last()
                            .and_then(|&v| self.vertices.get(v))
                            .map_or(o.floor, |v| v.batch.end());
                        known < h.length || self.old_unknown(h)
                    })
                })?;
                Some((batch.writer, *unmet))
            })
            .collect()
    }

    /// How many batches are indexed (final), from the frontier this
    /// linearizer started from on ([`Linearizer::skipped`] batches before
    /// it are not counted).
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

    /// How many batches of the order as last reported (by
    /// [`Linearizer::update`]) cannot move when the next batches of
    /// `writers` arrive: the indexed prefix, then the tip batches that sort
    /// below the lowest place a next batch of any of `writers` can take (a
    /// writer's next batch is at least one deeper than its newest batch
    /// here, and sorts after every batch of that depth with a smaller
    /// writer key). Batches of other writers can still land anywhere in
    /// the tip: this is about the writers named, whose logs are known to go
    /// on (e.g. still downloading). With no writers, the whole order.
    /// Meant for right after an `update` (before more nodes are pushed).
    /// Costs O(w + log t) for w writers and a tip of t batches.
    pub fn settled_len(&self, writers: &[CoreKey]) -> usize {
        let lowest = writers
            .iter()
            .filter_map(|key| {
                let w = self.writer(key)?;
                let depth = match w.batches.last() {
                    Some(&v) => self.vertices.get(v).map(|v| v.causal.depth),
                    None => w.floor_causal.map(|c| c.depth),
                };
                Some((depth.unwrap_or(0) + 1, *key, 0))
            })
            .min();
        let Some(lowest) = lowest else {
            return self.reported.len();
        };
        let indexed = self.indexed.len().min(self.reported.len());
        let tip = self.reported.get(indexed..).unwrap_or_default();
        indexed
            + tip.partition_point(|&v| self.vertices.get(v).is_some_and(|v| v.sort_key() < lowest))
    }

    /// Reports what changed in the order since the previous call. Costs
    /// O(c) for c batches from the first place the order may have changed
    /// (where a batch arrived in the tip, or where the indexed prefix grew)
    /// to its end, whatever the history: a batch that sorts last costs
    /// O(1).
    pub fn update(&mut self) -> Update {
        let reorder = self.reorder();
        Update {
            tip: self.order_from(reorder.shared).cloned().collect(),
            ..reorder
        }
    }

    /// [`Linearizer::update`] without the batches: `tip` is left empty, and
    /// [`Linearizer::order_from`] reads as many of them as the caller
    /// wants (so a caller that applies part of the tip copies no more).
    pub fn reorder(&mut self) -> Update {
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
            tip: Vec::new(),
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

    /// Inserts every waiting batch whose dependencies are all in the DAG;
    /// a batch that breaks the rules makes its writer faulty.
    fn insert_ready(&mut self) {
        loop {
            let mut progress = false;
            for w in 0..self.writers.len() {
                while let Some((batch, heads, stated)) =
                    self.writers.get(w).and_then(|s| s.waiting.front())
                {
                    if stated.epoch > self.epoch() {
                        // Its writer saw the indexers change: wait until
                        // this linearizer confirms the same change.
                        break;
                    }
                    let end = batch.end();
                    let deps = match self.deps(w, heads) {
                        Ok(Some(deps)) => deps,
                        Ok(None) => break,
                        Err(reason) => {
                            self.fault(w, end, reason);
                            break;
                        }
                    };
                    let Some((batch, _, stated)) =
                        self.writers.get_mut(w).and_then(|s| s.waiting.pop_front())
                    else {
                        break;
                    };
                    if let Err(reason) = self.insert(w, batch, &deps, stated) {
                        self.fault(w, end, reason);
                        break;
                    }
                    progress = true;
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// The dependencies of a batch of writer `w` naming `heads` (after its
    /// newest batch) if they are all known; the reason a head can never
    /// be met (it does not end a batch of its writer).
    fn deps(&self, w: usize, heads: &[Head]) -> Result<Option<Vec<Dep>>, &'static str> {
        let mut deps: Vec<Dep> = Vec::with_capacity(heads.len() + 1);
        // (No writer `w`: the heads alone.)
        if let Some(state) = self.writers.get(w) {
            match (state.batches.last(), state.floor_causal) {
                (Some(&v), _) => deps.push(Dep::Vertex(v)),
                (None, Some(c)) => deps.push(Dep::Old(c)),
                (None, None) => {}
            }
        }
        for h in heads {
            // A writer not registered yet may be added later (by a batch
            // that is applied first): wait for it.
            let Some(&o) = self.by_key.get(&h.writer) else {
                return Ok(None);
            };
            let Some(other) = self.writers.get(o) else {
                return Ok(None);
            };
            if h.length <= other.floor {
                let known = if h.length == other.floor {
                    other.floor_causal.map(Some)
                } else {
                    self.old.get(&(o, h.length)).copied()
                };
                match known {
                    Some(Some(c)) => deps.push(Dep::Old(c)),
                    Some(None) => return Err("a head does not end a batch"),
                    // Its facts are not given yet (`missing`).
                    None => return Ok(None),
                }
                continue;
            }
            match other.batches.binary_search_by_key(&h.length, |&v| {
                self.vertices.get(v).map_or(0, |x| x.batch.end())
            }) {
                Ok(i) => deps.extend(other.batches.get(i).copied().map(Dep::Vertex)),
                Err(i) if i < other.batches.len() => return Err("a head does not end a batch"),
                Err(_) => return Ok(None),
            }
        }
        Ok(Some(deps))
    }

    /// Inserts writer `w`'s `batch`, whose dependencies are `deps`, if the
    /// facts its writer `stated` are the ones its past gives.
    fn insert(
        &mut self,
        w: usize,
        batch: Batch,
        deps: &[Dep],
        stated: Causal,
    ) -> Result<(), &'static str> {
        let mut clock = vec![0u64; self.writers.len()];
        let mut facts = Vec::with_capacity(deps.len());
        for &d in deps {
            let dep_clock = match d {
                Dep::Vertex(v) => self.vertices.get(v).map(|x| x.clock.as_slice()),
                Dep::Old(_) => None,
            };
            match dep_clock {
                Some(dc) => {
                    for (c, &l) in clock.iter_mut().zip(dc) {
                        *c = (*c).max(l);
                    }
                }
                // Below the frontier: its past is inside the frontier.
                None => {
                    for (c, s) in clock.iter_mut().zip(&self.writers) {
                        *c = (*c).max(s.floor);
                    }
                }
            }
            facts.extend(self.dep_causal(d));
        }
        if facts.iter().any(|f| f.epoch > stated.epoch) {
            return Err("a batch's epoch is below one of its dependencies'");
        }
        // (The caller holds a batch of a later epoch back until it starts.)
        let epoch = self
            .epoch_at(stated.epoch)
            .ok_or("a batch of an epoch not reached")?;
        let key = batch.writer;
        let causal = Causal::after(&facts, stated.epoch, epoch.position(&key), epoch.quorum);
        // Only the current epoch's batches count for rounds and votes.
        let indexer = self
            .writers
            .get(w)
            .and_then(|s| s.indexer)
            .filter(|_| stated.epoch == self.epoch());
        if causal != stated {
            return Err("the causal facts the writer states are not the batch's (a forged clock)");
        }
        if let Some(c) = clock.get_mut(w) {
            *c = batch.end();
        }
        let id = self.vertices.len();
        self.vertices.push(Vertex {
            writer: w,
            batch,
            clock,
            causal,
            indexed_at: usize::MAX,
        });
        let Some(state) = self.writers.get_mut(w) else {
            return Ok(());
        };
        state.batches.push(id);
        // In the tip before its vote, which may index it.
        self.enter_tip(id);
        let (Some(round), Some(position)) = (causal.round.filter(|_| indexer.is_some()), indexer)
        else {
            return Ok(());
        };
        let Some(state) = self.writers.get_mut(w) else {
            return Ok(());
        };
        // Only an indexer's first batch of a round counts.
        if state.last_round.is_some_and(|last| last >= round) {
            return Ok(());
        }
        state.last_round = Some(round);
        state.first_of_round.insert(round, id);
        if round % 2 == 1 {
            self.vote(round - 1, position, id);
        }
        Ok(())
    }
}

fn bad(writer: &CoreKey, length: u64, reason: &'static str) -> Error {
    Error::BadNode {
        writer: writer.to_string(),
        length,
        reason,
    }
}
