//! Fast-forward: a base that is new or far behind adopts the newest
//! quorum-signed state this store holds (a system entry, and each view's
//! signed core up to the length the entry names) instead of applying the
//! batches before it, and goes on from the entry's frontier. What it needs
//! of the writer cores after that is [`Base::needed`]: the nodes after the
//! frontier and the few below it that later heads name.

use hyper_core::{Core, CoreKey};

use super::Base;
use crate::error::{Error, Result};
use crate::host::Apply;
use crate::linearizer::Linearizer;
use crate::node::Node;
use crate::system::{SystemEntry, SystemFollower};
use crate::undo::{Start, tree_hashes, truncate_view};

/// How many batches past what a base's views hold a signed state must be
/// before opening the base fast-forwards to it (a base holding no batch
/// fast-forwards to any signed state). Below it, applying the batches is
/// cheaper than starting again from the signed state.
pub const FAST_FORWARD_AFTER: u64 = 256;

/// How many of the newest signed system entries are tried for one whose
/// views' signed cores this store holds that far.
const ENTRIES_TRIED: u64 = 64;

/// How many view entries one copy step moves (one read, one append).
const COPY_CHUNK: u64 = 4096;

/// Blocks of a core that a base needs to go on and does not hold: what a
/// sync fetches from peers ([`Base::needed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Needed {
    /// The writer core.
    pub core: CoreKey,
    /// The first block.
    pub start: u64,
    /// The end (exclusive); `None`: every block the peers have from
    /// `start` on.
    pub end: Option<u64>,
}

impl<A: Apply> Base<A> {
    /// Jumps to the newest quorum-signed state this store holds when it
    /// indexes more batches than this base has indexed: the views become
    /// the signed views at the system entry's lengths (their common prefix
    /// is kept, the rest copied from the signed cores and checked against
    /// the entry's tree hashes), the linearizer starts from the entry's
    /// frontier and the membership is the entry's; then the base updates
    /// from there. The batches before the entry are never applied here
    /// ([`BaseInfo::fast_forwarded`](super::BaseInfo::fast_forwarded)).
    /// Returns whether it jumped. Opening a base does this on its own when
    /// the base holds no batch, or at least [`FAST_FORWARD_AFTER`] fewer
    /// than the signed state. A signed state whose views do not match it is
    /// refused with [`Error::SignedStateMismatch`] and the views are
    /// rebuilt from the writer cores.
    pub fn fast_forward(&mut self) -> Result<bool> {
        let held = self.lin.skipped() + self.lin.indexed_len().min(self.applied.len()) as u64;
        if !self.fast_forward_past(held, 1)? {
            return Ok(false);
        }
        self.update()?;
        Ok(true)
    }

