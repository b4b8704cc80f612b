//! Hostile peers over real TCP against a real `Replication`: peers that
//! never speak, stall inside a frame, flood, or never read. Each test
//! asserts the limit that holds (a deadline, a cap, a bound in bytes) and
//! that an honest peer is still served.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::hostile::{
    Hostile, altering_server, closed_within, on, silent_server, stalling_server,
};
use hyper_core::{Core, KeyPair, Store};
use hyper_wire::messages::{Bitfield, Body, Extension, Message, NodeRequest, Open, Request, Want};
use hyper_wire::{
    Config, Error, Limits, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
};
use tokio::net::{TcpSocket, TcpStream};

fn replication(store: &Store, limits: Limits) -> Replication {
    Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            limits,
            ..ReplicationOptions::default()
        },
    )
}

fn quick() -> Limits {
    Limits {
        handshake_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(600),
        keep_alive: Duration::from_millis(150),
        ..Limits::default()
    }
}

/// A seeder of one core on a loopback port.
async fn seeder(limits: Limits) -> (tempfile::TempDir, Core, Replication, SocketAddr) {
    let (dir, store, core) = common::writer(50);
    let seeder = replication(&store, limits);
    seeder.add_core(&core);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&seeder, listener);
    (dir, core, seeder, addr)
}

/// A fresh reader of `core` fetches block 7 from `addr`.
async fn honest_get(core: &Core, addr: SocketAddr) -> hyper_wire::Result<Vec<u8>> {
    honest_get_at(core, addr, 7).await
}

/// A fresh reader of `core` fetches block `index` from `addr`.
async fn honest_get_at(core: &Core, addr: SocketAddr, index: u64) -> hyper_wire::Result<Vec<u8>> {
    let (_dir, store) = common::eventual_store();
    let reader = replication(&store, Limits::default());
    let replica = store.replica(&core.key()).expect("replica");
    reader.add_core(&replica);
    let _connection = connect_tcp(&reader, addr).await?;
    reader.get(&replica, index, Duration::from_secs(5)).await
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn dial_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("addr"))
        .expect("bind");
    socket.connect(addr).await.expect("connect")
}

#[tokio::test]
async fn a_server_that_never_speaks_fails_the_handshake_in_time() {
    let (addr, _server) = silent_server().await;
    let (_dir, store) = common::eventual_store();
    let reader = replication(&store, quick());
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(5), connect_tcp(&reader, addr))
        .await
        .expect("the dial must not hang");
    assert!(
        matches!(result, Err(Error::HandshakeTimeout(_))),
        "{:?}",
        result.err()
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_server_that_stalls_inside_a_frame_is_dropped_as_idle() {
    let (addr, _server) = stalling_server(1000).await;
    let (_dir, store) = common::eventual_store();
    let reader = replication(&store, quick());
    let connection = connect_tcp(&reader, addr).await.expect("handshake");
    let ended = tokio::time::timeout(Duration::from_secs(5), connection.closed())
        .await
        .expect("a stalled connection must end");
    assert!(matches!(ended, Err(Error::Idle(_))), "{ended:?}");
    assert!(reader.peers().await.is_empty());
}

#[tokio::test]
async fn an_honest_quiet_connection_outlives_the_idle_timeout() {
    let (_sd, core, _seeder, addr) = seeder(quick()).await;
    let (_dir, store) = common::eventual_store();
    let reader = replication(&store, quick());
    let replica = store.replica(&core.key()).expect("replica");
    reader.add_core(&replica);
    let _connection = connect_tcp(&reader, addr).await.expect("connect");
    // Four idle timeouts with nothing to say: keep-alives hold it open.
    tokio::time::sleep(Duration::from_millis(2400)).await;
    assert_eq!(reader.peers().await.len(), 1, "still connected");
    let block = reader
        .get(&replica, 7, Duration::from_secs(5))
        .await
        .expect("served after the quiet spell");
    assert_eq!(block, b"block 7");
}

#[tokio::test]
async fn a_seeder_closes_a_socket_that_never_handshakes() {
    let (_sd, core, seeder, addr) = seeder(quick()).await;
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    assert!(
        closed_within(&mut silent, Duration::from_secs(3)).await,
        "the seeder must close a socket that never speaks"
    );
    // One that completes the handshake and then sends nothing goes too.
    let mut quiet = Hostile::dial(addr).await.expect("handshake");
    assert!(quiet.closed_within(Duration::from_secs(3)).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seeder.admitted(), 0, "their places are freed");
    assert_eq!(honest_get(&core, addr).await.expect("served"), b"block 7");
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_total() {
    let limits = Limits {
        max_connections: 5,
        max_connections_per_ip: 3,
        ..Limits::default()
    };
    let (_sd, core, seeder, addr) = seeder(limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(dial_from("127.0.0.2", addr).await);
    }
    let mut over = dial_from("127.0.0.2", addr).await;
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await,
        "a fourth connection from one address is closed"
    );
    for _ in 0..2 {
        held.push(dial_from("127.0.0.3", addr).await);
    }
    let mut over = dial_from("127.0.0.4", addr).await;
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).await,
        "a sixth connection in all is closed"
    );
    assert_eq!(seeder.admitted(), 5);
    // The held sockets still wait for their handshake: not closed.
    assert!(!closed_within(&mut held[0], Duration::from_millis(200)).await);
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(seeder.admitted(), 0);
    assert_eq!(honest_get(&core, addr).await.expect("served"), b"block 7");
}

