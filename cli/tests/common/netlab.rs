//! A network-namespace NAT lab for tests: an "internet", public hosts on it,
//! and hosts behind NAT routers, all made of Linux network namespaces.
//!
//! # Topology
//!
//! ```text
//!                    internet namespace (bridge br0, 198.18.0.0/16)
//!        ┌──────────────┬───────────────┴──────────┬─────────────────┐
//!   public host     public host           NAT router (wan)      NAT router (wan)
//!   198.18.0.2      198.18.0.3            198.18.0.4            198.18.0.5
//!   (eth0)          (eth0)                (lan) 192.168.4.1     (lan) 192.168.5.1
//!                                               │                     │
//!                                         NATed host (eth0)     NATed host (eth0)
//!                                         192.168.4.2           192.168.5.2
//! ```
//!
//! * One *internet* namespace per [`Lab`] holds a bridge `br0`; it has no
//!   address of its own and runs no firewall: it is the wire.
//! * A *public host* ([`Lab::public_host`]) is one namespace whose `eth0` is
//!   a veth attached to the bridge, with an address in `198.18.0.0/16`
//!   (RFC 2544's benchmarking range: never seen on the real internet, yet
//!   not "private" in the RFC 1918 sense, so code that treats LAN addresses
//!   specially sees it as public). Public hosts reach each other directly;
//!   they have no default route.
//! * A *NATed host* ([`Lab::nat_host`]) is two namespaces: a router whose
//!   `wan` veth is on the bridge with a public address and whose `lan` veth
//!   leads to the host's `eth0`, on its own LAN `192.168.N.0/24` (router
//!   `.1`, host `.2`, `N` the host's index in the lab, so no two LANs share
//!   a subnet). The host's default route goes through the router, which
//!   forwards (`ip_forward=1`) and translates. There is no hairpinning: a
//!   host cannot reach its own router's public address.
//!
//! Every namespace has `lo` up, IPv6 disabled (no DAD, router solicitations
//! or MLD noise) and `rp_filter` off.
//!
//! The rules below apply to UDP and TCP alike. Mappings expire as the
//! kernel's conntrack defaults say, much like a home router's: a UDP flow
//! seen in one direction only after 30 s idle, a two-way one after 120 s
//! (`nf_conntrack_udp_timeout`, `..._stream`, per router namespace).
//!
//! # Kinds of NAT
//!
//! Both kinds share the router's inbound filter: on the `INPUT` and
//! `FORWARD` chains, packets coming in on `wan` are accepted only if
//! conntrack says `ESTABLISHED,RELATED` and dropped otherwise. An inbound
//! packet therefore gets through only from the exact `ip:port` that the
//! inside host has sent to from that mapping: *address-and-port-dependent
//! filtering*.
//!
//! * [`Nat::Cone`]: `iptables -t nat -A POSTROUTING -o wan -j MASQUERADE`.
//!   Linux keeps the inside source port whenever the resulting tuple is
//!   unique, so one socket appears at the same external `ip:port` to every
//!   destination (*endpoint-independent mapping*): with the filter above, a
//!   port-restricted cone. Two such hosts can punch holes to each other by
//!   learning their external addresses from a third party and sending to
//!   each other.
//! * [`Nat::Symmetric`]: the same with `MASQUERADE --random-fully`: every
//!   new destination gets a fresh random external port (*address-and-port-
//!   dependent mapping*), so the address a third party observed is useless
//!   to anyone else, and naive hole punching fails.
//!
//! # Use
//!
//! ```ignore
//! let Some(mut lab) = netlab::lab_or_skip() else { return };
//! let boot = lab.public_host("boot")?;
//! let alice = lab.nat_host("alice", Nat::Cone)?;
//! // A process in a namespace:
//! let child = alice.command(env!("CARGO_BIN_EXE_hyper-cli")).args([..]).spawn()?;
//! // In-process code whose sockets live in a namespace (threads it spawns,
//! // e.g. a tokio runtime's workers, inherit the namespace):
//! let handle = boot.run(move || std::net::UdpSocket::bind("0.0.0.0:49737"));
//! ```
//!
//! Names are `hnl<pid>-<lab>-...` (or `<base><pid>-<lab>-...` with
//! [`Lab::with_prefix`]), unique per process and lab, so labs in
//! parallel threads and processes do not collide. Dropping the [`Lab`]
//! kills every process still inside its namespaces (never the test process
//! itself) and deletes the namespaces, the veths going with them; this also
//! happens when a test panics. A namespace stays alive, nameless, as long as
//! a [`Host::run`] thread is still inside it. Namespaces left by a process
//! that died without dropping its lab (named with a pid no longer running)
//! are removed by the next [`Lab::new`]. Set `HYPER_NAT_LAB_KEEP=1` to keep
//! a lab's namespaces after the test for inspection (`ip netns list`,
//! `ip netns exec NAME iptables-legacy -t nat -L -v`; the next run removes
//! them).
//!
//! Needs root, iproute2's `ip` and iptables: the legacy variant if it works
//! (it is the faster to set up), else the nf_tables one;
//! `HYPER_NAT_LAB_IPTABLES=nft` or `legacy` insists on one. [`available`]
//! says whether the lab can run; [`lab_or_skip`] turns that into a skip, or
//! a failure when the environment has `HYPER_NAT_LAB=required`.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Every namespace name starts with this, then the process id.
const PREFIX: &str = "hnl";
/// The public side: 198.18.0.0/16.
const PUBLIC_NET: [u8; 2] = [198, 18];
const PUBLIC_PREFIX_LEN: u8 = 16;
/// At most this many hosts (public or NATed) per lab: each NATed host's LAN
/// is 192.168.INDEX.0/24.
const MAX_HOSTS: u32 = 250;
/// How long to wait for interfaces to come up.
const UP_TIMEOUT: Duration = Duration::from_secs(5);

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// The kind of NAT in front of a NATed host (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// `MASQUERADE`: endpoint-independent mapping (the source port is kept
    /// when possible), address-and-port-dependent filtering.
    Cone,
    /// `MASQUERADE --random-fully`: a new random external port per
    /// destination, address-and-port-dependent filtering.
    Symmetric,
}

