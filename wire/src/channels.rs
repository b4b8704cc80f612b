//! Channels: which cores one connection carries. Pure state, no I/O.
//!
//! Each side numbers the channels it opens; every message carries the
//! sender's number. A side opens a channel for a core by sending `Open` with
//! the core's discovery key and its capability; the channel carries data once
//! both sides have opened it for the same core. An `Open` for a discovery key
//! this side has not opened is held (at most [`MAX_PENDING_OPENS`]) until the
//! application opens that core, and is never answered otherwise; an `Open`
//! whose capability does not verify is dropped without a reply. So a peer
//! that does not know a core's key can neither open it nor learn whether
//! this side has it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use hyper_core::{CoreKey, DiscoveryKey};

use crate::capability::Capabilities;
use crate::error::{Error, Result};
use crate::messages::{Body, Close, Message, Open};

/// Most remote opens held for discovery keys not opened here (a flood bound;
/// the oldest is dropped first).
pub const MAX_PENDING_OPENS: usize = 256;

/// The channels of one connection.
pub struct Channels {
    caps: Capabilities,
    local: BTreeMap<u32, Local>,
    by_remote: HashMap<u32, u32>,
    by_discovery: HashMap<DiscoveryKey, u32>,
    pending: VecDeque<Pending>,
    /// The peer's channels this side closed: what it sends on them before
    /// it hears of the close is ignored, not an error.
    closing: HashSet<u32>,
    next_id: u32,
}

struct Local {
    key: CoreKey,
    remote: Option<u32>,
}

struct Pending {
    remote: u32,
    discovery: DiscoveryKey,
    capability: [u8; 32],
}

/// What a local [`Channels::open`] led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// Both sides have the channel open: messages flow.
    Paired {
        /// This side's channel number.
        local: u32,
        /// The peer's channel number.
        remote: u32,
    },
    /// Sent; waiting for the peer to open the same core.
    Waiting {
        /// This side's channel number.
        local: u32,
    },
}

/// What a remote `Open` led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteOpen {
    /// Paired with the channel this side had open for the core.
    Paired {
        /// This side's channel number.
        local: u32,
        /// The core.
        key: CoreKey,
    },
    /// This side has no channel for the discovery key. Nothing is sent; the
    /// application may look the key up and [`Channels::open`] the core,
    /// which then pairs if the held capability verifies.
    Unknown {
        /// The discovery key the peer asked for.
        discovery_key: DiscoveryKey,
    },
    /// The capability does not prove the key: dropped, nothing is sent.
    Refused,
}

impl Channels {
    /// No channels yet, on a connection with these capabilities.
    pub fn new(caps: Capabilities) -> Self {
        Channels {
            caps,
            local: BTreeMap::new(),
            by_remote: HashMap::new(),
            by_discovery: HashMap::new(),
            pending: VecDeque::new(),
            closing: HashSet::new(),
            next_id: 1,
        }
    }

    /// Opens a channel for `key`. Returns the `Open` message to send (`None`
    /// if the core already has a channel here) and the channel's state; if
    /// the peer had already opened the core with a valid capability, the
    /// channel is paired at once.
    pub fn open(&mut self, key: CoreKey) -> (Option<Message>, Opened) {
        let discovery = key.discovery_key();
        if let Some(&local) = self.by_discovery.get(&discovery) {
            let state = match self.local.get(&local).and_then(|l| l.remote) {
                Some(remote) => Opened::Paired { local, remote },
                None => Opened::Waiting { local },
            };
            return (None, state);
        }
        // Numbers wrap after 2^32 opens; skip any still in use.
        let mut local = self.next_id;
        while self.local.contains_key(&local) {
            local = local.wrapping_add(1).max(1);
        }
        self.next_id = local.wrapping_add(1).max(1);
        let mut remote = None;
        let held = self.pending.iter().position(|p| p.discovery == discovery);
        if let Some(p) = held.and_then(|pos| self.pending.remove(pos))
            && self.caps.verify_remote(&key, &p.capability)
        {
            remote = Some(p.remote);
            self.by_remote.insert(p.remote, local);
        }
        self.local.insert(local, Local { key, remote });
        self.by_discovery.insert(discovery, local);
        let message = Message {
            channel: local,
            body: Some(Body::Open(Open {
                discovery_key: discovery.0.to_vec(),
                capability: self.caps.local(&key).to_vec(),
            })),
        };
        let state = match remote {
            Some(remote) => Opened::Paired { local, remote },
            None => Opened::Waiting { local },
        };
        (Some(message), state)
    }

