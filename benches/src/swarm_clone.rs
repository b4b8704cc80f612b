//! S4: a full clone through the swarm (QUIC, found through a DHT node, all
//! on loopback) against the same clone over TCP (Noise), in one run, for
//! the W1 and W2 cores (1 KiB and 64 KiB blocks). As in W4, the seeder is
//! its own process (`hyper-bench serve DIR` for TCP, `hyper-bench
//! serve-swarm DIR` for the swarm, which also runs the DHT node) and the
//! reader starts with a fresh store knowing only the key. Rounds alternate
//! the two transports; each line reports the median. The time is from the
//! connection being there to the last block stored (the DHT lookup and
//! the handshakes are reported apart, as `connect_seconds`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper_core::{CoreKey, Durability, KeyPair, Store};
use hyper_swarm::{Config, Dht, JoinOptions, Reachability, Swarm, SwarmConfig, SwarmEvent};
use hyper_wire::{DownloadRange, Replication, ReplicationOptions};

use crate::replicate::{Server, reader, runtime, until_stdin_closes};
use crate::report::Line;
use crate::workloads::{Append, MB, Result, fill, random_blocks};

/// Alternating rounds per transport and block size.
const ROUNDS: usize = 3;

/// How long a connection through the swarm may take to appear.
const CONNECT_WITHIN: Duration = Duration::from_secs(20);

/// The DHT node's config: every peer shares 127.0.0.1, so the per-IP
/// limits are raised, as in the swarm's own tests.
fn loopback_config() -> Config {
    Config {
        rate_limit: hyper_swarm::RateLimit {
            per_second: 100_000,
            burst: 100_000,
        },
        limits: hyper_swarm::Limits {
            max_per_source: 100_000,
            ..hyper_swarm::Limits::default()
        },
        ..Config::default()
    }
}

/// A swarm through the DHT at `boot` only (no local discovery: the path
/// measured is the one a peer across the internet takes).
async fn swarm(keys: KeyPair, boot: SocketAddr) -> Result<Swarm> {
    let config = SwarmConfig {
        local: false,
        ..SwarmConfig::new(keys, vec![boot])
    };
    Ok(Swarm::new(config).await?)
}

/// `hyper-bench serve-swarm DIR`: a public DHT node on a free loopback
/// port, and a swarm announcing every core of the store in DIR through it;
/// prints the node's address once announced, and exits when stdin closes.
pub fn serve(dir: &Path) -> Result<()> {
    let store = Store::open(dir)?;
    runtime()?.block_on(async {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        drop(socket);
        let node = Dht::bind(
            addr,
            Config {
                public_address: Some(addr),
                reachability: Reachability::Public,
                ..loopback_config()
            },
        )
        .await?;
        let keys = KeyPair::generate()?;
        let seeder = swarm(keys.clone(), node.local_addr()).await?;
        let replication = Replication::new(
            store.clone(),
            keys,
            ReplicationOptions {
                all_cores: true,
                ..ReplicationOptions::default()
            },
        );
        seeder.replicate(replication);
        for entry in store.list()? {
            seeder.join(
                entry.key.discovery_key().0,
                JoinOptions {
                    server: true,
                    client: false,
                },
            );
        }
        seeder.flush().await?;
        println!("{}", node.local_addr());
        until_stdin_closes().await
    })
}

/// The `serve-swarm` child; killed when dropped.
struct SwarmServer {
    child: Child,
    boot: SocketAddr,
}

impl SwarmServer {
    fn start(dir: &Path) -> Result<SwarmServer> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("serve-swarm")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let boot = line
            .trim()
            .parse()
            .map_err(|_| format!("serve-swarm printed {line:?}"))?;
        Ok(SwarmServer { child, boot })
    }
}

impl Drop for SwarmServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// What one clone measured.
struct Clone {
    connect_seconds: f64,
    seconds: f64,
    /// CPU seconds of the reader and of the seeder during the transfer.
    cpu: (f64, f64),
}

/// One clone over TCP from the `serve` child `server`.
async fn clone_tcp(dir: &Path, server: &Server, key: &CoreKey, count: u64) -> Result<Clone> {
    let start = Instant::now();
    let (store, replication, _bytes) = reader(dir, server.port).await?;
    let connect_seconds = start.elapsed().as_secs_f64();
    let core = store.replica(key)?;
    let cpu = Cpu::start(server.pid())?;
    let start = Instant::now();
    replication.download(&core, DownloadRange::all()).await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu.used()?;
    check(&core, count)?;
    Ok(Clone {
        connect_seconds,
        seconds,
        cpu,
    })
}

