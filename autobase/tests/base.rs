//! Bases on real stores: writers in three stores append offline, exchange
//! their cores through real proofs, and reach the same views.

use hyper_autobase::{Apply, Base, Batch, Causal, Head, Host, Node, Result, View};
use hyper_core::{CoreKey, NodeRequest, ProofRequest, Store, UpgradeRequest};

/// A chat whose values are messages, or `add:KEY` / `remove:KEY` ops.
struct Chat;

impl Apply for Chat {
    fn apply(&mut self, batch: &Batch, view: &mut View<'_>, host: &mut Host<'_>) -> Result<()> {
        for value in batch.values.iter().flatten() {
            let text = String::from_utf8_lossy(value);
            if let Some(hex) = text.strip_prefix("add:") {
                host.add_writer(hex.parse().expect("key"), false)?;
            } else if let Some(hex) = text.strip_prefix("remove:") {
                host.remove_writer(hex.parse().expect("key"))?;
            } else {
                let line = format!("{}:{text}", &batch.writer.to_string()[..4]);
                view.append("log", line.as_bytes())?;
            }
        }
        Ok(())
    }
}

/// Copies every block of core `key` that `from` holds into `to`, through
/// proofs `to` verifies.
fn sync(from: &Store, to: &Store, key: &CoreKey) {
    sync_blocks(from, to, key, 0..u64::MAX);
}

/// Copies the blocks of `blocks` that `from` holds of core `key` into `to`
/// (the first proof also tells `to` the whole length `from` has).
fn sync_blocks(from: &Store, to: &Store, key: &CoreKey, blocks: std::ops::Range<u64>) {
    let src = from.replica(key).expect("source");
    let dst = to.replica(key).expect("replica");
    let length = src.info().expect("info").length;
    for index in blocks.start..blocks.end.min(length) {
        if dst.has(index).expect("has") || !src.has(index).expect("has") {
            continue;
        }
        let local = dst.info().expect("info");
        let request = ProofRequest {
            block: Some(NodeRequest {
                index,
                nodes: dst.missing_nodes(index).expect("nodes"),
            }),
            upgrade: (local.length < length).then_some(UpgradeRequest {
                start: local.length,
                fork: local.fork,
            }),
            manifest: true,
            ..Default::default()
        };
        let proof = src.proof(&request).expect("proof");
        dst.apply(&[proof]).expect("verified");
    }
}

fn log(base: &Base<Chat>) -> Vec<String> {
    let view = base.view("log").expect("view");
    let length = view.info().expect("info").length;
    (0..length)
        .map(|i| String::from_utf8(view.get(i).expect("block")).expect("utf-8"))
        .collect()
}

struct Three {
    _dir: tempfile::TempDir,
    stores: Vec<Store>,
    bases: Vec<Base<Chat>>,
}

impl Three {
    /// A base created in store 0, joined by stores 1 and 2, both added.
    fn new() -> Three {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores: Vec<Store> = (0..3)
            .map(|i| Store::open(dir.path().join(i.to_string())).expect("store"))
            .collect();
        let first = Base::create(&stores[0], "chat", &[], &["log"], Chat).expect("create");
        let key = first.key();
        let mut bases = vec![first];
        for store in &stores[1..] {
            sync(&stores[0], store, &key);
            bases.push(Base::join(store, key, "chat", &["log"], Chat).expect("join"));
        }
        let (k1, k2) = (
            bases[1].writer_key().expect("a writer"),
            bases[2].writer_key().expect("a writer"),
        );
        bases[0]
            .append(&[
                format!("add:{k1}").as_bytes(),
                format!("add:{k2}").as_bytes(),
            ])
            .expect("add");
        Three {
            _dir: dir,
            stores,
            bases,
        }
    }

