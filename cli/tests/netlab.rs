//! The NAT lab (`common/netlab.rs`) behaves as its docs claim: UDP
//! sockets in its namespaces see cone and symmetric mappings, inbound
//! filtering, and hole punching that works between cones and naively fails
//! with a symmetric NAT on either side.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use common::netlab::{self, Host, Lab, Nat};

/// Nothing arrived within this long: taken as filtered.
const QUIET: Duration = Duration::from_millis(300);

/// A lab, or a skip; prints how long it took to make.
fn lab(hosts: impl FnOnce(&mut Lab) -> Vec<Host>) -> Option<(Lab, Vec<Host>)> {
    let start = Instant::now();
    let mut lab = netlab::lab_or_skip()?;
    let hosts = hosts(&mut lab);
    eprintln!(
        "lab with {} hosts made in {:?}",
        hosts.len(),
        start.elapsed()
    );
    Some((lab, hosts))
}

/// A UDP socket bound in `host`'s namespace (on `port`, 0 for any).
fn bind(host: &Host, port: u16) -> UdpSocket {
    host.run(move || UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)))
        .join()
        .expect("bind thread")
        .expect("bind")
}

/// A datagram arriving at `socket` within `timeout`, if any.
fn recv_within(socket: &UdpSocket, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        socket.set_read_timeout(Some(left)).expect("timeout");
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
            // A blocking call with a timeout can be interrupted even
            // without a signal handler (after the process was stopped and
            // continued, see signal(7)): try again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// A public host answering each datagram with the address it came from
/// (like a STUN server), until dropped.
struct Observer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Observer {
    fn new(host: &Host) -> Observer {
        let socket = bind(host, 3478);
        let addr = SocketAddr::from((host.ip, 3478));
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                if let Some((_, from)) = recv_within(&socket, Duration::from_millis(50)) {
                    socket
                        .send_to(from.to_string().as_bytes(), from)
                        .expect("observer reply");
                }
            }
        });
        Observer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The address `socket`'s datagrams to `observer` come from, as it saw it.
fn observed(socket: &UdpSocket, observer: SocketAddr) -> SocketAddr {
    for _ in 0..10 {
        socket.send_to(b"?", observer).expect("send to observer");
        if let Some((reply, from)) = recv_within(socket, Duration::from_millis(200))
            && from == observer
        {
            return String::from_utf8(reply)
                .expect("utf-8")
                .parse()
                .expect("an address");
        }
    }
    panic!("no answer from the observer at {observer}");
}

/// Sends to `peer` every 100 ms for up to `rounds` rounds while listening;
/// returns what came from `peer`, continuing a few rounds after it did so
/// that the peer gets ours too.
fn punch(socket: UdpSocket, peer: SocketAddr, rounds: u32) -> Option<Vec<u8>> {
    let mut got = None;
    let mut after = 0;
    for _ in 0..rounds {
        socket.send_to(b"punch", peer).expect("send");
        if let Some((data, from)) = recv_within(&socket, Duration::from_millis(100))
            && from == peer
        {
            got = Some(data);
        }
        if got.is_some() {
            after += 1;
            if after > 3 {
                break;
            }
        }
    }
    got
}

#[test]
fn cone_keeps_one_external_port_and_symmetric_takes_one_per_destination() {
    let Some((_lab, hosts)) = lab(|lab| {
        vec![
            lab.public_host("o1").expect("o1"),
            lab.public_host("o2").expect("o2"),
            lab.nat_host("cone", Nat::Cone).expect("cone"),
            lab.nat_host("sym", Nat::Symmetric).expect("sym"),
        ]
    }) else {
        return;
    };
    let [o1, o2, cone, sym] = &hosts[..] else {
        unreachable!()
    };
    let (o1, o2) = (Observer::new(o1), Observer::new(o2));

    // Cone: one socket, seen at the same ip:port by both observers, the
    // router's public ip and (Linux keeps it) the socket's own port.
    for _ in 0..3 {
        let socket = bind(cone, 0);
        let local = socket.local_addr().expect("local").port();
        let (seen1, seen2) = (observed(&socket, o1.addr), observed(&socket, o2.addr));
        assert_eq!(seen1, seen2, "a cone maps independently of the destination");
        assert_eq!(seen1, SocketAddr::from((cone.public_ip, local)));
    }

    // Symmetric: a fresh external port per destination, stable per
    // destination.
    let tries = 5;
    let mut differing = 0;
    for _ in 0..tries {
        let socket = bind(sym, 0);
        let seen1 = observed(&socket, o1.addr);
        let seen2 = observed(&socket, o2.addr);
        assert_eq!(seen1.ip(), std::net::IpAddr::V4(sym.public_ip));
        assert_eq!(seen2.ip(), std::net::IpAddr::V4(sym.public_ip));
        assert_eq!(observed(&socket, o1.addr), seen1, "stable per destination");
        if seen1.port() != seen2.port() {
            differing += 1;
        }
    }
    assert!(
        differing >= tries - 1,
        "symmetric NAT gave the same port to both destinations in {} of {tries} tries",
        tries - differing
    );
}

