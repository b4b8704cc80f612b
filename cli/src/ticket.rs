//! Share tickets: one copy-pasteable string holding a core's key and how
//! to reach a seeder (its direct TCP addresses and the DHT bootstrap nodes
//! it used). Never a secret: no signing or encryption key goes in.
//!
//! Text: `hyper` then the bytes in lowercase base32 without padding.
//! Bytes: version `1`; the 32-byte core key; a count of direct addresses
//! and each address; a count of bootstrap nodes and each node; then the
//! first 4 bytes of the BLAKE3 hash of everything before (a mistyped
//! ticket is refused, never read as another key). An address is `4` and
//! 4 bytes of IPv4, or `6` and 16 bytes of IPv6, then the port big-endian.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use data_encoding::BASE32_NOPAD;
use hyper_core::CoreKey;

use crate::CliError;

/// What every ticket starts with.
pub const PREFIX: &str = "hyper";
const VERSION: u8 = 1;
const CHECKSUM: usize = 4;
/// At most this many addresses of each kind in a ticket.
const MAX_ADDRESSES: usize = 16;

/// A decoded ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The core.
    pub key: CoreKey,
    /// The seeder's direct TCP addresses.
    pub addresses: Vec<SocketAddr>,
    /// The DHT bootstrap nodes the seeder used.
    pub bootstrap: Vec<SocketAddr>,
}

impl Ticket {
    /// The ticket as text.
    pub fn encode(&self) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(self.key.as_bytes());
        for list in [&self.addresses, &self.bootstrap] {
            let list = &list[..list.len().min(MAX_ADDRESSES)];
            bytes.push(list.len() as u8);
            for addr in list {
                match addr.ip() {
                    IpAddr::V4(ip) => {
                        bytes.push(4);
                        bytes.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        bytes.push(6);
                        bytes.extend_from_slice(&ip.octets());
                    }
                }
                bytes.extend_from_slice(&addr.port().to_be_bytes());
            }
        }
        let sum = blake3::hash(&bytes);
        bytes.extend_from_slice(&sum.as_bytes()[..CHECKSUM]);
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes).to_lowercase())
    }

    /// Reads a ticket; `None` if `text` does not look like one (so it may
    /// be a key or a name), an error naming what is wrong if it looks like
    /// one but is damaged.
    pub fn parse(text: &str) -> Result<Option<Ticket>, CliError> {
        let Some(body) = text.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        // Shorter than a ticket with no address: a name.
        if body.len() < 60 {
            return Ok(None);
        }
        let bad = |why: &str| CliError::BadTicket(why.to_string());
        let bytes = BASE32_NOPAD
            .decode(body.to_uppercase().as_bytes())
            .map_err(|_| bad("it is not base32 (was it copied whole?)"))?;
        decode(&bytes).map(Some).map_err(bad)
    }
}

/// Decodes ticket bytes; never panics on any input.
fn decode(bytes: &[u8]) -> Result<Ticket, &'static str> {
    let (body, sum) = bytes
        .split_last_chunk::<CHECKSUM>()
        .ok_or("it is too short")?;
    if blake3::hash(body).as_bytes()[..CHECKSUM] != sum[..] {
        return Err("its checksum does not match (was it copied whole?)");
    }
    let mut rest = body;
    let mut take = |n: usize| -> Result<&[u8], &'static str> {
        if rest.len() < n {
            return Err("it ends too early");
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    if take(1)?[0] != VERSION {
        return Err("it is of an unknown version");
    }
    let key: [u8; 32] = take(32)?.try_into().map_err(|_| "it ends too early")?;
    let mut lists = [Vec::new(), Vec::new()];
    for list in &mut lists {
        let count = usize::from(take(1)?[0]);
        if count > MAX_ADDRESSES {
            return Err("it holds too many addresses");
        }
        for _ in 0..count {
            let ip = match take(1)?[0] {
                4 => IpAddr::V4(Ipv4Addr::from(
                    <[u8; 4]>::try_from(take(4)?).map_err(|_| "bad address")?,
                )),
                6 => IpAddr::V6(Ipv6Addr::from(
                    <[u8; 16]>::try_from(take(16)?).map_err(|_| "bad address")?,
                )),
                _ => return Err("it holds an address of an unknown kind"),
            };
            let port = u16::from_be_bytes(take(2)?.try_into().map_err(|_| "bad port")?);
            list.push(SocketAddr::new(ip, port));
        }
    }
    if !rest.is_empty() {
        return Err("it has bytes after its end");
    }
    let [addresses, bootstrap] = lists;
    Ok(Ticket {
        key: CoreKey(key),
        addresses,
        bootstrap,
    })
}

