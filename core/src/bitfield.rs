//! Which blocks are stored locally: a sparse bitfield in 4 KiB pages. Pure
//! logic; storage persists the pages [`Bitfield::take_dirty`] hands out.
//!
//! Every page keeps its count of set bits, so a scan steps over a full page
//! (and an absent one) in one step, and the bitfield keeps its contiguous
//! length ([`Bitfield::contiguous`]) as it changes: reading it costs
//! nothing, keeping it costs the blocks that join or leave the prefix, and
//! loading the pages at open rebuilds it from the page counts.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::{BTreeMap, BTreeSet};

/// Bits per page (one page is 4096 bytes).
pub const PAGE_BITS: u64 = 32768;
const WORDS: usize = (PAGE_BITS / 64) as usize;
/// Bytes of one encoded page.
pub const PAGE_BYTES: usize = WORDS * 8;

/// One stored page: its words and how many of their bits are set.
#[derive(Debug, Clone)]
struct Page {
    words: Box<[u64; WORDS]>,
    ones: u64,
}

impl Page {
    fn empty() -> Self {
        Page {
            words: Box::new([0u64; WORDS]),
            ones: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.ones == PAGE_BITS
    }
}

/// A sparse set of block indexes. Absent pages are all zero.
#[derive(Debug, Default, Clone)]
pub struct Bitfield {
    pages: BTreeMap<u64, Page>,
    dirty: BTreeSet<u64>,
    ones: u64,
    /// The first unset index: every index below it is set.
    contiguous: u64,
}

impl Bitfield {
    /// An empty bitfield.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads a page from its encoding; `None` if the length is wrong.
    /// Loading the pages in ascending order (as storage reads them) keeps
    /// the contiguous length in a step per page.
    pub fn load_page(&mut self, page: u64, bytes: &[u8]) -> Option<()> {
        if bytes.len() != PAGE_BYTES {
            return None;
        }
        let mut loaded = Page::empty();
        for (w, chunk) in loaded.words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(chunk.try_into().ok()?);
        }
        loaded.ones = loaded.words.iter().map(|w| u64::from(w.count_ones())).sum();
        self.ones += loaded.ones;
        if let Some(old) = self.pages.insert(page, loaded) {
            self.ones -= old.ones;
        }
        // Every index below the page's start is set when the start is at
        // or below the contiguous length: the prefix goes on from there.
        let start = page.saturating_mul(PAGE_BITS);
        if start <= self.contiguous {
            self.contiguous = self.first_unset(start);
        }
        Some(())
    }

