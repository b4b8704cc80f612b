//! Change notifications: callbacks and typed event channels, run after a
//! core's state changed.
//!
//! The core crate has no async runtime, so a listener is a plain callback
//! or a channel: an async caller passes a callback that wakes its task, a
//! UI thread reads [`Events`]. Both are served on the thread that
//! committed the change, after the commit and with no lock held, so they
//! may read the core.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::core::CoreInner;

/// A change callback.
pub(crate) type Listener = Arc<dyn Fn() + Send + Sync>;

/// A callback handed the events of each committed change.
pub(crate) type Watcher = Arc<dyn Fn(&[Event]) + Send + Sync>;

/// What changed in a core, in commit order, from [`Core::events`](crate::Core::events).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The signed length grew: blocks were appended here and signed, the
    /// quorum signed a state of the unsigned tail
    /// ([`Core::add_signature`](crate::Core::add_signature)), or a replica
    /// verified a newer signed state.
    Appended {
        /// The new length.
        length: u64,
        /// The new byte length.
        byte_length: u64,
    },
    /// The log was truncated: a new fork whose blocks from `length` on are
    /// gone (here, or learned by a replica following the writer; then
    /// `length` is the prefix it could keep).
    Truncated {
        /// The new fork id.
        fork: u64,
        /// The length the old fork was cut to.
        length: u64,
    },
    /// The unsigned tail changed: blocks were appended to it
    /// ([`Core::append_unsigned`](crate::Core::append_unsigned)) or it was
    /// cut (a truncation at or past the signed length: no new fork). Peers
    /// see nothing of it.
    Tail {
        /// The local length now ([`Info::length`](crate::Info::length)).
        length: u64,
        /// The local byte length now.
        byte_length: u64,
    },
    /// A block was verified and stored from a peer's proof.
    Downloaded {
        /// The block index.
        index: u64,
        /// Its size in bytes (as stored).
        bytes: u64,
    },
    /// Local copies of blocks were dropped ([`Core::clear`](crate::Core::clear)).
    Cleared {
        /// First block of the range.
        start: u64,
        /// End of the range (exclusive), at most the signed length.
        end: u64,
        /// Block bytes freed.
        freed: u64,
    },
}

enum Entry {
    Callback(Listener),
    Watcher(Watcher),
    Channel(Sender<Event>),
}

/// The listeners of one core.
#[derive(Default)]
pub(crate) struct Listeners {
    next: u64,
    list: Vec<(u64, Entry)>,
}

impl Listeners {
    fn add(&mut self, entry: Entry) -> u64 {
        self.next += 1;
        self.list.push((self.next, entry));
        self.next
    }

    fn remove(&mut self, id: u64) {
        self.list.retain(|(i, _)| *i != id);
    }
}

/// Whether `events`, committed on a local log of `length` blocks, replaced
/// a block that was there: a truncation (a new fork), or the unsigned tail
/// cut shorter than the length before it.
pub(crate) fn cuts_blocks(events: &[Event], mut length: u64) -> bool {
    for event in events {
        match *event {
            Event::Truncated { .. } => return true,
            Event::Tail { length: now, .. } if now < length => return true,
            Event::Tail { length: now, .. } | Event::Appended { length: now, .. } => length = now,
            Event::Downloaded { .. } | Event::Cleared { .. } => {}
        }
    }
    false
}

/// Runs every listener of `inner` and sends `events` to every channel
/// (after a committed change).
pub(crate) fn notify(inner: &CoreInner, events: &[Event]) {
    let mut callbacks: Vec<Listener> = Vec::new();
    let mut watchers: Vec<Watcher> = Vec::new();
    let mut channels: Vec<(u64, Sender<Event>)> = Vec::new();
    {
        let listeners = inner.listeners.lock().unwrap_or_else(|e| e.into_inner());
        for (id, entry) in &listeners.list {
            match entry {
                Entry::Callback(l) => callbacks.push(l.clone()),
                Entry::Watcher(w) => watchers.push(w.clone()),
                Entry::Channel(tx) => channels.push((*id, tx.clone())),
            }
        }
    }
    for (id, tx) in channels {
        if events.iter().any(|e| tx.send(e.clone()).is_err()) {
            // The receiver is gone: stop sending to it.
            inner
                .listeners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
    }
    for watcher in watchers {
        watcher(events);
    }
    for listener in callbacks {
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

fn register(inner: &Arc<CoreInner>, entry: Entry) -> Subscription {
    let id = inner
        .listeners
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .add(entry);
    Subscription {
        inner: Arc::downgrade(inner),
        id,
    }
}

pub(crate) fn subscribe(inner: &Arc<CoreInner>, listener: Listener) -> Subscription {
    register(inner, Entry::Callback(listener))
}

pub(crate) fn watch(inner: &Arc<CoreInner>, watcher: Watcher) -> Subscription {
    register(inner, Entry::Watcher(watcher))
}

pub(crate) fn events(inner: &Arc<CoreInner>) -> Events {
    let (tx, rx) = mpsc::channel();
    Events {
        _subscription: register(inner, Entry::Channel(tx)),
        rx,
    }
}

/// The typed events of one core from [`Core::events`](crate::Core::events),
/// every change committed after it was made, in commit order, none lost
/// (the queue is unbounded: read it, or drop it to unregister). As an
/// [`Iterator`] it blocks for the next event and ends when every handle to
/// the core is gone (or the core is deleted and its handles dropped).
#[derive(Debug)]
pub struct Events {
    _subscription: Subscription,
    rx: Receiver<Event>,
}

impl Events {
    /// The next event if one is waiting; never blocks.
    pub fn try_next(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// The next event, waiting at most `timeout`; `None` when none came
    /// (or the core is gone).
    pub fn next_timeout(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.rx.recv().ok()
    }
}