    /// Every store gets every core of every other, then updates.
    fn sync_all(&mut self) {
        let keys: Vec<CoreKey> = self
            .bases
            .iter()
            .flat_map(|b| b.cores())
            .chain(self.bases.iter().map(|b| b.writer_key().expect("a writer")))
            .collect();
        for from in 0..3 {
            for to in 0..3 {
                if from != to {
                    for key in &keys {
                        sync(&self.stores[from], &self.stores[to], key);
                    }
                }
            }
        }
        for base in &mut self.bases {
            base.update().expect("update");
        }
    }

    /// Syncs and lets the indexer ack until everything is indexed.
    fn settle(&mut self) {
        for _ in 0..20 {
            self.sync_all();
            let acked = self.bases[0].ack(true).expect("ack");
            if !acked {
                self.sync_all();
                return;
            }
        }
        panic!("acks never stopped");
    }
}

#[test]
fn three_writers_appending_offline_converge() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[0].append(&[b"a1", b"a2"]).expect("append");
    t.bases[1].append(&[b"b1"]).expect("append");
    t.bases[2].append(&[b"c1"]).expect("append");
    t.bases[2].append(&[b"c2"]).expect("append");
    t.settle();
    let first = log(&t.bases[0]);
    assert_eq!(first.len(), 5, "every message applied once: {first:?}");
    for base in &t.bases {
        assert_eq!(log(base), first, "every store has the same view");
        let info = base.info();
        assert_eq!(
            info.views[0].indexed_length, info.views[0].length,
            "every message is indexed"
        );
        assert_eq!(info.views[0].length, 5);
        assert_eq!(info.writers.len(), 3);
        assert!(info.faulty.is_empty());
    }
    // c1 comes before c2 (one writer's order is kept); a1, a2 stay together.
    let pos = |m: &str| first.iter().position(|l| l.ends_with(m)).expect("message");
    assert!(pos(":c1") < pos(":c2"));
    assert_eq!(pos(":a1") + 1, pos(":a2"));
}

#[test]
fn a_reader_applies_and_signs_what_the_writers_wrote_and_writes_nothing() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[0].append(&[b"a1"]).expect("append");
    t.bases[1].append(&[b"b1"]).expect("append");
    t.settle();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let key = t.bases[0].key();
    assert!(
        matches!(
            Base::read(&store, key, &["log"], Chat),
            Err(hyper_autobase::Error::BaseHeaderMissing(_))
        ),
        "a reader needs the base's first block"
    );
    sync(&t.stores[0], &store, &key);
    let mut reader = Base::read(&store, key, &["log"], Chat).expect("read");
    assert_eq!(reader.writer_key(), None);
    for writer in t.bases[0].cores() {
        sync(&t.stores[0], &store, &writer);
    }
    reader.update().expect("update");
    assert_eq!(log(&reader), log(&t.bases[0]));
    let (ours, theirs) = (reader.info(), t.bases[0].info());
    assert_eq!(ours.writers, theirs.writers);
    // The indexers' signatures check against the reader's own copy: its
    // signed view can serve peers.
    assert_eq!(ours.views[0].signed_length, theirs.views[0].signed_length);
    assert!(ours.views[0].signed_length > 0, "{ours:?}");
    let cores_before: Vec<CoreKey> = store.list().expect("list").iter().map(|e| e.key).collect();
    assert!(matches!(
        reader.append(&[b"nope"]),
        Err(hyper_autobase::Error::NotAWriter(k)) if k == key.to_string()
    ));
    assert!(!reader.ack(true).expect("ack"), "a reader never acks");
    let cores_after: Vec<CoreKey> = store.list().expect("list").iter().map(|e| e.key).collect();
    assert_eq!(cores_before, cores_after, "no writer core was made");
    assert_eq!(log(&reader), log(&t.bases[0]));
    // Joining later keeps what it applied and gives it a writer core.
    drop(reader);
    let joined = Base::join(&store, key, "chat", &["log"], Chat).expect("join");
    assert!(joined.writer_key().is_some());
    assert_eq!(log(&joined), log(&t.bases[0]));
}

