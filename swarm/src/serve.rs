//! Answering requests: what a DHT node does for others. Every write needs
//! a token this node gave the same address, and a valid signature; every
//! answer fits one datagram.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::codec::{address, bytes32, socket_addr};
use crate::id::NodeId;
use crate::kbucket::{K, MAX_PER_PREFIX};
use crate::limits::Prefix;
use prost::Message as _;

use crate::messages::{
    Body, ConnectForward, ErrorCode, NodeInfo, Packet, Ping, Reply, SignedRecord,
};
use crate::node::{ConnectToken, Event, Node, Purpose};
use crate::signing::{
    immutable_target, mutable_target, verify_mutable, verify_record, verify_unannounce,
};

/// How far ahead of this node's clock a record's timestamp may be (and
/// how far past its lifetime), in milliseconds.
pub const MAX_CLOCK_SKEW_MS: u64 = 10 * 60 * 1000;

/// Addresses one hole punch probes at most.
pub const MAX_PUNCH_TARGETS: usize = 2;

/// The addresses of `holepunch` worth probing: those on `ip` (the IP the
/// peer was seen at), without duplicates, at most [`MAX_PUNCH_TARGETS`].
/// A peer (or a node passing its request on) cannot aim the probes at
/// any other host, nor multiply them.
pub fn punch_targets(holepunch: &crate::messages::Holepunch, ip: IpAddr) -> Vec<SocketAddr> {
    let mut targets: Vec<SocketAddr> = Vec::new();
    for addr in holepunch.addresses.iter().filter_map(socket_addr) {
        if addr.ip() == ip && !targets.contains(&addr) && targets.len() < MAX_PUNCH_TARGETS {
            targets.push(addr);
        }
    }
    targets
}

/// Room for records in a reply; [`fit`] then drops closer nodes until
/// the whole answer fits its budget.
const RECORD_BUDGET: usize = 800;

/// Trims an answer until it fits `budget` bytes encoded (kind byte
/// included): closer nodes go first (farthest first), then records, then
/// the sender's id, then the rest of the reply. Requests are not trimmed.
pub(crate) fn fit(packet: &mut Packet, budget: usize) {
    while 1 + packet.encoded_len() > budget {
        let Some(Body::Reply(reply)) = packet.body.as_mut() else {
            return;
        };
        if reply.closer.pop().is_some() || reply.records.pop().is_some() {
            continue;
        }
        if !packet.id.is_empty() {
            packet.id.clear();
            continue;
        }
        if reply.mutable.take().is_some() || reply.holepunch.take().is_some() {
            continue;
        }
        if !reply.immutable.is_empty() {
            reply.immutable.clear();
        } else if !reply.token.is_empty() {
            reply.token.clear();
        } else {
            return;
        }
    }
}

impl Node {
    fn closer(&self, target: &[u8]) -> Vec<NodeInfo> {
        let Some(target) = bytes32(target) else {
            return Vec::new();
        };
        // At most MAX_PER_PREFIX of one /24 or /64 among the answers.
        let mut per_prefix: HashMap<Prefix, usize> = HashMap::new();
        self.table
            .closest(&NodeId(target), 4 * K)
            .into_iter()
            .filter(|(_, at)| match Prefix::capped(at.ip()) {
                Some(prefix) => {
                    let n = per_prefix.entry(prefix).or_insert(0);
                    *n += 1;
                    *n <= MAX_PER_PREFIX
                }
                None => true,
            })
            .take(K)
            .map(|(id, at)| NodeInfo {
                id: id.0.to_vec(),
                address: Some(address(at)),
            })
            .collect()
    }

    fn reply(&mut self, to: SocketAddr, tid: u32, reply: Reply) {
        self.send_answer(to, tid, Body::Reply(reply));
    }

    fn stored_or_error(&mut self, to: SocketAddr, tid: u32, result: Result<(), ErrorCode>) {
        match result {
            Ok(()) => self.reply(to, tid, Reply::default()),
            Err(code) => self.send_error(to, tid, code),
        }
    }

