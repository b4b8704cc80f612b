//! Mirroring one side onto another (folder -> drive, drive -> folder,
//! drive -> drive, folder -> folder): a plan computed from both listings
//! with equality in tiers, then applied with an event per path and exact
//! progress.
//!
//! Equality: kind, then a symlink's target, then size; equal size, mtime
//! and mode is equal (tier 1); otherwise the content hashes decide (tier
//! 2: a drive stores its hash, a folder's file is hashed once per change),
//! and equal content only has its mode and mtime brought over. On request
//! ([`MirrorOptions::compare_bytes`], tier 3), a file that tier 1 calls
//! equal is still read on both sides and compared byte for byte, streamed
//! in constant memory; a difference makes it a change.

use std::collections::BTreeMap;
use std::io::Read;

use crate::drive::Drive;
use crate::error::{Error, Result};
use crate::fetch::Fetch;
use crate::folder::{Folder, Staged, Stat};
use crate::ignore::Ignore;
use crate::messages::{Entry, Kind};
use crate::path::DrivePath;
use crate::write::FileMeta;

/// Entries a mirror into a drive writes per bee append, and files a mirror
/// into a folder puts in place per sync.
const BATCH_ENTRIES: usize = 500;
/// Reads of a source file that changed while it was read, before giving up.
const REREADS: usize = 3;
/// Bytes read from each side per step of a byte compare.
const COMPARE_CHUNK: usize = 64 * 1024;

/// One side of a mirror.
#[derive(Clone, Copy)]
pub enum Side<'a> {
    /// A drive (its current view, or a checkout).
    Drive(&'a Drive),
    /// A local folder.
    Folder(&'a Folder),
}

/// What a mirror does to one path of the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Only in the source: copied.
    Add,
    /// Different on both sides: copied (or, equal content, its mode and
    /// mtime set).
    Change,
    /// Only in the destination: removed (with `prune`).
    Remove,
    /// The same on both sides.
    Equal,
}

impl Op {
    /// `add`, `change`, `remove` or `equal`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Change => "change",
            Op::Remove => "remove",
            Op::Equal => "equal",
        }
    }
}

/// Options of a mirror.
#[derive(Debug, Clone, Default)]
pub struct MirrorOptions {
    /// Plan and report only; write nothing.
    pub dry_run: bool,
    /// Remove what the destination has and the source does not.
    pub prune: bool,
    /// Paths (relative to the mirror's root) left out on both sides; a
    /// folder source adds its `.hyperignore`.
    pub ignore: Ignore,
    /// Tier 3: a file whose kind, size, mtime and mode are equal on both
    /// sides is still read on both and compared byte for byte (streamed,
    /// constant memory); a difference is a [`Op::Change`]. Finds an edit
    /// in place that kept its size and mtime, at the cost of reading every
    /// such file twice (rsync's `--checksum`).
    pub compare_bytes: bool,
}

/// One path's step of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// What is done.
    pub op: Op,
    /// The path.
    pub path: DrivePath,
    /// The source's stat (absent for a removal).
    pub source: Option<Stat>,
    /// Content bytes copied: the source file's size when its bytes move.
    pub bytes_added: u64,
    /// Content bytes the destination loses (the old file's size).
    pub bytes_removed: u64,
}

/// What a mirror will do, in order (removals first).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Every path, in the order it is applied.
    pub actions: Vec<Action>,
    /// Content bytes that will be copied (progress's total).
    pub total_bytes: u64,
    /// Local names skipped because they are not UTF-8.
    pub skipped: Vec<std::path::PathBuf>,
}

/// A step done, with the progress so far.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The step.
    pub action: Action,
    /// Content bytes copied so far.
    pub done_bytes: u64,
    /// Content bytes to copy in all.
    pub total_bytes: u64,
}

/// Counts of a finished mirror.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Paths added.
    pub add: u64,
    /// Paths changed.
    pub change: u64,
    /// Paths removed.
    pub remove: u64,
    /// Paths already equal.
    pub equal: u64,
    /// Content bytes copied.
    pub bytes_added: u64,
    /// Content bytes removed or replaced.
    pub bytes_removed: u64,
}

