//! The blind relay's table: pairs two addresses that registered the same
//! session id, then says where each datagram from one of them goes. Pure
//! (time passed in) and bounded.
//!
//! Registration proves the registering address (return routability, as a
//! TURN allocation or a QUIC retry does): a hello (`0x02` + session) is
//! answered with a cookie, a keyed hash of the address and the session
//! under a secret of the relay that rotates every [`COOKIE_LIFETIME`]; only
//! a registration echoing that cookie (`0x02` + session + cookie) from the
//! same address counts, and is acknowledged (`0x02` + session + `0xff`).
//! A forged source never sees its cookie, so it cannot pair a victim with
//! anyone, nor end a victim's session by registering it elsewhere.
//!
//! Bounds: [`MAX_SESSIONS`] in all, [`MAX_PER_IP`] per registering IP and
//! [`MAX_PER_PREFIX`] per /24 or /64 (local networks exempt); a session
//! with one side only ends after [`HALF_OPEN`], a paired one after [`IDLE`]
//! without traffic or once it has carried [`MAX_SESSION_BYTES`]. Expiry
//! runs from a queue of deadlines, never a scan of every session. The
//! relay never looks inside what it forwards (QUIC ciphertext).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::limits::Prefix;

/// Sessions carried at once at most.
pub const MAX_SESSIONS: usize = 1024;
/// Sessions one IP may have registered at once.
pub const MAX_PER_IP: usize = 8;
/// Sessions one /24 (IPv4) or /64 (IPv6) may have registered at once.
pub const MAX_PER_PREFIX: usize = 32;
/// A session with no traffic for this long is dropped.
pub const IDLE: Duration = Duration::from_secs(60);
/// A session whose second side has not registered by then is dropped.
pub const HALF_OPEN: Duration = Duration::from_secs(10);
/// A cookie is valid for one to two of these.
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(30);
/// Bytes one session may carry (both ways) before it ends: a relay helps
/// peers meet, it is not a free pipe for bulk data forever.
pub const MAX_SESSION_BYTES: u64 = 4 << 30;

struct Session {
    first: SocketAddr,
    second: Option<SocketAddr>,
    last: Instant,
    bytes: u64,
}

/// What a registration led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// The address is registered for the session: acknowledge.
    Yes,
    /// The cookie is not the one this relay gave that address.
    BadCookie,
    /// The session has two other addresses, or a cap was reached.
    Refused,
}

/// Sessions by id, each paired address's session, and the deadlines.
pub struct Relay {
    secrets: [[u8; 32]; 2],
    rotated: Instant,
    sessions: HashMap<[u8; 32], Session>,
    by_address: HashMap<SocketAddr, [u8; 32]>,
    per_ip: HashMap<IpAddr, usize>,
    per_prefix: HashMap<Prefix, usize>,
    deadlines: BinaryHeap<Reverse<(Instant, [u8; 32])>>,
}

impl Relay {
    /// An empty relay whose cookie secrets derive from `seed`.
    pub fn new(now: Instant, seed: [u8; 32]) -> Self {
        let secret = blake3::derive_key("hyper-swarm 2026 relay cookie", &seed);
        Relay {
            secrets: [secret, secret],
            rotated: now,
            sessions: HashMap::new(),
            by_address: HashMap::new(),
            per_ip: HashMap::new(),
            per_prefix: HashMap::new(),
            deadlines: BinaryHeap::new(),
        }
    }

    fn rotate(&mut self, now: Instant) {
        // Once per lifetime passed, twice at most (then neither old
        // secret is left).
        for _ in 0..2 {
            if now.saturating_duration_since(self.rotated) < COOKIE_LIFETIME {
                return;
            }
            self.secrets[1] = self.secrets[0];
            self.secrets[0] = blake3::derive_key("hyper-swarm 2026 relay cookie", &self.secrets[1]);
            self.rotated += COOKIE_LIFETIME;
        }
        // Both secrets are new: the period starts again now.
        if now.saturating_duration_since(self.rotated) >= COOKIE_LIFETIME {
            self.rotated = now;
        }
    }

    fn cookie_with(&self, secret: usize, from: SocketAddr, session: &[u8; 32]) -> [u8; 32] {
        let key = self.secrets.get(secret).copied().unwrap_or([0; 32]);
        let mut hasher = blake3::Hasher::new_keyed(&key);
        hasher.update(from.to_string().as_bytes());
        hasher.update(session);
        *hasher.finalize().as_bytes()
    }

    /// The cookie for `from`'s hello for `session`: sent back to `from`.
    pub fn cookie(&mut self, now: Instant, from: SocketAddr, session: &[u8; 32]) -> [u8; 32] {
        self.rotate(now);
        self.cookie_with(0, from, session)
    }

