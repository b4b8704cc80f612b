//! The signed cores of a base (one per view, and the system core, in each
//! indexer epoch): the storage around [`crate::checkpoint`]. Views and the
//! system core go through the same path: opened from a manifest of an
//! epoch's indexers, grown by every peer as an unsigned tail, signed by
//! each indexer in its next node, assembled from the signatures that
//! arrive. The module docs of `checkpoint` say how checkpoints work, what a
//! peer trusts, and how the cores of one epoch follow those of the last.

use std::collections::VecDeque;
use std::fmt;

use hyper_core::{Core, CoreKey, KeyPair, Manifest, PublicKey, Store};

use crate::checkpoint::{Arrived, Pending, system_manifest, view_manifest};
use crate::error::{Error, Result};
use crate::node::{MAX_CHECKPOINT, ViewSignature};

/// How many refusal reasons [`BaseInfo::refused_signatures`](crate::BaseInfo::refused_signatures) keeps (the newest).
pub const MAX_REFUSALS: usize = 16;

/// How many signatures naming no core this store knows are kept (the
/// newest), to be tried again once it enters a later epoch: an indexer
/// that entered an epoch first signs that epoch's cores before the others
/// know their keys.
const MAX_UNPLACED: usize = 64;

/// What a signed core holds: a view's indexed entries, or the base's
/// system entries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Label {
    View(String),
    System,
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::View(name) => write!(f, "view '{name}'"),
            Label::System => f.write_str("the system core"),
        }
    }
}

/// The signed cores of one indexer epoch (its views', in the base's view
/// order, then its system core) and who signs them.
struct EpochCores {
    /// The indexers' signing keys, in manifest order.
    signers: Vec<PublicKey>,
    /// The indexers' writer core keys, same order.
    indexers: Vec<CoreKey>,
    /// This store's position among the indexers and its key pair.
    me: Option<(usize, KeyPair)>,
    cores: Vec<(Label, Core)>,
    /// Per core, the longest length this store's writer has shipped a
    /// signature for (read back from its own log at open).
    shipped: Vec<u64>,
    /// Per core, the length it stops at: where the next epoch started
    /// (`None` while it is not known, or this is the newest epoch).
    ends: Vec<Option<u64>>,
}

/// The signed cores of a base in every epoch this store entered, the
/// signatures on their way, and this store's signing keys.
pub(crate) struct SignedCores {
    store: Store,
    base: CoreKey,
    names: Vec<String>,
    /// This store's writer core key and its key pairs (`None`: a reader).
    local: Option<(CoreKey, Vec<KeyPair>)>,
    /// Epoch 0 first; the last is the newest.
    epochs: Vec<EpochCores>,
    /// Arrivals, by core number (`epoch * per_epoch + core`).
    pending: Pending,
    refused: VecDeque<String>,
    /// Signatures naming no known core, with their writer: see
    /// [`MAX_UNPLACED`].
    unplaced: VecDeque<(CoreKey, ViewSignature)>,
}

impl SignedCores {
    /// Opens (creating on first use) epoch 0's signed core of each view in
    /// `names` of base `base` and its system core, whose indexers sign with
    /// `signers` (writer core keys `indexers`); `local` is this store's
    /// writer core (`None` for a reader).
    pub(crate) fn open(
        store: &Store,
        base: &CoreKey,
        names: &[&str],
        signers: &[PublicKey],
        indexers: &[CoreKey],
        local: Option<&Core>,
    ) -> Result<Self> {
        let local = match local {
            Some(core) => Some((core.key(), core.export_key_pairs()?)),
            None => None,
        };
        let mut cores = SignedCores {
            store: store.clone(),
            base: *base,
            names: names.iter().map(|n| n.to_string()).collect(),
            local,
            epochs: Vec::new(),
            pending: Pending::default(),
            refused: VecDeque::new(),
            unplaced: VecDeque::new(),
        };
        cores.open_epoch(signers, indexers)?;
        Ok(cores)
    }

