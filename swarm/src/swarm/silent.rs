//! Addresses that stayed silent (pure: no sockets, time passed in).
//!
//! A direct dial (an address a local announcement or a DHT record's local
//! addresses name) goes to whatever the announcer wrote, and announcers
//! are not trusted: a spoofer could name a victim that runs no QUIC at
//! all, and rotate keys, instance names or goodbyes to dodge the per-key
//! backoff of the local table. So the rest is kept per address, whatever
//! key was announced there:
//!
//! - an address is dialled by one attempt at a time;
//! - an address whose handshake got no answer at all rests (1 s doubling
//!   to 60 s), for every key; an address that answered (even with another
//!   key) does not, so a spoof naming an honest peer's address cannot rest
//!   it;
//! - at most [`MAX_REMEMBERED`] addresses are remembered, an address
//!   quiet for [`REST_MAX`] past its rest is forgotten.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Addresses remembered at most.
pub(crate) const MAX_REMEMBERED: usize = 1024;
/// The first rest of a silent address.
const REST_FIRST: Duration = Duration::from_secs(1);
/// The longest rest of a silent address.
pub(crate) const REST_MAX: Duration = Duration::from_secs(60);

/// How a dial to one address ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing answered in time.
    Silent,
    /// Something answered (a handshake finished or was refused).
    Answered,
    /// The attempt was dropped before it ended (another address won).
    Dropped,
}

/// The addresses being dialled and those resting.
#[derive(Default)]
pub(crate) struct SilentAddresses {
    dialling: HashSet<SocketAddr>,
    /// Until when each silent address rests, and its last rest.
    resting: HashMap<SocketAddr, (Instant, Duration)>,
}

impl SilentAddresses {
    /// Of `addresses`, those that may be dialled at `now` (not resting, not
    /// being dialled), now marked as being dialled.
    pub(crate) fn claim(&mut self, addresses: &[SocketAddr], now: Instant) -> Vec<SocketAddr> {
        let mut claimed = Vec::new();
        for addr in addresses {
            let resting = self
                .resting
                .get(addr)
                .is_some_and(|(until, _)| now < *until);
            if !resting && self.dialling.insert(*addr) {
                claimed.push(*addr);
            }
        }
        claimed
    }

    /// The dial to `addr` (claimed) ended with `outcome`.
    pub(crate) fn release(&mut self, addr: SocketAddr, outcome: Outcome, now: Instant) {
        self.dialling.remove(&addr);
        match outcome {
            Outcome::Answered => {
                self.resting.remove(&addr);
            }
            Outcome::Dropped => {}
            Outcome::Silent => {
                let rest = self
                    .resting
                    .get(&addr)
                    .map_or(REST_FIRST, |(_, last)| (*last * 2).min(REST_MAX));
                if !self.resting.contains_key(&addr) && self.resting.len() >= MAX_REMEMBERED {
                    self.resting.retain(|_, (until, _)| *until + REST_MAX > now);
                    if self.resting.len() >= MAX_REMEMBERED
                        && let Some(first) = self
                            .resting
                            .iter()
                            .min_by_key(|(_, (until, _))| *until)
                            .map(|(a, _)| *a)
                    {
                        self.resting.remove(&first);
                    }
                }
                self.resting.insert(addr, (now + rest, rest));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    #[test]
    fn one_attempt_per_address_and_silence_rests_it_longer_each_time() {
        let now = Instant::now();
        let mut table = SilentAddresses::default();
        assert_eq!(
            table.claim(&[addr(1), addr(2)], now),
            vec![addr(1), addr(2)]
        );
        // Another key announced at the same addresses waits.
        assert!(table.claim(&[addr(1), addr(2)], now).is_empty());
        table.release(addr(1), Outcome::Silent, now);
        table.release(addr(2), Outcome::Dropped, now);
        assert_eq!(table.claim(&[addr(1), addr(2)], now), vec![addr(2)]);
        assert_eq!(table.claim(&[addr(1)], now + REST_FIRST), vec![addr(1)]);
        table.release(addr(1), Outcome::Silent, now + REST_FIRST);
        let later = now + REST_FIRST + 2 * REST_FIRST;
        assert!(
            table
                .claim(&[addr(1)], later - Duration::from_millis(1))
                .is_empty()
        );
        assert_eq!(table.claim(&[addr(1)], later), vec![addr(1)]);
        // An answer (even with another key) ends the rest.
        table.release(addr(1), Outcome::Answered, later);
        table.release(addr(2), Outcome::Answered, later);
        assert_eq!(table.claim(&[addr(1)], later), vec![addr(1)]);
        table.release(addr(1), Outcome::Silent, later);
        assert_eq!(table.resting[&addr(1)].1, REST_FIRST);
    }

    #[test]
    fn rests_double_up_to_the_cap() {
        let mut now = Instant::now();
        let mut table = SilentAddresses::default();
        for _ in 0..10 {
            assert_eq!(table.claim(&[addr(1)], now), vec![addr(1)]);
            table.release(addr(1), Outcome::Silent, now);
            now = table.resting[&addr(1)].0;
        }
        assert_eq!(table.resting[&addr(1)].1, REST_MAX);
    }

    #[test]
    fn the_table_stays_bounded() {
        let now = Instant::now();
        let mut table = SilentAddresses::default();
        for port in 1..=3000u16 {
            let at = now + Duration::from_millis(u64::from(port));
            assert_eq!(table.claim(&[addr(port)], at), vec![addr(port)]);
            table.release(addr(port), Outcome::Silent, at);
        }
        assert_eq!(table.resting.len(), MAX_REMEMBERED);
        assert!(table.dialling.is_empty());
        assert!(table.resting.contains_key(&addr(3000)));
        assert!(!table.resting.contains_key(&addr(1)));
    }
}