impl Summary {
    fn count(&mut self, a: &Action) {
        match a.op {
            Op::Add => self.add += 1,
            Op::Change => self.change += 1,
            Op::Remove => self.remove += 1,
            Op::Equal => self.equal += 1,
        }
        self.bytes_added += a.bytes_added;
        self.bytes_removed += a.bytes_removed;
    }
}

fn stat_of_entry(e: &Entry) -> Stat {
    Stat {
        kind: e.kind(),
        size: e.size,
        mtime_ns: e.mtime_ns,
        mode: e.mode,
        target: e.target.clone(),
        hash: <[u8; 32]>::try_from(e.hash.as_slice()).ok(),
    }
}

impl Side<'_> {
    fn list(
        &self,
        ignore: &Ignore,
    ) -> Result<(BTreeMap<DrivePath, Stat>, Vec<std::path::PathBuf>)> {
        match self {
            Side::Drive(d) => Ok((
                d.list("/", true, Some(ignore))?
                    .into_iter()
                    .map(|(p, e)| (p, stat_of_entry(&e)))
                    .collect(),
                Vec::new(),
            )),
            Side::Folder(f) => f.walk(ignore),
        }
    }

    fn hash(&self, path: &DrivePath, stat: &Stat) -> Result<[u8; 32]> {
        match (stat.hash, self) {
            (Some(h), _) => Ok(h),
            (None, Side::Folder(f)) => f.hash(path, stat),
            (None, Side::Drive(d)) => Err(Error::Corrupt {
                path: format!("{path} in drive {}", d.key()),
                reason: "a file entry without a hash",
            }),
        }
    }

    fn reader(&self, path: &DrivePath) -> Result<Box<dyn Read + '_>> {
        match self {
            Side::Drive(d) => Ok(Box::new(d.read_stream(path.as_str(), 0, None)?)),
            Side::Folder(f) => Ok(Box::new(f.open(path)?)),
        }
    }
}

/// The tiered comparison (pure but for the hashes and bytes it asks for):
/// (content equal, metadata equal).
fn equal(
    src: &Side<'_>,
    dst: &Side<'_>,
    path: &DrivePath,
    (s, d): (&Stat, &Stat),
    compare_bytes: bool,
) -> Result<(bool, bool)> {
    if s.kind != d.kind {
        return Ok((false, false));
    }
    if s.kind == Kind::Symlink {
        return Ok((s.target == d.target, true));
    }
    if s.size != d.size {
        return Ok((false, false));
    }
    let meta = s.mtime_ns == d.mtime_ns && s.mode == d.mode;
    if meta {
        let same = !compare_bytes || s.size == 0 || same_bytes(src, dst, path)?;
        return Ok((same, same));
    }
    Ok((src.hash(path, s)? == dst.hash(path, d)?, false))
}

/// Tier 3: whether `path` has the same bytes on both sides, read in
/// [`COMPARE_CHUNK`] steps from each (constant memory, stops at the first
/// difference). A read error names the side and path it came from.
fn same_bytes(src: &Side<'_>, dst: &Side<'_>, path: &DrivePath) -> Result<bool> {
    let (mut a, mut b) = (src.reader(path)?, dst.reader(path)?);
    let (mut x, mut y) = (vec![0; COMPARE_CHUNK], vec![0; COMPARE_CHUNK]);
    loop {
        let n = fill(&mut a, &mut x).map_err(|e| read_error(src, path, e))?;
        let m = fill(&mut b, &mut y).map_err(|e| read_error(dst, path, e))?;
        if x.get(..n) != y.get(..m) {
            return Ok(false);
        }
        if n < COMPARE_CHUNK {
            return Ok(true);
        }
    }
}

