//! The on-disk format: redb tables and the byte layout of the core header.
//!
//! One redb database per store (`store.redb` in the store directory). Every
//! core has a small numeric id; its records are keyed by `(id, …)` so each
//! core's nodes, blocks and bitfield pages sit together in key order.
//!
//! | table       | key                 | value                                  |
//! |-------------|---------------------|----------------------------------------|
//! | `meta`      | name (`&str`)       | `format` (u32 LE), `seed` (32 bytes), `next_id` (u64 LE) |
//! | `core_ids`  | core key (32 bytes) | core id (u64)                          |
//! | `discovery_keys` | discovery key (32 bytes) | core key (32 bytes): kept with `core_ids` in the same transactions; built once when a store without it is opened for writing |
//! | `names`     | core name           | core key (32 bytes)                    |
//! | `headers`   | core id             | [`Header`] (layout below)              |
//! | `nodes`     | (id, page)          | a page of up to 128 nodes ([`crate::nodepage`]) |
//! | `blocks`    | (id, first block, part) | a part of a chunk of blocks ([`crate::chunk`]) |
//! | `bitfield`  | (id, page number)   | 4096-byte page of present-block bits   |
//! | `user_data` | (id, key)           | bytes                                  |
//! | `evidence`  | core id             | two conflicting signed states ([`encode_evidence`]) |

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use redb::{ReadableTable, TableDefinition};

use crate::codec::{Reader, Writer};
use crate::error::{Corruption, Result};
use crate::keys::{Hash, KeyPair, Signature};
use crate::manifest::{Manifest, SignerSignature};
use crate::nodepage;
use crate::proof::{MAX_LENGTH, NodeSource, SignedState};
use crate::tree::Node;
use crate::verify::Equivocation;

/// The store format this crate writes; any other is refused with
/// [`Error::Format`](crate::Error::Format). Format 4 changed the parent
/// hash to commit both children's sizes (format 3 hashed their sum), so
/// every stored parent node of a format-3 store would fail to verify.
pub(crate) const FORMAT: u32 = 4;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const CORE_IDS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("core_ids");
pub(crate) const DISCOVERY_KEYS: TableDefinition<&[u8; 32], &[u8; 32]> =
    TableDefinition::new("discovery_keys");
pub(crate) const NAMES: TableDefinition<&str, &[u8; 32]> = TableDefinition::new("names");
pub(crate) const HEADERS: TableDefinition<u64, &[u8]> = TableDefinition::new("headers");
pub(crate) const NODES: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("nodes");
pub(crate) const BITFIELD: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("bitfield");
pub(crate) const USER_DATA: TableDefinition<(u64, &str), &[u8]> = TableDefinition::new("user_data");
pub(crate) const EVIDENCE: TableDefinition<u64, &[u8]> = TableDefinition::new("evidence");

/// Everything about one core that is not a node, block or page.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The manifest; `None` for a replica that has not learned it yet.
    pub manifest: Option<Manifest>,
    /// Local signing keys (a writable core holds at least the quorum).
    pub signers: Vec<KeyPair>,
    /// The name the core was created under, if any.
    pub name: Option<String>,
    /// The latest signed state.
    pub state: SignedState,
    /// Bytes of blocks stored locally.
    pub bytes_stored: u64,
    /// For each truncation: the fork it started and the length it cut to.
    pub truncations: Vec<(u64, u64)>,
    /// Blocks this store appended past the signed length and trusts
    /// locally: the tree's length and roots with them. Never served.
    pub tail: Option<Tail>,
    /// Signatures gathered for states of the tail that have not reached
    /// the quorum yet: (length, signatures), at most [`MAX_PENDING`].
    pub pending: Vec<(u64, Vec<SignerSignature>)>,
}

/// The local tree past the signed length (see [`Header::tail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Blocks in the tree, signed and unsigned.
    pub length: u64,
    /// The roots of the tree at `length`.
    pub roots: Vec<Node>,
}

/// Tail states with signatures waiting for the quorum, kept per core.
pub(crate) const MAX_PENDING: usize = 64;

const HEADER_VERSION: u8 = 1;