/// A host in a [`Lab`]: a network namespace to run processes and threads in.
#[derive(Clone, Debug)]
pub struct Host {
    /// The network namespace's name (as in `ip netns list`).
    pub name: String,
    /// Its own address: public for a public host, on the private LAN for a
    /// NATed one.
    pub ip: Ipv4Addr,
    /// The address the internet sees: `ip` for a public host, the router's
    /// WAN address for a NATed one.
    pub public_ip: Ipv4Addr,
    /// The router's namespace, for a NATed host.
    pub router: Option<String>,
    /// The kind of NAT in front of it, for a NATed host.
    pub nat: Option<Nat>,
}

impl Host {
    /// A [`Command`] that runs `program` inside this host's namespace
    /// (`ip netns exec NAME program`); add arguments as usual. `ip` execs
    /// the program, so the child's id is the program's.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(program.as_ref());
        command
    }

    /// Runs `f` on a new thread that has entered this host's network
    /// namespace: sockets it creates live there, and so do threads it spawns
    /// (a tokio runtime built inside `f`, say). A socket stays in the
    /// namespace it was made in, so it may be returned and used from any
    /// thread: `host.run(|| UdpSocket::bind("0.0.0.0:0")).join()`. Panics
    /// (in the caller) if the namespace is gone; the thread panics if it
    /// cannot enter it.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
        let file = open_netns(&self.name).unwrap_or_else(|e| panic!("netns {}: {e}", self.name));
        let name = self.name.clone();
        std::thread::Builder::new()
            .name(format!("netns {name}"))
            .spawn(move || {
                enter(&file).unwrap_or_else(|e| panic!("enter netns {name}: {e}"));
                drop(file);
                f()
            })
            .expect("spawn a thread")
    }
}

