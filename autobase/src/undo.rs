//! The undo log: a local record of the batches a base applied to its
//! working views, in order, with the views' lengths after each and the
//! membership changes each made. It lets a reopened base resume from its
//! stored views instead of rebuilding them, and roll them back on a
//! reorder.
//!
//! The record is a local core of this store (`autobase BASEKEY undo`)
//! written only to its unsigned tail (no signature per commit, and never
//! served to peers): block 0 names the views, block `i + 1` is applied
//! batch `i`. It is kept a prefix of what the views hold by the order of
//! the commits (redb commits in order, and a crash loses a suffix of
//! them): entries are appended only after the view entries they describe
//! are written, and the record is truncated before the views are. So every
//! recorded batch is in the views; the views may hold more (a crash after
//! their append), which [`Record::open`] truncates. Each entry also holds
//! the views' tree hashes after it, and the newest entry's hashes are
//! checked against the views at open: a record that does not decode, names
//! other views, or does not match the views is dropped and the views are
//! rebuilt from the writer cores (never wrong views, at worst a slow open).

use hyper_core::{Core, CoreKey, Store};

use crate::error::Result;
use crate::linearizer::Batch;

/// What block 0 of the record says, besides the view names.
const FORMAT: &str = "hyper-autobase undo log 1";

/// Which batch an entry is: its writer, its place in the writer's log and a
/// hash of its values, so a batch read again at reopen is matched only if
/// it is the same batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchId {
    writer: CoreKey,
    start: u64,
    values: [u8; 32],
}

impl BatchId {
    /// The id of `batch`.
    pub(crate) fn of(batch: &Batch) -> Self {
        let mut h = blake3::Hasher::new();
        for v in &batch.values {
            match v {
                Some(v) => {
                    h.update(&[1]);
                    h.update(&(v.len() as u64).to_le_bytes());
                    h.update(v);
                }
                None => {
                    h.update(&[0]);
                }
            }
        }
        BatchId {
            writer: batch.writer,
            start: batch.start,
            values: *h.finalize().as_bytes(),
        }
    }
}

/// One membership change: the writer, what it was before (`None`: not
/// known to the base) and what it became (member or removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) key: CoreKey,
    pub(crate) before: Option<bool>,
    pub(crate) after: bool,
}

/// One applied batch: which it was, the views' lengths and tree hashes
/// after it, and the membership changes it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Applied {
    pub(crate) batch: BatchId,
    pub(crate) lengths: Vec<u64>,
    pub(crate) hashes: Vec<[u8; 32]>,
    pub(crate) changes: Vec<Change>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct HeaderMsg {
    #[prost(string, tag = "1")]
    format: String,
    #[prost(string, repeated, tag = "2")]
    views: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct EntryMsg {
    #[prost(bytes = "vec", tag = "1")]
    writer: Vec<u8>,
    #[prost(uint64, tag = "2")]
    start: u64,
    #[prost(bytes = "vec", tag = "3")]
    values: Vec<u8>,
    #[prost(uint64, repeated, tag = "4")]
    lengths: Vec<u64>,
    #[prost(bytes = "vec", repeated, tag = "5")]
    hashes: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "6")]
    changes: Vec<ChangeMsg>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ChangeMsg {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bool, optional, tag = "2")]
    before: Option<bool>,
    #[prost(bool, tag = "3")]
    after: bool,
}

impl Applied {
    fn encode(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&EntryMsg {
            writer: self.batch.writer.0.to_vec(),
            start: self.batch.start,
            values: self.batch.values.to_vec(),
            lengths: self.lengths.clone(),
            hashes: self.hashes.iter().map(|h| h.to_vec()).collect(),
            changes: self
                .changes
                .iter()
                .map(|c| ChangeMsg {
                    key: c.key.0.to_vec(),
                    before: c.before,
                    after: c.after,
                })
                .collect(),
        })
    }

    /// Decodes an entry of a base with `views` views; `None` if it is not
    /// one.
    fn decode(block: &[u8], views: usize) -> Option<Self> {
        let m = <EntryMsg as prost::Message>::decode(block).ok()?;
        if m.lengths.len() != views || m.hashes.len() != views {
            return None;
        }
        Some(Applied {
            batch: BatchId {
                writer: CoreKey::from_slice(&m.writer)?,
                start: m.start,
                values: m.values.try_into().ok()?,
            },
            lengths: m.lengths,
            hashes: m
                .hashes
                .into_iter()
                .map(|h| h.try_into().ok())
                .collect::<Option<_>>()?,
            changes: m
                .changes
                .into_iter()
                .map(|c| {
                    Some(Change {
                        key: CoreKey::from_slice(&c.key)?,
                        before: c.before,
                        after: c.after,
                    })
                })
                .collect::<Option<_>>()?,
        })
    }
}

