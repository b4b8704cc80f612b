//! A base on a [`Store`]: writer cores in, the linearized order applied to
//! view cores out. The I/O around the pure [`Linearizer`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use hyper_core::{Core, CoreKey, PublicKey, Store};

use crate::error::{Error, Result};
use crate::host::{Apply, Host, Role};
use crate::linearizer::{Batch, Linearizer, Update};
use crate::node::{Header, MAX_INDEXERS, Node, writer_key_of};
use crate::signed::SignedCores;
use crate::system::{SystemEntry, SystemFollower, SystemInfo};
use crate::undo::{Applied, BatchId, Record, Start, tree_hashes, truncate_view};
use crate::view::{Staged, View};
use writers::{Writer, check_writer_header};

mod fast_forward;
mod writers;
pub use fast_forward::{FAST_FORWARD_AFTER, Needed};

/// How many applied batches the undo log may lag behind the views before an
/// update writes it (it is also written when a [`Base`] is dropped): after
/// a crash a reopened base applies at most this many batches again that its
/// views held, and a base applying one batch at a time pays one more commit
/// per this many batches, not per batch.
pub const RECORD_LAG: usize = 64;

/// The most acks [`Base::ack_until_settled`] appends in one call.
pub const MAX_ACKS: u32 = 16;

/// How long after it last gave new nodes a writer whose core knows blocks
/// not stored here yet counts as *downloading*. While one is, an update
/// applies the optimistic tip only as far as that writer's next nodes
/// cannot reorder it ([`Linearizer::settled_len`]): applying more would be
/// undone as the download goes on, and a merge after a partition would cost
/// each arriving chunk a rollback of the whole tip. A download that stalls
/// for this long stops holding the tip back.
pub const HOLD_BACK: Duration = Duration::from_millis(500);

/// What a base looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseInfo {
    /// The base key.
    pub key: CoreKey,
    /// The indexers finality counts now (the current epoch's), in key
    /// order: the base's first ones until a change is indexed.
    pub indexers: Vec<CoreKey>,
    /// Writers made indexers that do not count yet: each joins the
    /// indexers at the first commit after a batch of it is indexed (see
    /// [`crate::Host::add_writer`]), in key order.
    pub pending_indexers: Vec<CoreKey>,
    /// The writers (members) at the end of the order, in key order.
    pub writers: Vec<CoreKey>,
    /// Batches in the order (those before the start of
    /// `fast_forwarded` included).
    pub batches: u64,
    /// Batches of the order that are final.
    pub indexed_batches: u64,
    /// Batches at the start of the order this base took from a
    /// quorum-signed system entry instead of applying them (0 unless it
    /// fast-forwarded, see [`Base::fast_forward`]).
    pub fast_forwarded: u64,
    /// Batches of the order this base took from its undo log since it was
    /// opened instead of applying them again (the views held them).
    pub resumed: u64,
    /// Each view, in the order they were named at open.
    pub views: Vec<ViewInfo>,
    /// Writers whose logs were refused, with the reason.
    pub faulty: Vec<(CoreKey, String)>,
    /// Writers whose next node waits for a head that is not here yet (a
    /// writer's core not fetched that far, or a writer not added).
    pub waiting: Vec<(CoreKey, crate::node::Head)>,
    /// Why indexer signatures (checkpoints) were refused or dropped, the
    /// newest [`MAX_REFUSALS`](crate::MAX_REFUSALS), oldest first.
    pub refused_signatures: Vec<String>,
    /// The system core's lengths, in system entries.
    pub system: SystemInfo,
}

/// One view's lengths, in its own entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewInfo {
    /// The view's name.
    pub name: String,
    /// Entries in the view (optimistic tail included).
    pub length: u64,
    /// Entries that come from the indexed (final) prefix of the order.
    pub indexed_length: u64,
    /// Entries a quorum of indexers has signed (in the view's signed core):
    /// at most `indexed_length`, what peers are served.
    pub signed_length: u64,
}

