//! An identity per topic (privacy) over real UDP sockets on loopback: a
//! seeder with `identity_per_topic` announces each topic under its own key
//! (derived from its seed, not its swarm key), a reader looking each topic
//! up connects to that key and replicates the topic's core, and leaving a
//! topic removes the record signed by its identity. Without the option one
//! key names both topics.

use std::collections::HashSet;

use hyper_core::{KeyPair, PublicKey};
use hyper_swarm::{Family, Swarm, SwarmConfig, topic_identity};
use hyper_wire::{Replication, ReplicationOptions};

mod common;
use common::{CLIENT, announced, bootstrap_node, dht_only, next_connection, random_topic};

/// The keys of the records `swarm`'s IPv4 DHT finds under `topic`.
async fn announced_keys(swarm: &Swarm, topic: [u8; 32]) -> HashSet<PublicKey> {
    common::found_keys(swarm, Family::V4, topic).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_with_their_own_identities_announce_two_keys_and_replicate() {
    let boot = bootstrap_node().await;
    let (_wd, writer_store, first, first_blocks) = common::writer_core(300);
    let second = writer_store.create_core().expect("core");
    let second_blocks: Vec<Vec<u8>> = (0..200u32).map(|i| i.to_be_bytes().repeat(32)).collect();
    second.append_batch(&second_blocks).expect("append");
    let topics = [
        first.key().discovery_key().0,
        second.key().discovery_key().0,
    ];

    let seeder_keys = KeyPair::generate().expect("keys");
    let seeder = Swarm::new(SwarmConfig {
        identity_per_topic: true,
        ..dht_only(seeder_keys.clone(), vec![boot.local_addr()])
    })
    .await
    .expect("seeder");
    let seeding = Replication::new(
        writer_store.clone(),
        seeder_keys.clone(),
        ReplicationOptions::default(),
    );
    seeding.add_core(&first);
    seeding.add_core(&second);
    seeder.replicate(seeding).expect("connections");
    for topic in topics {
        announced(&seeder, topic).await;
    }

    let (_rd, reader_store) = common::store();
    let reader_keys = KeyPair::generate().expect("keys");
    let reader = Swarm::new(dht_only(reader_keys.clone(), vec![boot.local_addr()]))
        .await
        .expect("reader");
    let mut identities = Vec::new();
    for topic in topics {
        let keys = announced_keys(&reader, topic).await;
        let expected = topic_identity(&seeder_keys, &topic).public_key();
        assert_eq!(
            keys,
            HashSet::from([expected]),
            "one record, the topic's key"
        );
        assert_eq!(seeder.topic_key(&topic), expected);
        identities.push(expected);
    }
    assert_ne!(identities[0], identities[1], "two topics, two keys");
    assert!(
        !identities.contains(&seeder.public_key()),
        "the swarm's own key is never announced"
    );

    // The reader dials each topic's key and replicates that topic's core
    // over the connection that proved it.
    let mut connections = reader.connections().expect("connections");
    for topic in topics {
        reader.join(topic, CLIENT);
    }
    let mut replicating = Vec::new();
    for _ in 0..2 {
        let connection = next_connection(&mut connections).await;
        let (core, blocks) = if connection.remote == identities[0] {
            (first.key(), &first_blocks)
        } else {
            assert_eq!(connection.remote, identities[1], "a topic identity");
            (second.key(), &second_blocks)
        };
        assert_eq!(connection.local, reader.public_key());
        replicating.push(
            common::download_checked(
                connection,
                &reader_store,
                reader_keys.clone(),
                &core,
                blocks,
            )
            .await,
        );
    }
    let peers: HashSet<PublicKey> = reader.peers().into_iter().collect();
    assert_eq!(peers, identities.iter().copied().collect());
    // The seeder keeps one connection to the reader per identity.
    assert!(
        common::eventually(std::time::Duration::from_secs(5), async || {
            seeder.peer_status().len() == 2
        })
        .await,
        "two connections: {:?}",
        seeder.peer_status()
    );
    assert_eq!(seeder.peers(), vec![reader.public_key()]);

    // Leaving unannounces with the topic's identity.
    seeder.leave(topics[0]).await.expect("leave");
    assert!(announced_keys(&reader, topics[0]).await.is_empty());
    assert_eq!(announced_keys(&reader, topics[1]).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_option_one_key_names_every_topic_and_join_with_names_its_own() {
    let boot = bootstrap_node().await;
    let seeder = Swarm::new(dht_only(
        KeyPair::generate().expect("keys"),
        vec![boot.local_addr()],
    ))
    .await
    .expect("seeder");
    let (one, two, three) = (random_topic(), random_topic(), random_topic());
    announced(&seeder, one).await;
    announced(&seeder, two).await;
    let own = KeyPair::generate().expect("keys");
    seeder.join_with(three, common::SERVER, own.clone());
    common::flushed(&seeder).await;
    let key = HashSet::from([seeder.public_key()]);
    assert_eq!(announced_keys(&seeder, one).await, key);
    assert_eq!(announced_keys(&seeder, two).await, key);
    assert_eq!(
        announced_keys(&seeder, three).await,
        HashSet::from([own.public_key()])
    );
    assert_eq!(seeder.topic_key(&one), seeder.public_key());
}

#[test]
fn a_topic_identity_is_fixed_by_the_seed_and_the_topic() {
    let keys = KeyPair::from_seed([1; 32]);
    let one = topic_identity(&keys, &[2; 32]).public_key();
    // Pinned: a change would give every seeder new identities on upgrade.
    assert_eq!(
        one.to_string(),
        "c06d392c03100c3c9f9046f470da07fe4ab6fcaff2719d40b8ae60c7a729724e"
    );
    assert_eq!(
        topic_identity(&KeyPair::from_seed([1; 32]), &[2; 32]).public_key(),
        one
    );
    assert_ne!(topic_identity(&keys, &[3; 32]).public_key(), one);
    assert_ne!(
        topic_identity(&KeyPair::from_seed([4; 32]), &[2; 32]).public_key(),
        one
    );
    assert_ne!(one, keys.public_key());
}