/// At most this many addresses for one listener in a ticket.
pub const MAX_LISTENER_ADDRESSES: usize = 8;

/// The addresses a ticket gives for a listener bound to `bound`, given the
/// host's interface addresses: a listener on one address is given as it
/// is; one on every interface (0.0.0.0, or :: which also takes IPv4) as
/// each interface address of a family it takes, non-loopback first (which
/// reach it from elsewhere), loopback last (always one: it reaches it from
/// this machine), at most [`MAX_LISTENER_ADDRESSES`]. IPv6 link-local
/// addresses are left out: they need an interface a ticket cannot name.
pub fn listener_addresses(bound: SocketAddr, interfaces: &[IpAddr]) -> Vec<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let v6 = bound.is_ipv6();
    let takes = |ip: &IpAddr| match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(ip) => v6 && !ip.is_unicast_link_local() && !ip.is_unspecified(),
    };
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in interfaces
        .iter()
        .filter(|ip| takes(ip) && !ip.is_loopback())
    {
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    let loopback = if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    };
    ips.truncate(MAX_LISTENER_ADDRESSES - 1);
    ips.push(loopback);
    ips.into_iter()
        .map(|ip| SocketAddr::new(ip, bound.port()))
        .collect()
}

/// A KEY argument with a ticket's hints applied: the key as text, and the
/// peer to connect to and the bootstrap nodes unless given by flag.
pub struct Target {
    /// The core: a hex key or a name.
    pub key: String,
    /// `--connect`, else the ticket's direct addresses, comma-separated
    /// (tried in turn by [`crate::net_cmd::connect_within`]).
    pub connect: Option<String>,
    /// `--bootstrap`, else the ticket's nodes.
    pub bootstrap: Option<String>,
}

