//! Writing the log: [`Core::append`], [`Core::append_batch`],
//! [`Core::truncate`], and the one transaction they and a
//! [`StoreBatch`](crate::StoreBatch) commit through ([`append_many`]):
//! truncations first (see [`crate::tail::truncate_in`]), then each core's
//! blocks encrypted if its handle encrypts, hashed, signed or kept in the
//! unsigned tail, and the events of each core sent once it committed.

use std::collections::BTreeMap;

use crate::blockstore;
use crate::core::{Core, can_sign, reload};
use crate::encryption::{self, ENCRYPTION_OVERHEAD};
use crate::error::{Error, Result};
use crate::notify::{self, Event};
use crate::store::Shared;
use crate::tree::{self, Node};
use crate::txn::CoreTables;

/// The largest block [`Core::append`] accepts, in bytes as stored (an
/// encrypted core's blocks carry [`ENCRYPTION_OVERHEAD`] bytes of framing
/// on top of their plaintext): 8 MiB less 64 KiB, so a block with its proof
/// (a sibling path of at most 64 nodes, an upgrade and signatures, a few
/// KiB) always fits the wire's 8 MiB frame. A larger block could be stored
/// but never replicated.
pub const MAX_BLOCK_SIZE: usize = (8 << 20) - (64 << 10);

/// The log's length after an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Number of blocks.
    pub length: u64,
    /// Total bytes of all blocks.
    pub byte_length: u64,
}

impl Core {
    /// Appends one block.
    pub fn append(&self, block: &[u8]) -> Result<AppendOutcome> {
        self.append_batch(&[block])
    }

    /// Appends blocks as one batch: one transaction, one signature. The
    /// blocks are hashed in place, not copied before they are written.
    /// A block over [`MAX_BLOCK_SIZE`] refuses the whole batch
    /// ([`Error::BlockTooLarge`]); nothing is appended.
    pub fn append_batch<B: AsRef<[u8]>>(&self, blocks: &[B]) -> Result<AppendOutcome> {
        let refs: Vec<&[u8]> = blocks.iter().map(AsRef::as_ref).collect();
        let out = append_many(
            &self.inner.shared,
            &[(self.clone(), refs)],
            &Default::default(),
        )?;
        out.into_iter()
            .next()
            .ok_or(Error::InvalidArgument("append produced no outcome"))
    }

    /// Truncates the log to `length` blocks. Below the signed length this
    /// is a new fork, signed again, and only a writable core can do it;
    /// within the unsigned tail it cuts the tail only (no key, same fork).
    /// To truncate several cores atomically, use a
    /// [`StoreBatch`](crate::StoreBatch).
    pub fn truncate(&self, length: u64) -> Result<()> {
        let plan = crate::tail::Plan {
            truncations: vec![(self.clone(), length)],
            ..Default::default()
        };
        append_many(&self.inner.shared, &[], &plan).map(|_| ())
    }
}

