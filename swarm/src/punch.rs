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
//! A probe is the kind byte 0x03 and the 32-byte session id, so probes of
//! other attempts or strangers are ignored.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout_at};

use crate::codec::{
    self, Datagram, KIND_PROBE, KIND_RELAY, address, session_datagram, socket_addr,
};
use crate::error::{Error, Result};
use crate::messages::{Body, Holepunch, NatKind, Packet, Ping};

/// Sockets the `Random` side opens for a birthday search.
pub const BIRTHDAY_SOCKETS: usize = 256;
/// How long punching may take before the attempt fails.
pub const PUNCH_TIMEOUT: Duration = Duration::from_secs(6);
/// Probes per second sprayed at random ports.
const SPRAY_RATE: u64 = 2000;
/// Time between probes to a known address.
const PROBE_EVERY: Duration = Duration::from_millis(10);

/// A fresh socket and what DHT nodes saw of it.
pub struct Prepared {
    /// The socket.
    pub socket: UdpSocket,
    /// Its public addresses as observed.
    pub addresses: Vec<SocketAddr>,
    /// How its NAT maps ports.
    pub nat: NatKind,
}

/// Binds a fresh socket and pings up to two of `observers` from it to learn
/// its public mapping and the NAT kind.
pub async fn prepare(observers: &[SocketAddr]) -> Result<Prepared> {
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

/// Registers `socket` at `relay` for `session`, resending until the relay
/// acknowledges.
pub async fn register(socket: &UdpSocket, relay: SocketAddr, session: &[u8; 32]) -> Result<()> {
    let datagram = session_datagram(KIND_RELAY, session);
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        socket.send_to(&datagram, relay).await?;
        let until = Instant::now() + Duration::from_millis(150);
        while let Ok(Ok((len, from))) = timeout_at(until, socket.recv_from(&mut buf)).await {
            if from == relay && buf.get(..len) == Some(datagram.as_slice()) {
                return Ok(());
            }
        }
    }
    Err(Error::NoRelay)
}

/// Sends probes from `socket` to `targets`, and with `spray` to random
/// ports of that IP, until `stop` (forever if never).
async fn probe(
    socket: &UdpSocket,
    session: &[u8; 32],
    targets: &[SocketAddr],
    spray: Option<IpAddr>,
    stop: Instant,
) {
    let datagram = session_datagram(KIND_PROBE, session);
    let mut rng = random_u64() | 1;
    let mut next_targets = Instant::now();
    let per_tick = SPRAY_RATE / 100;
    while Instant::now() < stop {
        if Instant::now() >= next_targets {
            for target in targets {
                let _ = socket.send_to(&datagram, target).await;
            }
            next_targets = Instant::now() + PROBE_EVERY;
        }
        if let Some(ip) = spray {
            for _ in 0..per_tick {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let port = 1024 + (rng % (65_536 - 1024)) as u16;
                let _ = socket.send_to(&datagram, SocketAddr::new(ip, port)).await;
            }
        }
        sleep(Duration::from_millis(10)).await;
    }
}

/// Waits for a probe of `session` on `socket`; the address it came from.
async fn await_probe(socket: &UdpSocket, session: &[u8; 32], stop: Instant) -> Option<SocketAddr> {
    let mut buf = [0u8; 2048];
    loop {
        let Ok(Ok((len, from))) = timeout_at(stop, socket.recv_from(&mut buf)).await else {
            return None;
        };
        if let Ok(Datagram::Probe(s)) = codec::decode(buf.get(..len).unwrap_or_default())
            && s == *session
        {
            return Some(from);
        }
    }
}

/// Probes from `socket` until the peer's probe arrives: the peer's address
/// as this socket sees it.
async fn probe_until_answered(
    socket: &UdpSocket,
    session: &[u8; 32],
    targets: &[SocketAddr],
    spray: Option<IpAddr>,
    stop: Instant,
) -> Option<SocketAddr> {
    tokio::select! {
        from = await_probe(socket, session, stop) => {
            if let Some(from) = from {
                let _ = socket.send_to(&session_datagram(KIND_PROBE, session), from).await;
            }
            from
        }
        () = probe(socket, session, targets, spray, stop) => None,
    }
}

/// The birthday side: [`BIRTHDAY_SOCKETS`] fresh sockets probe `targets`;
/// the first that hears the peer wins and is returned with the peer's
/// address.
async fn birthday(
    session: [u8; 32],
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
            if let Some(from) = probe_until_answered(&socket, &session, &targets, None, stop).await
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

/// When punching toward `remote` gives up, where to probe, and its IP.
fn plan(remote: &Holepunch) -> Result<(Instant, Vec<SocketAddr>, IpAddr)> {
    let targets = addresses_of(remote);
    let their_ip = targets
        .first()
        .map(SocketAddr::ip)
        .ok_or(Error::BadAnswer)?;
    Ok((Instant::now() + PUNCH_TIMEOUT, targets, their_ip))
}

/// The client's side of punching toward `remote`: the socket to run QUIC
/// on and the address to connect to.
pub async fn client(
    prepared: Prepared,
    session: [u8; 32],
    remote: &Holepunch,
) -> Result<(UdpSocket, SocketAddr)> {
    let (stop, targets, their_ip) = plan(remote)?;
    match (prepared.nat, nat_of(remote)) {
        (NatKind::Random, NatKind::Random) => Err(Error::NoRelay),
        (NatKind::Random, _) => {
            drop(prepared.socket);
            birthday(session, targets, stop).await
        }
        (_, theirs) => {
            let spray = (theirs == NatKind::Random).then_some(their_ip);
            let from = probe_until_answered(&prepared.socket, &session, &targets, spray, stop)
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
    session: [u8; 32],
    remote: &Holepunch,
) -> Result<std::net::UdpSocket> {
    let (stop, targets, their_ip) = plan(remote)?;
    match (prepared.nat, nat_of(remote)) {
        (NatKind::Random, NatKind::Random) => Err(Error::NoRelay),
        (NatKind::Random, _) => {
            drop(prepared.socket);
            let (socket, _) = birthday(session, targets, stop).await?;
            Ok(socket.into_std()?)
        }
        (_, theirs) => {
            let socket = prepared.socket.into_std()?;
            let prober = UdpSocket::from_std(socket.try_clone()?)?;
            let spray = (theirs == NatKind::Random).then_some(their_ip);
            tokio::spawn(async move {
                probe(&prober, &session, &targets, spray, stop).await;
            });
            Ok(socket)
        }
    }
}