    /// The open-time fast-forward (see [`Base::fast_forward`]): a refused
    /// signed state is reported in
    /// [`BaseInfo::refused_signatures`](super::BaseInfo::refused_signatures)
    /// and the base opens without it.
    pub(super) fn fast_forward_at_open(&mut self) -> Result<()> {
        let held = self.lin.skipped() + self.resume.len() as u64;
        let margin = if held == 0 { 1 } else { FAST_FORWARD_AFTER };
        match self.fast_forward_past(held, margin) {
            Err(e @ Error::SignedStateMismatch { .. }) => {
                self.signed.refuse(e.to_string());
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    /// Jumps when the newest usable signed state indexes at least `held +
    /// margin` batches.
    fn fast_forward_past(&mut self, held: u64, margin: u64) -> Result<bool> {
        self.enter_signed_epochs()?;
        let Some(start) = self.usable_signed_state(held.saturating_add(margin))? else {
            return Ok(false);
        };
        if let Err(e) = self.jump(&start) {
            // The views may be half copied: start again from nothing.
            self.record.restart(None)?;
            for (_, view) in &self.views {
                truncate_view(view, 0)?;
            }
            self.restart(None)?;
            return Err(e);
        }
        Ok(true)
    }

    /// The newest signed system entry (of the [`ENTRIES_TRIED`] newest)
    /// stored here that indexes at least `batches` batches and whose
    /// views' signed cores this store holds up to the lengths it names.
    /// Entries index more batches the newer they are, so the search stops
    /// at the first one below `batches`: a base that is not behind decodes
    /// one entry at open.
    fn usable_signed_state(&self, batches: u64) -> Result<Option<Start>> {
        for epoch in (0..self.signed.epochs()).rev() {
            let Some(system) = self.signed.system_at(epoch) else {
                continue;
            };
            let signed = system.info()?.signed_length;
            for index in (signed.saturating_sub(ENTRIES_TRIED)..signed).rev() {
                if !system.has(index)? {
                    continue;
                }
                // Indexers signed it; one this build cannot read is passed by.
                let Ok(entry) = SystemEntry::decode(&system.get(index)?) else {
                    continue;
                };
                if entry.frontier.batches < batches {
                    // Older entries, and older epochs', index fewer.
                    return Ok(None);
                }
                let start = Start { entry, index };
                if self.views_held(&start)? {
                    return Ok(Some(start));
                }
            }
        }
        Ok(None)
    }

    /// Enters every later epoch the newest signed entry of the newest
    /// epoch's system core names, with the signing keys it names: the old
    /// indexers' quorum vouches for them (see [`crate::checkpoint`]).
    fn enter_signed_epochs(&mut self) -> Result<()> {
        loop {
            let entered = self.signed.epochs();
            let Some(entry) = self.newest_signed_entry()? else {
                return Ok(());
            };
            let epochs = &entry.frontier.epochs;
            for (epoch, (set, signers)) in epochs.iter().zip(&entry.signers).enumerate() {
                let epoch = epoch as u64 + 1;
                if epoch == self.signed.epochs() {
                    self.signed.enter(epoch, set, signers)?;
                }
            }
            if self.signed.epochs() == entered {
                return Ok(());
            }
        }
    }

    /// The newest signed entry of the newest epoch's system core.
    fn newest_signed_entry(&self) -> Result<Option<SystemEntry>> {
        let Some(system) = self.signed.system() else {
            return Ok(None);
        };
        let signed = system.info()?.signed_length;
        match signed.checked_sub(1) {
            Some(last) if system.has(last)? => Ok(SystemEntry::decode(&system.get(last)?).ok()),
            _ => Ok(None),
        }
    }

    /// Of view `i`'s signed cores (newest epoch first), one signed and
    /// stored here up to `length`.
    fn signed_view_holding(&self, i: usize, length: u64) -> Result<Option<&Core>> {
        for epoch in (0..self.signed.epochs()).rev() {
            let Some(core) = self.signed.core_at(epoch, i) else {
                continue;
            };
            if core.info()?.signed_length >= length && core.has_range(0..length)? {
                return Ok(Some(core));
            }
        }
        Ok(None)
    }

    /// Whether every view has a signed core signed and stored here up to
    /// the length `start` names.
    fn views_held(&self, start: &Start) -> Result<bool> {
        for (i, (name, _)) in self.views.iter().enumerate() {
            let (length, _) = start.view(name);
            if length > 0 && self.signed_view_holding(i, length)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Makes the views the signed state `start` names and starts the base
    /// from it. The record goes first (see `undo.rs`): it is emptied before
    /// the views change and names the start once they hold it.
    fn jump(&mut self, start: &Start) -> Result<()> {
        self.record.restart(None)?;
        for i in 0..self.views.len() {
            self.adopt_view(i, start)?;
        }
        self.record.restart(Some(start))?;
        self.restart(Some(start.clone()))
    }

    /// Makes view `i` its signed core's first entries up to the length
    /// `start` names: what the view already holds of them is kept, the
    /// rest copied; the result is checked against the entry's tree hash.
    fn adopt_view(&mut self, i: usize, start: &Start) -> Result<()> {
        let Some((name, working)) = self.views.get(i) else {
            return Ok(());
        };
        let (length, expected) = start.view(name);
        let Some(signed) = self.signed_view_holding(i, length)? else {
            return Ok(());
        };
        let keep = common_prefix(working, signed, length)?;
        truncate_view(working, keep)?;
        let mut at = keep;
        while at < length {
            let end = length.min(at + COPY_CHUNK);
            let blocks = signed
                .blocks(at..end)?
                .map(|b| b.map(|(_, block)| block))
                .collect::<hyper_core::Result<Vec<_>>>()?;
            working.append_batch(&blocks)?;
            at = end;
        }
        let found = tree_hashes(working, &[length])?
            .first()
            .copied()
            .unwrap_or_default();
        if found != expected {
            return Err(Error::SignedStateMismatch {
                entry: start.index,
                view: name.clone(),
                length,
                expected: blake3::Hash::from(expected).to_hex().to_string(),
                found: blake3::Hash::from(found).to_hex().to_string(),
            });
        }
        Ok(())
    }

    /// Starts the base's order again at `start` (`None`: at the beginning):
    /// a linearizer from its frontier, its membership, a system follower
    /// after it, every writer it names opened and none of their nodes read
    /// yet, nothing applied. The views must hold the start's state.
    pub(super) fn restart(&mut self, start: Option<Start>) -> Result<()> {
        let mut writers: Vec<CoreKey> = match &start {
            Some(s) => {
                self.lin = Linearizer::from_frontier(&self.indexers, &s.entry.frontier)?;
                self.system = SystemFollower::from_entry(&self.indexers, &s.entry, s.index);
                // Pending indexers count from their next indexed batch.
                self.pending = s
                    .entry
                    .members
                    .iter()
                    .filter(|m| m.pending)
                    .map(|m| {
                        let length = s
                            .entry
                            .frontier
                            .writers
                            .iter()
                            .find(|w| w.key == m.key)
                            .map_or(0, |w| w.length);
                        (m.key, length)
                    })
                    .collect();
                let watched: Vec<CoreKey> = self.pending.keys().copied().collect();
                self.lin.watch(&watched);
                self.roles = s
                    .entry
                    .members
                    .iter()
                    .filter(|m| !m.removed && ((m.indexer && !m.leaving) || m.pending))
                    .map(|m| m.key)
                    .collect();
                s.entry.frontier.writers.iter().map(|w| w.key).collect()
            }
            None => {
                self.lin = Linearizer::new(&self.indexers)?;
                self.system = SystemFollower::new(self.key, &self.indexers);
                self.pending.clear();
                self.roles = self.indexers.iter().copied().collect();
                Vec::new()
            }
        };
        // The application may change the indexers in any batch: each
        // commit waits until the base has applied it (`Base::update`).
        self.lin.confirm_each_commit();
        // The membership at the start is what the follower starts from
        // (it always holds the first writer).
        self.members = self.system.members().clone();
        writers.extend(self.members.keys().copied());
        writers.sort_unstable();
        writers.dedup();
        self.writers.clear();
        self.applied.clear();
        self.resume.clear();
        self.resumed = 0;
        self.start = start;
        for key in writers {
            self.open_writer(key)?;
        }
        Ok(())
    }

    /// Gives the linearizer the nodes below the frontier that waiting
    /// batches name, as far as the writer cores hold them (each one given
    /// may let more batches in, naming more). A block that is not a valid
    /// node makes its writer faulty.
    pub(super) fn provide_missing(&mut self) -> Result<()> {
        loop {
            let mut gave = false;
            for head in self.lin.missing() {
                let Some(w) = self.writers.get_mut(&head.writer) else {
                    continue;
                };
                if w.fault.is_some() || !w.core.has(head.length)? {
                    continue;
                }
                let node = w.core.get(head.length)?;
                match Node::decode(&node)
                    .and_then(|node| self.lin.provide(&head.writer, head.length, &node))
                {
                    Ok(()) => gave = true,
                    Err(e) => w.fault = Some(e.to_string()),
                }
            }
            if !gave {
                return Ok(());
            }
        }
    }

    /// The blocks of other writers' cores this base needs to go on and
    /// does not hold: each writer's header (block 0) while it is not here,
    /// every node after those read, and the nodes below a fast-forward's
    /// frontier that waiting batches name. After a fast-forward this is
    /// all a sync fetches of the history; without one it is every writer
    /// core whole.
    pub fn needed(&self) -> Result<Vec<Needed>> {
        let me = self.writer_key();
        let mut out = Vec::new();
        for (key, w) in &self.writers {
            if Some(*key) == me || w.fault.is_some() {
                continue;
            }
            if !w.header_checked && !w.core.has(0)? {
                out.push(Needed {
                    core: *key,
                    start: 0,
                    end: Some(1),
                });
            }
            out.push(Needed {
                core: *key,
                start: self.lin.pushed(key) + 1,
                end: None,
            });
        }
        for head in self.lin.missing() {
            if let Some(w) = self.writers.get(&head.writer)
                && !w.core.has(head.length)?
            {
                out.push(Needed {
                    core: head.writer,
                    start: head.length,
                    end: Some(head.length + 1),
                });
            }
        }
        Ok(out)
    }

    /// The keys of the base's signed cores in every indexer epoch this
    /// store knows of (per epoch, each view's, then the system core's):
    /// what a peer fetches to fast-forward. A signed system entry that
    /// names a later epoch adds that epoch's cores (see
    /// [`crate::checkpoint`]): fetch again until no new key appears.
    pub fn signed_cores(&self) -> Vec<CoreKey> {
        self.signed.keys()
    }
}

/// How many first entries `working` and `signed` share, at most `length`
/// (a tree's hash at a length names every entry before it, so the lengths
/// where the two agree are a prefix of `0..=length`). A hash that cannot
/// be read (tree nodes not stored) counts as a disagreement.
fn common_prefix(working: &Core, signed: &Core, length: u64) -> Result<u64> {
    let same = |n: u64| -> bool {
        match (tree_hashes(working, &[n]), tree_hashes(signed, &[n])) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    };
    let top = working.info()?.length.min(length);
    if top == 0 || same(top) {
        return Ok(top);
    }
    // `lo` agrees, `hi` does not.
    let (mut lo, mut hi) = (0, top);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if same(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
