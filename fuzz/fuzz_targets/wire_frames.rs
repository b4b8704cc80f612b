//! The wire's frame decoder and message codec, and the checked conversion
//! of `Data` to core proofs and of `Request` to proof requests. The first
//! byte picks where the input is cut into two pushes (a frame split across
//! reads). Property: frames decode or fail with a typed error; every
//! message decoded re-encodes to a frame that decodes to the same message;
//! a proof or request that converts converts back to itself.
#![no_main]

use hyper_wire::messages::Body;
use hyper_wire::{
    FrameDecoder, data_from_proof, encode_frame, proof_from_data, request_from_wire,
    request_to_wire,
};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

const MAX_FRAME: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut).min(bytes.len());
    let mut decoder = FrameDecoder::new(MAX_FRAME);
    decoder.push(&bytes[..cut]);
    let mut pushed_rest = false;
    let mut consumed = 0usize;
    loop {
        match decoder.next_frame() {
            Ok(Some((message, size))) => {
                consumed += size;
                assert!(consumed <= bytes.len(), "frames larger than the input");
                check_message(&message);
            }
            Ok(None) if !pushed_rest => {
                decoder.push(&bytes[cut..]);
                pushed_rest = true;
            }
            Ok(None) | Err(_) => break,
        }
    }
});

fn check_message(message: &hyper_wire::messages::Message) {
    let frame = encode_frame(message);
    if message.encoded_len() == 0 {
        // The empty message (channel 0, no body) is a zero-length frame:
        // the keep-alive, which by design carries no message.
        assert_eq!(frame, [0]);
        return;
    }
    let mut again = FrameDecoder::new(frame.len().max(MAX_FRAME));
    again.push(&frame);
    match again.next_message() {
        Ok(Some(m)) => assert_eq!(&m, message, "a message's frame decodes to another message"),
        other => panic!(
            "a decoded message's frame does not decode: {:?}",
            other.err()
        ),
    }
    match &message.body {
        Some(Body::Data(d)) => {
            if let Ok(proof) = proof_from_data(d.clone()) {
                let back = proof_from_data(data_from_proof(d.request, proof.clone()));
                assert_eq!(back.ok(), Some(proof), "a proof does not survive the wire");
            }
        }
        Some(Body::Request(r)) => {
            let request = request_from_wire(r);
            let back = request_from_wire(&request_to_wire(r.id, r.fork, &request));
            assert_eq!(back, request, "a proof request does not survive the wire");
        }
        _ => {}
    }
}
