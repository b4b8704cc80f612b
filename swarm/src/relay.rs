//! The blind relay's table: pairs the first two addresses that register the
//! same session id, then says where each datagram from one of them goes.
//! Pure (time passed in) and bounded: at most [`MAX_SESSIONS`] sessions,
//! each dropped after [`IDLE`] without traffic or once it has carried
//! [`MAX_SESSION_BYTES`]. The relay never looks inside
//! what it forwards (QUIC ciphertext).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Sessions carried at once at most.
pub const MAX_SESSIONS: usize = 1024;
/// A session with no traffic for this long is dropped.
pub const IDLE: Duration = Duration::from_secs(60);
/// Bytes one session may carry (both ways) before it ends: a relay helps
/// peers meet, it is not a free pipe for bulk data forever.
pub const MAX_SESSION_BYTES: u64 = 4 << 30;

struct Session {
    first: SocketAddr,
    second: Option<SocketAddr>,
    last: Instant,
    bytes: u64,
}

/// Sessions by id, and each paired address's session.
#[derive(Default)]
pub struct Relay {
    sessions: HashMap<[u8; 32], Session>,
    by_address: HashMap<SocketAddr, [u8; 32]>,
}

impl Relay {
    /// `from` registers for `session`; whether to acknowledge (it is the
    /// first or second address of the session, and there was room).
    pub fn register(&mut self, now: Instant, from: SocketAddr, session: [u8; 32]) -> bool {
        if let Some(existing) = self.by_address.get(&from)
            && *existing != session
        {
            // One address, one session: the old one ends.
            let old = *existing;
            self.drop_session(&old);
        }
        match self.sessions.get_mut(&session) {
            Some(s) if s.first == from || s.second == Some(from) => {
                s.last = now;
                true
            }
            Some(s) if s.second.is_none() => {
                s.second = Some(from);
                s.last = now;
                self.by_address.insert(from, session);
                true
            }
            Some(_) => false,
            None => {
                if self.sessions.len() >= MAX_SESSIONS {
                    self.expire(now);
                    if self.sessions.len() >= MAX_SESSIONS {
                        return false;
                    }
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
                true
            }
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
            if let Some(second) = s.second {
                self.by_address.remove(&second);
            }
        }
    }

    /// Drops idle sessions.
    pub fn expire(&mut self, now: Instant) {
        let idle: Vec<[u8; 32]> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.last) >= IDLE)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.drop_session(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 9], port))
    }

    #[test]
    fn two_registrations_pair_and_a_third_is_refused() {
        let now = Instant::now();
        let mut relay = Relay::default();
        assert!(relay.register(now, addr(1), [7; 32]));
        assert_eq!(relay.forward(now, addr(1), 10), None, "no partner yet");
        assert!(relay.register(now, addr(2), [7; 32]));
        assert!(
            relay.register(now, addr(2), [7; 32]),
            "a repeat is acknowledged"
        );
        assert!(!relay.register(now, addr(3), [7; 32]));
        assert_eq!(relay.forward(now, addr(1), 10), Some(addr(2)));
        assert_eq!(relay.forward(now, addr(2), 10), Some(addr(1)));
        assert_eq!(relay.forward(now, addr(3), 10), None);
        relay.expire(now + IDLE);
        assert_eq!(relay.sessions(), 0);
        assert_eq!(relay.forward(now, addr(1), 10), None);
    }

    #[test]
    fn a_session_ends_when_it_has_carried_its_bytes() {
        let now = Instant::now();
        let mut relay = Relay::default();
        assert!(relay.register(now, addr(1), [7; 32]));
        assert!(relay.register(now, addr(2), [7; 32]));
        let chunk = 1 << 30;
        for _ in 0..4 {
            assert_eq!(relay.forward(now, addr(1), chunk), Some(addr(2)));
        }
        assert_eq!(relay.forward(now, addr(2), 1), None, "over the budget");
        assert_eq!(relay.sessions(), 0);
    }

    #[test]
    fn sessions_are_bounded() {
        let now = Instant::now();
        let mut relay = Relay::default();
        for i in 0..MAX_SESSIONS as u16 {
            let mut id = [0u8; 32];
            id[..2].copy_from_slice(&i.to_be_bytes());
            assert!(relay.register(now, addr(i), id));
        }
        assert!(!relay.register(now, addr(60_000), [0xff; 32]));
        assert!(
            relay.register(now + IDLE, addr(60_000), [0xff; 32]),
            "room after the idle ones go"
        );
    }
}