/// A base: see the crate docs.
pub struct Base<A> {
    key: CoreKey,
    /// This store's writer core; `None` for a reader ([`Base::read`]).
    local: Option<Core>,
    store: Store,
    indexers: Vec<CoreKey>,
    writers: BTreeMap<CoreKey, Writer>,
    members: BTreeMap<CoreKey, Role>,
    /// Writers made indexers that do not count yet, with their indexed
    /// length when they were made one: they join at the first confirmed
    /// commit after more of their log is indexed (see `confirm_indexers`).
    pending: BTreeMap<CoreKey, u64>,
    /// The writers that are indexers by role after the indexed prefix as
    /// last confirmed (counting, pending, not leaving ones).
    roles: std::collections::BTreeSet<CoreKey>,
    lin: Linearizer,
    views: Vec<(String, Core)>,
    /// What the batches of the current update round appended to the views,
    /// written at the round's end.
    staged: Staged,
    signed: SignedCores,
    /// Each view's signed length after the last update.
    signed_lengths: Vec<u64>,
    /// Writes the system core's entries as the indexed prefix grows.
    system: SystemFollower,
    /// The system core's lengths after the last update.
    system_info: SystemInfo,
    applied: Vec<Applied>,
    /// The undo log as stored: a prefix of what the views hold.
    record: Record,
    /// Entries of the record read at open that the order has not reached
    /// again yet (they follow `applied`; the views hold them).
    resume: VecDeque<Applied>,
    /// The system entry the order starts after, when this base
    /// fast-forwarded (`applied` counts from there).
    start: Option<Start>,
    /// Batches taken from `resume`.
    resumed: usize,
    app: A,
}

impl<A: Apply> Base<A> {
    /// The signing key of this store's writer core named `name`: what to
    /// pass to [`Base::create`] to make that writer an indexer (its writer
    /// key, the one `add_writer` takes, follows from it).
    pub fn signing_key(store: &Store, name: &str) -> Result<PublicKey> {
        store
            .named(name)?
            .manifest()?
            .and_then(|m| m.signers.first().copied())
            .ok_or(Error::Malformed("a named core has no signer"))
    }

    /// Creates a base whose first writer is this store's core named `name`
    /// (its key is the base key), with the writers signing with `indexers`
    /// ([`Base::signing_key`]) as indexers besides it (at most
    /// [`MAX_INDEXERS`] in all), views named `views`, and `app` applying
    /// the order. Opening it again with the same name resumes it.
    pub fn create(
        store: &Store,
        name: &str,
        indexers: &[PublicKey],
        views: &[&str],
        app: A,
    ) -> Result<Self> {
        let local = store.named(name)?;
        if local.info()?.length == 0 {
            let me = Self::signing_key(store, name)?;
            let mut all: Vec<PublicKey> = indexers.iter().copied().chain([me]).collect();
            all.sort_unstable_by_key(writer_key_of);
            all.dedup();
            if all.len() > MAX_INDEXERS {
                return Err(Error::Malformed("more indexers than MAX_INDEXERS"));
            }
            local.append(&Header::First { indexers: all }.encode())?;
        }
        let key = local.key();
        Self::open(store, key, Some(local), views, app)
    }

    /// Joins the base `key` with this store's core named `name` as a
    /// candidate writer: its nodes are applied once a writer adds its key
    /// ([`Base::writer_key`]). Block 0 of the base's first core must be
    /// stored here (replicate it first).
    pub fn join(store: &Store, key: CoreKey, name: &str, views: &[&str], app: A) -> Result<Self> {
        let local = store.named(name)?;
        if local.key() != key && local.info()?.length == 0 {
            local.append(&Header::Writer { base: key }.encode())?;
        }
        Self::open(store, key, Some(local), views, app)
    }

    /// Opens the base `key` as a reader: it replicates, orders and applies
    /// every writer's nodes, and appends and checks indexer signatures on
    /// the signed cores like any peer (so it can serve them), but has no
    /// writer core of its own and writes nothing anyone else reads:
    /// [`Base::append`] fails with [`Error::NotAWriter`] and [`Base::ack`]
    /// never acks. Block 0 of the base's first core must be stored here.
    /// [`Base::join`] later turns the store into a writer without losing
    /// what the reader applied (the views and undo log are the same).
    pub fn read(store: &Store, key: CoreKey, views: &[&str], app: A) -> Result<Self> {
        Self::open(store, key, None, views, app)
    }

