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

/// The future of a seek, see [`BlockSource::seek`]: the block holding the
/// byte offset and the offset inside it.
pub type SeekFuture = Pin<Box<dyn Future<Output = Result<(u64, u64)>> + Send + 'static>>;

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

    /// The length known here: [`Info::length`](crate::Info::length), the
    /// latest signed length seen and any unsigned tail appended here.
    fn length(&self) -> Result<u64> {
        Ok(self.core().info()?.length)
    }

    /// Whether [`BlockSource::get`] may fetch from elsewhere (a reader
    /// prefetches only then).
    fn remote(&self) -> bool;

    /// The block holding byte `bytes` and the offset inside it. A local
    /// source seeks its own tree at once ([`Core::seek`]: a sparse replica
    /// lacking a node on the way is [`Error::NodeNotAvailable`]); a source
    /// with peers asks one for a seek proof when its tree cannot answer
    /// (one round trip, O(log n) nodes, no block), or fails with
    /// [`Error::SeekFetch`] after `timeout`.
    fn seek(&self, bytes: u64, _timeout: Duration) -> SeekFuture {
        Box::pin(std::future::ready(self.core().seek(bytes)))
    }
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

/// Maps a failure to seek byte `bytes` through peers to
/// [`Error::SeekFetch`].
pub fn seek_error(bytes: u64, error: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::SeekFetch {
        bytes,
        source: Box::new(error),
    }
}

/// Blocks a read stream keeps downloading ahead of itself (a source with
/// peers), unless its options say otherwise.
pub const READ_AHEAD: u64 = 1024;

/// What a [`ReadStream`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The first block.
    pub start: u64,
    /// The end (exclusive). `None`: the length when the stream starts, or
    /// with `live`, no end.
    pub end: Option<u64>,
    /// Past the length, wait for appends and read them as they come.
    pub live: bool,
    /// How long to wait for one block from peers.
    pub timeout: Duration,
    /// Blocks to download ahead of the reader from peers (0: none, each
    /// block is fetched when it is read).
    pub read_ahead: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            start: 0,
            end: None,
            live: false,
            timeout: Duration::from_secs(10),
            read_ahead: READ_AHEAD,
        }
    }
}

/// A block and its index, as a [`ReadStream`] yields it.
pub type IndexedBlock = (u64, Vec<u8>);

/// Wakes a waiting stream when its core changes.
#[derive(Default)]
struct ChangeSignal {
    state: std::sync::Mutex<(bool, Option<std::task::Waker>)>,
}

impl ChangeSignal {
    fn lock(&self) -> std::sync::MutexGuard<'_, (bool, Option<std::task::Waker>)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The blocks of a range of a [`BlockSource`] in order, as
/// `(index, bytes)`: an async stream ([`futures_core::Stream`], or
/// [`ReadStream::next`] without a stream library). With peers behind the
/// source, the next blocks download ahead of the reader. In live mode it
/// never ends by itself: past the length it waits for appends (a writer's
/// own, or those a replication learns of). A block that does not come
/// within the timeout ends it with that error.
pub struct ReadStream {
    source: std::sync::Arc<dyn BlockSource>,
    next: u64,
    end: Option<u64>,
    live: bool,
    timeout: Duration,
    read_ahead: u64,
    pending: Option<BlockFuture>,
    ahead: Option<(u64, Prefetch)>,
    signal: std::sync::Arc<ChangeSignal>,
    _subscription: crate::Subscription,
    done: bool,
}

impl ReadStream {
    /// Reads `options` of `source`.
    pub fn new(source: std::sync::Arc<dyn BlockSource>, options: &ReadOptions) -> Result<Self> {
        let signal = std::sync::Arc::new(ChangeSignal::default());
        let subscription = source.core().subscribe({
            let signal = signal.clone();
            move || {
                let waker = {
                    let mut st = signal.lock();
                    st.0 = true;
                    st.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            }
        });
        let end = match (options.end, options.live) {
            (Some(end), _) => Some(end),
            (None, true) => None,
            (None, false) => Some(source.length()?),
        };
        Ok(ReadStream {
            source,
            next: options.start,
            end,
            live: options.live,
            timeout: options.timeout,
            read_ahead: options.read_ahead,
            pending: None,
            ahead: None,
            signal,
            _subscription: subscription,
            done: false,
        })
    }

    /// The next block, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<IndexedBlock>> {
        std::future::poll_fn(|cx| self.poll_block(cx)).await
    }

