//! The writer cores a [`Base`] reads: opening them, checking their
//! headers, and pushing their newly stored nodes into the linearizer.

use std::time::Instant;

use hyper_core::{Core, CoreKey};

use super::{Base, HOLD_BACK};
use crate::error::{Error, Result};
use crate::host::Apply;
use crate::node::{Header, Node};

/// A writer core being read into the linearizer.
pub(super) struct Writer {
    pub(super) core: Core,
    /// Block 0 was checked to be a header for this base.
    pub(super) header_checked: bool,
    /// Why this writer's log is no longer read (it broke the rules).
    pub(super) fault: Option<String>,
    /// When a read last found new nodes while the core knew blocks past
    /// them that are not stored here (`None`: it holds all it knows of, or
    /// gave nothing new while it did not).
    pub(super) downloading: Option<Instant>,
}

impl<A: Apply> Base<A> {
    /// Starts reading `key`'s core (this store's own writer core when it is
    /// that one): the linearizer knows the writer, none of its nodes read.
    pub(super) fn open_writer(&mut self, key: CoreKey) -> Result<()> {
        let core = match &self.local {
            Some(local) if local.key() == key => local.clone(),
            _ => self.store.replica(&key)?,
        };
        self.lin.add_writer(key);
        self.writers.insert(
            key,
            Writer {
                core,
                header_checked: false,
                fault: None,
                downloading: None,
            },
        );
        Ok(())
    }

    /// Pushes the nodes of `key`'s core stored contiguously past what was
    /// read. A block that is not a valid node for this base marks the
    /// writer faulty.
    pub(super) fn read_writer(&mut self, key: CoreKey) -> Result<()> {
        let Some(w) = self.writers.get_mut(&key) else {
            return Ok(());
        };
        if w.fault.is_some() {
            return Ok(());
        }
        if !w.header_checked {
            if !w.core.has(0)? {
                return Ok(());
            }
            // The first writer's header was read at open.
            if key != self.key
                && let Err(e) = check_writer_header(&w.core, &self.key)
            {
                w.fault = Some(e.to_string());
                return Ok(());
            }
            w.header_checked = true;
        }
        // Block 0 is the header: node n is block n.
        let from = self.lin.pushed(&key) + 1;
        let length = w.core.info()?.length;
        if from >= length {
            return Ok(());
        }
        // One read view for the run; nodes go in in order, up to the first
        // block not stored here.
        let mut read = from;
        for block in w.core.blocks(from..length)? {
            let block = match block {
                Ok((_, block)) => block,
                Err(hyper_core::Error::NotAvailable { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            let pushed = Node::decode(&block).and_then(|node| {
                let checkpoint = node.checkpoint.clone();
                self.lin.push(&key, node)?;
                Ok(checkpoint)
            });
            match pushed {
                Ok(checkpoint) => self.signed.receive(&key, &checkpoint)?,
                Err(e) => {
                    w.fault = Some(e.to_string());
                    break;
                }
            }
            read += 1;
        }
        if read < length && read > from {
            w.downloading = Some(Instant::now());
        } else if read == length {
            w.downloading = None;
        }
        Ok(())
    }

    /// The writers still downloading (see [`HOLD_BACK`]).
    pub(super) fn downloading(&self) -> Vec<CoreKey> {
        self.writers
            .iter()
            .filter(|(_, w)| w.fault.is_none())
            .filter(|(_, w)| w.downloading.is_some_and(|at| at.elapsed() < HOLD_BACK))
            .map(|(key, _)| *key)
            .collect()
    }
}

/// Checks that block 0 of a writer core says it writes for `base`.
pub(super) fn check_writer_header(core: &Core, base: &CoreKey) -> Result<()> {
    match Header::decode(&core.get(0)?)? {
        Header::Writer { base: b } if b == *base => Ok(()),
        _ => Err(Error::NotABase(
            "the writer core's header names another base",
        )),
    }
}
