//! [`Drive`]: opening a drive (metadata bee + blobs core), and its reads:
//! entries, symlink resolution, listings, versions and diffs.

use std::sync::{Arc, Mutex};

use hyper_bee::{Bee, RangeOptions};
use hyper_core::{Core, CoreKey, EncryptionKey, Store};
use prost::Message as _;

use crate::error::{Error, Result};
use crate::ignore::Ignore;
use crate::index::ChunkIndex;
use crate::layout;
use crate::messages::{Entry, Header, Kind};
use crate::path::DrivePath;

/// The protocol name in the drive header.
pub const PROTOCOL: &str = "hyper-drive";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The metadata bee's key holding the [`Header`] (written at sequence 1).
pub const HEADER_KEY: &[u8] = b"\0hyper-drive";
/// At most this many symlinks are followed resolving one path.
pub const MAX_HOPS: usize = 16;

/// A filesystem in two cores: a metadata bee mapping paths to [`Entry`]
/// values and a blobs core of file contents. Cheap to clone; clones share
/// the chunk index. Reads are sync and read local data only: a block that
/// is not stored here is [`Error::Missing`], which
/// [`Drive::with_fetch`](crate::Drive::with_fetch) turns into a fetch.
#[derive(Clone)]
pub struct Drive {
    pub(crate) store: Store,
    pub(crate) bee: Bee,
    pub(crate) blobs: Core,
    pub(crate) index: Arc<Mutex<Option<ChunkIndex>>>,
}

/// What a folder holds under one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChildKind {
    /// A file.
    File,
    /// A symlink.
    Symlink,
    /// A folder (some path below it exists).
    Folder,
}

/// One name in a folder, see [`Drive::readdir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The name (one segment).
    pub name: String,
    /// What it is.
    pub kind: ChildKind,
}

/// A path whose entry differs between two versions, see [`Drive::diff`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiffEntry {
    /// The path.
    pub path: DrivePath,
    /// Its entry in this view (`None`: deleted since).
    pub now: Option<Entry>,
    /// Its entry at the older version (`None`: added since).
    pub then: Option<Entry>,
}

/// Counts of [`Drive::info`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriveInfo {
    /// The version (the metadata bee's version).
    pub version: u64,
    /// Files and symlinks in this view.
    pub files: u64,
    /// Their content bytes.
    pub bytes: u64,
    /// Blocks of the blobs core.
    pub blocks: u64,
    /// Of them, stored here.
    pub blocks_stored: u64,
    /// Whether this store can write the drive.
    pub writable: bool,
}

/// Opens and creates drives, plain (what [`Drive::create`] and its
/// siblings use) or encrypted ([`Drive::encrypted`]).
///
/// An encrypted drive's metadata bee and blobs core are both encrypted
/// with the one key: each core enciphers under its own subkey (derived
/// from the key and that core's key, see `hyper_core::EncryptionKey`), so
/// the two never share a key stream. Paths, entries and contents are
/// ciphertext to a peer without the key, which still replicates, verifies
/// and serves both cores (a blind seeder). What such a peer can see:
/// the number and sizes of blocks and writes, and which chunks repeat
/// (the chunk index deduplicates equal plaintext chunks to one block).
/// Without the key, or with another one, opening the drive fails with a
/// clear error (`EncryptionKeyRequired`, `WrongEncryptionKey` or
/// `Decrypt`), never a garbled listing.
#[derive(Debug, Clone, Default)]
pub struct DriveOpener {
    encryption: Option<EncryptionKey>,
}

impl DriveOpener {
    /// `core`, encrypting and decrypting with the opener's key if it has one.
    fn keyed(&self, core: Core) -> Result<Core> {
        Ok(match &self.encryption {
            Some(key) => core.with_encryption(key)?,
            None => core,
        })
    }

    /// Creates a drive with fresh random keys.
    pub fn create(&self, store: &Store) -> Result<Drive> {
        let meta = self.keyed(store.create_core()?)?;
        let blobs = self.keyed(store.create_core()?)?;
        self.init(store, meta, blobs)
    }

    /// The drive named `name` in this store, created on first use: its
    /// metadata core is the store's core `name`, its blobs core
    /// `name/blobs` (same store, same name: same keys).
    pub fn named(&self, store: &Store, name: &str) -> Result<Drive> {
        let meta = self.keyed(store.named(name)?)?;
        let blobs = self.keyed(store.named(&format!("{name}/blobs"))?)?;
        self.init(store, meta, blobs)
    }

