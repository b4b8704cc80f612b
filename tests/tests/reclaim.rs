//! Reclaiming storage on real stores: clear reports what it freed and
//! keeps proofs working, delete removes a core, compaction shrinks the file.

mod common;

use common::{fetch, request, stores};
use hyper_core::{Error, Store};

fn block(i: u32) -> Vec<u8> {
    // Lengths vary so a miscount of any one block shows.
    vec![(i % 251) as u8; 10_000 + i as usize]
}

#[test]
fn clear_returns_the_bytes_it_freed_and_proofs_still_work() {
    let (_d, s) = stores(2);
    let core = s[0].create_core().expect("core");
    let blocks: Vec<Vec<u8>> = (0..300).map(block).collect();
    for batch in blocks.chunks(100) {
        core.append_batch(batch).expect("append");
    }
    let reader = s[1].replica(&core.key()).expect("replica");
    fetch(&core, &reader, 10).expect("reader takes block 10 before the clear");
    let stored = core.info().expect("info").bytes_stored;
    let usage = core.disk_usage().expect("usage");

    // Inside one chunk, across chunk edges, and a range partly cleared.
    let freed = core.clear(5..7).expect("clear");
    assert_eq!(freed, (blocks[5].len() + blocks[6].len()) as u64);
    let freed_more = core.clear(0..250).expect("clear");
    let want: usize = blocks[..250].iter().map(Vec::len).sum::<usize>() - freed as usize;
    assert_eq!(freed_more, want as u64);
    assert_eq!(
        core.clear(0..250).expect("again"),
        0,
        "nothing left to free"
    );
    assert_eq!(core.clear(400..500).expect("past the end"), 0);

    let info = core.info().expect("info");
    assert_eq!(info.bytes_stored, stored - freed - freed_more);
    assert_eq!(info.blocks_stored, 50);
    assert_eq!(info.length, 300);
    assert!(core.disk_usage().expect("usage") < usage - freed - freed_more + 4096);
    assert!(matches!(
        core.get(10),
        Err(Error::NotAvailable { index: 10 })
    ));
    assert_eq!(core.get(260).expect("kept"), blocks[260]);

    // The tree stays: a reader still gets verified proofs for kept blocks,
    // and the writer can take a cleared block back from a replica.
    fetch(&core, &reader, 299).expect("proof after clear");
    assert_eq!(reader.get(299).expect("get"), blocks[299]);
    assert!(matches!(
        core.proof(&request(&reader, 11)),
        Err(Error::NotAvailable { index: 11 })
    ));
    fetch(&reader, &core, 10).expect("the writer takes block 10 back");
    assert_eq!(core.get(10).expect("restored"), blocks[10]);
}

#[test]
fn delete_and_compact_shrink_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(dir.path()).expect("open");
    let (gone, kept) = {
        let gone = store.named("big").expect("core");
        let kept = store.named("small").expect("core");
        let blocks: Vec<Vec<u8>> = (0..400).map(block).collect();
        gone.append_batch(&blocks).expect("append");
        kept.append(b"stay").expect("append");
        (gone.key(), kept.key())
    };
    let before = store.file_size().expect("size");
    assert!(before > 4_000_000, "file of {before} bytes");
    store.delete(&gone).expect("delete");
    assert!(matches!(store.core(&gone), Err(Error::UnknownCore(k)) if k == gone));
    assert!(store.by_name("big").expect("by_name").is_none());
    {
        let held = store.core(&kept).expect("core");
        assert!(
            matches!(store.compact(), Err(Error::InvalidArgument(_))),
            "compacting with an open core"
        );
        drop(held);
    }
    assert!(store.compact().expect("compact"));
    let after = store.file_size().expect("size");
    assert!(after < before / 4, "{before} -> {after} bytes");
    assert_eq!(
        store.core(&kept).expect("kept").get(0).expect("get"),
        b"stay"
    );
}
