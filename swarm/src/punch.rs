//! Hole punching on fresh UDP sockets, before QUIC takes a socket over.
//!
//! Each connection attempt binds a new socket and learns its public mapping
//! by pinging up to two DHT nodes ([`prepare`]): the same port seen by both
//! means one mapping for every destination (`Consistent`, or `Open` if the
//! address is the socket's own); different ports mean a new mapping per
//! destination (`Random`, a symmetric NAT). The two sides swap these
//! details through the DHT, then:
//!
//! - neither is `Random`: both send probes to the other's observed address;
//!   each NAT opens for the other once its own probe has gone out;
//! - one is `Random`: that side opens [`BIRTHDAY_SOCKETS`] sockets, each
//!   probing the other's address (opening as many mappings), while the other
//!   sprays probes at random ports of its IP until one lands in an open
//!   mapping (a birthday search; the lab finds one in well under a second);
//! - both `Random`: no punching; both register at a relay ([`register`]).
//!
//! A probe is the kind byte 0x03 and the attempt's 32-byte probe tag,
//! which only the two peers can compute ([`crate::handshake`]): probes of
//! other attempts, of strangers, of the DHT node that passed the connect
//! messages on or of the relay are ignored.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout_at};

use crate::codec::{
    self, Datagram, KIND_PROBE, RelayMessage, address, session_datagram, socket_addr,
};
use crate::error::{Error, Result};
use crate::messages::{Body, Holepunch, NatKind, Packet, Ping};

/// Sockets the `Random` side opens for a birthday search.
pub const BIRTHDAY_SOCKETS: usize = 256;
/// How long punching may take before the attempt fails.
pub const PUNCH_TIMEOUT: Duration = Duration::from_secs(6);
/// Hole punches (each with its sockets and probes) running at once in this
/// process at most; more connect attempts are refused until one ends.
pub const MAX_PUNCHES: usize = 8;
/// When each probe to a known address goes out, from the start of
/// punching: a few, backing off, then silence (a peer that has not
/// answered by then is not there, or is someone else).
const PROBE_SCHEDULE: [Duration; 6] = [
    Duration::ZERO,
    Duration::from_millis(30),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(600),
    Duration::from_millis(1500),
];
/// Each birthday socket probes only twice: once to open its mapping and
/// once to keep it open.
const BIRTHDAY_SCHEDULE: [Duration; 2] = [Duration::ZERO, Duration::from_millis(1500)];
/// Probes sprayed at random ports of the peer's IP in one punch at most
/// (with [`BIRTHDAY_SOCKETS`] mappings open, 1,536 random ports find one
/// with a probability of 99.8%).
const SPRAY_BUDGET: u32 = 1536;
/// Probes sprayed per 10 ms tick (1,000 per second).
const SPRAY_PER_TICK: u32 = 10;

/// Punches running now (see [`MAX_PUNCHES`]).
static PUNCHES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One of the [`MAX_PUNCHES`] slots, given back when dropped.
pub struct PunchPermit(());

impl PunchPermit {
    /// A slot, or `None` if [`MAX_PUNCHES`] are taken.
    fn take() -> Option<PunchPermit> {
        use std::sync::atomic::Ordering;
        PUNCHES
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PUNCHES).then_some(n + 1)
            })
            .ok()
            .map(|_| PunchPermit(()))
    }
}

