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
//!
//! A base that fast-forwarded to a quorum-signed [`SystemEntry`] holds no
//! batch of the order before it: block 0 then also holds that entry (and
//! its place in the system core), the start the entries count from, and
//! with no entry after it the views are checked against the entry's view
//! states instead.

use hyper_core::{Core, CoreKey, Store};

use crate::error::Result;
use crate::host::Role;
use crate::linearizer::Batch;
use crate::system::SystemEntry;

/// What block 0 of the record says, besides the view names.
const FORMAT: &str = "hyper-autobase undo log 1";

/// Where a base's order starts: the quorum-signed system entry it
/// fast-forwarded to, and that entry's place in the system core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub(crate) entry: SystemEntry,
    pub(crate) index: u64,
}

impl Start {
    /// View `name`'s length and tree hash at the start (a view the entry
    /// does not name: empty).
    pub(crate) fn view(&self, name: &str) -> (u64, [u8; 32]) {
        self.entry
            .views
            .iter()
            .find(|v| v.name == name)
            .map_or((0, empty_tree_hash()), |v| (v.length, v.tree_hash))
    }
}

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
/// known to the base) and what it became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) key: CoreKey,
    pub(crate) before: Option<Role>,
    pub(crate) after: Role,
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
    /// The system entry the order starts after (fast-forward), encoded.
    #[prost(bytes = "vec", optional, tag = "3")]
    start: Option<Vec<u8>>,
    /// Its index in the system core.
    #[prost(uint64, tag = "4")]
    start_index: u64,
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
    /// Whether it was an indexer before (only with `before`).
    #[prost(bool, tag = "4")]
    before_indexer: bool,
    /// Whether it became one.
    #[prost(bool, tag = "5")]
    after_indexer: bool,
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
                    before: c.before.map(Role::is_writer),
                    after: c.after.is_writer(),
                    before_indexer: c.before == Some(Role::Indexer),
                    after_indexer: c.after == Role::Indexer,
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
                        before: c.before.map(|w| Role::of(w, c.before_indexer)),
                        after: Role::of(c.after, c.after_indexer),
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

/// The tree hash of an empty core (what [`tree_hashes`] gives at length 0).
fn empty_tree_hash() -> [u8; 32] {
    *blake3::hash(&0u64.to_le_bytes()).as_bytes()
}

/// The undo log of one base, as stored (see the module docs).
pub(crate) struct Record {
    core: Core,
    /// Entries in the core (blocks after the header).
    recorded: usize,
    /// The view names, in the base's order.
    views: Vec<String>,
}

/// What [`Record::open`] found: the record, the entries the views hold
/// (oldest first) and where the order starts.
pub(crate) type Opened = (Record, Vec<Applied>, Option<Start>);

impl Record {
    /// Opens the record of base `base` whose views are `views` (name and
    /// working core, in the base's order) and returns it with the entries
    /// the views hold, oldest first; the views are truncated to the newest
    /// entry's lengths. A missing, unreadable or mismatched record is
    /// replaced by an empty one and the views are emptied: the base
    /// rebuilds them.
    pub(crate) fn open(store: &Store, base: &CoreKey, views: &[(String, Core)]) -> Result<Opened> {
        let core = store.named(&format!("autobase {base} undo"))?;
        let mut record = Record {
            core,
            recorded: 0,
            views: views.iter().map(|(n, _)| n.clone()).collect(),
        };
        match record.read(views)? {
            Some((entries, start)) => {
                record.recorded = entries.len();
                Ok((record, entries, start))
            }
            None => {
                record.restart(None)?;
                for (_, view) in views {
                    truncate_view(view, 0)?;
                }
                Ok((record, Vec::new(), None))
            }
        }
    }

    /// Block 0 for an order starting at `start`.
    fn header(&self, start: Option<&Start>) -> Vec<u8> {
        prost::Message::encode_to_vec(&HeaderMsg {
            format: FORMAT.to_string(),
            views: self.views.clone(),
            start: start.map(|s| s.entry.encode()),
            start_index: start.map_or(0, |s| s.index),
        })
    }

    /// Empties the record and starts it again at `start` (`None`: the
    /// beginning of the order). The record goes first, then the views (see
    /// the module docs): call it before the views change, and once more
    /// when they hold the start's state.
    pub(crate) fn restart(&mut self, start: Option<&Start>) -> Result<()> {
        if self.core.info()?.length > 0 {
            self.core.truncate(0)?;
        }
        self.core.append_unsigned(&[self.header(start)])?;
        self.recorded = 0;
        Ok(())
    }

    /// The stored entries and start, if the record names these views and
    /// its newest entry (or, with none, its start) matches the views; the
    /// views are cut to that entry's lengths (what they hold past it is
    /// described by no entry).
    fn read(&self, views: &[(String, Core)]) -> Result<Option<(Vec<Applied>, Option<Start>)>> {
        let length = self.core.info()?.length;
        if length == 0 {
            return Ok(None);
        }
        let Ok(header) = <HeaderMsg as prost::Message>::decode(self.core.get(0)?.as_slice()) else {
            return Ok(None);
        };
        if header.format != FORMAT || header.views != self.views {
            return Ok(None);
        }
        let start = match header.start {
            Some(bytes) => match SystemEntry::decode(&bytes) {
                Ok(entry) => Some(Start {
                    entry,
                    index: header.start_index,
                }),
                Err(_) => return Ok(None),
            },
            None => None,
        };
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
        for (i, (name, view)) in views.iter().enumerate() {
            let (length, hash) = match entries.last() {
                Some(a) => match (a.lengths.get(i), a.hashes.get(i)) {
                    (Some(l), Some(h)) => (*l, *h),
                    _ => return Ok(None),
                },
                None => match &start {
                    Some(s) => s.view(name),
                    None => (0, empty_tree_hash()),
                },
            };
            if view.info()?.length < length {
                return Ok(None);
            }
            // A tree's hash is known at its length (the core keeps no
            // signed state below it), so the view is cut first.
            truncate_view(view, length)?;
            if tree_hashes(view, &[length])?.first() != Some(&hash) {
                return Ok(None);
            }
        }
        Ok(Some((entries, start)))
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
            changes: vec![
                Change {
                    key: CoreKey([8; 32]),
                    before: None,
                    after: Role::Indexer,
                },
                Change {
                    key: CoreKey([9; 32]),
                    before: Some(Role::Indexer),
                    after: Role::Writer,
                },
                Change {
                    key: CoreKey([10; 32]),
                    before: Some(Role::Writer),
                    after: Role::Removed,
                },
            ],
        };
        let block = a.encode();
        assert_eq!(Applied::decode(&block, 2), Some(a));
        assert_eq!(Applied::decode(&block, 3), None, "another view count");
        assert_eq!(Applied::decode(&block[..block.len() - 1], 2), None);
    }

    #[test]
    fn the_empty_tree_hash_is_what_an_empty_core_gives() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let core = store.named("empty").expect("core");
        assert_eq!(
            tree_hashes(&core, &[0]).expect("hashes"),
            vec![empty_tree_hash()]
        );
    }
}