#[test]
fn views_are_rebuilt_the_same_after_reopen() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[1].append(&[b"hello"]).expect("append");
    t.bases[0].append(&[b"world"]).expect("append");
    t.settle();
    let before = log(&t.bases[0]);
    let signed = t.bases[0].info().views[0].signed_length;
    // The one indexer signed everything it indexed.
    assert_eq!(signed, 2);
    let store = t.stores[0].clone();
    let own_log = store.named("chat").expect("writer");
    drop(t.bases.remove(0));
    let mut reopened = Base::create(&store, "chat", &[], &["log"], Chat).expect("reopen");
    assert_eq!(log(&reopened), before);
    // The signed core is kept (not rebuilt), and what it shipped is read
    // back from its own log: no second signature of the same state.
    assert_eq!(reopened.info().views[0].signed_length, signed);
    let length = own_log.info().expect("info").length;
    assert!(!reopened.ack(true).expect("ack"));
    assert_eq!(own_log.info().expect("info").length, length);
}

#[test]
fn a_removed_writer_is_not_applied_after_its_removal() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[1].append(&[b"before"]).expect("append");
    t.sync_all();
    let k1 = t.bases[1].writer_key().expect("a writer");
    t.bases[0]
        .append(&[format!("remove:{k1}").as_bytes()])
        .expect("remove");
    t.sync_all();
    // Writer 1 has seen its removal and appends anyway.
    t.bases[1].append(&[b"after"]).expect("append");
    t.settle();
    for base in &t.bases {
        let lines = log(base);
        assert!(lines.iter().any(|l| l.ends_with(":before")), "{lines:?}");
        assert!(!lines.iter().any(|l| l.ends_with(":after")), "{lines:?}");
        assert!(!base.info().writers.contains(&k1));
    }
}

#[test]
fn writers_breaking_the_rules_harm_only_themselves() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[1].append(&[b"fine"]).expect("append");
    // Writer 2 appends, outside the base's API, a node whose head names a
    // writer that is not in the base, then a valid-looking message.
    let core = t.stores[2].named("chat").expect("core");
    // (It never enters the DAG, so its stated facts are never checked.)
    let facts = Causal {
        depth: 100,
        epoch: 0,
        round: None,
        round_set: 0,
    };
    let bogus = Node::new(
        Some(b"evil".to_vec()),
        vec![Head {
            writer: CoreKey([7; 32]),
            length: 1,
        }],
        0,
    )
    .with_causal(facts);
    core.append(&bogus.encode()).expect("raw append");
    core.append(
        &Node::new(Some(b"later".to_vec()), vec![], 0)
            .with_causal(facts)
            .encode(),
    )
    .expect("raw append");
    t.settle();
    let k2 = t.bases[2].writer_key().expect("a writer");
    for base in &t.bases[..2] {
        let lines = log(base);
        assert!(lines.iter().any(|l| l.ends_with(":fine")));
        assert!(
            !lines
                .iter()
                .any(|l| l.ends_with(":evil") || l.ends_with(":later")),
            "{lines:?}"
        );
        let info = base.info();
        // The node waits for a writer that is never added: only writer 2
        // stalls, and the base says what it waits for.
        assert!(info.faulty.is_empty(), "{:?}", info.faulty);
        assert_eq!(info.waiting.len(), 1, "{:?}", info.waiting);
        assert_eq!(info.waiting[0].0, k2);
        assert_eq!(info.waiting[0].1.writer, CoreKey([7; 32]));
        assert_eq!(info.views[0].indexed_length, info.views[0].length);
    }
    // A node that names its own writer as a head breaks the rules for good.
    let core = t.stores[1].named("chat").expect("core");
    let k1 = t.bases[1].writer_key().expect("a writer");
    let selfish = Node::new(
        Some(b"me".to_vec()),
        vec![Head {
            writer: k1,
            length: 1,
        }],
        0,
    )
    .with_causal(facts);
    core.append(&selfish.encode()).expect("raw append");
    t.settle();
    for base in [&t.bases[0], &t.bases[2]] {
        let info = base.info();
        assert!(
            info.faulty
                .iter()
                .any(|(k, why)| *k == k1 && why.contains("its own writer")),
            "{:?}",
            info.faulty
        );
        assert!(!log(base).iter().any(|l| l.ends_with(":me")));
    }
}

