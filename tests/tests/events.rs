//! Typed per-core events on real stores: what a writer and a replica see,
//! in order, and a reader thread following a writer.

mod common;

use std::time::Duration;

use common::{fetch, stores};
use hyper_core::Event;

#[test]
fn a_writer_and_a_replica_see_what_changed_in_order() {
    let (_d, s) = stores(2);
    let writer = s[0].create_core().expect("core");
    let events = writer.events();
    writer
        .append_batch(&[b"aa".as_slice(), b"bbb"])
        .expect("append");
    writer.append(b"c").expect("append");
    // Through another handle to the same core.
    let other = s[0].core(&writer.key()).expect("core");
    other
        .append_batch::<&[u8]>(&[])
        .expect("empty batch, no event");
    let dd = [b"dd".as_slice()];
    let mut batch = s[0].batch();
    batch.append(&other, &dd);
    batch.commit().expect("store batch");
    assert_eq!(writer.clear(0..1).expect("clear"), 2);

    let reader = s[1].replica(&writer.key()).expect("replica");
    let replica_events = reader.events();
    fetch(&writer, &reader, 2).expect("fetch");
    writer.truncate(2).expect("truncate");
    writer.append(b"new").expect("append");
    fetch(&writer, &reader, 2).expect("follow the fork");

    let seen: Vec<Event> = std::iter::from_fn(|| events.try_next()).collect();
    assert_eq!(
        seen,
        vec![
            Event::Appended {
                length: 2,
                byte_length: 5
            },
            Event::Appended {
                length: 3,
                byte_length: 6
            },
            Event::Appended {
                length: 4,
                byte_length: 8
            },
            Event::Cleared {
                start: 0,
                end: 1,
                freed: 2
            },
            Event::Truncated { fork: 1, length: 2 },
            Event::Appended {
                length: 3,
                byte_length: 8
            },
        ]
    );
    let seen: Vec<Event> = std::iter::from_fn(|| replica_events.try_next()).collect();
    assert_eq!(
        seen,
        vec![
            Event::Appended {
                length: 4,
                byte_length: 8
            },
            Event::Downloaded { index: 2, bytes: 1 },
            // The replica keeps the prefix the new tree proves unchanged.
            Event::Truncated { fork: 1, length: 2 },
            Event::Appended {
                length: 3,
                byte_length: 8
            },
            Event::Downloaded { index: 2, bytes: 3 },
        ]
    );
    // A failed apply (a proof that does not verify) sends nothing.
    let mut proof = writer.proof(&common::request(&reader, 1)).expect("proof");
    if let Some(b) = proof.block.as_mut() {
        b.value[0] ^= 1;
    }
    assert!(reader.apply(&[proof]).is_err());
    assert_eq!(replica_events.try_next(), None);
}

#[test]
fn a_reader_thread_follows_appends_and_ends_when_the_core_is_gone() {
    let (_d, s) = stores(1);
    let core = s[0].create_core().expect("core");
    let events = core.events();
    let reader = std::thread::spawn(move || {
        let mut lengths = Vec::new();
        for event in events {
            if let Event::Appended { length, .. } = event {
                lengths.push(length);
            }
        }
        lengths
    });
    for i in 0..50u32 {
        core.append(&i.to_le_bytes()).expect("append");
    }
    // A dropped receiver is unregistered; appends go on.
    let dropped = core.events();
    drop(dropped);
    core.append(b"last").expect("append");
    // The iterator ends once no handle to the core is left.
    drop(core);
    drop(s);
    let lengths = reader.join().expect("reader thread");
    assert_eq!(lengths, (1..=51).collect::<Vec<u64>>());

    // next_timeout gives up after its limit.
    let (_d, s) = stores(1);
    let core = s[0].create_core().expect("core");
    let events = core.events();
    let start = std::time::Instant::now();
    assert_eq!(events.next_timeout(Duration::from_millis(50)), None);
    assert!(start.elapsed() >= Duration::from_millis(50));
}
