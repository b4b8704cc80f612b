//! What the application asks of a [`Replicator`]: gets, seeks and
//! downloads (each a [`Handle`] that ends in an [`Event`]), and cancelling
//! them.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::{Duration, Instant};

use hyper_core::CoreKey;

use super::core_access::CoreAccess;
use super::local::Local;
use super::remote::Inflight;
use super::timers::Timer;
use super::{Event, Handle, PeerId, Replicator};
use crate::error::Error;
use crate::messages::{Body, Cancel, Message};

impl<C: CoreAccess> Replicator<C> {
    pub(super) fn handle(&mut self) -> Handle {
        self.next_handle += 1;
        Handle(self.next_handle)
    }

    /// A new handle whose ask `add` records on `key`'s local state, then
    /// schedules requests for it; [`Event::Failed`] at once for a core not
    /// replicated.
    fn ask(
        &mut self,
        now: Instant,
        key: CoreKey,
        add: impl FnOnce(&mut Local<C>, Handle),
    ) -> Handle {
        let handle = self.handle();
        match self.cores.get_mut(&key) {
            None => self.events.push_back(Event::Failed {
                handle,
                key,
                error: Error::UnknownCore(key),
            }),
            Some(local) => {
                add(local, handle);
                self.asks.insert(handle, key);
                self.schedule(now, key);
            }
        }
        handle
    }

    /// Fetches block `index` of `key` from peers. Yields [`Event::Got`] once
    /// it is stored locally (at once if it already is), or
    /// [`Event::Failed`] after `timeout`.
    pub fn get(&mut self, now: Instant, key: CoreKey, index: u64, timeout: Duration) -> Handle {
        if self.cores.get(&key).is_some_and(|l| l.core.has(index)) {
            let handle = self.handle();
            self.events.push_back(Event::Got { handle, key, index });
            return handle;
        }
        let deadline = now + timeout;
        self.timers.push(deadline, Timer::Asks(key));
        self.ask(now, key, |local, handle| {
            local.add_get(handle, index, deadline);
        })
    }

    /// Finds the block holding byte `bytes` of `key` with one request: a
    /// peer as long as this side (or longer) sends the leaf and its path to
    /// a root (a seek proof, O(log n) nodes and no block), with an upgrade
    /// to its state if it is longer; once verified and stored, yields
    /// [`Event::Sought`] with the block index and the offset in it, so the
    /// local tree can seek there from now on. A peer that cannot answer
    /// (the offset is past its byte length) is not asked again; after
    /// `timeout` the seek yields [`Event::Failed`]. Seeks take the core's
    /// one upgrade slot, one at a time.
    pub fn seek(&mut self, now: Instant, key: CoreKey, bytes: u64, timeout: Duration) -> Handle {
        let deadline = now + timeout;
        self.timers.push(deadline, Timer::Asks(key));
        self.ask(now, key, |local, handle| {
            local.add_seek(handle, bytes, deadline);
        })
    }

    /// Downloads blocks `start..end` of `key` (`end: None` means up to the
    /// latest length the peers know of). With `live`, it never finishes and
    /// keeps fetching what the writer appends; otherwise it yields
    /// [`Event::Downloaded`] once every block of the range is stored.
    pub fn download(
        &mut self,
        now: Instant,
        key: CoreKey,
        start: u64,
        end: Option<u64>,
        live: bool,
    ) -> Handle {
        let handle = self.ask(now, key, |local, handle| {
            local.add_download(handle, start, end, live);
        });
        self.announce_wants(key);
        self.check_done(key);
        handle
    }

    /// Stops a get, seek or download; it yields nothing more.
    pub fn cancel(&mut self, handle: Handle) {
        let Some(key) = self.asks.remove(&handle) else {
            return;
        };
        let range = self.cores.get_mut(&key).and_then(|l| l.cancel(handle));
        if let Some(range) = range {
            self.unwant(key, range);
        }
        self.withdraw_ended_seeks([key]);
    }

    /// Withdraws the seek requests in flight of the cores `keys` whose
    /// seek ended (timed out or cancelled): `Cancel` to the peer, and the
    /// upgrade slot each held is free for the next seek or upgrade at
    /// once, not when the peer answers or stalls. Returns the cores whose
    /// slot was freed.
    pub(super) fn withdraw_ended_seeks(
        &mut self,
        keys: impl IntoIterator<Item = CoreKey>,
    ) -> Vec<CoreKey> {
        let mut freed = Vec::new();
        let keys: BTreeSet<CoreKey> = keys.into_iter().collect();
        for (&id, peer) in self.peers.iter_mut() {
            for key in &keys {
                let (Some(remote), Some(local)) =
                    (peer.remotes.get_mut(key), self.cores.get_mut(key))
                else {
                    continue;
                };
                let ended: Vec<u64> = remote
                    .inflight
                    .iter()
                    .filter(|(_, kind)| {
                        matches!(kind, Inflight::Seek { handle, .. } if !local.seeks.contains_key(handle))
                    })
                    .map(|(request, _)| *request)
                    .collect();
                remote.seek_withdrawn |= !ended.is_empty();
                for request in ended {
                    if let Some(kind) = remote.inflight.remove(&request) {
                        local.requeue_inflight([kind]);
                        self.transmits.push_back((
                            id,
                            Message {
                                channel: remote.local_channel,
                                body: Some(Body::Cancel(Cancel { request })),
                            },
                        ));
                        freed.push(*key);
                    }
                }
            }
        }
        freed
    }

    /// Tells every peer to stop reporting the parts of `range` that nothing
    /// of `key` still wants (other downloads and asked gets keep theirs).
    pub(super) fn unwant(&mut self, key: CoreKey, range: Range<u64>) {
        let Some(local) = self.cores.get(&key) else {
            return;
        };
        let parts = local.unwanted(range);
        let peers: Vec<PeerId> = self.peers.keys().copied().collect();
        for part in parts {
            for &p in &peers {
                self.send(
                    p,
                    &key,
                    Body::Unwant(crate::messages::Unwant {
                        start: part.start,
                        length: part.end - part.start,
                    }),
                );
            }
        }
    }
}