/// Appends to one or more cores in one transaction (see
/// [`StoreBatch`](crate::StoreBatch)).
pub(crate) fn append_many(
    shared: &Shared,
    appends: &[(Core, Vec<&[u8]>)],
    plan: &crate::tail::Plan,
) -> Result<Vec<AppendOutcome>> {
    // Lock each distinct core once, in id order, so batches cannot deadlock.
    let mut by_id: BTreeMap<u64, &Core> = BTreeMap::new();
    for core in appends
        .iter()
        .map(|(c, _)| c)
        .chain(plan.truncations.iter().map(|(c, _)| c))
    {
        by_id.insert(core.inner.id, core);
    }
    for (core, blocks) in appends {
        core.plain_allowed()?;
        let overhead = if core.cipher.is_some() {
            ENCRYPTION_OVERHEAD
        } else {
            0
        };
        if let Some((index, b)) = blocks
            .iter()
            .enumerate()
            .find(|(_, b)| b.len() + overhead > MAX_BLOCK_SIZE)
        {
            return Err(Error::BlockTooLarge {
                index,
                size: b.len() + overhead,
                max: MAX_BLOCK_SIZE,
            });
        }
    }
    let salt = if appends.iter().any(|(c, _)| c.cipher.is_some()) {
        encryption::salt()?
    } else {
        [0; 8]
    };
    let mut guards = BTreeMap::new();
    for (id, core) in &by_id {
        let st = core.write_state()?;
        let appends_here = appends.iter().any(|(c, _)| c.inner.id == *id);
        if plan.unsigned.contains(id) {
            if st.header.manifest.is_none() {
                return Err(Error::InvalidArgument("the manifest is not known yet"));
            }
        } else if appends_here && !can_sign(&st.header) {
            return Err(Error::NotWritable(core.inner.key));
        }
        let header = st.header.clone();
        guards.insert(*id, (st, header));
    }
    let txn = shared.write(shared.durability)?;
    let mut outcomes = Vec::with_capacity(appends.len());
    // Each core's events, in the order its changes were made.
    let mut events: BTreeMap<u64, Vec<Event>> = BTreeMap::new();
    let result = (|| {
        let mut t = CoreTables::open(&txn)?;
        for (core, length) in &plan.truncations {
            let (st, header) = guards
                .get_mut(&core.inner.id)
                .ok_or(Error::InvalidArgument("core not locked"))?;
            if let Some(e) = crate::tail::truncate_in(&mut t, core, st, header, *length)? {
                events.entry(core.inner.id).or_default().push(e);
            }
        }
        for (core, blocks) in appends {
            let id = core.inner.id;
            let (st, header) = guards
                .get_mut(&id)
                .ok_or(Error::InvalidArgument("core not locked"))?;
            let start = header.length();
            let sealed: Vec<Vec<u8>>;
            let sealed_refs: Vec<&[u8]>;
            let blocks: &[&[u8]] = match &core.cipher {
                Some(cipher) => {
                    let fork = header.state.fork;
                    sealed = (start..)
                        .zip(blocks)
                        .map(|(i, b)| cipher.encrypt(i, fork, salt, b))
                        .collect();
                    sealed_refs = sealed.iter().map(Vec::as_slice).collect();
                    &sealed_refs
                }
                None => blocks,
            };
            if !blocks.is_empty() {
                let mut roots = header.tree_roots().to_vec();
                let nodes = tree::append(
                    &mut roots,
                    blocks
                        .iter()
                        .enumerate()
                        .map(|(i, b)| Node::leaf(start + i as u64, b)),
                );
                let length = start + blocks.len() as u64;
                let byte_length = tree::byte_length(&roots);
                let event = if plan.unsigned.contains(&id) {
                    header.tail = Some(crate::storage::Tail { length, roots });
                    Event::Tail {
                        length,
                        byte_length,
                    }
                } else {
                    let fork = header.state.fork;
                    header.state = crate::tail::sign_state(core, header, roots, length, fork)?;
                    header.tail = None;
                    header.pending.clear();
                    Event::Appended {
                        length,
                        byte_length,
                    }
                };
                events.entry(id).or_default().push(event);
                t.put_nodes(id, &nodes)?;
                crate::tail::check_prologue(&t, id, header, start, length)?;
                blockstore::write_run(&mut t.blocks, id, start, blocks)?;
                header.bytes_stored += blocks.iter().map(|b| b.len() as u64).sum::<u64>();
                st.bitfield.set_range(start, length, true);
            }
            outcomes.push(AppendOutcome {
                length: header.length(),
                byte_length: tree::byte_length(header.tree_roots()),
            });
        }
        for (id, (st, header)) in guards.iter_mut() {
            t.put_bitfield(*id, &mut st.bitfield)?;
            t.put_header(*id, header)?;
        }
        Ok(())
    })();
    match result.and_then(|()| txn.commit().map_err(Error::from)) {
        Ok(()) => {
            for (id, (mut st, header)) in guards {
                let own = events.get(&id).map_or(&[][..], Vec::as_slice);
                if notify::cuts_blocks(own, st.header.length()) {
                    st.cuts += 1;
                }
                st.header = header;
            }
            for (id, core) in &by_id {
                notify::notify(&core.inner, events.get(id).map_or(&[], Vec::as_slice));
            }
            Ok(outcomes)
        }
        Err(e) => {
            for (id, (mut st, _)) in guards {
                if let Some(core) = by_id.get(&id) {
                    reload(&core.inner, &mut st);
                }
            }
            Err(e)
        }
    }
}