impl Header {
    /// Byte layout, integers little-endian, in order:
    ///
    /// | field        | bytes                                             |
    /// |--------------|---------------------------------------------------|
    /// | version      | `u8` = 1                                          |
    /// | manifest     | flag `u8`; if 1, `u32` length and the encoding    |
    /// | signers      | count `u8`, then 32-byte secret seeds             |
    /// | name         | flag `u8`; if 1, `u32` length and UTF-8           |
    /// | fork, length | `u64`, `u64`                                      |
    /// | roots        | count `u8`, then (index `u64`, size `u64`, hash 32) |
    /// | signatures   | count `u8`, then (signer `u8`, 64 bytes)          |
    /// | bytes stored | `u64`                                             |
    /// | truncations  | count `u64`, then (fork `u64`, length `u64`)      |
    /// | tail         | flag `u8`; if 1, length `u64`, roots as above     |
    /// | pending      | count `u8`, then (length `u64`, signatures as above) |
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(HEADER_VERSION);
        match &self.manifest {
            Some(m) => w.u8(1).bytes(&m.encode()),
            None => w.u8(0),
        };
        w.u8(self.signers.len() as u8);
        for s in &self.signers {
            w.raw(&s.seed());
        }
        match &self.name {
            Some(n) => w.u8(1).bytes(n.as_bytes()),
            None => w.u8(0),
        };
        encode_state(&mut w, &self.state);
        w.u64(self.bytes_stored);
        w.u64(self.truncations.len() as u64);
        for (fork, length) in &self.truncations {
            w.u64(*fork).u64(*length);
        }
        match &self.tail {
            Some(t) => {
                w.u8(1).u64(t.length);
                encode_roots(&mut w, &t.roots);
            }
            None => {
                w.u8(0);
            }
        }
        w.u8(self.pending.len() as u8);
        for (length, sigs) in &self.pending {
            w.u64(*length);
            encode_signatures(&mut w, sigs);
        }
        w.0
    }

    /// Blocks in the local tree: the signed length, or the tail's.
    pub fn length(&self) -> u64 {
        self.tail.as_ref().map_or(self.state.length, |t| t.length)
    }

    /// The roots of the local tree (at [`Header::length`]).
    pub fn tree_roots(&self) -> &[Node] {
        self.tail.as_ref().map_or(&self.state.roots, |t| &t.roots)
    }

    /// The local tree as a state: the signed state, or (with a tail) the
    /// tail's length and roots in the signed fork, without signatures.
    pub fn local_state(&self) -> SignedState {
        match &self.tail {
            None => self.state.clone(),
            Some(t) => SignedState {
                fork: self.state.fork,
                length: t.length,
                roots: t.roots.clone(),
                signatures: Vec::new(),
            },
        }
    }

    /// Decodes [`Header::encode`]; anything else is corruption, and so is
    /// a length or a truncation length at or past [`MAX_LENGTH`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_inner(bytes).ok_or(Corruption::Record { table: "headers" }.into())
    }

    fn decode_inner(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        if r.u8()? != HEADER_VERSION {
            return None;
        }
        let manifest = match r.u8()? {
            0 => None,
            1 => Some(Manifest::decode(r.bytes()?).ok()?),
            _ => return None,
        };
        let signers = (0..r.u8()?)
            .map(|_| r.array().map(KeyPair::from_seed))
            .collect::<Option<Vec<_>>>()?;
        let name = match r.u8()? {
            0 => None,
            1 => Some(String::from_utf8(r.bytes()?.to_vec()).ok()?),
            _ => return None,
        };
        let state = decode_state(&mut r)?;
        let bytes_stored = r.u64()?;
        let count = r.u64()?;
        let mut truncations = Vec::new();
        for _ in 0..count {
            truncations.push((r.u64()?, r.u64()?));
        }
        if truncations.iter().any(|(_, l)| *l >= MAX_LENGTH) {
            return None;
        }
        let tail = match r.u8()? {
            0 => None,
            1 => {
                let length = r.u64()?;
                let roots = decode_roots(&mut r, length)?;
                Some((length > state.length).then_some(Tail { length, roots })?)
            }
            _ => return None,
        };
        let pending = (0..r.u8()?)
            .map(|_| Some((r.u64()?, decode_signatures(&mut r)?)))
            .collect::<Option<Vec<_>>>()?;
        r.is_empty().then_some(Header {
            manifest,
            signers,
            name,
            state,
            bytes_stored,
            truncations,
            tail,
            pending,
        })
    }
}

