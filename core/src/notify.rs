//! Change notifications: callbacks run after a core's state changed.
//!
//! The core crate has no async runtime, so a listener is a plain callback;
//! an async caller passes one that wakes its task (for example by sending
//! on a channel). Callbacks run on the thread that committed the change,
//! after the commit and with no lock held, so they may read the core.

use std::sync::{Arc, Weak};

use crate::core::CoreInner;

/// A change callback.
pub(crate) type Listener = Arc<dyn Fn() + Send + Sync>;

/// The listeners of one core.
#[derive(Default)]
pub(crate) struct Listeners {
    next: u64,
    list: Vec<(u64, Listener)>,
}

impl Listeners {
    pub fn add(&mut self, listener: Listener) -> u64 {
        self.next += 1;
        self.list.push((self.next, listener));
        self.next
    }

    pub fn remove(&mut self, id: u64) {
        self.list.retain(|(i, _)| *i != id);
    }
}

/// Runs every listener of `inner` (after a committed change).
pub(crate) fn notify(inner: &CoreInner) {
    let listeners: Vec<Listener> = inner
        .listeners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .list
        .iter()
        .map(|(_, l)| l.clone())
        .collect();
    for listener in listeners {
        listener();
    }
}

/// Keeps a change callback registered; dropping it unregisters it.
#[must_use = "the callback is unregistered when the subscription is dropped"]
pub struct Subscription {
    pub(crate) inner: Weak<CoreInner>,
    pub(crate) id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(self.id);
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .finish()
    }
}

pub(crate) fn subscribe(inner: &Arc<CoreInner>, listener: Listener) -> Subscription {
    let id = inner
        .listeners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .add(listener);
    Subscription {
        inner: Arc::downgrade(inner),
        id,
    }
}
