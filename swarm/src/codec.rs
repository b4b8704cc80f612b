//! Datagrams on a swarm socket: one kind byte, then the body (layout in
//! `proto/dht.proto`). Decoding never panics and refuses what is too large.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use prost::Message as _;

use crate::messages::{Address, Packet};

/// The largest DHT datagram sent or accepted (fits one unfragmented
/// datagram on any path).
pub const MAX_PACKET: usize = 1400;
/// Kind byte of a DHT packet.
pub const KIND_DHT: u8 = 0x01;
/// Kind byte of a relay registration.
pub const KIND_RELAY: u8 = 0x02;
/// Kind byte of a hole-punching probe.
pub const KIND_PROBE: u8 = 0x03;

/// What a datagram is.
#[derive(Debug, PartialEq)]
pub enum Datagram {
    /// A DHT packet.
    Dht(Box<Packet>),
    /// A relay registration step for a session.
    Relay(RelayMessage),
    /// A hole-punching probe for a session.
    Probe([u8; 32]),
    /// Something else (QUIC, or traffic to forward).
    Other,
}

/// The steps of registering at a blind relay (see `relay.rs`), all with
/// kind byte [`KIND_RELAY`] and told apart by length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMessage {
    /// Peer to relay: please register me for this session (33 bytes).
    Hello([u8; 32]),
    /// Relay to peer: the cookie for that; peer to relay: the cookie back,
    /// proving the address (65 bytes).
    Cookie([u8; 32], [u8; 32]),
    /// Relay to peer: registered (34 bytes, the last 0xff).
    Ack([u8; 32]),
}

/// The marker ending a relay acknowledgement.
const RELAY_ACK: u8 = 0xff;

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than [`MAX_PACKET`].
    #[error("datagram of {0} bytes is over the {MAX_PACKET}-byte limit")]
    TooLarge(usize),
    /// A session datagram of the wrong length.
    #[error("session datagram of {0} bytes (expected 33, or 34 or 65 for the relay)")]
    BadSession(usize),
    /// The protobuf did not decode.
    #[error("malformed DHT packet")]
    Malformed,
}

/// Classifies and decodes one received datagram.
pub fn decode(bytes: &[u8]) -> Result<Datagram, DecodeError> {
    let Some((&kind, body)) = bytes.split_first() else {
        return Ok(Datagram::Other);
    };
    match kind {
        KIND_DHT => {
            if bytes.len() > MAX_PACKET {
                return Err(DecodeError::TooLarge(bytes.len()));
            }
            Packet::decode(body)
                .map(|p| Datagram::Dht(Box::new(p)))
                .map_err(|_| DecodeError::Malformed)
        }
        KIND_PROBE => {
            let session: [u8; 32] = body
                .try_into()
                .map_err(|_| DecodeError::BadSession(bytes.len()))?;
            Ok(Datagram::Probe(session))
        }
        KIND_RELAY => {
            let bad = DecodeError::BadSession(bytes.len());
            let session = |b: &[u8]| -> Result<[u8; 32], DecodeError> {
                b.get(..32).and_then(|s| s.try_into().ok()).ok_or(bad)
            };
            let message = match body.len() {
                32 => RelayMessage::Hello(session(body)?),
                33 if body.last() == Some(&RELAY_ACK) => RelayMessage::Ack(session(body)?),
                64 => RelayMessage::Cookie(
                    session(body)?,
                    session(body.get(32..).unwrap_or_default())?,
                ),
                _ => return Err(bad),
            };
            Ok(Datagram::Relay(message))
        }
        _ => Ok(Datagram::Other),
    }
}

/// Encodes a DHT packet with its kind byte.
pub fn encode(packet: &Packet) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + packet.encoded_len());
    out.push(KIND_DHT);
    packet.encode(&mut out).unwrap_or_default();
    out
}

/// A session datagram (relay registration or probe) of `kind`.
pub fn session_datagram(kind: u8, session: &[u8; 32]) -> [u8; 33] {
    let mut out = [0u8; 33];
    out[0] = kind;
    out[1..].copy_from_slice(session);
    out
}