    fn open(
        store: &Store,
        key: CoreKey,
        local: Option<Core>,
        views: &[&str],
        app: A,
    ) -> Result<Self> {
        let first = store.replica(&key)?;
        if !first.has(0)? {
            return Err(Error::BaseHeaderMissing(key.to_string()));
        }
        let header = Header::decode(&first.get(0)?)?;
        let Header::First { indexers: signers } = &header else {
            return Err(Error::NotABase(
                "the base key's core is not a base's first writer",
            ));
        };
        let indexers = header.indexer_keys();
        if let Some(local) = local.as_ref().filter(|l| l.key() != key) {
            check_writer_header(local, &key)?;
        }
        let view_cores = views
            .iter()
            .map(|v| {
                Ok((
                    v.to_string(),
                    store.named(&format!("autobase {key} view {v}"))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // The views resume where the undo log says they are (else it
        // empties them and they are rebuilt from the writer cores).
        let (record, resume, start) = Record::open(store, &key, &view_cores)?;
        let signed = SignedCores::open(store, &key, views, signers, &indexers, local.as_ref())?;
        let mut base = Base {
            key,
            local,
            store: store.clone(),
            lin: Linearizer::new(&indexers)?,
            system: SystemFollower::new(key, &indexers),
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            roles: Default::default(),
            indexers,
            writers: BTreeMap::new(),
            staged: Staged::new(view_cores.len()),
            views: view_cores,
            signed,
            signed_lengths: vec![0; views.len()],
            system_info: SystemInfo::default(),
            applied: Vec::new(),
            record,
            resume: VecDeque::new(),
            start: None,
            resumed: 0,
            app,
        };
        base.restart(start)?;
        base.resume = resume.into();
        base.fast_forward_at_open()?;
        base.update()?;
        Ok(base)
    }

    /// The base key.
    pub fn key(&self) -> CoreKey {
        self.key
    }

    /// This store's writer core key (the one to add as a writer); `None`
    /// for a reader ([`Base::read`]).
    pub fn writer_key(&self) -> Option<CoreKey> {
        self.local.as_ref().map(Core::key)
    }

    /// The writer core keys this base reads (members and former members):
    /// the cores to replicate.
    pub fn cores(&self) -> Vec<CoreKey> {
        self.writers.keys().copied().collect()
    }

    /// The view core `name` (this store's, optimistic tail included).
    pub fn view(&self, name: &str) -> Option<&Core> {
        self.views.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The signed core of view `name`: the view's indexed entries, signed
    /// up to [`ViewInfo::signed_length`]. Its key is the same on every peer
    /// (derived from the base key, the name and the indexers), and peers
    /// are served only its signed part.
    pub fn signed_view(&self, name: &str) -> Option<&Core> {
        self.signed.by_name(name)
    }

    /// The base's system core: one [`SystemEntry`] per leader commit of
    /// the indexed prefix that indexed a value or changed the indexers, the
    /// same bytes on every peer, signed up to [`SystemInfo::signed_length`] as views are. Its
    /// key is the same on every peer (derived from the base key and the
    /// indexers); peers are served only its signed part.
    pub fn signed_system(&self) -> Option<&Core> {
        self.signed.system()
    }

    /// The newest system entry a quorum of indexers signed, decoded (`None`
    /// while none is signed): the frontier, membership and view states a
    /// peer far behind can start from.
    pub fn signed_state(&self) -> Result<Option<SystemEntry>> {
        let Some(core) = self.signed.system() else {
            return Ok(None);
        };
        match core.info()?.signed_length {
            0 => Ok(None),
            n => Ok(Some(SystemEntry::decode(&core.get(n - 1)?)?)),
        }
    }

    /// The DAG's heads: each writer's newest node that no other writer's
    /// newest node has seen.
    pub fn heads(&self) -> Vec<crate::node::Head> {
        self.lin.dag_heads()
    }

    /// The current order, batch by batch.
    pub fn order(&self) -> impl Iterator<Item = &Batch> {
        self.lin.order()
    }

    /// Appends `values` as one batch of this store's writer (applied all or
    /// nothing), naming the heads it has seen, then updates.
    pub fn append(&mut self, values: &[&[u8]]) -> Result<Update> {
        self.append_nodes(values.iter().map(|v| Some(v.to_vec())).collect())
    }

    /// Appends an ack when this store's writer is an indexer and an ack
    /// would move finality on (see [`Linearizer::should_ack`]), or, when
    /// `timer` (the caller's ack timer fired), when it holds an indexed view
    /// state it has not shipped a signature for (the ack carries the
    /// checkpoint, so `signed_length` follows `indexed_length`). Returns
    /// whether it acked.
    pub fn ack(&mut self, timer: bool) -> Result<bool> {
        let Some(me) = self.writer_key() else {
            return Ok(false);
        };
        if self.writers.get(&me).is_some_and(|w| w.fault.is_some()) {
            // Its acks would never be read back: never ack in a loop.
            return Ok(false);
        }
        // A pending indexer appends once, so a batch of it can be indexed
        // and it starts to count.
        let pending =
            self.pending.contains_key(&me) && self.lin.pushed(&me) <= self.lin.indexed_length(&me);
        let wanted = self.lin.should_ack(&me, timer)
            || (timer && self.signed.unshipped()?)
            || (timer && pending);
        if !wanted {
            return Ok(false);
        }
        self.append_nodes(vec![None])?;
        Ok(true)
    }

    /// Acks as long as [`Base::ack`] says an ack moves finality on, at most
    /// [`MAX_ACKS`] times (a lone indexer needs two or three to index its
    /// own values; an indexer whose peers are offline stops after one).
    /// Returns how many acks it appended.
    pub fn ack_until_settled(&mut self, timer: bool) -> Result<u32> {
        let mut acks = 0;
        while acks < MAX_ACKS && self.ack(timer)? {
            acks += 1;
        }
        Ok(acks)
    }

    fn append_nodes(&mut self, values: Vec<Option<Vec<u8>>>) -> Result<Update> {
        let Some(local) = self.local.clone() else {
            return Err(Error::NotAWriter(self.key.to_string()));
        };
        let me = local.key();
        let heads = self.lin.heads(&me);
        let n = values.len();
        if n == 0 {
            return self.update();
        }
        // An indexer signs the view states it reached; the first node of
        // the batch carries the signatures.
        let checkpoint = self.signed.checkpoint()?;
        // The node ending the batch states its causal facts.
        let causal = if self.writers.contains_key(&me) {
            self.lin.causal_for(&me, &heads)?
        } else {
            // A candidate not added yet: its previous batch's facts are on
            // the last node of its own core.
            let length = local.info()?.length;
            let previous = match length {
                0 | 1 => None,
                _ => Node::decode(&local.get(length - 1)?)?.causal,
            };
            self.lin.causal_for_unknown(previous, &heads)?
        };
        let blocks: Vec<Vec<u8>> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let node = if i == 0 {
                    Node::new(v, heads.clone(), (n - 1) as u32).with_checkpoint(checkpoint.clone())
                } else {
                    Node::new(v, Vec::new(), (n - 1 - i) as u32)
                };
                if i + 1 == n {
                    node.with_causal(causal).encode()
                } else {
                    node.encode()
                }
            })
            .collect();
        local.append_batch(&blocks)?;
        self.signed.shipped(&checkpoint);
        self.update()
    }

    /// Reads the nodes the writer cores hold that are not read yet, orders
    /// them and applies what changed to the views. A writer whose log breaks
    /// the rules is no longer read (see [`BaseInfo::faulty`]); the views do
    /// not suffer. The indexed prefix is always applied; while a writer is
    /// downloading (its core knows blocks not stored yet, see
    /// [`HOLD_BACK`]) the optimistic tip is applied only as far as that
    /// writer's next nodes cannot reorder it, and the returned `tip` is what
    /// was applied.
    pub fn update(&mut self) -> Result<Update> {
        let mut total = Update {
            shared: self.applied.len(),
            ..Update::default()
        };
        loop {
            let keys: Vec<CoreKey> = self.writers.keys().copied().collect();
            for key in keys {
                self.read_writer(key)?;
            }
            self.provide_missing()?;
            let u = self.lin.reorder();
            // What is applied of the order: the shared prefix, or less when
            // the previous round stopped early (below).
            let keep = u.shared.min(self.applied.len());
            // What downloading writers can still reorder waits for them;
            // only what is applied is copied out of the linearizer.
            let downloading = self.downloading();
            let limit = if downloading.is_empty() {
                usize::MAX
            } else {
                self.lin.settled_len(&downloading).saturating_sub(keep)
            };
            let next: Vec<Batch> = self.lin.order_from(keep).take(limit).cloned().collect();
            if keep == self.applied.len() && next.is_empty() {
                if self.confirm_indexers()? {
                    // The linearizer may commit more, or start an epoch.
                    continue;
                }
                // Recorded batches the order no longer reaches are gone.
                self.leave_resume()?;
                total.indexed = u.indexed;
                if total.shared < self.applied.len() {
                    total.tip = self
                        .lin
                        .order_from(total.shared)
                        .take(self.applied.len() - total.shared)
                        .cloned()
                        .collect();
                }
                self.update_signed()?;
                return Ok(total);
            }
            total.shared = total.shared.min(keep);
            total.undo = self.applied.len() - total.shared;
            self.undo_to(keep)?;
            self.apply_round(&next)?;
            self.confirm_indexers()?;
            // The views hold the new batches now: record them once enough
            // wait (and when the base is dropped).
            self.record.extend(&self.applied, RECORD_LAG)?;
            total.indexed = u.indexed;
            // A batch may have added writers whose logs are here already.
            let added: Vec<CoreKey> = self
                .members
                .keys()
                .filter(|k| !self.writers.contains_key(k))
                .copied()
                .collect();
            for k in added {
                self.open_writer(k)?;
            }
        }
    }

    /// Confirms the commit the linearizer holds back once the batches it
    /// indexed are applied, with the indexers after them (see
    /// `linearizer.rs`, "Changing the indexers"); whether it did.
    fn confirm_indexers(&mut self) -> Result<bool> {
        let indexed = self.lin.indexed_len();
        if !self.lin.awaiting() || indexed > self.applied.len() {
            return Ok(false);
        }
        // The set confirmed last holds after the commit before this one
        // (commits in between indexed acks alone, which change nothing).
        let commits = self.lin.commits();
        let from = commits
            .len()
            .checked_sub(2)
            .and_then(|i| commits.get(i))
            .and_then(|c| c.batches.checked_sub(self.lin.skipped()))
            .and_then(|held| usize::try_from(held).ok())
            .unwrap_or(0);
        let current: std::collections::BTreeSet<CoreKey> =
            self.lin.indexers().iter().copied().collect();
        // Who is an indexer by role after the commit: those after the last
        // confirmed one, with the role changes since.
        let mut roles = std::mem::take(&mut self.roles);
        for change in self
            .applied
            .get(from..indexed)
            .unwrap_or_default()
            .iter()
            .flat_map(|a| &a.changes)
        {
            match change.after {
                Role::Indexer => roles.insert(change.key),
                _ => roles.remove(&change.key),
            };
        }
        // A new indexer counts once a batch of it is indexed after it was
        // made one: a key no device writes never holds finality back.
        self.pending.retain(|k, _| roles.contains(k));
        let mut set = roles.clone();
        for key in roles.iter().filter(|k| !current.contains(k)) {
            let length = self.lin.indexed_length(key);
            match self.pending.get(key) {
                Some(&at) if length > at => {
                    self.pending.remove(key);
                }
                Some(_) => {
                    set.remove(key);
                }
                None => {
                    self.pending.insert(*key, length);
                    set.remove(key);
                }
            }
        }
        // Leaving indexers go only once another counts.
        if set.is_empty() {
            set = current;
        }
        self.roles = roles;
        let set: Vec<CoreKey> = set.into_iter().collect();
        let watched: Vec<CoreKey> = self.pending.keys().copied().collect();
        self.lin.watch(&watched);
        self.lin.confirm(&set)?;
        Ok(true)
    }

    /// Moves each view's indexed entries into its signed cores, writes the
    /// system entries of the new commits, and adds the indexers'
    /// signatures this peer can check now.
    fn update_signed(&mut self) -> Result<()> {
        self.end_epochs()?;
        self.enter_epochs()?;
        // The epochs this base's order reached: it fills their cores; it
        // fetches those of later epochs it only learned of.
        let reached = self.lin.epoch().min(self.signed.epochs().saturating_sub(1));
        // (A base that only adopted a signed state indexed nothing itself:
        // the cores hold that state signed, or are fetched.)
        let indexed = self.lin.indexed_len().min(self.applied.len());
        for (i, (_, core)) in self.views.iter().enumerate() {
            if indexed > 0 {
                let length = self.view_length_at(i, indexed);
                self.signed.follow(i, core, length, reached)?;
            }
        }
        let have = self.signed.system_entries()?;
        let signed = &self.signed;
        let (blocks, ends) =
            self.system
                .follow(&self.lin, &self.applied, &self.views, have, |e| {
                    signed.signers_of(e).map(<[PublicKey]>::to_vec)
                })?;
        if !blocks.is_empty() {
            self.signed.append_system(reached, have, &blocks)?;
        }
        for (epoch, end) in ends {
            self.signed.end_system(epoch, end);
        }
        self.signed.follow_system(reached)?;
        self.signed.assemble()?;
        for (i, signed) in self.signed_lengths.iter_mut().enumerate() {
            *signed = self.signed.signed_length(i)?;
        }
        if let Some(core) = self.signed.system() {
            self.system_info = SystemInfo {
                length: core.info()?.length,
                signed_length: self.signed.signed_length(self.views.len())?,
            };
        }
        Ok(())
    }

    /// Sets where each ended epoch's view cores stop: the views' lengths
    /// at the commit after which the indexers changed (an epoch that ended
    /// before this linearizer's start stops where its cores are).
    fn end_epochs(&mut self) -> Result<()> {
        for epoch in 0..self.lin.epoch().min(self.signed.epochs()) {
            if self.signed.views_ended(epoch) {
                // Set once: no walk of the commits on every update.
                continue;
            }
            let switch = self
                .lin
                .commits()
                .iter()
                .find(|c| c.switches && c.epoch == epoch)
                .and_then(|c| c.batches.checked_sub(self.lin.skipped()))
                .and_then(|held| usize::try_from(held).ok());
            let lengths = match switch {
                Some(held) if held <= self.applied.len() => (0..self.views.len())
                    .map(|i| self.view_length_at(i, held))
                    .collect::<Vec<_>>(),
                Some(_) => continue,
                None => (0..self.views.len())
                    .map(|i| match self.signed.core_at(epoch, i) {
                        Some(core) => Ok(core.info()?.length),
                        None => Ok(0),
                    })
                    .collect::<Result<Vec<_>>>()?,
            };
            self.signed.end_views(epoch, &lengths);
        }
        Ok(())
    }

    /// Opens the signed cores of each epoch the linearizer reached and
    /// this store did not enter yet, as far as the new indexers' signing
    /// keys are known here (from their writer cores' manifests).
    fn enter_epochs(&mut self) -> Result<()> {
        while self.signed.epochs() <= self.lin.epoch() {
            let epoch = self.signed.epochs();
            let Some(set) = self.lin.epoch_indexers(epoch).map(<[CoreKey]>::to_vec) else {
                return Ok(());
            };
            let mut signers = Vec::with_capacity(set.len());
            for key in &set {
                match self.signer_of(key)? {
                    Some(signer) => signers.push(signer),
                    // Its core's manifest has not arrived yet.
                    None => return Ok(()),
                }
            }
            self.signed.enter(epoch, &set, &signers)?;
            self.end_epochs()?;
        }
        Ok(())
    }

    /// The signing key of writer `key`, from its core's manifest (`None`
    /// while the manifest is not here).
    fn signer_of(&self, key: &CoreKey) -> Result<Option<PublicKey>> {
        let Some(w) = self.writers.get(key) else {
            return Ok(None);
        };
        let signer = w
            .core
            .manifest()?
            .and_then(|m| m.signers.first().copied())
            .filter(|s| writer_key_of(s) == *key);
        Ok(signer)
    }

    /// View `i`'s length after the first `batches` applied batches.
    fn view_length_at(&self, i: usize, batches: usize) -> u64 {
        match batches.checked_sub(1) {
            Some(b) => self
                .applied
                .get(b)
                .and_then(|a| a.lengths.get(i).copied())
                .unwrap_or(0),
            None => self.start_length(i),
        }
    }

    /// View `i`'s length at the start of the order.
    fn start_length(&self, i: usize) -> u64 {
        match (&self.start, self.views.get(i)) {
            (Some(start), Some((name, _))) => start.view(name).0,
            _ => 0,
        }
    }

    /// What the base looks like now.
    pub fn info(&self) -> BaseInfo {
        BaseInfo {
            key: self.key,
            indexers: self.lin.indexers().to_vec(),
            pending_indexers: self.pending.keys().copied().collect(),
            writers: self
                .members
                .iter()
                .filter(|(_, m)| m.is_writer())
                .map(|(k, _)| *k)
                .collect(),
            batches: self.lin.skipped() + self.applied.len() as u64,
            indexed_batches: self.lin.skipped() + self.lin.indexed_len() as u64,
            fast_forwarded: self.lin.skipped(),
            resumed: self.resumed as u64,
            views: self
                .views
                .iter()
                .enumerate()
                .map(|(i, (name, _))| ViewInfo {
                    name: name.clone(),
                    length: self.view_length_at(i, self.applied.len()),
                    indexed_length: self
                        .view_length_at(i, self.lin.indexed_len().min(self.applied.len())),
                    signed_length: self.signed_lengths.get(i).copied().unwrap_or(0),
                })
                .collect(),
            waiting: self.lin.waiting(),
            faulty: self
                .writers
                .iter()
                .filter_map(|(k, w)| w.fault.clone().map(|f| (*k, f)))
                .collect(),
            refused_signatures: self.signed.refused(),
            system: self.system_info,
        }
    }

    /// Each view's length now, staged entries included.
    fn lengths(&self) -> Result<Vec<u64>> {
        self.views
            .iter()
            .enumerate()
            .map(|(i, (_, c))| Ok(c.info()?.length + self.staged.len(i)))
            .collect()
    }

    /// Applies `next` in order, up to a resumed batch that added a writer
    /// not read yet (its batches may sort next, so it is read first), then
    /// writes what they appended to the views in one commit and gives their
    /// undo entries the views' tree hashes. A batch that fails changes
    /// nothing (its staged entries and membership changes are dropped); the
    /// batches before it are written, then the error returned. When the
    /// write fails, the round is undone.
    fn apply_round(&mut self, next: &[Batch]) -> Result<()> {
        let from = self.applied.len();
        let mut result = Ok(());
        for batch in next {
            match self.apply_batch(batch) {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if let Err(e) = self.staged.write(&self.store, &self.views) {
            // The views do not hold the round's batches: forget them.
            self.undo_to(from)?;
            return Err(e);
        }
        self.hash_applied(from)?;
        result
    }

    /// Fills in the views' tree hashes of the applied entries from `from`
    /// on (the views hold what they describe now): per view, one read of
    /// the roots at each length those entries name.
    fn hash_applied(&mut self, from: usize) -> Result<()> {
        let Some(entries) = self.applied.get_mut(from..) else {
            return Ok(());
        };
        for a in entries.iter_mut() {
            a.hashes.clear();
        }
        for (i, (_, core)) in self.views.iter().enumerate() {
            let mut lengths: Vec<u64> = entries
                .iter()
                .map(|a| a.lengths.get(i).copied().unwrap_or(0))
                .collect();
            lengths.dedup();
            let hashes = tree_hashes(core, &lengths)?;
            let by_length: BTreeMap<u64, [u8; 32]> = lengths.into_iter().zip(hashes).collect();
            for a in entries.iter_mut() {
                let length = a.lengths.get(i).copied().unwrap_or(0);
                let hash = by_length
                    .get(&length)
                    .copied()
                    .ok_or(Error::Malformed("an applied length was not hashed"))?;
                a.hashes.push(hash);
            }
        }
        Ok(())
    }

    /// Drops the recorded batches not reached again: from the undo log
    /// first, then from the views.
    fn leave_resume(&mut self) -> Result<()> {
        if self.resume.is_empty() {
            return Ok(());
        }
        self.resume.clear();
        self.record.truncate(self.applied.len())?;
        for i in 0..self.views.len() {
            let length = self.view_length_at(i, self.applied.len());
            if let Some((_, core)) = self.views.get(i) {
                truncate_view(core, length)?;
            }
        }
        Ok(())
    }

    /// Rolls the views and the membership back to the first `keep` applied
    /// batches.
    fn undo_to(&mut self, keep: usize) -> Result<()> {
        if keep >= self.applied.len() {
            return Ok(());
        }
        // The undo log first, so it never names batches the views lost.
        self.resume.clear();
        self.record.truncate(keep)?;
        for applied in self.applied.drain(keep..).rev() {
            for change in applied.changes.iter().rev() {
                match change.before {
                    Some(m) => self.members.insert(change.key, m),
                    None => self.members.remove(&change.key),
                };
            }
        }
        let lengths = match self.applied.last() {
            Some(a) => a.lengths.clone(),
            None => (0..self.views.len())
                .map(|i| self.start_length(i))
                .collect(),
        };
        for ((_, core), length) in self.views.iter().zip(lengths) {
            truncate_view(core, length)?;
        }
        Ok(())
    }

    /// Applies `batch` next in the order, or takes it from the undo log
    /// when the views hold it already; whether it was taken so and added a
    /// writer that is not read yet.
    fn apply_batch(&mut self, batch: &Batch) -> Result<bool> {
        let id = BatchId::of(batch);
        if self.resume.front().is_some_and(|a| a.batch == id)
            && let Some(a) = self.resume.pop_front()
        {
            // Only the membership changes it made are taken again.
            let mut unread = false;
            for c in &a.changes {
                self.members.insert(c.key, c.after);
                unread |= c.after.is_writer() && !self.writers.contains_key(&c.key);
            }
            self.applied.push(a);
            self.resumed += 1;
            return Ok(unread);
        }
        self.leave_resume()?;
        let mut host = Host {
            members: &mut self.members,
            changes: Vec::new(),
        };
        if host.is_writer(&batch.writer) && !batch.is_ack() {
            let mut view = View {
                store: &self.store,
                cores: &self.views,
                staged: &mut self.staged,
            };
            if let Err(e) = self.app.apply(batch, &mut view, &mut host) {
                self.staged.discard();
                for change in host.changes.iter().rev() {
                    match change.before {
                        Some(m) => host.members.insert(change.key, m),
                        None => host.members.remove(&change.key),
                    };
                }
                return Err(e);
            }
        }
        self.staged.seal();
        let changes = host.changes;
        self.applied.push(Applied {
            batch: id,
            lengths: self.lengths()?,
            // Filled in once the round's entries are written.
            hashes: Vec::new(),
            changes,
        });
        Ok(false)
    }
}

impl<A> Drop for Base<A> {
    /// Writes the undo log's lagging entries, so the next open resumes
    /// from all the views hold. Best effort: a log left behind only costs
    /// the next open those batches again.
    fn drop(&mut self) {
        let _ = self.record.extend(&self.applied, 1);
    }
}
