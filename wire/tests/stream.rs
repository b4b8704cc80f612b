//! The encrypted stream over in-memory pipes: identities, large messages,
//! capabilities, and every way a peer can break the handshake or the stream.

mod common;

use hyper_core::{CoreKey, KeyPair};
use hyper_wire::messages::{Body, Extension, Handshake, Message};
use hyper_wire::{EncryptedStream, Error, IDENTITY_CONTEXT, NOISE_PARAMS};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

fn ext(n: usize) -> Message {
    Message {
        channel: 3,
        body: Some(Body::Extension(Extension {
            name: "test".into(),
            message: (0..n).map(|i| i as u8).collect(),
        })),
    }
}

async fn pair(
    a: &KeyPair,
    b: &KeyPair,
) -> (EncryptedStream<DuplexStream>, EncryptedStream<DuplexStream>) {
    let (x, y) = duplex(1 << 16);
    let (ra, rb) = tokio::join!(
        EncryptedStream::handshake(x, a, true),
        EncryptedStream::handshake(y, b, false)
    );
    (ra.expect("initiator"), rb.expect("responder"))
}

#[tokio::test]
async fn both_sides_learn_the_remote_identity_and_exchange_messages() {
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    let (mut sa, mut sb) = pair(&a, &b).await;
    assert_eq!(sa.remote_identity(), b.public_key());
    assert_eq!(sb.remote_identity(), a.public_key());
    // A 5 MB message spans many Noise messages; send and receive concurrently.
    let big = ext(5_000_000);
    let (sent, got) = tokio::join!(sa.send(&big), sb.recv());
    sent.expect("send");
    assert_eq!(got.expect("recv"), Some(big));
    sb.send(&ext(10)).await.expect("send back");
    assert_eq!(sa.recv().await.expect("recv"), Some(ext(10)));
    // A clean close between messages is the end of the stream, not an error.
    drop(sb);
    assert_eq!(sa.recv().await.expect("clean end"), None);
}

#[tokio::test]
async fn batches_cut_at_every_noise_message_boundary_arrive_whole_and_in_order() {
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    let (mut sa, mut sb) = pair(&a, &b).await;
    // Frames whose ends fall just before, on and after the 65,519-byte
    // plaintext boundaries of one send, and a send of many small ones.
    let batches: Vec<Vec<Message>> = vec![
        vec![ext(65_400), ext(100), ext(5)],
        vec![ext(65_500)],
        vec![ext(65_510), ext(131_000), ext(1)],
        (0..300).map(|i| ext(i * 7)).collect(),
        vec![],
    ];
    for batch in &batches {
        let receive = async {
            let mut got = Vec::new();
            for _ in 0..batch.len() {
                got.push(sb.recv().await.expect("recv").expect("a message"));
            }
            got
        };
        let (sent, got) = tokio::join!(sa.send_all(batch), receive);
        sent.expect("send");
        assert_eq!(&got, batch);
    }
}

#[tokio::test]
async fn capabilities_prove_the_key_and_cannot_be_reflected() {
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    let (sa, sb) = pair(&a, &b).await;
    let key = CoreKey([7; 32]);
    let (ca, cb) = (sa.capabilities(), sb.capabilities());
    let cap = ca.local(&key);
    assert!(cb.verify_remote(&key, &cap));
    // Reflected: B's own capability sent back to B does not open anything.
    assert!(!cb.verify_remote(&key, &cb.local(&key)));
    // Another key, or another connection, gives another capability.
    assert!(!cb.verify_remote(&CoreKey([8; 32]), &cap));
    let (sa2, _sb2) = pair(&a, &b).await;
    assert_ne!(sa2.capabilities().local(&key), cap);
    assert!(!cb.verify_remote(&key, &cap[..31]));
}

