//! [`LiveHistory`]: the writes of a bee from a sequence number on, waiting
//! for new ones once it has caught up.

use std::collections::VecDeque;
use std::time::Duration;

use crate::bee::{Bee, Change};
use crate::error::Result;
use crate::watch::Watch;

/// Follows a bee's history as it is written. After a truncation that cut
/// writes it returned, it goes on from the cut: the new writes at those
/// sequence numbers come next.
pub struct LiveHistory {
    bee: Bee,
    next: u64,
    buffered: VecDeque<Change>,
    watch: Watch,
}

impl LiveHistory {
    pub(crate) fn new(bee: Bee, from: u64) -> Result<LiveHistory> {
        let watch = bee.watch(None)?;
        Ok(LiveHistory {
            bee,
            next: from.max(1),
            buffered: VecDeque::new(),
            watch,
        })
    }

    /// The next write, waiting up to `timeout` for one if all so far were
    /// returned; `None` if none came.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Change>> {
        loop {
            if let Some(kept) = self.watch.cut()? {
                // Writes from `kept` on were cut: the new ones there come next.
                self.buffered.retain(|c| c.seq < kept);
                self.next = self.next.min(kept.max(1));
            }
            if let Some(c) = self.buffered.pop_front() {
                return Ok(Some(c));
            }
            let version = self.bee.version()?;
            if version > self.next {
                self.buffered
                    .extend(self.bee.history(self.next..version, false)?);
                self.next = version;
                continue;
            }
            if self.watch.next(timeout)?.is_none() {
                return Ok(None);
            }
        }
    }
}
