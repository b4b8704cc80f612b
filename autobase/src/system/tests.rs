use super::*;
use proptest::prelude::*;

fn key(b: u8) -> CoreKey {
    CoreKey([b; 32])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One indexer with three indexed nodes, one view.
fn small() -> SystemEntry {
    SystemEntry {
        frontier: Frontier {
            batches: 3,
            committed_round: Some(2),
            writers: vec![FrontierWriter {
                key: key(1),
                length: 3,
                causal: Some(Causal {
                    depth: 2,
                    epoch: 0,
                    round: Some(2),
                    round_set: 1,
                }),
            }],
            epochs: Vec::new(),
        },
        members: vec![Member {
            key: key(1),
            indexer: true,
            removed: false,
            pending: false,
            leaving: false,
        }],
        views: vec![ViewState {
            name: "log".to_string(),
            length: 2,
            tree_hash: [7; 32],
        }],
        signers: Vec::new(),
    }
}

#[test]
fn an_entry_after_the_indexers_changed_round_trips_and_mismatches_are_refused() {
    use crate::node::writer_key_of;
    use hyper_core::PublicKey;
    let (s1, s2) = (PublicKey([21; 32]), PublicKey([22; 32]));
    let mut keyed = [(writer_key_of(&s1), s1), (writer_key_of(&s2), s2)];
    keyed.sort();
    let mut entry = small();
    // Key 1 stays the first indexer's writer; the new set is the two
    // writers derived from s1 and s2.
    for (k, _) in keyed {
        entry.frontier.writers.push(FrontierWriter {
            key: k,
            length: 0,
            causal: None,
        });
        entry.members.push(Member {
            key: k,
            indexer: true,
            removed: false,
            pending: false,
            leaving: false,
        });
    }
    entry.frontier.writers.sort_by_key(|w| w.key);
    entry.members.sort_by_key(|m| m.key);
    if let Some(first) = entry.members.iter_mut().find(|m| m.key == key(1)) {
        first.indexer = false;
    }
    entry.frontier.committed_round = None;
    entry.frontier.epochs = vec![keyed.iter().map(|(k, _)| *k).collect()];
    entry.signers = vec![keyed.iter().map(|(_, s)| *s).collect()];
    assert_eq!(SystemEntry::decode(&entry.encode()).expect("valid"), entry);

    let mut swapped = entry.clone();
    if let Some(set) = swapped.signers.first_mut() {
        set.reverse();
    }
    assert!(
        SystemEntry::decode(&swapped.encode()).is_err(),
        "keys in the wrong order"
    );
    let mut short = entry.clone();
    short.signers.clear();
    assert!(
        SystemEntry::decode(&short.encode()).is_err(),
        "keys missing"
    );
    let mut flags = entry.clone();
    if let Some(first) = flags.members.iter_mut().find(|m| m.key == key(1)) {
        first.indexer = true;
    }
    assert!(
        SystemEntry::decode(&flags.encode()).is_err(),
        "an indexer flag the set does not name"
    );
    let mut unrounded = entry;
    unrounded.frontier.epochs.clear();
    unrounded.signers.clear();
    assert!(
        SystemEntry::decode(&unrounded.encode()).is_err(),
        "no round in epoch 0"
    );
}

#[test]
fn snapshot() {
    let entry = small();
    assert_eq!(
        hex(&entry.encode()),
        // batches 3, committed round 2
        "0803".to_string()
            + "1002"
            // a frontier writer: key, length 3, causal (depth 2, round 2,
            // round set 1 as fixed64)
            + "1a33"
            + "0a20"
            + &"01".repeat(32)
            + "1003"
            + "1a0d"
            + "0802"
            + "1002"
            + "190100000000000000"
            // a member: key, indexer (removed false is not written)
            + "2224"
            + "0a20"
            + &"01".repeat(32)
            + "1001"
            // a view: name "log", length 2, tree hash
            + "2a29"
            + "0a03"
            + &hex(b"log")
            + "1002"
            + "1a20"
            + &"07".repeat(32)
    );
    assert_eq!(SystemEntry::decode(&entry.encode()).ok(), Some(entry));
}

#[test]
fn refuses_bad_entries() {
    let raw = |f: &dyn Fn(&mut RawSystemEntry)| {
        let mut r = RawSystemEntry::decode(small().encode().as_slice()).expect("decodes");
        f(&mut r);
        r.encode_to_vec()
    };
    let member = |k: u8, indexer, removed| RawMember {
        key: vec![k; 32],
        indexer,
        removed,
        pending: false,
        leaving: false,
    };
    let writer = |k: u8, length, causal: Option<RawCausal>| RawFrontierWriter {
        key: vec![k; 32],
        length,
        causal,
    };
    let facts = || {
        Some(RawCausal::from(Causal {
            depth: 1,
            round: None,
            round_set: 0,
            epoch: 0,
        }))
    };
    let view = |name: &str, hash_len| RawViewState {
        name: name.to_string(),
        length: 0,
        tree_hash: vec![0; hash_len],
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xff, 0xff], "system entry does not decode"),
        (
            raw(&|r| r.committed_round = None),
            "a system entry has no committed round",
        ),
        (
            raw(&|r| r.batches = 0),
            "a system entry's batch count is 0 or more than its writers' nodes",
        ),
        (
            raw(&|r| r.batches = 4),
            "a system entry's batch count is 0 or more than its writers' nodes",
        ),
        (
            raw(&|r| r.writers.push(writer(0, 1, facts()))),
            "frontier writers are not sorted and distinct",
        ),
        (
            raw(&|r| r.writers.push(writer(1, 1, facts()))),
            "frontier writers are not sorted and distinct",
        ),
        (
            raw(&|r| r.writers.push(writer(2, 1, None))),
            "a frontier writer has facts exactly when its length is not 0",
        ),
        (
            raw(&|r| r.writers.push(writer(2, 0, facts()))),
            "a frontier writer has facts exactly when its length is not 0",
        ),
        (
            raw(&|r| {
                r.writers.push(writer(
                    2,
                    1,
                    Some(RawCausal::from(Causal {
                        depth: 1,
                        round: None,
                        round_set: 1,
                        epoch: 0,
                    })),
                ))
            }),
            "causal round and round set disagree (one is empty)",
        ),
        (
            raw(&|r| r.writers.push(writer(2, 0, None))),
            "a frontier writer with no indexed node is not a member",
        ),
        (
            raw(&|r| {
                if let Some(w) = r.writers.first_mut() {
                    w.key = vec![1; 31];
                }
            }),
            "frontier writer key is not 32 bytes",
        ),
        (
            raw(&|r| r.members = vec![member(1, false, false)]),
            "a system entry names no indexer",
        ),
        (
            raw(&|r| {
                r.members = vec![RawMember {
                    pending: true,
                    ..member(1, true, false)
                }]
            }),
            "a pending indexer is marked an indexer or removed",
        ),
        (
            raw(&|r| r.members.push(member(1, false, false))),
            "members are not sorted and distinct",
        ),
        (
            raw(&|r| r.members.insert(0, member(0, false, false))),
            "a member is not a frontier writer",
        ),
        (
            raw(&|r| r.members.push(member(2, false, false).with_key_len(33))),
            "member key is not 32 bytes",
        ),
        (
            raw(&|r| r.views.push(view("a", 32))),
            "views are not sorted by name and distinct",
        ),
        (
            raw(&|r| r.views.push(view("log", 32))),
            "views are not sorted by name and distinct",
        ),
        (
            raw(&|r| r.views.push(view("z", 31))),
            "view tree hash is not 32 bytes",
        ),
    ];
    for (bytes, why) in cases {
        match SystemEntry::decode(&bytes) {
            Err(Error::Malformed(m)) => assert_eq!(m, why),
            other => panic!("expected Malformed({why}), got {other:?}"),
        }
    }
    // Removed members and members with no indexed node are fine.
    let ok = raw(&|r| {
        r.writers.push(writer(2, 0, None));
        r.members.push(member(2, false, true));
    });
    assert!(SystemEntry::decode(&ok).is_ok());
}

