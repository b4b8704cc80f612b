//! Connect by key across the NAT lab (`common/netlab.rs`): one swarm
//! listens on its own identity ([`Swarm::listen`]) behind one kind of NAT,
//! another behind another kind dials it by its key alone
//! ([`Swarm::join_peer`], no topic), the connection is made the way the
//! hole-punching matrix in `nat.rs` says it must be (directly, or through
//! the relay when both NATs are symmetric), and a MiB moves over it both
//! ways. The DHT bootstrap and relay nodes are real `hyper-cli dht node`
//! processes; the swarms run in-process on threads inside their hosts'
//! namespaces. Runs as root (CI); skips elsewhere unless
//! `HYPER_NAT_LAB=required`. Namespaces are named `hnet<pid>-...`.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use hyper_swarm::{Path, PeerConnection, Swarm, SwarmConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

mod common;

use common::lab_process::dht_node;
use common::netlab::{self, Host, Lab, Nat};

/// Bytes the dialler sends; the listener answers with their BLAKE3 hash
/// and sends as many back.
const PAYLOAD: usize = 1 << 20;
/// The dialler gives up on the connection after this.
const CONNECT_WITHIN: Duration = Duration::from_secs(45);

/// Where a peer sits.
#[derive(Clone, Copy, Debug)]
enum Place {
    Public,
    Behind(Nat),
}

/// A swarm config for the lab: the DHT only (no multicast DNS, so the
/// path cannot be a local one).
fn config(bootstrap: &[SocketAddr]) -> SwarmConfig {
    SwarmConfig {
        local: false,
        ..SwarmConfig::new(KeyPair::generate().expect("keys"), bootstrap.to_vec())
    }
}

/// Runs `f` on a two-worker tokio runtime inside `host`'s namespace.
fn in_host<T: Send + 'static>(
    host: &Host,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    host.run(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f())
    })
}

