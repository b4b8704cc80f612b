//! Writes the seed corpus of every target into `corpus/TARGET/` (valid
//! encodings made by our own encoders, real transcripts and scripts that
//! reach deep states), so the fuzzer starts past the decoders' first checks.
//! Run from `fuzz/`: `cargo +nightly run --example seeds`. Each seed is
//! named by its content hash; running it again adds nothing new.

use std::path::Path;

use hyper_autobase::{
    Causal, Frontier, FrontierWriter, Head, Header as BaseHeader, Member, Node as BaseNode,
    SystemEntry, ViewState, writer_key_of,
};
use hyper_core::{CoreKey, Durability, KeyPair, ProofRequest, PublicKey, Store, StoreOptions};
use hyper_drive::messages::{
    ChunkList, Contiguous, Entry, Header as DriveHeader, Kind, Location, Run,
};
use hyper_swarm::fuzzing::{RelayMessage, relay_datagram};
use hyper_swarm::messages::{self as dht, Packet, Ping};
use hyper_swarm::{
    Body as DhtBody, PeerRecord, encode_packet, sign_mutable, sign_record, wire_address,
};
use hyper_wire::messages::{Bitfield, Body, Extension, Message, Open, Sync, Want};
use hyper_wire::{
    EncryptedStream, data_from_proof, encode_frame, identity_payload, request_to_wire,
};
use prost::Message as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn write(target: &str, seeds: &[Vec<u8>]) -> std::io::Result<()> {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    for seed in seeds {
        let name = blake3::hash(seed).to_hex();
        std::fs::write(dir.join(&name.as_str()[..16]), seed)?;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    write("core_records", &hyper_core::fuzzing::sample_records())?;
    write("wire_frames", &wire_frames()?)?;
    write("noise_handshake", &noise()?)?;
    write("dht_packets", &dht_packets())?;
    write("bee_nodes", &bee_scripts())?;
    write("drive_entries", &drive_entries())?;
    write("autobase_nodes", &autobase_blocks())?;
    write("autobase_system", &system_entries())?;
    write("replicator", &replicator_scripts())?;
    write("dht_node", &dht_node_scripts())?;
    Ok(())
}

fn wire_frames() -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?;
    let core = store.create_core()?;
    core.append_batch(&[b"a".as_slice(), b"bc", b"def", b"ghij", b"k"])?;
    let request = ProofRequest {
        block: Some(hyper_core::NodeRequest { index: 3, nodes: 2 }),
        upgrade: Some(hyper_core::UpgradeRequest { start: 0, fork: 0 }),
        manifest: true,
        ..ProofRequest::default()
    };
    let proof = core.proof(&request)?;
    let messages = [
        Body::Data(data_from_proof(9, proof)),
        Body::Request(request_to_wire(9, 0, &request)),
        Body::Open(Open {
            discovery_key: vec![1; 32],
            capability: vec![2; 32],
        }),
        Body::Sync(Sync {
            fork: 1,
            length: 5,
            remote_length: 3,
            can_upgrade: true,
            uploading: true,
            downloading: false,
        }),
        Body::Bitfield(Bitfield {
            start: 0,
            runs: vec![3, 1, 1],
        }),
        Body::Want(Want {
            start: 0,
            length: 1024,
        }),
        Body::Extension(Extension {
            name: "ext".into(),
            message: vec![7; 9],
        }),
    ];
    let mut all = vec![2u8];
    let mut seeds = Vec::new();
    for (i, body) in messages.into_iter().enumerate() {
        let frame = encode_frame(&Message {
            channel: i as u32,
            body: Some(body),
        });
        all.extend_from_slice(&frame);
        let mut seed = vec![(frame.len() / 2) as u8];
        seed.extend(frame);
        seeds.push(seed);
    }
    seeds.push(all);
    Ok(seeds)
}

