//! What this node does with the answer (or the silence) that ends one of
//! its requests: only the address asked may answer; an answer proves its
//! address, votes on ours, may bring a token, a relay or a table entry,
//! and goes on to what the request was for.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Answered, Event, Node, Purpose, RELAYS, RequestError};
use crate::id::NodeId;
use crate::messages::{Body, ErrorCode, Reply};

impl Node {
    pub(super) fn on_answer(
        &mut self,
        now: Instant,
        header: Answered,
        result: Result<Reply, ErrorCode>,
    ) {
        let Answered {
            from,
            tid,
            claimed,
            to,
            relays,
        } = header;
        // Only the address asked may answer (a spoofed answer is dropped).
        if self.pending.get(&tid).is_none_or(|p| p.to != from) {
            return;
        }
        let Some(pending) = self.pending.remove(&tid) else {
            return;
        };
        self.validated.insert(from);
        if result.is_ok() {
            self.observe(now, from, to);
        }
        // A relay is only believed from a node with a bound id that has
        // just answered us.
        if relays && claimed.is_some() && !self.relays.contains(&from) {
            if self.relays.len() >= RELAYS {
                self.relays.pop_back();
            }
            self.relays.push_front(from);
        }
        if let Ok(reply) = &result
            && !reply.token.is_empty()
        {
            self.tokens.insert(now, from, reply.token.clone());
        }
        if let Some(id) = claimed {
            self.seen(now, id, from);
        }
        match (pending.purpose, result) {
            (Purpose::Evict { oldest, .. }, _) => {
                self.evicting.remove(&oldest);
                let _ = self.table.insert(oldest, from);
            }
            (Purpose::Request(id), result) => self.events.push_back(Event::Response {
                id,
                result: result.map_err(RequestError::Refused),
            }),
            (Purpose::Forward { client, tid }, Ok(reply)) if reply.holepunch.is_some() => {
                self.send_answer(
                    client,
                    tid,
                    Body::Reply(Reply {
                        holepunch: reply.holepunch,
                        ..Reply::default()
                    }),
                );
            }
            (Purpose::Forward { client, tid }, _) => {
                self.send_error(client, tid, ErrorCode::NotFound)
            }
            (Purpose::Query(query, node), Ok(reply)) => {
                self.on_query_reply(now, query, node, from, claimed, reply)
            }
            (Purpose::Query(query, node), Err(_)) => {
                if let Some(q) = self.queries.get_mut(&query) {
                    q.lookup.on_failure(&node);
                }
            }
            (Purpose::Store(query), result) => {
                self.on_store_answer(now, query, from, result.is_ok())
            }
            (Purpose::CheckReachable | Purpose::Quiet, _) => {}
        }
    }

    pub(super) fn on_failure(
        &mut self,
        now: Instant,
        to: SocketAddr,
        purpose: Purpose,
        error: RequestError,
    ) {
        match purpose {
            Purpose::Evict { oldest, candidate } => {
                self.evicting.remove(&oldest);
                self.table.remove(&oldest);
                self.seen(now, candidate.0, candidate.1);
            }
            Purpose::Request(id) => self.events.push_back(Event::Response {
                id,
                result: Err(error),
            }),
            Purpose::Forward { client, tid } => self.send_error(client, tid, ErrorCode::NotFound),
            Purpose::Query(query, node) => {
                // A node that stops answering leaves the table.
                if NodeId::for_address(to) == node {
                    self.table.remove(&node);
                }
                if let Some(q) = self.queries.get_mut(&query) {
                    q.lookup.on_failure(&node);
                }
            }
            Purpose::Store(query) => self.on_store_answer(now, query, to, false),
            Purpose::CheckReachable | Purpose::Quiet => {}
        }
    }
}
