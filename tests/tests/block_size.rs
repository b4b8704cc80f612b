//! The maximum block size: enforced at append, and chosen so that a block
//! of that size with its proof fits one wire frame.

mod common;

use common::{request, stores};
use hyper_core::{ENCRYPTION_OVERHEAD, EncryptionKey, Error, MAX_BLOCK_SIZE};
use hyper_wire::messages::{Body, Message};
use hyper_wire::{DEFAULT_MAX_FRAME, FrameDecoder, data_from_proof, encode_frame};

#[test]
fn a_block_past_the_maximum_is_refused_and_nothing_is_appended() {
    let (_d, s) = stores(1);
    let core = s[0].create_core().expect("core");
    core.append(b"first").expect("append");
    let big = vec![7u8; MAX_BLOCK_SIZE + 1];
    let small = b"ok".to_vec();
    match core.append_batch(&[small.clone(), big]) {
        Err(Error::BlockTooLarge { index, size, max }) => {
            assert_eq!((index, size, max), (1, MAX_BLOCK_SIZE + 1, MAX_BLOCK_SIZE));
        }
        other => panic!("expected BlockTooLarge, got {other:?}"),
    }
    // The whole batch was refused, the core is as it was.
    assert_eq!(core.info().expect("info").length, 1);
    let exact = vec![1u8; MAX_BLOCK_SIZE];
    assert_eq!(core.append(&exact).expect("max size").length, 2);
    assert_eq!(core.get(1).expect("get").len(), MAX_BLOCK_SIZE);

    // An encrypted core counts its framing.
    let enc = s[0]
        .create_core()
        .expect("core")
        .with_encryption(&EncryptionKey::generate().expect("key"))
        .expect("enc");
    let limit = MAX_BLOCK_SIZE - ENCRYPTION_OVERHEAD;
    assert!(matches!(
        enc.append(&vec![0; limit + 1]),
        Err(Error::BlockTooLarge { size, .. }) if size == MAX_BLOCK_SIZE + 1
    ));
    enc.append(&vec![0; limit])
        .expect("largest encrypted block");
}

#[test]
fn a_largest_block_with_its_proof_fits_one_wire_frame() {
    let (_d, s) = stores(2);
    let writer = s[0].named("big").expect("core");
    let small: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_le_bytes().to_vec()).collect();
    writer.append_batch(&small).expect("append");
    writer
        .append(&vec![9u8; MAX_BLOCK_SIZE])
        .expect("append largest");
    writer.append_batch(&small).expect("append more");
    // A fresh reader asks for everything at once: block, full path, the
    // upgrade from 0 and the manifest.
    let reader = s[1].replica(&writer.key()).expect("replica");
    let proof = writer.proof(&request(&reader, 1000)).expect("proof");
    let frame = encode_frame(&Message {
        channel: u32::MAX,
        body: Some(Body::Data(data_from_proof(u64::MAX, proof))),
    });
    assert!(
        frame.len() <= DEFAULT_MAX_FRAME,
        "frame of {} bytes",
        frame.len()
    );
    let mut decoder = FrameDecoder::new(DEFAULT_MAX_FRAME);
    decoder.push(&frame);
    assert!(decoder.next_message().expect("decodes").is_some());

    // The worst case the tree allows: a 64-level sibling path, an upgrade
    // of two nodes per level, 255 signatures and a manifest of 255 signers,
    // every integer a 10-byte varint with a tag, stays inside the margin.
    let node = 1 + 10 + 1 + 10 + 2 + 32;
    let worst = 64 * node + 128 * node + 255 * (2 + 1 + 64 + 4) + (255 * 33 + 64) + 256;
    assert!(
        MAX_BLOCK_SIZE + worst < DEFAULT_MAX_FRAME,
        "worst case {worst} bytes of proof do not fit"
    );
}