/// A set of namespaces forming an internet with public and NATed hosts;
/// dropping it removes them all.
pub struct Lab {
    /// `hnl<pid>-<lab>`.
    prefix: String,
    internet: String,
    /// Every namespace made so far, in creation order.
    namespaces: Vec<String>,
    hosts: u32,
    iptables_restore: &'static str,
}

impl Lab {
    /// An empty internet. Fails with a clear message if the lab cannot run
    /// here (see [`available`]).
    pub fn new() -> io::Result<Lab> {
        Lab::with_prefix(PREFIX)
    }

    /// An empty internet whose namespaces are named `<base><pid>-...`
    /// instead of `hnl<pid>-...` (so one suite's namespaces are told from
    /// another's at a glance); stale ones of the same `base` are removed
    /// as [`Lab::new`] removes its own.
    pub fn with_prefix(base: &'static str) -> io::Result<Lab> {
        let iptables_restore = probe().clone().map_err(io::Error::other)?;
        static CLEANUP: Once = Once::new();
        CLEANUP.call_once(|| remove_stale(PREFIX));
        if base != PREFIX {
            static CLEANED: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
            let mut cleaned = CLEANED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !cleaned.contains(&base) {
                cleaned.push(base);
                remove_stale(base);
            }
        }
        let prefix = format!(
            "{base}{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let mut lab = Lab {
            internet: format!("{prefix}-inet"),
            prefix,
            namespaces: Vec::new(),
            hosts: 0,
            iptables_restore,
        };
        let internet = lab.internet.clone();
        lab.add_namespace(&internet, false)?;
        ip_batch(
            &internet,
            "link set lo up\n\
             link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0\n\
             link set br0 up\n",
        )?;
        Ok(lab)
    }

    /// The internet namespace's name (the bridge is `br0`).
    pub fn internet(&self) -> &str {
        &self.internet
    }

    /// A host on the internet with a public address of its own.
    pub fn public_host(&mut self, label: &str) -> io::Result<Host> {
        let index = self.next_index()?;
        let name = format!("{}-{index}-{}", self.prefix, sanitize(label));
        let ip = public_ip(index);
        let port = format!("p{index}");
        self.add_namespace(&name, false)?;
        ip_batch(
            &name,
            &format!(
                "link set lo up\n\
                 link add eth0 type veth peer name {port} netns {inet}\n\
                 addr add {ip}/{PUBLIC_PREFIX_LEN} dev eth0\n\
                 link set eth0 up\n",
                inet = self.internet
            ),
        )?;
        ip_batch(&self.internet, &format!("link set {port} master br0 up\n"))?;
        wait_up(&name, &["eth0"])?;
        wait_up(&self.internet, &[&port])?;
        Ok(Host {
            name,
            ip,
            public_ip: ip,
            router: None,
            nat: None,
        })
    }

    /// A host on a private LAN behind its own NAT router of the given kind.
    pub fn nat_host(&mut self, label: &str, nat: Nat) -> io::Result<Host> {
        let index = self.next_index()?;
        let label = sanitize(label);
        let name = format!("{}-{index}-{label}", self.prefix);
        let router = format!("{}-{index}-{label}-gw", self.prefix);
        let public = public_ip(index);
        let lan = u8::try_from(index).map_err(io::Error::other)?;
        let gateway = Ipv4Addr::new(192, 168, lan, 1);
        let ip = Ipv4Addr::new(192, 168, lan, 2);
        let port = format!("p{index}");
        self.add_namespace(&router, true)?;
        self.add_namespace(&name, false)?;
        ip_batch(
            &router,
            &format!(
                "link set lo up\n\
                 link add wan type veth peer name {port} netns {inet}\n\
                 link add lan type veth peer name eth0 netns {name}\n\
                 addr add {public}/{PUBLIC_PREFIX_LEN} dev wan\n\
                 addr add {gateway}/24 dev lan\n\
                 link set wan up\n\
                 link set lan up\n",
                inet = self.internet
            ),
        )?;
        ip_batch(
            &name,
            &format!(
                "link set lo up\n\
                 addr add {ip}/24 dev eth0\n\
                 link set eth0 up\n\
                 route add default via {gateway}\n"
            ),
        )?;
        ip_batch(&self.internet, &format!("link set {port} master br0 up\n"))?;
        let masquerade = match nat {
            Nat::Cone => "MASQUERADE",
            Nat::Symmetric => "MASQUERADE --random-fully",
        };
        run(
            Command::new("ip").args(["netns", "exec", &router, self.iptables_restore]),
            Some(&router_rules("wan", masquerade)),
        )?;
        wait_up(&router, &["wan", "lan"])?;
        wait_up(&name, &["eth0"])?;
        wait_up(&self.internet, &[&port])?;
        Ok(Host {
            name,
            ip,
            public_ip: public,
            router: Some(router),
            nat: Some(nat),
        })
    }

