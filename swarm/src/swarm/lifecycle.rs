//! Stopping and pausing a swarm: [`Swarm::destroy`] (and dropping the last
//! handle), [`Swarm::suspend`] and [`Swarm::resume`].

use std::time::Duration;

use hyper_core::KeyPair;

use super::families::Dhts;
use super::{Inner, Swarm, lock, now_millis};
use crate::query::QueryKind;
use crate::signing::sign_unannounce;

/// An unannounce to the DHT gives up after this.
const UNANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether the swarm runs, is paused, or has stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum State {
    #[default]
    Running,
    Suspended,
    Destroyed,
}

/// Removes this peer's records for `topics` (each with the identity it was
/// announced under) from the DHT of every family, all at once.
async fn unannounce_all(dhts: Dhts, topics: Vec<([u8; 32], KeyPair)>) {
    let mut requests = tokio::task::JoinSet::new();
    for ((topic, keypair), (_, dht)) in topics.iter().flat_map(|t| dhts.iter().map(move |d| (t, d)))
    {
        let request = sign_unannounce(keypair, topic, now_millis());
        let dht = dht.clone();
        requests.spawn(async move {
            let _ = tokio::time::timeout(
                UNANNOUNCE_TIMEOUT,
                dht.query(QueryKind::Unannounce(request)),
            )
            .await;
        });
    }
    while requests.join_next().await.is_some() {}
}

impl Inner {
    /// Stops everything that can stop without waiting: every topic's task
    /// and the background tasks, the local announcements, every
    /// connection and the listening endpoint. The topics this peer
    /// announced on the DHT and their identities, to unannounce.
    fn shut(&self) -> Vec<([u8; 32], KeyPair)> {
        *lock(&self.state) = State::Destroyed;
        let topics: Vec<_> = lock(&self.topics).drain().collect();
        for (_, topic) in &topics {
            if let Some(task) = &topic.task {
                task.abort();
            }
        }
        for task in lock(&self.background).drain(..) {
            task.abort();
        }
        if let Some(local) = &self.local {
            local.stop();
        }
        for live in lock(&self.peers).values() {
            live.close(b"swarm destroyed");
        }
        self.listener.close(0u32.into(), b"swarm destroyed");
        lock(&self.connections).take();
        if self.dhts.is_empty() {
            return Vec::new();
        }
        topics
            .into_iter()
            .filter(|(_, t)| t.server)
            .map(|(topic, t)| {
                let identity = t.identity.unwrap_or_else(|| self.config.keypair.clone());
                (topic, identity)
            })
            .collect()
    }
}

impl Drop for Inner {
    /// Does what [`Swarm::destroy`] does; the unannounces run on a task of
    /// the current runtime (none are sent if there is no runtime).
    fn drop(&mut self) {
        let announced = self.shut();
        if !announced.is_empty()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(unannounce_all(self.dhts.clone(), announced));
        }
    }
}

impl Swarm {
    /// Whether the swarm is suspended or destroyed (it dials nothing and
    /// accepts nothing).
    pub(super) fn suspended(&self) -> bool {
        *lock(&self.inner.state) != State::Running
    }

    /// Stops the swarm for good: unannounces every topic on the DHT (waits
    /// for those, each at most 10 s) and on the local link, closes every
    /// connection and the listening endpoint, stops every task and ends the
    /// [`Swarm::connections`] stream. Joins afterwards do nothing. Dropping
    /// the last handle does the same.
    pub async fn destroy(&self) {
        let announced = self.inner.shut();
        unannounce_all(self.inner.dhts.clone(), announced).await;
    }

    /// Pauses the swarm (a laptop lid closing): stops every topic's
    /// lookups and announcements, withdraws the local announcements,
    /// closes every connection and refuses new ones. The topics stay
    /// joined; [`Swarm::resume`] starts them again.
    pub fn suspend(&self) {
        {
            let mut state = lock(&self.inner.state);
            if *state != State::Running {
                return;
            }
            *state = State::Suspended;
        }
        for (topic, t) in lock(&self.inner.topics).iter_mut() {
            if let Some(task) = t.task.take() {
                task.abort();
            }
            if let (true, Some(local)) = (t.local_announced, &self.inner.local) {
                local.unannounce(topic);
                t.local_announced = false;
            }
        }
        for live in lock(&self.inner.peers).values() {
            live.close(b"suspended");
        }
    }

    /// Resumes a suspended swarm: the network may have changed meanwhile
    /// (a laptop woken elsewhere), so the DHT re-learns its public address
    /// and NAT first, as after an address change; then every joined topic
    /// announces (once that is re-learned) and looks up again at once (a
    /// new round, so [`Swarm::flush`] waits for it).
    pub fn resume(&self) {
        {
            let mut state = lock(&self.inner.state);
            if *state != State::Suspended {
                return;
            }
            *state = State::Running;
        }
        self.inner.relearn(&[]);
        let joined: Vec<_> = lock(&self.inner.topics)
            .iter()
            .map(|(topic, t)| (*topic, t.server, t.client, t.only, t.identity.clone()))
            .collect();
        for (topic, server, client, only, identity) in joined {
            self.join_filtered(topic, super::JoinOptions { server, client }, only, identity);
        }
    }
}