    fn init(&self, store: &Store, meta: Core, blobs: Core) -> Result<Drive> {
        let bee = Bee::open(meta.clone()).map_err(|e| bee_error(&meta, e))?;
        if bee.version().map_err(|e| bee_error(&meta, e))? <= 1 {
            let header = Header {
                protocol: PROTOCOL.to_string(),
                version: FORMAT_VERSION,
                blobs_key: blobs.key().0.to_vec(),
            };
            bee.put(HEADER_KEY, &header.encode_to_vec())
                .map_err(|e| bee_error(&meta, e))?;
        }
        self.open_bee(store, bee)
    }

    /// Opens the drive whose key (its metadata core's key) is `key`; the
    /// store must hold that core. The blobs core is the one the drive's
    /// signed header names.
    pub fn open(&self, store: &Store, key: &CoreKey) -> Result<Drive> {
        let meta = self.keyed(store.core(key)?)?;
        let bee = Bee::open(meta.clone()).map_err(|e| bee_error(&meta, e))?;
        self.open_bee(store, bee)
    }

    /// The drive `key` as a replica (created empty on first use). Until
    /// the header block is here this is [`Error::Missing`]; run it under
    /// [`crate::fetch::open_replica`] to fetch it.
    pub fn replica(&self, store: &Store, key: &CoreKey) -> Result<Drive> {
        let meta = self.keyed(store.replica(key)?)?;
        let bee = Bee::open(meta.clone()).map_err(|e| bee_error(&meta, e))?;
        self.open_bee(store, bee)
    }

    fn open_bee(&self, store: &Store, bee: Bee) -> Result<Drive> {
        let meta = bee.core().clone();
        let key = meta.key();
        let not = |reason| Error::NotADrive { key, reason };
        if meta.info()?.length < 2 && !meta.writable()? {
            // A replica that has not fetched the header yet.
            return Err(Error::Missing {
                core: key,
                index: 1,
            });
        }
        let first = bee.history(1..2, false).map_err(|e| bee_error(&meta, e))?;
        let change = first.first().ok_or(not("it has no drive header"))?;
        if change.key != HEADER_KEY {
            return Err(not("its first write is not a drive header"));
        }
        let header = change
            .value
            .as_deref()
            .and_then(|v| Header::decode(v).ok())
            .ok_or(not("its drive header does not decode"))?;
        if header.protocol != PROTOCOL {
            return Err(not("its header names another protocol"));
        }
        if header.version != FORMAT_VERSION {
            return Err(not("its header has an unsupported format version"));
        }
        let blobs_key = <[u8; 32]>::try_from(header.blobs_key.as_slice())
            .map(CoreKey)
            .map_err(|_| not("its header's blobs key is not 32 bytes"))?;
        Ok(Drive {
            store: store.clone(),
            blobs: self.keyed(store.replica(&blobs_key)?)?,
            bee,
            index: Arc::new(Mutex::new(None)),
        })
    }
}

impl Drive {
    /// Creates a drive with fresh random keys.
    pub fn create(store: &Store) -> Result<Drive> {
        DriveOpener::default().create(store)
    }

    /// The drive named `name` in this store, created on first use: its
    /// metadata core is the store's core `name`, its blobs core
    /// `name/blobs` (same store, same name: same keys).
    pub fn named(store: &Store, name: &str) -> Result<Drive> {
        DriveOpener::default().named(store, name)
    }

    /// Opens the drive whose key (its metadata core's key) is `key`; the
    /// store must hold that core. The blobs core is the one the drive's
    /// signed header names.
    pub fn open(store: &Store, key: &CoreKey) -> Result<Drive> {
        DriveOpener::default().open(store, key)
    }

    /// The drive `key` as a replica (created empty on first use). Until
    /// the header block is here this is [`Error::Missing`]; run it under
    /// [`crate::fetch::open_replica`] to fetch it.
    pub fn replica(store: &Store, key: &CoreKey) -> Result<Drive> {
        DriveOpener::default().replica(store, key)
    }