/// Reads into `buf` until it is full or the reader ends; the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// What mirroring `src` onto `dst` would do.
pub fn plan(src: Side<'_>, dst: Side<'_>, options: &MirrorOptions) -> Result<Plan> {
    let ignore = match src {
        Side::Folder(f) => f.ignores(&options.ignore)?,
        Side::Drive(_) => options.ignore.clone(),
    };
    // The two listings are independent (a folder walk is mostly system
    // calls, a drive listing mostly decoding): side by side.
    let (listed, dest) = std::thread::scope(|s| {
        let dest = s.spawn(|| dst.list(&ignore));
        let listed = src.list(&ignore);
        (listed, dest.join())
    });
    let (source, skipped) = listed?;
    let (dest, _) = dest.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
    let mut removes = Vec::new();
    let mut rest = Vec::new();
    if options.prune {
        for (path, d) in &dest {
            if !source.contains_key(path) {
                removes.push(Action {
                    op: Op::Remove,
                    path: path.clone(),
                    source: None,
                    bytes_added: 0,
                    bytes_removed: d.size,
                });
            }
        }
    }
    for (path, s) in source {
        let (op, added, removed) = match dest.get(&path) {
            None => (Op::Add, s.size, 0),
            Some(d) => match equal(&src, &dst, &path, (&s, d), options.compare_bytes)? {
                (true, true) => (Op::Equal, 0, 0),
                (true, false) => (Op::Change, 0, 0),
                (false, _) => (Op::Change, s.size, d.size),
            },
        };
        rest.push(Action {
            op,
            path,
            source: Some(s),
            bytes_added: added,
            bytes_removed: removed,
        });
    }
    removes.extend(rest);
    Ok(Plan {
        total_bytes: removes.iter().map(|a| a.bytes_added).sum(),
        actions: removes,
        skipped,
    })
}

/// Mirrors `src` onto `dst`: [`plan`], then [`apply`].
pub fn mirror(
    src: Side<'_>,
    dst: Side<'_>,
    options: &MirrorOptions,
    on_event: impl FnMut(&Event),
) -> Result<Summary> {
    let p = plan(src, dst, options)?;
    apply(&p, src, dst, options, on_event)
}

/// Carries out `plan` (with `dry_run`, only reports it), calling `on_event`
/// after each step. A drive destination gets each file's blocks before
/// the entry naming them, entries in batches; a folder destination gets
/// atomic writes, put in place in batches (every file's bytes synced
/// before any of the batch is renamed onto its target, see
/// [`Folder::publish`]). Killed half way and run again, it finishes the
/// job.
pub fn apply(
    plan: &Plan,
    src: Side<'_>,
    dst: Side<'_>,
    options: &MirrorOptions,
    mut on_event: impl FnMut(&Event),
) -> Result<Summary> {
    let mut summary = Summary::default();
    let mut done = 0u64;
    let mut pending: Vec<(DrivePath, Option<Entry>)> = Vec::new();
    let mut staged: Vec<Staged> = Vec::new();
    for action in &plan.actions {
        if !options.dry_run {
            match dst {
                // An equal path is left as it is (never rewritten).
                Side::Drive(_) if action.op == Op::Equal => {}
                Side::Drive(d) => {
                    pending.push((action.path.clone(), to_drive(d, &src, action)?));
                    if pending.len() >= BATCH_ENTRIES {
                        commit(d, &mut pending)?;
                    }
                }
                Side::Folder(f) => match to_folder(f, &src, action) {
                    Ok(s) => {
                        staged.extend(s);
                        if staged.len() >= BATCH_ENTRIES {
                            f.publish(&std::mem::take(&mut staged))?;
                        }
                    }
                    Err(e) => {
                        // What was done before the error stays done.
                        f.publish(&staged)?;
                        return Err(e);
                    }
                },
            }
        }
        done += action.bytes_added;
        summary.count(action);
        on_event(&Event {
            action: action.clone(),
            done_bytes: done,
            total_bytes: plan.total_bytes,
        });
    }
    match dst {
        Side::Drive(d) => commit(d, &mut pending)?,
        Side::Folder(f) => f.publish(&staged)?,
    }
    Ok(summary)
}

fn commit(drive: &Drive, pending: &mut Vec<(DrivePath, Option<Entry>)>) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut batch = drive.batch();
    for (path, entry) in pending.drain(..) {
        match entry {
            Some(e) => batch.put_entry(path.as_str(), e)?,
            None => batch.del(path.as_str())?,
        }
    }
    batch.commit().map(|_| ())
}

