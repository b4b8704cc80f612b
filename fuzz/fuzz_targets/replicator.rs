//! A live replicator (`hyper_wire::Replicator` over a real replica core in
//! a redb store in a tempdir) facing one hostile peer whose every message
//! the fuzzer chooses. The peer holds a real writer core, so it can answer
//! honestly, answer with mutated bytes, claim blocks it may not have,
//! ask for blocks, time out, close and reopen; the application asks for
//! gets and downloads. Each `Event::Store` is run at once with
//! `Core::apply`, as the driver does.
//!
//! Invariants checked after every step:
//! - the replicator asks the peer only for blocks the peer claimed
//!   (`Range`/`Bitfield`), and never has more block requests in flight to
//!   it than `Config::max_inflight`;
//! - what it tells the peer it holds (`Bitfield`, `Range`) it holds;
//! - the blocks it serves are the writer's bytes;
//! - a finished get names a block that is stored, with the writer's bytes;
//!
//! and at the end: every block the replica holds is the writer's block (no
//! unverified block is ever stored as had).
#![no_main]

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::{Duration, Instant};

use hyper_core::{Core, Durability, Store, StoreOptions};
use hyper_fuzz::Script;
use hyper_wire::messages::{
    self, Bitfield, Body, Cancel, Close, Message, NoData, NodeRequest, Open, Request, Sync,
    UpgradeRequest, Want,
};
use hyper_wire::{
    Capabilities, Config, Event, PeerId, Replicator, data_from_proof, encode_frame,
    request_from_wire,
};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

const BLOCKS: u64 = 40;
const MAX_INFLIGHT: usize = 4;

struct Writer {
    _dir: tempfile::TempDir,
    _store: Store,
    core: Core,
    blocks: Vec<Vec<u8>>,
}

/// A temporary directory in memory where there is one (`/dev/shm`): a
/// store's creation syncs its file, which on a disk costs more than the
/// whole input.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir")
}

fn eventual(dir: &std::path::Path) -> Store {
    Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )
    .expect("a store in a tempdir")
}

thread_local! {
    static WRITER: Writer = {
        let dir = scratch();
        let store = eventual(dir.path());
        let core = store.create_core().expect("core");
        let blocks: Vec<Vec<u8>> = (0..BLOCKS)
            .map(|i| format!("block {i} ").repeat(1 + (i as usize % 7)).into_bytes())
            .collect();
        core.append_batch(&blocks).expect("append");
        Writer { _dir: dir, _store: store, core, blocks }
    };
    /// One reader store for every input (creating a store costs more
    /// than an input): the replica is deleted after each.
    static READER: Reader = {
        let dir = scratch();
        let store = eventual(dir.path());
        Reader { _dir: dir, store }
    };
}

struct Reader {
    _dir: tempfile::TempDir,
    store: Store,
}

/// The hostile peer's view of the session.
struct Session<'w> {
    writer: &'w Writer,
    replica: Core,
    replicator: Replicator<Core>,
    peer: PeerId,
    caps: Capabilities,
    now: Instant,
    /// Block ranges the peer ever claimed to hold.
    claimed: Vec<Range<u64>>,
    /// Requests the replicator sent and the peer has not answered.
    asked: Vec<Request>,
    /// Of those, the ids asking for a block.
    block_asks: BTreeSet<u64>,
    gone: bool,
}