/// One clone through the swarm, looked up at the DHT node of `server`.
async fn clone_swarm(dir: &Path, server: &SwarmServer, key: &CoreKey, count: u64) -> Result<Clone> {
    let boot = server.boot;
    let store = Store::open_with(
        dir,
        hyper_core::StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?;
    let keys = KeyPair::generate()?;
    let core = store.replica(key)?;
    let replication = Replication::new(store, keys.clone(), ReplicationOptions::default());
    replication.add_core(&core);
    let start = Instant::now();
    let client = swarm(keys, boot).await?;
    let mut events = client.events();
    client.replicate(replication.clone());
    client.join(
        key.discovery_key().0,
        JoinOptions {
            server: false,
            client: true,
        },
    );
    let connected = tokio::time::timeout(CONNECT_WITHIN, async {
        while let Ok(event) = events.recv().await {
            if let SwarmEvent::Connected { .. } = event {
                return Ok(());
            }
        }
        Err("the swarm stopped before connecting")
    })
    .await;
    connected.map_err(|_| "no connection through the swarm in time")??;
    let connect_seconds = start.elapsed().as_secs_f64();
    let cpu = Cpu::start(server.child.id())?;
    let start = Instant::now();
    replication.download(&core, DownloadRange::all()).await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu.used()?;
    check(&core, count)?;
    client.destroy().await;
    Ok(Clone {
        connect_seconds,
        seconds,
        cpu,
    })
}

/// CPU seconds (user + system) process `pid` has used so far, read from
/// `/proc` by the soak workloads' reader.
fn cpu_seconds(pid: u32) -> Result<f64> {
    Ok(crate::soak::procs::usage(pid)
        .map_err(|e| e.to_string())?
        .cpu_secs)
}

/// CPU seconds of this process and of a serving child.
struct Cpu {
    server: u32,
    reader: f64,
    seeder: f64,
}

impl Cpu {
    fn start(server: u32) -> Result<Cpu> {
        Ok(Cpu {
            reader: cpu_seconds(std::process::id())?,
            seeder: cpu_seconds(server)?,
            server,
        })
    }

    /// (reader, seeder) CPU seconds since [`Cpu::start`].
    fn used(&self) -> Result<(f64, f64)> {
        Ok((
            cpu_seconds(std::process::id())? - self.reader,
            cpu_seconds(self.server)? - self.seeder,
        ))
    }
}

fn check(core: &hyper_core::Core, count: u64) -> Result<()> {
    let info = core.info()?;
    if info.length != count || info.contiguous_length != count {
        return Err(format!("downloaded {} of {count}", info.contiguous_length).into());
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// S4: the W1 and W2 cores cloned over TCP and through the swarm.
pub fn run(scale: u64) -> Result<()> {
    run_shapes(scale, &[Append::SMALL, Append::LARGE])
}

/// S4 for the cores of `shapes` only (`S4-1K` and `S4-64K` run one each).
pub fn run_shapes(scale: u64, shapes: &[Append]) -> Result<()> {
    for &shape in shapes {
        let count = (shape.blocks / scale).max(1);
        let writer = tempfile::tempdir()?;
        let blocks = random_blocks(count, shape.block_size, 4);
        fill(writer.path(), &blocks, shape.batch, Durability::Eventual)?;
        drop(blocks);
        let key = Store::open(writer.path())?.named("bench")?.key();
        let mut tcp = Vec::new();
        let mut quic = Vec::new();
        for _ in 0..ROUNDS {
            let server = Server::start(writer.path())?;
            let dir = tempfile::tempdir()?;
            tcp.push(runtime()?.block_on(clone_tcp(dir.path(), &server, &key, count))?);
            drop(server);
            let server = SwarmServer::start(writer.path())?;
            let dir = tempfile::tempdir()?;
            quic.push(runtime()?.block_on(clone_swarm(dir.path(), &server, &key, count))?);
            drop(server);
        }
        let mb = (count as usize * shape.block_size) as f64 / MB;
        let mut medians = Vec::new();
        for (transport, runs) in [("tcp", &tcp), ("quic", &quic)] {
            let of =
                |f: &dyn Fn(&Clone) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
            let seconds = of(&|c| c.seconds);
            let cpu = (of(&|c| c.cpu.0), of(&|c| c.cpu.1));
            medians.push((seconds, cpu.0 + cpu.1));
            Line::new("S4")
                .text("transport", transport)
                .int("block_size", shape.block_size as u64)
                .int("blocks", count)
                .num("mb_per_sec", mb / seconds)
                .num("seconds", seconds)
                .num("connect_seconds", of(&|c| c.connect_seconds))
                .num("reader_cpu_ms_per_mb", cpu.0 * 1000.0 / mb)
                .num("seeder_cpu_ms_per_mb", cpu.1 * 1000.0 / mb)
                .print(scale)?;
        }
        let ((tcp_seconds, tcp_cpu), (quic_seconds, quic_cpu)) = (medians[0], medians[1]);
        Line::new("S4")
            .text("transport", "quic/tcp")
            .int("block_size", shape.block_size as u64)
            .num("throughput_ratio", tcp_seconds / quic_seconds)
            .num("cpu_ratio", quic_cpu / tcp_cpu)
            .print(scale)?;
    }
    Ok(())
}