#[test]
fn a_core_written_for_another_base_is_refused() {
    let mut t = Three::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let other = Store::open(dir.path()).expect("store");
    let elsewhere = Base::create(&other, "chat", &[], &["log"], Chat).expect("other base");
    let stranger_key = {
        sync(&other, &t.stores[0], &elsewhere.key());
        // A writer of the other base, added to this one by mistake.
        sync(&t.stores[0], &other, &t.bases[0].key());
        let mut stranger =
            Base::join(&other, elsewhere.key(), "member", &["log"], Chat).expect("join");
        stranger.append(&[b"wrong base"]).expect("append");
        stranger.writer_key().expect("a writer")
    };
    sync(&other, &t.stores[0], &stranger_key);
    t.bases[0]
        .append(&[format!("add:{stranger_key}").as_bytes()])
        .expect("add");
    t.settle();
    let info = t.bases[0].info();
    assert!(
        info.faulty
            .iter()
            .any(|(k, why)| *k == stranger_key && why.contains("another base")),
        "{:?}",
        info.faulty
    );
    assert!(!log(&t.bases[0]).iter().any(|l| l.ends_with(":wrong base")));
}

/// An application that writes to a view it was not opened with.
struct Lost;

impl Apply for Lost {
    fn apply(&mut self, _: &Batch, view: &mut View<'_>, _: &mut Host<'_>) -> Result<()> {
        view.append("nowhere", b"x")
    }
}

#[test]
fn a_view_not_opened_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut base = Base::create(&store, "lost", &[], &["log"], Lost).expect("create");
    let err = base.append(&[b"v"]).expect_err("no such view");
    assert!(err.to_string().contains("'nowhere'"), "{err}");
}

/// An application that logs each value after the log's length (`dup`
/// repeats the previous entry), and fails on `bad` (after its log entry and
/// a membership change).
struct Picky;

impl Apply for Picky {
    fn apply(&mut self, batch: &Batch, view: &mut View<'_>, host: &mut Host<'_>) -> Result<()> {
        for value in batch.values.iter().flatten() {
            // The batch reads what it appended so far.
            let n = view.len("log")?;
            let entry = match value.as_slice() {
                b"dup" => view.get("log", n - 1)?,
                v => [format!("{n}:").as_bytes(), v].concat(),
            };
            view.append("log", &entry)?;
            if value.as_slice() == b"bad" {
                host.add_writer(CoreKey([9; 32]), false)?;
                view.append("nowhere", value)?;
            }
        }
        Ok(())
    }
}

#[test]
fn a_failing_batch_leaves_the_views_and_writers_as_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut base = Base::create(&store, "picky", &[], &["log"], Picky).expect("create");
    base.append(&[b"one", b"dup"]).expect("append");
    let err = base.append(&[b"three", b"bad"]).expect_err("no such view");
    assert!(err.to_string().contains("'nowhere'"), "{err}");
    let view = base.view("log").expect("view");
    assert_eq!(view.info().expect("info").length, 2, "nothing of the batch");
    assert_eq!(view.get(0).expect("block"), b"0:one");
    assert_eq!(view.get(1).expect("block"), b"0:one");
    assert_eq!(base.info().views[0].length, 2);
    assert!(!base.info().writers.contains(&CoreKey([9; 32])));
}

#[test]
fn a_lone_indexer_settles_its_acks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut base = Base::create(&store, "solo", &[], &["log"], Chat).expect("create");
    base.append(&[b"one", b"two"]).expect("append");
    let before = base.info();
    assert_eq!(before.views[0].length, 2);
    assert!(
        before.views[0].indexed_length < 2,
        "not final before any ack"
    );
    let acks = base.ack_until_settled(true).expect("acks");
    assert!((1..hyper_autobase::MAX_ACKS).contains(&acks), "{acks} acks");
    let after = base.info();
    assert_eq!(after.views[0].indexed_length, 2);
    assert_eq!(
        base.ack_until_settled(true).expect("acks"),
        0,
        "nothing left to index"
    );
}

