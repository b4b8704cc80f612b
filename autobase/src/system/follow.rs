//! Following the indexed prefix into the system core: one entry per
//! leader commit that indexed a value or changed the indexers, built from
//! the linearizer's commits and the applied batches, the same bytes on
//! every peer.

use std::collections::BTreeMap;

use hyper_core::{Core, CoreKey, PublicKey};

use super::{Member, SystemEntry, ViewState};
use crate::error::{Error, Result};
use crate::host::Role;
use crate::linearizer::Linearizer;
use crate::undo::Applied;

/// What a base keeps to write its system entries: the membership of the
/// indexed prefix as far as it was folded, and how far the linearizer's
/// commits were looked at.
pub(crate) struct SystemFollower {
    /// The base's first indexers (epoch 0's).
    first_indexers: Vec<CoreKey>,
    /// The membership after the first `folded` applied batches.
    members: BTreeMap<CoreKey, Role>,
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
        let mut members: BTreeMap<CoreKey, Role> = [(first, Role::Writer)].into();
        members.extend(indexers.iter().map(|k| (*k, Role::Indexer)));
        SystemFollower {
            first_indexers: indexers.to_vec(),
            members,
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
            first_indexers: indexers.to_vec(),
            members: entry
                .members
                .iter()
                .map(|m| {
                    (
                        m.key,
                        Role::of(!m.removed, !m.removed && (m.indexer || m.pending)),
                    )
                })
                .collect(),
            folded: 0,
            seen: 0,
            entries: index + 1,
        }
    }

    /// The membership after the batches folded so far (at the start: the
    /// base's first members, or the entry's).
    pub(crate) fn members(&self) -> &BTreeMap<CoreKey, Role> {
        &self.members
    }

    /// Takes the membership changes of the applied batches up to `held`.
    fn fold(&mut self, applied: &[Applied], held: usize) {
        for a in applied.get(self.folded..held).unwrap_or_default() {
            for c in &a.changes {
                self.members.insert(c.key, c.after);
            }
        }
        self.folded = self.folded.max(held);
    }

    /// The entries, encoded, of each commit of `lin` that indexed a value or changed the indexers,
    /// whose batches are all in `applied` (the base's applied batches,
    /// views `views` in the base's order) and that the system log does
    /// not hold yet (it holds `have` entries), as far as `signers` gives
    /// the signing keys of the epochs they name (`None`: not known yet):
    /// the next entries to append, numbered from `have` on. Entries are a
    /// function of the indexed prefix alone: a writer known only through
    /// batches after the commit is in no entry. Also, for each commit
    /// after which the indexers changed, its epoch and how many entries
    /// the log holds through its entry (where that epoch's system core
    /// stops).
    #[allow(clippy::type_complexity)]
    pub(crate) fn follow(
        &mut self,
        lin: &Linearizer,
        applied: &[Applied],
        views: &[(String, Core)],
        have: u64,
        signers: impl Fn(u64) -> Option<Vec<PublicKey>>,
    ) -> Result<(Vec<Vec<u8>>, Vec<(u64, u64)>)> {
        let mut blocks = Vec::new();
        let mut ends = Vec::new();
        while let Some(commit) = lin.commits().get(self.seen) {
            let held = commit
                .batches
                .checked_sub(lin.skipped())
                .and_then(|h| usize::try_from(h).ok())
                .ok_or(Error::Malformed(
                    "a commit before the linearizer's frontier",
                ))?;
            if held > applied.len() || (lin.awaiting() && self.seen + 1 == lin.commits().len()) {
                // Not applied yet (a round stopped early, or apply failed),
                // or its indexers not confirmed yet.
                break;
            }
            let i = self.seen;
            if !commit.values && !commit.switches {
                self.seen += 1;
                continue;
            }
            if self.entries + 1 > have {
                let Some(entry) = self.entry(lin, i, applied, held, views, &signers)? else {
                    // An epoch's signing keys are not known yet.
                    break;
                };
                entry.validate()?;
                blocks.push(entry.encode());
            }
            self.seen += 1;
            self.entries += 1;
            if commit.switches {
                ends.push((commit.epoch, self.entries));
            }
        }
        Ok((blocks, ends))
    }

    /// The entry of commit `i`, after which the first `held` applied
    /// batches are indexed (`None` while `signers` lacks an epoch's keys).
    fn entry(
        &mut self,
        lin: &Linearizer,
        i: usize,
        applied: &[Applied],
        held: usize,
        views: &[(String, Core)],
        signers: &impl Fn(u64) -> Option<Vec<PublicKey>>,
    ) -> Result<Option<SystemEntry>> {
        let mut frontier = lin
            .frontier_at_commit(i)
            .ok_or(Error::Malformed("a commit the linearizer does not hold"))?;
        let Some(keys) = (1..=frontier.epochs.len() as u64)
            .map(signers)
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        self.fold(applied, held);
        // Writers the linearizer knows only through later batches (added
        // by an optimistic batch, say) are no part of this prefix.
        frontier
            .writers
            .retain(|w| w.length > 0 || self.members.contains_key(&w.key));
        // Who counts is the frontier's epoch's set; an indexer by role
        // outside it is pending, and one that left but still counts (no
        // other had joined yet) is flagged an indexer too.
        let active = frontier.epochs.last().unwrap_or(&self.first_indexers);
        let members = self
            .members
            .iter()
            .map(|(key, role)| {
                let indexer = active.contains(key);
                Member {
                    key: *key,
                    indexer,
                    removed: *role == Role::Removed,
                    pending: *role == Role::Indexer && !indexer,
                    leaving: indexer && *role != Role::Indexer,
                }
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
        Ok(Some(SystemEntry {
            frontier,
            members,
            views,
            signers: keys,
        }))
    }
}
