//! Read streams over a core on a real store: a live stream read while a
//! writer thread appends, a bounded range, a byte stream from a byte
//! offset, and a block writer (std::io::Write) that they read back.

use std::io::Write as _;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use hyper_core::{BlockWriter, ByteStream, Core, ReadOptions, ReadStream, Store};

/// Runs a future on this thread, parking between wake-ups (no runtime).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_secs(1));
    }
}

fn core() -> (tempfile::TempDir, Store, Core) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let core = store.create_core().expect("core");
    (dir, store, core)
}

#[test]
fn a_live_stream_reads_every_block_while_a_writer_appends() {
    let (_d, _s, core) = core();
    core.append(b"block 0").expect("append");
    let mut stream = ReadStream::new(
        Arc::new(core.clone()),
        &ReadOptions {
            live: true,
            ..ReadOptions::default()
        },
    )
    .expect("stream");
    const BLOCKS: u64 = 300;
    let writer = {
        let core = core.clone();
        std::thread::spawn(move || {
            for i in 1..BLOCKS {
                core.append(format!("block {i}").as_bytes())
                    .expect("append");
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        })
    };
    let started = Instant::now();
    for i in 0..BLOCKS {
        let (index, bytes) = block_on(stream.next())
            .expect("live: no end")
            .expect("block");
        assert_eq!((index, bytes), (i, format!("block {i}").into_bytes()));
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "stalled at {i}"
        );
    }
    writer.join().expect("writer");
    // Caught up: it waits for the next append, and reads it.
    let late = {
        let core = core.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            core.append(b"late").expect("append");
        })
    };
    assert_eq!(
        block_on(stream.next()).expect("more").expect("block"),
        (BLOCKS, b"late".to_vec())
    );
    late.join().expect("late");
}

#[test]
fn a_bounded_stream_ends_and_a_plain_one_stops_at_the_length() {
    let (_d, _s, core) = core();
    let blocks: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 3]).collect();
    core.append_batch(&blocks).expect("append");
    let source: Arc<dyn hyper_core::BlockSource> = Arc::new(core.clone());
    let mut range = ReadStream::new(
        source.clone(),
        &ReadOptions {
            start: 5,
            end: Some(8),
            ..ReadOptions::default()
        },
    )
    .expect("stream");
    let mut got = Vec::new();
    while let Some(b) = block_on(range.next()) {
        got.push(b.expect("block").0);
    }
    assert_eq!(got, [5, 6, 7]);
    let mut all = ReadStream::new(source, &ReadOptions::default()).expect("stream");
    core.append(b"after the start").expect("append");
    let mut n = 0;
    while let Some(b) = block_on(all.next()) {
        b.expect("block");
        n += 1;
    }
    assert_eq!(n, 20, "the length when the stream started");
}

#[test]
fn a_block_writer_and_a_byte_stream_from_an_offset_round_trip() {
    let (_d, _s, core) = core();
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = BlockWriter::new(core.clone(), 1000, 3);
    for piece in data.chunks(777) {
        writer.write_all(piece).expect("write");
    }
    assert_eq!(writer.finish().expect("finish"), 10, "ten blocks of 1000");
    assert_eq!(core.get(9).expect("block").len(), 1000);
    let mut tail = BlockWriter::new(core.clone(), 1000, 3);
    tail.write_all(b"short").expect("write");
    drop(tail); // flushes: one short block
    assert_eq!(core.get(10).expect("block"), b"short");

    let source: Arc<dyn hyper_core::BlockSource> = Arc::new(core.clone());
    for (offset, length) in [
        (0u64, None),
        (2_345, Some(4_000u64)),
        (9_999, None),
        (10_003, None),
    ] {
        let mut bytes = ByteStream::new(source.clone(), offset, length, Duration::from_secs(1))
            .expect("byte stream");
        let mut got = Vec::new();
        while let Some(chunk) = block_on(bytes.next()) {
            got.extend(chunk.expect("chunk"));
        }
        let mut all = data.clone();
        all.extend_from_slice(b"short");
        let start = offset as usize;
        let end = length.map_or(all.len(), |l| start + l as usize);
        assert_eq!(got, all[start..end], "from {offset}");
    }
    let mut past = ByteStream::new(source, 20_000, None, Duration::from_secs(1)).expect("past");
    assert!(block_on(past.next()).is_none(), "nothing past the end");
}
