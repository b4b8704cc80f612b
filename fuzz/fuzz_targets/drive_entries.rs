//! The drive's formats: metadata entries (the values of the metadata bee,
//! decoded and checked as every read does), the blob index they hold
//! (contiguous blocks or chunk runs, walked by `block_ranges` for a byte
//! range the input picks), the drive header, and drive paths (the keys of
//! the metadata bee). Property: decoded or a typed error naming the path;
//! an entry that decodes round-trips; the blocks of any byte range are
//! sorted, disjoint, and inside the blocks the entry's location names; a
//! normalised path normalises to itself.
#![no_main]

use std::ops::Range;

use hyper_drive::fuzzing::decode_entry;
use hyper_drive::messages::{Entry, Header, Location};
use hyper_drive::{DrivePath, block_ranges};
use hyper_fuzz::Script;
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let mut script = Script::new(data);
    let from = script.uint(8).unwrap_or(0);
    let length = script.uint(8).unwrap_or(0);
    let path = script.record().unwrap_or_default();
    let bytes = script.rest();
    if let Ok(text) = std::str::from_utf8(path) {
        if let Ok(p) = DrivePath::new(text) {
            assert_eq!(DrivePath::new(p.as_str()).ok(), Some(p));
        }
    }
    if let Ok(h) = Header::decode(bytes) {
        assert_eq!(Header::decode(h.encode_to_vec().as_slice()).ok(), Some(h));
    }
    match decode_entry(bytes, "/fuzz/entry") {
        Ok(entry) => {
            let again = decode_entry(&entry.encode_to_vec(), "/fuzz/entry");
            assert_eq!(again.ok().as_ref(), Some(&entry));
            let end = from.saturating_add(length).min(entry.size);
            check_blocks(&entry, &block_ranges(&entry, from.min(end)..end));
            check_blocks(&entry, &entry.blocks());
        }
        Err(e) => assert!(
            e.to_string().contains("/fuzz/entry"),
            "error without its path: {e}"
        ),
    }
});

/// The blocks the entry's location names, merged.
fn location_blocks(entry: &Entry) -> Vec<Range<u64>> {
    let mut ranges: Vec<Range<u64>> = match &entry.location {
        None => Vec::new(),
        Some(Location::Contiguous(c)) => vec![c.first_block..c.first_block + c.block_count],
        Some(Location::Chunks(list)) => list
            .runs
            .iter()
            .map(|r| r.first_block..r.first_block + r.lengths.len() as u64)
            .collect(),
    };
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

fn check_blocks(entry: &Entry, blocks: &[Range<u64>]) {
    let allowed = location_blocks(entry);
    for (i, r) in blocks.iter().enumerate() {
        assert!(r.start < r.end, "empty block range {r:?}");
        if let Some(next) = blocks.get(i + 1) {
            assert!(
                r.end < next.start,
                "block ranges not sorted and disjoint: {blocks:?}"
            );
        }
        assert!(
            allowed.iter().any(|a| a.start <= r.start && r.end <= a.end),
            "blocks {r:?} outside the entry's location {allowed:?}"
        );
    }
}