    /// Downloads the blocks after `next` (up to `until`) ahead of the reader.
    fn read_ahead(&mut self, until: u64) {
        let ahead = self.read_ahead;
        if !self.source.remote() || ahead == 0 {
            return;
        }
        let covered = self.ahead.as_ref().map_or(self.next, |(end, _)| *end);
        if covered >= until.min(self.next + ahead) || covered > self.next + ahead / 2 {
            return;
        }
        let end = until.min(covered.max(self.next) + ahead);
        let prefetch = self.source.prefetch(covered.max(self.next)..end);
        self.ahead = Some((end, prefetch));
    }

    fn poll_block(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<IndexedBlock>>> {
        use std::task::Poll;
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            if let Some(pending) = self.pending.as_mut() {
                let result = match pending.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => r,
                };
                self.pending = None;
                let index = self.next;
                self.next += 1;
                self.done = result.is_err();
                return Poll::Ready(Some(result.map(|b| (index, b))));
            }
            if self.end.is_some_and(|end| self.next >= end) {
                self.done = true;
                continue;
            }
            // Cleared before the length is read: an append after this
            // read sets it again (no lost wake-up).
            self.signal.lock().0 = false;
            let length = match self.source.length() {
                Ok(l) => l,
                Err(e) => {
                    self.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
            };
            let until = self.end.unwrap_or(length).min(length);
            if self.next < until || (!self.live && self.end.is_some()) {
                // Not live: blocks past the length are the source's to
                // wait for (or refuse).
                self.read_ahead(self.end.unwrap_or(length));
                self.pending = Some(self.source.get(self.next, self.timeout));
                continue;
            }
            let mut st = self.signal.lock();
            if st.0 {
                continue;
            }
            st.1 = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

impl futures_core::Stream for ReadStream {
    type Item = Result<IndexedBlock>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().poll_block(cx)
    }
}

/// The bytes of a [`BlockSource`] from a byte offset, as chunks: the rest
/// of the block holding the offset, then whole blocks, the last one cut
/// at `length` bytes if given. The offset is found with [`Core::seek`] on
/// the local tree ([`ByteStream::new`]), or with [`BlockSource::seek`]
/// ([`ByteStream::open`]: on a sparse replica whose tree lacks a node on
/// the way, one seek proof from a peer).
pub struct ByteStream {
    blocks: ReadStream,
    skip: u64,
    left: Option<u64>,
}

impl ByteStream {
    /// `length` bytes (`None`: to the end) of `source` from byte `offset`,
    /// seeking on the local tree only (a sparse replica may lack the nodes:
    /// [`Error::NodeNotAvailable`]; see [`ByteStream::open`]).
    pub fn new(
        source: std::sync::Arc<dyn BlockSource>,
        offset: u64,
        length: Option<u64>,
        timeout: Duration,
    ) -> Result<ByteStream> {
        let start = match Self::past_end(source.as_ref(), offset)? {
            Some(end) => end,
            None => source.core().seek(offset)?,
        };
        Self::at(source, start, length, timeout)
    }

    /// Blocks to read ahead for `length` bytes: about as many as they
    /// span at the core's mean block size, and two more.
    fn read_ahead(source: &dyn BlockSource, length: Option<u64>) -> Result<u64> {
        let info = source.core().info()?;
        let mean = (info.byte_length / info.length.max(1)).max(1);
        Ok(length.map_or(READ_AHEAD, |l| (l / mean + 2).min(READ_AHEAD)))
    }

    /// [`ByteStream::new`], seeking through the source
    /// ([`BlockSource::seek`]: a source with peers asks one for the seek
    /// proof when the local tree lacks the path, waiting up to `timeout`).
    pub async fn open(
        source: std::sync::Arc<dyn BlockSource>,
        offset: u64,
        length: Option<u64>,
        timeout: Duration,
    ) -> Result<ByteStream> {
        let start = match Self::past_end(source.as_ref(), offset)? {
            Some(end) => end,
            None => source.seek(offset, timeout).await?,
        };
        Self::at(source, start, length, timeout)
    }

    /// Where a stream from byte `offset` starts if that is at or past the
    /// known byte length: the length and 0.
    fn past_end(source: &dyn BlockSource, offset: u64) -> Result<Option<(u64, u64)>> {
        let info = source.core().info()?;
        Ok((offset >= info.byte_length).then_some((info.length, 0)))
    }

    fn at(
        source: std::sync::Arc<dyn BlockSource>,
        (start, skip): (u64, u64),
        length: Option<u64>,
        timeout: Duration,
    ) -> Result<ByteStream> {
        let read_ahead = Self::read_ahead(source.as_ref(), length)?;
        let blocks = ReadStream::new(
            source,
            &ReadOptions {
                start,
                timeout,
                read_ahead,
                ..ReadOptions::default()
            },
        )?;
        Ok(ByteStream {
            blocks,
            skip,
            left: length,
        })
    }

    /// The next chunk, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>>> {
        std::future::poll_fn(|cx| self.poll_chunk(cx)).await
    }

    fn poll_chunk(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Vec<u8>>>> {
        use std::task::Poll;
        loop {
            if self.left == Some(0) {
                return Poll::Ready(None);
            }
            let block = match self.blocks.poll_block(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok((_, b)))) => b,
            };
            let skip = usize::try_from(std::mem::take(&mut self.skip)).unwrap_or(usize::MAX);
            let mut chunk = block.get(skip..).unwrap_or_default().to_vec();
            if let Some(left) = self.left.as_mut() {
                let keep = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                chunk.truncate(keep);
                *left -= keep as u64;
            }
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(chunk)));
            }
        }
    }
}

