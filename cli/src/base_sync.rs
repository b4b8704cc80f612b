//! `hyper-cli base sync`: fetching a base's writer cores from a peer at an
//! address or from the peers the swarm finds.

use std::time::Duration;

use hyper_autobase::Needed;
use hyper_core::{Core, CoreKey, KeyPair, Store};
use hyper_swarm::{JoinOptions, Swarm};
use hyper_wire::{DownloadRange, Replication, ReplicationOptions};

use crate::CliError;
use crate::base_cmd::open_base;
use crate::swarm_cmd::Discovery;

/// Where `base sync` finds the base's peers.
pub enum Source<'a> {
    /// The peer at this address, over TCP.
    Tcp(&'a str),
    /// Whoever the swarm finds under each core's discovery key.
    Swarm(Discovery<'a>),
}

impl Source<'_> {
    /// The peers, as an error message names them.
    fn name(&self) -> String {
        match self {
            Source::Tcp(addr) => (*addr).to_string(),
            Source::Swarm(_) => "the swarm".to_string(),
        }
    }
}

/// Fetches what `base` needs from `source`: the base key's core's header,
/// then the signed views and system core (with a quorum-signed state the
/// base fast-forwards at open and applies none of the history before it),
/// then, round by round, the blocks of writer cores the base says it needs
/// ([`hyper_autobase::Base::needed`]: every node after the signed state's
/// frontier, the few below it that later heads name, and writers added on
/// the way; every writer core whole when nothing is signed yet), until a
/// round needs nothing new. This store's own writer cores are not fetched.
/// The cores no peer served within `timeout`, in the order they were asked
/// for.
pub fn sync(
    store: &Store,
    base: &str,
    source: &Source,
    timeout: Duration,
) -> Result<Vec<CoreKey>, CliError> {
    let key = base.parse::<CoreKey>().ok();
    crate::net_cmd::runtime()?.block_on(async {
        let identity = KeyPair::generate()?;
        let replication = Replication::new(
            store.clone(),
            identity.clone(),
            ReplicationOptions::default(),
        );
        let first_key = match key {
            Some(k) => k,
            None => open_base(store, base)?.key(),
        };
        let first = store.replica(&first_key)?;
        replication.add_core(&first);
        // Either keeps the peers connected until the sync ends.
        let (_connection, swarm) = match source {
            Source::Tcp(addr) => (
                Some(crate::net_cmd::connect_within(&replication, addr, timeout).await?),
                None,
            ),
            Source::Swarm(discovery) => {
                let swarm = Swarm::new(discovery.swarm_config(identity)?).await?;
                if let (true, Some(why)) = (discovery.local, swarm.local_error()) {
                    eprintln!("hyper-cli: local discovery is off: {why}");
                }
                swarm.replicate(replication.clone());
                (None, Some(swarm))
            }
        };
        let look_up = |core: &CoreKey| {
            if let Some(swarm) = &swarm {
                swarm.join(
                    core.discovery_key().0,
                    JoinOptions {
                        server: false,
                        client: true,
                    },
                );
            }
        };
        look_up(&first_key);
        // Without the first core's header there is no base to sync.
        let header = DownloadRange::range(0..1);
        if !fetch(
            &replication,
            &first,
            header,
            source,
            swarm.as_ref(),
            timeout,
        )
        .await?
            || !first.has(0)?
        {
            return Err(match source {
                Source::Tcp(addr) => CliError::NotServed {
                    addr: addr.to_string(),
                    key: first_key.to_string(),
                    seconds: timeout.as_secs(),
                },
                Source::Swarm(_) => CliError::NoPeers {
                    key: first_key.to_string(),
                    seconds: timeout.as_secs(),
                },
            });
        }
        // The signed views and system core first: with them the base
        // fast-forwards at open, and only what follows the signed state
        // is fetched of the writer cores (Base::needed).
        let mut served: Vec<CoreKey> = vec![first_key];
        let mut asked: Vec<Needed> = Vec::new();
        let mut skipped = Vec::new();
        // Each epoch's signed cores: a signed system entry that changed the
        // indexers names the next epoch's (the base adds them at open).
        let mut signed_fetched: Vec<CoreKey> = Vec::new();
        loop {
            // A store that never joined the base opens it as a reader.
            let base = match open_base(store, base) {
                Ok(b) => b,
                Err(CliError::NoSuchBase(_)) => {
                    return Err(CliError::NotABaseCore(first_key.to_string()));
                }
                Err(e) => return Err(e),
            };
            let signed: Vec<CoreKey> = base
                .signed_cores()
                .into_iter()
                .filter(|k| !signed_fetched.contains(k))
                .collect();
            let wanted: Vec<(CoreKey, DownloadRange)> = if signed.is_empty() {
                let new: Vec<Needed> = base
                    .needed()?
                    .into_iter()
                    .filter(|n| !asked.contains(n))
                    .collect();
                asked.extend(&new);
                new.into_iter()
                    .map(|n| {
                        let range = DownloadRange {
                            start: n.start,
                            end: n.end,
                            live: false,
                        };
                        (n.core, range)
                    })
                    .collect()
            } else {
                signed_fetched.extend(&signed);
                signed
                    .iter()
                    .copied()
                    .map(|k| (k, DownloadRange::all()))
                    .collect()
            };
            drop(base);
            if wanted.is_empty() {
                store.flush()?;
                return Ok(skipped);
            }
            for (k, range) in wanted {
                if skipped.contains(&k) {
                    continue;
                }
                let core = store.replica(&k)?;
                // This store wrote it: nobody has more of it.
                if core.writable()? {
                    continue;
                }
                if !served.contains(&k) {
                    served.push(k);
                    replication.add_core(&core);
                    look_up(&k);
                }
                if signed.contains(&k) {
                    // A signed core that holds an unsigned tail here is
                    // this base's own indexed entries: the base applies,
                    // it does not fast-forward. One no peer serves (or
                    // that fails) only means no fast-forward.
                    let info = core.info()?;
                    if info.length > info.signed_length {
                        continue;
                    }
                    let fetched =
                        fetch(&replication, &core, range, source, swarm.as_ref(), timeout).await;
                    if let Err(e) = fetched {
                        tracing::debug!(core = %k, error = %e, "a signed core was not fetched");
                    }
                    continue;
                }
                if !fetch(&replication, &core, range, source, swarm.as_ref(), timeout).await? {
                    skipped.push(k);
                }
            }
        }
    })
}

