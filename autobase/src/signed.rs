//! The signed cores of a base (one per view, and the system core): the
//! storage around [`crate::checkpoint`]. Views and the system core go
//! through the same path: opened from a manifest of the indexers, grown
//! by every peer as an unsigned tail, signed by each indexer in its next
//! node, assembled from the signatures that arrive. The module docs of
//! `checkpoint` say how checkpoints work and what a peer trusts.

use std::collections::VecDeque;
use std::fmt;

use hyper_core::{Core, CoreKey, KeyPair, Manifest, PublicKey, Store};

use crate::checkpoint::{Arrived, Pending, system_manifest, view_manifest};
use crate::error::Result;
use crate::node::{MAX_CHECKPOINT, ViewSignature};

/// How many refusal reasons [`BaseInfo::refused_signatures`](crate::BaseInfo::refused_signatures) keeps (the newest).
pub const MAX_REFUSALS: usize = 16;

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

/// The signed cores of a base (its views', in the base's view order, then
/// the system core), the signatures on their way, and this store's own
/// signing key when it is an indexer.
pub(crate) struct SignedCores {
    /// (what it holds, signed core) per core: the views, then the system
    /// core.
    cores: Vec<(Label, Core)>,
    /// The indexers' signing keys, in the header's order.
    signers: Vec<PublicKey>,
    /// The indexers' writer core keys, same order.
    indexers: Vec<CoreKey>,
    /// This store's position among the indexers and its key pair.
    me: Option<(usize, KeyPair)>,
    /// Per core, the longest length this store's writer has shipped a
    /// signature for (read back from its own log at open).
    shipped: Vec<u64>,
    pending: Pending,
    refused: VecDeque<String>,
}