/// A handshake payload, and each side's bytes of a real handshake.
fn noise() -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    let mut payload = vec![0u8];
    payload.extend(identity_payload(&KeyPair::from_seed([1; 32]), &[0x5a; 32]));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let (from_initiator, from_responder) = rt.block_on(async {
        let (a, mut a_mid) = tokio::io::duplex(1 << 16);
        let (mut b_mid, b) = tokio::io::duplex(1 << 16);
        let relay = async {
            let (mut to_b, mut to_a) = (Vec::new(), Vec::new());
            let mut buf = [0u8; 4096];
            for _ in 0..3 {
                // Initiator, responder, initiator: one message each.
                let from_a = to_b.len() <= to_a.len();
                let (src, dst, log) = if from_a {
                    (&mut a_mid, &mut b_mid, &mut to_b)
                } else {
                    (&mut b_mid, &mut a_mid, &mut to_a)
                };
                let n = src.read(&mut buf).await.unwrap_or(0);
                log.extend_from_slice(&buf[..n]);
                dst.write_all(&buf[..n]).await.ok();
            }
            (to_b, to_a)
        };
        let (ka, kb) = (KeyPair::from_seed([1; 32]), KeyPair::from_seed([2; 32]));
        let (logs, _, _) = tokio::join!(
            relay,
            EncryptedStream::handshake(a, &ka, true),
            EncryptedStream::handshake(b, &kb, false)
        );
        logs
    });
    // Odd mode byte: a transcript; bit 1 clear, the victim is the
    // responder (and reads what the initiator sent).
    let mut to_responder = vec![1u8];
    to_responder.extend(from_initiator);
    let mut to_initiator = vec![3u8];
    to_initiator.extend(from_responder);
    Ok(vec![payload, to_responder, to_initiator])
}

fn dht_packets() -> Vec<Vec<u8>> {
    let keypair = KeyPair::from_seed([4; 32]);
    let addr: std::net::SocketAddr = "10.0.0.1:4000".parse().expect("address");
    let record = sign_record(
        &keypair,
        &[6; 32],
        &PeerRecord {
            public_key: keypair.public_key().0.to_vec(),
            addresses: vec![wire_address(addr)],
            relays: vec![],
            local_addresses: vec![],
            timestamp: 5,
        },
    );
    let bodies = [
        DhtBody::Ping(Ping {}),
        DhtBody::FindNode(dht::FindNode {
            target: vec![6; 32],
        }),
        DhtBody::Lookup(dht::Lookup { topic: vec![6; 32] }),
        DhtBody::Announce(dht::Announce {
            topic: vec![6; 32],
            record: Some(record.clone()),
            token: vec![9; 32],
        }),
        DhtBody::MutablePut(dht::MutablePut {
            value: Some(sign_mutable(&keypair, 1, b"v".to_vec())),
            token: vec![9; 32],
        }),
        DhtBody::Reply(dht::Reply {
            closer: vec![dht::NodeInfo {
                id: vec![3; 32],
                address: Some(wire_address(addr)),
            }],
            token: vec![1; 32],
            records: vec![record],
            ..dht::Reply::default()
        }),
    ];
    let mut seeds: Vec<Vec<u8>> = bodies
        .into_iter()
        .enumerate()
        .map(|(tid, body)| {
            encode_packet(&Packet {
                tid: tid as u32,
                id: vec![7; 32],
                to: Some(wire_address(addr)),
                flags: 1,
                body: Some(body),
                ..Packet::default()
            })
        })
        .collect();
    seeds.push(relay_datagram(&RelayMessage::Hello([1; 32])));
    seeds.push(relay_datagram(&RelayMessage::Cookie([1; 32], [2; 32])));
    seeds.push(relay_datagram(&RelayMessage::Ack([1; 32])));
    seeds
}

/// Scripts of puts (op < 160) and deletes, then damage.
fn bee_scripts() -> Vec<Vec<u8>> {
    let mut grow = vec![120u8];
    for i in 0..120u8 {
        grow.extend([i.wrapping_mul(7) % 64, i]);
    }
    let mut churn = vec![200u8];
    for i in 0..200u8 {
        let op = if i % 3 == 2 {
            160 + (i % 64)
        } else {
            i.wrapping_mul(5) % 64
        };
        churn.extend([op, i]);
    }
    let mut damaged = grow.clone();
    damaged.extend([119, 3, 0x22, 0x04, 0x08, 0x01, 0x10, 0x05]);
    vec![grow, churn, damaged]
}

