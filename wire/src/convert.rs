//! Between wire messages and `hyper-core` proofs and requests. Wire to core
//! checks every length (hashes 32 bytes, signatures 64, signer positions
//! below 256) and the manifest encoding; what it returns still has to pass
//! the core's `Verifier`.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use hyper_core::{
    BlockProof, Hash, HashProof, Manifest, Node as CoreNode, NodeRequest as CoreNodeRequest, Proof,
    ProofRequest, SeekProof, Signature, SignerSignature as CoreSignature, UpgradeProof,
    UpgradeRequest as CoreUpgradeRequest, flat,
};

use crate::error::{Error, Result};
use crate::messages::{
    self as wire, Data, NodeRequest, Request, SeekRequest, SignerSignature, UpgradeRequest,
};

fn node_to_wire(n: &CoreNode) -> wire::Node {
    wire::Node {
        index: n.index,
        size: n.size,
        hash: n.hash.0.to_vec(),
    }
}

fn node_from_wire(n: &wire::Node) -> Result<CoreNode> {
    Ok(CoreNode {
        index: n.index,
        size: n.size,
        hash: Hash::from_slice(&n.hash).ok_or(Error::Malformed("node hash is not 32 bytes"))?,
    })
}

fn required_node(node: Option<&wire::Node>, missing: &'static str) -> Result<CoreNode> {
    node_from_wire(node.ok_or(Error::Malformed(missing))?)
}

fn nodes_from_wire(nodes: &[wire::Node]) -> Result<Vec<CoreNode>> {
    nodes.iter().map(node_from_wire).collect()
}

fn nodes_to_wire(nodes: &[CoreNode]) -> Vec<wire::Node> {
    nodes.iter().map(node_to_wire).collect()
}

/// A sibling path on the wire: the hashes concatenated and the sizes
/// packed. Each node's index is implied by its position (the sibling of the
/// node below), so it is not sent.
fn path_to_wire(nodes: &[CoreNode]) -> (Vec<u8>, Vec<u64>) {
    let mut hashes = Vec::with_capacity(nodes.len() * 32);
    for n in nodes {
        hashes.extend_from_slice(&n.hash.0);
    }
    (hashes, nodes.iter().map(|n| n.size).collect())
}

/// A sibling path from the wire, starting above the node at `start`, its
/// indexes filled in from the positions.
fn path_from_wire(start: u64, hashes: &[u8], sizes: &[u64]) -> Result<Vec<CoreNode>> {
    if hashes.len() != sizes.len().saturating_mul(32) {
        return Err(Error::Malformed("path hashes and sizes do not match"));
    }
    let mut cur = start;
    hashes
        .chunks_exact(32)
        .zip(sizes)
        .map(|(hash, &size)| {
            let node = CoreNode {
                index: flat::sibling(cur),
                size,
                hash: Hash::from_slice(hash)
                    .ok_or(Error::Malformed("node hash is not 32 bytes"))?,
            };
            cur = flat::parent(cur);
            Ok(node)
        })
        .collect()
}

/// The `Data` message carrying `proof` as the answer to request `request`.
/// The proof is taken by value so the block's bytes move, not copy.
pub fn data_from_proof(request: u64, proof: Proof) -> Data {
    let manifest = proof
        .manifest
        .as_ref()
        .map(Manifest::encode)
        .unwrap_or_default();
    Data {
        request,
        fork: proof.fork,
        manifest,
        block: proof.block.map(|b| {
            let (path_hashes, path_sizes) = path_to_wire(&b.nodes);
            wire::BlockProof {
                index: b.index,
                value: b.value,
                path_hashes,
                path_sizes,
            }
        }),
        hash: proof.hash.as_ref().map(|h| {
            let (path_hashes, path_sizes) = path_to_wire(&h.nodes);
            wire::HashProof {
                node: Some(node_to_wire(&h.node)),
                path_hashes,
                path_sizes,
            }
        }),
        seek: proof.seek.as_ref().map(|s| {
            let (path_hashes, path_sizes) = path_to_wire(&s.nodes);
            wire::SeekProof {
                bytes: s.bytes,
                leaf: Some(node_to_wire(&s.leaf)),
                path_hashes,
                path_sizes,
            }
        }),
        upgrade: proof.upgrade.as_ref().map(|u| wire::UpgradeProof {
            start: u.start,
            length: u.length,
            roots: nodes_to_wire(&u.roots),
            nodes: nodes_to_wire(&u.nodes),
            signatures: u
                .signatures
                .iter()
                .map(|s| SignerSignature {
                    signer: u32::from(s.signer),
                    signature: s.signature.0.to_vec(),
                })
                .collect(),
        }),
    }
}