    /// `from` registers for `session` with `cookie`.
    pub fn register(
        &mut self,
        now: Instant,
        from: SocketAddr,
        session: [u8; 32],
        cookie: &[u8; 32],
    ) -> Registered {
        self.rotate(now);
        if !(0..2).any(|s| self.cookie_with(s, from, &session) == *cookie) {
            return Registered::BadCookie;
        }
        if let Some(existing) = self.by_address.get(&from).copied()
            && existing != session
        {
            // One address, one session: the proven owner moved on.
            self.drop_session(&existing);
        }
        let room = self.room_for(from);
        match self.sessions.get_mut(&session) {
            Some(s) if s.first == from || s.second == Some(from) => {
                s.last = now;
                Registered::Yes
            }
            Some(s) if s.second.is_none() => {
                if !room {
                    return Registered::Refused;
                }
                s.second = Some(from);
                s.last = now;
                self.by_address.insert(from, session);
                self.charge(from);
                self.deadlines.push(Reverse((now + IDLE, session)));
                Registered::Yes
            }
            Some(_) => Registered::Refused,
            None => {
                self.expire(now);
                if self.sessions.len() >= MAX_SESSIONS || !room {
                    return Registered::Refused;
                }
                self.sessions.insert(
                    session,
                    Session {
                        first: from,
                        second: None,
                        last: now,
                        bytes: 0,
                    },
                );
                self.by_address.insert(from, session);
                self.charge(from);
                self.deadlines.push(Reverse((now + HALF_OPEN, session)));
                Registered::Yes
            }
        }
    }

    fn room_for(&self, from: SocketAddr) -> bool {
        let Some(prefix) = Prefix::capped(from.ip()) else {
            return true;
        };
        self.per_ip.get(&from.ip()).copied().unwrap_or(0) < MAX_PER_IP
            && self.per_prefix.get(&prefix).copied().unwrap_or(0) < MAX_PER_PREFIX
    }

    fn charge(&mut self, from: SocketAddr) {
        if let Some(prefix) = Prefix::capped(from.ip()) {
            *self.per_ip.entry(from.ip()).or_insert(0) += 1;
            *self.per_prefix.entry(prefix).or_insert(0) += 1;
        }
    }

    fn refund(&mut self, from: SocketAddr) {
        if let Some(prefix) = Prefix::capped(from.ip()) {
            release(&mut self.per_ip, from.ip());
            release(&mut self.per_prefix, prefix);
        }
    }

    /// Where a datagram of `len` bytes from `from` goes: the other address
    /// of its paired session (none once the session used up its bytes).
    pub fn forward(&mut self, now: Instant, from: SocketAddr, len: usize) -> Option<SocketAddr> {
        let id = *self.by_address.get(&from)?;
        let session = self.sessions.get_mut(&id)?;
        let to = if session.first == from {
            session.second?
        } else {
            session.first
        };
        session.bytes = session.bytes.saturating_add(len as u64);
        if session.bytes > MAX_SESSION_BYTES {
            self.drop_session(&id);
            return None;
        }
        session.last = now;
        Some(to)
    }

