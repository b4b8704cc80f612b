//! S3: connect time per NAT pair in the namespace lab (the lab of the CLI's
//! NAT tests, `cli/tests/common/netlab.rs`; needs root, else skipped with a
//! line on stderr). For each pair a bootstrap node and a relay node run on
//! the lab's internet, a seeder behind one NAT announces a one-block core,
//! and a reader behind the other joins the topic; the figure is the time
//! from the reader's `join` to the first block stored (lookup, connect
//! request, hole punching or relay registration, QUIC handshake, channel
//! open, one request). The lab's links have no latency, so the figures are
//! the fixed costs of each path.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper_core::{Durability, KeyPair, Store, StoreOptions};
use hyper_swarm::{Config, Dht, JoinOptions, Reachability, Swarm, SwarmConfig, SwarmEvent};
use hyper_wire::{Replication, ReplicationOptions};
use tokio::sync::oneshot;

#[allow(dead_code)] // the CLI tests use more of the lab than this does
#[path = "../../cli/tests/common/netlab.rs"]
mod netlab;

use netlab::{Host, Lab, Nat};

use crate::report::Line;
use crate::workloads::Result;

/// Where a peer sits.
#[derive(Clone, Copy)]
enum Place {
    Public,
    Behind(Nat),
}

const PAIRS: [(&str, Place, Place); 5] = [
    (
        "cone-cone",
        Place::Behind(Nat::Cone),
        Place::Behind(Nat::Cone),
    ),
    ("public-cone", Place::Public, Place::Behind(Nat::Cone)),
    (
        "cone-symmetric",
        Place::Behind(Nat::Cone),
        Place::Behind(Nat::Symmetric),
    ),
    (
        "symmetric-cone",
        Place::Behind(Nat::Symmetric),
        Place::Behind(Nat::Cone),
    ),
    (
        "symmetric-symmetric",
        Place::Behind(Nat::Symmetric),
        Place::Behind(Nat::Symmetric),
    ),
];

const PORT: u16 = 49737;

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn store(dir: &std::path::Path) -> hyper_core::Result<Store> {
    Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )
}

