//! The node format of `autobase/proto/autobase.proto`: prost messages and
//! the validated [`Node`] every other module works with.

#![deny(clippy::indexing_slicing)]

use hyper_core::CoreKey;
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
}

/// The `protocol` of every writer core's header.
pub const PROTOCOL: &str = "hyper-autobase";

/// The block format version this build writes and reads.
pub const VERSION: u32 = 1;

/// The most indexers a base may have.
pub const MAX_INDEXERS: usize = 64;

/// Block 0 of a writer core: what base the core writes for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// The first writer's core, whose key is the base key, with the base's
    /// indexers (sorted, distinct, at least one).
    First {
        /// The indexers' writer core keys.
        indexers: Vec<CoreKey>,
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
        let (base, indexers) = match self {
            Header::First { indexers } => {
                (Vec::new(), indexers.iter().map(|k| k.0.to_vec()).collect())
            }
            Header::Writer { base } => (base.0.to_vec(), Vec::new()),
        };
        RawHeader {
            protocol: PROTOCOL.to_string(),
            version: VERSION,
            base,
            indexers,
        }
        .encode_to_vec()
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
        let key = |b: &[u8]| {
            <[u8; 32]>::try_from(b)
                .map(CoreKey)
                .map_err(|_| Error::Malformed("header key is not 32 bytes"))
        };
        match (raw.base.is_empty(), raw.indexers.is_empty()) {
            (true, false) => {
                if raw.indexers.len() > MAX_INDEXERS {
                    return Err(Error::Malformed("more indexers than MAX_INDEXERS"));
                }
                let indexers = raw
                    .indexers
                    .iter()
                    .map(|b| key(b))
                    .collect::<Result<Vec<_>>>()?;
                if indexers.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
                    return Err(Error::Malformed("indexers are not sorted and distinct"));
                }
                Ok(Header::First { indexers })
            }
            (false, true) => Ok(Header::Writer {
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

/// One block of a writer core, validated: heads sorted by writer with at
/// most one per writer and lengths of at least 1, a batch no larger than
/// [`MAX_BATCH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The application's value; `None` for an ack.
    pub value: Option<Vec<u8>>,
    /// The DAG heads the writer had seen (other writers only). Only the
    /// first node of a batch carries heads.
    pub heads: Vec<Head>,
    /// How many nodes of the same batch follow this one (0: it ends here).
    pub batch_remaining: u32,
}

impl Node {
    /// A node holding `value`, with the writer's `heads` (sorted and
    /// deduplicated here, keeping the longest length per writer).
    pub fn new(value: Option<Vec<u8>>, heads: Vec<Head>, batch_remaining: u32) -> Self {
        Node {
            value,
            heads: canonical_heads(heads),
            batch_remaining,
        }
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
                let writer = <[u8; 32]>::try_from(h.writer.as_slice())
                    .map_err(|_| Error::Malformed("head writer key is not 32 bytes"))?;
                Ok(Head {
                    writer: CoreKey(writer),
                    length: h.length,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let node = Node {
            value: raw.value,
            heads,
            batch_remaining: raw.batch_remaining,
        };
        node.validate()?;
        Ok(node)
    }

    /// Checks the rules every node keeps: heads sorted by writer, one per
    /// writer, each of length at least 1, at most [`MAX_HEADS`] of them; a
    /// batch of at most [`MAX_BATCH`] nodes.
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
        if self
            .heads
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.writer >= b.writer))
        {
            return Err(Error::Malformed("heads are not sorted by writer"));
        }
        Ok(())
    }
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
        // An ack with no heads is the empty message.
        assert!(Node::new(None, vec![], 0).encode().is_empty());
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
        let raw = |heads: Vec<RawHead>, batch_remaining| {
            RawNode {
                value: None,
                heads,
                batch_remaining,
            }
            .encode_to_vec()
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
        )
            .prop_map(|(value, heads, batch)| {
                let heads = heads
                    .into_iter()
                    .map(|(w, length)| Head {
                        writer: key(w),
                        length,
                    })
                    .collect();
                Node::new(value, heads, batch)
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