    /// Opens the cores of the next epoch, whose indexers are `indexers`
    /// signing with `signers` (same order).
    fn open_epoch(&mut self, signers: &[PublicKey], indexers: &[CoreKey]) -> Result<()> {
        let epoch = self.epochs.len() as u64;
        let me = self.local.as_ref().and_then(|(key, pairs)| {
            let i = indexers.iter().position(|k| k == key)?;
            let mine = signers.get(i)?;
            let pair = pairs.iter().find(|p| p.public_key() == *mine)?;
            Some((i, pair.clone()))
        });
        let mut manifests: Vec<(Label, Manifest)> = self
            .names
            .iter()
            .map(|name| {
                Ok((
                    Label::View(name.clone()),
                    view_manifest(&self.base, name, signers, epoch)?,
                ))
            })
            .collect::<Result<_>>()?;
        manifests.push((Label::System, system_manifest(&self.base, signers, epoch)?));
        let cores = manifests
            .into_iter()
            .map(|(label, manifest)| {
                let keys = me.iter().map(|(_, p)| p.clone()).collect();
                Ok((label, self.store.create_with_manifest(manifest, keys)?))
            })
            .collect::<Result<Vec<_>>>()?;
        self.epochs.push(EpochCores {
            signers: signers.to_vec(),
            indexers: indexers.to_vec(),
            me,
            shipped: vec![0; cores.len()],
            ends: vec![None; cores.len()],
            cores,
        });
        Ok(())
    }

    /// How many epochs this store entered (at least 1).
    pub(crate) fn epochs(&self) -> u64 {
        self.epochs.len() as u64
    }

    /// Enters epoch `epoch` (the next one; a no-op for one entered
    /// already), whose indexers are `indexers` signing with `signers`
    /// (same order, writer key order). Its cores start empty: a base that
    /// applies fills them (see [`SignedCores::append_system`]), a peer
    /// that fast-forwards fetches them.
    pub(crate) fn enter(
        &mut self,
        epoch: u64,
        indexers: &[CoreKey],
        signers: &[PublicKey],
    ) -> Result<()> {
        if epoch < self.epochs() {
            return Ok(());
        }
        if epoch > self.epochs() {
            return Err(Error::Malformed("an indexer epoch entered out of order"));
        }
        self.open_epoch(signers, indexers)?;
        // Signatures that came before this store knew the new cores.
        let unplaced = std::mem::take(&mut self.unplaced);
        for (writer, signature) in unplaced {
            self.receive_one(&writer, &signature, false)?;
        }
        Ok(())
    }

    /// How many system entries the longest of the system cores holds: they
    /// are prefixes of one log of entries.
    pub(crate) fn system_entries(&self) -> Result<u64> {
        let mut longest = 0;
        for epoch in 0..self.epochs() {
            if let Some(core) = self.system_at(epoch) {
                longest = longest.max(core.info()?.length);
            }
        }
        Ok(longest)
    }

    /// Appends the system entries `blocks`, numbered from `have` on, to
    /// epoch `epoch`'s system core, first copying the entries before them
    /// it lacks from another epoch's system core (entries are final: the
    /// copies are every peer's same bytes).
    pub(crate) fn append_system(
        &mut self,
        epoch: u64,
        have: u64,
        blocks: &[Vec<u8>],
    ) -> Result<()> {
        let Some(core) = self.system_at(epoch).cloned() else {
            return Ok(());
        };
        let length = core.info()?.length;
        if length < have {
            let mut source = None;
            for other in (0..self.epochs()).filter_map(|e| self.system_at(e)) {
                if other.info()?.length >= have && other.has_range(length..have)? {
                    source = Some(other);
                    break;
                }
            }
            let source = source.ok_or(Error::Malformed(
                "no system core holds the entries the base wrote",
            ))?;
            core.append_unsigned(&copy_of(source, length, have)?)?;
        }
        core.append_unsigned(blocks)?;
        Ok(())
    }

