//! Hostile peers over real TCP against a real `Replication`: peers that
//! never speak, stall inside a frame, flood, or never read. Each test
//! asserts the limit that holds (a deadline, a cap, a bound in bytes) and
//! that an honest peer is still served.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::hostile::{Hostile, closed_within, silent_server, stalling_server};
use hyper_core::{Core, KeyPair, Store};
use hyper_wire::{
    Error, Limits, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
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
    let (_dir, store) = common::eventual_store();
    let reader = replication(&store, Limits::default());
    let replica = store.replica(&core.key()).expect("replica");
    reader.add_core(&replica);
    let _connection = connect_tcp(&reader, addr).await?;
    reader.get(&replica, 7, Duration::from_secs(5)).await
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
    let (addr, _server) = stalling_server(1 << 20).await;
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