    /// Answers request `body` (tid `tid`) from `from`; `validated` says
    /// whether `from` proved its address (a round trip or a token).
    pub(crate) fn serve(
        &mut self,
        now: Instant,
        from: SocketAddr,
        tid: u32,
        body: Body,
        validated: bool,
    ) {
        match body {
            Body::Ping(_) => {
                let reply = Reply {
                    observer_port: self.config.observer_port.map_or(0, u32::from),
                    ..Reply::default()
                };
                self.reply(from, tid, reply);
            }
            Body::FindNode(find) => {
                let closer = self.closer(&find.target);
                self.reply(
                    from,
                    tid,
                    Reply {
                        closer,
                        token: self.token(from, 0).to_vec(),
                        ..Reply::default()
                    },
                );
            }
            Body::Lookup(lookup) => {
                let Some(topic) = bytes32(&lookup.topic) else {
                    return self.send_error(from, tid, ErrorCode::Invalid);
                };
                let mut records: Vec<SignedRecord> = Vec::new();
                let mut room = RECORD_BUDGET;
                for record in self.records.lookup(&topic) {
                    let size = record.record.len() + record.signature.len() + 8;
                    if size > room {
                        break;
                    }
                    room -= size;
                    records.push(record);
                }
                let reply = Reply {
                    closer: self.closer(&topic),
                    token: self.token(from, 0).to_vec(),
                    records,
                    ..Reply::default()
                };
                self.reply(from, tid, reply);
            }
            Body::Announce(announce) => {
                let result = self.announce(now, from, announce);
                self.stored_or_error(from, tid, result);
            }
            Body::Unannounce(request) => {
                let result = if !self.valid_token(from, &request.token) {
                    Err(ErrorCode::BadToken)
                } else if !verify_unannounce(&request) {
                    Err(ErrorCode::BadSignature)
                } else {
                    match (bytes32(&request.topic), bytes32(&request.public_key)) {
                        (Some(topic), Some(key)) => {
                            self.records
                                .unannounce(now, &topic, &key, request.timestamp);
                            Ok(())
                        }
                        _ => Err(ErrorCode::Invalid),
                    }
                };
                self.stored_or_error(from, tid, result);
            }
            Body::MutablePut(put) => {
                let result = match put.value {
                    _ if !self.valid_token(from, &put.token) => Err(ErrorCode::BadToken),
                    None => Err(ErrorCode::Invalid),
                    Some(value) => match verify_mutable(&value) {
                        None => Err(ErrorCode::BadSignature),
                        Some(key) => {
                            self.records
                                .put_mutable(now, mutable_target(&key), value, from.ip())
                        }
                    },
                };
                self.stored_or_error(from, tid, result);
            }
            Body::MutableGet(get) => {
                let mutable = bytes32(&get.target)
                    .and_then(|t| self.records.get_mutable(&t, get.seq))
                    .cloned();
                let reply = Reply {
                    closer: self.closer(&get.target),
                    token: self.token(from, 0).to_vec(),
                    mutable,
                    ..Reply::default()
                };
                self.reply(from, tid, reply);
            }
            Body::ImmutablePut(put) => {
                let result = if self.valid_token(from, &put.token) {
                    let target = immutable_target(&put.value);
                    self.records
                        .put_immutable(now, target, put.value, from.ip())
                } else {
                    Err(ErrorCode::BadToken)
                };
                self.stored_or_error(from, tid, result);
            }
            Body::ImmutableGet(get) => {
                let immutable = bytes32(&get.target)
                    .and_then(|t| self.records.get_immutable(&t))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default();
                let reply = Reply {
                    closer: self.closer(&get.target),
                    token: self.token(from, 0).to_vec(),
                    immutable,
                    ..Reply::default()
                };
                self.reply(from, tid, reply);
            }
            Body::Connect(connect) => {
                let announcer = match (bytes32(&connect.topic), bytes32(&connect.public_key)) {
                    (Some(topic), Some(key)) => self.records.announcer(&topic, &key),
                    _ => None,
                };
                match (announcer, connect.holepunch) {
                    (Some(announcer), Some(holepunch)) => {
                        let forward = ConnectForward {
                            topic: connect.topic,
                            from: Some(address(from)),
                            holepunch: Some(holepunch),
                        };
                        self.send_request(
                            now,
                            announcer,
                            Body::ConnectForward(forward),
                            Purpose::Forward { client: from, tid },
                        );
                    }
                    _ => self.send_error(from, tid, ErrorCode::NotFound),
                }
            }
            Body::ConnectForward(forward) => {
                // Only a node this one announced the topic to may pass a
                // client on, and only toward the IP it saw the client at.
                let topic = bytes32(&forward.topic);
                if !topic.is_some_and(|t| self.announced.is_holder(&t, from, now)) {
                    return self.send_error(from, tid, ErrorCode::NotFound);
                }
                let client = forward.from.as_ref().and_then(socket_addr);
                match (topic, client, forward.holepunch) {
                    (Some(topic), Some(client), Some(mut holepunch)) => {
                        let targets = punch_targets(&holepunch, client.ip());
                        if targets.is_empty() {
                            return self.send_error(from, tid, ErrorCode::Invalid);
                        }
                        holepunch.addresses = targets.into_iter().map(address).collect();
                        self.push_event(Event::ConnectRequest {
                            token: ConnectToken::new(from, tid),
                            topic,
                            from: Some(client),
                            holepunch,
                        });
                    }
                    _ => self.send_error(from, tid, ErrorCode::Invalid),
                }
            }
            Body::CheckReachable(_) => {
                if let Some(other) = self.other_node(from) {
                    let ping = crate::messages::PingTarget {
                        target: Some(address(from)),
                    };
                    self.send_request(now, other, Body::PingTarget(ping), Purpose::Quiet);
                }
                self.reply(from, tid, Reply::default());
            }
            Body::PingTarget(ping) => {
                // Only for nodes that proved their address, and only a few
                // a second in all: not a way to ping anyone for anyone.
                if !validated || !self.may_ping_target(now) {
                    return self.send_error(from, tid, ErrorCode::Limited);
                }
                if let Some(target) = ping.target.as_ref().and_then(socket_addr) {
                    self.send_request(now, target, Body::Ping(Ping {}), Purpose::Quiet);
                }
                self.reply(from, tid, Reply::default());
            }
            Body::Reply(_) | Body::Error(_) => {}
        }
    }

