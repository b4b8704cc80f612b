//! [`Folder`]: a local folder behind the drive's read/write interface, for
//! mirrors. Walks are sorted and honour gitignore-style patterns plus
//! `.hyperignore` files; writes are atomic (a temp file beside the target,
//! fsync, rename, fsync of the folder) and set the mode and mtime.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::ignore::{IGNORE_FILE, Ignore};
use crate::messages::Kind;
use crate::path::DrivePath;

/// Temp files of unfinished writes end with this; walks skip them.
pub const PARTIAL_SUFFIX: &str = ".hyper-partial";
/// Staged files [`Folder::publish`] fsyncs one by one; past this, one
/// `syncfs` costs less than the fsyncs (measured on the shared machine: a
/// file's fsync 5-10 ms, a `syncfs` 10 ms to 1 s, as much as other
/// processes left unwritten).
pub const FSYNC_FILES: usize = 32;
/// Bytes other writers may have left unwritten before [`Folder::publish`]
/// fsyncs each file instead of calling one `syncfs`, which would wait for
/// them too (a copy of a large file running beside a mirror).
pub const SYNCFS_OTHERS_MAX: u64 = 256 << 20;
/// Threads [`Folder::publish`] fsyncs from at once.
const FSYNC_THREADS: usize = 8;
/// Read and write buffer of file copies.
const COPY_BUFFER: usize = 256 * 1024;

/// What a path holds, on either side of a mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// File or symlink.
    pub kind: Kind,
    /// Content size (0 for a symlink).
    pub size: u64,
    /// Modification time, ns since the Unix epoch.
    pub mtime_ns: i64,
    /// Permission bits.
    pub mode: u32,
    /// A symlink's target.
    pub target: String,
    /// The content hash, when it is known without reading the file.
    pub hash: Option<[u8; 32]>,
}

/// A file (or symlink) written beside its target under a temp name, not
/// yet in place: [`Folder::publish`] renames it onto its target.
#[derive(Debug)]
#[must_use = "a staged file is not in place until published"]
pub struct Staged {
    tmp: PathBuf,
    local: PathBuf,
    /// Bytes written into it.
    bytes: u64,
}

/// A file's hash with the size and mtime it was computed at.
type HashedAt = (u64, i64, [u8; 32]);

/// A local folder.
pub struct Folder {
    root: PathBuf,
    /// (size, mtime) -> hash of files hashed in this run.
    hashes: Mutex<HashMap<PathBuf, HashedAt>>,
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).ok(),
            Err(e) => i64::try_from(e.duration().as_nanos()).ok().map(|n| -n),
        })
        .unwrap_or(0)
}

