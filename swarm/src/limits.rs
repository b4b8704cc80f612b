//! The building blocks of a node's limits, pure (time passed in): address
//! prefixes (a /24 of IPv4, a /64 of IPv6, which one party usually
//! controls together), token buckets, bounded sets of addresses, and the
//! cache of validation tokens other nodes gave this one.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// The network an address belongs to for limits: its IPv4 /24 or its
/// IPv6 /64 (IPv4-mapped IPv6 counts as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix([u8; 9]);

impl Prefix {
    /// The /24 or /64 of `ip` where caps per prefix apply: `None` on a
    /// local network ([`is_local`]).
    pub fn capped(ip: IpAddr) -> Option<Prefix> {
        (!is_local(ip)).then(|| Prefix::of(ip))
    }

    /// The /24 or /64 of `ip`.
    pub fn of(ip: IpAddr) -> Prefix {
        let mut out = [0u8; 9];
        match canonical(ip) {
            IpAddr::V4(v4) => {
                out[0] = 4;
                out[1..4].copy_from_slice(&v4.octets()[..3]);
            }
            IpAddr::V6(v6) => {
                out[0] = 6;
                out[1..9].copy_from_slice(&v6.octets()[..8]);
            }
        }
        Prefix(out)
    }
}

/// `ip`, with an IPv4-mapped IPv6 address as the IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Whether `ip` is on a local network (loopback, private, link-local,
/// shared, unique-local, unspecified): prefixes there say nothing about
/// who controls an address, so the per-prefix caps of routing tables and
/// stores do not apply (as in BEP 42), and node ids there keep the port.
pub fn is_local(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(now: Instant, rate: f64, burst: f64) -> Self {
        TokenBucket {
            tokens: burst,
            at: now,
            rate,
            burst,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes `n` tokens if there are that many.
    pub fn take(&mut self, now: Instant, n: f64) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether any token is left (without taking one).
    pub fn has(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes `n` tokens even if that leaves the bucket in debt.
    pub fn charge(&mut self, now: Instant, n: f64) {
        self.refill(now);
        self.tokens -= n;
    }

    /// Whether it has been idle long enough to be full again.
    pub fn refilled(&self, now: Instant) -> bool {
        let need = (self.burst - self.tokens).max(0.0) / self.rate.max(f64::MIN_POSITIVE);
        now.saturating_duration_since(self.at).as_secs_f64() >= need
    }
}

/// Token buckets per key, at most `max` of them: when full, buckets that
/// have refilled are dropped (they would start full anyway), and if none
/// has, a new key is refused.
#[derive(Debug)]
pub struct Buckets<K> {
    buckets: HashMap<K, TokenBucket>,
    rate: f64,
    burst: f64,
    max: usize,
}

impl<K: std::hash::Hash + Eq> Buckets<K> {
    /// Empty, each bucket `rate` a second with `burst`.
    pub fn new(rate: f64, burst: f64, max: usize) -> Self {
        Buckets {
            buckets: HashMap::new(),
            rate,
            burst,
            max,
        }
    }

    /// Takes one token from `key`'s bucket.
    pub fn take(&mut self, now: Instant, key: K) -> bool {
        if !self.buckets.contains_key(&key) && self.buckets.len() >= self.max {
            self.buckets.retain(|_, b| !b.refilled(now));
            if self.buckets.len() >= self.max {
                return false;
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(now, rate, burst))
            .take(now, 1.0)
    }

    /// Drops the buckets that have refilled.
    pub fn expire(&mut self, now: Instant) {
        self.buckets.retain(|_, b| !b.refilled(now));
    }
}

/// A bounded set of addresses: two generations of at most
/// [`AddressSet::GENERATION`] each, the older dropped when the newer fills.
#[derive(Debug, Default)]
pub struct AddressSet {
    current: HashSet<SocketAddr>,
    previous: HashSet<SocketAddr>,
}

impl AddressSet {
    /// Addresses per generation.
    pub const GENERATION: usize = 16_384;

    /// Adds `addr`.
    pub fn insert(&mut self, addr: SocketAddr) {
        if self.current.len() >= Self::GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(addr);
    }

    /// Whether `addr` was added (and not yet aged out).
    pub fn contains(&self, addr: &SocketAddr) -> bool {
        self.current.contains(addr) || self.previous.contains(addr)
    }
}

/// Validation tokens other nodes gave this one, by node address, with
/// when: sent back in requests to them, they prove this node's address
/// (it received the token there), so the node answers in full.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<SocketAddr, (Vec<u8>, Instant)>,
}

impl TokenCache {
    /// Tokens kept at most.
    pub const MAX: usize = 8192;
    /// How long a token is used: nodes rotate their secret every five
    /// minutes and accept the last two.
    pub const FRESH: Duration = Duration::from_secs(4 * 60);

    /// `from` gave `token` at `now`.
    pub fn insert(&mut self, now: Instant, from: SocketAddr, token: Vec<u8>) {
        if token.len() != 32 {
            return;
        }
        if self.tokens.len() >= Self::MAX && !self.tokens.contains_key(&from) {
            self.tokens
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < Self::FRESH);
            if self.tokens.len() >= Self::MAX {
                self.tokens.clear();
            }
        }
        self.tokens.insert(from, (token, now));
    }

    /// The fresh token `to` gave, if any.
    pub fn get(&self, now: Instant, to: &SocketAddr) -> Option<&[u8]> {
        self.tokens
            .get(to)
            .filter(|(_, at)| now.saturating_duration_since(*at) < Self::FRESH)
            .map(|(t, _)| t.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_group_a_slash_24_and_a_slash_64() {
        let a: IpAddr = "203.0.113.1".parse().expect("ip");
        let b: IpAddr = "203.0.113.250".parse().expect("ip");
        let c: IpAddr = "203.0.114.1".parse().expect("ip");
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().expect("ip");
        assert_eq!(Prefix::of(a), Prefix::of(b));
        assert_ne!(Prefix::of(a), Prefix::of(c));
        assert_eq!(Prefix::of(a), Prefix::of(mapped));
        let x: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let z: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(Prefix::of(x), Prefix::of(y));
        assert_ne!(Prefix::of(x), Prefix::of(z));
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
        ] {
            assert!(is_local(local.parse().expect("ip")), "{local}");
        }
        for global in ["203.0.113.1", "198.18.0.2", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!is_local(global.parse().expect("ip")), "{global}");
        }
    }

    #[test]
    fn buckets_refill_and_their_table_is_bounded() {
        let now = Instant::now();
        let mut bucket = TokenBucket::new(now, 10.0, 20.0);
        assert!(bucket.take(now, 20.0));
        assert!(!bucket.take(now, 1.0));
        assert!(bucket.take(now + Duration::from_millis(100), 1.0));
        bucket.charge(now + Duration::from_millis(100), 100.0);
        assert!(!bucket.has(now + Duration::from_secs(5)), "in debt");
        assert!(bucket.has(now + Duration::from_secs(11)));
        let mut buckets = Buckets::new(1.0, 1.0, 2);
        assert!(buckets.take(now, 1));
        assert!(buckets.take(now, 2));
        assert!(!buckets.take(now, 3), "full of busy buckets");
        assert!(!buckets.take(now, 1), "empty");
        assert!(
            buckets.take(now + Duration::from_secs(2), 3),
            "refilled ones go"
        );
    }

    #[test]
    fn tokens_are_kept_while_fresh() {
        let now = Instant::now();
        let mut cache = TokenCache::default();
        let at: SocketAddr = "203.0.113.1:1".parse().expect("addr");
        cache.insert(now, at, vec![1; 31]);
        assert_eq!(cache.get(now, &at), None, "not a token");
        cache.insert(now, at, vec![1; 32]);
        assert_eq!(cache.get(now, &at), Some(&[1u8; 32][..]));
        assert_eq!(cache.get(now + TokenCache::FRESH, &at), None);
    }
}
