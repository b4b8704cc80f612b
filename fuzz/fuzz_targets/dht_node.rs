//! A DHT node (`hyper_swarm::Node`, the sans-io state machine) fed
//! fuzzer-chosen datagrams from eight source addresses, with the
//! application bootstrapping and sending requests and the clock moving.
//! The script can send raw bytes, a protobuf packet with the source's
//! bound id, or an answer to one of the node's own requests (its
//! transaction id filled in, so answers get past the "only the address
//! asked may answer" check).
//!
//! Invariants checked after every datagram:
//! - no datagram the node sends is over `MAX_PACKET`;
//! - answers to a source that has not proved its address (never answered
//!   a request of the node, sent no token) total at most `AMPLIFICATION`
//!   times the size of the datagram that caused them;
//! - every routing-table entry's id is the one its address gives
//!   (`NodeId::for_address`): a claimed id never enters unproven;
//! - every `Response` event answers a request the application made, once.
#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper_fuzz::Script;
use hyper_swarm::fuzzing::{Datagram, decode_datagram};
use hyper_swarm::messages::{FindNode, Packet, Ping};
use hyper_swarm::{
    Body, Config, Event, MAX_PACKET, Node, NodeId, Reachability, Reply, RequestId, encode_packet,
    wire_address,
};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

/// `hyper_swarm`'s amplification bound (node/mod.rs `AMPLIFICATION`).
const AMPLIFICATION: usize = 3;

fn source(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, i % 8, 1], 4000 + u16::from(i % 8)))
}

struct Harness {
    node: Node,
    me: SocketAddr,
    now: Instant,
    /// Requests the node sent to each source: transaction ids.
    sent: HashMap<SocketAddr, Vec<u32>>,
    /// Sources that answered a request of the node or sent a token.
    proven: BTreeSet<SocketAddr>,
    requests: BTreeSet<RequestId>,
    answered: BTreeSet<RequestId>,
}

impl Harness {
    fn deliver(&mut self, from: SocketAddr, bytes: &[u8]) {
        let request_sized = match decode_datagram(bytes) {
            Ok(Datagram::Dht(p)) => {
                if !p.token.is_empty() || matches!(p.body, Some(Body::Reply(_) | Body::Error(_))) {
                    self.proven.insert(from);
                }
                true
            }
            _ => false,
        };
        let unproven = !self.proven.contains(&from);
        self.node.handle_packet(self.now, from, bytes);
        let answers = self.drain(from);
        if request_sized && unproven {
            assert!(
                answers <= AMPLIFICATION * bytes.len(),
                "{answers} bytes of answers to an unproven source for a {}-byte datagram",
                bytes.len()
            );
        }
    }

    /// Takes every transmit and event out of the node, checking each;
    /// returns the bytes of answers sent to `to`.
    fn drain(&mut self, to: SocketAddr) -> usize {
        let mut answers = 0;
        while let Some(t) = self.node.poll_transmit() {
            assert!(
                t.bytes.len() <= MAX_PACKET,
                "a {}-byte datagram",
                t.bytes.len()
            );
            if let Ok(Datagram::Dht(p)) = decode_datagram(&t.bytes) {
                match p.body {
                    Some(Body::Reply(_) | Body::Error(_)) => {
                        if t.to == to {
                            answers += t.bytes.len();
                        }
                    }
                    Some(_) => self.sent.entry(t.to).or_default().push(p.tid),
                    None => panic!("the node sent a packet without a body"),
                }
            }
        }
        while let Some(event) = self.node.poll_event() {
            if let Event::Response { id, .. } = event {
                assert!(self.requests.contains(&id), "a response to no request");
                assert!(self.answered.insert(id), "two responses to one request");
            }
        }
        for (id, addr) in self.node.closest(&NodeId([0; 32]), 10_000) {
            assert_eq!(
                id,
                NodeId::for_address(addr),
                "unproven id {id:?} at {addr}"
            );
        }
        answers
    }

    fn step(&mut self, script: &mut Script) -> Option<()> {
        let op = script.u8()?;
        let from = source(script.u8()?);
        match op % 6 {
            0 => {
                let bytes = script.long_record()?.to_vec();
                self.deliver(from, &bytes);
            }
            1 | 2 => {
                // A packet with the source's bound id; an answer (op 2)
                // carries the transaction id of a request sent to it.
                let mut packet = Packet::decode(script.record()?).unwrap_or_default();
                if op & 0x80 != 0 {
                    packet.id = NodeId::for_address(from).0.to_vec();
                }
                if op & 0x40 != 0 {
                    packet.to = Some(wire_address(self.me));
                }
                if op % 6 == 2 {
                    let tids = self.sent.get(&from).cloned().unwrap_or_default();
                    let Some(&tid) = tids.get(usize::from(op >> 3) % tids.len().max(1)) else {
                        return Some(());
                    };
                    packet.tid = tid;
                    if packet.body.is_none() {
                        packet.body = Some(Body::Reply(Reply::default()));
                    }
                }
                let bytes = encode_packet(&packet);
                self.deliver(from, &bytes);
            }
            3 => {
                let body = if op & 0x80 == 0 {
                    Body::Ping(Ping {})
                } else {
                    Body::FindNode(FindNode {
                        target: vec![op; 32],
                    })
                };
                let id = self.node.request(self.now, from, body);
                self.requests.insert(id);
                self.drain(from);
            }
            4 => {
                self.node.bootstrap(self.now);
                self.drain(from);
            }
            _ => {
                self.now += Duration::from_millis(50 * u64::from(script.u8()?));
                self.node.handle_timeout(self.now);
                self.drain(from);
            }
        }
        Some(())
    }
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let me = SocketAddr::from(([10, 9, 9, 9], 49737));
    let config = Config {
        bootstrap: (0..3).map(source).collect(),
        reachability: Reachability::Public,
        public_address: Some(me),
        ..Config::default()
    };
    let mut harness = Harness {
        node: Node::new(config, now, [3; 32]),
        me,
        now,
        sent: HashMap::new(),
        proven: BTreeSet::new(),
        requests: BTreeSet::new(),
        answered: BTreeSet::new(),
    };
    harness.drain(me);
    let mut script = Script::new(data);
    while harness.step(&mut script).is_some() {}
});
