//! Writing a drive: blob streams (content-defined chunks, deduplicated
//! through the chunk index), atomic batches of entries, and dropping local
//! bytes (`clear`, `clear_all`, `purge`).
//!
//! Order of durability: a file's blocks are appended to the blobs core
//! before its entry is written to the bee, so a crash at any point leaves
//! no entry pointing at bytes that are not there (at worst, blocks no entry
//! uses yet).

use std::collections::BTreeMap;
use std::ops::Range;

use hyper_bee::RangeOptions;
use prost::Message as _;

use crate::chunk::Chunker;
use crate::drive::Drive;
use crate::error::{Error, Result};
use crate::index::ChunkIndex;
use crate::layout::{self, Piece};
use crate::messages::{Contiguous, Entry, Kind, Location};
use crate::path::DrivePath;

/// Blocks of a write stream without dedup.
pub const BLOCK_SIZE: usize = 64 * 1024;
/// Chunk bytes buffered before they are appended in one batch.
const FLUSH_BYTES: usize = 4 << 20;

/// The metadata of a file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// Permission bits (0o644, 0o755, ...).
    pub mode: u32,
    /// Modification time, ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Free application metadata.
    pub metadata: Vec<u8>,
}

impl Default for FileMeta {
    /// 0o644, modified now.
    fn default() -> Self {
        FileMeta {
            mode: 0o644,
            mtime_ns: now_ns(),
            metadata: Vec::new(),
        }
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Content written to the blobs core, not yet named by any entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// Its size.
    pub size: u64,
    /// Its BLAKE3 hash.
    pub hash: [u8; 32],
    /// Where its bytes are.
    pub location: Option<Location>,
}

impl Content {
    /// A file entry for this content.
    pub fn entry(&self, meta: &FileMeta) -> Entry {
        Entry {
            kind: Kind::File as i32,
            mode: meta.mode & 0o7777,
            size: self.size,
            mtime_ns: meta.mtime_ns,
            hash: self.hash.to_vec(),
            location: self.location.clone(),
            target: String::new(),
            metadata: meta.metadata.clone(),
        }
    }
}

/// Streams bytes into the blobs core in bounded memory: cut into chunks
/// (content-defined with dedup, else fixed [`BLOCK_SIZE`] blocks), hashed,
/// appended in batches of a few MiB. [`WriteStream::finish`] returns the
/// [`Content`] to name in an entry.
pub struct WriteStream {
    drive: Drive,
    dedup: bool,
    chunker: Chunker,
    fixed: Vec<u8>,
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    pieces: Vec<Piece>,
    hasher: blake3::Hasher,
    size: u64,
}

impl WriteStream {
    pub(crate) fn new(drive: &Drive, dedup: bool) -> Result<WriteStream> {
        if !drive.writable()? {
            return Err(Error::ReadOnly);
        }
        Ok(WriteStream {
            drive: drive.clone(),
            dedup,
            chunker: Chunker::new(),
            fixed: Vec::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            pieces: Vec::new(),
            hasher: blake3::Hasher::new(),
            size: 0,
        })
    }

    /// Adds bytes to the content.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.size += data.len() as u64;
        let chunks = if self.dedup {
            self.chunker.push(data)
        } else {
            self.fixed.extend_from_slice(data);
            let mut out = Vec::new();
            while self.fixed.len() >= BLOCK_SIZE {
                let rest = self.fixed.split_off(BLOCK_SIZE);
                out.push(std::mem::replace(&mut self.fixed, rest));
            }
            out
        };
        for c in chunks {
            self.pending_bytes += c.len();
            self.pending.push(c);
        }
        if self.pending_bytes >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends the pending chunks (those already stored are referenced,
    /// not appended again).
    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let blobs = &self.drive.blobs;
        let mut guard = self.drive.index.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(ChunkIndex::load(blobs)?);
        }
        let Some(index) = guard.as_mut() else {
            return Ok(());
        };
        let mut fresh: Vec<&[u8]> = Vec::new();
        let mut fresh_hashes: Vec<[u8; 32]> = Vec::new();
        // Where each chunk goes: a stored block, or the i-th fresh one.
        let mut places: Vec<std::result::Result<u64, usize>> = Vec::new();
        for c in &chunks {
            let hash = *blake3::hash(c).as_bytes();
            let place = match index.find(blobs, &hash)? {
                Some(block) if self.dedup => Ok(block),
                _ => match fresh_hashes.iter().position(|h| *h == hash && self.dedup) {
                    Some(i) => Err(i),
                    None => {
                        fresh.push(c);
                        fresh_hashes.push(hash);
                        Err(fresh.len() - 1)
                    }
                },
            };
            places.push(place);
        }
        let first = if fresh.is_empty() {
            0
        } else {
            let length = blobs.append_batch(&fresh)?.length;
            let first = length - fresh.len() as u64;
            index.record(blobs, first, &fresh_hashes)?;
            first
        };
        for (c, place) in chunks.iter().zip(places) {
            self.pieces.push(Piece {
                block: place.unwrap_or_else(|i| first + i as u64),
                length: c.len() as u64,
            });
        }
        Ok(())
    }

