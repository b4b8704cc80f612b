//! Following the indexed prefix into the system core: one entry per
//! leader commit that indexed a value, built from the linearizer's commits
//! and the applied batches, the same bytes on every peer.

use std::collections::BTreeMap;

use hyper_core::{Core, CoreKey};

use super::{Member, SystemEntry, ViewState};
use crate::error::{Error, Result};
use crate::linearizer::Linearizer;
use crate::undo::Applied;

/// What a base keeps to write its system entries: the membership of the
/// indexed prefix as far as it was folded, and how far the linearizer's
/// commits were looked at.
pub(crate) struct SystemFollower {
    indexers: Vec<CoreKey>,
    /// The membership after the first `folded` applied batches (`false`:
    /// removed).
    members: BTreeMap<CoreKey, bool>,
    folded: usize,
    /// How many of the linearizer's commits were looked at.
    seen: usize,
    /// How many entries those commits give.
    entries: u64,
}

impl SystemFollower {
    /// A follower for a base whose first writer is `first` and whose
    /// indexers are `indexers`: they are the members before any batch.
    pub(crate) fn new(first: CoreKey, indexers: &[CoreKey]) -> Self {
        SystemFollower {
            indexers: indexers.to_vec(),
            members: indexers
                .iter()
                .chain([&first])
                .map(|k| (*k, true))
                .collect(),
            folded: 0,
            seen: 0,
            entries: 0,
        }
    }

    /// A follower for a base whose order starts after `entry`, entry
    /// `index` of the system core (the base fast-forwarded to it): its
    /// members are the entry's, and the next entry written is `index + 1`.
    pub(crate) fn from_entry(indexers: &[CoreKey], entry: &SystemEntry, index: u64) -> Self {
        SystemFollower {
            indexers: indexers.to_vec(),
            members: entry.members.iter().map(|m| (m.key, !m.removed)).collect(),
            folded: 0,
            seen: 0,
            entries: index + 1,
        }
    }

    /// The membership after the batches folded so far (at the start: the
    /// base's first members, or the entry's).
    pub(crate) fn members(&self) -> &BTreeMap<CoreKey, bool> {
        &self.members
    }

    /// Appends to the system core `core` (in one append, as an unsigned
    /// tail) the entry of each commit of `lin` that indexed a value, whose
    /// batches are all in `applied` (the base's applied batches, views
    /// `views` in the base's order) and that `core` does not hold yet.
    /// Entries are a function of the indexed prefix alone: a writer known
    /// only through batches after the commit is in no entry.
    pub(crate) fn follow(
        &mut self,
        lin: &Linearizer,
        applied: &[Applied],
        views: &[(String, Core)],
        core: &Core,
    ) -> Result<()> {
        let have = core.info()?.length;
        let mut blocks = Vec::new();
        while let Some(commit) = lin.commits().get(self.seen) {
            let held = commit
                .batches
                .checked_sub(lin.skipped())
                .and_then(|h| usize::try_from(h).ok())
                .ok_or(Error::Malformed(
                    "a commit before the linearizer's frontier",
                ))?;
            if held > applied.len() {
                // Not applied yet (a round stopped early, or apply failed).
                break;
            }
            let i = self.seen;
            self.seen += 1;
            if !commit.values {
                continue;
            }
            self.entries += 1;
            if self.entries <= have {
                continue;
            }
            let entry = self.entry(lin, i, applied, held, views)?;
            entry.validate()?;
            blocks.push(entry.encode());
        }
        if !blocks.is_empty() {
            core.append_unsigned(&blocks)?;
        }
        Ok(())
    }

    /// The entry of commit `i`, after which the first `held` applied
    /// batches are indexed.
    fn entry(
        &mut self,
        lin: &Linearizer,
        i: usize,
        applied: &[Applied],
        held: usize,
        views: &[(String, Core)],
    ) -> Result<SystemEntry> {
        for a in applied.get(self.folded..held).unwrap_or_default() {
            for c in &a.changes {
                self.members.insert(c.key, c.after);
            }
        }
        self.folded = self.folded.max(held);
        let mut frontier = lin
            .frontier_at_commit(i)
            .ok_or(Error::Malformed("a commit the linearizer does not hold"))?;
        // Writers the linearizer knows only through later batches (added
        // by an optimistic batch, say) are no part of this prefix.
        frontier
            .writers
            .retain(|w| w.length > 0 || self.members.contains_key(&w.key));
        let members = self
            .members
            .iter()
            .map(|(key, member)| Member {
                key: *key,
                indexer: self.indexers.contains(key),
                removed: !member,
            })
            .collect();
        let last = held
            .checked_sub(1)
            .and_then(|b| applied.get(b))
            .ok_or(Error::Malformed("a commit indexed no batch"))?;
        if last.lengths.len() != views.len() || last.hashes.len() != views.len() {
            return Err(Error::Malformed(
                "an applied batch's view lengths or hashes are not all known",
            ));
        }
        let mut views: Vec<ViewState> = views
            .iter()
            .zip(last.lengths.iter().zip(&last.hashes))
            .map(|((name, _), (length, hash))| ViewState {
                name: name.clone(),
                length: *length,
                tree_hash: *hash,
            })
            .collect();
        views.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        views.dedup_by(|a, b| a.name == b.name);
        Ok(SystemEntry {
            frontier,
            members,
            views,
        })
    }
}