    /// Opens `key` only in answer to the peer's held `Open` for it, and only
    /// if its capability proves the key: returns the `Open` to send and the
    /// (paired) state. Otherwise the held open, if any, is dropped and
    /// nothing is sent, so a peer learns of the core only by proving it
    /// knows the key.
    pub fn answer_held(&mut self, key: CoreKey) -> Option<(Message, Opened)> {
        let discovery = key.discovery_key();
        let pos = self.pending.iter().position(|p| p.discovery == discovery)?;
        let proven = self
            .pending
            .get(pos)
            .is_some_and(|p| self.caps.verify_remote(&key, &p.capability));
        if !proven {
            self.pending.remove(pos);
            return None;
        }
        let (message, state) = self.open(key);
        Some((message?, state))
    }

    /// The discovery keys of the peer's held `Open`s.
    pub fn held(&self) -> impl Iterator<Item = &DiscoveryKey> + '_ {
        self.pending.iter().map(|p| &p.discovery)
    }

    /// Whether the peer's `Open` for `discovery` is held here.
    pub fn holds(&self, discovery: &DiscoveryKey) -> bool {
        self.pending.iter().any(|p| &p.discovery == discovery)
    }

    /// Handles the peer's `Open` on its channel `remote`. A channel number
    /// the peer already uses, a malformed discovery key, or a capability
    /// that is not exactly 32 bytes is a protocol error (so a held open
    /// costs a fixed 72 bytes).
    pub fn on_open(&mut self, remote: u32, open: &Open) -> Result<RemoteOpen> {
        let discovery = DiscoveryKey::from_slice(&open.discovery_key)
            .ok_or(Error::Malformed("discovery key is not 32 bytes"))?;
        let capability: [u8; 32] = open
            .capability
            .as_slice()
            .try_into()
            .map_err(|_| Error::Malformed("capability is not 32 bytes"))?;
        if self.by_remote.contains_key(&remote) || self.pending.iter().any(|p| p.remote == remote) {
            return Err(Error::Malformed("channel opened twice"));
        }
        self.closing.remove(&remote);
        let Some(&local) = self.by_discovery.get(&discovery) else {
            if self.pending.len() >= MAX_PENDING_OPENS {
                self.pending.pop_front();
            }
            self.pending.push_back(Pending {
                remote,
                discovery,
                capability,
            });
            return Ok(RemoteOpen::Unknown {
                discovery_key: discovery,
            });
        };
        let Some(channel) = self.local.get_mut(&local) else {
            return Err(Error::Malformed("channel table out of step"));
        };
        if channel.remote.is_some() {
            return Err(Error::Malformed("core opened twice"));
        }
        if !self.caps.verify_remote(&channel.key, &capability) {
            return Ok(RemoteOpen::Refused);
        }
        channel.remote = Some(remote);
        self.by_remote.insert(remote, local);
        Ok(RemoteOpen::Paired {
            local,
            key: channel.key,
        })
    }

    /// The peer closed its channel `remote`: this side's channel for the
    /// core stays open but unpaired. Returns this side's number for it.
    pub fn on_close(&mut self, remote: u32) -> Option<u32> {
        self.pending.retain(|p| p.remote != remote);
        self.closing.remove(&remote);
        let local = self.by_remote.remove(&remote)?;
        if let Some(channel) = self.local.get_mut(&local) {
            channel.remote = None;
        }
        Some(local)
    }

    /// Closes this side's channel `local`; returns the `Close` to send.
    pub fn close(&mut self, local: u32) -> Option<Message> {
        let channel = self.local.remove(&local)?;
        self.by_discovery.remove(&channel.key.discovery_key());
        if let Some(remote) = channel.remote {
            self.by_remote.remove(&remote);
            self.closing.insert(remote);
        }
        Some(Message {
            channel: local,
            body: Some(Body::Close(Close {})),
        })
    }

    /// This side's channel for a message the peer sent on its channel
    /// `remote`; `None` for a channel this side closed (the message crossed
    /// the `Close`: ignore it). A message on a channel that is not paired
    /// is a protocol error: end the connection.
    pub fn route(&self, remote: u32) -> Result<Option<u32>> {
        match self.by_remote.get(&remote) {
            Some(&local) => Ok(Some(local)),
            None if self.closing.contains(&remote) => Ok(None),
            None => Err(Error::Malformed("message for a channel that is not open")),
        }
    }

    /// The core of this side's channel `local`.
    pub fn key(&self, local: u32) -> Option<CoreKey> {
        self.local.get(&local).map(|c| c.key)
    }

    /// Remote opens held for discovery keys not opened here.
    pub fn pending_opens(&self) -> usize {
        self.pending.len()
    }

    /// Whether any channel is paired (the peer proved a core key here).
    pub fn any_paired(&self) -> bool {
        !self.by_remote.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Channels, Channels) {
        let hash = [5u8; 32];
        (
            Channels::new(Capabilities::new(hash, true)),
            Channels::new(Capabilities::new(hash, false)),
        )
    }

    fn open_of(m: &Option<Message>) -> (u32, Open) {
        match m {
            Some(Message {
                channel,
                body: Some(Body::Open(o)),
            }) => (*channel, o.clone()),
            other => panic!("expected an open, got {other:?}"),
        }
    }

    #[test]
    fn both_orders_pair_and_route() {
        let key = CoreKey([1; 32]);
        // A opens first, B already has the core open when A's open arrives.
        let (mut a, mut b) = pair();
        let (ma, sa) = a.open(key);
        assert!(matches!(sa, Opened::Waiting { .. }));
        let (mb, _) = b.open(key);
        let (ra, oa) = open_of(&ma);
        let (rb, ob) = open_of(&mb);
        assert!(matches!(b.on_open(ra, &oa), Ok(RemoteOpen::Paired { key: k, .. }) if k == key));
        assert!(matches!(a.on_open(rb, &ob), Ok(RemoteOpen::Paired { .. })));
        assert_eq!(b.route(ra).expect("routed"), Some(rb));
        assert_eq!(a.route(rb).expect("routed"), Some(ra));
        // B learns of the core only from A's open: held, then paired on open.
        let (mut a, mut b) = pair();
        let (ma, _) = a.open(key);
        let (ra, oa) = open_of(&ma);
        assert_eq!(
            b.on_open(ra, &oa).expect("held"),
            RemoteOpen::Unknown {
                discovery_key: key.discovery_key()
            }
        );
        assert!(b.route(ra).is_err(), "not paired before B opens");
        let (mb, state) = b.open(key);
        assert!(matches!(state, Opened::Paired { remote, .. } if remote == ra));
        let (rb, ob) = open_of(&mb);
        assert!(matches!(a.on_open(rb, &ob), Ok(RemoteOpen::Paired { .. })));
    }

    #[test]
    fn a_peer_without_the_key_cannot_open_or_probe() {
        let key = CoreKey([1; 32]);
        let (mut a, mut b) = pair();
        let (mb, _) = b.open(key);
        let (rb, ob) = open_of(&mb);
        // A guesses: right discovery key (it saw it), wrong capability.
        let forged = Open {
            discovery_key: ob.discovery_key.clone(),
            capability: vec![0; 32],
        };
        assert_eq!(
            b.on_open(9, &forged).expect("no error"),
            RemoteOpen::Refused
        );
        assert!(b.route(9).is_err());
        // Reflecting B's own open back to B does not work either.
        assert_eq!(b.on_open(rb, &ob).expect("no error"), RemoteOpen::Refused);
        // For a core B does not have, B answers nothing and holds the open;
        // a bad held capability never pairs when B later opens the core.
        let other = CoreKey([2; 32]);
        let probe = Open {
            discovery_key: other.discovery_key().0.to_vec(),
            capability: vec![7; 32],
        };
        assert!(matches!(
            b.on_open(10, &probe),
            Ok(RemoteOpen::Unknown { .. })
        ));
        let (_, state) = b.open(other);
        assert!(matches!(state, Opened::Waiting { .. }));
        let _ = a.open(key);
    }

    #[test]
    fn protocol_errors_and_flood_bound() {
        let (_, mut b) = pair();
        assert!(b.route(3).is_err(), "message on a channel never opened");
        let bad = Open {
            discovery_key: vec![1; 31],
            capability: vec![],
        };
        assert!(matches!(b.on_open(1, &bad), Err(Error::Malformed(_))));
        for i in 0..10_000u32 {
            let mut dk = [0u8; 32];
            dk[..4].copy_from_slice(&i.to_le_bytes());
            let open = Open {
                discovery_key: dk.to_vec(),
                capability: vec![0; 32],
            };
            assert!(b.on_open(i + 100, &open).is_ok());
        }
        assert_eq!(b.pending_opens(), MAX_PENDING_OPENS);
        // The same remote channel number twice is an error.
        let open = Open {
            discovery_key: vec![9; 32],
            capability: vec![0; 32],
        };
        assert!(matches!(b.on_open(10_099, &open), Err(Error::Malformed(_))));
        // A capability of any other length is refused, whatever it says.
        for len in [0, 31, 33, 8 << 20] {
            let open = Open {
                discovery_key: vec![8; 32],
                capability: vec![0; len],
            };
            assert!(matches!(b.on_open(20_000, &open), Err(Error::Malformed(_))));
        }
    }

    #[test]
    fn answering_a_held_open_needs_its_proof() {
        let key = CoreKey([1; 32]);
        let (mut a, mut b) = pair();
        // Nothing held: nothing to answer.
        assert!(b.answer_held(key).is_none());
        // A forged capability: dropped, nothing sent, nothing paired.
        let forged = Open {
            discovery_key: key.discovery_key().0.to_vec(),
            capability: vec![3; 32],
        };
        b.on_open(4, &forged).expect("held");
        assert!(b.holds(&key.discovery_key()));
        assert!(b.answer_held(key).is_none());
        assert!(!b.holds(&key.discovery_key()));
        assert!(b.route(4).is_err());
        // The real one pairs at once.
        let (ma, _) = a.open(key);
        let (ra, oa) = open_of(&ma);
        b.on_open(ra, &oa).expect("held");
        let (reply, state) = b.answer_held(key).expect("answered");
        assert!(matches!(state, Opened::Paired { remote, .. } if remote == ra));
        let (rb, ob) = open_of(&Some(reply));
        assert!(matches!(a.on_open(rb, &ob), Ok(RemoteOpen::Paired { .. })));
    }

    #[test]
    fn closing_unpairs_and_frees_the_numbers() {
        let key = CoreKey([1; 32]);
        let (mut a, mut b) = pair();
        let (ma, _) = a.open(key);
        let (mb, _) = b.open(key);
        let (ra, oa) = open_of(&ma);
        let (rb, ob) = open_of(&mb);
        b.on_open(ra, &oa).expect("pair");
        a.on_open(rb, &ob).expect("pair");
        let close = a.close(ra).expect("close message");
        assert!(matches!(close.body, Some(Body::Close(_))));
        // What B sent before it heard of the close is ignored by A.
        assert_eq!(a.route(rb).expect("crossed the close"), None);
        assert_eq!(b.on_close(close.channel), Some(rb));
        assert!(b.route(ra).is_err());
        assert_eq!(b.key(rb), Some(key), "B's side stays open, unpaired");
        // A can open the core again; B pairs with the new channel.
        let (ma2, _) = a.open(key);
        let (ra2, oa2) = open_of(&ma2);
        assert!(matches!(
            b.on_open(ra2, &oa2),
            Ok(RemoteOpen::Paired { .. })
        ));
    }
}
