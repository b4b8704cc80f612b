//! The node format of `autobase/proto/autobase.proto`: prost messages and
//! the validated [`Node`] every other module works with.

#![deny(clippy::indexing_slicing)]

use hyper_core::{CoreKey, Manifest, PublicKey, Signature};
use prost::Message;

use crate::error::{Error, Result};

/// The most nodes one batch may hold. A batch is applied all or nothing, so
/// this bounds what one writer can make a peer hold before it applies.
pub const MAX_BATCH: u32 = 4096;

/// The most heads one node may name (one per other writer).
pub const MAX_HEADS: usize = 1024;

/// The prost form of `Node`, as on disk.
#[derive(Clone, PartialEq, prost::Message)]
struct RawNode {
    #[prost(bytes = "vec", optional, tag = "1")]
    value: Option<Vec<u8>>,
    #[prost(message, repeated, tag = "2")]
    heads: Vec<RawHead>,
    #[prost(uint32, tag = "3")]
    batch_remaining: u32,
    #[prost(message, repeated, tag = "4")]
    checkpoint: Vec<RawViewSignature>,
    #[prost(message, optional, tag = "5")]
    causal: Option<RawCausal>,
}

/// The prost form of `Causal` (also in system entries).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RawCausal {
    #[prost(uint64, tag = "1")]
    depth: u64,
    #[prost(uint64, optional, tag = "2")]
    round: Option<u64>,
    #[prost(fixed64, tag = "3")]
    round_set: u64,
    #[prost(uint64, tag = "4")]
    epoch: u64,
}

/// The prost form of `ViewSignature`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawViewSignature {
    #[prost(bytes = "vec", tag = "1")]
    view: Vec<u8>,
    #[prost(uint64, tag = "2")]
    length: u64,
    #[prost(bytes = "vec", tag = "3")]
    signature: Vec<u8>,
}

/// The prost form of `Header`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawHeader {
    #[prost(string, tag = "1")]
    protocol: String,
    #[prost(uint32, tag = "2")]
    version: u32,
    #[prost(bytes = "vec", tag = "3")]
    base: Vec<u8>,
    #[prost(bytes = "vec", repeated, tag = "4")]
    indexers: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "5")]
    indexer_signers: Vec<Vec<u8>>,
}

/// The `protocol` of every writer core's header.
pub const PROTOCOL: &str = "hyper-autobase";

/// The block format version this build writes and reads.
pub const VERSION: u32 = 1;

/// The most indexers a base may have.
pub const MAX_INDEXERS: usize = 64;

/// The most signatures one node's checkpoint may carry (one per signed
/// core: the views' and the system core).
pub const MAX_CHECKPOINT: usize = 64;

/// The writer core key of the writer whose signing key is `signer`: the
/// key of the single-signer manifest of `signer` (as every named core's).
pub fn writer_key_of(signer: &PublicKey) -> CoreKey {
    Manifest::single(*signer).key()
}

/// Block 0 of a writer core: what base the core writes for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// The first writer's core, whose key is the base key, with the base's
    /// indexers (sorted by writer core key, distinct, at least one).
    First {
        /// The indexers' signing keys (ed25519), sorted by the writer core
        /// key each gives ([`writer_key_of`]). They sign the views'
        /// checkpoints, so every peer derives the views' manifests from
        /// block 0 alone.
        indexers: Vec<PublicKey>,
    },
    /// Another writer's core, writing for the base `base`.
    Writer {
        /// The base key.
        base: CoreKey,
    },
}

impl Header {
    /// The header's block encoding.
    pub fn encode(&self) -> Vec<u8> {
        let (base, indexers, indexer_signers) = match self {
            Header::First { indexers } => (
                Vec::new(),
                indexers
                    .iter()
                    .map(|k| writer_key_of(k).0.to_vec())
                    .collect(),
                indexers.iter().map(|k| k.0.to_vec()).collect(),
            ),
            Header::Writer { base } => (base.0.to_vec(), Vec::new(), Vec::new()),
        };
        RawHeader {
            protocol: PROTOCOL.to_string(),
            version: VERSION,
            base,
            indexers,
            indexer_signers,
        }
        .encode_to_vec()
    }