#[tokio::test]
async fn tampered_ciphertext_is_an_error() {
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    // A <-> man in the middle <-> B. The A->B handshake bytes take about 200
    // bytes; offset 700 falls inside A's first (2 KB) transport message.
    let (a_io, a_mitm) = duplex(1 << 16);
    let (b_io, b_mitm) = duplex(1 << 16);
    let (a_mitm_read, a_mitm_write) = tokio::io::split(a_mitm);
    let (b_mitm_read, b_mitm_write) = tokio::io::split(b_mitm);
    let forward = tokio::spawn(async move {
        let mut from = a_mitm_read;
        let mut to = b_mitm_write;
        let mut buf = vec![0u8; 4096];
        let mut offset = 0usize;
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if (offset..offset + n).contains(&700) {
                buf[700 - offset] ^= 0x01;
            }
            offset += n;
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let backward = tokio::spawn(async move {
        let mut from = b_mitm_read;
        let mut to = a_mitm_write;
        let _ = tokio::io::copy(&mut from, &mut to).await;
    });
    let (sa, sb) = tokio::join!(
        EncryptedStream::handshake(a_io, &a, true),
        EncryptedStream::handshake(b_io, &b, false)
    );
    let (mut sa, mut sb) = (sa.expect("initiator"), sb.expect("responder"));
    let message = ext(2000);
    let (sent, got) = tokio::join!(sa.send(&message), sb.recv());
    sent.expect("send");
    assert!(
        matches!(got, Err(Error::Noise(_))),
        "{:?}",
        got.map(|m| m.is_some())
    );
    drop((sa, sb));
    forward.abort();
    backward.abort();
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_an_error() {
    let b = KeyPair::from_seed([2; 32]);
    let (mut x, y) = duplex(1 << 16);
    x.write_all(&[0, 5, 1, 2, 3, 4, 5]).await.expect("write");
    drop(x);
    let res = EncryptedStream::handshake(y, &b, false).await;
    assert!(
        matches!(res, Err(Error::Noise(_) | Error::Closed)),
        "{:?}",
        res.err()
    );
}

#[tokio::test]
async fn a_forged_identity_proof_is_refused() {
    let a = KeyPair::from_seed([1; 32]);
    let (x, mut y) = duplex(1 << 16);
    // A responder that claims an identity it cannot sign for.
    let liar = tokio::spawn(async move {
        use snow::resolvers::{DefaultResolver, FallbackResolver, RingResolver};
        let b = snow::Builder::with_resolver(
            NOISE_PARAMS.parse().expect("params"),
            Box::new(FallbackResolver::new(
                Box::new(RingResolver),
                Box::new(DefaultResolver),
            )),
        );
        let keys = b.generate_keypair().expect("keys");
        let mut hs = b
            .local_private_key(&keys.private)
            .expect("key")
            .build_responder()
            .expect("responder");
        let mut len = [0u8; 2];
        y.read_exact(&mut len).await.expect("len");
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        y.read_exact(&mut msg).await.expect("msg");
        let mut payload = vec![0u8; 65535];
        hs.read_message(&msg, &mut payload).expect("read");
        let claimed = KeyPair::from_seed([9; 32]);
        let other = KeyPair::from_seed([10; 32]);
        let mut signed = IDENTITY_CONTEXT.to_vec();
        signed.extend_from_slice(&keys.public);
        let proof = Handshake {
            identity: claimed.public_key().0.to_vec(),
            signature: other.sign(&signed).0.to_vec(),
        };
        let mut out = vec![0u8; 65535];
        let n = hs
            .write_message(&proof.encode_to_vec(), &mut out)
            .expect("write");
        y.write_all(&(n as u16).to_be_bytes()).await.expect("len");
        y.write_all(&out[..n]).await.expect("msg");
        y
    });
    let res = EncryptedStream::handshake(x, &a, true).await;
    assert!(matches!(res, Err(Error::Identity)), "{:?}", res.err());
    drop(liar.await);
}

#[tokio::test]
async fn an_oversized_frame_is_refused() {
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    let (mut sa, mut sb) = pair(&a, &b).await;
    sb.set_max_frame(1000);
    let message = ext(5000);
    let (sent, got) = tokio::join!(sa.send(&message), sb.recv());
    sent.expect("send");
    assert!(
        matches!(got, Err(Error::FrameTooLarge { max: 1000, .. })),
        "{:?}",
        got.err()
    );
}

/// Records what one side writes, passing it on.
struct Recorder {
    inner: tokio::io::DuplexStream,
    written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl tokio::io::AsyncRead for Recorder {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Recorder {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &poll {
            self.written
                .lock()
                .expect("lock")
                .extend_from_slice(&buf[..*n]);
        }
        poll
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The handshake decoder against random and mutated handshake messages, in
/// both roles: every run ends in an error (or, for an unmutated transcript
/// replayed, an error too: the ephemeral keys differ), never a panic or a
/// hang. `HYPER_FUZZ_ITERS` scales the rounds.
#[tokio::test]
async fn fuzz_handshake_decoder() {
    use rand::SeedableRng;
    let iters: usize = std::env::var("HYPER_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(300, |n: usize| n / 50);
    // A real transcript of each side's bytes.
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    let (x, y) = duplex(1 << 16);
    let (from_a, from_b) = (Default::default(), Default::default());
    let rx = Recorder {
        inner: x,
        written: std::sync::Arc::clone(&from_a),
    };
    let ry = Recorder {
        inner: y,
        written: std::sync::Arc::clone(&from_b),
    };
    let (sa, sb) = tokio::join!(
        EncryptedStream::handshake(rx, &a, true),
        EncryptedStream::handshake(ry, &b, false)
    );
    assert!(sa.is_ok() && sb.is_ok());
    let transcripts: [Vec<u8>; 2] = [
        from_a.lock().expect("lock").clone(),
        from_b.lock().expect("lock").clone(),
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for round in 0..iters {
        // The victim plays the role opposite to the recorded side.
        let victim_is_initiator = round % 2 == 0;
        let input = common::mutated(
            &mut rng,
            &transcripts[usize::from(victim_is_initiator)],
            300,
            0..4,
        );
        let (mut attacker, victim) = duplex(1 << 16);
        attacker.write_all(&input).await.expect("write");
        drop(attacker);
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            EncryptedStream::handshake(victim, &b, victim_is_initiator),
        )
        .await
        .expect("no hang: the stream ends");
        assert!(
            result.is_err(),
            "round {round}: a forged handshake succeeded"
        );
    }
}

#[tokio::test]
async fn secured_streams_carry_frames_as_they_are_and_refuse_a_cut_frame() {
    let (x, y) = duplex(1 << 20);
    let (ka, kb) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    let mut a = EncryptedStream::secured(x, kb.public_key(), [5; 32], true);
    let mut b = EncryptedStream::secured(y, ka.public_key(), [5; 32], false);
    assert_eq!(b.remote_identity(), ka.public_key());
    let key = CoreKey([3; 32]);
    assert!(
        b.capabilities()
            .verify_remote(&key, &a.capabilities().local(&key))
    );
    let sent = vec![ext(10), ext(100_000), ext(1)];
    a.send_all(&sent).await.expect("send");
    for m in &sent {
        assert_eq!(b.recv().await.expect("recv").as_ref(), Some(m));
    }
    // A frame cut by the end of the stream is an error, not a clean end.
    let (mut raw, y) = duplex(1 << 16);
    let mut b = EncryptedStream::secured(y, ka.public_key(), [5; 32], false);
    let whole = hyper_wire::encode_frame(&ext(50));
    raw.write_all(&whole[..whole.len() - 3])
        .await
        .expect("write");
    drop(raw);
    assert!(matches!(b.recv().await, Err(Error::Malformed(_))));
}

#[tokio::test]
async fn a_stream_cut_inside_a_noise_message_is_an_error() {
    let (a, b) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
    // A <-> cutter <-> B: the cutter forwards B's bytes, and A's only up to
    // offset 700 (inside A's first 2 KB transport message), then closes.
    let (a_io, a_mid) = duplex(1 << 16);
    let (b_io, b_mid) = duplex(1 << 16);
    let (mut a_read, mut a_write) = tokio::io::split(a_mid);
    let (mut b_read, mut b_write) = tokio::io::split(b_mid);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut offset = 0usize;
        while offset < 700 {
            let n = match a_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n.min(700 - offset),
            };
            offset += n;
            if b_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        // Dropping one half of a split duplex does not close it while the
        // other half lives: shut the write side down so B reads the end.
        let _ = b_write.shutdown().await;
    });
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut b_read, &mut a_write).await;
    });
    let (sa, sb) = tokio::join!(
        EncryptedStream::handshake(a_io, &a, true),
        EncryptedStream::handshake(b_io, &b, false)
    );
    let (mut sa, mut sb) = (sa.expect("initiator"), sb.expect("responder"));
    sa.send(&ext(2_000)).await.expect("send");
    assert!(matches!(sb.recv().await, Err(Error::Malformed(_))));
}
