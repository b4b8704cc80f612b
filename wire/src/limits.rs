//! [`Limits`]: what one peer (and all of them together) may make a
//! [`Replication`](crate::Replication) hold or wait for, and the admission
//! of connections under the caps in total and per address.
//!
//! docs/SECURITY.md ("Resources of a seeder") gives the threat model each
//! limit answers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::frame::DEFAULT_MAX_FRAME;

/// Limits on connections and on what each peer can make this side buffer.
/// The defaults suit a public seeder on a machine with the usual 1,024 open
/// files.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection whose handshake has not finished after this long is
    /// dropped (a peer that connects and never speaks). Default 10 s.
    pub handshake_timeout: Duration,
    /// A connection on which nothing arrives (not even a keep-alive) for
    /// this long ends with [`Error::Idle`](crate::Error::Idle). Default 60 s.
    pub idle_timeout: Duration,
    /// A keep-alive is sent after this long without sending anything, so an
    /// honest quiet connection is not taken for idle. Default 15 s. TCP
    /// keep-alive probes (after 60 s, every 15 s) find dead peers below.
    pub keep_alive: Duration,
    /// Most accepted connections at once ([`serve_tcp`](crate::serve_tcp)):
    /// past it a new one is closed at once. Default 512, half the usual
    /// open-file limit.
    pub max_connections: usize,
    /// Most accepted connections at once from one IPv4 address or one IPv6
    /// /64. Default 16.
    pub max_connections_per_ip: usize,
    /// Largest frame accepted once the peer has a channel paired (proved a
    /// core key). Default [`DEFAULT_MAX_FRAME`] (8 MiB).
    pub max_frame: usize,
    /// Largest frame accepted before then: enough for `Open`s and `Close`s.
    /// Default 16 KiB.
    pub max_frame_unpaired: usize,
    /// Bytes of received messages waiting for the driver, all peers
    /// together; a reader past it waits (backpressure). Default 64 MiB (at
    /// least one frame of `max_frame` always fits).
    pub inbox_bytes: usize,
    /// Bytes queued for one peer's writer past which it is served nothing
    /// (no answers, no announcements) until it reads. Default 16 MiB.
    pub max_backlog: usize,
    /// A peer whose backlog stays over `max_backlog` this long is dropped
    /// with [`Error::Backlog`](crate::Error::Backlog). Default 30 s.
    pub backlog_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            keep_alive: Duration::from_secs(15),
            max_connections: 512,
            max_connections_per_ip: 16,
            max_frame: DEFAULT_MAX_FRAME,
            max_frame_unpaired: 16 << 10,
            inbox_bytes: 64 << 20,
            max_backlog: 16 << 20,
            backlog_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// [`Limits::max_connections`] are open.
    Total(usize),
    /// [`Limits::max_connections_per_ip`] are open from the address.
    PerIp(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Total(n) => write!(f, "{n} connections are open (the maximum)"),
            Refusal::PerIp(n) => write!(f, "{n} connections are open from this address"),
        }
    }
}

/// Counts admitted connections, in total and per address (an IPv6 address
/// counts by its /64, what one host usually holds).
#[derive(Debug, Default)]
pub(crate) struct Admission {
    counts: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Admitted {
    admission: Arc<Admission>,
    ip: IpAddr,
}

fn prefix(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

impl Admission {
    /// Admits a connection from `ip` if the caps allow it.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        limits: &Limits,
    ) -> Result<Admitted, Refusal> {
        let ip = prefix(ip);
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, per_ip) = &mut *counts;
        if *total >= limits.max_connections {
            return Err(Refusal::Total(*total));
        }
        let from = per_ip.entry(ip).or_insert(0);
        if *from >= limits.max_connections_per_ip {
            return Err(Refusal::PerIp(*from));
        }
        *from += 1;
        *total += 1;
        Ok(Admitted {
            admission: self.clone(),
            ip,
        })
    }

    /// Connections admitted and not yet ended.
    pub(crate) fn open(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self
            .admission
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, per_ip) = &mut *counts;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_hold_in_total_and_per_address_and_free_on_drop() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let a = Arc::new(Admission::default());
        let ip1: IpAddr = "10.0.0.1".parse().expect("ip");
        let ip2: IpAddr = "10.0.0.2".parse().expect("ip");
        let first = a.admit(ip1, &limits).expect("1");
        let _second = a.admit(ip1, &limits).expect("2");
        assert_eq!(a.admit(ip1, &limits).err(), Some(Refusal::PerIp(2)));
        let _third = a.admit(ip2, &limits).expect("3");
        assert_eq!(a.admit(ip2, &limits).err(), Some(Refusal::Total(3)));
        drop(first);
        assert_eq!(a.open(), 2);
        a.admit(ip1, &limits).expect("a place was freed");
        // One /64 is one host.
        let v6a: IpAddr = "2001:db8::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8::ffff:2".parse().expect("ip");
        assert_eq!(prefix(v6a), prefix(v6b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(prefix(mapped), ip1);
    }
}