impl RawMember {
    fn with_key_len(mut self, n: usize) -> Self {
        self.key = vec![2; n];
        self
    }
}

fn arb_causal() -> impl Strategy<Value = Causal> {
    (
        1u64..u64::MAX,
        prop::option::of(any::<u64>()),
        1u64..u64::MAX,
    )
        .prop_map(|(depth, round, set)| Causal {
            depth,
            epoch: 0,
            round,
            round_set: if round.is_some() { set } else { 0 },
        })
}

fn arb_entry() -> impl Strategy<Value = SystemEntry> {
    (
        prop::collection::btree_map(any::<u8>(), (0u64..1000, arb_causal(), 0u8..4), 1..8),
        any::<u64>(),
        any::<u64>(),
        prop::collection::btree_map("[a-z]{0,6}", (any::<u64>(), any::<[u8; 32]>()), 0..4),
    )
        .prop_map(|(writers, batches, round, views)| {
            let mut frontier_writers = Vec::new();
            let mut members = Vec::new();
            for (i, (k, (length, causal, role))) in writers.into_iter().enumerate() {
                // The first is an indexer; a writer of length 0 a member.
                let length = if i == 0 { length.max(1) } else { length };
                let role = match (i, role, length) {
                    (0, _, _) => 1,
                    (_, 0, 0) => 2,
                    _ => role,
                };
                frontier_writers.push(FrontierWriter {
                    key: key(k),
                    length,
                    causal: (length > 0).then_some(causal),
                });
                if role > 0 {
                    members.push(Member {
                        key: key(k),
                        indexer: role == 1,
                        removed: role == 3,
                        pending: false,
                        leaving: false,
                    });
                }
            }
            let nodes: u64 = frontier_writers.iter().map(|w| w.length).sum();
            SystemEntry {
                frontier: Frontier {
                    batches: 1 + batches % nodes,
                    committed_round: Some(round),
                    writers: frontier_writers,
                    epochs: Vec::new(),
                },
                members,
                views: views
                    .into_iter()
                    .map(|(name, (length, tree_hash))| ViewState {
                        name,
                        length,
                        tree_hash,
                    })
                    .collect(),
                signers: Vec::new(),
            }
        })
}

proptest! {
    #[test]
    fn round_trip(entry in arb_entry()) {
        prop_assert!(entry.validate().is_ok());
        prop_assert_eq!(SystemEntry::decode(&entry.encode()).ok(), Some(entry));
    }

    #[test]
    fn random_and_mutated_bytes_never_panic(
        entry in arb_entry(),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = SystemEntry::decode(&junk);
        let mut bytes = entry.encode();
        for (at, b) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                if let Some(x) = bytes.get_mut(i) { *x ^= b; }
            }
        }
        if let Ok(e) = SystemEntry::decode(&bytes) {
            // Whatever decodes is valid and canonical.
            prop_assert!(e.validate().is_ok());
            prop_assert_eq!(SystemEntry::decode(&e.encode()).ok(), Some(e));
        }
    }
}