    fn announce(
        &mut self,
        now: Instant,
        from: SocketAddr,
        announce: crate::messages::Announce,
    ) -> Result<(), ErrorCode> {
        if !self.valid_token(from, &announce.token) {
            return Err(ErrorCode::BadToken);
        }
        let topic = bytes32(&announce.topic).ok_or(ErrorCode::Invalid)?;
        let signed = announce.record.ok_or(ErrorCode::Invalid)?;
        if signed.record.len() > self.records.limits().max_value_bytes {
            return Err(ErrorCode::Invalid);
        }
        let (record, key) = verify_record(&topic, &signed).ok_or(ErrorCode::BadSignature)?;
        // The timestamp is signed: one far ahead of the clock could never
        // be replaced or unannounced, one past its lifetime is a replay.
        if let Some(clock) = self.unix_ms(now)
            && (record.timestamp > clock.saturating_add(MAX_CLOCK_SKEW_MS)
                || record
                    .timestamp
                    .saturating_add(self.records.limits().ttl.as_millis() as u64)
                    < clock.saturating_sub(MAX_CLOCK_SKEW_MS))
        {
            return Err(ErrorCode::Invalid);
        }
        // The addresses are signed too: a record that names them is only
        // stored from one of their IPs, so a captured record replayed from
        // elsewhere cannot take over where connects go.
        let named: Vec<IpAddr> = record
            .addresses
            .iter()
            .filter_map(socket_addr)
            .map(|a| crate::limits::canonical(a.ip()))
            .collect();
        if !named.is_empty() && !named.contains(&crate::limits::canonical(from.ip())) {
            return Err(ErrorCode::Invalid);
        }
        self.records
            .announce(now, topic, key.0, record.timestamp, signed, from)
    }
}