/// A DHT node in `host` until `stop` fires; `ready` once it listens.
fn dht_node(
    host: &Host,
    relay: bool,
    bootstrap: Vec<SocketAddr>,
    ready: oneshot::Sender<()>,
    stop: oneshot::Receiver<()>,
) {
    let addr = SocketAddr::from((host.ip, PORT));
    host.run(move || {
        let rt = runtime()?;
        rt.block_on(async {
            let reachability = if bootstrap.is_empty() {
                Reachability::Public
            } else {
                Reachability::Auto
            };
            let config = Config {
                bootstrap,
                reachability,
                public_address: Some(addr).filter(|_| reachability == Reachability::Public),
                relay,
                ..Config::default()
            };
            let _dht = Dht::bind(addr, config).await?;
            let _ = ready.send(());
            let _ = stop.await;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .map_err(|e| std::io::Error::other(e.to_string()))
    });
}

/// One round of a pair: milliseconds from join to the first block, and the
/// path taken.
fn round(seeder: Place, reader: Place) -> Result<(f64, &'static str)> {
    let mut lab = Lab::new()?;
    let place = |lab: &mut Lab, label: &str, p: Place| match p {
        Place::Public => lab.public_host(label),
        Place::Behind(nat) => lab.nat_host(label, nat),
    };
    let boot = lab.public_host("boot")?;
    let relay = lab.public_host("relay")?;
    let seed_host = place(&mut lab, "seed", seeder)?;
    let read_host = place(&mut lab, "read", reader)?;
    let boot_addr = SocketAddr::from((boot.ip, PORT));
    let relay_addr = SocketAddr::from((relay.ip, PORT));
    let bootstrap = vec![boot_addr, relay_addr];
    let mut stops = Vec::new();
    let mut started = Vec::new();
    for (host, is_relay, nodes) in [(&boot, false, Vec::new()), (&relay, true, vec![boot_addr])] {
        let (ready_tx, ready) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel();
        dht_node(host, is_relay, nodes, ready_tx, stop_rx);
        stops.push(stop);
        started.push(ready);
    }
    for ready in started {
        ready
            .blocking_recv()
            .map_err(|_| "a DHT node did not start")?;
    }

    let dir = tempfile::tempdir()?;
    let seed_dir = dir.path().join("seed");
    let read_dir = dir.path().join("read");
    let writer = store(&seed_dir)?;
    let core = writer.create_core()?;
    core.append(b"the first replicated block")?;
    let key = core.key();
    let topic = key.discovery_key().0;

    let (announced_tx, announced) = oneshot::channel();
    let (stop, stop_rx) = oneshot::channel::<()>();
    stops.push(stop);
    let nodes = bootstrap.clone();
    seed_host.run(move || -> std::result::Result<(), String> {
        let rt = runtime().map_err(|e| e.to_string())?;
        rt.block_on(async {
            let keys = KeyPair::generate().map_err(|e| e.to_string())?;
            let swarm = Swarm::new(SwarmConfig::new(keys.clone(), nodes))
                .await
                .map_err(|e| e.to_string())?;
            let replication = Replication::new(writer, keys, ReplicationOptions::default());
            replication.add_core(&core);
            swarm.replicate(replication);
            swarm.join(
                topic,
                JoinOptions {
                    server: true,
                    client: false,
                },
            );
            swarm.flush().await.map_err(|e| e.to_string())?;
            let _ = announced_tx.send(());
            let _ = stop_rx.await;
            Ok(())
        })
    });
    announced
        .blocking_recv()
        .map_err(|_| "the seeder did not announce")?;

    let nodes = bootstrap.clone();
    let reading = read_host.run(
        move || -> std::result::Result<(f64, &'static str), String> {
            let rt = runtime().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let reader = store(&read_dir).map_err(|e| e.to_string())?;
                let replica = reader.replica(&key).map_err(|e| e.to_string())?;
                let keys = KeyPair::generate().map_err(|e| e.to_string())?;
                let swarm = Swarm::new(SwarmConfig::new(keys.clone(), nodes))
                    .await
                    .map_err(|e| e.to_string())?;
                let replication = Replication::new(reader, keys, ReplicationOptions::default());
                replication.add_core(&replica);
                let mut events = swarm.events();
                swarm.replicate(replication.clone());
                let start = Instant::now();
                swarm.join(
                    topic,
                    JoinOptions {
                        server: false,
                        client: true,
                    },
                );
                replication
                    .get(&replica, 0, Duration::from_secs(20))
                    .await
                    .map_err(|e| e.to_string())?;
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                let mut path = "direct";
                while let Ok(event) = events.try_recv() {
                    if let SwarmEvent::Connected { path: p, .. } = event {
                        path = p.as_str();
                    }
                }
                Ok((ms, path))
            })
        },
    );
    let result = reading.join().map_err(|_| "the reader panicked")?;
    for stop in stops {
        let _ = stop.send(());
    }
    drop(lab);
    Ok(result?)
}

/// S3: connect time per NAT pair, median of 3 rounds (1 when scaled).
pub fn connect(scale: u64) -> Result<()> {
    if let Err(why) = netlab::available() {
        eprintln!("hyper-bench: S3 skipped: {why}");
        return Ok(());
    }
    let rounds = if scale > 1 { 1 } else { 3 };
    for (pair, seeder, reader) in PAIRS {
        let mut times = Vec::new();
        let mut path = "";
        for _ in 0..rounds {
            let (ms, p) = round(seeder, reader)?;
            times.push(ms);
            path = p;
        }
        times.sort_by(f64::total_cmp);
        Line::new("S3")
            .text("pair", pair)
            .text("path", path)
            .int("rounds", rounds)
            .num("first_block_ms_median", times[times.len() / 2])
            .num("first_block_ms_max", times.last().copied().unwrap_or(0.0))
            .print(scale)?;
    }
    Ok(())
}