    fn next_index(&mut self) -> io::Result<u32> {
        if self.hosts >= MAX_HOSTS {
            return Err(io::Error::other(format!(
                "netlab: at most {MAX_HOSTS} hosts per lab"
            )));
        }
        self.hosts += 1;
        // From 2: no public host at the gateway-looking 198.18.0.1, and no
        // LAN is the ubiquitous home 192.168.1.0/24.
        Ok(self.hosts + 1)
    }

    /// Creates a namespace (remembered for Drop at once) with IPv6 off,
    /// `rp_filter` off and, for a router, forwarding on. The caller's first
    /// `ip` batch there brings `lo` up.
    fn add_namespace(&mut self, name: &str, router: bool) -> io::Result<()> {
        run(Command::new("ip").args(["netns", "add", name]), None)?;
        self.namespaces.push(name.to_owned());
        in_netns(name, || {
            for (key, value) in [
                ("ipv6/conf/all/disable_ipv6", "1"),
                ("ipv6/conf/default/disable_ipv6", "1"),
            ] {
                match sysctl(key, value) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    other => other?,
                }
            }
            sysctl("ipv4/conf/all/rp_filter", "0")?;
            sysctl("ipv4/conf/default/rp_filter", "0")?;
            if router {
                sysctl("ipv4/ip_forward", "1")?;
            }
            Ok(())
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::env::var_os("HYPER_NAT_LAB_KEEP").is_some() {
            eprintln!("netlab: keeping namespaces {:?}", self.namespaces);
            return;
        }
        remove_namespaces(&self.namespaces);
    }
}

/// Whether the lab can run here: root, `ip` that can make namespaces, and
/// an iptables (nf_tables or legacy) that can install the NAT rules. Checked
/// once per process, by really making a namespace with the rules.
pub fn available() -> Result<(), String> {
    probe().clone().map(|_| ())
}

/// A new [`Lab`], or `None` (with the reason printed) when the lab cannot
/// run here; panics instead when the environment has
/// `HYPER_NAT_LAB=required`, or when the lab is available but cannot be
/// made. Typical start of a test:
/// `let Some(mut lab) = netlab::lab_or_skip() else { return };`.
pub fn lab_or_skip() -> Option<Lab> {
    lab_or_skip_with(PREFIX)
}

/// [`lab_or_skip`] with namespaces named as by [`Lab::with_prefix`].
pub fn lab_or_skip_with(base: &'static str) -> Option<Lab> {
    if let Err(why) = available() {
        if std::env::var("HYPER_NAT_LAB").is_ok_and(|v| v == "required") {
            panic!("HYPER_NAT_LAB=required but the NAT lab cannot run: {why}");
        }
        // Straight to stderr, past the test harness's capture, so that the
        // skip shows in `cargo test`'s output.
        let _ = writeln!(io::stderr(), "skipped: the NAT lab cannot run here: {why}");
        return None;
    }
    Some(Lab::with_prefix(base).expect("a NAT lab"))
}

/// The iptables-restore to use, or why the lab cannot run.
fn probe() -> &'static Result<&'static str, String> {
    static PROBE: OnceLock<Result<&'static str, String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(format!("not root (euid {euid})"));
        }
        run(Command::new("ip").arg("-V"), None)
            .map_err(|e| format!("no usable iproute2 `ip`: {e}"))?;
        let name = format!("{PREFIX}{}-probe", std::process::id());
        run(Command::new("ip").args(["netns", "add", &name]), None)
            .map_err(|e| format!("cannot make a network namespace: {e}"))?;
        let rules = router_rules("lo", "MASQUERADE --random-fully");
        // Legacy first: here it installs a router's rules in ~5 ms where
        // nf_tables takes ~30 ms. HYPER_NAT_LAB_IPTABLES=nft or legacy
        // insists on one.
        let insist = std::env::var("HYPER_NAT_LAB_IPTABLES").ok();
        let candidates: &[&'static str] = match insist.as_deref() {
            Some("nft") => &["iptables-nft-restore"],
            Some("legacy") => &["iptables-legacy-restore"],
            _ => &[
                "iptables-legacy-restore",
                "iptables-nft-restore",
                "iptables-restore",
            ],
        };
        let mut errors = Vec::new();
        let mut found = None;
        for &restore in candidates {
            match run(
                Command::new("ip").args(["netns", "exec", &name, restore]),
                Some(&rules),
            ) {
                Ok(()) => {
                    found = Some(restore);
                    break;
                }
                Err(e) => errors.push(format!("{restore}: {e}")),
            }
        }
        remove_namespaces(&[name]);
        found.ok_or_else(|| {
            format!(
                "no iptables can install the NAT rules ({})",
                errors.join("; ")
            )
        })
    })
}

