//! The nodes this node announced each of its topics to. Only they may pass
//! a client's connect request on ([`crate::messages::ConnectForward`]):
//! anyone else asking this node to punch toward some address is ignored,
//! so a stranger cannot make it probe a victim. Pure (time passed in) and
//! bounded: at most [`MAX_HOLDERS`] holders per topic, each forgotten when
//! the record it stored would have expired there.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

/// Holders remembered per topic at most (an announce stores on up to
/// [`crate::K`] nodes; re-announcing may move it to others).
pub const MAX_HOLDERS: usize = 64;

/// Holders by topic, each with when its copy of the record expires.
#[derive(Debug, Default)]
pub(crate) struct Announced {
    topics: HashMap<[u8; 32], HashMap<SocketAddr, Instant>>,
}

impl Announced {
    /// `holder` stored this node's record for `topic` until `until`.
    pub(crate) fn stored(&mut self, topic: [u8; 32], holder: SocketAddr, until: Instant) {
        let holders = self.topics.entry(topic).or_default();
        if holders.len() >= MAX_HOLDERS && !holders.contains_key(&holder) {
            // Full: the copy expiring soonest makes room.
            if let Some(first) = holders.iter().min_by_key(|(_, t)| **t).map(|(a, _)| *a) {
                holders.remove(&first);
            }
        }
        holders.insert(holder, until);
    }

    /// This node withdrew its record for `topic`: nobody may forward for it.
    pub(crate) fn withdrawn(&mut self, topic: &[u8; 32]) {
        self.topics.remove(topic);
    }

    /// Whether `holder` holds this node's live record for `topic`.
    pub(crate) fn is_holder(&self, topic: &[u8; 32], holder: SocketAddr, now: Instant) -> bool {
        self.topics
            .get(topic)
            .and_then(|h| h.get(&holder))
            .is_some_and(|until| *until > now)
    }

    /// Forgets holders whose copies have expired.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.topics.retain(|_, holders| {
            holders.retain(|_, until| *until > now);
            !holders.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_live_holders_of_the_topic_count() {
        let now = Instant::now();
        let mut announced = Announced::default();
        let holder: SocketAddr = "198.51.100.1:4000".parse().expect("addr");
        let other: SocketAddr = "198.51.100.1:4001".parse().expect("addr");
        announced.stored([1; 32], holder, now + Duration::from_secs(60));
        assert!(announced.is_holder(&[1; 32], holder, now));
        assert!(!announced.is_holder(&[1; 32], other, now), "another port");
        assert!(!announced.is_holder(&[2; 32], holder, now), "another topic");
        assert!(!announced.is_holder(&[1; 32], holder, now + Duration::from_secs(60)));
        announced.withdrawn(&[1; 32]);
        assert!(!announced.is_holder(&[1; 32], holder, now));
        for port in 0..200u16 {
            let at = SocketAddr::from(([198, 51, 100, 2], port));
            announced.stored([3; 32], at, now + Duration::from_secs(u64::from(port) + 1));
        }
        assert_eq!(
            announced.topics.get(&[3; 32]).map(HashMap::len),
            Some(MAX_HOLDERS)
        );
        announced.expire(now + Duration::from_secs(1_000));
        assert!(announced.topics.is_empty());
    }
}