/// The proof a `Data` message carries, every field length checked. The
/// message is taken by value so the block's bytes move, not copy.
pub fn proof_from_data(data: Data) -> Result<Proof> {
    let manifest = if data.manifest.is_empty() {
        None
    } else {
        Some(Manifest::decode(&data.manifest).map_err(Error::Manifest)?)
    };
    let block = data
        .block
        .map(|b| -> Result<BlockProof> {
            Ok(BlockProof {
                index: b.index,
                nodes: path_from_wire(flat::leaf(b.index), &b.path_hashes, &b.path_sizes)?,
                value: b.value,
            })
        })
        .transpose()?;
    let hash = data
        .hash
        .as_ref()
        .map(|h| -> Result<HashProof> {
            let node = required_node(h.node.as_ref(), "hash proof without a node")?;
            Ok(HashProof {
                node,
                nodes: path_from_wire(node.index, &h.path_hashes, &h.path_sizes)?,
            })
        })
        .transpose()?;
    let seek = data
        .seek
        .as_ref()
        .map(|s| -> Result<SeekProof> {
            let leaf = required_node(s.leaf.as_ref(), "seek proof without a leaf")?;
            Ok(SeekProof {
                bytes: s.bytes,
                leaf,
                nodes: path_from_wire(leaf.index, &s.path_hashes, &s.path_sizes)?,
            })
        })
        .transpose()?;
    let upgrade = match &data.upgrade {
        Some(u) => Some(UpgradeProof {
            start: u.start,
            length: u.length,
            roots: nodes_from_wire(&u.roots)?,
            nodes: nodes_from_wire(&u.nodes)?,
            signatures: u
                .signatures
                .iter()
                .map(|s| {
                    Ok(CoreSignature {
                        signer: u8::try_from(s.signer)
                            .map_err(|_| Error::Malformed("signer position over 255"))?,
                        signature: Signature::from_slice(&s.signature)
                            .ok_or(Error::Malformed("signature is not 64 bytes"))?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        }),
        None => None,
    };
    Ok(Proof {
        fork: data.fork,
        manifest,
        block,
        hash,
        seek,
        upgrade,
    })
}

/// The `Request` message for a core proof request, with id `id`, from a
/// requester on fork `fork`.
pub fn request_to_wire(id: u64, fork: u64, request: &ProofRequest) -> Request {
    let node = |n: &CoreNodeRequest| NodeRequest {
        index: n.index,
        nodes: n.nodes,
    };
    Request {
        id,
        fork,
        block: request.block.as_ref().map(node),
        hash: request.hash.as_ref().map(node),
        seek: request.seek.map(|bytes| SeekRequest { bytes }),
        upgrade: request.upgrade.map(|u| UpgradeRequest { start: u.start }),
        manifest: request.manifest,
    }
}

/// The core proof request a `Request` message asks for.
pub fn request_from_wire(request: &Request) -> ProofRequest {
    let node = |n: &NodeRequest| CoreNodeRequest {
        index: n.index,
        nodes: n.nodes,
    };
    ProofRequest {
        block: request.block.as_ref().map(node),
        hash: request.hash.as_ref().map(node),
        seek: request.seek.as_ref().map(|s| s.bytes),
        upgrade: request.upgrade.as_ref().map(|u| CoreUpgradeRequest {
            start: u.start,
            fork: request.fork,
        }),
        manifest: request.manifest,
    }
}