/// Appends every value to every view.
struct Everywhere(Vec<String>);

impl Apply for Everywhere {
    fn apply(&mut self, batch: &Batch, view: &mut View<'_>, _: &mut Host<'_>) -> Result<()> {
        for value in batch.values.iter().flatten() {
            for name in &self.0 {
                view.append(name, value)?;
            }
        }
        Ok(())
    }
}

#[test]
fn more_views_than_one_checkpoint_holds_are_signed_over_several_nodes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let names: Vec<String> = (0..hyper_autobase::MAX_CHECKPOINT + 3)
        .map(|i| format!("v{i}"))
        .collect();
    let views: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut base =
        Base::create(&store, "many", &[], &views, Everywhere(names.clone())).expect("create");
    base.append(&[b"x"]).expect("append");
    base.ack_until_settled(true).expect("acks");
    let info = base.info();
    // Its own nodes stay valid (a checkpoint past the limit would make the
    // writer faulty), and every view gets signed.
    assert!(info.faulty.is_empty(), "{:?}", info.faulty);
    assert!(
        info.views.iter().all(|v| v.signed_length == 1),
        "{:?}",
        info.views
    );
}

#[test]
fn a_reopened_base_reading_its_history_again_refuses_no_signature() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let mut base = Base::create(&store, "solo", &[], &["log"], Chat).expect("create");
    let rounds = hyper_autobase::checkpoint::MAX_WAITING_SIGNATURES as u64 + 4;
    for i in 0..rounds {
        base.append(&[format!("m{i}").as_bytes()]).expect("append");
        base.ack_until_settled(true).expect("acks");
    }
    let info = base.info();
    assert_eq!(info.views[0].signed_length, rounds);
    drop(base);
    // Reopening reads every old checkpoint again: all stale, none waits,
    // none is dropped or refused.
    let base = Base::create(&store, "solo", &[], &["log"], Chat).expect("reopen");
    let info = base.info();
    assert_eq!(info.views[0].signed_length, rounds);
    assert!(
        info.refused_signatures.is_empty(),
        "{:?}",
        info.refused_signatures
    );
}

/// The log a store that holds every core of `from`'s base, and nothing
/// else, builds from scratch.
fn replayed(from: &Store, key: CoreKey, cores: &[CoreKey]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let fresh = Store::open(dir.path()).expect("store");
    for k in cores {
        sync(from, &fresh, k);
    }
    let base = Base::join(&fresh, key, "chat", &["log"], Chat).expect("join");
    log(&base)
}

#[test]
fn a_reopened_base_resumes_from_its_undo_log() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[1].append(&[b"b1"]).expect("append");
    t.bases[2].append(&[b"c1", b"c2"]).expect("append");
    t.settle();
    t.bases[0].append(&[b"a-unindexed"]).expect("append");
    let before = log(&t.bases[0]);
    let batches = t.bases[0].info().batches;
    let (key, cores) = (t.bases[0].key(), t.bases[0].cores());
    let store = t.stores[0].clone();
    drop(t.bases.remove(0));
    let reopened = Base::create(&store, "chat", &[], &["log"], Chat).expect("reopen");
    assert_eq!(log(&reopened), before);
    assert_eq!(log(&reopened), replayed(&store, key, &cores));
    // Every batch came from the undo log: none was applied again.
    assert_eq!(reopened.info().resumed, batches);
    assert_eq!(reopened.info().writers.len(), 3, "the added writers stay");
    // A base that ends without being dropped (a crash) leaves the log
    // behind its views: the batches past it are applied again.
    let mut crashed = reopened;
    crashed.append(&[b"a-unrecorded"]).expect("append");
    let (after, batches) = (log(&crashed), crashed.info().batches);
    std::mem::forget(crashed);
    let reopened = Base::create(&store, "chat", &[], &["log"], Chat).expect("reopen");
    assert_eq!(log(&reopened), after);
    assert_eq!(reopened.info().resumed, batches - 1);
}

