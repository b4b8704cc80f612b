//! The codec three ways: hex snapshots worked out by hand from the protobuf
//! rules, property round-trips, and a bounded fuzz harness.

mod common;

use hyper_core::{
    BlockProof, Hash, HashProof, KeyPair, Manifest, Node, NodeRequest, Proof, ProofRequest,
    SeekProof, Signature, SignerSignature, UpgradeProof, UpgradeRequest,
};
use hyper_wire::messages::{Body, Data, Message, Sync, Want};
use hyper_wire::{
    DEFAULT_MAX_FRAME, Error, FrameDecoder, data_from_proof, encode_frame, proof_from_data,
    request_from_wire, request_to_wire,
};
use proptest::prelude::*;
use prost::Message as _;
use rand::SeedableRng;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn hex_snapshots_match_the_protobuf_rules() {
    // channel = 1 (field 1 varint: 08 01); want (field 9, length-delimited:
    // tag 0x4a, 4 bytes: start 08 02, length 10 03). Frame: length 8 first.
    let want = Message {
        channel: 1,
        body: Some(Body::Want(Want {
            start: 2,
            length: 3,
        })),
    };
    assert_eq!(hex(&encode_frame(&want)), "0808014a0408021003");
    // channel 0 is omitted; sync (field 4: tag 0x22) with fork 1, length 5,
    // can_upgrade true: 08 01 10 05 20 01.
    let sync = Message {
        channel: 0,
        body: Some(Body::Sync(Sync {
            fork: 1,
            length: 5,
            can_upgrade: true,
            ..Default::default()
        })),
    };
    assert_eq!(hex(&sync.encode_to_vec()), "2206080110052001");
    // data (field 7: tag 0x3a): request 9 (08 09), block (field 3: 1a) with
    // index 1 (08 01) and value "hi" (12 02 68 69).
    let data = Message {
        channel: 2,
        body: Some(Body::Data(Data {
            request: 9,
            block: Some(hyper_wire::messages::BlockProof {
                index: 1,
                value: b"hi".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    };
    assert_eq!(
        hex(&data.encode_to_vec()),
        "08023a0a08091a0608011202 6869".replace(' ', "")
    );
    // A block proof with a one-node sibling path: hashes (field 3: 1a 20,
    // 32 bytes) and packed sizes (field 4: 22 01, then size 5: 05).
    let block = hyper_wire::messages::BlockProof {
        index: 1,
        value: b"hi".to_vec(),
        path_hashes: vec![0x11; 32],
        path_sizes: vec![5],
    };
    assert_eq!(
        hex(&block.encode_to_vec()),
        format!("080112026869 1a20{} 22 01 05", "11".repeat(32)).replace(' ', "")
    );
}

fn node() -> impl Strategy<Value = Node> {
    (any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(index, size, h)| Node {
        index,
        size,
        hash: Hash(h),
    })
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(node(), 0..5)
}

/// A sibling path above `start`: indexes in their implied places.
fn path_above(start: u64, nodes: Vec<Node>) -> Vec<Node> {
    let mut cur = start;
    nodes
        .into_iter()
        .map(|n| {
            let placed = Node {
                index: hyper_core::flat::sibling(cur),
                ..n
            };
            cur = hyper_core::flat::parent(cur);
            placed
        })
        .collect()
}

fn proof() -> impl Strategy<Value = Proof> {
    let block = prop::option::of(
        (
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..64),
            nodes(),
        )
            .prop_map(|(index, value, nodes)| BlockProof {
                index,
                value,
                nodes: path_above(hyper_core::flat::leaf(index), nodes),
            }),
    );
    let hash = prop::option::of((node(), nodes()).prop_map(|(node, nodes)| HashProof {
        node,
        nodes: path_above(node.index, nodes),
    }));
    let seek = prop::option::of((any::<u64>(), node(), nodes()).prop_map(
        |(bytes, leaf, nodes)| SeekProof {
            bytes,
            leaf,
            nodes: path_above(leaf.index, nodes),
        },
    ));
    let sig = (any::<u8>(), prop::collection::vec(any::<u8>(), 64)).prop_map(|(signer, s)| {
        SignerSignature {
            signer,
            signature: Signature::from_slice(&s).expect("64 bytes"),
        }
    });
    let upgrade = prop::option::of(
        (
            any::<u64>(),
            any::<u64>(),
            nodes(),
            nodes(),
            prop::collection::vec(sig, 0..3),
        )
            .prop_map(|(start, length, roots, nodes, signatures)| UpgradeProof {
                start,
                length,
                roots,
                nodes,
                signatures,
            }),
    );
    (any::<u64>(), any::<bool>(), block, hash, seek, upgrade).prop_map(
        |(fork, with_manifest, block, hash, seek, upgrade)| Proof {
            fork,
            manifest: with_manifest
                .then(|| Manifest::single(KeyPair::from_seed([4; 32]).public_key())),
            block,
            hash,
            seek,
            upgrade,
        },
    )
}

proptest! {
    #[test]
    fn proofs_round_trip_through_the_wire(p in proof(), request in any::<u64>(), channel in any::<u32>()) {
        let message = Message { channel, body: Some(Body::Data(data_from_proof(request, p.clone()))) };
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        decoder.push(&encode_frame(&message));
        let back = decoder.next_message().expect("decodes").expect("complete");
        prop_assert_eq!(&back, &message);
        let Some(Body::Data(data)) = back.body else { panic!("data") };
        prop_assert_eq!(data.request, request);
        prop_assert_eq!(proof_from_data(data).expect("valid"), p);
    }

    #[test]
    fn requests_round_trip(id in any::<u64>(), fork in any::<u64>(), index in any::<u64>(), nodes in any::<u64>(),
                           seek in prop::option::of(any::<u64>()), start in prop::option::of(any::<u64>()), manifest in any::<bool>()) {
        let request = ProofRequest {
            block: Some(NodeRequest { index, nodes }),
            hash: None,
            seek,
            upgrade: start.map(|start| UpgradeRequest { start, fork }),
            manifest,
        };
        let wire = request_to_wire(id, fork, &request);
        let decoded = hyper_wire::messages::Request::decode(wire.encode_to_vec().as_slice()).expect("decodes");
        prop_assert_eq!(decoded.id, id);
        prop_assert_eq!(request_from_wire(&decoded), request);
    }

    #[test]
    fn frames_split_anywhere_decode_the_same(lengths in prop::collection::vec(0usize..300, 1..8), cuts in prop::collection::vec(1usize..50, 1..40)) {
        let messages: Vec<Message> = lengths.iter().enumerate().map(|(i, n)| Message {
            channel: i as u32,
            body: Some(Body::Extension(hyper_wire::messages::Extension { name: "x".into(), message: vec![7; *n] })),
        }).collect();
        let stream: Vec<u8> = messages.iter().flat_map(encode_frame).collect();
        let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
        let mut got = Vec::new();
        let mut rest = stream.as_slice();
        let mut cut = cuts.iter().cycle();
        while !rest.is_empty() {
            let n = (*cut.next().expect("cycle")).min(rest.len());
            decoder.push(&rest[..n]);
            rest = &rest[n..];
            while let Some(m) = decoder.next_message().expect("valid stream") {
                got.push(m);
            }
        }
        prop_assert_eq!(got, messages);
    }
}

#[test]
fn oversized_and_malformed_input_is_refused() {
    let mut decoder = FrameDecoder::new(1024);
    // A length prefix of 1025 is refused before any payload arrives.
    decoder.push(&[0x81, 0x08]);
    assert!(matches!(
        decoder.next_message(),
        Err(Error::FrameTooLarge {
            len: 1025,
            max: 1024
        })
    ));
    // Eleven continuation bytes are not a varint.
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    decoder.push(&[0xff; 11]);
    assert!(matches!(decoder.next_message(), Err(Error::BadLength)));
    // A payload that is not a message.
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    decoder.push(&[3, 0xff, 0xff, 0xff]);
    assert!(matches!(decoder.next_message(), Err(Error::Decode(_))));
    // Data with a short hash or signature, or a bad manifest.
    let good = data_from_proof(
        1,
        Proof {
            fork: 0,
            manifest: None,
            block: Some(BlockProof {
                index: 0,
                value: vec![1],
                nodes: vec![Node {
                    index: 2,
                    size: 1,
                    hash: Hash([0; 32]),
                }],
            }),
            hash: None,
            seek: None,
            upgrade: Some(UpgradeProof {
                start: 0,
                length: 1,
                roots: vec![],
                nodes: vec![],
                signatures: vec![SignerSignature {
                    signer: 0,
                    signature: Signature([0; 64]),
                }],
            }),
        },
    );
    let mut short_hash = good.clone();
    if let Some(b) = &mut short_hash.block {
        b.path_hashes.pop();
    }
    assert!(matches!(
        proof_from_data(short_hash.clone()),
        Err(Error::Malformed(_))
    ));
    let mut short_sig = good.clone();
    if let Some(u) = &mut short_sig.upgrade {
        u.signatures[0].signature.pop();
    }
    assert!(matches!(
        proof_from_data(short_sig.clone()),
        Err(Error::Malformed(_))
    ));
    let mut big_signer = good.clone();
    if let Some(u) = &mut big_signer.upgrade {
        u.signatures[0].signer = 256;
    }
    assert!(matches!(
        proof_from_data(big_signer.clone()),
        Err(Error::Malformed(_))
    ));
    let mut bad_manifest = good;
    bad_manifest.manifest = vec![1, 2, 3];
    assert!(matches!(
        proof_from_data(bad_manifest.clone()),
        Err(Error::Manifest(_))
    ));
}

/// Random and mutated frames through the decoder and the conversion:
/// decoded or refused, never a panic. `HYPER_FUZZ_ITERS` sets the rounds.
#[test]
fn fuzz_frame_and_message_decoders() {
    let iters: usize = std::env::var("HYPER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let seed_proof = Proof {
        fork: 3,
        manifest: Some(Manifest::single(KeyPair::from_seed([2; 32]).public_key())),
        block: Some(BlockProof {
            index: 5,
            value: vec![9; 40],
            nodes: vec![Node {
                index: 8,
                size: 40,
                hash: Hash([1; 32]),
            }],
        }),
        hash: None,
        seek: None,
        upgrade: Some(UpgradeProof {
            start: 2,
            length: 9,
            roots: vec![Node {
                index: 7,
                size: 320,
                hash: Hash([2; 32]),
            }],
            nodes: vec![],
            signatures: vec![SignerSignature {
                signer: 0,
                signature: Signature([3; 64]),
            }],
        }),
    };
    let valid = encode_frame(&Message {
        channel: 4,
        body: Some(Body::Data(data_from_proof(7, seed_proof.clone()))),
    });
    for _ in 0..iters {
        let input = common::mutated(&mut rng, &valid, 400, 1..4);
        let mut decoder = FrameDecoder::new(4096);
        decoder.push(&input);
        while let Ok(Some(m)) = decoder.next_message() {
            if let Some(Body::Data(d)) = &m.body {
                let _ = proof_from_data(d.clone());
            }
            if let Some(Body::Request(r)) = &m.body {
                let _ = request_from_wire(r);
            }
        }
    }
}
