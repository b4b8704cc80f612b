//! The DHT datagram decoder: the kind byte, then a DHT packet (protobuf),
//! a relay registration step or a hole-punching probe. Property: decoded
//! or a typed error (`DecodeError`), never a panic; a decoded packet
//! re-encodes to bytes that decode to the same packet, a relay step to the
//! exact bytes it came from; every address in a packet converts or is
//! refused.
#![no_main]

use hyper_swarm::fuzzing::{Datagram, decode_datagram, relay_datagram};
use hyper_swarm::{Body, MAX_PACKET, encode_packet, socket_address};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode_datagram(data) {
        Ok(Datagram::Dht(packet)) => {
            assert!(data.len() <= MAX_PACKET);
            let again = decode_datagram(&encode_packet(&packet));
            assert_eq!(again, Ok(Datagram::Dht(packet.clone())));
            if let Some(to) = &packet.to {
                let _ = socket_address(to);
            }
            if let Some(Body::Reply(reply)) = &packet.body {
                for address in reply.closer.iter().filter_map(|n| n.address.as_ref()) {
                    let _ = socket_address(address);
                }
            }
        }
        Ok(Datagram::Relay(message)) => assert_eq!(relay_datagram(&message), data),
        Ok(Datagram::Probe(session)) => assert_eq!(data.get(1..), Some(session.as_slice())),
        Ok(Datagram::Other) | Err(_) => {}
    }
});