    /// The signing keys of epoch `epoch`'s indexers (`None`: not entered).
    pub(crate) fn signers_of(&self, epoch: u64) -> Option<&[PublicKey]> {
        let e = self.epochs.get(usize::try_from(epoch).ok()?)?;
        Some(&e.signers)
    }

    /// Whether epoch `epoch`'s view cores have their ends set
    /// ([`SignedCores::end_views`]).
    pub(crate) fn views_ended(&self, epoch: u64) -> bool {
        usize::try_from(epoch)
            .ok()
            .and_then(|e| self.epochs.get(e))
            .is_some_and(|e| e.ends.iter().take(self.names.len()).all(Option::is_some))
    }

    /// Sets where epoch `epoch`'s view cores stop (`lengths`, one per view)
    /// once the next epoch started; set once.
    pub(crate) fn end_views(&mut self, epoch: u64, lengths: &[u64]) {
        if let Some(e) = usize::try_from(epoch)
            .ok()
            .and_then(|e| self.epochs.get_mut(e))
        {
            for (end, length) in e.ends.iter_mut().zip(lengths) {
                end.get_or_insert(*length);
            }
        }
    }

    /// Sets where epoch `epoch`'s system core stops (`length` entries);
    /// set once.
    pub(crate) fn end_system(&mut self, epoch: u64, length: u64) {
        if let Some(e) = usize::try_from(epoch)
            .ok()
            .and_then(|e| self.epochs.get_mut(e))
            && let Some(end) = e.ends.last_mut()
        {
            end.get_or_insert(length);
        }
    }

    /// The newest epoch's system core.
    pub(crate) fn system(&self) -> Option<&Core> {
        self.system_at(self.epochs().checked_sub(1)?)
    }

    /// Epoch `epoch`'s system core.
    pub(crate) fn system_at(&self, epoch: u64) -> Option<&Core> {
        let e = self.epochs.get(usize::try_from(epoch).ok()?)?;
        e.cores
            .iter()
            .find(|(l, _)| *l == Label::System)
            .map(|(_, c)| c)
    }

    /// The newest epoch's signed core of view `i` (`i` past the views: the
    /// system core).
    pub(crate) fn core(&self, i: usize) -> Option<&Core> {
        self.core_at(self.epochs().checked_sub(1)?, i)
    }

    /// Epoch `epoch`'s signed core of view `i`.
    pub(crate) fn core_at(&self, epoch: u64, i: usize) -> Option<&Core> {
        let e = self.epochs.get(usize::try_from(epoch).ok()?)?;
        e.cores.get(i).map(|(_, c)| c)
    }

