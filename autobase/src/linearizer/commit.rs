//! The commit rule of the [`Linearizer`] (see the module docs of
//! `linearizer.rs`, "Finality"): leaders of even rounds, the votes of the
//! indexers' next-round batches, and committing a leader with the
//! uncommitted leaders its past holds.

use super::{Linearizer, Vertex, VertexId, Writer};

impl Linearizer {
    /// An indexer's first batch of `round`, if it has one in that round
    /// (a batch that jumped past the round does not count for it).
    fn first_of(&self, state: &Writer, round: u64) -> Option<&Vertex> {
        let v = *state.first_of_round.get(&round)?;
        self.vertices.get(v)
    }

    /// The leader batch of an even round.
    fn leader(&self, round: u64) -> Option<(VertexId, &Vertex)> {
        let indexers = &self.epoch.indexers;
        let key = indexers.get(((round / 2) % indexers.len() as u64) as usize)?;
        let state = self.writer(key)?;
        let v = *state.first_of_round.get(&round)?;
        let vertex = self.first_of(state, round)?;
        Some((v, vertex))
    }

    /// Indexer `voter`'s first batch of round `round + 1` is `id`: if it
    /// holds the leader of `round`, it votes for it.
    pub(super) fn vote(&mut self, round: u64, voter: usize, id: VertexId) {
        if self.committed_round.is_some_and(|c| round <= c) {
            // Decided already (and its leader may be below a frontier).
            return;
        }
        let Some((_, leader)) = self.leader(round) else {
            return;
        };
        let holds = self
            .vertices
            .get(id)
            .is_some_and(|v| v.covers(leader.writer, leader.batch.end()));
        if !holds {
            return;
        }
        let votes = self.votes.entry(round).or_default();
        if !votes.contains(&voter) {
            votes.push(voter);
        }
        if votes.len() >= self.epoch.quorum
            && !self.awaiting
            && self.committed_round.is_none_or(|c| round > c)
        {
            self.commit(round);
        }
    }

    /// Commits the leader of `round` and, through it, the uncommitted
    /// leaders before it.
    pub(super) fn commit(&mut self, round: u64) {
        let Some((top, _)) = self.leader(round) else {
            return;
        };
        let mut anchors = vec![(top, round)];
        let mut r = round;
        let floor = self.committed_round.map_or(0, |c| c + 2);
        while r >= floor + 2 {
            r -= 2;
            let Some(anchor) = anchors.last().and_then(|&(a, _)| self.vertices.get(a)) else {
                break;
            };
            if let Some((id, l)) = self.leader(r)
                && anchor.covers(l.writer, l.batch.end())
            {
                anchors.push((id, r));
            }
        }
        let mut committed = round;
        for &(a, anchor_round) in anchors.iter().rev() {
            let Some(clock) = self.vertices.get(a).map(|v| v.clock.clone()) else {
                continue;
            };
            let mut segment = Vec::new();
            for (w, state) in self.writers.iter_mut().enumerate() {
                let upto = clock.get(w).copied().unwrap_or(0);
                if upto <= state.indexed {
                    continue;
                }
                let vertices = &self.vertices;
                let from = state.batches.partition_point(|&v| {
                    vertices
                        .get(v)
                        .is_some_and(|x| x.batch.end() <= state.indexed)
                });
                let to = state
                    .batches
                    .partition_point(|&v| vertices.get(v).is_some_and(|x| x.batch.end() <= upto));
                segment.extend(state.batches.get(from..to).unwrap_or_default());
                state.indexed = upto;
            }
            self.sort(&mut segment);
            self.changed_from = self.changed_from.min(self.indexed.len());
            let watched = self.record_commit(anchor_round, segment);
            if self.confirming && (watched || self.commits.last().is_some_and(|c| c.values)) {
                // Its batches may change the indexers (or a pending one's
                // may make it count): the leaders above wait for `confirm`.
                committed = anchor_round;
                self.awaiting = true;
                break;
            }
        }
        // The batches indexed now leave the tip (it stays sorted).
        let (vertices, writers) = (&self.vertices, &self.writers);
        self.tip.retain(|&v| {
            vertices.get(v).is_some_and(|x| {
                writers
                    .get(x.writer)
                    .is_some_and(|w| x.batch.end() > w.indexed)
            })
        });
        self.committed_round = Some(committed);
        self.votes.retain(|&r, _| r > committed);
    }
}
