//! hyper-drive: a replicated filesystem on `hyper-bee` and `hyper-core`.
//!
//! A [`Drive`] is two cores: a metadata bee mapping normalised paths
//! ([`DrivePath`]) to [`Entry`] values (kind, mode, size, mtime, BLAKE3
//! hash, where the bytes are; `drive/proto/drive.proto` is the format), and
//! a blobs core holding file contents as content-defined chunks (FastCDC)
//! deduplicated across every file and version. The drive key is the
//! metadata core's key; the blobs key is in the drive's first write, signed
//! by its writer.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use hyper_drive::{Drive, FileMeta};
//!
//! let store = hyper_core::Store::open(dir.path())?;
//! let drive = Drive::named(&store, "site")?;
//! drive.put("/index.html", b"<h1>hi</h1>", &FileMeta::default())?;
//! drive.symlink("/home.html", "index.html")?;
//! assert_eq!(drive.get("/home.html")?, Some(b"<h1>hi</h1>".to_vec()));
//! let mut batch = drive.batch(); // one append: both or neither
//! batch.put("/css/a.css", b"h1{}", &FileMeta::default())?;
//! batch.del("/home.html")?;
//! batch.commit()?;
//! let names: Vec<String> = drive.readdir("/")?.into_iter().map(|c| c.name).collect();
//! assert_eq!(names, ["css", "index.html"]);
//! let mut part = drive.read_stream("/index.html", 4, Some(6))?; // half-open
//! assert_eq!(part.next_chunk()?, Some(b"hi".to_vec()));
//! let before = drive.checkout(3)?; // as it was after the first put
//! assert!(before.entry("/css/a.css")?.is_none());
//! # Ok(()) }
//! ```

mod chunk;
mod drive;
mod error;
pub mod fetch;
mod folder;
#[doc(hidden)]
pub mod fuzzing;
mod ignore;
mod index;
mod layout;
pub mod messages;
pub mod mirror;
mod path;
mod read;
mod write;

pub use chunk::{AVG_CHUNK, Chunker, MAX_CHUNK, MIN_CHUNK, chunks};
pub use drive::{
    Child, ChildKind, DiffEntry, Drive, DriveInfo, DriveOpener, FORMAT_VERSION, HEADER_KEY,
    MAX_HOPS, PROTOCOL,
};
pub use error::{Error, Result};
pub use fetch::{Fetch, Progress};
pub use folder::{FSYNC_FILES, Folder, PARTIAL_SUFFIX, SYNCFS_OTHERS_MAX, Staged, Stat};
pub use ignore::{IGNORE_FILE, Ignore};
pub use layout::{Piece, block_ranges};
pub use messages::{Entry, Kind};
pub use path::DrivePath;
pub use read::ReadStream;
pub use write::{BLOCK_SIZE, Batch, Content, FileMeta, WriteStream, now_ns};
