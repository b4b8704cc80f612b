//! A replica that holds only a bee's key reads 100 random keys of a
//! 100,000-key bee over TCP on loopback, fetching only the blocks its
//! lookups walk: fewer than 5% of the core's blocks.

use std::time::Duration;

use hyper_bee::{Bee, Error, with_fetch};
use hyper_core::KeyPair;
use hyper_wire::{Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp};
use rand::{Rng, SeedableRng};

const KEYS: u32 = 100_000;

use hyper_tests::{eventual_store as store, scrambled_key as key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_reads_100_keys_through_few_blocks() {
    let (wd, rd) = (
        tempfile::tempdir().expect("w"),
        tempfile::tempdir().expect("r"),
    );
    let writer_store = store(wd.path());
    let bee = Bee::open(writer_store.named("bee").expect("core")).expect("bee");
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        let mut batch = bee.batch();
        for &i in chunk {
            batch.put(&key(i), format!("value {i}").as_bytes());
        }
        batch.commit().expect("batch");
    }
    let length = bee.version().expect("version");
    let key_of_core = bee.core().key();

    let seeder = Replication::new(
        writer_store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions {
            all_cores: true,
            ..ReplicationOptions::default()
        },
    );
    let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
    let _server = serve_tcp(&seeder, listener);

    let reader_store = store(rd.path());
    let replica = reader_store.replica(&key_of_core).expect("replica");
    let reader = Replication::new(
        reader_store.clone(),
        KeyPair::generate().expect("keys"),
        ReplicationOptions::default(),
    );
    reader.add_core(&replica);
    let _conn = connect_tcp(&reader, addr).await.expect("connect");
    let timeout = Duration::from_secs(20);
    // The header first (this also learns the length), then open the bee.
    reader.get(&replica, 0, timeout).await.expect("header");
    let remote = Bee::open(replica.clone()).expect("a bee");
    assert_eq!(remote.version().expect("version"), length);

    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    for _ in 0..100 {
        let i = rng.random_range(0..KEYS);
        let got = with_fetch(
            || remote.get(&key(i)),
            |seq| {
                let (reader, replica) = (reader.clone(), replica.clone());
                async move { reader.get(&replica, seq, timeout).await.map(|_| ()) }
            },
            |e| Error::Fetch(Box::new(e)),
        )
        .await
        .expect("get");
        assert_eq!(got, Some(format!("value {i}").into_bytes()));
    }
    let stored = replica.info().expect("info").blocks_stored;
    eprintln!("fetched {stored} of {length} blocks for 100 gets");
    assert!(
        stored * 20 < length,
        "fetched {stored} of {length} blocks (must be under 5%)"
    );
}
