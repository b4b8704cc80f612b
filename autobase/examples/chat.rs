//! A multi-writer chat room on one base: every member writes its own core,
//! and every screen shows the messages in the same order.
//!
//! ```text
//! # terminal 1: create a room (this store is its one indexer)
//! cargo run -p hyper-autobase --example chat -- --store /tmp/alice create
//! # prints `room KEY` and `writer KEY`; type lines to chat
//! # terminal 2: join it (found on the local network through the swarm)
//! cargo run -p hyper-autobase --example chat -- --store /tmp/bob join KEY
//! # prints `writer KEY`; in terminal 1 type `/add KEY` to let bob write
//! ```
//!
//! Peers find each other through the swarm (the room key's discovery key
//! as the topic; the local network, and the DHT with `--bootstrap
//! IP:PORT`), or over TCP with `--listen ADDR` / `--connect ADDR`.
//! A screen shows a message once it is final (indexed by the room's
//! indexer), so no screen ever shows two messages in another order than
//! another screen: `NAME: TEXT`, NAME the first 8 hex characters of the
//! writer's key. Values are `/add KEY` (add a writer), `/indexer KEY`
//! (make a writer one of the room's indexers, so the room goes on
//! finalizing when the creator is away) or a message.
//! Stdin closed, the peer keeps serving the room until it is stopped.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hyper_autobase::{Apply, Base, Batch, Host, View};
use hyper_core::{CoreKey, KeyPair, Store};
use hyper_swarm::{JoinOptions, Swarm, SwarmConfig};
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
};

/// The view of the room's messages: writer key (32 bytes), then the text.
const MESSAGES: &str = "messages";
/// How often an indexer acks on its timer, so what it saw becomes final.
const ACK_EVERY: Duration = Duration::from_millis(300);

type Failure = Box<dyn std::error::Error>;

/// The room's application: `/add KEY` adds a writer, `/indexer KEY` an
/// indexer, anything else is a message.
struct Room;

impl Apply for Room {
    fn apply(
        &mut self,
        batch: &Batch,
        view: &mut View<'_>,
        host: &mut Host<'_>,
    ) -> hyper_autobase::Result<()> {
        for value in batch.values.iter().flatten() {
            let text = String::from_utf8_lossy(value);
            let command = match (text.strip_prefix("/add "), text.strip_prefix("/indexer ")) {
                (Some(key), _) => Some((key, false)),
                (_, Some(key)) => Some((key, true)),
                _ => None,
            };
            if let Some((key, indexer)) = command {
                // A key that does not parse adds nobody; a change the
                // host refuses (too many indexers) changes nothing.
                if let Ok(key) = key.trim().parse::<CoreKey>() {
                    let _ = host.add_writer(key, indexer);
                }
                continue;
            }
            let mut entry = batch.writer.0.to_vec();
            entry.extend_from_slice(value);
            view.append(MESSAGES, &entry)?;
        }
        Ok(())
    }
}

/// What the command line asked for.
struct Args {
    store: String,
    room: Option<CoreKey>,
    listen: Option<String>,
    connect: Vec<String>,
    bootstrap: Vec<SocketAddr>,
    swarm: bool,
}

fn usage() -> Failure {
    "usage: chat --store DIR (create | join ROOM) [--listen ADDR] [--connect ADDR]... [--bootstrap IP:PORT,...] [--no-swarm]".into()
}

fn parse_args() -> Result<Args, Failure> {
    let mut args = std::env::args().skip(1);
    let mut out = Args {
        store: String::new(),
        room: None,
        listen: None,
        connect: Vec::new(),
        bootstrap: Vec::new(),
        swarm: true,
    };
    let mut command = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--store" => out.store = args.next().ok_or_else(usage)?,
            "--listen" => out.listen = Some(args.next().ok_or_else(usage)?),
            "--connect" => out.connect.push(args.next().ok_or_else(usage)?),
            "--bootstrap" => {
                for a in args.next().ok_or_else(usage)?.split(',') {
                    out.bootstrap.push(a.parse()?);
                }
            }
            "--no-swarm" => out.swarm = false,
            "create" => command = Some(None),
            "join" => {
                let room = args.next().ok_or_else(usage)?;
                let key = room
                    .parse::<CoreKey>()
                    .map_err(|_| format!("'{room}' is not a room key (64 hex characters)"))?;
                command = Some(Some(key));
            }
            _ => return Err(usage()),
        }
    }
    out.room = command.ok_or_else(usage)?;
    if out.store.is_empty() {
        return Err(usage());
    }
    Ok(out)
}

/// The network side: a replication served over TCP and the swarm, and
/// each core of the room downloaded live.
struct Net {
    runtime: tokio::runtime::Runtime,
    replication: Replication,
    following: BTreeSet<CoreKey>,
    _connections: Vec<hyper_wire::Connection>,
    _swarm: Option<Swarm>,
}