impl futures_core::Stream for ByteStream {
    type Item = Result<Vec<u8>>;

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().poll_chunk(cx)
    }
}

/// Writes bytes into a writable core as blocks of `block_size` bytes
/// ([`std::io::Write`]), appending `batch` full blocks per transaction.
/// [`BlockWriter::finish`] (or `flush`) appends what is buffered, the last
/// block shorter; dropping the writer flushes too, ignoring errors.
pub struct BlockWriter {
    core: Core,
    block_size: usize,
    batch: usize,
    blocks: Vec<Vec<u8>>,
    partial: Vec<u8>,
}

impl BlockWriter {
    /// A writer to `core` making blocks of `block_size` (at least 1) bytes,
    /// `batch` (at least 1) per append.
    pub fn new(core: Core, block_size: usize, batch: usize) -> BlockWriter {
        BlockWriter {
            core,
            block_size: block_size.max(1),
            batch: batch.max(1),
            blocks: Vec::new(),
            partial: Vec::new(),
        }
    }

    fn append(&mut self) -> Result<()> {
        if !self.blocks.is_empty() {
            self.core.append_batch(&self.blocks)?;
            self.blocks.clear();
        }
        Ok(())
    }

    /// Appends everything buffered (the last block may be short); the
    /// core's length after it.
    pub fn finish(mut self) -> Result<u64> {
        self.flush_blocks()?;
        Ok(self.core.info()?.length)
    }

    fn flush_blocks(&mut self) -> Result<()> {
        if !self.partial.is_empty() {
            self.blocks.push(std::mem::take(&mut self.partial));
        }
        self.append()
    }
}

impl std::io::Write for BlockWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            let room = self.block_size - self.partial.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.partial.extend_from_slice(now);
            rest = later;
            if self.partial.len() == self.block_size {
                self.blocks.push(std::mem::take(&mut self.partial));
                if self.blocks.len() >= self.batch {
                    self.append().map_err(std::io::Error::other)?;
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.flush_blocks().map_err(std::io::Error::other)
    }
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        let _ = self.flush_blocks();
    }
}
