//! Async reads on the bee's [`BlockSource`]: a [`Stream`] runs a walk,
//! yields each result as soon as the walk reaches it, and keeps the blocks
//! the walk will want next in flight in parallel (the children and keys of
//! the nodes being walked, as far as they are known here; for history, a
//! background download of the next run of blocks). A step that misses a
//! block waits for that block only. Runtime-free: futures come from the
//! source and are polled here, never spawned.

use std::collections::{HashSet, VecDeque};
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_core::{BlockFuture, Prefetch};

use crate::bee::{Bee, Change, Item, RangeOptions};
use crate::diff::Difference;
use crate::error::{Error, Result};
use crate::read::HistoryOptions;
use crate::walk::Walk;

/// Blocks a stream keeps in flight at most (the replicator sends at most
/// 128 requests to one peer at a time).
const MAX_INFLIGHT: usize = 256;
/// How far ahead of the walk a stream looks for blocks to fetch.
const LOOKAHEAD: usize = 512;
/// Blocks per background download of a walk that reads a run (history).
const CHUNK: u64 = 4096;
/// Blocks in flight one at a time while a bulk download runs: only what
/// the walk needs next, ahead of the download's order.
const INFLIGHT_WITH_BULK: usize = 32;

/// The results of an async read, each as soon as the walk reaches it.
/// Implements [`futures_core::Stream`]; [`Stream::next`] and
/// [`Stream::collect`] serve without a stream library. On a local core it
/// never waits; with peers behind the source a block that does not come
/// within the bee's timeout ends it with the fetch error. After an error
/// it yields nothing more. Dropping it cancels its fetches.
pub struct Stream<T> {
    bee: Bee,
    walk: Box<dyn Walk<Item = T>>,
    /// Fetches in flight: the block, the bee's cuts when it was asked.
    inflight: Vec<(u64, u64, BlockFuture)>,
    requested: HashSet<u64>,
    /// Background downloads of runs, oldest first, and where the last one
    /// ends in the walk's direction.
    prefetches: VecDeque<Prefetch>,
    frontier: Option<u64>,
    /// The walk's bulk download, once the read proved large.
    bulk: Option<Prefetch>,
    /// Blocks fetched one at a time so far.
    fetched: u64,
    /// Steps since the last look ahead, and how many to wait between two.
    since: usize,
    interval: usize,
    remote: bool,
    /// The block the walk waits for (it looks ahead once per block).
    blocked_on: Option<u64>,
    done: bool,
}

impl<T> Unpin for Stream<T> {}

impl<T> Stream<T> {
    pub(crate) fn new(bee: Bee, walk: Box<dyn Walk<Item = T>>) -> Stream<T> {
        let remote = bee.source.remote();
        Stream {
            bee,
            walk,
            inflight: Vec::new(),
            requested: HashSet::new(),
            prefetches: VecDeque::new(),
            frontier: None,
            bulk: None,
            fetched: 0,
            since: 0,
            interval: 0,
            remote,
            blocked_on: None,
            done: false,
        }
    }