fn system_time(ns: i64) -> SystemTime {
    let d = Duration::from_nanos(ns.unsigned_abs());
    if ns >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

impl Folder {
    /// The folder at `root` (created when first written to).
    pub fn new(root: impl Into<PathBuf>) -> Folder {
        Folder {
            root: root.into(),
            hashes: Mutex::new(HashMap::new()),
        }
    }

    /// Its root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of a drive path.
    pub fn local(&self, path: &DrivePath) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(path.segments());
        p
    }

    /// What `path` holds (symlinks not followed); `None` if nothing, or a
    /// folder.
    pub fn stat(&self, path: &DrivePath) -> Result<Option<Stat>> {
        let local = self.local(path);
        match fs::symlink_metadata(&local) {
            Ok(m) => stat_of(&local, &m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(local, e)),
        }
    }

    /// Every file and symlink under the root, by path, skipping what
    /// `ignore` or a `.hyperignore` file matches, and temp files of
    /// unfinished writes. A name that is not UTF-8 is skipped and returned
    /// in the second list (warn about it by path; never renamed).
    pub fn walk(&self, ignore: &Ignore) -> Result<(BTreeMap<DrivePath, Stat>, Vec<PathBuf>)> {
        let mut out = BTreeMap::new();
        if !self.root.exists() {
            return Ok((out, Vec::new()));
        }
        let skipped = Arc::new(Mutex::new(Vec::new()));
        let (root, filter, skipped_in) = (self.root.clone(), ignore.clone(), skipped.clone());
        let walker = ignore::WalkBuilder::new(&self.root)
            .standard_filters(false)
            .follow_links(false)
            .add_custom_ignore_filename(IGNORE_FILE)
            .sort_by_file_name(|a, b| a.cmp(b))
            .filter_entry(move |e| {
                let Ok(rel) = e.path().strip_prefix(&root) else {
                    return false;
                };
                let Some(rel) = rel.to_str() else {
                    skipped_in
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(e.path().to_path_buf());
                    return false;
                };
                let is_dir = e.file_type().is_some_and(|t| t.is_dir());
                !rel.ends_with(PARTIAL_SUFFIX) && !filter.matches(rel, is_dir)
            })
            .build();
        for item in walker {
            let item = item.map_err(|e| walk_error(&self.root, e))?;
            let Some(t) = item.file_type() else { continue };
            if t.is_dir() {
                continue;
            }
            let Some(rel) = item
                .path()
                .strip_prefix(&self.root)
                .ok()
                .and_then(Path::to_str)
            else {
                continue;
            };
            let path = DrivePath::file(rel)?;
            let meta = fs::symlink_metadata(item.path()).map_err(|e| Error::io(item.path(), e))?;
            if let Some(stat) = stat_of(item.path(), &meta)? {
                out.insert(path, stat);
            }
        }
        let skipped = std::mem::take(&mut *skipped.lock().unwrap_or_else(|e| e.into_inner()));
        Ok((out, skipped))
    }

    /// The ignores of a walk from this folder: `base` plus the lines of the
    /// root's `.hyperignore` (nested ones apply inside [`Folder::walk`]).
    pub fn ignores(&self, base: &Ignore) -> Result<Ignore> {
        let file = self.root.join(IGNORE_FILE);
        match fs::read_to_string(&file) {
            Ok(text) => base.with_file(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(base.clone()),
            Err(e) => Err(Error::io(file, e)),
        }
    }

    /// Opens the file `path` for reading. A path that is no longer a
    /// regular file (replaced by a FIFO, a device or a folder since it was
    /// listed) is [`Error::Changed`], at once: the open never waits.
    pub fn open(&self, path: &DrivePath) -> Result<File> {
        let local = self.local(path);
        // Opened without blocking and refused unless it is a regular file:
        // a path that became a FIFO since it was listed would otherwise
        // block the open (and the mirror) until some writer came.
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&local)
            .map_err(|e| Error::io(&local, e))?;
        let is_file = file.metadata().map_err(|e| Error::io(&local, e))?.is_file();
        if !is_file {
            return Err(Error::Changed(local));
        }
        Ok(file)
    }

    /// The BLAKE3 hash of the file `path`, computed once per (size, mtime).
    pub fn hash(&self, path: &DrivePath, stat: &Stat) -> Result<[u8; 32]> {
        let local = self.local(path);
        let cached = self
            .hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&local)
            .copied();
        if let Some((size, mtime, hash)) = cached
            && size == stat.size
            && mtime == stat.mtime_ns
        {
            return Ok(hash);
        }
        let mut hasher = blake3::Hasher::new();
        let mut file = self.open(path)?;
        let mut buf = vec![0; COPY_BUFFER];
        loop {
            let n = file.read(&mut buf).map_err(|e| Error::io(&local, e))?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
        let hash = *hasher.finalize().as_bytes();
        self.hashes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(local, (stat.size, stat.mtime_ns, hash));
        Ok(hash)
    }

    /// Writes the file `path` from `content` atomically, with `mode` and
    /// `mtime_ns`: a temp file beside it, fsync, rename, fsync of the
    /// folder. Returns the bytes written. A crash leaves the old file or
    /// the new one, never a mix.
    pub fn write(
        &self,
        path: &DrivePath,
        content: &mut dyn Read,
        mode: u32,
        mtime_ns: i64,
    ) -> Result<u64> {
        let (written, staged) = self.stage(path, content, mode, mtime_ns)?;
        self.publish(&[staged])?;
        Ok(written)
    }

    /// Writes the file `path` from `content` into a temp file beside it,
    /// with `mode` and `mtime_ns`, not yet synced nor renamed: the target
    /// is untouched until [`Folder::publish`]. Returns the bytes written.
    pub fn stage(
        &self,
        path: &DrivePath,
        content: &mut dyn Read,
        mode: u32,
        mtime_ns: i64,
    ) -> Result<(u64, Staged)> {
        let (local, tmp) = self.prepare(path)?;
        let mut file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut buf = vec![0; COPY_BUFFER];
        let mut written = 0u64;
        loop {
            // A drive source's own error (a missing block, a corrupt one)
            // comes back out as itself, not as an I/O error of this file.
            let n = content
                .read(&mut buf)
                .map_err(|e| match e.downcast::<Error>() {
                    Ok(inner) => inner,
                    Err(e) => Error::io(&local, e),
                })?;
            if n == 0 {
                break;
            }
            file.write_all(buf.get(..n).unwrap_or_default())
                .map_err(|e| Error::io(&tmp, e))?;
            written += n as u64;
        }
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io(&tmp, e))?;
        file.set_modified(system_time(mtime_ns))
            .map_err(|e| Error::io(&tmp, e))?;
        let staged = Staged {
            tmp,
            local,
            bytes: written,
        };
        Ok((written, staged))
    }

    /// Makes `path` a symlink to `target`, atomically.
    pub fn symlink(&self, path: &DrivePath, target: &str) -> Result<()> {
        let staged = self.stage_symlink(path, target)?;
        self.publish(&[staged])
    }

    /// A symlink to `target` beside `path`, renamed onto it by
    /// [`Folder::publish`].
    pub fn stage_symlink(&self, path: &DrivePath, target: &str) -> Result<Staged> {
        let (local, tmp) = self.prepare(path)?;
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(|e| Error::io(&tmp, e))?;
        Ok(Staged {
            tmp,
            local,
            bytes: 0,
        })
    }

    /// Puts staged writes in place durably: their bytes reach the disk
    /// before any of them is renamed onto its target, and the renames
    /// before this returns. A crash leaves each target old or new, never a
    /// mix. More than [`FSYNC_FILES`] files are synced with one `syncfs`
    /// per filesystem before the renames and one after, not two fsyncs per
    /// file, unless the system holds more than [`SYNCFS_OTHERS_MAX`] bytes
    /// unwritten besides these files (a `syncfs` would wait for them too):
    /// then, as for fewer files, each file is fsynced (from several
    /// threads at once) and each folder once after the renames.
    pub fn publish(&self, staged: &[Staged]) -> Result<()> {
        let bytes = staged.iter().map(|s| s.bytes).sum();
        if staged.len() > FSYNC_FILES && prefer_syncfs(unwritten_bytes(), bytes) {
            let folders = sync_filesystems(staged.iter().map(|s| s.tmp.as_path()))?;
            for s in staged {
                fs::rename(&s.tmp, &s.local).map_err(|e| Error::io(&s.local, e))?;
            }
            return sync_filesystems(folders.iter().map(PathBuf::as_path)).map(|_| ());
        }
        // A symlink is not opened (that would follow it); its folder's
        // fsync after the rename makes it durable.
        let files: Vec<&Path> = staged
            .iter()
            .map(|s| s.tmp.as_path())
            .filter(|t| !fs::symlink_metadata(t).is_ok_and(|m| m.is_symlink()))
            .collect();
        fsync_all(&files)?;
        let mut folders = std::collections::BTreeSet::new();
        for s in staged {
            fs::rename(&s.tmp, &s.local).map_err(|e| Error::io(&s.local, e))?;
            folders.insert(s.local.parent().unwrap_or(&self.root));
        }
        fsync_all(&folders.into_iter().collect::<Vec<_>>())
    }

    /// Sets the mode and mtime of the file `path`.
    pub fn set_meta(&self, path: &DrivePath, mode: u32, mtime_ns: i64) -> Result<()> {
        let local = self.local(path);
        let file = File::options()
            .write(true)
            .open(&local)
            .map_err(|e| Error::io(&local, e))?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| Error::io(&local, e))?;
        file.set_modified(system_time(mtime_ns))
            .map_err(|e| Error::io(&local, e))?;
        file.sync_all().map_err(|e| Error::io(&local, e))
    }

    /// Removes the file or symlink `path`, then every folder above it that
    /// is left empty.
    pub fn remove(&self, path: &DrivePath) -> Result<()> {
        let local = self.local(path);
        match fs::remove_file(&local) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(local, e)),
        }
        let mut at = local.parent().map(Path::to_path_buf);
        while let Some(dir) = at {
            if dir == self.root || fs::remove_dir(&dir).is_err() {
                break;
            }
            at = dir.parent().map(Path::to_path_buf);
        }
        Ok(())
    }

    /// Creates the folders above `path` and names its temp file.
    fn prepare(&self, path: &DrivePath) -> Result<(PathBuf, PathBuf)> {
        let local = self.local(path);
        let dir = local.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        if fs::symlink_metadata(&local).is_ok_and(|m| m.is_dir()) {
            // An empty folder where the file goes (what was in it is gone).
            fs::remove_dir(&local).map_err(|e| Error::io(&local, e))?;
        }
        let name = path.name().unwrap_or("file");
        Ok((local, dir.join(format!(".{name}{PARTIAL_SUFFIX}"))))
    }
}