    /// The indexers' writer core keys of a first writer's header, in
    /// order (empty for another writer's).
    pub fn indexer_keys(&self) -> Vec<CoreKey> {
        match self {
            Header::First { indexers } => indexers.iter().map(writer_key_of).collect(),
            Header::Writer { .. } => Vec::new(),
        }
    }

    /// Decodes and validates block 0 of a writer core.
    pub fn decode(bytes: &[u8]) -> Result<Header> {
        let raw =
            RawHeader::decode(bytes).map_err(|_| Error::NotABase("block 0 does not decode"))?;
        if raw.protocol != PROTOCOL {
            return Err(Error::NotABase("block 0 is not an autobase header"));
        }
        if raw.version != VERSION {
            return Err(Error::UnsupportedVersion(raw.version));
        }
        let key = |b: &[u8]| fixed(b, "header key is not 32 bytes").map(CoreKey);
        match (raw.base.is_empty(), raw.indexers.is_empty()) {
            (true, false) => {
                if raw.indexers.len() > MAX_INDEXERS {
                    return Err(Error::Malformed("more indexers than MAX_INDEXERS"));
                }
                let keys = raw
                    .indexers
                    .iter()
                    .map(|b| key(b))
                    .collect::<Result<Vec<_>>>()?;
                if keys.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
                    return Err(Error::Malformed("indexers are not sorted and distinct"));
                }
                let indexers = raw
                    .indexer_signers
                    .iter()
                    .map(|b| key(b).map(|k| PublicKey(k.0)))
                    .collect::<Result<Vec<_>>>()?;
                if !indexers.iter().map(writer_key_of).eq(keys.iter().copied()) {
                    return Err(Error::Malformed(
                        "the indexers' signing keys do not give their writer keys",
                    ));
                }
                Ok(Header::First { indexers })
            }
            (false, true) if raw.indexer_signers.is_empty() => Ok(Header::Writer {
                base: key(&raw.base)?,
            }),
            _ => Err(Error::Malformed("a header names either a base or indexers")),
        }
    }
}

/// The prost form of `Head`.
#[derive(Clone, PartialEq, prost::Message)]
struct RawHead {
    #[prost(bytes = "vec", tag = "1")]
    writer: Vec<u8>,
    #[prost(uint64, tag = "2")]
    length: u64,
}

/// A node of another writer, named by its position in that writer's log:
/// the `length`-th node (block `length` of the core, after its header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Head {
    /// The writer's core key.
    pub writer: CoreKey,
    /// How many of the writer's nodes precede and include it (at least 1).
    pub length: u64,
}

/// An indexer's signature over the state of one signed core (a view's or
/// the base's system core), carried in the indexer's node: the core `view`
/// at `length` entries (its roots as this peer's own copy has them),
/// signed by the node's writer. The state
/// signed is the core's signable hash (core key, roots hash, length, fork
/// 0): a view's signed cores never fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViewSignature {
    /// The signed core's key (a view's, or the system core's).
    pub view: CoreKey,
    /// The view length signed (at least 1).
    pub length: u64,
    /// The ed25519 signature of the node's writer.
    pub signature: Signature,
}

/// What a batch's causal past gives it, as the linearizer derives it and
/// as the writer states it on the node that ends the batch: its Lamport
/// depth, the highest indexer round in its past (itself included) and
/// which indexers have a batch of that round there. Every peer that holds
/// the batch's past derives the same facts and refuses a writer that
/// states others (a forged clock); a peer that fast-forwarded past the
/// batch (it is inside a quorum-signed indexed prefix) takes them as
/// stated, so it orders later batches as a peer holding the whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Causal {
    /// 1 + the largest depth among the batch's dependencies (at least 1).
    pub depth: u64,
    /// The indexer set the round facts count in: 0 for the base's first
    /// indexers, one more after each change of them (see `linearizer.rs`,
    /// "Changing the indexers"). At least every dependency's.
    pub epoch: u64,
    /// The highest round of an indexer batch in the batch's causal past,
    /// itself included (`None`: that past holds no indexer batch).
    pub round: Option<u64>,
    /// Bit `i` set: the `i`-th indexer (in key order) has a batch of round
    /// `round` in the past. Empty exactly when `round` is `None`.
    pub round_set: u64,
}