/// The router's rules, for iptables-restore.
fn router_rules(wan: &str, masquerade: &str) -> String {
    format!(
        "*nat\n\
         :PREROUTING ACCEPT [0:0]\n\
         :INPUT ACCEPT [0:0]\n\
         :OUTPUT ACCEPT [0:0]\n\
         :POSTROUTING ACCEPT [0:0]\n\
         -A POSTROUTING -o {wan} -j {masquerade}\n\
         COMMIT\n\
         *filter\n\
         :INPUT ACCEPT [0:0]\n\
         :FORWARD ACCEPT [0:0]\n\
         :OUTPUT ACCEPT [0:0]\n\
         -A INPUT -i {wan} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
         -A INPUT -i {wan} -j DROP\n\
         -A FORWARD -i {wan} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n\
         -A FORWARD -i {wan} -j DROP\n\
         COMMIT\n"
    )
}

fn public_ip(index: u32) -> Ipv4Addr {
    // index < MAX_HOSTS + 2 < 254: one /24's worth, in 198.18.0.0/16.
    Ipv4Addr::new(PUBLIC_NET[0], PUBLIC_NET[1], 0, index as u8)
}

/// Keeps names short and to characters `ip` and file names take.
fn sanitize(label: &str) -> String {
    let clean: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(24)
        .collect();
    if clean.is_empty() {
        "host".to_owned()
    } else {
        clean
    }
}

fn open_netns(name: &str) -> io::Result<File> {
    File::open(format!("/run/netns/{name}"))
}

