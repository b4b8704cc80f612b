//! What the tests on real stores over real TCP share: stores with a base
//! of one log view, a full mesh of replications between them, and driving
//! the bases until a condition holds.
#![allow(dead_code)] // each test crate uses part of it

use std::thread;
use std::time::{Duration, Instant};

use hyper_autobase::{Apply, Base, BaseInfo, Batch, Host, Result, View};
use hyper_core::{CoreKey, KeyPair, PublicKey, Store};
use hyper_wire::{
    Connection, DownloadRange, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
};

pub const NAME: &str = "chat";
pub const VIEW: &str = "log";
/// How long a test waits for the peers to settle.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Every value is a line of the log; `add:KEY` adds a writer,
/// `indexer:KEY` makes one an indexer, `writer:KEY` a writer that is not
/// one, `remove:KEY` removes one (a refused change is logged as `refused`).
pub struct Log;

impl Apply for Log {
    fn apply(&mut self, batch: &Batch, view: &mut View<'_>, host: &mut Host<'_>) -> Result<()> {
        for value in batch.values.iter().flatten() {
            let text = String::from_utf8_lossy(value);
            let key = |hex: &str| hex.parse::<CoreKey>().expect("key");
            let changed = if let Some(hex) = text.strip_prefix("add:") {
                host.add_writer(key(hex), false)
            } else if let Some(hex) = text.strip_prefix("indexer:") {
                host.add_writer(key(hex), true)
            } else if let Some(hex) = text.strip_prefix("writer:") {
                host.add_writer(key(hex), false)
            } else if let Some(hex) = text.strip_prefix("remove:") {
                host.remove_writer(key(hex))
            } else {
                view.append(VIEW, value)?;
                continue;
            };
            if changed.is_err() {
                view.append(VIEW, b"refused")?;
            }
        }
        Ok(())
    }
}

/// Replications of some stores, each serving on loopback, connected in a
/// full mesh, downloading the given writer cores live. Dropping it takes
/// those stores offline.
pub struct Mesh {
    runtime: tokio::runtime::Runtime,
    connections: Vec<Connection>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _replications: Vec<Replication>,
}

