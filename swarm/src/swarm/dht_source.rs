//! The DHT as a discovery source: per joined topic, announce this peer
//! (server) and look the topic up (client) on a schedule, on the DHT of
//! every family at once; every peer found becomes a [`Candidate`] (one
//! per key, whichever families found it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hyper_core::{KeyPair, PublicKey};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use super::candidate::{Candidate, Hint, Others};
use super::config::JoinOptions;
use super::families::Family;
use super::{Inner, LOOKUP_MAX, Swarm, lock, now_millis};
use crate::codec::address;
use crate::dht::Dht;
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

/// One family's side of a topic's announcements.
struct Announcing {
    family: Family,
    /// The nodes that stored the last announcement.
    holders: Vec<SocketAddr>,
    next_announce: Instant,
    /// Tried once (stored or not) since the loop started.
    tried: bool,
}

/// Announces (as `identity`) and/or looks up `topic` on every running DHT
/// until aborted; with `only`, dials only that key's records.
pub(super) async fn topic_loop(
    weak: std::sync::Weak<Inner>,
    topic: [u8; 32],
    options: JoinOptions,
    only: Option<PublicKey>,
    identity: KeyPair,
    flushed: watch::Sender<bool>,
) {
    let mut next_lookup = Instant::now();
    let mut lookup_every = LOOKUP_FIRST;
    let mut next_keep_alive = Instant::now() + KEEP_ALIVE;
    let mut stored_once = !options.server;
    let mut looked_up = !options.client;
    let Some((mut lost, mut moved, mut families)) = weak.upgrade().map(|inner| {
        let families: Vec<Announcing> = inner
            .dhts
            .iter()
            .map(|(family, _)| Announcing {
                family,
                holders: Vec::new(),
                next_announce: Instant::now(),
                tried: !options.server,
            })
            .collect();
        (inner.lost.subscribe(), inner.moved.subscribe(), families)
    }) else {
        return;
    };
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let swarm = Swarm { inner };
        let now = Instant::now();
        if options.server && families.iter().any(|f| now >= f.next_announce) {
            let due: Vec<Family> = families
                .iter()
                .filter(|f| now >= f.next_announce)
                .map(|f| f.family)
                .collect();
            let outcomes = swarm
                .inner
                .dhts
                .each(|family, dht| {
                    let (swarm, identity) = (&swarm, &identity);
                    let due = due.contains(&family);
                    async move {
                        match due {
                            true => Some(announce(swarm, &dht, topic, identity).await),
                            false => None,
                        }
                    }
                })
                .await;
            for (family, outcome) in outcomes {
                let Some(state) = families.iter_mut().find(|f| f.family == family) else {
                    continue;
                };
                let Some(outcome) = outcome else { continue };
                if let Ok(holders) = outcome {
                    state.holders = holders;
                }
                state.tried = true;
                state.next_announce = Instant::now()
                    + if state.holders.is_empty() {
                        LOOKUP_FIRST
                    } else {
                        REANNOUNCE
                    };
            }
            stored_once = stored_once || families.iter().any(|f| !f.holders.is_empty());
            swarm.announced_on(
                &topic,
                families
                    .iter()
                    .filter(|f| !f.holders.is_empty())
                    .map(|f| f.family)
                    .collect(),
            );
        }
        if options.server && now >= next_keep_alive {
            for holder in families.iter().flat_map(|f| &f.holders) {
                if let Some(dht) = swarm.inner.dhts.for_addr(holder) {
                    let _ = dht.keep_alive(*holder);
                }
            }
            next_keep_alive = now + KEEP_ALIVE;
        }
        if options.client && now >= next_lookup {
            look_up(&swarm, topic, only).await;
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
        if stored_once && families.iter().all(|f| f.tried) && looked_up {
            let _ = flushed.send(true);
        }
        let wake = families
            .iter()
            .filter(|_| options.server)
            .map(|f| f.next_announce)
            .chain(
                [
                    options.server.then_some(next_keep_alive),
                    options.client.then_some(next_lookup),
                ]
                .into_iter()
                .flatten(),
            )
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
                for family in &mut families {
                    family.next_announce = Instant::now();
                }
                next_lookup = Instant::now();
            }
        }
    }
}

/// One lookup of `topic` on every running DHT at once; the records are
/// merged by key as they arrive: the first record of a key is offered at
/// once, a later one of the same key (found on the other family) joins
/// that candidate as the next way to try if the first fails.
async fn look_up(swarm: &Swarm, topic: [u8; 32], only: Option<PublicKey>) {
    let mut found = swarm.inner.dhts.lookup(topic);
    let mut offered: HashMap<PublicKey, Others> = HashMap::new();
    while let Some(record) = found.recv().await {
        if only.is_some_and(|key| key != record.public_key) {
            continue;
        }
        match offered.get(&record.public_key) {
            Some(others) => lock(others).push(record),
            None => {
                let candidate = Candidate::from_dht(record);
                if let Hint::Dht { others, found } = &candidate.hint {
                    offered.insert(found.public_key, others.clone());
                }
                swarm.offer(candidate);
            }
        }
    }
}

/// Announces this peer under `topic` as `identity` on `dht`; the nodes
/// that stored it.
async fn announce(
    swarm: &Swarm,
    dht: &Dht,
    topic: [u8; 32],
    identity: &KeyPair,
) -> Result<Vec<SocketAddr>> {
    dht.bootstrapped().await?;
    let status = dht.status().await?; // The listening endpoint proves the swarm's key: a topic with its own
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
    let outcome = dht
        .query(QueryKind::Announce {
            topic,
            record: signed,
        })
        .await?;
    Ok(outcome.stored_at)
}
