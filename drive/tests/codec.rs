//! The entry and header codecs: hex snapshots (the format must not drift),
//! round trips, and random or mutated bytes that must never panic.

use hyper_drive::messages::{ChunkList, Contiguous, Header, Location, Run};
use hyper_drive::{Entry, Kind};
use proptest::prelude::*;
use prost::Message;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn sample_file() -> Entry {
    Entry {
        kind: Kind::File as i32,
        mode: 0o755,
        size: 10,
        mtime_ns: -2,
        hash: vec![0xab; 32],
        location: Some(Location::Chunks(ChunkList {
            runs: vec![Run {
                first_block: 7,
                lengths: vec![4, 6],
            }],
        })),
        target: String::new(),
        metadata: b"m".to_vec(),
    }
}

#[test]
fn snapshots() {
    assert_eq!(
        hex(&sample_file().encode_to_vec()),
        concat!(
            "10ed03",
            "180a",
            "2003",
            "2a20",
            "abababababababababababababababababababababababababababababababab",
            "3a08",
            "0a06",
            "0807",
            "12020406",
            "4a016d"
        )
    );
    let link = Entry {
        kind: Kind::Symlink as i32,
        mode: 0o777,
        mtime_ns: 1,
        target: "../a".into(),
        ..Default::default()
    };
    assert_eq!(hex(&link.encode_to_vec()), "080110ff03200242042e2e2f61");
    let contiguous = Entry {
        size: 65537,
        hash: vec![1; 32],
        location: Some(Location::Contiguous(Contiguous {
            first_block: 3,
            block_count: 2,
            block_size: 65536,
        })),
        ..Default::default()
    };
    assert_eq!(
        hex(&contiguous.encode_to_vec()),
        concat!(
            "18818004",
            "2a20",
            "0101010101010101010101010101010101010101010101010101010101010101",
            "3208",
            "0803",
            "1002",
            "18808004"
        )
    );
    let header = Header {
        protocol: "hyper-drive".into(),
        version: 1,
        blobs_key: vec![9; 32],
    };
    assert_eq!(
        hex(&header.encode_to_vec()),
        concat!(
            "0a0b68797065722d6472697665",
            "1001",
            "1a20",
            "0909090909090909090909090909090909090909090909090909090909090909"
        )
    );
}

fn location() -> impl Strategy<Value = Option<Location>> {
    prop_oneof![
        Just(None),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(f, c, s)| Some(
            Location::Contiguous(Contiguous {
                first_block: f,
                block_count: c,
                block_size: s
            })
        )),
        proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(any::<u32>(), 0..5)),
            0..4
        )
        .prop_map(|runs| Some(Location::Chunks(ChunkList {
            runs: runs
                .into_iter()
                .map(|(first_block, lengths)| Run {
                    first_block,
                    lengths
                })
                .collect()
        }))),
    ]
}

proptest! {
    #[test]
    fn entries_round_trip(kind in 0i32..2, mode in any::<u32>(), size in any::<u64>(), mtime in any::<i64>(),
                          hash in proptest::collection::vec(any::<u8>(), 0..40), location in location(),
                          target in ".{0,12}", metadata in proptest::collection::vec(any::<u8>(), 0..20)) {
        let e = Entry { kind, mode, size, mtime_ns: mtime, hash, location, target, metadata };
        let back = Entry::decode(e.encode_to_vec().as_slice());
        prop_assert_eq!(back.ok(), Some(e));
    }

    /// Random and mutated bytes decode to an error or to an entry the
    /// drive's checks accept or refuse, never a panic.
    #[test]
    fn hostile_bytes_never_panic(noise in proptest::collection::vec(any::<u8>(), 0..200),
                                 flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6)) {
        let _ = Entry::decode(noise.as_slice());
        let _ = Header::decode(noise.as_slice());
        let mut bytes = sample_file().encode_to_vec();
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        if let Ok(e) = Entry::decode(bytes.as_slice()) {
            let _ = e.blocks();
            let _ = hyper_drive::block_ranges(&e, 0..e.size);
        }
    }
}
