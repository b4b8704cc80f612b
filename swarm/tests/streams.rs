//! Application streams beside replication on one connection: while a core
//! replicates over a swarm connection, each side opens a named stream to
//! the other and they talk; a stream to a peer not connected is refused.

use std::time::Duration;

use hyper_core::KeyPair;
use hyper_swarm::{Error, Swarm, SwarmConfig};
use hyper_wire::{Replication, ReplicationOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

mod common;
use common::{CLIENT, SERVER, download_checked, next_connection, store, writer_core};

fn local(keys: KeyPair) -> SwarmConfig {
    SwarmConfig {
        dht: false,
        ..SwarmConfig::new(keys, Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_streams_run_beside_replication_on_one_connection() {
    let (_wd, writer_store, core, blocks) = writer_core(300);
    let topic = core.key().discovery_key().0;
    let seeder_keys = KeyPair::generate().expect("keys");
    let seeder = Swarm::new(local(seeder_keys.clone()))
        .await
        .expect("seeder");
    let mut seeder_streams = seeder.streams().expect("streams");
    assert!(seeder.streams().is_none(), "only the first caller");
    let seeding = Replication::new(writer_store, seeder_keys, ReplicationOptions::default());
    seeding.add_core(&core);
    seeder.replicate(seeding).expect("connections");
    seeder.join(topic, SERVER);

    let reader_keys = KeyPair::generate().expect("keys");
    let reader = Swarm::new(local(reader_keys.clone()))
        .await
        .expect("reader");
    let mut reader_streams = reader.streams().expect("streams");
    let mut incoming = reader.connections().expect("connections");
    reader.join(topic, CLIENT);
    let connection = next_connection(&mut incoming).await;
    assert_eq!(connection.remote, seeder.public_key());

    // The reader opens "chat" while the replication starts on the same
    // connection.
    let mut chat = reader
        .open_stream(&seeder.public_key(), "chat")
        .await
        .expect("open chat");
    chat.write_all(b"ping").await.expect("write");
    let (_rd, reader_store) = store();
    let replicating =
        download_checked(connection, &reader_store, reader_keys, &core.key(), &blocks).await;

    let mut opened = timeout(Duration::from_secs(10), seeder_streams.recv())
        .await
        .expect("stream in time")
        .expect("a stream");
    assert_eq!(opened.remote, reader.public_key());
    assert_eq!(opened.name, "chat");
    let mut ping = [0u8; 4];
    opened.stream.read_exact(&mut ping).await.expect("read");
    assert_eq!(&ping, b"ping");
    opened.stream.write_all(b"pong").await.expect("write");
    let mut pong = [0u8; 4];
    chat.read_exact(&mut pong).await.expect("read");
    assert_eq!(&pong, b"pong");

    // The other way: the seeder opens one to the reader.
    let mut back = seeder
        .open_stream(&reader.public_key(), "status/v1")
        .await
        .expect("open back");
    back.write_all(b"ok").await.expect("write");
    back.shutdown().await.expect("finish");
    let mut got = timeout(Duration::from_secs(10), reader_streams.recv())
        .await
        .expect("stream in time")
        .expect("a stream");
    assert_eq!(got.name, "status/v1");
    let mut body = Vec::new();
    got.stream.read_to_end(&mut body).await.expect("read");
    assert_eq!(body, b"ok");
    assert!(!replicating.is_finished(), "replication still runs");

    let stranger = KeyPair::generate().expect("keys").public_key();
    match reader.open_stream(&stranger, "chat").await {
        Err(Error::NotConnected(key)) => assert_eq!(key, stranger),
        other => panic!("expected NotConnected, got {:?}", other.err()),
    }
}