impl Session<'_> {
    fn deliver(&mut self, body: Body) {
        self.deliver_message(Message {
            channel: 0,
            body: Some(body),
        });
    }

    fn deliver_message(&mut self, message: Message) {
        match &message.body {
            Some(Body::Data(d)) => self.answered(d.request),
            Some(Body::NoData(n)) => self.answered(n.request),
            Some(Body::Close(_)) => {
                // The channel's requests die with it, unanswered.
                self.asked.clear();
                self.block_asks.clear();
            }
            Some(Body::Range(r)) if !r.drop => {
                self.claimed.push(r.start..r.start.saturating_add(r.length))
            }
            Some(Body::Bitfield(b)) => {
                let mut at = b.start;
                for (i, run) in b.runs.iter().enumerate() {
                    let end = at.saturating_add(*run);
                    if i % 2 == 0 {
                        self.claimed.push(at..end);
                    }
                    at = end;
                }
            }
            _ => {}
        }
        self.replicator.handle_message(self.now, self.peer, message);
        self.pump();
    }

    fn answered(&mut self, id: u64) {
        self.asked.retain(|r| r.id != id);
        self.block_asks.remove(&id);
    }

    fn open(&mut self) {
        let key = self.writer.core.key();
        self.deliver(Body::Open(Open {
            discovery_key: key.discovery_key().0.to_vec(),
            capability: self.caps.local(&key).to_vec(),
        }));
    }

    /// The writer's honest answer to request `at` of those outstanding.
    fn honest(&mut self, at: usize) -> Option<Body> {
        if self.asked.is_empty() {
            return None;
        }
        let request = self.asked[at % self.asked.len()].clone();
        Some(match self.writer.core.proof(&request_from_wire(&request)) {
            Ok(proof) => Body::Data(data_from_proof(request.id, proof)),
            Err(_) => Body::NoData(NoData {
                request: request.id,
            }),
        })
    }

    /// Moves every message and event out of the replicator, checking each.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some((to, message)) = self.replicator.poll_transmit() {
                moved = true;
                assert_eq!(to, self.peer, "a message to a peer that does not exist");
                self.check_sent(message);
            }
            while let Some(event) = self.replicator.poll_event() {
                moved = true;
                self.check_event(event);
            }
            if !moved {
                break;
            }
        }
    }

    fn holds(&self, range: Range<u64>) -> bool {
        range.end - range.start <= BLOCKS
            && range.clone().all(|i| self.replica.has(i).unwrap_or(false))
    }

    fn check_sent(&mut self, message: Message) {
        match message.body {
            Some(Body::Request(request)) => {
                if let Some(block) = &request.block {
                    let index = block.index;
                    assert!(
                        self.claimed.iter().any(|r| r.contains(&index)),
                        "asked for block {index}, which the peer never claimed ({:?})",
                        self.claimed
                    );
                    self.block_asks.insert(request.id);
                    assert!(
                        self.block_asks.len() <= MAX_INFLIGHT,
                        "{} block requests in flight to one peer (max {MAX_INFLIGHT})",
                        self.block_asks.len()
                    );
                }
                self.asked.push(request);
            }
            Some(Body::Cancel(Cancel { request })) => self.answered(request),
            Some(Body::Bitfield(b)) => {
                let mut at = b.start;
                for (i, run) in b.runs.iter().enumerate() {
                    let end = at.checked_add(*run).expect("a bitfield that overflows");
                    if i % 2 == 0 {
                        assert!(self.holds(at..end), "claims {at}..{end} it does not hold");
                    }
                    at = end;
                }
            }
            Some(Body::Range(r)) if !r.drop => {
                let end = r
                    .start
                    .checked_add(r.length)
                    .expect("a range that overflows");
                assert!(
                    self.holds(r.start..end),
                    "claims {}..{end} it does not hold",
                    r.start
                );
            }
            Some(Body::Data(d)) => {
                if let Some(block) = &d.block {
                    let expected = self.writer.blocks.get(block.index as usize);
                    assert_eq!(
                        Some(&block.value),
                        expected,
                        "served a block not the writer's"
                    );
                }
            }
            _ => {}
        }
    }

    fn check_event(&mut self, event: Event) {
        match event {
            Event::Store { batch, proofs, .. } => {
                let result = self.replica.apply(&proofs);
                self.replicator.stored(self.now, batch, result);
            }
            Event::Got { index, .. } => {
                let got = self
                    .replica
                    .get(index)
                    .expect("a block reported got is stored");
                assert_eq!(Some(&got), self.writer.blocks.get(index as usize));
            }
            Event::PeerError { .. } => self.gone = true,
            _ => {}
        }
    }

    fn step(&mut self, script: &mut Script) -> Option<()> {
        let op = script.u8()?;
        match op % 13 {
            0 => self.deliver(Body::Sync(Sync {
                fork: 0,
                length: if op & 0x80 == 0 {
                    BLOCKS
                } else {
                    script.uint(2)?
                },
                remote_length: 0,
                can_upgrade: true,
                uploading: true,
                downloading: op & 0x40 != 0,
            })),
            1 => {
                let start = script.uint(1)?;
                let runs = (0..script.u8()? % 6)
                    .map(|_| script.uint(1).unwrap_or(1))
                    .collect();
                self.deliver(Body::Bitfield(Bitfield { start, runs }));
            }
            2 => {
                let start = script.uint(1)?;
                let length = script.uint(1)?;
                self.deliver(Body::Range(messages::Range {
                    drop: op & 0x80 != 0,
                    start,
                    length,
                }));
            }
            3 => {
                let at = usize::from(script.u8()?);
                if let Some(body) = self.honest(at) {
                    self.deliver(body);
                }
            }
            4 => {
                // An honest answer with one byte changed.
                let (at, pos, xor) = (script.u8()?, script.uint(2)?, script.u8()?.max(1));
                let body = self.honest(usize::from(at))?;
                let frame = encode_frame(&Message {
                    channel: 0,
                    body: Some(body),
                });
                let mut bytes = frame.get(frame.len().min(4)..)?.to_vec();
                if bytes.is_empty() {
                    return Some(());
                }
                let i = pos as usize % bytes.len();
                bytes[i] ^= xor;
                if let Ok(m) = Message::decode(bytes.as_slice()) {
                    self.deliver_message(m);
                }
            }
            5 => {
                if let Ok(m) = Message::decode(script.record()?) {
                    self.deliver_message(m);
                }
            }
            6 => {
                let index = script.uint(1)? % (BLOCKS + 4);
                let key = self.writer.core.key();
                self.replicator
                    .get(self.now, key, index, Duration::from_secs(10));
                self.pump();
            }
            7 => {
                let (start, end) = (script.uint(1)? % BLOCKS, script.uint(1)?);
                let end = (end % 64 != 0).then_some(start + end % 64);
                let key = self.writer.core.key();
                self.replicator
                    .download(self.now, key, start, end, op & 0x80 != 0);
                self.pump();
            }
            8 => {
                self.now += Duration::from_millis(100 * u64::from(script.u8()?));
                self.replicator.handle_timeout(self.now);
                self.pump();
            }
            9 => {
                let (id, index, nodes) = (script.uint(1)?, script.uint(1)?, script.uint(1)?);
                self.deliver(Body::Request(Request {
                    id,
                    fork: 0,
                    block: Some(NodeRequest { index, nodes }),
                    upgrade: (op & 0x80 != 0).then_some(UpgradeRequest { start: 0 }),
                    manifest: op & 0x40 != 0,
                    ..Request::default()
                }));
            }
            10 => {
                let (start, length) = (script.uint(1)?, script.uint(1)?);
                self.deliver(Body::Want(Want { start, length }));
            }
            11 => {
                self.deliver(Body::Close(Close {}));
                self.open();
            }
            _ => {
                let bytes = script.uint(3)? as usize;
                self.replicator.set_send_budget(self.peer, bytes);
                self.pump();
            }
        }
        Some(())
    }
}