fn stat_of(local: &Path, m: &fs::Metadata) -> Result<Option<Stat>> {
    let t = m.file_type();
    let (kind, size, target) = if t.is_symlink() {
        let target = fs::read_link(local).map_err(|e| Error::io(local, e))?;
        let Some(target) = target.to_str() else {
            return Err(Error::InvalidPath {
                path: local.display().to_string(),
                reason: "the symlink's target is not UTF-8",
            });
        };
        (Kind::Symlink, 0, target.to_string())
    } else if t.is_file() {
        (Kind::File, m.len(), String::new())
    } else {
        return Ok(None);
    };
    Ok(Some(Stat {
        kind,
        size,
        mtime_ns: mtime_ns(m),
        mode: m.permissions().mode() & 0o7777,
        target,
        hash: None,
    }))
}

/// Fsyncs every file or folder of `paths`, from up to [`FSYNC_THREADS`]
/// threads at once: the filesystem commits concurrent fsyncs together, so
/// they cost about one journal commit, not one each.
fn fsync_all(paths: &[&Path]) -> Result<()> {
    let fsync = |p: &Path| {
        File::open(p)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(p, e))
    };
    if paths.len() < 2 {
        return paths.iter().try_for_each(|p| fsync(p));
    }
    let per = paths.len().div_ceil(FSYNC_THREADS);
    std::thread::scope(|scope| {
        let workers: Vec<_> = paths
            .chunks(per)
            .map(|part| scope.spawn(move || part.iter().try_for_each(|p| fsync(p))))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(Error::io(
                    "fsync",
                    std::io::Error::other("a sync thread panicked"),
                ))
            })
        })
    })
}