/// Moves the calling thread into the network namespace `file` refers to.
fn enter(file: &File) -> io::Result<()> {
    // SAFETY: a valid open file descriptor; setns changes only this thread.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes a sysctl of the calling thread's network namespace
/// (`key` under /proc/sys/net).
fn sysctl(key: &str, value: &str) -> io::Result<()> {
    fs::write(format!("/proc/sys/net/{key}"), value)
        .map_err(|e| io::Error::new(e.kind(), format!("sysctl net/{key}={value}: {e}")))
}

/// `ip -n NS -batch -` with `commands` on its stdin.
fn ip_batch(ns: &str, commands: &str) -> io::Result<()> {
    run(
        Command::new("ip").args(["-n", ns, "-batch", "-"]),
        Some(commands),
    )
}

/// Runs a command to completion; an error carries its stderr.
fn run(command: &mut Command, stdin: Option<&str>) -> io::Result<()> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let describe = format!("{command:?}");
    let mut child = command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{describe}: {e}")))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        pipe.write_all(input.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{describe} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Waits until each of `ifaces` in `ns` is up and running (operationally
/// up: for a veth, both ends are up).
fn wait_up(ns: &str, ifaces: &[&str]) -> io::Result<()> {
    in_netns(ns, || {
        // SAFETY: plain socket(2); the descriptor is owned right after.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        let start = Instant::now();
        loop {
            let mut down = Vec::new();
            for iface in ifaces {
                if !is_running(&socket, iface)? {
                    down.push(*iface);
                }
            }
            if down.is_empty() {
                return Ok(());
            }
            if start.elapsed() > UP_TIMEOUT {
                return Err(io::Error::other(format!(
                    "netlab: {down:?} in {ns} not up after {UP_TIMEOUT:?}"
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Whether `iface` has IFF_UP and IFF_RUNNING (SIOCGIFFLAGS on `socket`,
/// in the interface's namespace).
fn is_running(socket: &OwnedFd, iface: &str) -> io::Result<bool> {
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if iface.len() >= request.ifr_name.len() {
        return Err(io::Error::other(format!(
            "interface name too long: {iface}"
        )));
    }
    for (to, from) in request.ifr_name.iter_mut().zip(iface.bytes()) {
        *to = from as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the
    // flags, both inside `request`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut request) } < 0 {
        return Err(io::Error::new(
            io::Error::last_os_error().kind(),
            format!("SIOCGIFFLAGS {iface}: {}", io::Error::last_os_error()),
        ));
    }
    // SAFETY: SIOCGIFFLAGS filled in the flags member.
    let flags = libc::c_int::from(unsafe { request.ifr_ifru.ifru_flags });
    let wanted = libc::IFF_UP | libc::IFF_RUNNING;
    Ok(flags & wanted == wanted)
}

/// Runs `f` to completion on a scoped thread inside namespace `name`.
fn in_netns<T: Send>(name: &str, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let file = open_netns(name)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                enter(&file)?;
                f()
            })
            .join()
            .map_err(|_| io::Error::other(format!("netlab: a thread in {name} panicked")))?
    })
}

/// Kills the processes inside each namespace (never this one) and deletes
/// the namespaces; errors are ignored (it runs in Drop).
fn remove_namespaces(names: &[String]) {
    for name in names {
        kill_processes_in(name);
    }
    let commands: String = names.iter().map(|n| format!("netns del {n}\n")).collect();
    let _ = run(
        Command::new("ip").args(["-force", "-batch", "-"]),
        Some(&commands),
    );
}

/// SIGKILLs every process whose network namespace is `/run/netns/NAME`,
/// except this process.
fn kill_processes_in(name: &str) {
    let Ok(ns) = fs::metadata(format!("/run/netns/{name}")) else {
        return;
    };
    let Ok(dir) = fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(theirs) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if theirs.dev() == ns.dev() && theirs.ino() == ns.ino() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Removes namespaces named by this scheme (starting with `base`) whose
/// process is gone (a test run that was killed before its labs were
/// dropped).
fn remove_stale(base: &str) {
    let Ok(dir) = fs::read_dir("/run/netns") else {
        return;
    };
    let me = std::process::id();
    let stale: Vec<String> = dir
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            let Some(rest) = name.strip_prefix(base) else {
                return false;
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let Ok(pid) = digits.parse::<u32>() else {
                return false;
            };
            rest[digits.len()..].starts_with('-')
                && pid != me
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
        .collect();
    if !stale.is_empty() {
        remove_namespaces(&stale);
    }
}
