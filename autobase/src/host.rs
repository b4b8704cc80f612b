//! What an application implements ([`Apply`]) and what it may change
//! besides the views ([`Host`]: the base's writers).

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

/// What `apply` may change besides the views: the base's writers.
pub struct Host<'a> {
    pub(crate) members: &'a mut BTreeMap<CoreKey, bool>,
    pub(crate) indexers: &'a [CoreKey],
    pub(crate) changes: Vec<Change>,
}

impl Host<'_> {
    /// Makes `key`'s core a writer of the base; its nodes are applied from
    /// now on in the order.
    pub fn add_writer(&mut self, key: CoreKey) {
        if self.members.get(&key) != Some(&true) {
            let before = self.members.insert(key, true);
            self.changes.push(Change {
                key,
                before,
                after: true,
            });
        }
    }

    /// Removes a writer: its nodes later in the order are never applied.
    /// An indexer cannot be removed (the indexer set is fixed when the base
    /// is created, in this version).
    pub fn remove_writer(&mut self, key: CoreKey) -> Result<()> {
        if self.indexers.contains(&key) {
            return Err(Error::IndexerRemoval);
        }
        if self.members.get(&key) == Some(&true) {
            let before = self.members.insert(key, false);
            self.changes.push(Change {
                key,
                before,
                after: false,
            });
        }
        Ok(())
    }

    /// Whether `key` is a writer of the base at this point of the order.
    pub fn is_writer(&self, key: &CoreKey) -> bool {
        self.members.get(key) == Some(&true)
    }
}