    /// Opens or creates drives whose cores are encrypted with `key` (see
    /// [`DriveOpener`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// use hyper_core::{EncryptionKey, Store};
    /// use hyper_drive::{Drive, FileMeta};
    ///
    /// let store = Store::open(dir.path())?;
    /// let secret = EncryptionKey::generate()?;
    /// let drive = Drive::encrypted(&secret).named(&store, "private")?;
    /// drive.put("/notes.txt", b"only for us", &FileMeta::default())?;
    /// let again = Drive::encrypted(&secret).open(&store, &drive.key())?;
    /// assert_eq!(again.get("/notes.txt")?, Some(b"only for us".to_vec()));
    /// // Without the key this store refuses to read it.
    /// assert!(Drive::open(&store, &drive.key()).is_err());
    /// # Ok(()) }
    /// ```
    pub fn encrypted(key: &EncryptionKey) -> DriveOpener {
        DriveOpener {
            encryption: Some(key.clone()),
        }
    }

    /// The drive key (the metadata core's key).
    pub fn key(&self) -> CoreKey {
        self.bee.core().key()
    }

    /// The metadata core (the bee of entries).
    pub fn metadata(&self) -> &Core {
        self.bee.core()
    }

    /// The blobs core (file contents).
    pub fn blobs(&self) -> &Core {
        &self.blobs
    }

    /// Whether this view can be written (a writable drive, not a checkout).
    pub fn writable(&self) -> Result<bool> {
        let frozen =
            self.bee.version().map_err(|e| self.bee_err(e))? != self.metadata().info()?.length;
        Ok(!frozen && self.metadata().writable()? && self.blobs.writable()?)
    }

    /// The version: the metadata bee's version; every write adds at least
    /// one.
    pub fn version(&self) -> Result<u64> {
        self.bee.version().map_err(|e| self.bee_err(e))
    }

    /// A read-only view of the drive as it was at `version`.
    pub fn checkout(&self, version: u64) -> Result<Drive> {
        let length = self.metadata().info()?.length;
        if version > length || version < 2 {
            return Err(Error::NoSuchVersion { version, length });
        }
        Ok(Drive {
            bee: self.bee.checkout(version).map_err(|e| self.bee_err(e))?,
            ..self.clone()
        })
    }

    /// Takes the drive back to `version` (2, the first, up to the current
    /// one): the entries written after it are cut from the metadata core,
    /// a new fork that replicas follow. The blobs core keeps its blocks
    /// (the chunk index still knows them, so writing that content again
    /// appends nothing; [`Drive::clear`] drops a file's local bytes).
    pub fn truncate(&self, version: u64) -> Result<()> {
        if !self.writable()? {
            return Err(Error::ReadOnly);
        }
        let length = self.metadata().info()?.length;
        if version > length || version < 2 {
            return Err(Error::NoSuchVersion { version, length });
        }
        if version < length {
            self.metadata().truncate(version)?;
        }
        Ok(())
    }

    pub(crate) fn bee_err(&self, e: hyper_bee::Error) -> Error {
        bee_error(self.bee.core(), e)
    }

    /// The entry stored at `path`, symlinks not followed.
    pub fn entry(&self, path: &str) -> Result<Option<Entry>> {
        self.entry_at(&DrivePath::new(path)?)
    }

    pub(crate) fn entry_at(&self, path: &DrivePath) -> Result<Option<Entry>> {
        if path.is_root() {
            return Ok(None);
        }
        let value = self.bee.get(path.key()).map_err(|e| self.bee_err(e))?;
        value.map(|v| decode_entry(&v, path.as_str())).transpose()
    }