    /// Whether block `index` is set.
    pub fn get(&self, index: u64) -> bool {
        let (page, word, bit) = locate(index);
        self.pages
            .get(&page)
            .and_then(|p| p.words.get(word))
            .is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Sets or clears every block in `start..end`. Clearing skips absent
    /// pages, so it costs the pages stored in the range, not its length.
    /// The contiguous length follows: a clear below it cuts it to `start`,
    /// a set that reaches it extends it past `end` over what was set there.
    pub fn set_range(&mut self, start: u64, end: u64, value: bool) {
        self.write_range(start, end, value);
        if value && start <= self.contiguous && end > self.contiguous {
            self.contiguous = self.first_unset(end);
        } else if !value && start < end && start < self.contiguous {
            self.contiguous = start;
        }
    }

    fn write_range(&mut self, start: u64, end: u64, value: bool) {
        let mut i = start;
        while i < end {
            let (page, word, bit) = locate(i);
            if !value && !self.pages.contains_key(&page) {
                match self.next_page(page) {
                    Some(next) => {
                        i = next.saturating_mul(PAGE_BITS);
                        continue;
                    }
                    None => return,
                }
            }
            let n = (64 - u64::from(bit)).min(end - i);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            let stored = if value {
                Some(self.pages.entry(page).or_insert_with(Page::empty))
            } else {
                self.pages.get_mut(&page)
            };
            if let Some(p) = stored
                && let Some(w) = p.words.get_mut(word)
            {
                let before = u64::from(w.count_ones());
                if value {
                    *w |= mask;
                } else {
                    *w &= !mask;
                }
                let after = u64::from(w.count_ones());
                p.ones = p.ones + after - before;
                self.ones = self.ones + after - before;
                self.dirty.insert(page);
            }
            i += n;
        }
    }

    /// The first stored page after `page`: scans skip absent pages in one
    /// step, so a scan costs what is stored, never the length it spans.
    fn next_page(&self, page: u64) -> Option<u64> {
        let after = page.checked_add(1)?;
        self.pages.range(after..).next().map(|(p, _)| *p)
    }

    /// The first unset index at or after `from`. Steps over a full page at
    /// once, so it costs the partly set pages it passes, not the length.
    pub fn first_unset(&self, from: u64) -> u64 {
        let mut i = from;
        loop {
            let (page, word, bit) = locate(i);
            let Some(p) = self.pages.get(&page) else {
                return i;
            };
            if p.is_full() {
                match page.checked_add(1) {
                    Some(next) => i = next.saturating_mul(PAGE_BITS),
                    None => return u64::MAX,
                }
                continue;
            }
            let w = p.words.get(word).copied().unwrap_or(0) >> bit;
            let ones = u64::from((!w).trailing_zeros().min(64 - u32::from(bit)));
            if ones < 64 - u64::from(bit) {
                return i + ones;
            }
            i += ones;
        }
    }

    /// The first set index in `from..end`, if any. Costs the pages stored
    /// in the range, not its length.
    pub fn first_set(&self, from: u64, end: u64) -> Option<u64> {
        let mut i = from;
        while i < end {
            let (page, word, bit) = locate(i);
            let Some(p) = self.pages.get(&page) else {
                i = self.next_page(page)?.saturating_mul(PAGE_BITS);
                continue;
            };
            let w = p.words.get(word).copied().unwrap_or(0) >> bit;
            if w != 0 {
                let found = i + u64::from(w.trailing_zeros());
                return (found < end).then_some(found);
            }
            i += 64 - u64::from(bit);
        }
        None
    }

    /// The highest set index, if any.
    pub fn last_set(&self) -> Option<u64> {
        self.pages.iter().rev().find_map(|(page, p)| {
            p.words.iter().enumerate().rev().find_map(|(i, w)| {
                (*w != 0)
                    .then(|| page * PAGE_BITS + i as u64 * 64 + 63 - u64::from(w.leading_zeros()))
            })
        })
    }

    /// The set and unset indexes of `start..end` as run lengths that
    /// alternate set, unset, set, ... (the first run is set and may be 0);
    /// the runs add up to `end - start`. This is the wire's `Bitfield` form.
    pub fn runs(&self, start: u64, end: u64) -> Vec<u64> {
        let mut runs = Vec::new();
        let mut at = start;
        while at < end {
            let next_unset = self.first_unset(at).min(end);
            runs.push(next_unset - at);
            at = next_unset;
            if at >= end {
                break;
            }
            let next_set = self.first_set(at, end).unwrap_or(end);
            runs.push(next_set - at);
            at = next_set;
        }
        runs
    }

    /// The ranges that `runs` (as made by [`Bitfield::runs`], from `start`)
    /// marks as set. `None` if the runs overflow `u64` (a malformed message).
    pub fn set_ranges_of_runs(start: u64, runs: &[u64]) -> Option<Vec<std::ops::Range<u64>>> {
        let mut out = Vec::new();
        let mut at = start;
        for (i, run) in runs.iter().enumerate() {
            let end = at.checked_add(*run)?;
            if i % 2 == 0 && *run > 0 {
                out.push(at..end);
            }
            at = end;
        }
        Some(out)
    }

    /// Whether every index in `start..end` is set.
    pub fn all_set(&self, start: u64, end: u64) -> bool {
        start >= end || self.first_unset(start) >= end
    }

    /// Number of set indexes.
    pub fn count(&self) -> u64 {
        self.ones
    }

    /// The contiguous length: every index below it is set, and it is not.
    /// Kept as the bitfield changes, so reading it costs nothing (it equals
    /// `first_unset(0)`).
    pub fn contiguous(&self) -> u64 {
        self.contiguous
    }

    /// Pages changed since the last call, with their encoding; an all-zero
    /// page comes back as `None` (delete it).
    pub fn take_dirty(&mut self) -> Vec<(u64, Option<Vec<u8>>)> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .into_iter()
            .map(|page| {
                let enc = self.pages.get(&page).and_then(|p| {
                    (p.ones > 0).then(|| {
                        p.words
                            .iter()
                            .flat_map(|w| w.to_le_bytes())
                            .collect::<Vec<u8>>()
                    })
                });
                if enc.is_none() {
                    self.pages.remove(&page);
                }
                (page, enc)
            })
            .collect()
    }
}

