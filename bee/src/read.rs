//! Reads that go one result at a time: [`Bee::range_iter`],
//! [`Bee::history_iter`] and [`Bee::diff_iter`] over local blocks.

use std::sync::Arc;

use crate::bee::{Bee, Change, Item, RangeOptions};
use crate::diff::{DiffWalk, Difference};
use crate::error::{Error, Result};
use crate::messages::Entry;
use crate::tree::{self, EntrySource};
use crate::walk::{HistoryWalk, Iter, RangeWalk};

/// Which writes a history read returns (see [`Bee::history_iter`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryOptions {
    /// The first sequence number (0 and 1 both start at the first write).
    pub start: u64,
    /// The end (exclusive); `None`: the view's version. Clamped to it.
    pub end: Option<u64>,
    /// Newest first.
    pub reverse: bool,
    /// At most this many writes.
    pub limit: Option<usize>,
}

impl Bee {
    /// The entry in block `seq` if it is stored here (cached or local),
    /// without an error for one that is not.
    pub(crate) fn local_entry(&self, seq: u64) -> Option<Arc<Entry>> {
        self.entry(seq).ok()
    }

    /// The write in block `seq` (its key, and its value or `None` for a
    /// deletion); `None` for block 0 (the header) and, in a sub-database,
    /// for a write of a key outside it. [`Error::NoSuchVersion`] at or past
    /// this view's version.
    pub fn get_by_seq(&self, seq: u64) -> Result<Option<Change>> {
        let version = self.version()?;
        if seq >= version {
            return Err(Error::NoSuchVersion {
                version: seq,
                length: version,
            });
        }
        if seq == 0 {
            return Ok(None);
        }
        Ok(Change::of(seq, &*self.entry(seq)?, &self.prefix))
    }

    /// [`Bee::get_by_seq`] on the bee's source (one block fetched if it is
    /// not here).
    pub async fn get_by_seq_async(&self, seq: u64) -> Result<Option<Change>> {
        self.fetching(|b| b.get_by_seq(seq)).await
    }

    /// The entries of the range one at a time, in key order (or reversed):
    /// the walk goes only as far as the items taken. On a sparse replica a
    /// block not stored here ends it with [`Error::Missing`].
    pub fn range_iter(&self, options: &RangeOptions) -> Result<Iter<Item>> {
        Ok(Iter::new(self.clone(), Box::new(self.range_walk(options)?)))
    }

    pub(crate) fn range_walk(&self, options: &RangeOptions) -> Result<RangeWalk> {
        let version = self.version()?;
        let root = tree::root_of(version);
        Ok(RangeWalk::new(
            root,
            self.full_range(options),
            self.prefix.len(),
            version,
        ))
    }

    /// The writes `options` selects, one at a time: oldest first (or
    /// newest first), in a sub-database only its keys' writes, at most
    /// `limit` of them.
    pub fn history_iter(&self, options: &HistoryOptions) -> Result<Iter<Change>> {
        Ok(Iter::new(
            self.clone(),
            Box::new(self.history_walk(options)?),
        ))
    }

    pub(crate) fn history_walk(&self, options: &HistoryOptions) -> Result<HistoryWalk> {
        let version = self.version()?;
        let end = options.end.unwrap_or(version).min(version);
        Ok(HistoryWalk::new(
            options.start,
            end,
            options.reverse,
            options.limit,
            self.prefix.clone(),
        ))
    }

    /// What changed from version `from` to this view's version within the
    /// key range of `options` (its bounds and limit; `reverse` is not
    /// supported and ignored), one key at a time in key order. Subtrees
    /// both versions share are skipped unread, and so are subtrees below
    /// the lower bound.
    pub fn diff_iter(&self, from: u64, options: &RangeOptions) -> Result<Iter<Difference>> {
        Ok(Iter::new(
            self.clone(),
            Box::new(self.diff_walk(from, options)?),
        ))
    }

    pub(crate) fn diff_walk(&self, from: u64, options: &RangeOptions) -> Result<DiffWalk> {
        let version = self.version()?;
        if from > version {
            return Err(Error::NoSuchVersion {
                version: from,
                length: version,
            });
        }
        let (old, new) = (tree::root_of(from), tree::root_of(version));
        let options = RangeOptions {
            reverse: false,
            ..self.full_range(options)
        };
        Ok(DiffWalk::new(old, new, options, self.prefix.len(), version))
    }
}