/// `PAYLOAD` bytes that are not all alike.
fn payload(seed: u8) -> Vec<u8> {
    (0..PAYLOAD)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Both directions over one connection: `PAYLOAD` bytes out, `PAYLOAD`
/// bytes in, then each side's hash of what it received. The hash the
/// other side computed of what this side sent.
async fn exchange(connection: &mut PeerConnection, send: &[u8]) -> ([u8; 32], Vec<u8>) {
    let stream = &mut connection.stream;
    let (mut reader, mut writer) = tokio::io::split(stream);
    let out = async {
        writer.write_all(send).await.expect("send the payload");
        writer.flush().await.expect("flush");
    };
    let mut received = vec![0u8; PAYLOAD];
    let inn = async {
        reader
            .read_exact(&mut received)
            .await
            .expect("receive the payload");
    };
    tokio::join!(out, inn);
    let hash = *blake3::hash(&received).as_bytes();
    writer.write_all(&hash).await.expect("send the hash");
    writer.flush().await.expect("flush");
    let mut theirs = [0u8; 32];
    reader.read_exact(&mut theirs).await.expect("their hash");
    (theirs, received)
}

/// What one side saw: the peer's key, the path, the hash the peer took of
/// what this side sent, and what this side received.
type Seen = (PublicKey, Path, [u8; 32], Vec<u8>);

/// Both sides say when they have everything and keep their swarm (and so
/// the connection) until the other has too.
struct Done {
    mine: mpsc::Sender<()>,
    theirs: mpsc::Receiver<()>,
}

impl Done {
    /// A pair, one for each side.
    fn pair() -> (Done, Done) {
        let (a_tx, a_rx) = mpsc::channel();
        let (b_tx, b_rx) = mpsc::channel();
        (
            Done {
                mine: a_tx,
                theirs: b_rx,
            },
            Done {
                mine: b_tx,
                theirs: a_rx,
            },
        )
    }

    async fn finish(self) {
        let _ = self.mine.send(());
        let theirs = self.theirs;
        let _ =
            tokio::task::spawn_blocking(move || theirs.recv_timeout(Duration::from_secs(30))).await;
    }
}

/// The listener: listens on its identity, reports its key, takes the
/// first connection and exchanges data over it.
async fn listener(bootstrap: Vec<SocketAddr>, key: mpsc::Sender<PublicKey>, done: Done) -> Seen {
    let swarm = Swarm::new(config(&bootstrap))
        .await
        .expect("listener swarm");
    let mut incoming = swarm.connections().expect("connections");
    swarm.listen();
    timeout(Duration::from_secs(30), swarm.flush())
        .await
        .expect("the listener announced in time")
        .expect("flush");
    key.send(swarm.public_key()).expect("report the key");
    let mut connection = timeout(CONNECT_WITHIN, incoming.recv())
        .await
        .expect("a connection in time")
        .expect("a connection");
    let (hash, received) = exchange(&mut connection, &payload(2)).await;
    done.finish().await;
    (connection.remote, connection.path, hash, received)
}

/// The dialler: keeps a connection to `key` by key alone and exchanges
/// data over it.
async fn dialler(bootstrap: Vec<SocketAddr>, key: PublicKey, done: Done) -> (PublicKey, Seen) {
    let swarm = Swarm::new(config(&bootstrap)).await.expect("dialler swarm");
    let mut outgoing = swarm.connections().expect("connections");
    swarm.join_peer(key);
    let mut connection = timeout(CONNECT_WITHIN, outgoing.recv())
        .await
        .expect("connected by key in time")
        .expect("a connection");
    let (hash, received) = exchange(&mut connection, &payload(1)).await;
    done.finish().await;
    (
        swarm.public_key(),
        (connection.remote, connection.path, hash, received),
    )
}

/// A listener at `listening`, a dialler at `dialling`: connected by key
/// along `expected`, with the data intact both ways.
fn by_key(listening: Place, dialling: Place, expected: Path) {
    let Some(mut lab) = netlab::lab_or_skip_with("hnet") else {
        return;
    };
    let boot = lab.public_host("boot").expect("boot host");
    let relay = lab.public_host("relay").expect("relay host");
    let host = |lab: &mut Lab, label: &str, place: Place| match place {
        Place::Public => lab.public_host(label),
        Place::Behind(nat) => lab.nat_host(label, nat),
    };
    let listen_host = host(&mut lab, "listen", listening).expect("listener host");
    let dial_host = host(&mut lab, "dial", dialling).expect("dialler host");
    let boot_addr: SocketAddr = format!("{}:49737", boot.ip).parse().expect("addr");
    let relay_addr: SocketAddr = format!("{}:49737", relay.ip).parse().expect("addr");
    let _boot = dht_node(&boot, &boot_addr.to_string(), None);
    let _relay = dht_node(
        &relay,
        &relay_addr.to_string(),
        Some(&boot_addr.to_string()),
    );
    let bootstrap = vec![boot_addr, relay_addr];

    let (key_tx, key_rx) = mpsc::channel();
    let (listener_done, dialler_done) = Done::pair();
    let given = bootstrap.clone();
    let listening_thread = in_host(&listen_host, async move || {
        listener(given, key_tx, listener_done).await
    });
    let key = key_rx
        .recv_timeout(Duration::from_secs(40))
        .expect("the listener's key");
    let dialling_thread = in_host(&dial_host, async move || {
        dialler(bootstrap, key, dialler_done).await
    });
    let (dialler_key, (remote, path, hash_of_sent, received)) =
        dialling_thread.join().expect("the dialler");
    let (listener_remote, listener_path, listener_hash_of_sent, listener_received) =
        listening_thread.join().expect("the listener");

    eprintln!("{listening:?} listening, {dialling:?} dialling by key: {path:?}");
    assert_eq!(remote, key, "the dialler reached another key");
    assert_eq!(
        listener_remote, dialler_key,
        "the listener took another key"
    );
    assert_eq!(
        path, expected,
        "{listening:?} <- {dialling:?}: dialler's path"
    );
    assert_eq!(
        listener_path, expected,
        "{listening:?} <- {dialling:?}: listener's path"
    );
    assert!(received == payload(2), "the dialler received other bytes");
    assert!(
        listener_received == payload(1),
        "the listener received other bytes"
    );
    assert_eq!(hash_of_sent, *blake3::hash(&payload(1)).as_bytes());
    assert_eq!(listener_hash_of_sent, *blake3::hash(&payload(2)).as_bytes());
}

#[test]
fn by_key_cone_to_cone_connects_directly() {
    by_key(
        Place::Behind(Nat::Cone),
        Place::Behind(Nat::Cone),
        Path::Direct,
    );
}

#[test]
fn by_key_public_listener_cone_dialler_connects_directly() {
    by_key(Place::Public, Place::Behind(Nat::Cone), Path::Direct);
}

#[test]
fn by_key_cone_listener_public_dialler_connects_directly() {
    by_key(Place::Behind(Nat::Cone), Place::Public, Path::Direct);
}

#[test]
fn by_key_cone_listener_symmetric_dialler_connects_directly() {
    by_key(
        Place::Behind(Nat::Cone),
        Place::Behind(Nat::Symmetric),
        Path::Direct,
    );
}

#[test]
fn by_key_symmetric_listener_cone_dialler_connects_directly() {
    by_key(
        Place::Behind(Nat::Symmetric),
        Place::Behind(Nat::Cone),
        Path::Direct,
    );
}

#[test]
fn by_key_symmetric_to_symmetric_goes_through_the_relay() {
    by_key(
        Place::Behind(Nat::Symmetric),
        Place::Behind(Nat::Symmetric),
        Path::Relay,
    );
}