fuzz_target!(|data: &[u8]| {
    WRITER.with(|writer| {
        READER.with(|reader| {
            let key = writer.core.key();
            let replica = reader.store.replica(&key).expect("replica");
            run(writer, replica, data);
            // The next input starts from an empty replica again.
            reader.store.delete(&key).expect("delete the replica");
        });
    });
});

fn run(writer: &Writer, replica: Core, data: &[u8]) {
    let now = Instant::now();
    let mut replicator = Replicator::new(Config {
        max_inflight: MAX_INFLIGHT,
        max_batch: 8,
        ..Config::default()
    });
    replicator.add_core(now, replica.clone());
    let handshake_hash = [7; 32];
    let peer = replicator.connect(now, Capabilities::new(handshake_hash, true));
    let mut session = Session {
        writer,
        replica,
        replicator,
        peer,
        caps: Capabilities::new(handshake_hash, false),
        now,
        claimed: Vec::new(),
        asked: Vec::new(),
        block_asks: BTreeSet::new(),
        gone: false,
    };
    session.pump();
    session.open();
    let mut script = Script::new(data);
    while !session.gone && session.step(&mut script).is_some() {}
    // Whatever the peer did: every block held is the writer's.
    for (i, block) in writer.blocks.iter().enumerate() {
        if session.replica.has(i as u64).unwrap_or(false) {
            assert_eq!(
                &session.replica.get(i as u64).expect("a held block reads"),
                block
            );
        }
    }
    let length = session.replica.info().expect("info").length;
    assert!(
        length <= BLOCKS,
        "the replica is longer ({length}) than the writer"
    );
}
