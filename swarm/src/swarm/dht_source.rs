//! The DHT as a discovery source: per joined topic, announce this peer
//! (server) and look the topic up (client) on a schedule; every record
//! found becomes a [`Candidate`].

use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::candidate::Candidate;
use super::config::JoinOptions;
use super::{Inner, LOOKUP_MAX, Swarm, now_millis};
use crate::codec::address;
use crate::error::Result;
use crate::messages::PeerRecord;
use crate::query::QueryKind;
use crate::signing::sign_record;

/// Records live this long on DHT nodes; announcing again before then.
const REANNOUNCE: Duration = Duration::from_secs(10 * 60);
/// Pings to the nodes holding an announcement, under NAT mapping timeouts.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Lookups while no peer is connected start at this interval and double.
const LOOKUP_FIRST: Duration = Duration::from_secs(1);

/// Announces (as `identity`) and/or looks up `topic` until aborted; with
/// `only`, dials only that key's records.
pub(super) async fn topic_loop(
    weak: std::sync::Weak<Inner>,
    topic: [u8; 32],
    options: JoinOptions,
    only: Option<PublicKey>,
    identity: KeyPair,
    flushed: watch::Sender<bool>,
) {
    let mut holders: Vec<SocketAddr> = Vec::new();
    let mut next_announce = Instant::now();
    let mut next_lookup = Instant::now();
    let mut lookup_every = LOOKUP_FIRST;
    let mut next_keep_alive = Instant::now() + KEEP_ALIVE;
    let mut announced = !options.server;
    let mut looked_up = !options.client;
    let Some((mut lost, mut moved)) = weak
        .upgrade()
        .map(|inner| (inner.lost.subscribe(), inner.moved.subscribe()))
    else {
        return;
    };
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let swarm = Swarm { inner };
        let now = Instant::now();
        if options.server && now >= next_announce {
            if let Ok(outcome) = announce(&swarm, topic, &identity).await {
                holders = outcome;
                announced = !holders.is_empty() || announced;
            }
            next_announce = Instant::now()
                + if holders.is_empty() {
                    LOOKUP_FIRST
                } else {
                    REANNOUNCE
                };
        }
        if options.server && now >= next_keep_alive {
            for holder in &holders {
                let _ = swarm.inner.dht.keep_alive(*holder);
            }
            next_keep_alive = now + KEEP_ALIVE;
        }
        if options.client && now >= next_lookup {
            if let Ok((mut found, done)) = swarm.inner.dht.lookup(topic) {
                while let Some(record) = found.recv().await {
                    if only.is_none_or(|key| key == record.public_key) {
                        swarm.offer(Candidate::from_dht(record));
                    }
                }
                let _ = done.await;
            }
            looked_up = true;
            let peers = swarm.peers();
            let wanting = match only {
                Some(key) => !peers.contains(&key),
                None => peers.is_empty(),
            };
            lookup_every = if wanting {
                (lookup_every * 2).min(LOOKUP_MAX)
            } else {
                LOOKUP_MAX
            };
            next_lookup = Instant::now() + lookup_every;
        }
        if announced && looked_up {
            let _ = flushed.send(true);
        }
        let wake = [
            options.server.then_some(next_announce),
            options.server.then_some(next_keep_alive),
            options.client.then_some(next_lookup),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + LOOKUP_MAX);
        drop(swarm);
        let pause = sleep(
            wake.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50)),
        );
        tokio::select! {
            () = pause => {}
            Ok(()) = lost.changed() => {
                // A peer went away: look again soon, backing off anew.
                lookup_every = LOOKUP_FIRST;
                next_lookup = Instant::now() + LOOKUP_FIRST;
            }
            Ok(()) = moved.changed() => {
                // This host's addresses changed: announce the new ones and
                // look again now.
                lookup_every = LOOKUP_FIRST;
                next_announce = Instant::now();
                next_lookup = Instant::now();
            }
        }
    }
}

/// Announces this peer under `topic` as `identity`; the nodes that stored
/// it.
async fn announce(swarm: &Swarm, topic: [u8; 32], identity: &KeyPair) -> Result<Vec<SocketAddr>> {
    swarm.inner.dht.bootstrapped().await?;
    let status = swarm.inner.dht.status().await?;
    // The listening endpoint proves the swarm's key: a topic with its own
    // identity names no LAN address to dial there.
    let local_addresses = if identity.public_key() == swarm.public_key() {
        swarm.record_addresses()
    } else {
        Vec::new()
    };
    let record = PeerRecord {
        public_key: identity.public_key().0.to_vec(),
        addresses: status.public_address.into_iter().map(address).collect(),
        relays: status.relays.iter().map(|a| address(*a)).collect(),
        timestamp: now_millis(),
        local_addresses: local_addresses.into_iter().map(address).collect(),
    };
    let signed = sign_record(identity, &topic, &record);
    let outcome = swarm
        .inner
        .dht
        .query(QueryKind::Announce {
            topic,
            record: signed,
        })
        .await?;
    Ok(outcome.stored_at)
}