fn drive_entries() -> Vec<Vec<u8>> {
    let file = |location| Entry {
        kind: Kind::File as i32,
        mode: 0o644,
        size: 10_000,
        mtime_ns: 1,
        hash: vec![1; 32],
        location: Some(location),
        target: String::new(),
        metadata: vec![],
    };
    let entries = [
        file(Location::Contiguous(Contiguous {
            first_block: 3,
            block_count: 3,
            block_size: 4096,
        })),
        file(Location::Chunks(ChunkList {
            runs: vec![
                Run {
                    first_block: 9,
                    lengths: vec![4000, 3000],
                },
                Run {
                    first_block: 2,
                    lengths: vec![3000],
                },
            ],
        })),
        Entry {
            kind: Kind::Symlink as i32,
            target: "../a".into(),
            ..Entry::default()
        },
    ];
    let mut seeds: Vec<Vec<u8>> = entries
        .iter()
        .map(|e| {
            let mut seed = 100u64.to_le_bytes().to_vec();
            seed.extend(5000u64.to_le_bytes());
            let path = b"/docs/a file.txt";
            seed.push(path.len() as u8);
            seed.extend(path);
            seed.extend(e.encode_to_vec());
            seed
        })
        .collect();
    let header = DriveHeader {
        protocol: "hyperdrive".into(),
        version: 1,
        blobs_key: vec![5; 32],
    };
    let mut seed = vec![0u8; 17];
    seed.extend(header.encode_to_vec());
    seeds.push(seed);
    seeds
}

/// System entries: one indexer alone; two indexers, a member with no
/// indexed node, a removed one, two views; the same right after the
/// indexers changed.
fn system_entries() -> Vec<Vec<u8>> {
    let facts = |depth, round: Option<u64>, round_set| Causal {
        depth,
        epoch: 0,
        round,
        round_set,
    };
    let writer = |k: u8, length, causal| FrontierWriter {
        key: CoreKey([k; 32]),
        length,
        causal,
    };
    let member = |k: u8, indexer, removed| Member {
        key: CoreKey([k; 32]),
        indexer,
        removed,
        pending: false,
        leaving: false,
    };
    let view = |name: &str, length| ViewState {
        name: name.to_string(),
        length,
        tree_hash: [length as u8; 32],
    };
    let one = SystemEntry {
        frontier: Frontier {
            batches: 2,
            committed_round: Some(0),
            writers: vec![writer(1, 2, Some(facts(2, Some(0), 1)))],
            epochs: Vec::new(),
        },
        members: vec![member(1, true, false)],
        views: vec![view("log", 2)],
        signers: Vec::new(),
    };
    let more = SystemEntry {
        frontier: Frontier {
            batches: 5,
            committed_round: Some(4),
            writers: vec![
                writer(1, 3, Some(facts(5, Some(4), 0b11))),
                writer(2, 2, Some(facts(4, Some(4), 0b10))),
                writer(3, 0, None),
                writer(4, 1, Some(facts(1, None, 0))),
            ],
            epochs: Vec::new(),
        },
        members: vec![
            member(1, true, false),
            member(2, true, false),
            member(3, false, false),
            member(4, false, true),
        ],
        views: vec![view("kv", 0), view("log", 4)],
        signers: Vec::new(),
    };
    // Right after the indexers changed to one new writer's: nothing
    // committed in the new epoch yet, its signing key named.
    let signer = PublicKey([9; 32]);
    let newcomer = writer_key_of(&signer);
    let mut switched = more.clone();
    switched.frontier.committed_round = None;
    switched.frontier.writers.push(FrontierWriter {
        key: newcomer,
        length: 0,
        causal: None,
    });
    switched.frontier.writers.sort_by_key(|w| w.key);
    for m in &mut switched.members {
        m.indexer = false;
    }
    switched.members.push(Member {
        key: newcomer,
        indexer: true,
        removed: false,
        pending: false,
        leaving: false,
    });
    switched.members.sort_by_key(|m| m.key);
    switched.frontier.epochs = vec![vec![newcomer]];
    switched.signers = vec![vec![signer]];
    assert!(switched.validate().is_ok(), "a valid seed");
    vec![one.encode(), more.encode(), switched.encode()]
}

