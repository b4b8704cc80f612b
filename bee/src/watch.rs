//! [`Watch`]: waiting for the next change of a bee, optionally within a key
//! range. Runtime-free: a core change wakes a condition variable; an async
//! caller can run [`Watch::next`] on a blocking thread.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hyper_core::Subscription;

use crate::bee::{Bee, RangeOptions, in_range};
use crate::error::Result;

/// Waits for versions of a bee that change keys of interest.
pub struct Watch {
    bee: Bee,
    seen: u64,
    range: Option<RangeOptions>,
    signal: Arc<(Mutex<u64>, Condvar)>,
    _subscription: Subscription,
}

impl Watch {
    pub(crate) fn new(bee: Bee, range: Option<RangeOptions>) -> Result<Watch> {
        let signal = Arc::new((Mutex::new(0u64), Condvar::new()));
        let wake = signal.clone();
        let subscription = bee.core().subscribe(move || {
            let (count, cv) = &*wake;
            *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            cv.notify_all();
        });
        let seen = bee.version()?;
        Ok(Watch {
            bee,
            seen,
            range,
            signal,
            _subscription: subscription,
        })
    }

    /// The next version (after the last one this watch returned, or its
    /// start) in which a key of interest changed; `None` if none came
    /// within `timeout`. Writes outside the range are passed over.
    pub fn next(&mut self, timeout: Duration) -> Result<Option<u64>> {
        let deadline = Instant::now() + timeout;
        loop {
            let ticks = *self.signal.0.lock().unwrap_or_else(|e| e.into_inner());
            let version = self.bee.version()?;
            if version > self.seen {
                let touched = match &self.range {
                    None => true,
                    Some(r) => self
                        .bee
                        .diff(self.seen)?
                        .iter()
                        .any(|d| in_range(r, &d.key)),
                };
                self.seen = version;
                if touched {
                    return Ok(Some(version));
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let (lock, cv) = &*self.signal;
            let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
            if *guard == ticks {
                let _ = cv.wait_timeout(guard, left);
            }
        }
    }
}
