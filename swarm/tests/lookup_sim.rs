//! Lookups over a simulated network of 1,000 nodes, seeded: each node's
//! routing table sees every other node (buckets keep the first K), queries
//! are answered from the queried node's table. Lookups must find the true
//! K closest nodes in few queries, and still converge with 20% of the nodes
//! gone (queries to them fail; the nodes that answer have evicted them).

use std::time::{Duration, Instant};

use hyper_swarm::{K, Lookup, LookupState, NodeId, RoutingTable};
use rand::{Rng, SeedableRng};

const NODES: usize = 1000;

fn network(seed: u64) -> (Vec<NodeId>, Vec<RoutingTable<()>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let ids: Vec<NodeId> = (0..NODES).map(|_| NodeId(rng.random())).collect();
    let tables = ids
        .iter()
        .map(|&local| {
            let mut t = RoutingTable::new(local);
            for &other in &ids {
                let _ = t.insert(other, ());
            }
            t
        })
        .collect();
    (ids, tables)
}

/// Runs a lookup from node `from`; returns the result and the queries sent.
fn lookup(
    ids: &[NodeId],
    tables: &[RoutingTable<()>],
    from: usize,
    target: NodeId,
    offline: &[bool],
) -> (Vec<NodeId>, usize) {
    let start = Instant::now();
    let seeds = tables[from]
        .closest(&target, K)
        .into_iter()
        .map(|(id, _)| id);
    let mut l = Lookup::new(target, seeds, Duration::from_secs(1));
    let mut queries = 0;
    loop {
        match l.next(start) {
            LookupState::Query(peer) => {
                queries += 1;
                let at = ids.iter().position(|x| *x == peer).expect("known node");
                if offline[at] {
                    l.on_failure(&peer);
                } else {
                    // Answering nodes have refreshed their tables (dead
                    // entries evicted after failed pings); the querier's
                    // own seeds may still name departed nodes.
                    let closer = tables[at]
                        .closest(&target, NODES)
                        .into_iter()
                        .map(|(id, _)| id)
                        .filter(|id| !offline[ids.iter().position(|x| x == id).unwrap_or(0)])
                        .take(K);
                    l.on_success(&peer, closer);
                }
            }
            LookupState::Finished => return (l.result(), queries),
            LookupState::Waiting | LookupState::AtCapacity => unreachable!("answers are immediate"),
        }
    }
}

#[test]
fn lookups_find_the_k_closest_in_few_queries() {
    let (ids, tables) = network(1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let offline = vec![false; NODES];
    let mut most = 0;
    for _ in 0..50 {
        let target = NodeId(rng.random());
        let from = rng.random_range(0..NODES);
        let (found, queries) = lookup(&ids, &tables, from, target, &offline);
        let mut truth = ids.clone();
        truth.sort_by_key(|x| x.distance(&target));
        truth.truncate(K);
        assert_eq!(found, truth, "the true {K} closest");
        most = most.max(queries);
    }
    // log2(1000) ~ 10 rounds; with the K closest all answering too, a
    // lookup stays within a few dozen queries.
    assert!(most <= 60, "at most {most} queries per lookup");
}

#[test]
fn lookups_converge_with_a_fifth_of_the_nodes_gone() {
    let (ids, tables) = network(3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let offline: Vec<bool> = (0..NODES).map(|_| rng.random_bool(0.2)).collect();
    for _ in 0..50 {
        let target = NodeId(rng.random());
        let from = (0..NODES)
            .find(|&i| !offline[i] && rng.random_bool(0.1))
            .unwrap_or(0);
        let (found, _) = lookup(&ids, &tables, from, target, &offline);
        let mut truth: Vec<NodeId> = ids
            .iter()
            .zip(&offline)
            .filter(|(_, off)| !**off)
            .map(|(id, _)| *id)
            .collect();
        truth.sort_by_key(|x| x.distance(&target));
        truth.truncate(K);
        // Answers still name the departed nodes (no table was refreshed),
        // so the very edge of the set may be missed; the core of it is not.
        let common = found.iter().filter(|x| truth.contains(x)).count();
        assert!(
            common >= K * 9 / 10,
            "{common} of the {K} closest online nodes"
        );
        assert_eq!(found.first(), truth.first(), "the closest online node");
    }
}