/// How long, once one peer serves a core, a sync through the swarm waits
/// for the other connected peers to say what they hold of it.
const SETTLE: Duration = Duration::from_secs(2);

/// Downloads `range` of `core` from the connected peers; whether a peer
/// serves it (none within `timeout`, or none that told what it holds has
/// a block of a range with an end: skipped). Through the swarm it first
/// waits for the lookups and dials under the joined topics, and then for
/// every connected peer to serve the core (at most [`SETTLE`] after the
/// first did), so the download covers the longest of them.
async fn fetch(
    replication: &Replication,
    core: &Core,
    range: DownloadRange,
    source: &Source<'_>,
    swarm: Option<&Swarm>,
    timeout: Duration,
) -> Result<bool, CliError> {
    let started = std::time::Instant::now();
    if let Some(swarm) = swarm {
        match tokio::time::timeout(timeout, swarm.flush()).await {
            Ok(Err(e)) => tracing::debug!(error = %e, "the lookups failed"),
            Err(_) => tracing::debug!("the lookups did not end in time"),
            Ok(Ok(())) => {}
        }
    }
    let mut first_served = None;
    loop {
        let synced = replication.synced_peers(core).await;
        // A range with an end names blocks: a peer whose core is not that
        // long does not serve it (a reader seeds writer cores it holds
        // none of); through the swarm another peer may yet.
        let told = told_length(replication, core).await?;
        let holds = range.end.is_none() || told > range.start;
        if synced > 0 && !holds && swarm.is_none() {
            tracing::debug!(core = %core.key(), "the peer holds none of the blocks asked for");
            return Ok(false);
        }
        if synced > 0 && holds {
            let since = *first_served.get_or_insert_with(std::time::Instant::now);
            if swarm.is_none()
                || synced >= replication.peers().await.len()
                || since.elapsed() > SETTLE
            {
                break;
            }
        } else if started.elapsed() > timeout {
            tracing::debug!(core = %core.key(), "no peer serves it: skipped");
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing past what the peers have told of: ask for no more (their
    // word, not the length here, which follows only once the upgrade
    // proof has landed).
    let known = told_length(replication, core).await?;
    let mut range = range;
    range.end = range.end.map(|end| end.min(known));
    if range.start >= range.end.unwrap_or(known) {
        return Ok(true);
    }
    let asked = range.clone();
    match tokio::time::timeout(timeout, replication.download(core, range)).await {
        Ok(result) => result.map(|()| true).map_err(CliError::from),
        Err(_) => Err(CliError::NoAnswer {
            addr: source.name(),
            what: match asked.end {
                Some(end) => format!(
                    "blocks {}..{end} of core {} of the base",
                    asked.start,
                    core.key()
                ),
                None => format!(
                    "blocks {}.. of core {} of the base",
                    asked.start,
                    core.key()
                ),
            },
            seconds: timeout.as_secs(),
        }),
    }
}

/// The longest of `core` here and what the connected peers said they hold.
async fn told_length(replication: &Replication, core: &Core) -> Result<u64, CliError> {
    let peers = replication.stats(core).await.peers;
    let told = peers.iter().map(|p| p.length).max().unwrap_or(0);
    Ok(told.max(core.info()?.length))
}
