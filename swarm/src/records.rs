//! What a DHT node stores for others: peer records by topic, mutable and
//! immutable values. Pure (time passed in) and bounded: per-topic, global
//! and per-source caps, so a flood from one address cannot fill the node.
//! Signatures and tokens are checked by the caller before storing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::limits::Prefix;
use crate::messages::{ErrorCode, MutableValue, SignedRecord};

/// Storage bounds of one node.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Topics stored at most.
    pub max_topics: usize,
    /// Records per topic at most (the newest are kept).
    pub max_records_per_topic: usize,
    /// Mutable plus immutable values stored at most.
    pub max_values: usize,
    /// Bytes of one stored value at most.
    pub max_value_bytes: usize,
    /// Entries (records and values) one source IP may have stored at once.
    pub max_per_source: usize,
    /// Records of one topic from one source /24 or /64 at most (sources on
    /// local networks exempt).
    pub max_per_source_per_topic: usize,
    /// How long a record or value lives without being stored again.
    pub ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_topics: 16_384,
            max_records_per_topic: 32,
            max_values: 16_384,
            max_value_bytes: 1000,
            max_per_source: 256,
            max_per_source_per_topic: 4,
            ttl: Duration::from_secs(20 * 60),
        }
    }
}

/// One stored peer record.
#[derive(Debug, Clone)]
struct StoredRecord {
    public_key: [u8; 32],
    timestamp: u64,
    signed: SignedRecord,
    /// Where the announce came from: connect requests are passed there.
    from: SocketAddr,
    /// When it first arrived (refreshes keep it): the order of answers and
    /// of eviction, which a timestamp the announcer chose cannot change.
    arrived: Instant,
    expires: Instant,
}

/// Who a record came from, for fair shares in a topic: its /24 or /64,
/// or on a local network its IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Prefix(Prefix),
    Local(IpAddr),
}

impl Source {
    fn of(addr: SocketAddr) -> Source {
        match Prefix::capped(addr.ip()) {
            Some(prefix) => Source::Prefix(prefix),
            None => Source::Local(addr.ip()),
        }
    }
}

impl StoredRecord {
    fn source(&self) -> Source {
        Source::of(self.from)
    }
}

#[derive(Debug, Clone)]
struct StoredValue<T> {
    value: T,
    source: IpAddr,
    expires: Instant,
}

/// The records and values a node holds.
#[derive(Debug, Default)]
pub struct Records {
    limits: Limits,
    topics: HashMap<[u8; 32], Vec<StoredRecord>>,
    mutable: HashMap<[u8; 32], StoredValue<MutableValue>>,
    immutable: HashMap<[u8; 32], StoredValue<Vec<u8>>>,
    per_source: HashMap<IpAddr, usize>,
    /// Unannounced (topic, key): records up to this timestamp stay gone
    /// until the time given.
    tombstones: HashMap<([u8; 32], [u8; 32]), (u64, Instant)>,
}

impl Records {
    /// Empty storage with these bounds.
    pub fn new(limits: Limits) -> Self {
        Records {
            limits,
            ..Records::default()
        }
    }