    /// Whether a file or symlink is stored at `path` (not followed).
    pub fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.entry(path)?.is_some())
    }

    /// Follows symlinks POSIX-style, in the path's folders too: the file
    /// `path` names and its resolved path, `None` if nothing is there.
    /// More than [`MAX_HOPS`] symlinks is [`Error::SymlinkLoop`].
    pub fn stat(&self, path: &str) -> Result<Option<(DrivePath, Entry)>> {
        let mut at = DrivePath::new(path)?;
        let mut hops = 0;
        'walk: loop {
            let mut hop = |link: &DrivePath, entry: &Entry, rest: &str| -> Result<DrivePath> {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Error::SymlinkLoop(path.to_string()));
                }
                let folder = link.parent().unwrap_or_else(DrivePath::root);
                folder.join(&entry.target)?.join(rest)
            };
            match self.entry_at(&at)? {
                Some(e) if e.kind() == Kind::Symlink => {
                    at = hop(&at, &e, "")?;
                    continue;
                }
                Some(e) => return Ok(Some((at, e))),
                None => {}
            }
            for folder in at.ancestors() {
                match self.entry_at(&folder)? {
                    Some(e) if e.kind() == Kind::Symlink => {
                        let rest = at.relative_to(&folder).unwrap_or("").to_string();
                        at = hop(&folder, &e, &rest)?;
                        continue 'walk;
                    }
                    Some(_) => return Ok(None),
                    None => {}
                }
            }
            return Ok(None);
        }
    }

    /// The whole content of the file `path` names (symlinks followed);
    /// `None` if there is none. For large files use
    /// [`Drive::read_stream`].
    pub fn get(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some((at, entry)) = self.stat(path)? else {
            return Ok(None);
        };
        // The size is the writer's claim: reserve no more than a few blocks.
        let reserve = entry.size.min(crate::MAX_CHUNK as u64 * 16);
        let mut out = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        let mut stream = self.stream_entry(&at, &entry, 0, entry.size)?;
        while let Some(chunk) = stream.next_chunk()? {
            out.extend_from_slice(&chunk);
        }
        Ok(Some(out))
    }

    /// Every entry under `folder`, in path order: the whole subtree, or
    /// with `recursive` false only the files and symlinks directly in it.
    /// Paths `ignore` matches (and everything below an ignored folder) are
    /// left out.
    pub fn list(
        &self,
        folder: &str,
        recursive: bool,
        ignore: Option<&Ignore>,
    ) -> Result<Vec<(DrivePath, Entry)>> {
        let folder = DrivePath::new(folder)?;
        if !recursive {
            let mut out = Vec::new();
            for child in self.readdir(folder.as_str())? {
                let path = folder.child(&child.name)?;
                let rel = path.relative_to(&folder).unwrap_or("");
                if child.kind == ChildKind::Folder || ignore.is_some_and(|i| i.matches(rel, false))
                {
                    continue;
                }
                if let Some(e) = self.entry_at(&path)? {
                    out.push((path, e));
                }
            }
            return Ok(out);
        }
        self.entries(&folder, ignore)?.collect()
    }

    /// Every entry under `folder` (paths `ignore` matches left out), in
    /// path order, one at a time: the bee's range iterator, nothing
    /// collected.
    pub(crate) fn entries<'a>(
        &'a self,
        folder: &DrivePath,
        ignore: Option<&'a Ignore>,
    ) -> Result<impl Iterator<Item = Result<(DrivePath, Entry)>> + use<'a>> {
        let (gt, lt) = folder.subtree_bounds();
        let items = self
            .bee
            .range_iter(&RangeOptions {
                gt: Some(gt),
                lt: Some(lt),
                ..Default::default()
            })
            .map_err(|e| self.bee_err(e))?;
        let folder = folder.clone();
        let entry = move |item: hyper_bee::Result<hyper_bee::Item>| {
            let item = item.map_err(|e| self.bee_err(e))?;
            let text = String::from_utf8(item.key).map_err(|_| Error::Corrupt {
                path: folder.to_string(),
                reason: "a stored path is not UTF-8",
            })?;
            let path = DrivePath::new(&text)?;
            if ignore.is_some_and(|i| i.matches(path.relative_to(&folder).unwrap_or(""), false)) {
                return Ok(None);
            }
            Ok(Some((path, decode_entry(&item.value, &text)?)))
        };
        Ok(items.filter_map(move |item| entry(item).transpose()))
    }

    /// The names directly in `folder` with what each is, in name order.
    /// Skips each child folder's subtree with one seek, so it reads
    /// O(children x log n) blocks, never the whole subtree.
    pub fn readdir(&self, folder: &str) -> Result<Vec<Child>> {
        let folder = DrivePath::new(folder)?;
        let (low, high) = folder.subtree_bounds();
        let mut out = Vec::new();
        let mut options = RangeOptions {
            gt: Some(low.clone()),
            lt: Some(high),
            ..Default::default()
        };
        while let Some(item) = self.bee.peek(&options).map_err(|e| self.bee_err(e))? {
            let rest = item.key.get(low.len()..).unwrap_or_default();
            let (name, deeper) = match rest.iter().position(|&b| b == b'/') {
                Some(i) => (rest.get(..i).unwrap_or_default(), true),
                None => (rest, false),
            };
            let name = String::from_utf8(name.to_vec()).map_err(|_| Error::Corrupt {
                path: folder.to_string(),
                reason: "a stored path is not UTF-8",
            })?;
            let mut skip = low.clone();
            skip.extend_from_slice(name.as_bytes());
            let kind = if deeper {
                skip.push(b'0');
                options.gt = None;
                options.gte = Some(skip);
                ChildKind::Folder
            } else {
                let entry = decode_entry(&item.value, &String::from_utf8_lossy(&item.key))?;
                options.gt = Some(skip);
                options.gte = None;
                match entry.kind() {
                    Kind::Symlink => ChildKind::Symlink,
                    Kind::File => ChildKind::File,
                }
            };
            out.push(Child { name, kind });
        }
        // Key order puts "a-b" before "a/..."; names sort as names.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// What changed under `folder` between `version` and this view, in
    /// path order. Only the folder's key range of the bee is walked, and
    /// subtrees both versions share are not read.
    pub fn diff(&self, version: u64, folder: &str) -> Result<Vec<DiffEntry>> {
        let folder = DrivePath::new(folder)?;
        // From the folder's own path (a file there counts) to the end of
        // its subtree; a sibling like `/a-b` in between is filtered out.
        let (_, lt) = folder.subtree_bounds();
        let range = RangeOptions {
            gte: Some(folder.key().to_vec()),
            lt: Some(lt),
            ..Default::default()
        };
        let mut out = Vec::new();
        for d in self
            .bee
            .diff_iter(version, &range)
            .map_err(|e| self.bee_err(e))?
        {
            let d = d.map_err(|e| self.bee_err(e))?;
            let text = String::from_utf8(d.key).map_err(|_| Error::Corrupt {
                path: folder.to_string(),
                reason: "a stored path is not UTF-8",
            })?;
            let path = DrivePath::new(&text)?;
            if !path.is_within(&folder) {
                continue;
            }
            let decode = |v: Option<Vec<u8>>| v.map(|v| decode_entry(&v, &text)).transpose();
            out.push(DiffEntry {
                now: decode(d.new)?,
                then: decode(d.old)?,
                path,
            });
        }
        Ok(out)
    }

    /// Waits for changes under `folder`: [`hyper_bee::Watch::next`] returns
    /// each new version that changed a path there (see
    /// [`Drive::diff`] for what changed).
    pub fn watch(&self, folder: &str) -> Result<hyper_bee::Watch> {
        let (gt, lt) = DrivePath::new(folder)?.subtree_bounds();
        let range = RangeOptions {
            gt: Some(gt),
            lt: Some(lt),
            ..Default::default()
        };
        self.bee.watch(Some(range)).map_err(|e| self.bee_err(e))
    }

    /// Files, bytes and blocks of this view.
    pub fn info(&self) -> Result<DriveInfo> {
        let (mut files, mut bytes) = (0, 0u64);
        for item in self.entries(&DrivePath::root(), None)? {
            files += 1;
            bytes = bytes.saturating_add(item?.1.size);
        }
        let blobs = self.blobs.info()?;
        Ok(DriveInfo {
            version: self.version()?,
            files,
            bytes,
            blocks: blobs.length,
            blocks_stored: blobs.blocks_stored,
            writable: self.writable()?,
        })
    }

    /// Whether every block of the file at `path` (symlinks followed) is
    /// stored here; false if there is no such file.
    pub fn has(&self, path: &str) -> Result<bool> {
        let Some((_, entry)) = self.stat(path)? else {
            return Ok(false);
        };
        for r in entry.blocks() {
            if !self.blobs.has_range(r)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Decodes and checks an entry stored at `path`.
pub(crate) fn decode_entry(bytes: &[u8], path: &str) -> Result<Entry> {
    let entry = Entry::decode(bytes).map_err(|_| Error::Corrupt {
        path: path.to_string(),
        reason: "the entry does not decode",
    })?;
    layout::check(&entry, path)?;
    Ok(entry)
}

/// A bee error on `meta`, with a missing block named by its core.
pub(crate) fn bee_error(meta: &Core, e: hyper_bee::Error) -> Error {
    match e {
        hyper_bee::Error::Missing(index) => Error::Missing {
            core: meta.key(),
            index,
        },
        other => other.into(),
    }
}