    /// Appends what is left; the content written.
    pub fn finish(mut self) -> Result<Content> {
        let rest = if self.dedup {
            std::mem::take(&mut self.chunker).finish()
        } else {
            let last = std::mem::take(&mut self.fixed);
            if last.is_empty() {
                Vec::new()
            } else {
                vec![last]
            }
        };
        self.pending.extend(rest);
        self.flush()?;
        let location = self.location();
        Ok(Content {
            size: self.size,
            hash: *self.hasher.finalize().as_bytes(),
            location,
        })
    }

    fn location(&self) -> Option<Location> {
        let first = self.pieces.first()?;
        let consecutive = self
            .pieces
            .iter()
            .enumerate()
            .all(|(i, p)| p.block == first.block + i as u64);
        let fixed = self
            .pieces
            .iter()
            .rev()
            .skip(1)
            .all(|p| p.length == BLOCK_SIZE as u64);
        if !self.dedup && consecutive && fixed {
            return Some(Location::Contiguous(Contiguous {
                first_block: first.block,
                block_count: self.pieces.len() as u64,
                block_size: BLOCK_SIZE as u32,
            }));
        }
        Some(Location::Chunks(layout::chunk_list(&self.pieces)))
    }
}

impl std::io::Write for WriteStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        WriteStream::write(self, buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Entries written together: one bee append, so readers see all of them
/// or none. File contents are written to the blobs core as they are
/// added; dropping the batch leaves them unnamed.
#[must_use = "a batch writes no entry until committed"]
pub struct Batch<'d> {
    drive: &'d Drive,
    overlay: BTreeMap<DrivePath, Option<Entry>>,
}

impl<'d> Batch<'d> {
    pub(crate) fn new(drive: &'d Drive) -> Batch<'d> {
        Batch {
            drive,
            overlay: BTreeMap::new(),
        }
    }

    fn current(&self, path: &DrivePath) -> Result<Option<Entry>> {
        match self.overlay.get(path) {
            Some(e) => Ok(e.clone()),
            None => self.drive.entry_at(path),
        }
    }

    /// Whether anything exists below `path`, counting this batch.
    fn has_children(&self, path: &DrivePath) -> Result<bool> {
        let (low, high) = path.subtree_bounds();
        let mut deleted = 0;
        for (p, e) in self.overlay.range(path.clone()..) {
            if !p.is_within(path) {
                break;
            }
            if p == path {
                continue;
            }
            match e {
                Some(_) => return Ok(true),
                None => deleted += 1,
            }
        }
        let items = self
            .drive
            .bee
            .range(&RangeOptions {
                gt: Some(low),
                lt: Some(high),
                limit: Some(deleted + 1),
                ..Default::default()
            })
            .map_err(|e| self.drive.bee_err(e))?;
        Ok(items.iter().any(|i| {
            let p = std::str::from_utf8(&i.key)
                .ok()
                .and_then(|s| DrivePath::new(s).ok());
            p.is_none_or(|p| !matches!(self.overlay.get(&p), Some(None)))
        }))
    }

    /// Sets `path` to `entry` after checking it fits the tree: no folder at
    /// `path`, no file above it.
    pub fn put_entry(&mut self, path: &str, entry: Entry) -> Result<()> {
        let path = DrivePath::file(path)?;
        layout::check(&entry, path.as_str())?;
        for folder in path.ancestors() {
            if self.current(&folder)?.is_some() {
                return Err(Error::NotAFolder(folder.to_string()));
            }
        }
        if self.has_children(&path)? {
            return Err(Error::IsAFolder(path.to_string()));
        }
        self.overlay.insert(path, Some(entry));
        Ok(())
    }

    /// Writes `bytes` as the file `path` (deduplicated chunks).
    pub fn put(&mut self, path: &str, bytes: &[u8], meta: &FileMeta) -> Result<Entry> {
        DrivePath::file(path)?;
        let mut w = WriteStream::new(self.drive, true)?;
        w.write(bytes)?;
        let entry = w.finish()?.entry(meta);
        self.put_entry(path, entry.clone())?;
        Ok(entry)
    }

    /// Makes `path` a symlink to `target` (stored verbatim).
    pub fn symlink(&mut self, path: &str, target: &str, meta: &FileMeta) -> Result<()> {
        if target.is_empty() || target.contains('\0') {
            return Err(Error::InvalidPath {
                path: target.to_string(),
                reason: "a symlink target must be non-empty, without NUL",
            });
        }
        let entry = Entry {
            kind: Kind::Symlink as i32,
            mode: meta.mode & 0o7777,
            mtime_ns: meta.mtime_ns,
            target: target.to_string(),
            metadata: meta.metadata.clone(),
            ..Default::default()
        };
        self.put_entry(path, entry)
    }

    /// Removes the file or symlink `path` (nothing if there is none).
    pub fn del(&mut self, path: &str) -> Result<()> {
        let path = DrivePath::file(path)?;
        self.overlay.insert(path, None);
        Ok(())
    }

    /// Writes every entry in one bee append; the new version.
    pub fn commit(self) -> Result<u64> {
        let drive = self.drive;
        if !drive.writable()? {
            return Err(Error::ReadOnly);
        }
        let mut batch = drive.bee.batch();
        for (path, entry) in &self.overlay {
            match entry {
                Some(e) => batch.put(path.key(), &e.encode_to_vec()),
                None => batch.del(path.key()),
            }
        }
        batch.commit().map_err(|e| drive.bee_err(e))?;
        // The files' blocks are in: their hashes too, for the next open.
        if let Some(index) = drive
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            index.save_tail(&drive.blobs)?;
        }
        drive.version()
    }
}