fn locate(index: u64) -> (u64, usize, u8) {
    let page = index / PAGE_BITS;
    let in_page = index % PAGE_BITS;
    (page, (in_page / 64) as usize, (in_page % 64) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_a_vec_model(ops in prop::collection::vec((0u64..70_000, 0u64..3000, any::<bool>()), 1..40)) {
            let mut bits = Bitfield::new();
            let mut model = vec![false; 73_000];
            for (start, len, value) in ops {
                bits.set_range(start, start + len, value);
                for b in &mut model[start as usize..(start + len) as usize] {
                    *b = value;
                }
                prop_assert_eq!(bits.count(), model.iter().filter(|b| **b).count() as u64);
                prop_assert_eq!(Some(bits.contiguous()), model.iter().position(|b| !*b).map(|p| p as u64));
            }
            for probe in [0u64, 1, 63, 64, 32767, 32768, 40_000, 69_999] {
                prop_assert_eq!(bits.get(probe), model[probe as usize]);
                let unset = model[probe as usize..].iter().position(|b| !*b).map(|p| p as u64 + probe);
                prop_assert_eq!(Some(bits.first_unset(probe)), unset);
                let set = model[probe as usize..].iter().position(|b| *b).map(|p| p as u64 + probe);
                prop_assert_eq!(bits.first_set(probe, 73_000), set);
            }
            prop_assert_eq!(bits.last_set(), model.iter().rposition(|b| *b).map(|p| p as u64));
            // Persist and reload gives the same bits.
            let mut again = Bitfield::new();
            for (page, enc) in bits.clone().take_dirty() {
                if let Some(enc) = enc {
                    prop_assert!(again.load_page(page, &enc).is_some());
                }
            }
            prop_assert_eq!(again.count(), bits.count());
            prop_assert_eq!(again.first_unset(0), bits.first_unset(0));
            prop_assert_eq!(again.contiguous(), bits.contiguous());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Ranges that fill whole pages (the step a scan takes over a full
        /// page), the contiguous length after each, and after reloading the
        /// pages in either order.
        #[test]
        fn contiguous_length_over_whole_pages(
            ops in prop::collection::vec((0u64..5, 0u64..PAGE_BITS, 0u64..3 * PAGE_BITS, any::<bool>()), 1..24),
            descending in any::<bool>(),
        ) {
            const LEN: usize = 9 * PAGE_BITS as usize;
            let mut bits = Bitfield::new();
            let mut model = vec![false; LEN];
            for (page, offset, len, value) in ops {
                // Mostly from a page start, so pages fill and empty whole.
                let start = page * PAGE_BITS + if offset % 3 == 0 { offset } else { 0 };
                let end = (start + len).min(LEN as u64 - 1);
                bits.set_range(start, end, value);
                for b in &mut model[start.min(end) as usize..end as usize] {
                    *b = value;
                }
                let naive = model.iter().position(|b| !*b).map(|p| p as u64);
                prop_assert_eq!(Some(bits.contiguous()), naive);
                prop_assert_eq!(Some(bits.first_unset(0)), naive);
                let from = start.min(LEN as u64 - 1);
                let after = model[from as usize..].iter().position(|b| !*b).map(|p| p as u64 + from);
                prop_assert_eq!(Some(bits.first_unset(from)), after);
            }
            let mut pages = bits.clone().take_dirty();
            if descending {
                pages.reverse();
            }
            let mut again = Bitfield::new();
            for (page, enc) in pages {
                if let Some(enc) = enc {
                    prop_assert!(again.load_page(page, &enc).is_some());
                }
            }
            prop_assert_eq!(again.contiguous(), bits.contiguous());
            prop_assert_eq!(again.count(), bits.count());
        }
    }

    #[test]
    fn loading_a_page_below_the_prefix_cuts_it() {
        let full = vec![0xffu8; PAGE_BYTES];
        let mut bits = Bitfield::new();
        for page in 0..3 {
            bits.load_page(page, &full).expect("page");
        }
        assert_eq!(bits.contiguous(), 3 * PAGE_BITS);
        let mut holed = full.clone();
        holed[10] = 0xfe;
        bits.load_page(1, &holed).expect("page");
        assert_eq!(bits.contiguous(), PAGE_BITS + 80);
    }

    proptest! {
        #[test]
        fn runs_round_trip(sets in prop::collection::vec((0u64..70_000, 0u64..5000), 0..20), start in 0u64..40_000, len in 0u64..40_000) {
            let mut bits = Bitfield::new();
            for (s, l) in &sets {
                bits.set_range(*s, s + l, true);
            }
            let end = start + len;
            let runs = bits.runs(start, end);
            prop_assert_eq!(runs.iter().sum::<u64>(), len);
            prop_assert!(runs.iter().skip(1).all(|r| *r > 0), "only the first run may be empty");
            let mut again = Bitfield::new();
            for r in Bitfield::set_ranges_of_runs(start, &runs).expect("no overflow") {
                again.set_range(r.start, r.end, true);
            }
            for i in start..end {
                prop_assert_eq!(again.get(i), bits.get(i), "index {}", i);
            }
        }
    }

    #[test]
    fn runs_snapshot_and_overflow() {
        let mut bits = Bitfield::new();
        bits.set_range(2, 5, true);
        bits.set_range(7, 8, true);
        assert_eq!(bits.runs(0, 10), vec![0, 2, 3, 2, 1, 2]);
        assert_eq!(bits.runs(2, 5), vec![3]);
        assert_eq!(Bitfield::set_ranges_of_runs(u64::MAX - 1, &[1, 5]), None);
    }

    #[test]
    fn scans_over_huge_lengths_cost_what_is_stored() {
        let far = 1u64 << 61;
        let mut bits = Bitfield::new();
        assert_eq!(bits.first_set(0, 1 << 62), None);
        bits.set_range(far + 5, far + 7, true);
        bits.set_range(3, 4, true);
        assert_eq!(bits.first_set(4, 1 << 62), Some(far + 5));
        assert_eq!(bits.first_set(4, far + 5), None);
        assert_eq!(bits.first_set(far + 7, u64::MAX), None);
        assert_eq!(
            bits.runs(0, 1 << 62),
            vec![0, 3, 1, far + 1, 2, (1 << 62) - far - 7]
        );
        // Clearing a huge range touches the two stored pages only.
        bits.set_range(0, 1 << 62, false);
        assert_eq!((bits.count(), bits.first_set(0, u64::MAX)), (0, None));
        assert_eq!(bits.take_dirty().len(), 2);
    }

    #[test]
    fn rejects_bad_page_length() {
        assert!(Bitfield::new().load_page(0, &[0u8; 10]).is_none());
    }
}