impl Drop for PunchPermit {
    fn drop(&mut self) {
        PUNCHES.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A fresh socket and what DHT nodes saw of it.
pub struct Prepared {
    /// The socket.
    pub socket: UdpSocket,
    /// Its public addresses as observed.
    pub addresses: Vec<SocketAddr>,
    /// How its NAT maps ports.
    pub nat: NatKind,
    /// This attempt's punching slot.
    permit: PunchPermit,
}

/// Binds a fresh socket and pings up to two of `observers` from it to learn
/// its public mapping and the NAT kind. Takes one of the [`MAX_PUNCHES`]
/// slots ([`Error::TooManyPunches`] if none is free) for as long as the
/// attempt lives.
pub async fn prepare(observers: &[SocketAddr]) -> Result<Prepared> {
    let permit = PunchPermit::take().ok_or(Error::TooManyPunches)?;
    let socket = UdpSocket::bind(any_port_for(observers.first())).await?;
    let targets: Vec<SocketAddr> = observers.iter().copied().take(2).collect();
    let mut seen = observe(&socket, &targets).await;
    // One observer only: its second port observes again (two ports).
    if seen.len() == 1
        && let Some(&(from, _, Some(port))) = seen.first()
    {
        seen.extend(observe(&socket, &[SocketAddr::new(from.ip(), port)]).await);
    }
    let mut addresses: Vec<SocketAddr> = seen.iter().map(|(_, a, _)| *a).collect();
    addresses.dedup();
    let Some(first) = addresses.first().copied() else {
        return Err(Error::NoObservers);
    };
    let local_port = socket.local_addr()?.port();
    let nat = if addresses.iter().any(|a| a.port() != first.port()) {
        NatKind::Random
    } else if first.port() == local_port && is_local_ip(first.ip()) {
        NatKind::Open
    } else if seen.len() >= 2 {
        NatKind::Consistent
    } else {
        NatKind::Unknown
    };
    Ok(Prepared {
        socket,
        addresses,
        nat,
        permit,
    })
}

/// Pings each of `targets` from `socket` (resending for up to 1.5 s):
/// who answered, the address it saw us at, and the second port it offers.
async fn observe(
    socket: &UdpSocket,
    targets: &[SocketAddr],
) -> Vec<(SocketAddr, SocketAddr, Option<u16>)> {
    let mut seen: Vec<(SocketAddr, SocketAddr, Option<u16>)> = Vec::new();
    let tid_base = u32::from_be_bytes(random_u64().to_be_bytes()[..4].try_into().unwrap_or([0; 4]));
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut buf = [0u8; 2048];
    for _ in 0..6 {
        for (i, target) in targets.iter().enumerate() {
            if seen.iter().any(|(o, _, _)| o == target) {
                continue;
            }
            let ping = Packet {
                tid: tid_base.wrapping_add(i as u32),
                id: Vec::new(),
                to: Some(address(*target)),
                flags: 0,
                body: Some(Body::Ping(Ping {})),
                ..Packet::default()
            };
            let _ = socket.send_to(&codec::encode(&ping), target).await;
        }
        let round_end = (Instant::now() + Duration::from_millis(250)).min(deadline);
        while seen.len() < targets.len() {
            let Ok(Ok((len, from))) = timeout_at(round_end, socket.recv_from(&mut buf)).await
            else {
                break;
            };
            if let Ok(Datagram::Dht(packet)) = codec::decode(buf.get(..len).unwrap_or_default())
                && targets.contains(&from)
                && let Some(observed) = packet.to.as_ref().and_then(socket_addr)
                && !seen.iter().any(|(o, _, _)| *o == from)
            {
                let port = match packet.body {
                    Some(Body::Reply(reply)) => {
                        u16::try_from(reply.observer_port).ok().filter(|p| *p != 0)
                    }
                    _ => None,
                };
                seen.push((from, observed, port));
            }
        }
        if seen.len() == targets.len() || Instant::now() >= deadline {
            break;
        }
    }
    seen
}

/// Any port on the unspecified address of `peer`'s family (IPv4 if none).
fn any_port_for(peer: Option<&SocketAddr>) -> SocketAddr {
    match peer {
        Some(SocketAddr::V6(_)) => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
        _ => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0)),
    }
}

/// 32 bytes from the OS generator.
pub fn random_bytes() -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    getrandom::fill(&mut out).map_err(|e| Error::Io(std::io::Error::other(e)))?;
    Ok(out)
}

/// Whether `ip` belongs to this host (a socket can bind it).
fn is_local_ip(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// A pseudo-random u64 from the OS generator (0 if it fails).
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    u64::from_be_bytes(bytes)
}

/// The peer's observed addresses.
pub fn addresses_of(holepunch: &Holepunch) -> Vec<SocketAddr> {
    holepunch.addresses.iter().filter_map(socket_addr).collect()
}

/// The peer's NAT kind.
pub fn nat_of(holepunch: &Holepunch) -> NatKind {
    NatKind::try_from(holepunch.nat).unwrap_or(NatKind::Unknown)
}

