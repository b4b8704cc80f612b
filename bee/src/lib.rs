//! hyper-bee: an append-only B-tree key/value store in one `hyper-core`
//! core, in the manner of Hyperbee.
//!
//! Block 0 of the core is a header; every write appends one block with the
//! key, the value (or a deletion) and the tree nodes the write changed, whose
//! children point at earlier blocks (`bee/proto/bee.proto` is the format).
//! Old versions stay readable ([`Bee::checkout`]) because nothing is
//! rewritten; a reader holding only part of the core reads a key through
//! O(log n) blocks.
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
//! assert_eq!(batch.get(b"banana")?, Some(b"2".to_vec())); // a batch reads its own writes
//! batch.put(b"cherry", b"3");
//! batch.commit()?; // one append: readers see both or neither
//! assert_eq!(bee.get(b"banana")?, Some(b"2".to_vec()));
//! assert!(!bee.put_if(b"apple", b"9", &Condition::Absent)?); // compare-and-swap
//! let from_b = bee.range(&RangeOptions { gte: Some(b"b".to_vec()), ..Default::default() })?;
//! assert_eq!(from_b.len(), 2);
//! let before = bee.checkout(2)?; // the version after the first put
//! assert_eq!(before.get(b"banana")?, None);
//! assert_eq!(bee.get_by_seq(1)?.map(|c| c.key), Some(b"apple".to_vec()));
//! # Ok(()) }
//! ```
//!
//! # Encrypted bees
//!
//! A bee opened on an encrypted handle of its core
//! (`Bee::open(core.with_encryption(&key)?)`, see
//! `hyper_core::Core::with_encryption`) writes every block (header, keys,
//! values, tree nodes) encrypted and reads them decrypted: peers with only
//! the core key replicate, verify and serve it and cannot read a key. A
//! reader's replica opened the same way reads sparsely through them
//! (tests/tests/encrypted_layers.rs); a wrong key fails at the first block
//! read (`Decrypt`), never with a garbled tree.
//!
//! # Reading one result at a time
//!
//! [`Bee::range_iter`], [`Bee::history_iter`] (a [`HistoryOptions`] with
//! bounds, direction and a limit) and [`Bee::diff_iter`] (a key range and
//! a limit) are iterators: the walk goes only as far as the results taken.
//! `range`, `history` and `diff` collect them. A block a sparse replica
//! lacks ends an iterator with [`Error::Missing`].
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use hyper_bee::{Bee, HistoryOptions, RangeOptions};
//! # let store = hyper_core::Store::open(dir.path())?;
//! # let bee = Bee::open(store.named("db")?)?;
//! for i in 0..100u32 {
//!     bee.put(format!("k{i:03}").as_bytes(), b"v")?;
//! }
//! let v = bee.version()?;
//! bee.put(b"k050", b"changed")?;
//! let newest_three: Vec<u64> = bee
//!     .history_iter(&HistoryOptions { reverse: true, limit: Some(3), ..Default::default() })?
//!     .map(|c| c.map(|c| c.seq))
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(newest_three, [101, 100, 99]);
//! let in_range = RangeOptions { gte: Some(b"k040".to_vec()), lt: Some(b"k060".to_vec()), ..Default::default() };
//! let changed: Vec<_> = bee.diff_iter(v, &in_range)?.collect::<Result<_, _>>()?;
//! assert_eq!(changed[0].key, b"k050");
//! # Ok(()) }
//! ```
//!
//! # Reading through a block source (remote bees)
//!
//! [`Bee::open_source`] opens a bee on any [`hyper_core::BlockSource`]: a
//! local core, or `hyper_wire::ReplicatedSource` (a replica with a
//! replication behind it). The async reads fetch what they miss:
//! [`Bee::get_async`] walks one path (O(log n) blocks), and the streams
//! [`Bee::range_stream`], [`Bee::history_stream`], [`Bee::diff_stream`]
//! yield each result as the walk reaches it while the blocks ahead of it
//! are fetched in parallel (see [`Stream`]). On a local core they never
//! wait.
//!
//! ```no_run
//! # async fn demo(key: hyper_core::CoreKey) -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::Arc, time::Duration};
//! use hyper_bee::{Bee, RangeOptions};
//! use hyper_wire::{ReplicatedSource, Replication, ReplicationOptions, connect_tcp};
//!
//! let store = hyper_core::Store::open("/tmp/reader")?;
//! let replica = store.replica(&key)?;
//! let replication = Replication::new(store, hyper_core::KeyPair::generate()?, ReplicationOptions::default());
//! let source = ReplicatedSource::new(&replication, &replica);
//! let _connection = connect_tcp(&replication, "127.0.0.1:9000").await?;
//! let bee = Bee::open_source(Arc::new(source), Duration::from_secs(10)).await?;
//! println!("{:?}", bee.get_async(b"some key").await?);
//! let mut all = bee.range_stream(&RangeOptions::default())?;
//! while let Some(item) = all.next().await {
//!     let item = item?; // printed as it comes, not after the whole walk
//!     println!("{}", String::from_utf8_lossy(&item.key));
//! }
//! # Ok(()) }
//! ```
//!
//! # Watching
//!
//! [`Bee::watch`] returns each new version that changed keys of a range
//! ([`Watch::next`] with a timeout, or [`Watch::next_async`]);
//! [`Bee::get_and_watch`] one key's value and each new one.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let store = hyper_core::Store::open(dir.path())?;
//! # let bee = hyper_bee::Bee::open(store.named("db")?)?;
//! let mut price = bee.get_and_watch(b"price")?;
//! assert_eq!(price.value(), None);
//! let writer = bee.clone();
//! std::thread::spawn(move || writer.put(b"price", b"42"));
//! assert_eq!(price.next_async().await?, Some(b"42".to_vec()));
//! # Ok(()) }
//! ```
//!
//! Hostile blocks are errors, never a crash or an endless walk: walks are
//! iterative and at most [`MAX_DEPTH`] deep, nodes need ordered keys and
//! distinct children, and a read visits at most as many nodes as the bee
//! has blocks.

mod bee;
mod diff;
mod error;
mod fetch;
#[doc(hidden)]
pub mod fuzzing;
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