    /// The newest epoch's signed core of the view `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Core> {
        let i = self.names.iter().position(|n| n == name)?;
        self.core(i)
    }

    /// Every signed core of every epoch entered (per epoch: the views',
    /// then the system core's).
    pub(crate) fn keys(&self) -> Vec<CoreKey> {
        self.epochs
            .iter()
            .flat_map(|e| e.cores.iter().map(|(_, c)| c.key()))
            .collect()
    }

    /// The longest signed length of view `i`'s cores (`i` past the views:
    /// the system core's) over the epochs: they are prefixes of one view.
    pub(crate) fn signed_length(&self, i: usize) -> Result<u64> {
        let mut longest = 0;
        for e in &self.epochs {
            if let Some((_, core)) = e.cores.get(i) {
                longest = longest.max(core.info()?.signed_length);
            }
        }
        Ok(longest)
    }

    /// Why signatures were refused or dropped, newest last.
    pub(crate) fn refused(&self) -> Vec<String> {
        self.refused.iter().cloned().collect()
    }

    pub(crate) fn refuse(&mut self, why: String) {
        if self.refused.len() == MAX_REFUSALS {
            self.refused.pop_front();
        }
        self.refused.push_back(why);
    }

    /// Appends to view `i`'s signed cores of the epochs up to `reached`
    /// (the epochs this base's own order reached: a later one's cores are
    /// left to be fetched) the entries of `working` up to `indexed`, the
    /// view's length at the end of the indexed prefix, as an unsigned
    /// tail (an ended epoch's core no further than its end). They are
    /// final, so a signed core only grows.
    pub(crate) fn follow(
        &mut self,
        i: usize,
        working: &Core,
        indexed: u64,
        reached: u64,
    ) -> Result<()> {
        for e in self.epochs.iter().take(reached.saturating_add(1) as usize) {
            let (Some((_, core)), Some(end)) = (e.cores.get(i), e.ends.get(i)) else {
                continue;
            };
            let target = end.map_or(indexed, |end| end.min(indexed));
            let have = core.info()?.length;
            if target > have {
                core.append_unsigned(&copy_of(working, have, target)?)?;
            }
        }
        Ok(())
    }

    /// Has every ended epoch's system core before `reached` follow
    /// epoch `reached`'s (where the entries are written) up to its end.
    pub(crate) fn follow_system(&mut self, reached: u64) -> Result<()> {
        let Some(newest) = self.system_at(reached).cloned() else {
            return Ok(());
        };
        let newest_length = newest.info()?.length;
        for e in self.epochs.iter().take(reached as usize) {
            let (Some((_, core)), Some(Some(end))) = (e.cores.last(), e.ends.last()) else {
                continue;
            };
            let target = (*end).min(newest_length);
            let have = core.info()?.length;
            if target > have {
                core.append_unsigned(&copy_of(&newest, have, target)?)?;
            }
        }
        Ok(())
    }

    /// Takes in the checkpoint of a node of `writer`. A signature naming
    /// no signed core of this base, or a core of an epoch `writer` is no
    /// indexer of, is refused; a signature at or below the core's signed
    /// length is stale (nothing to do, as when a reopened base reads its
    /// history again); the rest waits until this peer's core reaches it.
    pub(crate) fn receive(&mut self, writer: &CoreKey, checkpoint: &[ViewSignature]) -> Result<()> {
        for s in checkpoint {
            self.receive_one(writer, s, true)?;
        }
        Ok(())
    }

    /// [`SignedCores::receive`] for one signature; `first`: it was not
    /// tried before (a signature tried again is not refused twice).
    fn receive_one(&mut self, writer: &CoreKey, s: &ViewSignature, first: bool) -> Result<()> {
        let per = self.names.len() + 1;
        let found = self.epochs.iter().enumerate().find_map(|(n, e)| {
            let i = e.cores.iter().position(|(_, c)| c.key() == s.view)?;
            Some((n, i))
        });
        let Some((n, i)) = found else {
            if first {
                self.refuse(format!(
                    "signature of writer {writer} refused: core {} is not a view of this base \
                     nor its system core (kept in case it is a later epoch's)",
                    s.view
                ));
            }
            if self.unplaced.len() == MAX_UNPLACED {
                self.unplaced.pop_front();
            }
            self.unplaced.push_back((*writer, *s));
            return Ok(());
        };
        let Some(e) = self.epochs.get_mut(n) else {
            return Ok(());
        };
        let Some(signer) = e.indexers.iter().position(|k| k == writer) else {
            self.refuse(format!(
                "checkpoint of writer {writer} refused: it is not an indexer (of epoch {n}, \
                 whose core {} it signs)",
                s.view
            ));
            return Ok(());
        };
        if e.me.as_ref().is_some_and(|(m, _)| *m == signer)
            && let Some(shipped) = e.shipped.get_mut(i)
        {
            *shipped = (*shipped).max(s.length);
        }
        let stale = match e.cores.get(i) {
            Some((_, core)) => s.length <= core.info()?.signed_length,
            None => true,
        };
        if stale {
            return Ok(());
        }
        if let Some(why) = self.pending.keep(Arrived {
            view: n * per + i,
            signer,
            length: s.length,
            signature: s.signature,
        }) {
            self.refuse(why);
        }
        Ok(())
    }

    /// Adds every waiting signature whose core length this peer holds now;
    /// a signature that does not verify against this peer's core is
    /// refused with the reason. The signed lengths move where a quorum
    /// signed.
    pub(crate) fn assemble(&mut self) -> Result<()> {
        let per = self.names.len() + 1;
        let mut refusals = Vec::new();
        for (n, e) in self.epochs.iter().enumerate() {
            for (i, (label, core)) in e.cores.iter().enumerate() {
                let info = core.info()?;
                for a in self.pending.take_ready(n * per + i, info.length) {
                    if a.length <= core.info()?.signed_length {
                        continue;
                    }
                    let (Some(key), Some(writer)) =
                        (e.signers.get(a.signer), e.indexers.get(a.signer))
                    else {
                        continue;
                    };
                    let state = core.state_at(a.length)?;
                    if let Err(err) = core.add_signature(&state, key, &a.signature) {
                        refusals.push(format!(
                            "signature of indexer {writer} for {label} of epoch {n} at length {} \
                             refused: {err}",
                            a.length
                        ));
                    }
                }
            }
        }
        for why in refusals {
            self.refuse(why);
        }
        Ok(())
    }

    /// Whether this store is an indexer of an epoch holding a signed core's
    /// state longer than the last it shipped a signature for: its next
    /// node should carry a checkpoint, and an ack may be worth appending
    /// for it alone.
    pub(crate) fn unshipped(&self) -> Result<bool> {
        for e in self.epochs.iter().filter(|e| e.me.is_some()) {
            for ((_, core), shipped) in e.cores.iter().zip(&e.shipped) {
                if core.info()?.length > *shipped {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// This indexer's checkpoint for its next node: a signature over each
    /// signed core's state longer than the last shipped, in every epoch it
    /// is an indexer of (at most [`MAX_CHECKPOINT`], so the node stays
    /// valid; the newest epoch and the views first), also added here at
    /// once. Empty for a store that is no indexer.
    pub(crate) fn checkpoint(&mut self) -> Result<Vec<ViewSignature>> {
        let mut out = Vec::new();
        for e in self.epochs.iter().rev() {
            let Some((_, pair)) = &e.me else {
                continue;
            };
            let mine = pair.public_key();
            for ((_, core), shipped) in e.cores.iter().zip(&e.shipped) {
                if out.len() == MAX_CHECKPOINT {
                    // The other cores' signatures go in the next node.
                    return Ok(out);
                }
                let length = core.info()?.length;
                if length <= *shipped {
                    continue;
                }
                let state = core.state_at(length)?;
                let Some((_, signature)) = core
                    .sign_local(&state)?
                    .into_iter()
                    .find(|(k, _)| *k == mine)
                else {
                    continue;
                };
                core.add_signature(&state, &mine, &signature)?;
                out.push(ViewSignature {
                    view: core.key(),
                    length,
                    signature,
                });
            }
        }
        Ok(out)
    }

    /// Records that `checkpoint` went out in a node of this store's writer.
    pub(crate) fn shipped(&mut self, checkpoint: &[ViewSignature]) {
        for s in checkpoint {
            for e in &mut self.epochs {
                if let Some(i) = e.cores.iter().position(|(_, c)| c.key() == s.view)
                    && let Some(shipped) = e.shipped.get_mut(i)
                {
                    *shipped = (*shipped).max(s.length);
                }
            }
        }
    }
}

/// Blocks `from..to` of `core`.
fn copy_of(core: &Core, from: u64, to: u64) -> Result<Vec<Vec<u8>>> {
    if from >= to {
        return Ok(Vec::new());
    }
    Ok(core
        .blocks(from..to)?
        .map(|b| b.map(|(_, block)| block))
        .collect::<hyper_core::Result<Vec<_>>>()?)
}