/// A hostile peer with core `key` paired on its channel 1.
async fn paired(addr: SocketAddr, key: &hyper_core::CoreKey) -> Hostile {
    Hostile::dial(addr)
        .await
        .expect("handshake")
        .paired(key)
        .await
}

#[tokio::test]
async fn an_open_with_a_capability_of_the_wrong_length_ends_the_connection() {
    let (_sd, core, seeder, addr) = seeder(Limits::default()).await;
    for len in [31, 33, 4000] {
        let mut peer = Hostile::dial(addr).await.expect("handshake");
        let open = on(
            1,
            Body::Open(Open {
                discovery_key: vec![9; 32],
                capability: vec![0; len],
            }),
        );
        peer.send(&[open]).await.expect("send");
        assert!(
            peer.closed_within(Duration::from_secs(3)).await,
            "a {len}-byte capability must end the connection"
        );
    }
    // 32 bytes for a core the seeder lacks: held (bounded), not an error.
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    let open = on(
        1,
        Body::Open(Open {
            discovery_key: vec![9; 32],
            capability: vec![0; 32],
        }),
    );
    peer.send(&[open]).await.expect("send");
    assert!(!peer.closed_within(Duration::from_millis(300)).await);
    assert_eq!(seeder.resources().await.held_opens, 1);
    assert_eq!(honest_get(&core, addr).await.expect("served"), b"block 7");
}

#[tokio::test]
async fn a_large_frame_before_any_pairing_is_refused_and_after_it_accepted() {
    let (_sd, core, seeder, addr) = seeder(Limits::default()).await;
    // Unpaired: the announced length alone ends the connection (before,
    // the seeder waited holding up to 8 MiB for the rest).
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    let mut start = Vec::new();
    prost::encoding::encode_varint(1 << 20, &mut start);
    start.extend_from_slice(&[0x08, 0x01]);
    peer.send_plain(&start).await.expect("send");
    assert!(
        peer.closed_within(Duration::from_secs(3)).await,
        "a 1 MiB frame from a peer that proved nothing must be refused"
    );
    // Paired (the peer proved the key): a 1 MiB extension goes through.
    let mut extensions = seeder.extensions();
    let mut peer = paired(addr, &core.key()).await;
    let big = on(
        1,
        Body::Extension(Extension {
            name: "big".into(),
            message: vec![5; 1 << 20],
        }),
    );
    peer.send(&[big]).await.expect("send");
    let got = tokio::time::timeout(Duration::from_secs(5), extensions.recv())
        .await
        .expect("delivered")
        .expect("message");
    assert_eq!(got.message.len(), 1 << 20);
}