impl Mesh {
    pub fn new(stores: &[&Store], cores: &[CoreKey]) -> Mesh {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let mut mesh = Mesh {
            connections: Vec::new(),
            tasks: Vec::new(),
            _replications: Vec::new(),
            runtime,
        };
        let mut addrs = Vec::new();
        for store in stores {
            let (r, addr) = mesh.runtime.block_on(async {
                let r = Replication::new(
                    (*store).clone(),
                    KeyPair::generate().expect("identity"),
                    ReplicationOptions::default(),
                );
                let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
                mesh.tasks.push(serve_tcp(&r, listener));
                for key in cores {
                    let core = store.replica(key).expect("replica");
                    r.add_core(&core);
                    if !core.writable().expect("writable") {
                        let r = r.clone();
                        mesh.tasks.push(tokio::spawn(async move {
                            let _ = r.download(&core, DownloadRange::live()).await;
                        }));
                    }
                }
                for to in &addrs {
                    mesh.connections
                        .push(connect_tcp(&r, *to).await.expect("connect"));
                }
                (r, addr)
            });
            addrs.push(addr);
            mesh._replications.push(r);
        }
        mesh
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for c in &self.connections {
            c.close();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// One store serving some cores on loopback and another fetching ranges
/// of them from it on demand: a sparse peer.
pub struct Fetcher {
    runtime: tokio::runtime::Runtime,
    server: Replication,
    client: Replication,
    from: Store,
    to: Store,
    _connection: Connection,
    _task: tokio::task::JoinHandle<()>,
}

impl Fetcher {
    /// `from` serving nothing yet to `to`.
    pub fn new(from: &Store, to: &Store) -> Fetcher {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let replication = |store: &Store| {
            Replication::new(
                store.clone(),
                KeyPair::generate().expect("identity"),
                ReplicationOptions::default(),
            )
        };
        let (server, client, task, connection) = runtime.block_on(async {
            let (server, client) = (replication(from), replication(to));
            let (listener, addr) = listen_tcp("127.0.0.1:0").await.expect("listen");
            let task = serve_tcp(&server, listener);
            let connection = connect_tcp(&client, addr).await.expect("connect");
            (server, client, task, connection)
        });
        Fetcher {
            runtime,
            server,
            client,
            from: from.clone(),
            to: to.clone(),
            _connection: connection,
            _task: task,
        }
    }

    /// Downloads `start..end` of `key` (`end` `None`: as far as the server
    /// holds it contiguously), the server serving it from now on.
    pub fn fetch(&self, key: &CoreKey, start: u64, end: Option<u64>) {
        let served = self.from.replica(key).expect("served");
        self.server.add_core(&served);
        let core = self.to.replica(key).expect("fetched");
        self.client.add_core(&core);
        let held = served.info().expect("info").contiguous_length;
        let end = end.unwrap_or(held);
        if start >= end {
            return;
        }
        self.runtime.block_on(async {
            let started = Instant::now();
            while self.client.synced_peers(&core).await == 0 {
                assert!(started.elapsed() < PATIENCE, "core {key} is not served");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let range = DownloadRange {
                start,
                end: Some(end),
                live: false,
            };
            tokio::time::timeout(PATIENCE, self.client.download(&core, range))
                .await
                .expect("in time")
                .expect("download");
        });
    }
}

/// Stores, their writer keys and signing keys; the base is created in
/// store 0 with stores 0..indexers as its indexers.
pub struct Peers {
    _dir: tempfile::TempDir,
    pub stores: Vec<Store>,
    pub writers: Vec<CoreKey>,
}

impl Peers {
    pub fn new(count: usize) -> Peers {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores: Vec<Store> = (0..count)
            .map(|i| Store::open(dir.path().join(i.to_string())).expect("store"))
            .collect();
        let writers = stores
            .iter()
            .map(|s| s.named(NAME).expect("writer").key())
            .collect();
        Peers {
            _dir: dir,
            stores,
            writers,
        }
    }

    pub fn signer(&self, i: usize) -> PublicKey {
        Base::<Log>::signing_key(&self.stores[i], NAME).expect("signing key")
    }

    /// A mesh of the stores `online`.
    pub fn mesh(&self, online: &[usize]) -> Mesh {
        let stores: Vec<&Store> = online.iter().map(|i| &self.stores[*i]).collect();
        Mesh::new(&stores, &self.writers)
    }

    /// Creates the base in store 0 with `indexers` (store indexes besides
    /// 0) and has every other store join once the header reached it.
    pub fn bases(&self, indexers: &[usize]) -> Vec<Base<Log>> {
        self.bases_of(self.stores.len(), indexers)
    }

    /// [`Peers::bases`] for the first `count` stores only.
    pub fn bases_of(&self, count: usize, indexers: &[usize]) -> Vec<Base<Log>> {
        let signers: Vec<PublicKey> = indexers.iter().map(|i| self.signer(*i)).collect();
        let first = Base::create(&self.stores[0], NAME, &signers, &[VIEW], Log).expect("create");
        let key = first.key();
        let mut bases = vec![first];
        for store in &self.stores[1..count] {
            let header = store.replica(&key).expect("replica");
            wait(|| header.has(0).expect("has"), "the base header");
            bases.push(Base::join(store, key, NAME, &[VIEW], Log).expect("join"));
        }
        bases
    }
}

/// Waits until `done`, failing the test after [`PATIENCE`].
pub fn wait(mut done: impl FnMut() -> bool, what: &str) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the bases (update, then ack as the ack policy says with the timer
/// fired) until `done` holds for every base's info.
pub fn drive(bases: &mut [Base<Log>], done: impl Fn(&BaseInfo) -> bool, what: &str) {
    let started = Instant::now();
    loop {
        let mut infos = Vec::new();
        for base in bases.iter_mut() {
            base.update().expect("update");
            base.ack_until_settled(true).expect("ack");
            infos.push(base.info());
        }
        if infos.iter().all(&done) {
            return;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}: {:#?}",
            infos.iter().map(|i| &i.views).collect::<Vec<_>>()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Whether the log view's length, indexed length and signed length are all
/// `n`.
pub fn settled_at(n: u64) -> impl Fn(&BaseInfo) -> bool {
    move |i| {
        i.views
            .first()
            .is_some_and(|v| v.length == n && v.indexed_length == n && v.signed_length == n)
    }
}

pub fn log(base: &Base<Log>) -> Vec<Vec<u8>> {
    let view = base.view(VIEW).expect("view");
    let length = view.info().expect("info").length;
    (0..length).map(|i| view.get(i).expect("block")).collect()
}

pub fn append(base: &mut Base<Log>, who: usize, values: std::ops::Range<u32>) {
    for v in values {
        base.append(&[format!("{who}:{v}").as_bytes()])
            .expect("append");
    }
}

/// The positions among the indexers of the signers of the log view's
/// signed state in `base`.
pub fn signers_of(base: &Base<Log>) -> Vec<u8> {
    let state = base
        .signed_view(VIEW)
        .expect("signed view")
        .signed_state()
        .expect("state");
    let mut s: Vec<u8> = state.signatures.iter().map(|s| s.signer).collect();
    s.sort_unstable();
    s
}

/// Three indexers, online, one value each, all signed.
pub fn three_signed_at_3() -> (Peers, Mesh, Vec<Base<Log>>) {
    let peers = Peers::new(3);
    let mesh = peers.mesh(&[0, 1, 2]);
    let mut bases = peers.bases(&[1, 2]);
    for (i, base) in bases.iter_mut().enumerate() {
        append(base, i, 0..1);
    }
    drive(&mut bases, settled_at(3), "all three sign 3");
    (peers, mesh, bases)
}