impl SignedCores {
    /// Opens (creating on first use) the signed core of each view in
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
        let me = match local.and_then(|l| Some((l, indexers.iter().position(|k| *k == l.key())?))) {
            Some((local, i)) => {
                let mine = signers.get(i).copied();
                local
                    .export_key_pairs()?
                    .into_iter()
                    .find(|p| Some(p.public_key()) == mine)
                    .map(|p| (i, p))
            }
            None => None,
        };
        let mut manifests: Vec<(Label, Manifest)> = names
            .iter()
            .map(|name| {
                Ok((
                    Label::View(name.to_string()),
                    view_manifest(base, name, signers)?,
                ))
            })
            .collect::<Result<_>>()?;
        manifests.push((Label::System, system_manifest(base, signers)?));
        let cores = manifests
            .into_iter()
            .map(|(label, manifest)| {
                let keys = me.iter().map(|(_, p)| p.clone()).collect();
                Ok((label, store.create_with_manifest(manifest, keys)?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SignedCores {
            shipped: vec![0; cores.len()],
            cores,
            signers: signers.to_vec(),
            indexers: indexers.to_vec(),
            me,
            pending: Pending::default(),
            refused: VecDeque::new(),
        })
    }

    /// The system core.
    pub(crate) fn system(&self) -> Option<&Core> {
        self.cores
            .iter()
            .find(|(l, _)| *l == Label::System)
            .map(|(_, c)| c)
    }

    /// The signed core of view `i` (`i` past the views: the system core).
    pub(crate) fn core(&self, i: usize) -> Option<&Core> {
        self.cores.get(i).map(|(_, c)| c)
    }

    /// The signed core of the view `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Core> {
        self.cores
            .iter()
            .find(|(l, _)| matches!(l, Label::View(n) if n == name))
            .map(|(_, c)| c)
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

    /// Appends to view `i`'s signed core (as an unsigned tail) the entries
    /// of `working` up to `indexed`, the view's length at the end of the
    /// indexed prefix. They are final, so the signed core only grows.
    pub(crate) fn follow(&mut self, i: usize, working: &Core, indexed: u64) -> Result<()> {
        let Some(core) = self.core(i) else {
            return Ok(());
        };
        let have = core.info()?.length;
        if indexed <= have {
            return Ok(());
        }
        let blocks = working
            .blocks(have..indexed)?
            .map(|b| b.map(|(_, block)| block))
            .collect::<hyper_core::Result<Vec<_>>>()?;
        core.append_unsigned(&blocks)?;
        Ok(())
    }

    /// Takes in the checkpoint of a node of `writer`. A checkpoint of a
    /// writer that is not an indexer, or a signature naming no signed core
    /// of this base, is refused; a signature at or below the core's signed
    /// length is stale (nothing to do, as when a reopened base reads its
    /// history again); the rest waits until this peer's core reaches it.
    pub(crate) fn receive(&mut self, writer: &CoreKey, checkpoint: &[ViewSignature]) -> Result<()> {
        if checkpoint.is_empty() {
            return Ok(());
        }
        let Some(signer) = self.indexers.iter().position(|k| k == writer) else {
            self.refuse(format!(
                "checkpoint of writer {writer} refused: it is not an indexer"
            ));
            return Ok(());
        };
        let mine = self.me.as_ref().is_some_and(|(i, _)| *i == signer);
        for s in checkpoint {
            let Some(view) = self.cores.iter().position(|(_, c)| c.key() == s.view) else {
                self.refuse(format!(
                    "signature of indexer {writer} refused: core {} is not a view of this base \
                     nor its system core",
                    s.view
                ));
                continue;
            };
            if mine && let Some(shipped) = self.shipped.get_mut(view) {
                *shipped = (*shipped).max(s.length);
            }
            let stale = match self.core(view) {
                Some(core) => s.length <= core.info()?.signed_length,
                None => true,
            };
            if stale {
                continue;
            }
            if let Some(why) = self.pending.keep(Arrived {
                view,
                signer,
                length: s.length,
                signature: s.signature,
            }) {
                self.refuse(why);
            }
        }
        Ok(())
    }

    /// Adds every waiting signature whose core length this peer holds now;
    /// a signature that does not verify against this peer's core is
    /// refused with the reason. The signed lengths move where a quorum
    /// signed.
    pub(crate) fn assemble(&mut self) -> Result<()> {
        for i in 0..self.cores.len() {
            let Some((label, core)) = self.cores.get(i).cloned() else {
                continue;
            };
            let info = core.info()?;
            for a in self.pending.take_ready(i, info.length) {
                let signed = core.info()?.signed_length;
                if a.length <= signed {
                    continue;
                }
                let (Some(key), Some(writer)) = (
                    self.signers.get(a.signer),
                    self.indexers.get(a.signer).copied(),
                ) else {
                    continue;
                };
                let state = core.state_at(a.length)?;
                if let Err(e) = core.add_signature(&state, key, &a.signature) {
                    self.refuse(format!(
                        "signature of indexer {writer} for {label} at length {} refused: {e}",
                        a.length
                    ));
                }
            }
        }
        Ok(())
    }

    /// Whether this store is an indexer holding a signed core's state
    /// longer than the last it shipped a signature for: its next node
    /// should carry a checkpoint, and an ack may be worth appending for it
    /// alone.
    pub(crate) fn unshipped(&self) -> Result<bool> {
        if self.me.is_none() {
            return Ok(false);
        }
        for ((_, core), shipped) in self.cores.iter().zip(&self.shipped) {
            if core.info()?.length > *shipped {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// This indexer's checkpoint for its next node: a signature over each
    /// signed core's state longer than the last shipped (at most
    /// [`MAX_CHECKPOINT`], so the node stays valid; the views first), also
    /// added here at once. Empty for a store that is not an indexer.
    pub(crate) fn checkpoint(&mut self) -> Result<Vec<ViewSignature>> {
        let Some((_, pair)) = &self.me else {
            return Ok(Vec::new());
        };
        let mine = pair.public_key();
        let mut out = Vec::new();
        for ((_, core), shipped) in self.cores.iter().zip(&self.shipped) {
            if out.len() == MAX_CHECKPOINT {
                // The other cores' signatures go in the next node.
                break;
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
        Ok(out)
    }

    /// Records that `checkpoint` went out in a node of this store's writer.
    pub(crate) fn shipped(&mut self, checkpoint: &[ViewSignature]) {
        for s in checkpoint {
            if let Some(i) = self.cores.iter().position(|(_, c)| c.key() == s.view)
                && let Some(shipped) = self.shipped.get_mut(i)
            {
                *shipped = (*shipped).max(s.length);
            }
        }
    }
}