/// The datagram of a relay registration step.
pub fn relay_datagram(message: &RelayMessage) -> Vec<u8> {
    let mut out = vec![KIND_RELAY];
    match message {
        RelayMessage::Hello(session) => out.extend_from_slice(session),
        RelayMessage::Cookie(session, cookie) => {
            out.extend_from_slice(session);
            out.extend_from_slice(cookie);
        }
        RelayMessage::Ack(session) => {
            out.extend_from_slice(session);
            out.push(RELAY_ACK);
        }
    }
    out
}

/// The wire form of a socket address.
pub fn address(addr: SocketAddr) -> Address {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    Address {
        ip,
        port: u32::from(addr.port()),
    }
}

/// The socket address of a wire address; `None` if malformed.
pub fn socket_addr(address: &Address) -> Option<SocketAddr> {
    let port = u16::try_from(address.port).ok()?;
    let ip = match address.ip.len() {
        4 => IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(address.ip.as_slice()).ok()?,
        )),
        16 => IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(address.ip.as_slice()).ok()?,
        )),
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A 32-byte field, or `None` if it has another length.
pub fn bytes32(field: &[u8]) -> Option<[u8; 32]> {
    field.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Body, FindNode, Ping};
    use proptest::prelude::*;

    #[test]
    fn a_ping_has_these_bytes() {
        let packet = Packet {
            tid: 7,
            id: Vec::new(),
            to: Some(address("10.0.0.1:49737".parse().expect("addr"))),
            flags: 0,
            body: Some(Body::Ping(Ping {})),
            ..Packet::default()
        };
        let bytes = encode(&packet);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0108071a0a0a040a00000110c984035200");
        assert_eq!(decode(&bytes), Ok(Datagram::Dht(Box::new(packet))));
    }

    #[test]
    fn oversized_and_short_datagrams_are_refused() {
        let mut big = vec![KIND_DHT];
        big.extend(std::iter::repeat_n(0u8, MAX_PACKET));
        assert_eq!(decode(&big), Err(DecodeError::TooLarge(MAX_PACKET + 1)));
        assert_eq!(decode(&[KIND_RELAY, 1, 2]), Err(DecodeError::BadSession(3)));
        let mut not_ack = relay_datagram(&RelayMessage::Ack([1; 32]));
        not_ack[33] = 0;
        assert_eq!(decode(&not_ack), Err(DecodeError::BadSession(34)));
        assert_eq!(decode(&[KIND_DHT, 0xff]), Err(DecodeError::Malformed));
        assert_eq!(decode(&[]), Ok(Datagram::Other));
        assert_eq!(decode(&[0x40, 1, 2]), Ok(Datagram::Other));
    }

    #[test]
    fn relay_steps_have_these_bytes_and_round_trip() {
        let hello = RelayMessage::Hello([0xaa; 32]);
        let cookie = RelayMessage::Cookie([0xaa; 32], [0xbb; 32]);
        let ack = RelayMessage::Ack([0xaa; 32]);
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(relay_datagram(&hello)),
            format!("02{}", "aa".repeat(32))
        );
        assert_eq!(
            hex(relay_datagram(&cookie)),
            format!("02{}{}", "aa".repeat(32), "bb".repeat(32))
        );
        assert_eq!(
            hex(relay_datagram(&ack)),
            format!("02{}ff", "aa".repeat(32))
        );
        for m in [hello, cookie, ack] {
            assert_eq!(decode(&relay_datagram(&m)), Ok(Datagram::Relay(m)));
        }
    }

    proptest! {
        #[test]
        fn packets_round_trip(tid in any::<u32>(), target in any::<[u8; 32]>(), port in any::<u16>(), ip in any::<[u8; 4]>()) {
            let packet = Packet {
                tid,
                id: target.to_vec(),
                to: Some(address(SocketAddr::from((ip, port)))),
                flags: 1,
                body: Some(Body::FindNode(FindNode { target: target.to_vec() })),
                ..Packet::default()
            };
            prop_assert_eq!(decode(&encode(&packet)), Ok(Datagram::Dht(Box::new(packet.clone()))));
            let back = socket_addr(packet.to.as_ref().expect("to"));
            prop_assert_eq!(back, Some(SocketAddr::from((ip, port))));
        }

        /// The decoder fuzz target: any bytes, never a panic.
        #[test]
        fn any_bytes_decode_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..1600)) {
            let _ = decode(&bytes);
        }
    }
}
