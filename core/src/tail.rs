//! The unsigned tail of a core and signatures gathered one signer at a
//! time.
//!
//! A core may hold blocks past its signed length that this store appended
//! and trusts locally ([`Core::append_unsigned`]): its `length` runs ahead
//! of its `signed_length`. Peers are only ever served the signed part.
//! Signers sign a state of the tail on their own machines; any holder adds
//! their signatures as they arrive ([`Core::add_signature`]) and the signed
//! length moves once the manifest's quorum has signed one state. Tail
//! truncations need no signature and start no fork.

use std::collections::BTreeSet;

use crate::core::{Core, CoreState, can_sign};
use crate::error::{Error, Result, VerifyError};
use crate::flat;
use crate::hash;
use crate::keys::{PublicKey, Signature};
use crate::manifest::SignerSignature;
use crate::notify::Event;
use crate::proof::{NodeSource, SignedState};
use crate::storage::{Header, MAX_PENDING, NODES, TableNodes, Tail};
use crate::tree::Node;
use crate::txn::CoreTables;

/// What a store batch does besides signed appends: truncations (applied
/// before the batch's appends) and which cores append unsigned.
#[derive(Default)]
pub(crate) struct Plan {
    /// (core, length) to truncate to, in order.
    pub truncations: Vec<(Core, u64)>,
    /// Ids of the cores whose appends in this batch go to the unsigned tail.
    pub unsigned: BTreeSet<u64>,
}

/// The roots of the local tree at `length`, read from stored nodes.
pub(crate) fn roots_at(nodes: &impl NodeSource, length: u64) -> Result<Vec<Node>> {
    flat::roots(length)
        .into_iter()
        .map(|i| nodes.node(i)?.ok_or(Error::NodeNotAvailable { index: i }))
        .collect()
}

/// Signs (`roots`, `length`, `fork`) with every local key of the manifest;
/// [`Error::NotWritable`] unless the local keys reach the quorum.
pub(crate) fn sign_state(
    core: &Core,
    header: &Header,
    roots: Vec<Node>,
    length: u64,
    fork: u64,
) -> Result<SignedState> {
    let key = core.key();
    let manifest = header
        .manifest
        .as_ref()
        .filter(|_| can_sign(header))
        .ok_or(Error::NotWritable(key))?;
    let message = hash::signable(&key, &hash::roots(&roots), length, fork);
    Ok(SignedState {
        fork,
        length,
        signatures: manifest.sign(&message, &header.signers),
        roots,
    })
}

/// Refuses an append from `start` to `length` that reaches the manifest's
/// prologue length with blocks whose tree does not hash to the prologue:
/// a longer state must extend the prologue.
pub(crate) fn check_prologue(
    t: &CoreTables<'_>,
    id: u64,
    header: &Header,
    start: u64,
    length: u64,
) -> Result<()> {
    let Some(p) = header.manifest.as_ref().and_then(|m| m.prologue) else {
        return Ok(());
    };
    if start >= p.length || length < p.length {
        return Ok(());
    }
    let roots = roots_at(
        &TableNodes {
            table: &t.nodes,
            id,
        },
        p.length,
    )?;
    if hash::roots(&roots) != p.hash {
        return Err(Error::InvalidArgument(
            "the blocks do not match the manifest's prologue",
        ));
    }
    Ok(())
}

/// Truncates one core inside a batch's transaction. Within the unsigned
/// tail (not below the signed length) only the tail is cut: no signature,
/// no new fork. Below the signed length the log moves to a new fork,
/// signed again, which needs the signing keys. Returns the event to send
/// once the batch commits (none when the tail already ends at `length`).
pub(crate) fn truncate_in(
    t: &mut CoreTables<'_>,
    core: &Core,
    st: &mut CoreState,
    header: &mut Header,
    length: u64,
) -> Result<Option<Event>> {
    if length > header.length() {
        return Err(Error::InvalidArgument(
            "cannot truncate to more than the length",
        ));
    }
    let id = core.inner.id;
    let in_tail = header.tail.is_some() && length >= header.state.length;
    if !in_tail && !can_sign(header) {
        return Err(Error::NotWritable(core.key()));
    }
    if in_tail && length == header.length() {
        return Ok(None);
    }
    let roots = roots_at(
        &TableNodes {
            table: &t.nodes,
            id,
        },
        length,
    )?;
    let removed = t.cut_after(id, length, &mut st.bitfield)?;
    header.bytes_stored -= removed.min(header.bytes_stored);
    header.pending.retain(|(l, _)| *l <= length);
    if in_tail {
        let byte_length = crate::tree::byte_length(&roots);
        header.tail = (length > header.state.length).then_some(Tail { length, roots });
        return Ok(Some(Event::Tail {
            length,
            byte_length,
        }));
    }
    let fork = header.state.fork + 1;
    header.truncations.push((fork, length));
    header.state = sign_state(core, header, roots, length, fork)?;
    header.tail = None;
    header.pending.clear();
    Ok(Some(Event::Truncated { fork, length }))
}

