//! A DHT node told that its host's network changed
//! ([`Node::network_changed`]) forgets the address answers voted for,
//! counts as not bootstrapped, and re-learns its address by walking the
//! network again (on the simulated network); a node whose address was
//! configured keeps the id bound to it.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_swarm::sim::{Sim, SimConfig};
use hyper_swarm::{Config, Node, NodeId, Reachability};

/// Twenty public nodes, each in its own /24, and one that learns its
/// address from their answers.
fn network() -> (Sim, SocketAddr) {
    let honest: Vec<SocketAddr> = (0..20).map(Sim::global_address).collect();
    let mut sim = Sim::network_at(
        SimConfig {
            seed: 11,
            ..SimConfig::default()
        },
        &honest,
        Duration::from_secs(5),
    );
    let auto = Sim::global_address(300);
    sim.add(
        auto,
        Config {
            bootstrap: vec![honest[0]],
            reachability: Reachability::Auto,
            ..Config::default()
        },
        false,
    );
    sim.run_for(Duration::from_secs(30));
    (sim, auto)
}

fn known(sim: &Sim, addr: &SocketAddr) -> (Option<NodeId>, Option<SocketAddr>, bool) {
    let node: &Node = sim.node(addr).expect("node");
    (node.id(), node.public_address(), node.is_bootstrapped())
}

#[test]
fn a_network_change_forgets_the_address_and_learns_it_again() {
    let (mut sim, auto) = network();
    // (The simulation never makes this node claim an id: it stays a
    // client, so there is none to forget.)
    let expected = (None, Some(auto), true);
    assert_eq!(known(&sim, &auto), expected, "before the change");

    sim.with(auto, |node, now| node.network_changed(now));
    assert_eq!(
        known(&sim, &auto),
        (None, None, false),
        "right after the change: nothing of the old address is kept"
    );

    sim.run_for(Duration::from_secs(30));
    assert_eq!(known(&sim, &auto), expected, "after walking again");
}

#[test]
fn a_configured_address_keeps_its_id_through_a_network_change() {
    let (mut sim, _) = network();
    let public = Sim::global_address(3);
    let id = sim.node(&public).and_then(Node::id);
    assert_eq!(id, Some(NodeId::for_address(public)));
    sim.with(public, |node, now| node.network_changed(now));
    assert_eq!(sim.node(&public).and_then(Node::id), id);
    sim.run_for(Duration::from_secs(10));
    assert_eq!(known(&sim, &public), (id, Some(public), true));
}
