//! [`BlockSource`]: the one way the layers above (bee, drive, autobase) read
//! blocks, whether they are all stored here or come from peers. A local
//! [`Core`] answers at once; a core with a replication behind it
//! (`hyper_wire::ReplicatedSource`) waits for a block up to a timeout and
//! downloads a range on [`BlockSource::prefetch`]. The trait needs no
//! async runtime: futures are boxed, and the crate never spawns.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::time::Duration;

use crate::core::Core;
use crate::error::{Error, Result};

/// The future of one block, see [`BlockSource::get`].
pub type BlockFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>>> + Send + 'static>>;

/// Where blocks come from: a local core, or one with peers behind it.
pub trait BlockSource: Send + Sync {
    /// The local core the blocks are stored in (what appends, subscriptions
    /// and the known length go through).
    fn core(&self) -> &Core;

    /// Block `index`: at once when it is stored here; otherwise, for a
    /// source with peers, once a peer sent it (verified and stored), or
    /// [`Error::Fetch`] after `timeout`. A local source never waits: a
    /// block it lacks is [`Error::NotAvailable`].
    fn get(&self, index: u64, timeout: Duration) -> BlockFuture;

    /// Starts fetching the blocks of `range` in the background (a source
    /// with peers downloads them; a local one does nothing). The fetch goes
    /// on until it is done or the returned [`Prefetch`] is dropped.
    fn prefetch(&self, range: Range<u64>) -> Prefetch;

    /// The length known here (the latest signed length seen).
    fn length(&self) -> Result<u64> {
        Ok(self.core().info()?.length)
    }

    /// Whether [`BlockSource::get`] may fetch from elsewhere (a reader
    /// prefetches only then).
    fn remote(&self) -> bool;
}

/// A background fetch started by [`BlockSource::prefetch`]; dropping it
/// stops the fetch.
#[must_use = "dropping a prefetch stops it"]
pub struct Prefetch {
    _guard: Option<Box<dyn Send + Sync>>,
}

impl Prefetch {
    /// A prefetch that fetches nothing (a local source).
    pub fn none() -> Prefetch {
        Prefetch { _guard: None }
    }

    /// A prefetch that runs until `guard` is dropped (for example a task
    /// handle that aborts its task on drop).
    pub fn new(guard: impl Send + Sync + 'static) -> Prefetch {
        Prefetch {
            _guard: Some(Box::new(guard)),
        }
    }
}

impl std::fmt::Debug for Prefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetch")
            .field("running", &self._guard.is_some())
            .finish()
    }
}

/// A local core: every read is answered at once from the store.
impl BlockSource for Core {
    fn core(&self) -> &Core {
        self
    }

    fn get(&self, index: u64, _timeout: Duration) -> BlockFuture {
        Box::pin(std::future::ready(Core::get(self, index)))
    }

    fn prefetch(&self, _range: Range<u64>) -> Prefetch {
        Prefetch::none()
    }

    fn remote(&self) -> bool {
        false
    }
}

/// Maps a fetch failure of block `index` to [`Error::Fetch`].
pub fn fetch_error(index: u64, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Fetch {
        index,
        source: Box::new(error),
    }
}