    /// The bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn charge(&mut self, source: IpAddr) -> Result<(), ErrorCode> {
        let count = self.per_source.entry(source).or_insert(0);
        if *count >= self.limits.max_per_source {
            return Err(ErrorCode::Limited);
        }
        *count += 1;
        Ok(())
    }

    fn refund(&mut self, source: IpAddr) {
        if let Some(count) = self.per_source.get_mut(&source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    /// Stores (or refreshes) `public_key`'s record for `topic`, announced
    /// from `from`. An older record than the stored one is ignored, and so
    /// is the same record from another address; one no newer than an
    /// unannounce of it is refused ([`ErrorCode::SeqTooLow`]). One source
    /// prefix holds at most [`Limits::max_per_source_per_topic`] records of
    /// a topic. A full topic keeps its earliest arrivals: a newcomer gets
    /// in only if its source has fewer records there than the largest
    /// share, whose latest arrival then makes room.
    pub fn announce(
        &mut self,
        now: Instant,
        topic: [u8; 32],
        public_key: [u8; 32],
        timestamp: u64,
        signed: SignedRecord,
        from: SocketAddr,
    ) -> Result<(), ErrorCode> {
        let expires = now + self.limits.ttl;
        if self
            .tombstones
            .get(&(topic, public_key))
            .is_some_and(|(gone, until)| timestamp <= *gone && *until > now)
        {
            return Err(ErrorCode::SeqTooLow);
        }
        if let Some(stored) = self
            .topics
            .get_mut(&topic)
            .and_then(|list| list.iter_mut().find(|r| r.public_key == public_key))
        {
            // A strictly newer record may move where connects go; the same
            // record again only refreshes it from where it came (a replay of
            // a captured record from elsewhere changes nothing).
            if timestamp > stored.timestamp
                || (timestamp == stored.timestamp && from == stored.from)
            {
                let old_source = stored.from.ip();
                let new_source = from.ip();
                *stored = StoredRecord {
                    public_key,
                    timestamp,
                    signed,
                    from,
                    arrived: stored.arrived,
                    expires,
                };
                if old_source != new_source {
                    self.refund(old_source);
                    // Counted against the new source; over its cap, the
                    // refreshed record stays (it was already stored).
                    let _ = self.charge(new_source);
                }
            }
            return Ok(());
        }
        if !self.topics.contains_key(&topic) && self.topics.len() >= self.limits.max_topics {
            return Err(ErrorCode::Limited);
        }
        let source = Source::of(from);
        let list = self.topics.get(&topic).map_or(&[][..], Vec::as_slice);
        let mine = list.iter().filter(|r| r.source() == source).count();
        if matches!(source, Source::Prefix(_)) && mine >= self.limits.max_per_source_per_topic {
            return Err(ErrorCode::Limited);
        }
        let full = list.len() >= self.limits.max_records_per_topic;
        if full && largest_share(list) <= mine {
            // Full, and this source already has as many as any other.
            return Err(ErrorCode::Limited);
        }
        self.charge(from.ip())?;
        let list = self.topics.entry(topic).or_default();
        if full && let Some(gone) = evict(list) {
            self.refund(gone.from.ip());
        }
        let list = self.topics.entry(topic).or_default();
        list.push(StoredRecord {
            public_key,
            timestamp,
            signed,
            from,
            arrived: now,
            expires,
        });
        Ok(())
    }

    /// Removes `public_key`'s record for `topic` if it is older than
    /// `timestamp`, and keeps a tombstone until the record would have
    /// expired, so a replay of it cannot bring it back; whether one was
    /// removed.
    pub fn unannounce(
        &mut self,
        now: Instant,
        topic: &[u8; 32],
        public_key: &[u8; 32],
        timestamp: u64,
    ) -> bool {
        let key = (*topic, *public_key);
        let newer = self
            .tombstones
            .get(&key)
            .is_none_or(|(t, _)| *t < timestamp);
        if newer
            && (self.tombstones.len() < self.limits.max_topics
                || self.tombstones.contains_key(&key))
        {
            self.tombstones
                .insert(key, (timestamp, now + self.limits.ttl));
        }
        let Some(list) = self.topics.get_mut(topic) else {
            return false;
        };
        let Some(pos) = list
            .iter()
            .position(|r| r.public_key == *public_key && r.timestamp <= timestamp)
        else {
            return false;
        };
        let gone = list.swap_remove(pos);
        if list.is_empty() {
            self.topics.remove(topic);
        }
        self.refund(gone.from.ip());
        true
    }

    /// The records of `topic` in the order they first arrived, taking
    /// one from each source prefix in turn (so one source cannot fill an
    /// answer).
    pub fn lookup(&self, topic: &[u8; 32]) -> Vec<SignedRecord> {
        let mut list: Vec<&StoredRecord> = self.topics.get(topic).into_iter().flatten().collect();
        list.sort_by_key(|r| r.arrived);
        let mut rank: HashMap<Source, usize> = HashMap::new();
        let mut ranked: Vec<(usize, Instant, &StoredRecord)> = list
            .into_iter()
            .map(|r| {
                let n = rank.entry(r.source()).or_insert(0);
                *n += 1;
                (*n, r.arrived, r)
            })
            .collect();
        ranked.sort_by_key(|(n, arrived, _)| (*n, *arrived));
        ranked
            .into_iter()
            .map(|(_, _, r)| r.signed.clone())
            .collect()
    }

    /// Where `public_key` announced `topic` from.
    pub fn announcer(&self, topic: &[u8; 32], public_key: &[u8; 32]) -> Option<SocketAddr> {
        self.topics
            .get(topic)?
            .iter()
            .find(|r| r.public_key == *public_key)
            .map(|r| r.from)
    }

    /// Stores a (verified) mutable value at `target` if its seq is above
    /// the stored one's.
    pub fn put_mutable(
        &mut self,
        now: Instant,
        target: [u8; 32],
        value: MutableValue,
        source: IpAddr,
    ) -> Result<(), ErrorCode> {
        if value.value.len() > self.limits.max_value_bytes {
            return Err(ErrorCode::Invalid);
        }
        let expires = now + self.limits.ttl;
        if let Some(stored) = self.mutable.get_mut(&target) {
            if value.seq < stored.value.seq {
                return Err(ErrorCode::SeqTooLow);
            }
            if value.seq == stored.value.seq && value.value != stored.value.value {
                return Err(ErrorCode::SeqTooLow);
            }
            stored.value = value;
            stored.expires = expires;
            return Ok(());
        }
        self.admit_value(source)?;
        self.mutable.insert(
            target,
            StoredValue {
                value,
                source,
                expires,
            },
        );
        Ok(())
    }

    /// The mutable value at `target`, if its seq is at least `seq`.
    pub fn get_mutable(&self, target: &[u8; 32], seq: u64) -> Option<&MutableValue> {
        self.mutable
            .get(target)
            .map(|s| &s.value)
            .filter(|v| v.seq >= seq)
    }

    /// Stores an immutable value under its hash `target`.
    pub fn put_immutable(
        &mut self,
        now: Instant,
        target: [u8; 32],
        value: Vec<u8>,
        source: IpAddr,
    ) -> Result<(), ErrorCode> {
        if value.len() > self.limits.max_value_bytes {
            return Err(ErrorCode::Invalid);
        }
        let expires = now + self.limits.ttl;
        if let Some(stored) = self.immutable.get_mut(&target) {
            stored.expires = expires;
            return Ok(());
        }
        self.admit_value(source)?;
        self.immutable.insert(
            target,
            StoredValue {
                value,
                source,
                expires,
            },
        );
        Ok(())
    }

    /// The immutable value stored under `target`.
    pub fn get_immutable(&self, target: &[u8; 32]) -> Option<&[u8]> {
        self.immutable.get(target).map(|s| s.value.as_slice())
    }

    /// Room for one more value, charged to `source`.
    fn admit_value(&mut self, source: IpAddr) -> Result<(), ErrorCode> {
        if self.value_count() >= self.limits.max_values {
            return Err(ErrorCode::Limited);
        }
        self.charge(source)
    }

    fn value_count(&self) -> usize {
        self.mutable.len() + self.immutable.len()
    }

    /// Entries stored in all (records and values).
    pub fn len(&self) -> usize {
        self.topics.values().map(Vec::len).sum::<usize>() + self.value_count()
    }

    /// Drops everything whose time is up.
    pub fn expire(&mut self, now: Instant) {
        self.tombstones.retain(|_, (_, until)| *until > now);
        let mut refunds = Vec::new();
        self.topics.retain(|_, list| {
            list.retain(|r| {
                let keep = r.expires > now;
                if !keep {
                    refunds.push(r.from.ip());
                }
                keep
            });
            !list.is_empty()
        });
        self.mutable.retain(|_, v| {
            let keep = v.expires > now;
            if !keep {
                refunds.push(v.source);
            }
            keep
        });
        self.immutable.retain(|_, v| {
            let keep = v.expires > now;
            if !keep {
                refunds.push(v.source);
            }
            keep
        });
        for source in refunds {
            self.refund(source);
        }
    }
}

/// The most records one source has in `list`.
fn largest_share(list: &[StoredRecord]) -> usize {
    let mut counts: HashMap<Source, usize> = HashMap::new();
    for r in list {
        *counts.entry(r.source()).or_insert(0) += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

/// Takes out the record that makes room in a full topic: the latest
/// arrival among the sources with the largest share.
fn evict(list: &mut Vec<StoredRecord>) -> Option<StoredRecord> {
    let mut counts: HashMap<Source, usize> = HashMap::new();
    for r in list.iter() {
        *counts.entry(r.source()).or_insert(0) += 1;
    }
    let most = counts.values().copied().max()?;
    let pos = list
        .iter()
        .enumerate()
        .filter(|(_, r)| counts.get(&r.source()) == Some(&most))
        .max_by_key(|(_, r)| r.arrived)
        .map(|(i, _)| i)?;
    Some(list.swap_remove(pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(n: u8) -> SignedRecord {
        SignedRecord {
            record: vec![n],
            signature: vec![n; 64],
        }
    }

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, last], port))
    }

    #[test]
    fn a_newer_record_replaces_an_older_and_unannounce_removes_only_older() {
        let now = Instant::now();
        let mut records = Records::new(Limits::default());
        let topic = [1; 32];
        records
            .announce(now, topic, [2; 32], 10, signed(1), addr(1, 1))
            .expect("stored");
        records
            .announce(now, topic, [2; 32], 5, signed(2), addr(1, 1))
            .expect("ignored");
        assert_eq!(records.lookup(&topic), vec![signed(1)]);
        records
            .announce(now, topic, [2; 32], 20, signed(3), addr(1, 2))
            .expect("stored");
        assert_eq!(records.lookup(&topic), vec![signed(3)]);
        assert_eq!(records.announcer(&topic, &[2; 32]), Some(addr(1, 2)));
        // The same record replayed from elsewhere does not move connects.
        records
            .announce(now, topic, [2; 32], 20, signed(3), addr(9, 9))
            .expect("ignored");
        assert_eq!(records.announcer(&topic, &[2; 32]), Some(addr(1, 2)));
        assert!(
            !records.unannounce(now, &topic, &[2; 32], 19),
            "a stale unannounce"
        );
        assert!(records.unannounce(now, &topic, &[2; 32], 20));
        assert_eq!(records.len(), 0);
        assert!(records.per_source.is_empty(), "every charge refunded");
        // The tombstone keeps a replay out; a newer record gets in.
        assert_eq!(
            records.announce(now, topic, [2; 32], 20, signed(3), addr(1, 2)),
            Err(ErrorCode::SeqTooLow)
        );
        records
            .announce(now, topic, [2; 32], 21, signed(4), addr(1, 2))
            .expect("newer");
        assert_eq!(records.lookup(&topic), vec![signed(4)]);
    }

    #[test]
    fn one_source_cannot_store_more_than_its_share() {
        let now = Instant::now();
        let limits = Limits {
            max_per_source: 10,
            ..Limits::default()
        };
        let mut records = Records::new(limits);
        let mut refused = 0;
        for i in 0..100u8 {
            let mut topic = [0; 32];
            topic[0] = i;
            if records
                .announce(now, topic, [i; 32], 1, signed(i), addr(9, u16::from(i)))
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(records.len(), 10);
        assert_eq!(refused, 90);
        // Another source still gets in.
        records
            .announce(now, [7; 32], [7; 32], 1, signed(7), addr(8, 1))
            .expect("another source");
    }

    fn global(host: u8, net: u8) -> SocketAddr {
        SocketAddr::from(([203, 0, net, host], 4000))
    }

    #[test]
    fn future_timestamps_evict_no_honest_record_and_sources_are_capped() {
        let start = Instant::now();
        let limits = Limits {
            max_records_per_topic: 8,
            max_per_source_per_topic: 3,
            ..Limits::default()
        };
        let mut records = Records::new(limits);
        let at = |n: u64| start + Duration::from_millis(n);
        // Four honest records from four /24s...
        for i in 0..4u8 {
            records
                .announce(
                    at(u64::from(i)),
                    [0; 32],
                    [i; 32],
                    10,
                    signed(i),
                    global(1, i),
                )
                .expect("stored");
        }
        // ... then a flood far in the future from one /24, and from four
        // more /24s: the cap per source, then eviction from the largest.
        let mut refused = 0;
        for i in 10..40u8 {
            let net = 100 + (i % 5);
            if records
                .announce(
                    at(u64::from(i)),
                    [0; 32],
                    [i; 32],
                    u64::MAX,
                    signed(i),
                    global(i, net),
                )
                .is_err()
            {
                refused += 1;
            }
        }
        assert!(refused >= 15, "{refused} refused");
        let kept = records.lookup(&[0; 32]);
        assert_eq!(kept.len(), 8);
        for i in 0..4u8 {
            assert!(kept.contains(&signed(i)), "honest record {i} kept");
        }
        // Answers take one per source in turn, oldest arrival first.
        assert_eq!(&kept[..4], &[signed(0), signed(1), signed(2), signed(3)]);
    }

    #[test]
    fn topics_keep_the_earliest_arrivals_and_everything_expires() {
        let start = Instant::now();
        let now = start + Duration::from_secs(1);
        let limits = Limits {
            max_records_per_topic: 3,
            ..Limits::default()
        };
        let mut records = Records::new(limits);
        for i in 0..6u8 {
            let at = start + Duration::from_millis(u64::from(i));
            records
                .announce(
                    at,
                    [0; 32],
                    [i; 32],
                    u64::from(6 - i),
                    signed(i),
                    addr(i, 1),
                )
                .expect("stored");
        }
        // The earliest stay; newcomers take turns in the last place.
        assert_eq!(
            records.lookup(&[0; 32]),
            vec![signed(0), signed(1), signed(5)]
        );
        records
            .put_immutable(now, [1; 32], vec![1, 2], addr(1, 1).ip())
            .expect("stored");
        let value = MutableValue {
            public_key: vec![1; 32],
            seq: 2,
            value: vec![3],
            signature: vec![0; 64],
        };
        records
            .put_mutable(now, [2; 32], value.clone(), addr(1, 1).ip())
            .expect("stored");
        let lower = MutableValue {
            seq: 1,
            ..value.clone()
        };
        assert_eq!(
            records.put_mutable(now, [2; 32], lower, addr(1, 1).ip()),
            Err(ErrorCode::SeqTooLow)
        );
        assert_eq!(records.get_mutable(&[2; 32], 2), Some(&value));
        assert_eq!(records.get_mutable(&[2; 32], 3), None);
        records.expire(now + Duration::from_secs(21 * 60));
        assert_eq!(records.len(), 0);
        assert!(records.per_source.is_empty());
    }
}