#[test]
fn a_reorder_after_reopen_rolls_back_the_resumed_views() {
    let mut t = Three::new();
    t.settle();
    // Two concurrent batches: the lower writer key sorts first.
    let (k1, k2) = (
        t.bases[1].writer_key().expect("a writer"),
        t.bases[2].writer_key().expect("a writer"),
    );
    let (low, high) = if k1 < k2 { (1, 2) } else { (2, 1) };
    t.bases[low].append(&[b"low"]).expect("append");
    t.bases[high].append(&[b"high"]).expect("append");
    let (key, low_key) = (
        t.bases[0].key(),
        t.bases[low].writer_key().expect("a writer"),
    );
    sync(
        &t.stores[high],
        &t.stores[0],
        &t.bases[high].writer_key().expect("a writer"),
    );
    t.bases[0].update().expect("update");
    assert!(
        log(&t.bases[0])
            .last()
            .is_some_and(|l| l.ends_with(":high"))
    );
    let store = t.stores[0].clone();
    drop(t.bases.remove(0));
    let mut reopened = Base::create(&store, "chat", &[], &["log"], Chat).expect("reopen");
    let resumed = reopened.info().resumed;
    assert_eq!(resumed, reopened.info().batches);
    // The node that sorts before the applied tail arrives after reopen.
    sync(&t.stores[low], &store, &low_key);
    let u = reopened.update().expect("update");
    assert_eq!(u.undo, 1, "the high batch was rolled back");
    let now = log(&reopened);
    assert!(now[now.len() - 2].ends_with(":low") && now[now.len() - 1].ends_with(":high"));
    assert_eq!(now, replayed(&store, key, &reopened.cores()));
    // And the record written after the reorder resumes again.
    drop(reopened);
    let again = Base::create(&store, "chat", &[], &["log"], Chat).expect("reopen");
    assert_eq!(log(&again), now);
    assert_eq!(again.info().resumed, again.info().batches);
}

/// Reopens base `chat` of `store` after `damage` and checks its log equals
/// `expected`; returns how many batches it resumed from its undo log (a
/// base whose log was dropped fast-forwards to its signed state, which
/// counts too: neither is applied again).
fn reopen_after(store: &Store, expected: &[String], damage: impl FnOnce(&Store, CoreKey)) -> u64 {
    let key = Base::create(store, "chat", &[], &["log"], Chat)
        .expect("open")
        .key();
    damage(store, key);
    let base = Base::create(store, "chat", &[], &["log"], Chat).expect("reopen");
    assert_eq!(log(&base), expected);
    let info = base.info();
    if info.resumed == 0 {
        0
    } else {
        info.resumed + info.fast_forwarded
    }
}

#[test]
fn a_bad_or_stale_undo_log_falls_back_to_a_rebuild() {
    let mut t = Three::new();
    t.sync_all();
    t.bases[1].append(&[b"b1", b"b2"]).expect("append");
    t.bases[0].append(&[b"a1"]).expect("append");
    t.settle();
    let before = log(&t.bases[0]);
    let batches = t.bases[0].info().batches;
    let store = t.stores[0].clone();
    drop(t.bases.remove(0));
    let named = |store: &Store, key: CoreKey, what: &str| {
        store
            .named(&format!("autobase {key} {what}"))
            .expect("core")
    };
    // An entry that does not decode.
    let resumed = reopen_after(&store, &before, |s, k| {
        named(s, k, "undo").append(b"\xff\xff").expect("append");
    });
    assert_eq!(resumed, 0, "a corrupt record is dropped");
    // A view shorter than the record says (stale record).
    let resumed = reopen_after(&store, &before, |s, k| {
        let view = named(s, k, "view log");
        view.truncate(view.info().expect("info").length - 1)
            .expect("truncate");
    });
    assert_eq!(resumed, 0, "a record the view does not match is dropped");
    // A view whose content differs at the recorded length.
    let resumed = reopen_after(&store, &before, |s, k| {
        let view = named(s, k, "view log");
        let length = view.info().expect("info").length;
        view.truncate(length - 1).expect("truncate");
        view.append(b"forged").expect("append");
    });
    assert_eq!(resumed, 0, "a record whose hash does not match is dropped");
    // A view longer than the record (a crash between the view's append and
    // the record's): the extra entry goes, the rest resumes.
    let resumed = reopen_after(&store, &before, |s, k| {
        named(s, k, "view log")
            .append(b"unrecorded")
            .expect("append");
    });
    assert_eq!(resumed, batches);
    // A missing record: rebuilt, then recorded again.
    let resumed = reopen_after(&store, &before, |s, k| {
        named(s, k, "undo").truncate(0).expect("truncate");
    });
    assert_eq!(resumed, 0);
    assert_eq!(reopen_after(&store, &before, |_, _| {}), batches);
}