    /// The next result, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<T>> {
        std::future::poll_fn(|cx| self.poll_step(cx)).await
    }

    /// Every result, in order.
    pub async fn collect(mut self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        while let Some(item) = self.next().await {
            out.push(item?);
        }
        Ok(out)
    }

    /// How many blocks are being fetched now (for tests and progress).
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    fn finish(&mut self) {
        self.done = true;
        self.inflight.clear();
        self.prefetches.clear();
        self.bulk = None;
    }

    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            match self.walk.step(&self.bee) {
                Ok(Some(item)) => {
                    self.since += 1;
                    if self.remote && self.since >= self.interval {
                        self.look_ahead(cx);
                    }
                    return Poll::Ready(Some(Ok(item)));
                }
                Ok(None) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Err(Error::Missing(seq)) if self.remote => {
                    if self.blocked_on.replace(seq) != Some(seq) {
                        self.look_ahead(cx);
                    }
                    let now = self.request(seq, cx);
                    match now.or_else(|| self.poll_inflight(cx, seq)) {
                        Some(Ok(())) => continue,
                        Some(Err(e)) => {
                            self.finish();
                            return Poll::Ready(Some(Err(e)));
                        }
                        None => return Poll::Pending,
                    }
                }
                Err(e) => {
                    self.finish();
                    return Poll::Ready(Some(Err(e)));
                }
            }
        }
    }

    /// Puts in flight what the walk will read next and is not here yet.
    fn look_ahead(&mut self, cx: &mut Context<'_>) {
        self.since = 0;
        let mut started = 0;
        if let Some(window) = self.walk.window() {
            started += self.prefetch_run(window);
        }
        if self.bulk.is_none()
            && let Some((range, whole)) = self.walk.bulk()
            && (whole || self.fetched >= ((range.end - range.start) / 16).max(64))
        {
            // A large read: one download of everything it may need moves
            // blocks in big verified batches; single fetches stay for what
            // the walk needs next.
            self.bulk = Some(self.bee.source.prefetch(range));
        }
        let most = if self.bulk.is_some() {
            INFLIGHT_WITH_BULK
        } else {
            MAX_INFLIGHT
        };
        {
            let mut upcoming = Vec::new();
            self.walk.upcoming(&self.bee, LOOKAHEAD, &mut upcoming);
            for seq in upcoming {
                if self.inflight.len() >= most {
                    // Make room: finished fetches leave the list.
                    self.poll_inflight(cx, u64::MAX);
                    if self.inflight.len() >= most {
                        break;
                    }
                }
                if !self.requested.contains(&seq) && !self.bee.is_local(seq) {
                    // A failure shows when the walk needs the block.
                    let _ = self.request(seq, cx);
                    started += 1;
                }
            }
        }
        // Nothing to start: look less often (a walk over local blocks
        // pays almost nothing); something: look again soon.
        self.interval = if started == 0 {
            (self.interval * 2).clamp(16, 1024)
        } else {
            16
        };
    }

    /// Keeps the next chunk of the walk's run downloading: once less
    /// than a chunk is covered ahead of the walk, downloads the next one
    /// (in the walk's direction); returns how many blocks it started.
    fn prefetch_run(&mut self, (window, reverse): (Range<u64>, bool)) -> usize {
        let part = if reverse {
            let frontier = self.frontier.unwrap_or(window.end).min(window.end);
            if window.end - frontier >= CHUNK || frontier <= window.start {
                return 0;
            }
            window.start.max(frontier.saturating_sub(CHUNK))..frontier
        } else {
            let frontier = self.frontier.unwrap_or(window.start).max(window.start);
            if frontier - window.start >= CHUNK || frontier >= window.end {
                return 0;
            }
            frontier..window.end.min(frontier + CHUNK)
        };
        self.frontier = Some(if reverse { part.start } else { part.end });
        // The walk is inside the last chunk: the one before it is done.
        if self.prefetches.len() >= 3 {
            self.prefetches.pop_front();
        }
        let n = (part.end - part.start) as usize;
        self.prefetches.push_back(self.bee.source.prefetch(part));
        n
    }

    /// Starts fetching `seq` (polled once, so it is sent); how it ended if
    /// it did at once (the block is in the cache then).
    fn request(&mut self, seq: u64, cx: &mut Context<'_>) -> Option<Result<()>> {
        if !self.requested.insert(seq) {
            return None;
        }
        self.fetched += 1;
        let cuts = self.bee.cuts();
        let mut future = self.bee.source.get(seq, self.bee.timeout);
        match future.as_mut().poll(cx) {
            Poll::Ready(result) => {
                self.requested.remove(&seq);
                Some(
                    result
                        .map_err(Error::from)
                        .and_then(|bytes| self.bee.insert_block(seq, &bytes, cuts).map(|_| ())),
                )
            }
            Poll::Pending => {
                self.inflight.push((seq, cuts, future));
                None
            }
        }
    }

    /// Polls every fetch in flight; those done leave the list (their
    /// blocks go into the cache). Returns how the fetch of `wanted` ended,
    /// if it did (`Some(Ok)` also when it was not in flight: it is here).
    fn poll_inflight(&mut self, cx: &mut Context<'_>, wanted: u64) -> Option<Result<()>> {
        // Not in flight: here already (or to be asked again by the step).
        let in_flight = self.inflight.iter().any(|(seq, _, _)| *seq == wanted);
        let mut outcome = (!in_flight).then_some(Ok(()));
        let mut i = 0;
        while let Some((seq, cuts, future)) = self.inflight.get_mut(i) {
            let (seq, cuts) = (*seq, *cuts);
            match future.as_mut().poll(cx) {
                Poll::Pending => i += 1,
                Poll::Ready(result) => {
                    drop(self.inflight.swap_remove(i));
                    self.requested.remove(&seq);
                    let result = result
                        .map_err(Error::from)
                        .and_then(|bytes| self.bee.insert_block(seq, &bytes, cuts).map(|_| ()));
                    if seq == wanted {
                        outcome = Some(result);
                    }
                }
            }
        }
        outcome
    }
}

impl<T> futures_core::Stream for Stream<T> {
    type Item = Result<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<T>>> {
        self.get_mut().poll_step(cx)
    }
}

impl Bee {
    /// [`Bee::range_iter`] on the bee's source: each entry as the walk
    /// reaches it, the blocks ahead of the walk fetched in parallel.
    pub fn range_stream(&self, options: &RangeOptions) -> Result<Stream<Item>> {
        Ok(Stream::new(
            self.clone(),
            Box::new(self.range_walk(options)?),
        ))
    }

    /// [`Bee::history_iter`] on the bee's source: the writes as they come,
    /// the next run of blocks downloading in the background.
    pub fn history_stream(&self, options: &HistoryOptions) -> Result<Stream<Change>> {
        Ok(Stream::new(
            self.clone(),
            Box::new(self.history_walk(options)?),
        ))
    }

    /// [`Bee::diff_iter`] on the bee's source.
    pub fn diff_stream(&self, from: u64, options: &RangeOptions) -> Result<Stream<Difference>> {
        Ok(Stream::new(
            self.clone(),
            Box::new(self.diff_walk(from, options)?),
        ))
    }

    /// Runs a sync read, fetching each block it reports missing from the
    /// source and running it again (a lookup walks one path: O(log n)
    /// blocks, one at a time).
    pub(crate) async fn fetching<T>(&self, op: impl Fn(&Bee) -> Result<T>) -> Result<T> {
        loop {
            match op(self) {
                Err(Error::Missing(seq)) if self.source.remote() => {
                    let cuts = self.cuts();
                    let bytes = self.source.get(seq, self.timeout).await?;
                    self.insert_block(seq, &bytes, cuts)?;
                }
                other => return other,
            }
        }
    }

    /// [`Bee::get`] on the bee's source: fetches the O(log n) blocks of the
    /// lookup it lacks.
    pub async fn get_async(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.fetching(|b| b.get(key)).await
    }

    /// [`Bee::get_item`] on the bee's source.
    pub async fn get_item_async(&self, key: &[u8]) -> Result<Option<Item>> {
        self.fetching(|b| b.get_item(key)).await
    }

    /// [`Bee::peek`] on the bee's source.
    pub async fn peek_async(&self, options: &RangeOptions) -> Result<Option<Item>> {
        let one = RangeOptions {
            limit: Some(1),
            ..options.clone()
        };
        self.range_stream(&one)?.next().await.transpose()
    }
}