#[tokio::test]
async fn a_peer_that_asks_and_never_reads_stays_bounded_and_is_dropped() {
    // 64 KiB blocks: 400 requests would queue 26 MB of answers.
    let (_dir, store) = common::eventual_store();
    let core = store.create_core().expect("core");
    let block = vec![1u8; 64 << 10];
    core.append_batch(&vec![block.as_slice(); 16])
        .expect("append");
    let limits = Limits {
        max_backlog: 1 << 20,
        backlog_timeout: Duration::from_millis(800),
        ..Limits::default()
    };
    let seeder = Replication::new(
        store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            limits,
            config: Config {
                max_queued_requests: 1000,
                ..Config::default()
            },
            ..ReplicationOptions::default()
        },
    );
    seeder.add_core(&core);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&seeder, listener);
    let mut peer = paired(addr, &core.key()).await;
    let requests: Vec<Message> = (0..400u64)
        .map(|id| {
            on(
                1,
                Body::Request(Request {
                    id,
                    block: Some(NodeRequest {
                        index: id % 16,
                        nodes: 0,
                    }),
                    ..Request::default()
                }),
            )
        })
        .collect();
    peer.send(&requests).await.expect("requests");
    // Then Wants, answered like requests: not while it does not read.
    let wants: Vec<Message> = (0..500u64)
        .map(|i| {
            on(
                1,
                Body::Want(Want {
                    start: i % 16,
                    length: 1,
                }),
            )
        })
        .collect();
    peer.send(&wants).await.expect("wants");
    let mut largest = 0;
    let mut queued = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(600) {
        let r = seeder.resources().await;
        largest = largest.max(r.backlog_bytes);
        queued = queued.max(r.queued_requests);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        largest <= (1 << 20) + (128 << 10),
        "backlog {largest} bytes past the 1 MiB bound"
    );
    assert!(queued <= 1000, "{queued} requests queued");
    // It never reads: dropped once its backlog stayed over the bound.
    let mut dropped = false;
    for _ in 0..100 {
        if seeder.resources().await.connections == 0 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dropped, "a peer that never reads must be dropped");
    let r = seeder.resources().await;
    assert_eq!((r.backlog_bytes, r.queued_requests), (0, 0));
}

#[tokio::test]
async fn bitfields_are_bounded_in_runs_and_ranges() {
    let (_sd, core, _seeder, addr) = seeder(Limits::default()).await;
    let mut peer = paired(addr, &core.key()).await;
    // Many full-size bitfields of alternating runs: the seeder keeps what
    // fits its bound and goes on serving.
    for round in 0..8u64 {
        let bitfield = on(
            1,
            Body::Bitfield(Bitfield {
                start: round << 20,
                runs: vec![1; 16_384],
            }),
        );
        peer.send(&[bitfield]).await.expect("send");
    }
    let request = on(
        1,
        Body::Request(Request {
            id: 1,
            block: Some(NodeRequest { index: 3, nodes: 0 }),
            ..Request::default()
        }),
    );
    peer.send(&[request]).await.expect("send");
    let mut answered = false;
    while let Some(m) = peer.recv(Duration::from_secs(5)).await {
        if matches!(m.body, Some(Body::Data(ref d)) if d.request == 1) {
            answered = true;
            break;
        }
    }
    assert!(answered, "still served");
    // One bitfield of more runs than any honest sender puts in one.
    let bitfield = on(
        1,
        Body::Bitfield(Bitfield {
            start: 0,
            runs: vec![1; 20_000],
        }),
    );
    peer.send(&[bitfield]).await.expect("send");
    assert!(peer.closed_within(Duration::from_secs(3)).await);
}

/// A seeder of every core of a store of `cores` cores (`all_cores`).
async fn all_cores_seeder(cores: usize) -> (tempfile::TempDir, Vec<Core>, Replication, SocketAddr) {
    let (dir, store) = common::eventual_store();
    let made: Vec<Core> = (0..cores)
        .map(|i| {
            let core = store.create_core().expect("core");
            core.append_batch(&[format!("core {i}").into_bytes()])
                .expect("append");
            core
        })
        .collect();
    let seeder = common::all_cores(&store);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&seeder, listener);
    (dir, made, seeder, addr)
}

/// The `Open`s among what the peer sends within `wait`.
async fn opens_within(peer: &mut Hostile, wait: Duration) -> Vec<Open> {
    let mut opens = Vec::new();
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match peer.recv(left).await {
            Some(Message {
                body: Some(Body::Open(open)),
                ..
            }) => opens.push(open),
            Some(_) => {}
            None => break,
        }
    }
    opens
}

#[tokio::test]
async fn an_all_cores_seeder_tells_an_unproven_peer_no_discovery_key() {
    let (_sd, cores, _seeder, addr) = all_cores_seeder(3).await;
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    assert!(
        opens_within(&mut peer, Duration::from_millis(500))
            .await
            .is_empty(),
        "the seeder opened cores before the peer proved anything"
    );
    // The right discovery key with a forged capability: still nothing.
    let forged = on(
        1,
        Body::Open(Open {
            discovery_key: cores[1].key().discovery_key().0.to_vec(),
            capability: vec![7; 32],
        }),
    );
    peer.send(&[forged]).await.expect("send");
    assert!(
        opens_within(&mut peer, Duration::from_millis(500))
            .await
            .is_empty()
    );
    // Proven: exactly that core is opened in answer.
    peer.send(&[peer.open(2, &cores[0].key())])
        .await
        .expect("send");
    let opens = opens_within(&mut peer, Duration::from_millis(800)).await;
    assert_eq!(opens.len(), 1, "{opens:?}");
    assert_eq!(
        opens[0].discovery_key,
        cores[0].key().discovery_key().0.to_vec()
    );
    assert_eq!(
        honest_get_at(&cores[2], addr, 0).await.expect("served"),
        b"core 2"
    );
}