/// Registers `socket` at `relay` for `session`: a hello, the relay's
/// cookie back to it (proving this address), then the acknowledgement;
/// each step resent until answered (3 s in all).
pub async fn register(socket: &UdpSocket, relay: SocketAddr, session: &[u8; 32]) -> Result<()> {
    let mut buf = [0u8; 2048];
    let mut sending = codec::relay_datagram(&RelayMessage::Hello(*session));
    for _ in 0..20 {
        socket.send_to(&sending, relay).await?;
        let until = Instant::now() + Duration::from_millis(150);
        while let Ok(Ok((len, from))) = timeout_at(until, socket.recv_from(&mut buf)).await {
            if from != relay {
                continue;
            }
            match codec::decode(buf.get(..len).unwrap_or_default()) {
                Ok(Datagram::Relay(RelayMessage::Cookie(s, cookie))) if s == *session => {
                    sending = codec::relay_datagram(&RelayMessage::Cookie(s, cookie));
                    socket.send_to(&sending, relay).await?;
                }
                Ok(Datagram::Relay(RelayMessage::Ack(s))) if s == *session => return Ok(()),
                _ => {}
            }
        }
    }
    Err(Error::NoRelay)
}

/// Sends probes from `socket` to `targets` at the times of `schedule`, and
/// with `spray` up to [`SPRAY_BUDGET`] to random ports of that IP, until
/// `stop` or until both are used up; the datagrams it sent.
async fn probe(
    socket: &UdpSocket,
    tag: &[u8; 32],
    targets: &[SocketAddr],
    schedule: &[Duration],
    spray: Option<IpAddr>,
    stop: Instant,
) -> u32 {
    let datagram = session_datagram(KIND_PROBE, tag);
    let mut rng = random_u64() | 1;
    let start = Instant::now();
    let mut rounds = schedule.iter();
    let mut next_round = rounds.next().map(|d| start + *d);
    let mut sprayed = 0u32;
    let mut sent = 0u32;
    while Instant::now() < stop {
        if next_round.is_some_and(|at| Instant::now() >= at) {
            for target in targets {
                let _ = socket.send_to(&datagram, target).await;
                sent += 1;
            }
            next_round = rounds.next().map(|d| start + *d);
        }
        if let Some(ip) = spray.filter(|_| sprayed < SPRAY_BUDGET) {
            for _ in 0..SPRAY_PER_TICK.min(SPRAY_BUDGET - sprayed) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let port = 1024 + (rng % (65_536 - 1024)) as u16;
                let _ = socket.send_to(&datagram, SocketAddr::new(ip, port)).await;
                sprayed += 1;
                sent += 1;
            }
        }
        let spraying = spray.is_some() && sprayed < SPRAY_BUDGET;
        match next_round {
            _ if spraying => sleep(Duration::from_millis(10)).await,
            Some(at) => tokio::time::sleep_until(at.min(stop)).await,
            None => break,
        }
    }
    sent
}

/// Waits for a probe with `tag` on `socket`; the address it came from.
async fn await_probe(socket: &UdpSocket, tag: &[u8; 32], stop: Instant) -> Option<SocketAddr> {
    let mut buf = [0u8; 2048];
    loop {
        let Ok(Ok((len, from))) = timeout_at(stop, socket.recv_from(&mut buf)).await else {
            return None;
        };
        if let Ok(Datagram::Probe(s)) = codec::decode(buf.get(..len).unwrap_or_default())
            && s == *tag
        {
            return Some(from);
        }
    }
}

/// Probes from `socket` until the peer's probe arrives: the peer's address
/// as this socket sees it.
async fn probe_until_answered(
    socket: &UdpSocket,
    tag: &[u8; 32],
    targets: &[SocketAddr],
    schedule: &[Duration],
    spray: Option<IpAddr>,
    stop: Instant,
) -> Option<SocketAddr> {
    let probing = async {
        probe(socket, tag, targets, schedule, spray, stop).await;
        // Out of probes: keep listening until `stop`.
        std::future::pending::<()>().await;
    };
    tokio::select! {
        from = await_probe(socket, tag, stop) => {
            if let Some(from) = from {
                let _ = socket.send_to(&session_datagram(KIND_PROBE, tag), from).await;
            }
            from
        }
        () = probing => None,
    }
}

/// The birthday side: [`BIRTHDAY_SOCKETS`] fresh sockets probe `targets`;
/// the first that hears the peer wins and is returned with the peer's
/// address.
async fn birthday(
    tag: [u8; 32],
    targets: Vec<SocketAddr>,
    stop: Instant,
) -> Result<(UdpSocket, SocketAddr)> {
    let (won, mut winner) = mpsc::channel(1);
    let mut tasks = Vec::new();
    for _ in 0..BIRTHDAY_SOCKETS {
        let socket = UdpSocket::bind(any_port_for(targets.first())).await?;
        let won = won.clone();
        let targets = targets.clone();
        tasks.push(tokio::spawn(async move {
            if let Some(from) =
                probe_until_answered(&socket, &tag, &targets, &BIRTHDAY_SCHEDULE, None, stop).await
            {
                let _ = won.try_send((socket, from));
            }
        }));
    }
    drop(won);
    let result = winner.recv().await;
    for task in tasks {
        task.abort();
    }
    result.ok_or(Error::Unreachable)
}