/// Unsolicited inbound datagrams are dropped; after the inside host sends
/// to an exact ip:port, datagrams from there (only) get in.
fn filters_inbound(nat: Nat) {
    let Some((_lab, hosts)) = lab(|lab| {
        vec![
            lab.public_host("o1").expect("o1"),
            lab.public_host("p").expect("p"),
            lab.nat_host("inside", nat).expect("inside"),
        ]
    }) else {
        return;
    };
    let [o1, p, inside_host] = &hosts[..] else {
        unreachable!()
    };
    let o1 = Observer::new(o1);
    let inside = bind(inside_host, 0);
    let external = observed(&inside, o1.addr);
    let (known, other) = (bind(p, 4000), bind(p, 4001));
    let known_addr = SocketAddr::from((p.ip, 4000));

    known.send_to(b"unsolicited", external).expect("send");
    other.send_to(b"unsolicited", external).expect("send");
    assert_eq!(recv_within(&inside, QUIET), None, "unsolicited got in");

    inside.send_to(b"out", known_addr).expect("send");
    let (data, mapped) = recv_within(&known, Duration::from_secs(2)).expect("outbound");
    assert_eq!(data, b"out");
    assert_eq!(mapped.ip(), std::net::IpAddr::V4(inside_host.public_ip));
    if nat == Nat::Cone {
        assert_eq!(mapped, external, "a cone keeps the mapping");
    }

    known.send_to(b"reply", mapped).expect("send");
    assert_eq!(
        recv_within(&inside, Duration::from_secs(2)),
        Some((b"reply".to_vec(), known_addr)),
        "the contacted ip:port gets in"
    );
    other.send_to(b"other port", mapped).expect("send");
    assert_eq!(
        recv_within(&inside, QUIET),
        None,
        "another port of the same host got in"
    );
    if nat == Nat::Symmetric {
        known
            .send_to(b"via the observer's mapping", external)
            .expect("send");
        assert_eq!(
            recv_within(&inside, QUIET),
            None,
            "the mapping towards the observer took datagrams from elsewhere"
        );
    }
}

#[test]
fn cone_filters_unsolicited_inbound_until_the_host_sends_out() {
    filters_inbound(Nat::Cone);
}

#[test]
fn symmetric_filters_unsolicited_inbound_until_the_host_sends_out() {
    filters_inbound(Nat::Symmetric);
}

/// Hosts `a` and `b` learn their external addresses from the observer and
/// then send to each other at once; what each received from the other.
fn punch_pair(a: &Host, b: &Host, observer: SocketAddr) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let (sa, sb) = (bind(a, 0), bind(b, 0));
    let (ea, eb) = (observed(&sa, observer), observed(&sb, observer));
    let ta = std::thread::spawn(move || punch(sa, eb, 10));
    let tb = std::thread::spawn(move || punch(sb, ea, 10));
    (ta.join().expect("a"), tb.join().expect("b"))
}

#[test]
fn two_cones_punch_through_to_each_other() {
    let Some((_lab, hosts)) = lab(|lab| {
        vec![
            lab.public_host("o1").expect("o1"),
            lab.nat_host("a", Nat::Cone).expect("a"),
            lab.nat_host("b", Nat::Cone).expect("b"),
        ]
    }) else {
        return;
    };
    let [o1, a, b] = &hosts[..] else {
        unreachable!()
    };
    let o1 = Observer::new(o1);
    let (at_a, at_b) = punch_pair(a, b, o1.addr);
    assert_eq!(at_a.as_deref(), Some(&b"punch"[..]), "a heard from b");
    assert_eq!(at_b.as_deref(), Some(&b"punch"[..]), "b heard from a");
}

#[test]
fn naive_punching_fails_with_a_symmetric_nat_on_either_side() {
    let Some((_lab, hosts)) = lab(|lab| {
        vec![
            lab.public_host("o1").expect("o1"),
            lab.nat_host("sym1", Nat::Symmetric).expect("sym1"),
            lab.nat_host("sym2", Nat::Symmetric).expect("sym2"),
            lab.nat_host("cone", Nat::Cone).expect("cone"),
            lab.nat_host("sym3", Nat::Symmetric).expect("sym3"),
        ]
    }) else {
        return;
    };
    let [o1, sym1, sym2, cone, sym3] = &hosts[..] else {
        unreachable!()
    };
    let o1 = Observer::new(o1);
    let addr = o1.addr;
    let (sym1, sym2, cone, sym3) = (sym1.clone(), sym2.clone(), cone.clone(), sym3.clone());
    let both_symmetric = std::thread::spawn(move || punch_pair(&sym1, &sym2, addr));
    let cone_symmetric = std::thread::spawn(move || punch_pair(&cone, &sym3, addr));
    assert_eq!(
        both_symmetric.join().expect("sym/sym"),
        (None, None),
        "symmetric/symmetric"
    );
    assert_eq!(
        cone_symmetric.join().expect("cone/sym"),
        (None, None),
        "cone/symmetric"
    );
}

#[test]
fn labs_clean_up_after_themselves() {
    let Some((lab, hosts)) = lab(|lab| {
        vec![
            lab.public_host("pub").expect("pub"),
            lab.nat_host("nat", Nat::Cone).expect("nat"),
        ]
    }) else {
        return;
    };
    let mut names = vec![lab.internet().to_owned()];
    for host in &hosts {
        names.push(host.name.clone());
        names.extend(host.router.clone());
    }
    // A process left running inside is killed with the lab.
    let mut child = hosts[1]
        .command("sleep")
        .arg("600")
        .spawn()
        .expect("sleep in the lab");
    let exists = |name: &str| std::path::Path::new(&format!("/run/netns/{name}")).exists();
    assert!(names.iter().all(|n| exists(n)), "{names:?}");
    // Give `ip netns exec` time to exec `sleep`.
    std::thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    drop(lab);
    eprintln!("lab removed in {:?}", start.elapsed());
    assert!(names.iter().all(|n| !exists(n)), "{names:?}");
    let status = child.wait().expect("wait");
    assert!(!status.success(), "killed: {status}");
}