#[tokio::test]
async fn unknown_discovery_keys_are_answered_from_a_map_not_a_scan() {
    let (_sd, cores, seeder, addr) = all_cores_seeder(300).await;
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    // 1,500 opens for cores the seeder lacks (each one listed the whole
    // store before), then one for a core it has.
    let mut opens: Vec<Message> = (0..1500u32)
        .map(|i| {
            let mut dk = [0u8; 32];
            dk[..4].copy_from_slice(&i.to_le_bytes());
            on(
                i + 10,
                Body::Open(Open {
                    discovery_key: dk.to_vec(),
                    capability: vec![0; 32],
                }),
            )
        })
        .collect();
    opens.push(peer.open(1, &cores[123].key()));
    let started = Instant::now();
    peer.send(&opens).await.expect("send");
    let answer = loop {
        match peer.recv(Duration::from_secs(20)).await {
            Some(Message {
                body: Some(Body::Open(open)),
                ..
            }) => break open,
            Some(_) => {}
            None => panic!("never answered"),
        }
    };
    let took = started.elapsed();
    assert_eq!(
        answer.discovery_key,
        cores[123].key().discovery_key().0.to_vec()
    );
    // A listing of 300 cores per unknown key took seconds for these.
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    assert!(seeder.resources().await.held_opens <= hyper_wire::MAX_PENDING_OPENS);
}

#[tokio::test]
async fn a_reply_with_a_part_nobody_asked_for_is_refused() {
    let (_wd, _ws, wc) = common::writer(50);
    // Honest answers, except that each block proof also carries a (valid)
    // hash part nobody asked for: the channel a forged split of sibling
    // sizes would ride in.
    let liar = altering_server(wc.clone(), |asked| {
        if asked.block.is_some() {
            asked.hash = Some(hyper_core::NodeRequest { index: 1, nodes: 0 });
        }
        true
    })
    .await;
    let (_rd, rs) = common::eventual_store();
    let reader = replication(&rs, Limits::default());
    let replica = rs.replica(&wc.key()).expect("replica");
    reader.add_core(&replica);
    let connection = connect_tcp(&reader, liar).await.expect("connect");
    let get = reader.get(&replica, 5, Duration::from_secs(3));
    let (ended, got) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), connection.closed()),
        get
    );
    let ended = ended.expect("the liar must be dropped");
    assert!(matches!(ended, Err(Error::Malformed(_))), "{ended:?}");
    assert!(got.is_err(), "nothing from the liar is stored");
    assert!(!replica.has(5).expect("has"));
    // An honest seeder serves the block afterwards.
    let honest = replication(&_ws, Limits::default());
    honest.add_core(&wc);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&honest, listener);
    let _c = connect_tcp(&reader, addr).await.expect("connect");
    let block = reader
        .get(&replica, 5, Duration::from_secs(5))
        .await
        .expect("served");
    assert_eq!(block, b"block 5");
}

#[tokio::test]
async fn a_core_made_after_the_last_listing_is_served_at_the_next() {
    let (_sd, store) = common::eventual_store();
    let seeder = common::all_cores(&store);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    serve_tcp(&seeder, listener);
    // The driver has started (and listed the store).
    assert!(seeder.peers().await.is_empty());
    // Made in the store after the seeder listed it (at start), and asked
    // for before the next listing is due: the open is held, then answered
    // at that listing, not left unanswered for good.
    let late = store.create_core().expect("core");
    late.append_batch(&[b"late".as_slice()]).expect("append");
    let (_rd, rs) = common::eventual_store();
    let reader = replication(&rs, Limits::default());
    let replica = rs.replica(&late.key()).expect("replica");
    reader.add_core(&replica);
    let _c = connect_tcp(&reader, addr).await.expect("connect");
    let started = Instant::now();
    let block = reader
        .get(&replica, 0, Duration::from_secs(15))
        .await
        .expect("served once the store is listed again");
    assert_eq!(block, b"late");
    assert!(started.elapsed() < Duration::from_secs(12));
}