impl Core {
    /// Appends blocks to the unsigned tail, as one transaction: they count
    /// in [`Info::length`](crate::Info::length) and read like any block,
    /// but are not signed and never served to peers until a quorum signs a
    /// state covering them ([`Core::add_signature`], or a signed append).
    /// Needs the manifest; no signing key.
    pub fn append_unsigned<B: AsRef<[u8]>>(
        &self,
        blocks: &[B],
    ) -> Result<crate::append::AppendOutcome> {
        let mut batch = self.inner_store_batch();
        batch.append_unsigned(self, blocks);
        batch
            .commit()?
            .into_iter()
            .next()
            .ok_or(Error::InvalidArgument("append produced no outcome"))
    }

    fn inner_store_batch(&self) -> crate::store::StoreBatch<'_> {
        crate::store::StoreBatch::for_shared(self.inner.shared.clone())
    }

    /// The state of the local tree at `length` (signed or in the tail):
    /// what a signer signs. Its signatures are empty unless `length` is the
    /// signed length.
    pub fn state_at(&self, length: u64) -> Result<SignedState> {
        let st = self.read_state()?;
        let header = &st.header;
        if length == header.state.length {
            return Ok(header.state.clone());
        }
        if length == header.length() {
            return Ok(header.local_state());
        }
        if length < header.state.length || length > header.length() {
            return Err(Error::OutOfBounds {
                index: length,
                length: header.length(),
            });
        }
        Ok(SignedState {
            fork: header.state.fork,
            length,
            roots: self.stored_roots(length)?,
            signatures: Vec::new(),
        })
    }

    /// The roots of the local tree at each of `lengths` (any length up to
    /// [`Info::length`](crate::Info::length), signed or not, in this fork),
    /// read from the stored nodes in one read transaction: what a tree hash
    /// at a past length is made of (a layer keeping a hash per batch it
    /// appended). A length past the local length is
    /// [`Error::OutOfBounds`]; a node not stored here (a sparse replica)
    /// [`Error::NodeNotAvailable`].
    pub fn roots_at(&self, lengths: &[u64]) -> Result<Vec<Vec<Node>>> {
        let local = self.read_state()?.header.length();
        if let Some(&length) = lengths.iter().find(|l| **l > local) {
            return Err(Error::OutOfBounds {
                index: length,
                length: local,
            });
        }
        let txn = self.inner.shared.db.begin_read()?;
        let nodes = txn.open_table(NODES)?;
        let source = crate::storage::CachedNodes {
            nodes: TableNodes {
                table: &nodes,
                id: self.inner.id,
            },
            pages: Default::default(),
        };
        lengths.iter().map(|l| roots_at(&source, *l)).collect()
    }

    /// The roots of the local tree at `length`, read from the stored nodes.
    fn stored_roots(&self, length: u64) -> Result<Vec<Node>> {
        let txn = self.inner.shared.db.begin_read()?;
        let nodes = txn.open_table(NODES)?;
        roots_at(
            &TableNodes {
                table: &nodes,
                id: self.inner.id,
            },
            length,
        )
    }

    /// Signs `state` with each signing key this store holds for the core
    /// (a signer's own machine): one (signer, signature) per local key,
    /// to hand to [`Core::add_signature`] wherever the core is held.
    pub fn sign_local(&self, state: &SignedState) -> Result<Vec<(PublicKey, Signature)>> {
        let st = self.read_state()?;
        let manifest = st
            .header
            .manifest
            .as_ref()
            .ok_or(Error::InvalidArgument("the manifest is not known yet"))?;
        let message = crate::signable_message(&self.key(), &state.roots, state.length, state.fork);
        Ok(manifest
            .sign(&message, &st.header.signers)
            .into_iter()
            .filter_map(|s| {
                let key = manifest.signers.get(usize::from(s.signer))?;
                Some((*key, s.signature))
            })
            .collect())
    }

    /// Adds one signer's signature over `state` (a state of this core's
    /// tree, same fork, past the signed length, within the local length).
    /// Once the manifest's quorum of distinct signers has signed the same
    /// state, the signed length moves to it. Returns the signed length
    /// after. A state whose roots differ from the local tree is
    /// [`VerifyError::HashMismatch`]; a bad signature
    /// [`VerifyError::Signature`]; a key that is not a signer
    /// [`Error::InvalidArgument`]. A state at or below the signed length
    /// changes nothing.
    pub fn add_signature(
        &self,
        state: &SignedState,
        signer: &PublicKey,
        signature: &Signature,
    ) -> Result<u64> {
        let st = self.write_state()?;
        let mut header = st.header.clone();
        let manifest = header
            .manifest
            .clone()
            .ok_or(Error::InvalidArgument("the manifest is not known yet"))?;
        if state.fork != header.state.fork {
            return Err(Error::InvalidArgument("the state is of another fork"));
        }
        if state.length <= header.state.length {
            return Ok(header.state.length);
        }
        if state.length > header.length() {
            return Err(Error::OutOfBounds {
                index: state.length,
                length: header.length(),
            });
        }
        let roots = if state.length == header.length() {
            header.tree_roots().to_vec()
        } else {
            self.stored_roots(state.length)?
        };
        if let Some(differs) = roots.iter().zip(&state.roots).find(|(a, b)| a != b) {
            return Err(VerifyError::HashMismatch {
                index: differs.0.index,
            }
            .into());
        }
        if roots.len() != state.roots.len() {
            return Err(VerifyError::Malformed("state roots do not fit its length").into());
        }
        let position =
            manifest
                .signers
                .iter()
                .position(|s| s == signer)
                .ok_or(Error::InvalidArgument(
                    "the key is not a signer of this core",
                ))?;
        let message = crate::signable_message(&self.key(), &roots, state.length, state.fork);
        let quorum = usize::from(manifest.quorum);
        if !signer.verify(&message, signature) {
            return Err(VerifyError::Signature { valid: 0, quorum }.into());
        }
        let entry = match header.pending.iter().position(|(l, _)| *l == state.length) {
            Some(i) => i,
            None => {
                if header.pending.len() >= MAX_PENDING {
                    header.pending.remove(0);
                }
                header.pending.push((state.length, Vec::new()));
                header.pending.sort_unstable_by_key(|(l, _)| *l);
                header
                    .pending
                    .iter()
                    .position(|(l, _)| *l == state.length)
                    .unwrap_or(0)
            }
        };
        let Some((_, sigs)) = header.pending.get_mut(entry) else {
            return Err(Error::InvalidArgument("pending signatures lost"));
        };
        let signer = position as u8;
        if !sigs.iter().any(|s| s.signer == signer) {
            sigs.push(SignerSignature {
                signer,
                signature: *signature,
            });
        }
        if sigs.len() >= quorum {
            let signatures = std::mem::take(sigs);
            header.state = SignedState {
                fork: state.fork,
                length: state.length,
                roots,
                signatures,
            };
            header.pending.retain(|(l, _)| *l > state.length);
            if header.length() == state.length {
                header.tail = None;
            }
        }
        let signed = header.state.length;
        // The signed length moved: what replicas and readers now trust.
        let events = if signed > st.header.state.length {
            vec![Event::Appended {
                length: signed,
                byte_length: crate::tree::byte_length(&header.state.roots),
            }]
        } else {
            Vec::new()
        };
        let txn = self.inner.shared.write(self.inner.shared.durability)?;
        let result = (|| {
            CoreTables::open(&txn)?.put_header(self.inner.id, &header)?;
            Ok(())
        })();
        self.finish(st, txn, result, header, &events)?;
        Ok(signed)
    }
}
