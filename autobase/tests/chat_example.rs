//! The chat example (`examples/chat.rs`), built and run as real processes:
//! on loopback TCP, a room is created, two members join and are added,
//! everyone writes, and every screen shows the same messages in the same
//! order; through the swarm (local-network discovery, no address given),
//! two members find each other by the room key and chat.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// How long the test waits for any one screen.
const PATIENCE: Duration = Duration::from_secs(90);

/// Builds the example and returns its path.
fn example() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "hyper-autobase", "--example", "chat"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building the chat example failed");
    // This test runs from target/<profile>/deps; the example is built into
    // target/<profile>/examples.
    let exe = std::env::current_exe().expect("test path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    profile.join("examples").join("chat")
}

/// One chat process: its stdin and the lines it printed so far.
struct Member {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Member {
    /// A member on TCP only (`--no-swarm`).
    fn start(exe: &Path, store: &Path, args: &[&str]) -> Member {
        let mut all = vec!["--no-swarm"];
        all.extend_from_slice(args);
        Member::start_with(exe, store, &all)
    }

    fn start_with(exe: &Path, store: &Path, args: &[&str]) -> Member {
        let mut child = Command::new(exe)
            .arg("--store")
            .arg(store)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the chat example");
        let stdout = child.stdout.take().expect("stdout");
        let (send, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Member {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix`; the rest of it.
    fn field(&mut self, prefix: &str) -> String {
        self.wait(|seen| seen.iter().any(|l| l.starts_with(prefix)));
        self.seen
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|s| s.trim().to_string())
            .expect("waited for it")
    }

    /// Reads lines until `done` holds of everything printed.
    fn wait(&mut self, done: impl Fn(&[String]) -> bool) {
        let started = Instant::now();
        while !done(&self.seen) {
            let left = PATIENCE.saturating_sub(started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(e) => panic!("{e} after {:?}; printed {:?}", started.elapsed(), self.seen),
            }
        }
    }

    fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the chat");
        stdin.flush().expect("flush");
    }

    /// The messages on its screen (`NAME: TEXT` lines).
    fn messages(&self) -> Vec<String> {
        self.seen
            .iter()
            .filter(|l| l.get(8..10) == Some(": "))
            .cloned()
            .collect()
    }
}

#[test]
fn three_members_chat_and_see_one_order() {
    let exe = example();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Member::start(
        &exe,
        &dir.path().join("alice"),
        &["--listen", "127.0.0.1:0", "create"],
    );
    let room = alice.field("room ");
    let addr = alice.field("listening on ");
    let alice_key = alice.field("writer ");
    assert_eq!(alice_key, room, "the creator's writer key is the room key");
    let mut bob = Member::start(
        &exe,
        &dir.path().join("bob"),
        &["--connect", &addr, "join", &room],
    );
    let mut carol = Member::start(
        &exe,
        &dir.path().join("carol"),
        &["--connect", &addr, "join", &room],
    );
    let bob_key = bob.field("writer ");
    let carol_key = carol.field("writer ");
    alice.say(&format!("/add {bob_key}"));
    alice.say(&format!("/add {carol_key}"));
    alice.say("hello from alice");
    // Once a member shows alice's message, it knows it was added before.
    let has = |text: &'static str| move |seen: &[String]| seen.iter().any(|l| l.ends_with(text));
    bob.wait(has("hello from alice"));
    carol.wait(has("hello from alice"));
    bob.say("hi from bob");
    carol.say("hey from carol");
    carol.say("and again from carol");
    let three = |seen: &[String]| {
        ["hi from bob", "hey from carol", "and again from carol"]
            .iter()
            .all(|t| seen.iter().any(|l| l.ends_with(t)))
    };
    for member in [&mut alice, &mut bob, &mut carol] {
        member.wait(three);
    }
    let screens = [alice.messages(), bob.messages(), carol.messages()];
    assert_eq!(screens[0].len(), 4, "{:?}", screens[0]);
    assert_eq!(screens[0][0], format!("{}: hello from alice", &room[..8]));
    assert!(
        screens[0].contains(&format!("{}: hi from bob", &bob_key[..8])),
        "{:?}",
        screens[0]
    );
    // Carol's two lines keep her order; the screens agree line for line.
    let pos = |t: &str| screens[0].iter().position(|l| l.ends_with(t));
    assert!(pos("hey from carol") < pos("and again from carol"));
    assert_eq!(screens[1], screens[0]);
    assert_eq!(screens[2], screens[0]);
    // Bob becomes an indexer: from then on a message is final only once
    // alice and bob (two of two) both saw it, and the room goes on.
    alice.say(&format!("/indexer {bob_key}"));
    alice.say("bob indexes too");
    bob.wait(has("bob indexes too"));
    bob.say("as an indexer");
    for member in [&mut alice, &mut bob, &mut carol] {
        member.wait(has("as an indexer"));
    }
    // A member who was never added writes nothing anyone shows.
    let mut eve = Member::start(
        &exe,
        &dir.path().join("eve"),
        &["--connect", &addr, "join", &room],
    );
    eve.field("writer ");
    eve.wait(three);
    eve.say("spam from eve");
    alice.say("bye from alice");
    for member in [&mut alice, &mut bob, &mut carol, &mut eve] {
        member.wait(has("bye from alice"));
        assert!(
            !member.seen.iter().any(|l| l.contains("spam from eve")),
            "{:?}",
            member.seen
        );
    }
}

#[test]
fn two_members_find_each_other_through_the_swarm() {
    let exe = example();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut alice = Member::start_with(&exe, &dir.path().join("alice"), &["create"]);
    let room = alice.field("room ");
    let mut bob = Member::start_with(&exe, &dir.path().join("bob"), &["join", &room]);
    // Bob printing his writer key means the room's first block reached him.
    let bob_key = bob.field("writer ");
    alice.say(&format!("/add {bob_key}"));
    alice.say("over the swarm");
    bob.wait(|seen| seen.iter().any(|l| l.ends_with("over the swarm")));
    bob.say("found you");
    for member in [&mut alice, &mut bob] {
        member.wait(|seen| seen.iter().any(|l| l.ends_with("found you")));
    }
    assert_eq!(
        alice.messages(),
        [
            format!("{}: over the swarm", &room[..8]),
            format!("{}: found you", &bob_key[..8])
        ]
    );
    assert_eq!(bob.messages(), alice.messages());
}
