//! Where a file's bytes live (pure): the blocks of an entry's location, in
//! content order, and the checks that a decoded entry is self-consistent.
//! One function, [`block_ranges`], lists the blocks a byte range of a file
//! needs; download, has, clear, progress and diffs all use it.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::messages::{ChunkList, Contiguous, Entry, Kind, Location, Run};

/// One block of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The block of the blobs core.
    pub block: u64,
    /// Its length in bytes.
    pub length: u64,
}

/// The pieces of a location, in content order. Owns what it walks, so a
/// read stream can keep it.
#[derive(Debug, Clone)]
pub(crate) enum Pieces {
    Empty,
    Contiguous {
        c: Contiguous,
        size: u64,
        next: u64,
    },
    Chunks {
        runs: Vec<Run>,
        run: usize,
        at: usize,
    },
}

impl Pieces {
    pub(crate) fn of(entry: &Entry) -> Pieces {
        match &entry.location {
            None => Pieces::Empty,
            Some(Location::Contiguous(c)) => Pieces::Contiguous {
                c: c.clone(),
                size: entry.size,
                next: 0,
            },
            Some(Location::Chunks(list)) => Pieces::Chunks {
                runs: list.runs.clone(),
                run: 0,
                at: 0,
            },
        }
    }

    /// Skips whole pieces before byte `offset`; returns where `offset` falls
    /// inside the next piece.
    pub(crate) fn skip_to(&mut self, offset: u64) -> u64 {
        if let Pieces::Contiguous { c, next, .. } = self {
            let size = u64::from(c.block_size.max(1));
            *next = offset / size;
            return offset % size;
        }
        let mut left = offset;
        loop {
            let Some(len) = self.peek_length() else {
                return left;
            };
            if left < len {
                return left;
            }
            left -= len;
            self.next();
        }
    }

    fn peek_length(&self) -> Option<u64> {
        self.clone().next().map(|p| p.length)
    }
}

impl Iterator for Pieces {
    type Item = Piece;
    fn next(&mut self) -> Option<Piece> {
        match self {
            Pieces::Empty => None,
            Pieces::Contiguous { c, size, next } => {
                if *next >= c.block_count {
                    return None;
                }
                let bs = u64::from(c.block_size);
                let start = next.saturating_mul(bs);
                let piece = Piece {
                    block: c.first_block.saturating_add(*next),
                    length: size.saturating_sub(start).min(bs),
                };
                *next += 1;
                Some(piece)
            }
            Pieces::Chunks { runs, run, at } => loop {
                let r = runs.get(*run)?;
                if let Some(&len) = r.lengths.get(*at) {
                    let piece = Piece {
                        block: r.first_block.saturating_add(*at as u64),
                        length: u64::from(len),
                    };
                    *at += 1;
                    return Some(piece);
                }
                *run += 1;
                *at = 0;
            },
        }
    }
}

/// Merges consecutive blocks into runs: the chunk list of `pieces`.
pub fn chunk_list(pieces: &[Piece]) -> ChunkList {
    let mut runs: Vec<Run> = Vec::new();
    for p in pieces {
        let len = u32::try_from(p.length).unwrap_or(u32::MAX);
        match runs.last_mut() {
            Some(r) if r.first_block + r.lengths.len() as u64 == p.block => r.lengths.push(len),
            _ => runs.push(Run {
                first_block: p.block,
                lengths: vec![len],
            }),
        }
    }
    ChunkList { runs }
}

/// The blocks holding bytes `range` of `entry`'s content, merged into
/// ascending, disjoint block ranges (none for an empty range). Fixed
/// blocks are one range, computed: an entry may claim 2^64 of them.
pub fn block_ranges(entry: &Entry, range: Range<u64>) -> Vec<Range<u64>> {
    if range.is_empty() {
        return Vec::new();
    }
    if let Some(Location::Contiguous(c)) = &entry.location {
        let bs = u64::from(c.block_size.max(1));
        let (first, end) = (range.start / bs, range.end.div_ceil(bs).min(c.block_count));
        let blocks = c.first_block.saturating_add(first)..c.first_block.saturating_add(end);
        return if first < end {
            Vec::from([blocks])
        } else {
            Vec::new()
        };
    }
    let mut pieces = Pieces::of(entry);
    let mut at = range.start - pieces.skip_to(range.start).min(range.start);
    let mut blocks: Vec<Range<u64>> = Vec::new();
    for p in pieces {
        if at >= range.end {
            break;
        }
        at += p.length;
        blocks.push(p.block..p.block + 1);
    }
    merge(blocks)
}