impl Causal {
    /// Checks the rules stated facts keep: depth at least 1, a round set
    /// exactly when a round is.
    pub fn validate(&self) -> Result<()> {
        if self.depth == 0 {
            return Err(Error::Malformed("causal depth is 0"));
        }
        if self.round.is_some() != (self.round_set != 0) {
            return Err(Error::Malformed(
                "causal round and round set disagree (one is empty)",
            ));
        }
        Ok(())
    }
}

/// One block of a writer core, validated: heads sorted by writer with at
/// most one per writer and lengths of at least 1, a batch no larger than
/// [`MAX_BATCH`], a checkpoint sorted by view with at most one signature per
/// view, and [`Causal`] facts on the node that ends a batch and on no
/// other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The application's value; `None` for an ack.
    pub value: Option<Vec<u8>>,
    /// The DAG heads the writer had seen (other writers only). Only the
    /// first node of a batch carries heads.
    pub heads: Vec<Head>,
    /// How many nodes of the same batch follow this one (0: it ends here).
    pub batch_remaining: u32,
    /// The writer's signatures over views' states (an indexer's
    /// checkpoint); empty for most nodes. It plays no part in the order.
    pub checkpoint: Vec<ViewSignature>,
    /// On the node that ends a batch (`batch_remaining` 0) only: the
    /// batch's facts as its writer derived them (see [`Causal`]).
    pub causal: Option<Causal>,
}

impl Node {
    /// A node holding `value`, with the writer's `heads` (sorted and
    /// deduplicated here, keeping the longest length per writer), no
    /// checkpoint and no causal facts (a node that ends a batch needs them:
    /// [`Node::with_causal`]).
    pub fn new(value: Option<Vec<u8>>, heads: Vec<Head>, batch_remaining: u32) -> Self {
        Node {
            value,
            heads: canonical_heads(heads),
            batch_remaining,
            checkpoint: Vec::new(),
            causal: None,
        }
    }

    /// The node with the batch's causal facts (for the node that ends a
    /// batch: [`crate::Linearizer::causal_for`] derives them).
    pub fn with_causal(mut self, causal: Causal) -> Self {
        self.causal = Some(causal);
        self
    }

    /// The node with `checkpoint` (sorted by view here, one per view,
    /// keeping the longest length).
    pub fn with_checkpoint(mut self, mut checkpoint: Vec<ViewSignature>) -> Self {
        checkpoint.sort_unstable_by(|a, b| a.view.cmp(&b.view).then(b.length.cmp(&a.length)));
        checkpoint.dedup_by_key(|s| s.view);
        self.checkpoint = checkpoint;
        self
    }

    /// The node's block encoding.
    pub fn encode(&self) -> Vec<u8> {
        RawNode {
            value: self.value.clone(),
            heads: self
                .heads
                .iter()
                .map(|h| RawHead {
                    writer: h.writer.0.to_vec(),
                    length: h.length,
                })
                .collect(),
            batch_remaining: self.batch_remaining,
            checkpoint: self
                .checkpoint
                .iter()
                .map(|s| RawViewSignature {
                    view: s.view.0.to_vec(),
                    length: s.length,
                    signature: s.signature.0.to_vec(),
                })
                .collect(),
            causal: self.causal.map(RawCausal::from),
        }
        .encode_to_vec()
    }