    /// Sessions carried now.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    fn drop_session(&mut self, id: &[u8; 32]) {
        if let Some(s) = self.sessions.remove(id) {
            self.by_address.remove(&s.first);
            self.refund(s.first);
            if let Some(second) = s.second {
                self.by_address.remove(&second);
                self.refund(second);
            }
        }
    }

    /// Drops the sessions whose deadline has passed: half-open ones after
    /// [`HALF_OPEN`], paired ones idle for [`IDLE`]. Costs the deadlines
    /// due, not the sessions held.
    pub fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                return;
            }
            self.deadlines.pop();
            let Some(session) = self.sessions.get(&id) else {
                continue;
            };
            let due = match session.second {
                None => session.last + HALF_OPEN,
                Some(_) => session.last + IDLE,
            };
            if due <= now {
                self.drop_session(&id);
            } else {
                self.deadlines.push(Reverse((due, id)));
            }
        }
    }
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 9], port))
    }

    fn join(relay: &mut Relay, now: Instant, from: SocketAddr, session: [u8; 32]) -> Registered {
        let cookie = relay.cookie(now, from, &session);
        relay.register(now, from, session, &cookie)
    }

    #[test]
    fn two_registrations_pair_and_a_third_is_refused() {
        let now = Instant::now();
        let mut relay = Relay::new(now, [1; 32]);
        assert_eq!(join(&mut relay, now, addr(1), [7; 32]), Registered::Yes);
        assert_eq!(relay.forward(now, addr(1), 10), None, "no partner yet");
        assert_eq!(join(&mut relay, now, addr(2), [7; 32]), Registered::Yes);
        assert_eq!(
            join(&mut relay, now, addr(2), [7; 32]),
            Registered::Yes,
            "a repeat"
        );
        assert_eq!(join(&mut relay, now, addr(3), [7; 32]), Registered::Refused);
        assert_eq!(relay.forward(now, addr(1), 10), Some(addr(2)));
        assert_eq!(relay.forward(now, addr(2), 10), Some(addr(1)));
        assert_eq!(relay.forward(now, addr(3), 10), None);
        relay.expire(now + IDLE);
        assert_eq!(relay.sessions(), 0);
        assert_eq!(relay.forward(now, addr(1), 10), None);
    }

    #[test]
    fn a_cookie_proves_one_address_for_one_session_for_a_while() {
        let now = Instant::now();
        let mut relay = Relay::new(now, [1; 32]);
        let cookie = relay.cookie(now, addr(1), &[7; 32]);
        // The cookie went to addr(1): a forger elsewhere cannot use it, nor
        // register addr(1) without it.
        assert_eq!(
            relay.register(now, addr(2), [7; 32], &cookie),
            Registered::BadCookie
        );
        assert_eq!(
            relay.register(now, addr(1), [8; 32], &cookie),
            Registered::BadCookie
        );
        assert_eq!(
            relay.register(now, addr(1), [7; 32], &[0; 32]),
            Registered::BadCookie
        );
        assert_eq!(
            relay.register(now, addr(1), [7; 32], &cookie),
            Registered::Yes
        );
        // A live pair survives a forged re-registration of one side.
        assert_eq!(join(&mut relay, now, addr(2), [7; 32]), Registered::Yes);
        assert_eq!(
            relay.register(now, addr(1), [9; 32], &[3; 32]),
            Registered::BadCookie
        );
        assert_eq!(relay.forward(now, addr(1), 10), Some(addr(2)));
        // A cookie is good for its lifetime and the next, not longer.
        let late = relay.cookie(now, addr(5), &[5; 32]);
        let later = now + COOKIE_LIFETIME * 2;
        assert_eq!(
            relay.register(later, addr(5), [5; 32], &late),
            Registered::BadCookie
        );
    }

    #[test]
    fn a_session_ends_when_it_has_carried_its_bytes() {
        let now = Instant::now();
        let mut relay = Relay::new(now, [1; 32]);
        assert_eq!(join(&mut relay, now, addr(1), [7; 32]), Registered::Yes);
        assert_eq!(join(&mut relay, now, addr(2), [7; 32]), Registered::Yes);
        let chunk = 1 << 30;
        for _ in 0..4 {
            assert_eq!(relay.forward(now, addr(1), chunk), Some(addr(2)));
        }
        assert_eq!(relay.forward(now, addr(2), 1), None, "over the budget");
        assert_eq!(relay.sessions(), 0);
    }

    #[test]
    fn sessions_are_capped_per_ip_per_prefix_and_in_all_and_half_open_ones_go_soon() {
        let now = Instant::now();
        let mut relay = Relay::new(now, [1; 32]);
        let mut yes = 0;
        for port in 0..20u16 {
            let mut id = [0u8; 32];
            id[..2].copy_from_slice(&port.to_be_bytes());
            if join(&mut relay, now, addr(port), id) == Registered::Yes {
                yes += 1;
            }
        }
        assert_eq!(yes, MAX_PER_IP);
        let mut yes = 0;
        for host in 0..100u8 {
            let from = SocketAddr::from(([198, 18, 7, host], 1));
            let mut id = [host; 32];
            id[0] = 0xcc;
            if join(&mut relay, now, from, id) == Registered::Yes {
                yes += 1;
            }
        }
        assert_eq!(yes, MAX_PER_PREFIX);
        // Half-open sessions end after HALF_OPEN, and free their places.
        relay.expire(now + HALF_OPEN);
        assert_eq!(relay.sessions(), 0);
        let from = SocketAddr::from(([198, 18, 7, 200], 1));
        assert_eq!(
            join(&mut relay, now + HALF_OPEN, from, [200; 32]),
            Registered::Yes
        );
        // In all: local addresses are exempt from the caps, not the total.
        let mut yes = 0;
        for i in 0..(MAX_SESSIONS as u16 + 10) {
            let from = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1));
            let mut id = [0xee; 32];
            id[..2].copy_from_slice(&i.to_be_bytes());
            if join(&mut relay, now + HALF_OPEN, from, id) == Registered::Yes {
                yes += 1;
            }
        }
        assert_eq!(yes, MAX_SESSIONS - 1);
    }
}