fn autobase_blocks() -> Vec<Vec<u8>> {
    let first = BaseHeader::First {
        indexers: vec![PublicKey([1; 32]), PublicKey([2; 32])],
    };
    let writer = BaseHeader::Writer {
        base: CoreKey([3; 32]),
    };
    let node = BaseNode::new(
        Some(b"value".to_vec()),
        vec![
            Head {
                writer: CoreKey([1; 32]),
                length: 4,
            },
            Head {
                writer: CoreKey([2; 32]),
                length: 1,
            },
        ],
        2,
    );
    // The node ending a batch states its causal facts.
    let ack = BaseNode::new(None, vec![], 0).with_causal(Causal {
        depth: 3,
        epoch: 0,
        round: Some(1),
        round_set: 0b11,
    });
    let tagged = |tag: u8, bytes: Vec<u8>| [vec![tag], bytes].concat();
    vec![
        tagged(0, first.encode()),
        tagged(0, writer.encode()),
        tagged(1, node.encode()),
        tagged(1, ack.encode()),
    ]
}

/// Replicator scripts (ops in `replicator.rs`): sync, claim, ask, answer.
fn replicator_scripts() -> Vec<Vec<u8>> {
    let answers = |n: usize| [3u8, 0].repeat(n);
    // Sync; claim 0..40 (Bitfield start 0, one run of 40); download all.
    let download = [vec![0, 1, 0, 1, 40, 7, 0, 0], answers(60)].concat();
    // Sync; Range 5..8; get block 6; answer; a mutated answer; time out.
    let get = [
        vec![0, 2, 5, 3, 6, 6],
        answers(4),
        vec![4, 0, 9, 0, 0x10, 6, 7],
        answers(3),
        vec![8, 200],
    ]
    .concat();
    // Sync; the peer asks us; want; close and reopen; download live.
    let serve = [
        vec![0, 9, 1, 3, 2, 10, 0, 40, 11, 1, 0, 1, 40, 0x87, 0, 0],
        answers(20),
        vec![12, 0, 0, 0, 12, 0, 16, 0],
    ]
    .concat();
    vec![download, get, serve]
}

/// DHT node scripts (ops in `dht_node.rs`): bootstrap, answer with the
/// bound id, raw requests from many sources, time passing.
fn dht_node_scripts() -> Vec<Vec<u8>> {
    let me: std::net::SocketAddr = "10.9.9.9:49737".parse().expect("address");
    let reply = Packet {
        body: Some(DhtBody::Reply(dht::Reply {
            closer: (0..5u8)
                .map(|i| dht::NodeInfo {
                    id: vec![i; 32],
                    address: Some(wire_address(std::net::SocketAddr::from((
                        [10, 0, i, 1],
                        4000 + u16::from(i),
                    )))),
                })
                .collect(),
            token: vec![1; 32],
            ..dht::Reply::default()
        })),
        ..Packet::default()
    }
    .encode_to_vec();
    let find = Packet {
        tid: 1,
        id: vec![0; 32],
        to: Some(wire_address(me)),
        body: Some(DhtBody::FindNode(dht::FindNode {
            target: vec![6; 32],
        })),
        ..Packet::default()
    };
    let raw = encode_packet(&find);
    let mut bootstrap = vec![4, 0];
    for src in 0..3u8 {
        // 0xc2: answer (op % 6 == 2) with the bound id and our address.
        bootstrap.extend([0xc2, src, reply.len() as u8]);
        bootstrap.extend(&reply);
    }
    let mut requests = Vec::new();
    for src in 0..8u8 {
        requests.extend([0, src, raw.len() as u8, 0]);
        requests.extend(&raw);
        // 0xc1: a packet (op % 6 == 1) with the bound id.
        requests.extend([0xc1, src, find.encode_to_vec().len() as u8]);
        requests.extend(find.encode_to_vec());
    }
    let timers = [bootstrap.clone(), vec![3, 1, 0x83, 2, 5, 0, 40, 5, 0, 255]].concat();
    vec![bootstrap, requests, timers]
}
