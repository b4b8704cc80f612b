//! The views as [`Apply`](crate::Apply) sees them, and the entries it
//! appends, staged until the update round that applied them writes them all
//! at once: one store commit and one signature per view core per round,
//! not per entry.

use hyper_core::{Core, Store};

use crate::error::{Error, Result};

/// The entries appended to each view and not written yet: those of the
/// batches applied whole this round (`sealed` of them per view), then those
/// of the batch being applied.
#[derive(Default)]
pub(crate) struct Staged {
    /// Per view, in the base's view order.
    blocks: Vec<Vec<Vec<u8>>>,
    /// Per view, how many of `blocks` belong to whole batches.
    sealed: Vec<usize>,
}

impl Staged {
    /// Nothing staged for `views` views.
    pub(crate) fn new(views: usize) -> Self {
        Staged {
            blocks: vec![Vec::new(); views],
            sealed: vec![0; views],
        }
    }

    /// Entries staged for view `i`.
    pub(crate) fn len(&self, i: usize) -> u64 {
        self.blocks.get(i).map_or(0, |b| b.len() as u64)
    }

    /// The batch being applied is whole: its entries are written with the
    /// round.
    pub(crate) fn seal(&mut self) {
        for (sealed, blocks) in self.sealed.iter_mut().zip(&self.blocks) {
            *sealed = blocks.len();
        }
    }

    /// Drops the entries of the batch being applied (it failed): a batch is
    /// applied all or nothing.
    pub(crate) fn discard(&mut self) {
        for (blocks, sealed) in self.blocks.iter_mut().zip(&self.sealed) {
            blocks.truncate(*sealed);
        }
    }

    /// Writes the sealed entries to `views` in one commit of `store` (one
    /// signed append per view core) and empties the stage, written or not;
    /// the entries of a batch not sealed are dropped.
    pub(crate) fn write(&mut self, store: &Store, views: &[(String, Core)]) -> Result<()> {
        self.discard();
        if self.blocks.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let mut batch = store.batch();
        for ((_, core), blocks) in views.iter().zip(&self.blocks) {
            if !blocks.is_empty() {
                batch.append(core, blocks);
            }
        }
        let written = batch.commit();
        for blocks in &mut self.blocks {
            blocks.clear();
        }
        self.sealed.fill(0);
        written?;
        Ok(())
    }
}

/// The views as `apply` sees them: named cores it appends to and reads.
/// What it appends through [`View::append`] is staged and written with the
/// other batches of the update round, in one commit; [`View::get`] and
/// [`View::len`] see it already.
pub struct View<'a> {
    pub(crate) store: &'a Store,
    pub(crate) cores: &'a [(String, Core)],
    pub(crate) staged: &'a mut Staged,
}

impl View<'_> {
    fn position(&self, name: &str) -> Result<usize> {
        self.cores
            .iter()
            .position(|(n, _)| n == name)
            .ok_or_else(|| Error::NoSuchView(name.to_string()))
    }

    /// The view core `name`, for views that are more than a log (such as a
    /// bee on it), which write to the core themselves: every entry staged so
    /// far is written first, so the core holds all this batch appended
    /// through [`View::append`]. Writes made to the core directly are
    /// committed as they are made (not all or nothing with the batch).
    pub fn core(&mut self, name: &str) -> Result<&Core> {
        let i = self.position(name)?;
        self.staged.seal();
        self.staged.write(self.store, self.cores)?;
        self.cores
            .get(i)
            .map(|(_, c)| c)
            .ok_or_else(|| Error::NoSuchView(name.to_string()))
    }

    /// Appends `block` to the view `name` (staged: written with the round).
    pub fn append(&mut self, name: &str, block: &[u8]) -> Result<()> {
        let i = self.position(name)?;
        if let Some(blocks) = self.staged.blocks.get_mut(i) {
            blocks.push(block.to_vec());
        }
        Ok(())
    }

    /// Block `index` of the view `name` (staged entries included).
    pub fn get(&self, name: &str, index: u64) -> Result<Vec<u8>> {
        let i = self.position(name)?;
        let core = &self.cores[i].1;
        let stored = core.info()?.length;
        if index < stored {
            return Ok(core.get(index)?);
        }
        usize::try_from(index - stored)
            .ok()
            .and_then(|s| self.staged.blocks.get(i)?.get(s))
            .cloned()
            .ok_or(Error::Core(hyper_core::Error::OutOfBounds {
                index,
                length: stored + self.staged.len(i),
            }))
    }

    /// The length of the view `name` (staged entries included).
    pub fn len(&self, name: &str) -> Result<u64> {
        let i = self.position(name)?;
        Ok(self.cores[i].1.info()?.length + self.staged.len(i))
    }
}
