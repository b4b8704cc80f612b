//! A peer that lies or breaks the protocol: each case ends that connection
//! with a clear, typed error, and the reader's store stays valid (what it
//! holds verifies, and an honest peer completes the download afterwards).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_core::{Core, KeyPair, Store};
use hyper_wire::messages::{Bitfield, Body, Data, Extension, Message, Open, Sync};
use hyper_wire::{
    DownloadRange, EncryptedStream, Error, data_from_proof, memory_pair, request_from_wire,
};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

const BLOCKS: u64 = 300;
const TOTAL: u64 = 400;

mod common;

fn store() -> (tempfile::TempDir, Store) {
    common::eventual_store()
}

fn writer() -> (tempfile::TempDir, Store, Core) {
    common::writer(BLOCKS)
}

/// A stream whose writes are garbled once `garble` is set.
struct Tamper {
    inner: DuplexStream,
    garble: Arc<AtomicBool>,
}

impl AsyncRead for Tamper {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tamper {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.garble.load(Ordering::SeqCst) {
            let noise: Vec<u8> = buf.iter().map(|b| b ^ 0xa5).collect();
            Pin::new(&mut self.inner).poll_write(cx, &noise)
        } else {
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// How the bad peer misbehaves.
#[derive(Clone, Copy)]
enum Lie {
    ForgedBlock,
    WrongProof,
    WrongSignature,
    OversizedFrame,
    Garbage,
    UnopenedChannel,
}

/// Plays the serving side by hand, with `lie` injected.
async fn bad_peer(io: Tamper, garble: Arc<AtomicBool>, core: Core, lie: Lie) {
    let Ok(mut stream) =
        EncryptedStream::handshake(io, &KeyPair::generate().expect("keys"), false).await
    else {
        return;
    };
    let key = core.key();
    let state = core.signed_state().expect("state");
    match lie {
        Lie::Garbage => {
            // More garbage than the largest Noise message it may announce.
            garble.store(true, Ordering::SeqCst);
            let filler = Message {
                channel: 1,
                body: Some(Body::Extension(Extension {
                    name: "x".into(),
                    message: vec![7; 200_000],
                })),
            };
            let _ = stream.send(&filler).await;
        }
        Lie::OversizedFrame => {
            let huge = Message {
                channel: 1,
                body: Some(Body::Extension(Extension {
                    name: "x".into(),
                    message: vec![0; 9 << 20],
                })),
            };
            let _ = stream.send(&huge).await;
        }
        Lie::UnopenedChannel => {
            let sync = Message {
                channel: 77,
                body: Some(Body::Sync(Sync::default())),
            };
            let _ = stream.send(&sync).await;
        }
        _ => {}
    }
    while let Ok(Some(message)) = stream.recv().await {
        let replies = match message.body {
            Some(Body::Open(_)) => vec![
                Body::Open(Open {
                    discovery_key: key.discovery_key().0.to_vec(),
                    capability: stream.capabilities().local(&key).to_vec(),
                }),
                Body::Sync(Sync {
                    fork: state.fork,
                    length: state.length,
                    remote_length: 0,
                    can_upgrade: true,
                    uploading: true,
                    downloading: false,
                }),
                Body::Bitfield(Bitfield {
                    start: 0,
                    runs: vec![state.length],
                }),
            ],
            Some(Body::Request(request)) => {
                let proof = core.proof(&request_from_wire(&request)).expect("proof");
                let mut data: Data = data_from_proof(request.id, proof);
                match lie {
                    Lie::ForgedBlock => {
                        if let Some(b) = data.block.as_mut() {
                            b.value[0] ^= 1;
                        }
                    }
                    Lie::WrongProof => {
                        if let Some(b) = data.block.as_mut().filter(|b| !b.path_hashes.is_empty()) {
                            b.path_hashes[3] ^= 1;
                        }
                    }
                    Lie::WrongSignature => {
                        if let Some(s) =
                            data.upgrade.as_mut().and_then(|u| u.signatures.first_mut())
                        {
                            s.signature[10] ^= 1;
                        }
                    }
                    _ => {}
                }
                vec![Body::Data(data)]
            }
            _ => vec![],
        };
        for body in replies {
            if stream
                .send(&Message {
                    channel: 1,
                    body: Some(body),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

async fn case(lie: Lie, expect: fn(&Error) -> bool) {
    let (_wd, _ws, wc) = writer();
    let (_rd, rs) = store();
    let reader = common::replication(&rs);
    let replica = rs.replica(&wc.key()).expect("replica");
    reader.add_core(&replica);

    // First an honest peer hands over part of the core.
    let (_hd, hs) = store();
    let half = hs.replica(&wc.key()).expect("half");
    let proofs: Vec<_> = (0..BLOCKS / 2)
        .map(|i| {
            let nodes = half.missing_nodes(i).expect("nodes");
            wc.proof(&hyper_core::ProofRequest {
                block: Some(hyper_core::NodeRequest { index: i, nodes }),
                upgrade: (i == 0).then_some(hyper_core::UpgradeRequest { start: 0, fork: 0 }),
                manifest: i == 0,
                ..Default::default()
            })
            .expect("proof")
        })
        .collect();
    replica.apply(&proofs).expect("honest proofs apply");
    let before = replica.info().expect("info");
    // The writer moves on, so the reader will want an upgrade too.
    let more: Vec<Vec<u8>> = (BLOCKS..TOTAL)
        .map(|i| format!("block {i}").into_bytes())
        .collect();
    wc.append_batch(&more).expect("append");

    // The bad peer.
    let (x, y) = memory_pair();
    let garble = Arc::new(AtomicBool::new(false));
    let io = Tamper {
        inner: y,
        garble: garble.clone(),
    };
    let evil = tokio::spawn(bad_peer(io, garble, wc.clone(), lie));
    let connection = reader.add_stream(x, true).await.expect("handshake");
    let download = {
        let reader = reader.clone();
        let replica = replica.clone();
        tokio::spawn(async move { reader.download(&replica, DownloadRange::all()).await })
    };
    let closed = tokio::time::timeout(Duration::from_secs(20), connection.closed())
        .await
        .expect("the connection ends");
    let error = closed.expect_err("ended with an error");
    assert!(expect(&error), "unexpected error: {error:?}");
    evil.abort();

    // Nothing false was stored: every stored block verifies, the state is
    // the writer's, and nothing stored before was lost.
    let after = replica.info().expect("info");
    assert!(after.blocks_stored >= before.blocks_stored);
    for i in 0..after.length {
        if replica.has(i).expect("has") {
            assert_eq!(
                replica.get(i).expect("verifies"),
                wc.get(i).expect("writer")
            );
        }
    }
    // An honest peer completes the download.
    let (_sd, ss) = (_wd, _ws);
    let honest = common::all_cores(&ss);
    let _conns = hyper_wire::connect_memory(&reader, &honest)
        .await
        .expect("connect");
    tokio::time::timeout(Duration::from_secs(20), download)
        .await
        .expect("download finishes")
        .expect("task")
        .expect("download");
    assert_eq!(replica.info().expect("info").length, TOTAL);
    assert!(replica.has_range(0..TOTAL).expect("has_range"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_block() {
    case(Lie::ForgedBlock, |e| matches!(e, Error::Verify(_))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proof() {
    case(Lie::WrongProof, |e| matches!(e, Error::Verify(_))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_signature() {
    case(Lie::WrongSignature, |e| {
        matches!(e, Error::Verify(hyper_core::VerifyError::Signature { .. }))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame() {
    case(Lie::OversizedFrame, |e| {
        matches!(e, Error::FrameTooLarge { .. })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes() {
    case(Lie::Garbage, |e| {
        matches!(e, Error::Noise(_) | Error::Io(_))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_on_a_channel_never_opened() {
    case(Lie::UnopenedChannel, |e| matches!(e, Error::Malformed(_))).await;
}

/// A peer that keeps asking but never reads the answers: the server stops
/// serving it once its send buffer is full, and cuts it off when its queue
/// of requests passes the bound, instead of buffering without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_is_cut_off() {
    let (_wd, ws) = store();
    let core = ws.create_core().expect("core");
    let big = vec![7u8; 65536];
    core.append_batch(&vec![big.as_slice(); 64])
        .expect("append");
    let server = common::replication(&ws);
    server.add_core(&core);
    let (x, y) = tokio::io::duplex(64 << 10);
    let key = core.key();
    let greedy = tokio::spawn(async move {
        let mut stream = EncryptedStream::handshake(y, &KeyPair::generate().expect("keys"), true)
            .await
            .expect("handshake");
        let open = Message {
            channel: 1,
            body: Some(Body::Open(Open {
                discovery_key: key.discovery_key().0.to_vec(),
                capability: stream.capabilities().local(&key).to_vec(),
            })),
        };
        stream.send(&open).await.expect("open");
        for id in 0..100_000u64 {
            let request = hyper_wire::request_to_wire(
                id,
                0,
                &hyper_core::ProofRequest {
                    block: Some(hyper_core::NodeRequest {
                        index: id % 64,
                        nodes: 6,
                    }),
                    ..Default::default()
                },
            );
            let m = Message {
                channel: 1,
                body: Some(Body::Request(request)),
            };
            if stream.send(&m).await.is_err() {
                return;
            }
        }
    });
    let connection = server.add_stream(x, false).await.expect("handshake");
    let closed = tokio::time::timeout(Duration::from_secs(30), connection.closed())
        .await
        .expect("the greedy peer is cut off");
    assert!(matches!(closed, Err(Error::TooManyRequests)), "{closed:?}");
    greedy.abort();
}
