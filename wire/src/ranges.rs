//! [`RangeSet`]: a set of block indexes kept as disjoint ranges, for what a
//! peer says it holds. Pure logic; its cost grows with the number of ranges,
//! never with their lengths, so a peer claiming `0..2^64` costs one entry.

#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint, non-adjacent ranges of indexes, at most a fixed number of them.
#[derive(Debug, Clone)]
pub struct RangeSet {
    /// start -> end (exclusive); no two touch or overlap.
    ranges: BTreeMap<u64, u64>,
    max_ranges: usize,
}

/// A [`RangeSet`] would exceed its bound on ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyRanges;

impl RangeSet {
    /// An empty set that holds at most `max_ranges` disjoint ranges.
    pub fn new(max_ranges: usize) -> Self {
        RangeSet {
            ranges: BTreeMap::new(),
            max_ranges,
        }
    }

    /// Whether `index` is in the set.
    pub fn contains(&self, index: u64) -> bool {
        self.ranges
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &end)| index < end)
    }

    /// The first index in the set at or after `from`.
    pub fn next_present(&self, from: u64) -> Option<u64> {
        if self.contains(from) {
            return Some(from);
        }
        self.ranges.range(from..).next().map(|(&start, _)| start)
    }

    /// Whether any index of `range` is in the set.
    pub fn overlaps(&self, range: Range<u64>) -> bool {
        range.start < range.end
            && self
                .next_present(range.start)
                .is_some_and(|i| i < range.end)
    }

    /// Number of disjoint ranges.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Adds `range`. Fails, changing nothing, if the set would hold more
    /// ranges than its bound.
    pub fn insert(&mut self, range: Range<u64>) -> Result<(), TooManyRanges> {
        if range.start >= range.end {
            return Ok(());
        }
        let (mut start, mut end) = (range.start, range.end);
        // Every range that touches or overlaps [start, end) merges in.
        let touching: Vec<(u64, u64)> = self
            .ranges
            .range(..=end)
            .rev()
            .take_while(|(_, e)| **e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        if touching.is_empty() && self.ranges.len() >= self.max_ranges {
            return Err(TooManyRanges);
        }
        for (s, e) in touching {
            self.ranges.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        Ok(())
    }

    /// Removes `range`. Fails, changing nothing, if splitting a range would
    /// exceed the bound.
    pub fn remove(&mut self, range: Range<u64>) -> Result<(), TooManyRanges> {
        if range.start >= range.end {
            return Ok(());
        }
        let overlapping: Vec<(u64, u64)> = self
            .ranges
            .range(..range.end)
            .rev()
            .take_while(|(_, e)| **e > range.start)
            .map(|(&s, &e)| (s, e))
            .collect();
        let splits = overlapping
            .iter()
            .filter(|(s, e)| *s < range.start && *e > range.end)
            .count();
        if splits > 0 && self.ranges.len() >= self.max_ranges {
            return Err(TooManyRanges);
        }
        for (s, e) in overlapping {
            self.ranges.remove(&s);
            if s < range.start {
                self.ranges.insert(s, range.start);
            }
            if e > range.end {
                self.ranges.insert(range.end, e);
            }
        }
        Ok(())
    }

    /// Adds `range` if the bound allows; otherwise leaves the set as it
    /// was. Returns whether it was added. For claims a peer makes, where
    /// believing less is safe.
    pub fn insert_or_skip(&mut self, range: Range<u64>) -> bool {
        self.insert(range).is_ok()
    }

    /// Removes `range`; if a split would pass the bound, removes every
    /// range it overlaps whole instead. The set only ever shrinks, so the
    /// bound holds and nothing outside the ranges it touches changes.
    pub fn remove_coarse(&mut self, range: Range<u64>) {
        if self.remove(range.clone()).is_ok() {
            return;
        }
        let overlapping: Vec<u64> = self
            .ranges
            .range(..range.end)
            .rev()
            .take_while(|(_, e)| **e > range.start)
            .map(|(&s, _)| s)
            .collect();
        for s in overlapping {
            self.ranges.remove(&s);
        }
    }

    /// The ranges in order.
    pub fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.ranges.iter().map(|(&s, &e)| s..e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u64),
        Remove(u64, u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        (any::<bool>(), 0u64..200, 0u64..40).prop_map(|(ins, s, l)| {
            if ins {
                Op::Insert(s, s + l)
            } else {
                Op::Remove(s, s + l)
            }
        })
    }

    proptest! {
        #[test]
        fn matches_a_set_of_indexes(ops in proptest::collection::vec(op(), 0..60)) {
            let mut set = RangeSet::new(usize::MAX);
            let mut model = BTreeSet::new();
            for op in ops {
                match op {
                    Op::Insert(s, e) => { set.insert(s..e).expect("unbounded"); model.extend(s..e); }
                    Op::Remove(s, e) => { set.remove(s..e).expect("unbounded"); for i in s..e { model.remove(&i); } }
                }
                for i in 0..260 {
                    prop_assert_eq!(set.contains(i), model.contains(&i));
                    prop_assert_eq!(set.next_present(i), model.range(i..).next().copied());
                }
                // Disjoint and non-adjacent: one entry per maximal run.
                let runs = model.iter().zip(model.iter().skip(1)).filter(|(a, b)| **b != **a + 1).count()
                    + usize::from(!model.is_empty());
                prop_assert_eq!(set.len(), runs);
            }
        }

        #[test]
        fn the_bound_is_kept_and_a_refused_change_changes_nothing(ops in proptest::collection::vec(op(), 0..60)) {
            let mut set = RangeSet::new(3);
            for op in ops {
                let before: Vec<_> = set.iter().collect();
                let result = match op {
                    Op::Insert(s, e) => set.insert(s..e),
                    Op::Remove(s, e) => set.remove(s..e),
                };
                prop_assert!(set.len() <= 3);
                if result.is_err() {
                    prop_assert_eq!(set.iter().collect::<Vec<_>>(), before);
                }
            }
        }
    }

    #[test]
    fn lossy_changes_keep_the_bound_and_only_believe_less() {
        let mut set = RangeSet::new(2);
        assert!(set.insert_or_skip(0..10));
        assert!(set.insert_or_skip(20..30));
        assert!(!set.insert_or_skip(40..50), "past the bound: left out");
        assert_eq!(set.len(), 2);
        // Splitting 0..10 would make three ranges: all of it goes.
        set.remove_coarse(4..5);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![20..30]);
        set.remove_coarse(25..26);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![20..25, 26..30]);
    }

    #[test]
    fn huge_ranges_cost_one_entry() {
        let mut set = RangeSet::new(4);
        set.insert(0..u64::MAX).expect("fits");
        assert!(set.contains(u64::MAX - 1));
        assert!(!set.contains(u64::MAX));
        set.remove(10..20).expect("one split");
        assert_eq!(set.len(), 2);
        assert!(set.overlaps(5..11));
        assert!(!set.overlaps(10..20));
    }
}
