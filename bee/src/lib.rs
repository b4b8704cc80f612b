//! hyper-bee: an append-only B-tree key/value store in one `hyper-core`
//! core, in the manner of Hyperbee.
//!
//! Block 0 of the core is a header; every write appends one block with the
//! key, the value (or a deletion) and the tree nodes the write changed, whose
//! children point at earlier blocks (`bee/proto/bee.proto` is the format).
//! Old versions stay readable ([`Bee::checkout`]) because nothing is
//! rewritten; a reader holding only part of the core reads a key through
//! O(log n) blocks and gets [`Error::Missing`] for a block it lacks.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use hyper_bee::{Bee, Condition, RangeOptions};
//!
//! let store = hyper_core::Store::open(dir.path())?;
//! let bee = Bee::open(store.named("db")?)?;
//! bee.put(b"apple", b"1")?;
//! let mut batch = bee.batch();
//! batch.put(b"banana", b"2");
//! batch.put(b"cherry", b"3");
//! batch.commit()?; // one append: readers see both or neither
//! assert_eq!(bee.get(b"banana")?, Some(b"2".to_vec()));
//! assert!(!bee.put_if(b"apple", b"9", &Condition::Absent)?); // compare-and-swap
//! let from_b = bee.range(&RangeOptions { gte: Some(b"b".to_vec()), ..Default::default() })?;
//! assert_eq!(from_b.len(), 2);
//! let before = bee.checkout(2)?; // the version after the first put
//! assert_eq!(before.get(b"banana")?, None);
//! # Ok(()) }
//! ```

mod bee;
mod diff;
mod error;
mod fetch;
mod live;
pub mod messages;
mod read;
mod stream;
mod tree;
mod walk;
mod watch;

pub use bee::{
    Batch, Bee, Change, Condition, DEFAULT_TIMEOUT, FORMAT_VERSION, Item, PROTOCOL, RangeOptions,
    SUB_SEPARATOR,
};
pub use diff::Difference;
pub use error::{Error, Result};
pub use fetch::with_fetch;
pub use live::LiveHistory;
pub use read::HistoryOptions;
pub use stream::Stream;
pub use tree::{MAX_DEPTH, MAX_KEYS, MIN_KEYS};
pub use walk::Iter;
pub use watch::{KeyWatch, Watch};
