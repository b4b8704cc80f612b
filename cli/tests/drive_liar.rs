//! A replica fed a lying peer over a real socket: `hyper-cli drive cat KEY
//! PATH --connect ADDR` against a TCP peer that speaks the protocol (Noise,
//! channels, proofs), serves the drive's metadata core honestly and answers
//! for its blobs core with forged blocks. The read fails, the replica stores
//! no block of the blobs core, and an honest seeder then serves the file.

mod common;
mod drive_support;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{cli, ok};
use drive_support::{drive_seed, json_num, json_str, random};
use hyper_core::{Core, CoreKey, KeyPair, Store};
use hyper_wire::messages::{Bitfield, Body, Message, Open, Sync};
use hyper_wire::{EncryptedStream, data_from_proof, request_from_wire};

/// Serves `honest` as it is and `forged` with the first byte of every block
/// it sends flipped (its proofs otherwise the writer's), to each peer that
/// connects to `listener`, on the channel the peer opened for the core.
async fn lying_peer(listener: tokio::net::TcpListener, honest: Core, forged: Core) {
    while let Ok((socket, _)) = listener.accept().await {
        let (honest, forged) = (honest.clone(), forged.clone());
        tokio::spawn(async move {
            let Ok(keys) = KeyPair::generate() else {
                return;
            };
            let Ok(mut stream) = EncryptedStream::handshake(socket, &keys, false).await else {
                return;
            };
            let mut channels: Vec<(u32, Core)> = Vec::new();
            while let Ok(Some(message)) = stream.recv().await {
                let channel = message.channel;
                let replies = match message.body {
                    Some(Body::Open(open)) => {
                        let Some(core) = [&honest, &forged]
                            .into_iter()
                            .find(|c| c.key().discovery_key().0.as_slice() == open.discovery_key)
                        else {
                            continue;
                        };
                        let Ok(state) = core.signed_state() else {
                            return;
                        };
                        channels.push((channel, core.clone()));
                        vec![
                            Body::Open(Open {
                                discovery_key: open.discovery_key,
                                capability: stream.capabilities().local(&core.key()).to_vec(),
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
                        ]
                    }
                    Some(Body::Request(request)) => {
                        let Some((_, core)) = channels.iter().find(|(c, _)| *c == channel) else {
                            continue;
                        };
                        let Ok(proof) = core.proof(&request_from_wire(&request)) else {
                            return;
                        };
                        let mut data = data_from_proof(request.id, proof);
                        if core.key() == forged.key()
                            && let Some(first) =
                                data.block.as_mut().and_then(|b| b.value.first_mut())
                        {
                            *first ^= 1;
                        }
                        vec![Body::Data(data)]
                    }
                    _ => Vec::new(),
                };
                for body in replies {
                    let reply = Message {
                        channel,
                        body: Some(body),
                    };
                    if stream.send(&reply).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// The blocks of core `key` that the store at `store` holds.
fn blocks_stored(store: &Path, key: &str) -> u64 {
    json_num(
        &ok(cli(store, &["core", "info", key, "--json"], None)),
        "blocks_stored",
    )
}

#[test]
fn a_replica_fed_forged_blocks_by_a_peer_stores_none_and_reads_from_an_honest_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let (w, r) = (dir.path().join("writer"), dir.path().join("reader"));
    let key = ok(cli(&w, &["drive", "create", "--name", "d"], None))
        .trim()
        .to_string();
    let bytes = random(200_000, 9);
    ok(cli(&w, &["drive", "put", "d", "/a.bin", "-"], Some(&bytes)));
    let info = ok(cli(&w, &["drive", "info", "d", "--json"], None));
    let blobs = json_str(&info, "blobs_key");
    // The liar holds the writer's real cores (in this process).
    let store = Store::open(&w).expect("writer store");
    let core = |k: &str| {
        store
            .core(&k.parse::<CoreKey>().expect("key"))
            .expect("core")
    };
    let (meta, blob_core) = (core(&key), core(&blobs));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let liar = std::thread::spawn(move || {
        runtime.block_on(async {
            let serve = lying_peer(listener, meta, blob_core);
            tokio::select! {
                _ = serve => {}
                _ = stopped => {}
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
            }
        });
        // Dropping the runtime ends the liar's tasks and their cores.
    });
    let started = Instant::now();
    let lied = cli(
        &r,
        &[
            "drive",
            "cat",
            &key,
            "/a.bin",
            "--connect",
            &addr,
            "--timeout",
            "5",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&lied.stderr);
    assert!(!lied.status.success(), "read forged bytes: {err}");
    assert!(lied.stdout.is_empty(), "wrote bytes it could not verify");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up within its timeout"
    );
    assert!(
        err.contains(&format!("block 0 of core {blobs}")),
        "names the block it could not get: {err}"
    );
    assert_eq!(blocks_stored(&r, &blobs), 0, "no forged block stored");
    assert!(blocks_stored(&r, &key) > 0, "the honest metadata arrived");
    // The honest writer's seeder serves the same replica afterwards (the
    // store is free once the liar is gone).
    let _ = stop.send(());
    liar.join().expect("the liar's thread");
    drop(store);
    let seeder = drive_seed(&w, "d");
    let read = cli(
        &r,
        &["drive", "cat", &key, "/a.bin", "--connect", &seeder.addr],
        None,
    );
    assert!(
        read.status.success(),
        "{}",
        String::from_utf8_lossy(&read.stderr)
    );
    assert!(read.stdout == bytes, "the honest bytes");
}
