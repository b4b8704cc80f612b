//! The system core's entry format (`SystemEntry` in
//! `autobase/proto/autobase.proto`): prost messages and the validated
//! [`SystemEntry`]. Following the indexed prefix into the core is
//! `system/follow.rs`; signing it is `signed.rs`, as for views.

#![deny(clippy::indexing_slicing)]

use hyper_core::{CoreKey, PublicKey};
use prost::Message;

use crate::error::{Error, Result};
use crate::linearizer::{Frontier, FrontierWriter};
use crate::node::{Causal, RawCausal, fixed, writer_key_of};

mod follow;
pub(crate) use follow::SystemFollower;

/// The prost form of `SystemEntry`, as stored.
#[derive(Clone, PartialEq, prost::Message)]
struct RawSystemEntry {
    #[prost(uint64, tag = "1")]
    batches: u64,
    #[prost(uint64, optional, tag = "2")]
    committed_round: Option<u64>,
    #[prost(message, repeated, tag = "3")]
    writers: Vec<RawFrontierWriter>,
    #[prost(message, repeated, tag = "4")]
    members: Vec<RawMember>,
    #[prost(message, repeated, tag = "5")]
    views: Vec<RawViewState>,
    #[prost(message, repeated, tag = "6")]
    epochs: Vec<RawIndexerSet>,
}

/// The prost form of one indexer set of a frontier.
#[derive(Clone, PartialEq, prost::Message)]
struct RawIndexerSet {
    #[prost(bytes = "vec", repeated, tag = "1")]
    indexers: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    signers: Vec<Vec<u8>>,
}

/// The prost form of `FrontierWriter`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawFrontierWriter {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(uint64, tag = "2")]
    length: u64,
    #[prost(message, optional, tag = "3")]
    causal: Option<RawCausal>,
}

/// The prost form of `Member`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawMember {
    #[prost(bytes = "vec", tag = "1")]
    key: Vec<u8>,
    #[prost(bool, tag = "2")]
    indexer: bool,
    #[prost(bool, tag = "3")]
    removed: bool,
    #[prost(bool, tag = "4")]
    pending: bool,
    #[prost(bool, tag = "5")]
    leaving: bool,
}

/// The prost form of `ViewState`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawViewState {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint64, tag = "2")]
    length: u64,
    #[prost(bytes = "vec", tag = "3")]
    tree_hash: Vec<u8>,
}

/// A base's system core lengths, in system entries (see
/// [`crate::Base::signed_system`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SystemInfo {
    /// Entries in this peer's system core (one per leader commit of the
    /// indexed prefix that indexed a value, as far as this peer applied).
    pub length: u64,
    /// Entries a quorum of indexers has signed: at most `length`, what
    /// peers are served.
    pub signed_length: u64,
}

/// One writer's membership at a point of the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The writer's core key.
    pub key: CoreKey,
    /// Whether it is an indexer finality counts (named in the base's
    /// header, or made one and active since).
    pub indexer: bool,
    /// Whether it was removed (its later batches are not applied).
    pub removed: bool,
    /// Whether it was made an indexer but has not counted yet: it joins the
    /// indexers at the first commit after one of its batches is indexed
    /// (see [`crate::Host::add_writer`]).
    pub pending: bool,
    /// Whether it stopped being an indexer (or was removed) but still
    /// counts: no other indexer counted yet when it left. Only with
    /// `indexer`.
    pub leaving: bool,
}

/// One view's state at a point of the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewState {
    /// The view's name.
    pub name: String,
    /// How many view entries it holds.
    pub length: u64,
    /// The hash of the view's tree at `length` (BLAKE3 over the length and
    /// the roots; the proto file gives the bytes hashed).
    pub tree_hash: [u8; 32],
}

/// One entry of a base's system core, validated: what a peer needs to go
/// on from the end of one leader commit of the indexed prefix without the
/// batches before it: the linearizer's [`Frontier`] (committed round
/// always set), the membership and every view's state there. Members and
/// frontier writers are sorted and distinct, every member is a frontier
/// writer, every frontier writer of length 0 is a member, at least one
/// member is an indexer and no indexer is removed; views are sorted by
/// name and distinct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemEntry {
    /// The frontier ([`crate::Linearizer::from_frontier`] takes it).
    pub frontier: Frontier,
    /// Every writer ever added and every indexer, sorted by key.
    pub members: Vec<Member>,
    /// Every view, sorted by name.
    pub views: Vec<ViewState>,
    /// Per indexer set of `frontier.epochs`, the indexers' signing keys in
    /// the same order (each gives its writer key, [`writer_key_of`]): the
    /// manifests of that epoch's signed cores.
    pub signers: Vec<Vec<PublicKey>>,
}