/// A signed state, in the header's layout: fork `u64`, length `u64`, roots
/// (count `u8`, then index `u64`, size `u64`, hash 32), signatures (count
/// `u8`, then signer `u8`, 64 bytes).
fn encode_state(w: &mut Writer, state: &SignedState) {
    w.u64(state.fork).u64(state.length);
    encode_roots(w, &state.roots);
    encode_signatures(w, &state.signatures);
}

fn encode_roots(w: &mut Writer, roots: &[Node]) {
    w.u8(roots.len() as u8);
    for r in roots {
        w.u64(r.index).u64(r.size).raw(&r.hash.0);
    }
}

fn encode_signatures(w: &mut Writer, sigs: &[SignerSignature]) {
    w.u8(sigs.len() as u8);
    for s in sigs {
        w.u8(s.signer).raw(&s.signature.0);
    }
}

/// Decodes [`encode_state`]; `None` unless the roots fit the length and the
/// length is below [`MAX_LENGTH`].
fn decode_state(r: &mut Reader<'_>) -> Option<SignedState> {
    let fork = r.u64()?;
    let length = r.u64()?;
    let roots = decode_roots(r, length)?;
    let signatures = decode_signatures(r)?;
    Some(SignedState {
        fork,
        length,
        roots,
        signatures,
    })
}

