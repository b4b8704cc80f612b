//! Lifecycle over real TCP, watched by a hostile peer on the other end:
//! closing a connection, stopping one core on every connection, closing a
//! replication, and dropping every handle all end what they should (the
//! peer sees the socket close, the runtime's tasks go away).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::hostile::Hostile;
use hyper_core::{Core, CoreKey, Store};
use hyper_wire::messages::{Body, Message, NodeRequest, Request};
use hyper_wire::{Error, Replication, connect_tcp, listen_tcp, serve_tcp};

fn request(channel: u32, id: u64) -> Message {
    Message {
        channel,
        body: Some(Body::Request(Request {
            id,
            block: Some(NodeRequest { index: 1, nodes: 0 }),
            ..Request::default()
        })),
    }
}

/// Pairs `keys` on channels 1, 2, ... (waits for the seeder's `Sync` of
/// each).
async fn pair_all(peer: &mut Hostile, keys: &[CoreKey]) {
    let opens: Vec<Message> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| peer.open(i as u32 + 1, k))
        .collect();
    peer.send(&opens).await.expect("open");
    let mut syncs = 0;
    while syncs < keys.len() {
        let m = peer.recv(Duration::from_secs(5)).await.expect("paired");
        syncs += usize::from(matches!(m.body, Some(Body::Sync(_))));
    }
}

/// Waits for a message matching `want` (skipping others) for `wait`.
async fn expect(peer: &mut Hostile, wait: Duration, want: impl Fn(&Message) -> bool) -> bool {
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match peer.recv(left).await {
            Some(m) if want(&m) => return true,
            Some(_) => {}
            None => return false,
        }
    }
    false
}

async fn seeder_of(
    cores: &[&Core],
    store: &Store,
) -> (Replication, SocketAddr, tokio::task::JoinHandle<()>) {
    let seeder = common::replication(store);
    for core in cores {
        seeder.add_core(core);
    }
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let task = serve_tcp(&seeder, listener);
    (seeder, addr, task)
}

#[tokio::test]
async fn closing_a_connection_ends_it_on_both_ends() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let far = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.expect("accept");
        let mut peer = Hostile::handshake(socket, false).await.expect("handshake");
        peer.closed_within(Duration::from_secs(5)).await
    });
    let (_dir, store) = common::eventual_store();
    let reader = common::replication(&store);
    let connection = connect_tcp(&reader, addr).await.expect("connect");
    connection.close();
    let ended = tokio::time::timeout(Duration::from_secs(5), connection.closed())
        .await
        .expect("closed() returns");
    assert!(ended.is_ok(), "{ended:?}");
    assert!(
        far.await.expect("joined"),
        "the far end sees the socket close"
    );
    assert!(reader.peers().await.is_empty());
}

#[tokio::test]
async fn removing_a_core_closes_its_channel_on_every_connection() {
    let (_dir, store) = common::eventual_store();
    let a = store.create_core().expect("core");
    let b = store.create_core().expect("core");
    for core in [&a, &b] {
        core.append_batch(&[b"x".as_slice(), b"y".as_slice()])
            .expect("append");
    }
    let (seeder, addr, _task) = seeder_of(&[&a, &b], &store).await;
    let mut peers = Vec::new();
    for _ in 0..2 {
        let mut peer = Hostile::dial(addr).await.expect("handshake");
        pair_all(&mut peer, &[a.key(), b.key()]).await;
        peers.push(peer);
    }
    seeder.remove_core(&a);
    for peer in &mut peers {
        assert!(
            expect(peer, Duration::from_secs(3), |m| matches!(
                m.body,
                Some(Body::Close(_))
            ))
            .await,
            "each peer is told the core's channel closed"
        );
        // A request that crossed the close is ignored, not an error; the
        // other core is still served on the same connection.
        peer.send(&[request(1, 10), request(2, 11)])
            .await
            .expect("send");
        assert!(
            expect(peer, Duration::from_secs(3), |m| {
                matches!(&m.body, Some(Body::Data(d)) if d.request == 11)
            })
            .await
        );
    }
    assert_eq!(seeder.peers().await.len(), 2);
}

#[tokio::test]
async fn closing_a_replication_fails_its_gets_and_closes_its_sockets() {
    let (_wd, ws, wc) = common::writer(10);
    let (seeder, addr, _task) = seeder_of(&[&wc], &ws).await;
    let (_rd, rs) = common::eventual_store();
    let reader = common::replication(&rs);
    // A reader waiting for a block of a core nobody serves.
    let other = rs.replica(&CoreKey([9; 32])).expect("replica");
    let _c = connect_tcp(&reader, addr).await.expect("connect");
    while seeder.peers().await.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waiting = {
        let reader = reader.clone();
        tokio::spawn(async move { reader.get(&other, 0, Duration::from_secs(30)).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    reader.close();
    let got = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("the get ends")
        .expect("joined");
    assert!(matches!(got, Err(Error::Cancelled)), "{got:?}");
    // The socket closed: the seeder's end of it ends.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !seeder.peers().await.is_empty() {
        assert!(Instant::now() < deadline, "the seeder still has the peer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replica = rs.replica(&wc.key()).expect("replica");
    assert!(matches!(
        reader.get(&replica, 0, Duration::from_secs(1)).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn dropping_every_handle_ends_every_task() {
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = alive();
    let (_wd, ws, wc) = common::writer(10);
    let (seeder, addr, listener) = seeder_of(&[&wc], &ws).await;
    let mut peer = Hostile::dial(addr).await.expect("handshake");
    pair_all(&mut peer, &[wc.key()]).await;
    assert!(alive() > before);
    drop(seeder);
    listener.abort();
    assert!(
        peer.closed_within(Duration::from_secs(3)).await,
        "the peer's socket closes once no handle is left"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive() > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alive(), before, "no task is left running");
}