impl SystemEntry {
    /// The entry's block encoding.
    pub fn encode(&self) -> Vec<u8> {
        RawSystemEntry {
            batches: self.frontier.batches,
            committed_round: self.frontier.committed_round,
            writers: self
                .frontier
                .writers
                .iter()
                .map(|w| RawFrontierWriter {
                    key: w.key.0.to_vec(),
                    length: w.length,
                    causal: w.causal.map(RawCausal::from),
                })
                .collect(),
            members: self
                .members
                .iter()
                .map(|m| RawMember {
                    key: m.key.0.to_vec(),
                    indexer: m.indexer,
                    removed: m.removed,
                    pending: m.pending,
                    leaving: m.leaving,
                })
                .collect(),
            views: self
                .views
                .iter()
                .map(|v| RawViewState {
                    name: v.name.clone(),
                    length: v.length,
                    tree_hash: v.tree_hash.to_vec(),
                })
                .collect(),
            epochs: self
                .frontier
                .epochs
                .iter()
                .zip(&self.signers)
                .map(|(set, signers)| RawIndexerSet {
                    indexers: set.iter().map(|k| k.0.to_vec()).collect(),
                    signers: signers.iter().map(|k| k.0.to_vec()).collect(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes and validates a block of a system core.
    pub fn decode(bytes: &[u8]) -> Result<SystemEntry> {
        let raw = RawSystemEntry::decode(bytes)
            .map_err(|_| Error::Malformed("system entry does not decode"))?;
        let key = |b: &[u8], why| fixed(b, why).map(CoreKey);
        let writers = raw
            .writers
            .into_iter()
            .map(|w| {
                Ok(FrontierWriter {
                    key: key(&w.key, "frontier writer key is not 32 bytes")?,
                    length: w.length,
                    causal: w.causal.map(Causal::from),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let members = raw
            .members
            .into_iter()
            .map(|m| {
                Ok(Member {
                    key: key(&m.key, "member key is not 32 bytes")?,
                    indexer: m.indexer,
                    removed: m.removed,
                    pending: m.pending,
                    leaving: m.leaving,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let views = raw
            .views
            .into_iter()
            .map(|v| {
                Ok(ViewState {
                    tree_hash: fixed(&v.tree_hash, "view tree hash is not 32 bytes")?,
                    name: v.name,
                    length: v.length,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let epochs = raw
            .epochs
            .iter()
            .map(|set| {
                set.indexers
                    .iter()
                    .map(|k| key(k, "an indexer key is not 32 bytes"))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let signers = raw
            .epochs
            .iter()
            .map(|set| {
                set.signers
                    .iter()
                    .map(|k| fixed(k, "a signing key is not 32 bytes").map(PublicKey))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let entry = SystemEntry {
            frontier: Frontier {
                batches: raw.batches,
                committed_round: raw.committed_round,
                writers,
                epochs,
            },
            members,
            views,
            signers,
        };
        entry.validate()?;
        Ok(entry)
    }

    /// Checks the rules every entry keeps (see [`SystemEntry`]), the
    /// frontier's own ([`Frontier::validate`]) first.
    pub fn validate(&self) -> Result<()> {
        let f = &self.frontier;
        f.validate()?;
        // Only the commit that changed the indexers leaves its (new)
        // epoch with nothing committed.
        if f.committed_round.is_none() && f.epochs.is_empty() {
            return Err(Error::Malformed("a system entry has no committed round"));
        }
        let nodes = f
            .writers
            .iter()
            .fold(0u64, |sum, w| sum.saturating_add(w.length));
        if f.batches == 0 || f.batches > nodes {
            return Err(Error::Malformed(
                "a system entry's batch count is 0 or more than its writers' nodes",
            ));
        }
        if !self
            .members
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.key < b.key))
        {
            return Err(Error::Malformed("members are not sorted and distinct"));
        }
        if self
            .members
            .iter()
            .any(|m| m.pending && (m.indexer || m.removed))
        {
            return Err(Error::Malformed(
                "a pending indexer is marked an indexer or removed",
            ));
        }
        if !self.members.iter().any(|m| m.indexer) {
            return Err(Error::Malformed("a system entry names no indexer"));
        }
        if self.signers.len() != f.epochs.len()
            || !f.epochs.iter().zip(&self.signers).all(|(set, signers)| {
                set.len() == signers.len()
                    && set.iter().zip(signers).all(|(k, s)| writer_key_of(s) == *k)
            })
        {
            return Err(Error::Malformed(
                "a system entry's signing keys do not give its indexer sets",
            ));
        }
        if let Some(set) = f.epochs.last()
            && !self
                .members
                .iter()
                .filter(|m| m.indexer)
                .map(|m| &m.key)
                .eq(set.iter())
        {
            return Err(Error::Malformed(
                "a system entry's indexers are not its frontier's",
            ));
        }
        let is_member = |k: &CoreKey| self.members.binary_search_by_key(k, |m| m.key).is_ok();
        let is_writer = |k: &CoreKey| f.writers.binary_search_by_key(k, |w| w.key).is_ok();
        if !self.members.iter().all(|m| is_writer(&m.key)) {
            return Err(Error::Malformed("a member is not a frontier writer"));
        }
        if f.writers
            .iter()
            .any(|w| w.length == 0 && !is_member(&w.key))
        {
            return Err(Error::Malformed(
                "a frontier writer with no indexed node is not a member",
            ));
        }
        if !self
            .views
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.name < b.name))
        {
            return Err(Error::Malformed(
                "views are not sorted by name and distinct",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