/// Sorts and merges block ranges.
pub fn merge(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Checks a decoded entry: a known kind, a 32-byte hash for a file, a
/// location whose block lengths add up to the size, a target for a symlink.
pub fn check(entry: &Entry, path: &str) -> Result<()> {
    let bad = |reason| Error::Corrupt {
        path: path.to_string(),
        reason,
    };
    match Kind::try_from(entry.kind) {
        Ok(Kind::Symlink) => {
            if entry.target.is_empty() || entry.location.is_some() || entry.size != 0 {
                return Err(bad("a symlink needs a target and no content"));
            }
        }
        Ok(Kind::File) => {
            if entry.hash.len() != 32 {
                return Err(bad("a file's hash is not 32 bytes"));
            }
            let total = match &entry.location {
                None => Some(0),
                Some(Location::Contiguous(c)) => {
                    let bs = u64::from(c.block_size);
                    let full = c.block_count.checked_sub(1).and_then(|n| n.checked_mul(bs));
                    match full {
                        _ if bs == 0 || c.block_count == 0 => None,
                        Some(f) if entry.size > f && entry.size - f <= bs => Some(entry.size),
                        _ => None,
                    }
                    .filter(|_| c.first_block.checked_add(c.block_count).is_some())
                }
                Some(Location::Chunks(list)) => list.runs.iter().try_fold(0u64, |acc, r| {
                    r.first_block.checked_add(r.lengths.len() as u64)?;
                    r.lengths.iter().try_fold(acc, |a, &l| {
                        (l > 0).then_some(())?;
                        a.checked_add(u64::from(l))
                    })
                }),
            };
            if total != Some(entry.size) {
                return Err(bad("the location's blocks do not add up to the size"));
            }
        }
        Err(_) => return Err(bad("unknown kind")),
    }
    Ok(())
}

impl Entry {
    /// Whether any executable bit is set.
    pub fn executable(&self) -> bool {
        self.mode & 0o111 != 0
    }

    /// The content hash in hex (empty for a symlink).
    pub fn hash_hex(&self) -> String {
        self.hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Every block of the content, merged into ranges.
    pub fn blocks(&self) -> Vec<Range<u64>> {
        block_ranges(self, 0..self.size)
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // block ranges, compared as lists
mod tests {
    use super::*;

    fn file(size: u64, location: Location) -> Entry {
        Entry {
            size,
            hash: vec![0; 32],
            location: Some(location),
            ..Default::default()
        }
    }

    #[test]
    fn contiguous_pieces_and_ranges() {
        let e = file(
            10,
            Location::Contiguous(Contiguous {
                first_block: 5,
                block_count: 3,
                block_size: 4,
            }),
        );
        assert!(check(&e, "/f").is_ok());
        let lens: Vec<u64> = Pieces::of(&e).map(|p| p.length).collect();
        assert_eq!(lens, [4, 4, 2]);
        assert_eq!(block_ranges(&e, 0..10), [5..8]);
        assert_eq!(block_ranges(&e, 4..8), [6..7]);
        assert_eq!(block_ranges(&e, 3..5), [5..7]);
        assert_eq!(block_ranges(&e, 9..10), [7..8]);
        let mut p = Pieces::of(&e);
        assert_eq!(p.skip_to(9), 1);
        assert_eq!(p.next().map(|p| p.block), Some(7));
    }

    #[test]
    fn chunk_lists_merge_runs() {
        let pieces = [
            Piece {
                block: 3,
                length: 5,
            },
            Piece {
                block: 4,
                length: 6,
            },
            Piece {
                block: 1,
                length: 7,
            },
            Piece {
                block: 3,
                length: 5,
            },
        ];
        let list = chunk_list(&pieces);
        assert_eq!(list.runs.len(), 3);
        let e = file(23, Location::Chunks(list));
        assert!(check(&e, "/f").is_ok());
        assert_eq!(Pieces::of(&e).collect::<Vec<_>>(), pieces);
        assert_eq!(e.blocks(), [1..2, 3..5]);
        assert_eq!(block_ranges(&e, 11..12), [1..2]);
        let mut p = Pieces::of(&e);
        assert_eq!(p.skip_to(12), 1);
        assert_eq!(p.next().map(|p| p.block), Some(1));
    }

    #[test]
    fn inconsistent_entries_are_corrupt() {
        let bad = [
            file(
                13,
                Location::Contiguous(Contiguous {
                    first_block: 0,
                    block_count: 3,
                    block_size: 4,
                }),
            ),
            file(
                8,
                Location::Contiguous(Contiguous {
                    first_block: 0,
                    block_count: 3,
                    block_size: 4,
                }),
            ),
            file(
                1,
                Location::Contiguous(Contiguous {
                    first_block: 0,
                    block_count: 1,
                    block_size: 0,
                }),
            ),
            file(
                1,
                Location::Contiguous(Contiguous {
                    first_block: u64::MAX,
                    block_count: 2,
                    block_size: 1,
                }),
            ),
            file(
                3,
                Location::Chunks(ChunkList {
                    runs: vec![Run {
                        first_block: 0,
                        lengths: vec![3, 0],
                    }],
                }),
            ),
            file(
                4,
                Location::Chunks(ChunkList {
                    runs: vec![Run {
                        first_block: 0,
                        lengths: vec![3],
                    }],
                }),
            ),
            Entry {
                kind: 7,
                ..Default::default()
            },
            Entry {
                kind: Kind::Symlink as i32,
                ..Default::default()
            },
            Entry {
                hash: vec![1],
                ..Default::default()
            },
        ];
        for e in bad {
            assert!(
                matches!(check(&e, "/x"), Err(Error::Corrupt { .. })),
                "{e:?}"
            );
        }
    }
}
