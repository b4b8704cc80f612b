//! [`Watch`]: waiting for the next change of a bee, optionally within a key
//! range, blocking ([`Watch::next`], with a timeout) or async
//! ([`Watch::next_async`]); [`KeyWatch`]: one key's value as it changes.
//! Runtime-free: a core change wakes a condition variable and the wakers
//! of async waiters.

use std::sync::{Arc, Condvar, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use hyper_core::{Snapshot, Subscription};

use crate::bee::{Bee, RangeOptions};
use crate::error::Result;

/// Change ticks of a core, and who waits for the next one.
#[derive(Default)]
struct Signal {
    state: Mutex<(u64, Vec<Waker>)>,
    cv: Condvar,
}

impl Signal {
    fn ticks(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn tick(&self) {
        let wakers = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            st.0 += 1;
            std::mem::take(&mut st.1)
        };
        self.cv.notify_all();
        for w in wakers {
            w.wake();
        }
    }
}

/// How much of what `snapshot` saw is still in `core`: its length, or
/// where a truncation since cut it (found by halving: a read of a block
/// the cut removed is `SnapshotInvalidated`, whether or not the block is
/// stored here).
fn kept(snapshot: &Snapshot) -> u64 {
    let cut = |i| {
        matches!(
            snapshot.get(i),
            Err(hyper_core::Error::SnapshotInvalidated { .. })
        )
    };
    let (mut low, mut high) = (0, snapshot.length());
    while low < high {
        let mid = low + (high - low) / 2;
        if cut(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// Waits for versions of a bee that change keys of interest.
pub struct Watch {
    bee: Bee,
    seen: u64,
    /// The core as of `seen` and its cuts then: tell when a truncation
    /// cut what was seen.
    snapshot: Snapshot,
    cuts: u64,
    range: Option<RangeOptions>,
    signal: Arc<Signal>,
    _subscription: Subscription,
}

impl Watch {
    pub(crate) fn new(bee: Bee, range: Option<RangeOptions>) -> Result<Watch> {
        let signal = Arc::new(Signal::default());
        let wake = signal.clone();
        let subscription = bee.core().subscribe(move || wake.tick());
        let cuts = bee.core().cuts()?;
        let snapshot = bee.core().snapshot()?;
        let seen = bee.version()?;
        Ok(Watch {
            bee,
            seen,
            snapshot,
            cuts,
            range,
            signal,
            _subscription: subscription,
        })
    }

    /// A version past the last one seen that changed a key of interest,
    /// if there is one now (versions that did not are passed over).
    fn check(&mut self) -> Result<Option<u64>> {
        let cut = self.cut()?;
        // One version throughout: a write landing during the check is the
        // next check's (diffing the live bee could count it for this one).
        let now = self.bee.snapshot()?;
        let version = now.version()?;
        if cut.is_some() {
            // What the cut blocks held is gone: keys of interest may have
            // changed, so this version counts (once).
            self.seen = version;
            return Ok(Some(version));
        }
        if version <= self.seen {
            return Ok(None);
        }
        let touched = match &self.range {
            None => true,
            Some(r) => now.diff_iter(self.seen, r)?.next().transpose()?.is_some(),
        };
        self.seen = version;
        self.retake()?;
        Ok(touched.then_some(version))
    }

    /// Where a truncation cut the versions this watch saw, if one did
    /// since the last call; from then on it watches from there.
    pub(crate) fn cut(&mut self) -> Result<Option<u64>> {
        // No block replaced since the snapshot: nothing to look for.
        let cuts = self.bee.core().cuts()?;
        if cuts == self.cuts {
            return Ok(None);
        }
        let kept = kept(&self.snapshot);
        if kept >= self.snapshot.length() {
            self.cuts = cuts;
            return Ok(None);
        }
        self.retake()?;
        self.seen = self.seen.min(kept);
        Ok(Some(kept))
    }

    /// Takes the snapshot (and cuts) the next check compares with.
    fn retake(&mut self) -> Result<()> {
        self.cuts = self.bee.core().cuts()?;
        self.snapshot = self.bee.core().snapshot()?;
        Ok(())
    }

    /// The next version (after the last one this watch returned, or its
    /// start) in which a key of interest changed; `None` if none came
    /// within `timeout`. Writes outside the range are passed over.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<u64>> {
        let deadline = Instant::now() + timeout;
        loop {
            let ticks = self.signal.ticks();
            if let Some(v) = self.check()? {
                return Ok(Some(v));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let guard = self.signal.state.lock().unwrap_or_else(|e| e.into_inner());
            if guard.0 == ticks {
                let _ = self.signal.cv.wait_timeout(guard, left);
            }
        }
    }

    /// [`Watch::next`] for async code: the next version that changed a key
    /// of interest, however long that takes (wrap it in the runtime's
    /// timeout to bound it). Needs no particular runtime.
    pub async fn next_async(&mut self) -> Result<u64> {
        loop {
            let ticks = self.signal.ticks();
            if let Some(v) = self.check()? {
                return Ok(v);
            }
            let signal = self.signal.clone();
            std::future::poll_fn(move |cx| {
                let mut st = signal.state.lock().unwrap_or_else(|e| e.into_inner());
                if st.0 != ticks {
                    return Poll::Ready(());
                }
                if !st.1.iter().any(|w| w.will_wake(cx.waker())) {
                    st.1.push(cx.waker().clone());
                }
                Poll::Pending
            })
            .await;
        }
    }
}

/// One key's value, followed as the bee changes (see [`Bee::get_and_watch`]).
pub struct KeyWatch {
    bee: Bee,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
    watch: Watch,
}

impl KeyWatch {
    pub(crate) fn new(bee: Bee, key: &[u8]) -> Result<KeyWatch> {
        let range = RangeOptions {
            gte: Some(key.to_vec()),
            lte: Some(key.to_vec()),
            ..Default::default()
        };
        // Watch first: a write between the read and the watch is not lost.
        let watch = Watch::new(bee.clone(), Some(range))?;
        let value = bee.get(key)?;
        Ok(KeyWatch {
            bee,
            key: key.to_vec(),
            value,
            watch,
        })
    }

    /// The value as last seen (`None`: absent).
    pub fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    fn changed(&mut self) -> Result<bool> {
        let now = self.bee.get(&self.key)?;
        let changed = now != self.value;
        self.value = now;
        Ok(changed)
    }

    /// Waits up to `timeout` for the key's value to change; the new value
    /// (`Some(None)`: deleted), or `None` if it did not change in time.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<Option<Vec<u8>>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.watch.next(left)?.is_none() {
                return Ok(None);
            }
            if self.changed()? {
                return Ok(Some(self.value.clone()));
            }
        }
    }

    /// [`KeyWatch::next`] for async code, without a timeout.
    pub async fn next_async(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            self.watch.next_async().await?;
            if self.changed()? {
                return Ok(self.value.clone());
            }
        }
    }
}