/// Whether one `syncfs` beats an fsync per file for `own` staged bytes
/// when the system holds `unwritten` bytes not yet on disk (ours
/// included): only while the others' share is small. `None` (not known)
/// never prefers it.
fn prefer_syncfs(unwritten: Option<u64>, own: u64) -> bool {
    unwritten.is_some_and(|u| u.saturating_sub(own) <= SYNCFS_OTHERS_MAX)
}

/// The bytes the system has not written back yet: `Dirty` plus
/// `Writeback` of `/proc/meminfo` (Linux); `None` elsewhere or if it
/// cannot be read.
fn unwritten_bytes() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    Some((kib("Dirty:")? + kib("Writeback:")?) * 1024)
}

/// Syncs every filesystem that holds one of `paths` (one `syncfs` per
/// filesystem: data and metadata of every file on it); the folders of
/// `paths`, one per filesystem, for a second sync.
fn sync_filesystems<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<Vec<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let mut seen: Vec<(u64, PathBuf)> = Vec::new();
    for p in paths {
        let m = fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
        if !seen.iter().any(|(dev, _)| *dev == m.dev()) {
            let dir = p.parent().unwrap_or(p).to_path_buf();
            seen.push((m.dev(), dir));
        }
    }
    for (_, dir) in &seen {
        syncfs(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(seen.into_iter().map(|(_, d)| d).collect())
}

/// `syncfs(2)` of the filesystem holding the folder `dir`.
#[cfg(target_os = "linux")]
fn syncfs(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)?;
    // SAFETY: `d` is an open descriptor for the duration of the call.
    if unsafe { libc::syncfs(d.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere, `sync(2)`: every filesystem.
#[cfg(not(target_os = "linux"))]
fn syncfs(_dir: &Path) -> std::io::Result<()> {
    // SAFETY: sync takes no arguments and cannot fail.
    unsafe { libc::sync() };
    Ok(())
}

fn walk_error(root: &Path, e: ignore::Error) -> Error {
    let path = match &e {
        ignore::Error::WithPath { path, .. } => path.clone(),
        _ => root.to_path_buf(),
    };
    let source = match e.into_io_error() {
        Some(io) => io,
        None => std::io::Error::other("the folder walk failed"),
    };
    Error::io(path, source)
}

#[cfg(test)]
mod tests {
    use super::{SYNCFS_OTHERS_MAX, prefer_syncfs, unwritten_bytes};

    #[test]
    fn syncfs_only_while_little_else_is_unwritten() {
        let own = 40 << 20;
        assert!(prefer_syncfs(Some(own), own));
        assert!(prefer_syncfs(Some(own + SYNCFS_OTHERS_MAX), own));
        assert!(!prefer_syncfs(Some(own + SYNCFS_OTHERS_MAX + 1), own));
        // Counters read before our own writes landed.
        assert!(prefer_syncfs(Some(0), own));
        assert!(!prefer_syncfs(None, own));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_unwritten_bytes_are_read_on_linux() {
        assert!(unwritten_bytes().is_some());
    }
}
