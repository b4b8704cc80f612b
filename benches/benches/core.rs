//! Criterion micro-benchmarks of hyper-core: hashing, append, get, proofs.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use hyper_core::{
    Durability, Node, NodeRequest, ProofRequest, SignedState, Store, StoreOptions, UpgradeRequest,
    Verifier,
};
use rand::{Rng, RngCore, SeedableRng};

fn random_blocks(n: usize, size: usize) -> Vec<Vec<u8>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    (0..n)
        .map(|_| {
            let mut b = vec![0u8; size];
            rng.fill_bytes(&mut b);
            b
        })
        .collect()
}

fn store(durability: Durability) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(
        dir.path(),
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )
    .expect("open");
    (dir, store)
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("leaf_hash");
    for size in [1024usize, 65536] {
        let block = random_blocks(1, size).remove(0);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("{size}"), |b| {
            b.iter(|| Node::leaf(0, black_box(&block)))
        });
    }
    g.finish();
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(20);
    for (size, batch) in [(1024usize, 100usize), (65536, 16)] {
        let blocks = random_blocks(batch, size);
        g.throughput(Throughput::Bytes((size * batch) as u64));
        for durability in [Durability::Eventual, Durability::Immediate] {
            let (_dir, store) = store(durability);
            let core = store.named("bench").expect("core");
            g.bench_function(format!("{size}x{batch}/{durability:?}"), |b| {
                b.iter(|| core.append_batch(&blocks).expect("append"))
            });
        }
    }
    g.finish();
}

fn get(c: &mut Criterion) {
    let (_dir, store) = store(Durability::Eventual);
    let core = store.named("bench").expect("core");
    for chunk in random_blocks(10_000, 1024).chunks(100) {
        core.append_batch(chunk).expect("append");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    c.bench_function("random_get_1k_of_10k", |b| {
        b.iter(|| core.get(rng.random_range(0..10_000)).expect("get"))
    });
}

fn proofs(c: &mut Criterion) {
    let (_dir, store) = store(Durability::Eventual);
    let core = store.named("bench").expect("core");
    for chunk in random_blocks(10_000, 1024).chunks(100) {
        core.append_batch(chunk).expect("append");
    }
    let request = ProofRequest {
        block: Some(NodeRequest {
            index: 4321,
            nodes: u64::MAX,
        }),
        upgrade: Some(UpgradeRequest { start: 0, fork: 0 }),
        manifest: true,
        ..Default::default()
    };
    c.bench_function("proof_build_block_and_upgrade", |b| {
        b.iter(|| core.proof(black_box(&request)).expect("proof"))
    });
    let proof = core.proof(&request).expect("proof");
    c.bench_function("proof_verify_block_and_upgrade", |b| {
        b.iter_batched(
            || Verifier::new(core.key(), None, SignedState::empty(), NoNodes),
            |mut v| v.verify(black_box(&proof)).expect("verify"),
            BatchSize::SmallInput,
        )
    });
}

struct NoNodes;

impl hyper_core::NodeSource for NoNodes {
    fn node(&self, _: u64) -> hyper_core::Result<Option<Node>> {
        Ok(None)
    }
}

criterion_group!(benches, hashing, append, get, proofs);
criterion_main!(benches);