/// A list of addresses as a `--bootstrap`/`--connect` value.
pub fn join(list: &[SocketAddr]) -> Option<String> {
    (!list.is_empty()).then(|| {
        list.iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Where to look for the seeder of a ticket, unless a flag says: the
/// ticket's DHT nodes (which find it wherever it is), else its direct
/// addresses. Leaves the flags as they are if either is given.
pub fn apply(ticket: &Ticket, connect: &mut Option<String>, bootstrap: &mut Option<String>) {
    if connect.is_none() && bootstrap.is_none() {
        *bootstrap = join(&ticket.bootstrap);
        if bootstrap.is_none() {
            *connect = join(&ticket.addresses);
        }
    }
}

/// Applies a ticket in `key` (if it is one) to the flags given.
pub fn target(
    key: &str,
    connect: Option<&str>,
    bootstrap: Option<&str>,
) -> Result<Target, CliError> {
    let Some(ticket) = Ticket::parse(key)? else {
        return Ok(Target {
            key: key.to_string(),
            connect: connect.map(String::from),
            bootstrap: bootstrap.map(String::from),
        });
    };
    Ok(Target {
        key: ticket.key.to_string(),
        connect: connect
            .map(String::from)
            .or_else(|| join(&ticket.addresses)),
        bootstrap: bootstrap
            .map(String::from)
            .or_else(|| join(&ticket.bootstrap)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Ticket {
        Ticket {
            key: CoreKey([7; 32]),
            addresses: vec![
                "127.0.0.1:9000".parse().expect("v4"),
                "[::1]:1".parse().expect("v6"),
            ],
            bootstrap: vec!["198.18.0.2:49737".parse().expect("v4")],
        }
    }

    #[test]
    fn a_ticket_round_trips_and_has_a_fixed_form() {
        let ticket = sample();
        let text = ticket.encode();
        assert_eq!(
            text,
            "hyperaedqobyha4dqobyha4dqobyha4dqobyha4dqobyha4dqobyha4dqoaqep4aaaajdfadaaaaaaaaaaaaaaaaaaaaaaaaacaabaecmmeqaalbesmpvvyla"
        );
        assert_eq!(Ticket::parse(&text).expect("parses"), Some(ticket.clone()));
        // Case does not matter (base32 is pasted from anywhere).
        let upper = format!("hyper{}", text["hyper".len()..].to_uppercase());
        assert_eq!(Ticket::parse(&upper).expect("parses"), Some(ticket));
        let bare = Ticket {
            key: CoreKey([0; 32]),
            addresses: Vec::new(),
            bootstrap: Vec::new(),
        };
        assert_eq!(Ticket::parse(&bare.encode()).expect("parses"), Some(bare));
    }

    #[test]
    fn keys_and_names_are_not_tickets_and_damage_is_refused() {
        assert_eq!(Ticket::parse(&"ab".repeat(32)).expect("a key"), None);
        assert_eq!(Ticket::parse("hyperlogs").expect("a name"), None);
        let text = sample().encode();
        // Every single-character change is caught.
        for i in PREFIX.len()..text.len() {
            let mut damaged = text.clone().into_bytes();
            damaged[i] = if damaged[i] == b'a' { b'b' } else { b'a' };
            let damaged = String::from_utf8(damaged).expect("ascii");
            assert!(Ticket::parse(&damaged).is_err(), "{damaged}");
        }
        assert!(Ticket::parse(&text[..text.len() - 1]).is_err());
    }

    #[test]
    fn a_wildcard_listener_is_given_as_its_interfaces_loopback_last() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let interfaces = [
            ip("127.0.0.1"),
            ip("10.0.0.5"),
            ip("::1"),
            ip("fe80::1"),
            ip("2001:db8::5"),
            ip("10.0.0.5"),
            ip("192.168.1.9"),
        ];
        let addrs = |bound: &str| -> Vec<String> {
            listener_addresses(bound.parse().expect("bound"), &interfaces)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            addrs("0.0.0.0:7"),
            ["10.0.0.5:7", "192.168.1.9:7", "127.0.0.1:7"]
        );
        assert_eq!(
            addrs("[::]:7"),
            ["10.0.0.5:7", "[2001:db8::5]:7", "192.168.1.9:7", "[::1]:7"]
        );
        assert_eq!(addrs("10.0.0.5:7"), ["10.0.0.5:7"]);
        // No interface known: loopback still reaches it from here.
        assert_eq!(
            listener_addresses("0.0.0.0:7".parse().expect("bound"), &[]),
            ["127.0.0.1:7".parse::<SocketAddr>().expect("addr")]
        );
        // Many interfaces: bounded, loopback kept last.
        let many: Vec<IpAddr> = (1..=20).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let bounded = listener_addresses("0.0.0.0:7".parse().expect("bound"), &many);
        assert_eq!(bounded.len(), MAX_LISTENER_ADDRESSES);
        assert_eq!(bounded[0].to_string(), "10.0.0.1:7");
        assert!(bounded[MAX_LISTENER_ADDRESSES - 1].ip().is_loopback());
    }

    #[test]
    fn random_and_mutated_bytes_never_panic() {
        let good = {
            let text = sample().encode();
            BASE32_NOPAD
                .decode(text[PREFIX.len()..].to_uppercase().as_bytes())
                .expect("base32")
        };
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                good.clone()
            } else {
                (0..next() % 120).map(|_| next() as u8).collect()
            };
            if !bytes.is_empty() {
                for _ in 0..(next() % 4) {
                    let i = (next() as usize) % bytes.len();
                    bytes[i] = next() as u8;
                }
            }
            let _ = decode(&bytes);
            // With a fixed checksum, the structure itself is exercised.
            let body_len = bytes.len().saturating_sub(CHECKSUM);
            let sum = blake3::hash(&bytes[..body_len]);
            bytes.truncate(body_len);
            bytes.extend_from_slice(&sum.as_bytes()[..CHECKSUM]);
            let _ = decode(&bytes);
        }
    }
}
