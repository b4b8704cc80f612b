//! What a reader asks a peer to report (`Want`) is taken back (`Unwant`)
//! when the get or download that wanted it ends, and only the part nothing
//! else still wants: a long-running sparse reader's want set stays empty
//! instead of growing until the peer refuses more ranges.

use std::time::{Duration, Instant};

use hyper_core::{Core, Durability, Store, StoreOptions};
use hyper_wire::{Capabilities, Config, Event, PeerId, Replicator};

const STORE: StoreOptions = StoreOptions {
    durability: Durability::Eventual,
    cache_bytes: StoreOptions::DEFAULT_CACHE_BYTES,
};

struct Side {
    _dir: tempfile::TempDir,
    core: Core,
    replicator: Replicator<Core>,
    peer: PeerId,
    events: Vec<Event>,
}

fn side(core: impl FnOnce(&Store) -> Core, now: Instant, initiator: bool) -> Side {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), STORE).expect("store");
    let core = core(&store);
    let mut replicator = Replicator::new(Config::default());
    replicator.add_core(now, core.clone());
    let peer = replicator.connect(now, Capabilities::new([3; 32], initiator));
    Side {
        _dir: dir,
        core,
        replicator,
        peer,
        events: Vec::new(),
    }
}

/// Delivers messages both ways and applies stores until nothing moves.
fn settle(now: Instant, a: &mut Side, b: &mut Side) {
    while pump(now, a, b) | pump(now, b, a) {}
}

/// Runs `from`'s events and delivers its messages to `to`; whether
/// anything moved.
fn pump(now: Instant, from: &mut Side, to: &mut Side) -> bool {
    let mut moved = false;
    while let Some(event) = from.replicator.poll_event() {
        moved = true;
        match event {
            Event::Store { batch, proofs, .. } => {
                let result = from.core.apply(&proofs);
                from.replicator.stored(now, batch, result);
            }
            other => from.events.push(other),
        }
    }
    while let Some((_, message)) = from.replicator.poll_transmit() {
        moved = true;
        to.replicator.handle_message(now, to.peer, message);
    }
    moved
}

fn writer_and_reader(now: Instant) -> (Side, Side) {
    let mut writer = side(|s| s.create_core().expect("core"), now, true);
    let blocks: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 16]).collect();
    writer.core.append_batch(&blocks).expect("append");
    writer.replicator.local_changed(now, writer.core.key());
    let key = writer.core.key();
    let mut reader = side(|s| s.replica(&key).expect("replica"), now, false);
    settle(now, &mut writer, &mut reader);
    (writer, reader)
}

fn got(side: &Side) -> usize {
    side.events
        .iter()
        .filter(|e| matches!(e, Event::Got { .. }))
        .count()
}

#[test]
fn a_get_of_a_block_nobody_has_yet_is_unwanted_once_it_arrives() {
    let now = Instant::now();
    let (mut writer, mut reader) = writer_and_reader(now);
    let key = writer.core.key();
    // Blocks 15 and 17 do not exist yet: the reader asks to be told.
    for index in [15, 17] {
        reader
            .replicator
            .get(now, key, index, Duration::from_secs(60));
    }
    settle(now, &mut writer, &mut reader);
    assert_eq!(
        writer.replicator.peer_wants(writer.peer, &key),
        vec![15..16, 17..18]
    );
    let more: Vec<Vec<u8>> = (10..20u8).map(|i| vec![i; 16]).collect();
    writer.core.append_batch(&more).expect("append");
    writer.replicator.local_changed(now, key);
    settle(now, &mut writer, &mut reader);
    assert_eq!(got(&reader), 2, "both gets answered");
    assert_eq!(
        writer.replicator.peer_wants(writer.peer, &key),
        Vec::<std::ops::Range<u64>>::new()
    );
}

#[test]
fn an_ended_get_keeps_what_a_live_download_still_wants() {
    let now = Instant::now();
    let (mut writer, mut reader) = writer_and_reader(now);
    let key = writer.core.key();
    reader.replicator.download(now, key, 0, None, true);
    settle(now, &mut writer, &mut reader);
    assert_eq!(
        writer.replicator.peer_wants(writer.peer, &key),
        vec![0..u64::MAX]
    );
    // A get past the end while the live download wants everything: when
    // it times out, nothing may be unwanted.
    reader.replicator.get(now, key, 40, Duration::from_secs(1));
    settle(now, &mut writer, &mut reader);
    let later = now + Duration::from_secs(2);
    reader.replicator.handle_timeout(later);
    settle(later, &mut writer, &mut reader);
    assert!(
        reader
            .events
            .iter()
            .any(|e| matches!(e, Event::Failed { .. })),
        "the get timed out"
    );
    assert_eq!(
        writer.replicator.peer_wants(writer.peer, &key),
        vec![0..u64::MAX]
    );
}

#[test]
fn a_cancelled_get_is_unwanted() {
    let now = Instant::now();
    let (mut writer, mut reader) = writer_and_reader(now);
    let key = writer.core.key();
    let handle = reader.replicator.get(now, key, 30, Duration::from_secs(60));
    settle(now, &mut writer, &mut reader);
    assert_eq!(
        writer.replicator.peer_wants(writer.peer, &key),
        vec![30..31]
    );
    reader.replicator.cancel(handle);
    settle(now, &mut writer, &mut reader);
    assert!(writer.replicator.peer_wants(writer.peer, &key).is_empty());
}

#[test]
fn wants_are_answered_within_the_send_budget() {
    let now = Instant::now();
    let (mut writer, mut reader) = writer_and_reader(now);
    let key = writer.core.key();
    // 400 blocks, every other one cleared: a Bitfield of 400 runs answers
    // a Want of the whole core.
    let more: Vec<Vec<u8>> = (0..390u16).map(|i| i.to_le_bytes().to_vec()).collect();
    writer.core.append_batch(&more).expect("append");
    for i in (0..400).step_by(2) {
        writer.core.clear(i..i + 1).expect("clear");
    }
    writer.replicator.local_changed(now, key);
    settle(now, &mut writer, &mut reader);
    // The peer does not read: 1,000 bytes may still go to it.
    writer.replicator.set_send_budget(writer.peer, 1000);
    for _ in 0..64 {
        let want = hyper_wire::messages::Message {
            channel: 1,
            body: Some(hyper_wire::messages::Body::Want(
                hyper_wire::messages::Want {
                    start: 0,
                    length: 400,
                },
            )),
        };
        writer.replicator.handle_message(now, writer.peer, want);
    }
    let mut sent = Vec::new();
    while let Some((_, m)) = writer.replicator.poll_transmit() {
        sent.push(prost::Message::encoded_len(&m));
    }
    let one = *sent.iter().max().expect("some Want was answered");
    assert!(one > 300, "an answer of {one} bytes");
    let total: usize = sent.iter().sum();
    assert!(
        total <= 1000 + one,
        "{total} bytes for a budget of 1,000 ({} answers)",
        sent.len()
    );
    // Once it reads, the rest are answered.
    writer.replicator.set_send_budget(writer.peer, usize::MAX);
    let mut rest = 0;
    while let Some((_, m)) = writer.replicator.poll_transmit() {
        rest += usize::from(matches!(
            m.body,
            Some(hyper_wire::messages::Body::Bitfield(_))
        ));
    }
    assert!(rest >= 60, "{rest} Bitfields after it read");
}