    /// Decodes and validates a block of a writer core.
    pub fn decode(bytes: &[u8]) -> Result<Node> {
        let raw = RawNode::decode(bytes).map_err(|_| Error::Malformed("node does not decode"))?;
        if raw.heads.len() > MAX_HEADS {
            return Err(Error::Malformed("more heads than MAX_HEADS"));
        }
        let heads = raw
            .heads
            .into_iter()
            .map(|h| {
                Ok(Head {
                    writer: CoreKey(fixed(&h.writer, "head writer key is not 32 bytes")?),
                    length: h.length,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if raw.checkpoint.len() > MAX_CHECKPOINT {
            return Err(Error::Malformed("more view signatures than MAX_CHECKPOINT"));
        }
        let checkpoint = raw
            .checkpoint
            .into_iter()
            .map(|s| {
                Ok(ViewSignature {
                    view: CoreKey(fixed(&s.view, "checkpoint view key is not 32 bytes")?),
                    length: s.length,
                    signature: Signature(fixed(
                        &s.signature,
                        "checkpoint signature is not 64 bytes",
                    )?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let node = Node {
            value: raw.value,
            heads,
            batch_remaining: raw.batch_remaining,
            checkpoint,
            causal: raw.causal.map(Causal::from),
        };
        node.validate()?;
        Ok(node)
    }

    /// Checks the rules every node keeps: heads sorted by writer, one per
    /// writer, each of length at least 1, at most [`MAX_HEADS`] of them; a
    /// batch of at most [`MAX_BATCH`] nodes; valid [`Causal`] facts on the
    /// node that ends a batch and none on another.
    pub fn validate(&self) -> Result<()> {
        if self.batch_remaining >= MAX_BATCH {
            return Err(Error::Malformed("batch larger than MAX_BATCH"));
        }
        if self.heads.len() > MAX_HEADS {
            return Err(Error::Malformed("more heads than MAX_HEADS"));
        }
        if self.heads.iter().any(|h| h.length == 0) {
            return Err(Error::Malformed("head length is 0"));
        }
        if !strictly_sorted(&self.heads, |h| h.writer) {
            return Err(Error::Malformed("heads are not sorted by writer"));
        }
        if self.checkpoint.len() > MAX_CHECKPOINT {
            return Err(Error::Malformed("more view signatures than MAX_CHECKPOINT"));
        }
        if self.checkpoint.iter().any(|s| s.length == 0) {
            return Err(Error::Malformed("checkpoint length is 0"));
        }
        if !strictly_sorted(&self.checkpoint, |s| s.view) {
            return Err(Error::Malformed("checkpoint is not sorted by view"));
        }
        match (&self.causal, self.batch_remaining) {
            (None, 0) => Err(Error::Malformed(
                "the node ending a batch has no causal facts",
            )),
            (Some(_), 1..) => Err(Error::Malformed("causal facts on a node inside a batch")),
            (Some(c), _) => c.validate(),
            (None, _) => Ok(()),
        }
    }
}

impl From<Causal> for RawCausal {
    fn from(c: Causal) -> Self {
        RawCausal {
            depth: c.depth,
            round: c.round,
            round_set: c.round_set,
            epoch: c.epoch,
        }
    }
}

impl From<RawCausal> for Causal {
    fn from(c: RawCausal) -> Self {
        Causal {
            depth: c.depth,
            epoch: c.epoch,
            round: c.round,
            round_set: c.round_set,
        }
    }
}

/// `bytes` as an array of exactly `N`, or `Malformed(why)`.
pub(crate) fn fixed<const N: usize>(bytes: &[u8], why: &'static str) -> Result<[u8; N]> {
    <[u8; N]>::try_from(bytes).map_err(|_| Error::Malformed(why))
}

/// Whether `items` are sorted by `key` with no key twice.
fn strictly_sorted<T>(items: &[T], key: impl Fn(&T) -> CoreKey) -> bool {
    items
        .windows(2)
        .all(|w| matches!(w, [a, b] if key(a) < key(b)))
}

/// Sorts heads by writer and keeps the longest length per writer.
fn canonical_heads(mut heads: Vec<Head>) -> Vec<Head> {
    heads.sort_unstable_by(|a, b| a.writer.cmp(&b.writer).then(b.length.cmp(&a.length)));
    heads.dedup_by_key(|h| h.writer);
    heads
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> CoreKey {
        CoreKey([b; 32])
    }

    #[test]
    fn snapshot() {
        let node = Node::new(
            Some(b"hi".to_vec()),
            vec![Head {
                writer: key(2),
                length: 5,
            }],
            1,
        );
        let hex: String = node.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "0a0268691224".to_string() + "0a20" + &"02".repeat(32) + "1005" + "1801"
        );
        assert_eq!(Node::decode(&node.encode()).ok(), Some(node));
        // An ack inside a batch, with no heads: only its batch place.
        assert_eq!(Node::new(None, vec![], 2).encode(), [0x18, 0x02]);
        // An ack ending its batch, carrying an indexer's checkpoint (field
        // 4, one signature) and its causal facts (field 5: depth 7, round
        // 2, round set 0b101 as fixed64).
        let ack = Node::new(None, vec![], 0)
            .with_checkpoint(vec![ViewSignature {
                view: key(7),
                length: 3,
                signature: Signature([9; 64]),
            }])
            .with_causal(Causal {
                depth: 7,
                epoch: 0,
                round: Some(2),
                round_set: 0b101,
            });
        let hex: String = ack.encode().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "2266".to_string()
                + "0a20"
                + &"07".repeat(32)
                + "1003"
                + "1a40"
                + &"09".repeat(64)
                + "2a0d"
                + "0807"
                + "1002"
                + "190500000000000000"
        );
        assert_eq!(Node::decode(&ack.encode()).ok(), Some(ack));
    }

    #[test]
    fn header_snapshot_and_round_trip() {
        let signer = PublicKey([5; 32]);
        let first = Header::First {
            indexers: vec![signer],
        };
        let hex: String = first.encode().iter().map(|b| format!("{b:02x}")).collect();
        let writer = writer_key_of(&signer);
        let writer_hex: String = writer.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "0a0e".to_string()
                + &"hyper-autobase"
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
                + "1001"
                + "2220"
                + &writer_hex
                + "2a20"
                + &"05".repeat(32)
        );
        assert_eq!(Header::decode(&first.encode()).ok(), Some(first.clone()));
        assert_eq!(first.indexer_keys(), vec![writer]);
        let other = Header::Writer { base: key(3) };
        assert_eq!(Header::decode(&other.encode()).ok(), Some(other));
    }

    #[test]
    fn refuses_headers_whose_signers_do_not_give_the_writer_keys() {
        let raw = |indexers: Vec<Vec<u8>>, indexer_signers: Vec<Vec<u8>>| RawHeader {
            protocol: PROTOCOL.to_string(),
            version: VERSION,
            base: Vec::new(),
            indexers,
            indexer_signers,
        };
        let signer = PublicKey([5; 32]);
        let writer = writer_key_of(&signer).0.to_vec();
        let cases = [
            // A signer that is not the writer's.
            raw(vec![writer.clone()], vec![vec![6; 32]]),
            // Writer keys without signers (a header before checkpoints).
            raw(vec![writer.clone()], vec![]),
            // A signer too many.
            raw(vec![writer], vec![vec![5; 32], vec![6; 32]]),
        ];
        for case in cases {
            match Header::decode(&case.encode_to_vec()) {
                Err(Error::Malformed(m)) => assert!(m.contains("signing keys"), "{m}"),
                other => panic!("expected Malformed, got {other:?}"),
            }
        }
    }

    #[test]
    fn new_sorts_and_dedups_heads() {
        let n = Node::new(
            None,
            vec![
                Head {
                    writer: key(3),
                    length: 1,
                },
                Head {
                    writer: key(1),
                    length: 2,
                },
                Head {
                    writer: key(3),
                    length: 7,
                },
            ],
            0,
        );
        assert_eq!(
            n.heads,
            vec![
                Head {
                    writer: key(1),
                    length: 2
                },
                Head {
                    writer: key(3),
                    length: 7
                }
            ]
        );
    }

    #[test]
    fn refuses_bad_nodes() {
        let ok = Some(RawCausal {
            depth: 1,
            round: None,
            round_set: 0,
            epoch: 0,
        });
        let raw = |heads: Vec<RawHead>, batch_remaining| {
            RawNode {
                value: None,
                heads,
                batch_remaining,
                checkpoint: Vec::new(),
                causal: ok.clone(),
            }
            .encode_to_vec()
        };
        let signed = |checkpoint: Vec<RawViewSignature>| {
            RawNode {
                value: None,
                heads: Vec::new(),
                batch_remaining: 0,
                checkpoint,
                causal: None,
            }
            .encode_to_vec()
        };
        let causal = |batch_remaining, c: RawCausal| {
            RawNode {
                value: None,
                heads: Vec::new(),
                batch_remaining,
                checkpoint: Vec::new(),
                causal: Some(c),
            }
            .encode_to_vec()
        };
        let sig = |v: u8, length, sig_len| RawViewSignature {
            view: vec![v; 32],
            length,
            signature: vec![1; sig_len],
        };
        let head = |w: u8, length| RawHead {
            writer: vec![w; 32],
            length,
        };
        let cases = [
            (raw(vec![], MAX_BATCH), "batch larger than MAX_BATCH"),
            (
                raw(
                    vec![RawHead {
                        writer: vec![1; 31],
                        length: 1,
                    }],
                    0,
                ),
                "head writer key is not 32 bytes",
            ),
            (raw(vec![head(1, 0)], 0), "head length is 0"),
            (
                raw(vec![head(2, 1), head(1, 1)], 0),
                "heads are not sorted by writer",
            ),
            (
                raw(vec![head(1, 1), head(1, 2)], 0),
                "heads are not sorted by writer",
            ),
            (vec![0xff, 0xff], "node does not decode"),
            (
                signed(vec![sig(1, 1, 63)]),
                "checkpoint signature is not 64 bytes",
            ),
            (
                signed(vec![RawViewSignature {
                    view: vec![1; 33],
                    length: 1,
                    signature: vec![1; 64],
                }]),
                "checkpoint view key is not 32 bytes",
            ),
            (signed(vec![sig(1, 0, 64)]), "checkpoint length is 0"),
            (
                signed(vec![]),
                "the node ending a batch has no causal facts",
            ),
            (
                causal(
                    1,
                    RawCausal {
                        depth: 1,
                        round: None,
                        round_set: 0,
                        epoch: 0,
                    },
                ),
                "causal facts on a node inside a batch",
            ),
            (
                causal(
                    0,
                    RawCausal {
                        depth: 0,
                        round: None,
                        round_set: 0,
                        epoch: 0,
                    },
                ),
                "causal depth is 0",
            ),
            (
                causal(
                    0,
                    RawCausal {
                        depth: 1,
                        round: Some(0),
                        round_set: 0,
                        epoch: 0,
                    },
                ),
                "causal round and round set disagree (one is empty)",
            ),
            (
                causal(
                    0,
                    RawCausal {
                        depth: 1,
                        round: None,
                        round_set: 1,
                        epoch: 0,
                    },
                ),
                "causal round and round set disagree (one is empty)",
            ),
            (
                signed(vec![sig(2, 1, 64), sig(1, 1, 64)]),
                "checkpoint is not sorted by view",
            ),
            (
                signed(vec![sig(1, 1, 64); MAX_CHECKPOINT + 1]),
                "more view signatures than MAX_CHECKPOINT",
            ),
        ];
        for (bytes, why) in cases {
            match Node::decode(&bytes) {
                Err(Error::Malformed(m)) => assert_eq!(m, why),
                other => panic!("expected Malformed({why}), got {other:?}"),
            }
        }
    }

    fn arb_node() -> impl Strategy<Value = Node> {
        (
            prop::option::of(prop::collection::vec(any::<u8>(), 0..40)),
            prop::collection::vec((any::<u8>(), 1u64..u64::MAX), 0..6),
            0..MAX_BATCH,
            prop::collection::vec((any::<u8>(), 1u64..u64::MAX, any::<u8>()), 0..3),
            (
                1u64..u64::MAX,
                prop::option::of(any::<u64>()),
                1u64..u64::MAX,
            ),
        )
            .prop_map(|(value, heads, batch, checkpoint, (depth, round, set))| {
                let heads = heads
                    .into_iter()
                    .map(|(w, length)| Head {
                        writer: key(w),
                        length,
                    })
                    .collect();
                let checkpoint = checkpoint
                    .into_iter()
                    .map(|(v, length, s)| ViewSignature {
                        view: key(v),
                        length,
                        signature: Signature([s; 64]),
                    })
                    .collect();
                let node = Node::new(value, heads, batch).with_checkpoint(checkpoint);
                if batch == 0 {
                    node.with_causal(Causal {
                        depth,
                        epoch: 0,
                        round,
                        round_set: if round.is_some() { set } else { 0 },
                    })
                } else {
                    node
                }
            })
    }

    proptest! {
        #[test]
        fn round_trip(node in arb_node()) {
            prop_assert_eq!(Node::decode(&node.encode()).ok(), Some(node));
        }

        #[test]
        fn random_and_mutated_bytes_never_panic(node in arb_node(), flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8), junk in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = Node::decode(&junk);
            let mut bytes = node.encode();
            for (at, b) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    if let Some(x) = bytes.get_mut(i) { *x ^= b; }
                }
            }
            if let Ok(n) = Node::decode(&bytes) {
                // Whatever decodes is canonical: it encodes back to itself.
                prop_assert_eq!(Node::decode(&n.encode()).ok(), Some(n));
            }
        }
    }
}