/// The entry to write for `action` (its blocks already appended); `None`
/// to delete the path.
fn to_drive(drive: &Drive, src: &Side<'_>, action: &Action) -> Result<Option<Entry>> {
    let Some(s) = &action.source else {
        return Ok(None);
    };
    let meta = FileMeta {
        mode: s.mode,
        mtime_ns: s.mtime_ns,
        metadata: Vec::new(),
    };
    if s.kind == Kind::Symlink {
        return Ok(Some(Entry {
            kind: Kind::Symlink as i32,
            mode: s.mode,
            mtime_ns: s.mtime_ns,
            target: s.target.clone(),
            ..Default::default()
        }));
    }
    if action.op == Op::Change && action.bytes_added == 0 && s.size > 0 {
        // Same content: keep the stored bytes, take the new mode and mtime.
        if let Some(mut e) = drive.entry_at(&action.path)? {
            e.mode = s.mode;
            e.mtime_ns = s.mtime_ns;
            return Ok(Some(e));
        }
    }
    for _ in 0..REREADS {
        let mut w = drive.write_stream(true)?;
        let mut reader = src.reader(&action.path)?;
        let mut buf = vec![0; 256 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| read_error(src, &action.path, e))?;
            if n == 0 {
                break;
            }
            w.write(buf.get(..n).unwrap_or_default())?;
        }
        let content = w.finish()?;
        if unchanged(src, &action.path, s, content.size)? {
            return Ok(Some(content.entry(&meta)));
        }
    }
    Err(changed(src, &action.path))
}

/// Carries out `action` on a folder; a file or symlink comes back staged,
/// for [`Folder::publish`] to put in place with the rest of its batch.
fn to_folder(folder: &Folder, src: &Side<'_>, action: &Action) -> Result<Option<Staged>> {
    let Some(s) = &action.source else {
        return folder.remove(&action.path).map(|()| None);
    };
    match (s.kind, action.op) {
        (_, Op::Equal) => Ok(None),
        (Kind::Symlink, _) => folder.stage_symlink(&action.path, &s.target).map(Some),
        (Kind::File, Op::Change) if action.bytes_added == 0 && s.size > 0 => folder
            .set_meta(&action.path, s.mode, s.mtime_ns)
            .map(|()| None),
        (Kind::File, _) => {
            for _ in 0..REREADS {
                let mut reader = src.reader(&action.path)?;
                let (n, staged) = folder.stage(&action.path, &mut reader, s.mode, s.mtime_ns)?;
                if unchanged(src, &action.path, s, n)? {
                    return Ok(Some(staged));
                }
            }
            Err(changed(src, &action.path))
        }
    }
}

/// Whether a folder source's file is still what the plan saw after it was
/// read (`read` bytes, same size and mtime). Drive sources never change
/// under a read (a view is a fixed version's entry).
fn unchanged(src: &Side<'_>, path: &DrivePath, planned: &Stat, read: u64) -> Result<bool> {
    match src {
        Side::Drive(_) => Ok(true),
        Side::Folder(f) => Ok(read == planned.size
            && f.stat(path)?
                .is_some_and(|now| now.size == planned.size && now.mtime_ns == planned.mtime_ns)),
    }
}

fn changed(src: &Side<'_>, path: &DrivePath) -> Error {
    match src {
        Side::Folder(f) => Error::Changed(f.local(path)),
        Side::Drive(_) => Error::Changed(path.as_str().into()),
    }
}

fn read_error(src: &Side<'_>, path: &DrivePath, e: std::io::Error) -> Error {
    // A drive read's own error comes back out of the io::Error (as
    // `Folder::write` does for a folder destination).
    match e.downcast::<Error>() {
        Ok(inner) => inner,
        Err(e) => match src {
            Side::Folder(f) => Error::io(f.local(path), e),
            Side::Drive(_) => Error::io(path.as_str(), e),
        },
    }
}

/// Fetches with `fetch` every block of the files `plan` copies out of the
/// drive `src` (a mirror from a peer's drive): the ranges of all of them
/// merged, so each run of consecutive blocks is one request, never one
/// round trip per file. Blocks already here are not fetched again.
pub async fn fetch_blocks(plan: &Plan, src: &Drive, fetch: &impl Fetch) -> Result<()> {
    let mut ranges = Vec::new();
    for a in &plan.actions {
        if a.bytes_added > 0
            && let Some(e) = src.entry_at(&a.path)?
        {
            ranges.extend(e.blocks());
        }
    }
    fetch
        .fetch_ranges(src.blobs(), &crate::layout::merge(ranges))
        .await
}