/// The hashes of `core`'s tree at each of `lengths` (its roots), read in
/// one transaction.
pub(crate) fn tree_hashes(core: &Core, lengths: &[u64]) -> Result<Vec<[u8; 32]>> {
    let roots = core.roots_at(lengths)?;
    Ok(lengths
        .iter()
        .zip(roots)
        .map(|(length, roots)| {
            let mut h = blake3::Hasher::new();
            h.update(&length.to_le_bytes());
            for root in roots {
                h.update(&root.index.to_le_bytes());
                h.update(&root.size.to_le_bytes());
                h.update(root.hash.as_bytes());
            }
            *h.finalize().as_bytes()
        })
        .collect())
}

/// The undo log of one base, as stored (see the module docs).
pub(crate) struct Record {
    core: Core,
    /// Entries in the core (blocks after the header).
    recorded: usize,
}

impl Record {
    /// Opens the record of base `base` whose views are `views` (name and
    /// working core, in the base's order) and returns it with the entries
    /// the views hold, oldest first; the views are truncated to the newest
    /// entry's lengths. A missing, unreadable or mismatched record is
    /// replaced by an empty one and the views are emptied: the base
    /// rebuilds them.
    pub(crate) fn open(
        store: &Store,
        base: &CoreKey,
        views: &[(String, Core)],
    ) -> Result<(Self, Vec<Applied>)> {
        let core = store.named(&format!("autobase {base} undo"))?;
        let header = prost::Message::encode_to_vec(&HeaderMsg {
            format: FORMAT.to_string(),
            views: views.iter().map(|(n, _)| n.clone()).collect(),
        });
        let mut record = Record { core, recorded: 0 };
        match record.read(&header, views)? {
            Some(entries) => {
                record.recorded = entries.len();
                Ok((record, entries))
            }
            None => {
                // The record goes first, then the views (see the module docs).
                if record.core.info()?.length > 0 {
                    record.core.truncate(0)?;
                }
                record.core.append_unsigned(&[header])?;
                for (_, view) in views {
                    truncate_view(view, 0)?;
                }
                Ok((record, Vec::new()))
            }
        }
    }

    /// The stored entries, if the record has `header` and its newest entry
    /// matches the views; the views are cut to that entry's lengths (what
    /// they hold past it is described by no entry).
    fn read(&self, header: &[u8], views: &[(String, Core)]) -> Result<Option<Vec<Applied>>> {
        let length = self.core.info()?.length;
        if length == 0 || self.core.get(0)? != header {
            return Ok(None);
        }
        let mut entries = Vec::new();
        for block in self.core.blocks(1..length)? {
            let Ok((_, block)) = block else {
                return Ok(None);
            };
            match Applied::decode(&block, views.len()) {
                Some(a) => entries.push(a),
                None => return Ok(None),
            }
        }
        let zero = [0; 32];
        for (i, (_, view)) in views.iter().enumerate() {
            let last = entries.last();
            let length = last.and_then(|a| a.lengths.get(i)).copied().unwrap_or(0);
            let hash = last.and_then(|a| a.hashes.get(i)).unwrap_or(&zero);
            if view.info()?.length < length {
                return Ok(None);
            }
            // A tree's hash is known at its length (the core keeps no
            // signed state below it), so the view is cut first.
            truncate_view(view, length)?;
            if last.is_some() && tree_hashes(view, &[length])?.first() != Some(hash) {
                return Ok(None);
            }
        }
        Ok(Some(entries))
    }

    /// Drops the entries from `keep` on. Call it before the views lose
    /// what those entries describe.
    pub(crate) fn truncate(&mut self, keep: usize) -> Result<()> {
        if keep < self.recorded {
            self.core.truncate(keep as u64 + 1)?;
            self.recorded = keep;
        }
        Ok(())
    }

    /// Appends the entries of `applied` not recorded yet (in one commit, to
    /// the unsigned tail) when there are at least `lag` of them. Call it
    /// once the views hold what they describe.
    pub(crate) fn extend(&mut self, applied: &[Applied], lag: usize) -> Result<()> {
        let Some(new) = applied
            .get(self.recorded..)
            .filter(|n| !n.is_empty() && n.len() >= lag)
        else {
            return Ok(());
        };
        let blocks: Vec<Vec<u8>> = new.iter().map(Applied::encode).collect();
        self.core.append_unsigned(&blocks)?;
        self.recorded = applied.len();
        Ok(())
    }
}

/// Truncates `view` to `length` when it is longer.
pub(crate) fn truncate_view(view: &Core, length: u64) -> Result<()> {
    if view.info()?.length > length {
        view.truncate(length)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_a_damaged_one_is_refused() {
        let a = Applied {
            batch: BatchId {
                writer: CoreKey([7; 32]),
                start: 3,
                values: [9; 32],
            },
            lengths: vec![4, 0],
            hashes: vec![[1; 32], [2; 32]],
            changes: vec![Change {
                key: CoreKey([8; 32]),
                before: None,
                after: true,
            }],
        };
        let block = a.encode();
        assert_eq!(Applied::decode(&block, 2), Some(a));
        assert_eq!(Applied::decode(&block, 3), None, "another view count");
        assert_eq!(Applied::decode(&block[..block.len() - 1], 2), None);
    }
}