impl Drive {
    /// A batch of writes committed atomically.
    pub fn batch(&self) -> Batch<'_> {
        Batch::new(self)
    }

    /// Writes `bytes` as the file `path`; its entry.
    pub fn put(&self, path: &str, bytes: &[u8], meta: &FileMeta) -> Result<Entry> {
        let mut b = self.batch();
        let entry = b.put(path, bytes, meta)?;
        b.commit()?;
        Ok(entry)
    }

    /// Makes `path` a symlink to `target`.
    pub fn symlink(&self, path: &str, target: &str) -> Result<()> {
        let mut b = self.batch();
        b.symlink(path, target, &FileMeta::default())?;
        b.commit().map(|_| ())
    }

    /// Removes the file or symlink `path`; whether there was one.
    pub fn del(&self, path: &str) -> Result<bool> {
        let p = DrivePath::file(path)?;
        if self.entry_at(&p)?.is_none() {
            return Ok(false);
        }
        let mut b = self.batch();
        b.del(path)?;
        b.commit()?;
        Ok(true)
    }

    /// A stream writing content to the blobs core: content-defined chunks
    /// shared with every other file (`dedup`), or fixed blocks stored as a
    /// contiguous range. Name the [`Content`] with
    /// [`Batch::put_entry`] (or use [`Drive::put`] for bytes in memory).
    pub fn write_stream(&self, dedup: bool) -> Result<WriteStream> {
        WriteStream::new(self, dedup)
    }

    /// Drops the local copies of the blocks of the file at `path` that no
    /// other entry of this version uses; how many blocks were dropped.
    pub fn clear(&self, path: &str) -> Result<u64> {
        let path = DrivePath::file(path)?;
        let Some(entry) = self.entry_at(&path)? else {
            return Err(Error::NotFound(path.to_string()));
        };
        // Only blocks stored here can be dropped: none past the length.
        let length = self.blobs.info()?.length;
        let mine: Vec<Range<u64>> = entry
            .blocks()
            .into_iter()
            .map(|r| r.start.min(length)..r.end.min(length))
            .filter(|r| !r.is_empty())
            .collect();
        // Of those, the ones another entry uses (ranges, never block by
        // block: an entry may claim any number of blocks).
        let mut used = Vec::new();
        for item in self.entries(&DrivePath::root(), None)? {
            let (p, e) = item?;
            if p == path {
                continue;
            }
            for r in e.blocks() {
                for m in &mine {
                    let both = r.start.max(m.start)..r.end.min(m.end);
                    if !both.is_empty() {
                        used.push(both);
                    }
                }
            }
        }
        let used = layout::merge(used);
        let mut dropped = 0;
        let mut free: Vec<Range<u64>> = Vec::new();
        let mut used = used.iter().peekable();
        for b in mine.into_iter().flatten() {
            while used.next_if(|u| u.end <= b).is_some() {}
            let shared = used.peek().is_some_and(|u| u.contains(&b));
            if !shared && self.blobs.has(b)? {
                free.push(b..b + 1);
                dropped += 1;
            }
        }
        for r in layout::merge(free) {
            self.blobs.clear(r)?;
        }
        Ok(dropped)
    }

    /// Drops the local copies of every block of the blobs core (entries
    /// stay; the bytes can be fetched again from peers).
    pub fn clear_all(&self) -> Result<()> {
        let length = self.blobs.info()?.length;
        self.blobs.clear(0..length)?;
        Ok(())
    }

    /// Deletes both cores of the drive from this store.
    pub fn purge(self) -> Result<()> {
        self.store.delete(&self.blobs.key())?;
        self.store.delete(&self.key())?;
        Ok(())
    }
}
