//! What an application implements ([`Apply`]) and what it may change
//! besides the views ([`Host`]: the base's writers and indexers).

use std::collections::BTreeMap;

use hyper_core::CoreKey;

use crate::error::{Error, Result};
use crate::linearizer::Batch;
use crate::undo::Change;
use crate::view::View;

/// The application's function from ordered batches to views. It must be a
/// pure function of the batch and the views (read them through `view`):
/// after a reorder the views are rolled back and the tail is applied again,
/// and every peer must reach the same views.
pub trait Apply {
    /// Applies one batch of a writer that is a member of the base.
    fn apply(&mut self, batch: &Batch, view: &mut View<'_>, host: &mut Host<'_>) -> Result<()>;
}

/// What a key is to a base at a point of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A writer was removed: its later batches are not applied.
    Removed,
    /// A writer.
    Writer,
    /// A writer whose batches drive finality (once the batch that made it
    /// one is indexed: see `linearizer.rs`, "Changing the indexers").
    Indexer,
}

impl Role {
    /// The role (writer or not, indexer or not) as the undo log and system
    /// entries store it; an indexer is always a writer.
    pub(crate) fn of(writer: bool, indexer: bool) -> Role {
        match (writer, indexer) {
            (_, true) => Role::Indexer,
            (true, false) => Role::Writer,
            (false, false) => Role::Removed,
        }
    }

    pub(crate) fn is_writer(self) -> bool {
        self != Role::Removed
    }
}

/// What `apply` may change besides the views: the base's writers and
/// indexers. A change to the indexers takes effect for finality once the
/// batch that made it is indexed (every peer then counts the new
/// indexers from the same point); for `is_writer` and later batches'
/// application at once.
pub struct Host<'a> {
    pub(crate) members: &'a mut BTreeMap<CoreKey, Role>,
    pub(crate) changes: Vec<Change>,
}

impl Host<'_> {
    /// Makes `key`'s core a writer of the base (its nodes are applied from
    /// now on in the order), an indexer when `indexer`, else a writer that
    /// is not one (an indexer named with `false` stops being one). Fails,
    /// changing nothing, when that would leave no indexer (pending ones
    /// count here), or make more than [`crate::MAX_INDEXERS`]. A new
    /// indexer is *pending* until a batch of it is indexed after the one
    /// that made it (it acks for that, [`crate::Base::ack`]): it counts
    /// from the commit that indexes that batch on, so a key no device
    /// writes never holds finality back ([`crate::BaseInfo::pending_indexers`]).
    /// An indexer that leaves while every other one is pending still
    /// counts until one of them does. The new epoch's signed cores wait
    /// until the new indexer's core manifest (its signing key) reached the
    /// peer.
    pub fn add_writer(&mut self, key: CoreKey, indexer: bool) -> Result<()> {
        let role = Role::of(true, indexer);
        let before = self.members.get(&key).copied();
        if before == Some(role) {
            return Ok(());
        }
        if indexer && self.indexers() >= crate::node::MAX_INDEXERS {
            return Err(Error::TooManyIndexers(key.to_string()));
        }
        self.set(key, before, role)
    }

    /// Removes a writer: its nodes later in the order are never applied.
    /// An indexer stops being one; the last indexer cannot be removed.
    pub fn remove_writer(&mut self, key: CoreKey) -> Result<()> {
        match self.members.get(&key).copied() {
            Some(before) if before.is_writer() => self.set(key, Some(before), Role::Removed),
            _ => Ok(()),
        }
    }

    fn set(&mut self, key: CoreKey, before: Option<Role>, after: Role) -> Result<()> {
        if before == Some(Role::Indexer) && self.indexers() == 1 {
            return Err(Error::LastIndexer(key.to_string()));
        }
        self.members.insert(key, after);
        self.changes.push(Change { key, before, after });
        Ok(())
    }

    fn indexers(&self) -> usize {
        self.members
            .values()
            .filter(|r| **r == Role::Indexer)
            .count()
    }

    /// Whether `key` is a writer of the base at this point of the order.
    pub fn is_writer(&self, key: &CoreKey) -> bool {
        self.members.get(key).is_some_and(|r| r.is_writer())
    }

    /// Whether `key` is an indexer at this point of the order.
    pub fn is_indexer(&self, key: &CoreKey) -> bool {
        self.members.get(key) == Some(&Role::Indexer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(members: &mut BTreeMap<CoreKey, Role>) -> Host<'_> {
        Host {
            members,
            changes: Vec::new(),
        }
    }

    #[test]
    fn the_last_indexer_stays_and_indexers_are_bounded() {
        let (a, b) = (CoreKey([1; 32]), CoreKey([2; 32]));
        let mut members = BTreeMap::from([(a, Role::Indexer), (b, Role::Writer)]);
        let mut h = host(&mut members);
        assert!(matches!(h.remove_writer(a), Err(Error::LastIndexer(_))));
        assert!(matches!(h.add_writer(a, false), Err(Error::LastIndexer(_))));
        assert!(h.changes.is_empty(), "a refused change records nothing");
        // With a second indexer (pending ones count here) the first may go.
        h.add_writer(b, true).expect("b an indexer");
        h.remove_writer(a).expect("a leaves");
        assert!(!h.is_writer(&a) && h.is_indexer(&b));
        assert_eq!(h.changes.len(), 2);
        // Removing someone who is not a writer changes nothing.
        h.remove_writer(CoreKey([9; 32])).expect("no-op");
        assert_eq!(h.changes.len(), 2);

        let mut full: BTreeMap<CoreKey, Role> = (0..crate::node::MAX_INDEXERS as u8)
            .map(|i| (CoreKey([i; 32]), Role::Indexer))
            .collect();
        let mut h = host(&mut full);
        let more = CoreKey([200; 32]);
        assert!(matches!(
            h.add_writer(more, true),
            Err(Error::TooManyIndexers(_))
        ));
        h.add_writer(more, false).expect("a plain writer is fine");
    }
}