/// When punching toward `remote` gives up, where to probe (at most
/// [`crate::serve::MAX_PUNCH_TARGETS`] addresses, all on the IP of the
/// first), and that IP.
fn plan(remote: &Holepunch) -> Result<(Instant, Vec<SocketAddr>, IpAddr)> {
    let their_ip = addresses_of(remote)
        .first()
        .map(SocketAddr::ip)
        .ok_or(Error::BadAnswer)?;
    let targets = crate::serve::punch_targets(remote, their_ip);
    Ok((Instant::now() + PUNCH_TIMEOUT, targets, their_ip))
}

/// The client's side of punching toward `remote`: the socket to run QUIC
/// on and the address to connect to.
pub async fn client(
    prepared: Prepared,
    tag: [u8; 32],
    remote: &Holepunch,
) -> Result<(UdpSocket, SocketAddr)> {
    let (stop, targets, their_ip) = plan(remote)?;
    match (prepared.nat, nat_of(remote)) {
        (NatKind::Random, NatKind::Random) => Err(Error::NoRelay),
        (NatKind::Random, _) => {
            let Prepared { socket, permit, .. } = prepared;
            drop(socket);
            let won = birthday(tag, targets, stop).await;
            drop(permit);
            won
        }
        (_, theirs) => {
            let spray = (theirs == NatKind::Random).then_some(their_ip);
            let from = probe_until_answered(
                &prepared.socket,
                &tag,
                &targets,
                &PROBE_SCHEDULE,
                spray,
                stop,
            )
            .await
            .ok_or(Error::Unreachable)?;
            Ok((prepared.socket, from))
        }
    }
}

/// The server's side of punching toward `remote`: the socket to accept QUIC
/// on. For a `Consistent` or `Open` server the socket is returned at once
/// and probes keep going out (through a clone of it) for
/// [`PUNCH_TIMEOUT`], so the QUIC endpoint is listening before the client's
/// first packet can arrive.
pub async fn server(
    prepared: Prepared,
    tag: [u8; 32],
    remote: &Holepunch,
) -> Result<std::net::UdpSocket> {
    let (stop, targets, their_ip) = plan(remote)?;
    match (prepared.nat, nat_of(remote)) {
        (NatKind::Random, NatKind::Random) => Err(Error::NoRelay),
        (NatKind::Random, _) => {
            let Prepared { socket, permit, .. } = prepared;
            drop(socket);
            let (socket, _) = birthday(tag, targets, stop).await?;
            drop(permit);
            Ok(socket.into_std()?)
        }
        (_, theirs) => {
            let Prepared { socket, permit, .. } = prepared;
            let socket = socket.into_std()?;
            let prober = UdpSocket::from_std(socket.try_clone()?)?;
            let spray = (theirs == NatKind::Random).then_some(their_ip);
            tokio::spawn(async move {
                probe(&prober, &tag, &targets, &PROBE_SCHEDULE, spray, stop).await;
                // The slot is held while the probes go out.
                drop(permit);
            });
            Ok(socket)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_punch_sends_a_bounded_number_of_probes() {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let targets: Vec<SocketAddr> = vec![
            "127.0.0.9:1".parse().expect("addr"),
            "127.0.0.9:2".parse().expect("addr"),
        ];
        let stop = Instant::now() + Duration::from_secs(30);
        let ip = "127.0.0.9".parse().ok();
        let sent = probe(&socket, &[1; 32], &targets, &PROBE_SCHEDULE, ip, stop).await;
        assert_eq!(sent, SPRAY_BUDGET + 2 * PROBE_SCHEDULE.len() as u32);
        assert!(Instant::now() < stop, "it stopped once out of probes");
        let sent = probe(&socket, &[1; 32], &targets, &BIRTHDAY_SCHEDULE, None, stop).await;
        assert_eq!(sent, 4);
    }

    #[test]
    fn punches_are_capped() {
        let permits: Vec<PunchPermit> = std::iter::from_fn(PunchPermit::take).take(100).collect();
        assert_eq!(permits.len(), MAX_PUNCHES);
        assert!(PunchPermit::take().is_none());
        drop(permits);
        assert!(PunchPermit::take().is_some());
    }
}