impl Net {
    fn start(store: &Store, room: CoreKey, args: &Args) -> Result<Net, Failure> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        // The replication spawns its tasks on this runtime.
        let _enter = runtime.enter();
        let replication = Replication::new(
            store.clone(),
            KeyPair::generate()?,
            ReplicationOptions::default(),
        );
        let mut connections = Vec::new();
        let swarm = runtime.block_on(async {
            if let Some(addr) = &args.listen {
                let (listener, local) = listen_tcp(addr.as_str())
                    .await
                    .map_err(|e| format!("listening on {addr}: {e}"))?;
                println!("listening on {local}");
                serve_tcp(&replication, listener);
            }
            for addr in &args.connect {
                let connection = connect_tcp(&replication, addr.as_str())
                    .await
                    .map_err(|e| format!("connecting to {addr}: {e}"))?;
                connections.push(connection);
            }
            if !args.swarm {
                return Ok::<_, Failure>(None);
            }
            let config = SwarmConfig {
                dht: !args.bootstrap.is_empty(),
                ..SwarmConfig::new(KeyPair::generate()?, args.bootstrap.clone())
            };
            let swarm = Swarm::new(config).await?;
            swarm.replicate(replication.clone());
            swarm.join(
                room.discovery_key().0,
                JoinOptions {
                    server: true,
                    client: true,
                },
            );
            Ok(Some(swarm))
        })?;
        std::io::stdout().flush()?;
        Ok(Net {
            runtime,
            replication,
            following: BTreeSet::new(),
            _connections: connections,
            _swarm: swarm,
        })
    }

    /// Serves `key`'s core and, unless it is this store's, downloads it
    /// live (once per core).
    fn follow(&mut self, store: &Store, key: CoreKey) -> Result<(), Failure> {
        if !self.following.insert(key) {
            return Ok(());
        }
        let _enter = self.runtime.enter();
        let core = store.replica(&key)?;
        self.replication.add_core(&core);
        if !core.writable()? {
            let replication = self.replication.clone();
            self.runtime.spawn(async move {
                let _ = replication.download(&core, DownloadRange::live()).await;
            });
        }
        Ok(())
    }
}

fn main() {
    if let Err(e) = run() {
        eprintln!("chat: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Failure> {
    let args = parse_args()?;
    let store = Store::open(&args.store)?;
    let views = [MESSAGES];
    let (room, mut base) = match args.room {
        None => {
            let base = Base::create(&store, "chat", &[], &views, Room)?;
            println!("room {}", base.key());
            (base.key(), Some(base))
        }
        Some(room) => (room, None),
    };
    let mut net = Net::start(&store, room, &args)?;
    net.follow(&store, room)?;
    let mut base = match base.take() {
        Some(base) => base,
        None => {
            // The room's first block names its indexers: wait for it.
            let first = store.replica(&room)?;
            let started = Instant::now();
            while !first.has(0)? {
                if started.elapsed() > Duration::from_secs(60) {
                    return Err(format!("no peer sent room {room} within 60 s").into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Base::join(&store, room, &format!("chat/{room}"), &views, Room)?
        }
    };
    // Served even before a writer adds it, so that one can fetch it.
    let me = base.writer_key().ok_or("a joined room has a writer core")?;
    net.follow(&store, me)?;
    println!("writer {me}");
    std::io::stdout().flush()?;

    let (lines, input) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut shown = 0u64;
    let mut last_ack = Instant::now();
    loop {
        let mut values = Vec::new();
        match input.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => values.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Stdin closed: keep serving the room.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::thread::sleep(Duration::from_millis(100))
            }
        }
        values.extend(input.try_iter());
        values.retain(|v| !v.trim().is_empty());
        if !values.is_empty() {
            let blocks: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
            base.append(&blocks)?;
        }
        base.update()?;
        for key in base.cores() {
            net.follow(&store, key)?;
        }
        // An indexer acks what it saw, and on its timer signs what it
        // indexed; a non-indexer's ack is refused by `ack` itself.
        let timer = last_ack.elapsed() >= ACK_EVERY;
        if timer {
            last_ack = Instant::now();
        }
        base.ack(timer)?;
        shown = show(&base, shown)?;
    }
}

/// Prints the final messages past the first `shown`; how many are shown.
fn show(base: &Base<Room>, shown: u64) -> Result<u64, Failure> {
    let info = base.info();
    let indexed = info.views.first().map_or(0, |v| v.indexed_length);
    let Some(view) = base.view(MESSAGES) else {
        return Ok(shown);
    };
    let mut out = std::io::stdout().lock();
    for i in shown..indexed {
        let entry = view.get(i)?;
        let (writer, text) = entry.split_at_checked(32).ok_or("a damaged message")?;
        let name: String = writer.iter().take(4).map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{name}: {}", String::from_utf8_lossy(text))?;
    }
    out.flush()?;
    Ok(indexed.max(shown))
}