/// Three stores in step, then stores 1 and 2 append `n` one-value batches
/// each while apart.
fn apart(n: usize) -> Three {
    let mut t = Three::new();
    t.sync_all();
    for i in 0..n {
        t.bases[1]
            .append(&[format!("b{i}").as_bytes()])
            .expect("append");
        t.bases[2]
            .append(&[format!("c{i}").as_bytes()])
            .expect("append");
    }
    t
}

/// Store 1 and store 2 append `n` one-value batches each while apart; then
/// store 1 gets store 2's writer core `chunk` blocks at a time (it knows
/// the whole length from the first proof on), updating after each chunk.
/// Returns the batches store 1 rolled back in all, and the three.
fn merge_in_chunks(n: usize, chunk: u64) -> (usize, Three) {
    let mut t = apart(n);
    let key = t.bases[2].writer_key().expect("a writer");
    let length = t.stores[2]
        .replica(&key)
        .expect("core")
        .info()
        .expect("info")
        .length;
    let mut undone = 0;
    let mut from = 0;
    while from < length {
        sync_blocks(&t.stores[2], &t.stores[1], &key, from..from + chunk);
        undone += t.bases[1].update().expect("update").undo;
        from += chunk;
    }
    (undone, t)
}

#[test]
fn a_download_in_chunks_rolls_the_tip_back_once_not_once_per_chunk() {
    let n = 200;
    let (undone, mut t) = merge_in_chunks(n, 20);
    // Store 2's first chunk sorts among store 1's own batches, so those are
    // rolled back once; with the tip held back while store 2's log is still
    // coming, no later chunk rolls anything back (without it: about n per
    // chunk, ~1,000 here).
    assert!(
        undone <= n,
        "{undone} batches rolled back for {n} of our own"
    );
    // The merged view is the one a store given everything at once has.
    let merged = log(&t.bases[1]);
    assert_eq!(merged.len(), 2 * n);
    t.sync_all();
    assert_eq!(log(&t.bases[1]), merged);
    assert_eq!(log(&t.bases[0]), merged);
}

#[test]
fn a_stalled_download_stops_holding_the_tip_back() {
    let n = 50;
    let mut t = apart(n);
    let key = t.bases[2].writer_key().expect("a writer");
    // Half of store 2's log arrives, the rest is known but never comes.
    sync_blocks(&t.stores[2], &t.stores[1], &key, 0..n as u64 / 2);
    t.bases[1].update().expect("update");
    let held = log(&t.bases[1]).len();
    let arrived = n / 2 - 1; // block 0 is the header
    assert!(
        held < n + arrived,
        "while store 2's log is coming, store 1's later batches wait ({held} applied)"
    );
    std::thread::sleep(hyper_autobase::HOLD_BACK + std::time::Duration::from_millis(50));
    t.bases[1].update().expect("update");
    assert_eq!(
        log(&t.bases[1]).len(),
        n + arrived,
        "after the download stalled, every batch here is applied"
    );
}