/// Roots of a tree of `length` blocks; `None` unless they fit it and the
/// length is below [`MAX_LENGTH`].
fn decode_roots(r: &mut Reader<'_>, length: u64) -> Option<Vec<Node>> {
    let roots = (0..r.u8()?)
        .map(|_| {
            Some(Node {
                index: r.u64()?,
                size: r.u64()?,
                hash: Hash(r.array()?),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let fits = length < MAX_LENGTH && roots.iter().map(|n| n.index).eq(crate::flat::roots(length));
    fits.then_some(roots)
}

fn decode_signatures(r: &mut Reader<'_>) -> Option<Vec<SignerSignature>> {
    (0..r.u8()?)
        .map(|_| {
            Some(SignerSignature {
                signer: r.u8()?,
                signature: Signature(r.array()?),
            })
        })
        .collect()
}

const EVIDENCE_VERSION: u8 = 1;

/// Encodes an [`Equivocation`] for the `evidence` table: version `u8` = 1,
/// then the local and the remote state in the header's state layout.
pub(crate) fn encode_evidence(e: &Equivocation) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(EVIDENCE_VERSION);
    encode_state(&mut w, &e.local);
    encode_state(&mut w, &e.remote);
    w.0
}

/// Decodes [`encode_evidence`]; anything else is corruption.
pub(crate) fn decode_evidence(bytes: &[u8]) -> Result<Equivocation> {
    let mut r = Reader::new(bytes);
    let decoded = (|| {
        if r.u8()? != EVIDENCE_VERSION {
            return None;
        }
        let local = decode_state(&mut r)?;
        let remote = decode_state(&mut r)?;
        r.is_empty().then_some(Equivocation { local, remote })
    })();
    decoded.ok_or(Corruption::Record { table: "evidence" }.into())
}

/// Tree nodes of one core, read from an open redb table (read-only or in a
/// write transaction).
pub(crate) struct TableNodes<'t, T> {
    pub table: &'t T,
    pub id: u64,
}

impl<T: ReadableTable<(u64, u64), &'static [u8]>> NodeSource for TableNodes<'_, T> {
    fn node(&self, index: u64) -> Result<Option<Node>> {
        let (page, _) = nodepage::locate(index);
        match self.table.get((self.id, page))? {
            None => Ok(None),
            Some(v) => nodepage::get(v.value(), index)
                .map_err(|()| Corruption::Record { table: "nodes" }.into()),
        }
    }
}

/// [`TableNodes`] that keeps the node pages it read (redb's guards on
/// them, not copies), for many lookups in one read transaction (serving
/// a batch of proofs, walking a path).
pub(crate) struct CachedNodes<'t, T> {
    pub nodes: TableNodes<'t, T>,
    pub pages: std::cell::RefCell<PageGuards<'t>>,
}

/// The node pages a [`CachedNodes`] read, by page number (`None`: absent).
pub(crate) type PageGuards<'t> =
    std::collections::HashMap<u64, Option<redb::AccessGuard<'t, &'static [u8]>>>;

impl<'t, T: ReadableTable<(u64, u64), &'static [u8]>> NodeSource for CachedNodes<'t, T> {
    fn node(&self, index: u64) -> Result<Option<Node>> {
        let (page, _) = nodepage::locate(index);
        let mut pages = self.pages.borrow_mut();
        let guard = match pages.entry(page) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let table: &'t T = self.nodes.table;
                e.insert(table.get((self.nodes.id, page))?)
            }
        };
        match guard {
            None => Ok(None),
            Some(g) => nodepage::get(g.value(), index)
                .map_err(|()| Corruption::Record { table: "nodes" }.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_truncation_is_corrupt() {
        let pair = KeyPair::from_seed([3; 32]);
        let h = Header {
            manifest: Some(Manifest::single(pair.public_key())),
            signers: vec![pair],
            name: Some("n".into()),
            state: SignedState {
                fork: 2,
                length: 1,
                roots: vec![Node::leaf(0, b"x")],
                signatures: vec![],
            },
            bytes_stored: 1,
            truncations: vec![(2, 0)],
            tail: Some(Tail {
                length: 2,
                roots: vec![Node::parent(&Node::leaf(0, b"x"), &Node::leaf(1, b"y"))],
            }),
            pending: vec![(
                2,
                vec![SignerSignature {
                    signer: 0,
                    signature: Signature([4; 64]),
                }],
            )],
        };
        let enc = h.encode();
        let back = Header::decode(&enc).expect("round trip");
        assert_eq!(back.encode(), enc);
        for cut in 0..enc.len() {
            assert!(Header::decode(&enc[..cut]).is_err(), "prefix {cut} decoded");
        }
    }

    #[test]
    fn evidence_snapshot_and_round_trip() {
        let state = |length: u64, byte: u8| SignedState {
            fork: 1,
            length,
            roots: vec![Node {
                index: 0,
                size: 2,
                hash: Hash([byte; 32]),
            }],
            signatures: vec![SignerSignature {
                signer: 0,
                signature: Signature([byte; 64]),
            }],
        };
        let e = Equivocation {
            local: state(1, 0xaa),
            remote: state(1, 0xbb),
        };
        let enc = encode_evidence(&e);
        // version, then per state: fork, length, 1 root, 1 signature.
        let one = 8 + 8 + 1 + 48 + 1 + 65;
        assert_eq!(enc.len(), 1 + 2 * one);
        assert_eq!(
            &enc[..18],
            &[1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(decode_evidence(&enc).expect("round trip"), e);
        for cut in 0..enc.len() {
            assert!(
                decode_evidence(&enc[..cut]).is_err(),
                "prefix {cut} decoded"
            );
        }
    }

    #[test]
    fn lengths_at_or_past_the_cap_are_corrupt() {
        let at_cap = |length: u64, truncated: u64| Header {
            manifest: None,
            signers: vec![],
            name: None,
            state: SignedState {
                fork: 0,
                length,
                roots: crate::flat::roots(length)
                    .into_iter()
                    .map(|index| Node {
                        index,
                        size: 0,
                        hash: Hash([0; 32]),
                    })
                    .collect(),
                signatures: vec![],
            },
            bytes_stored: 0,
            truncations: vec![(1, truncated)],
            tail: None,
            pending: vec![],
        };
        let below = MAX_LENGTH - 1;
        assert!(Header::decode(&at_cap(below, below).encode()).is_ok());
        assert!(Header::decode(&at_cap(MAX_LENGTH, 0).encode()).is_err());
        assert!(Header::decode(&at_cap(1 << 62, 0).encode()).is_err());
        assert!(Header::decode(&at_cap(0, MAX_LENGTH).encode()).is_err());
    }
}
