//! Seeds a core and clones it over TCP on loopback, in one process with two
//! stores, and prints what moved and how fast.
//!
//! `cargo run --release -p hyper-wire --example loopback [BLOCKS] [BLOCK_SIZE]`
//! (default 100,000 blocks of 1,024 bytes).

use std::time::Instant;

use hyper_core::{Durability, KeyPair, Store, StoreOptions};
use hyper_wire::{
    DownloadRange, Replication, ReplicationOptions, connect_tcp, listen_tcp, serve_tcp,
};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn open(dir: &std::path::Path) -> Result<Store, AnyError> {
    Ok(Store::open_with(
        dir,
        StoreOptions {
            durability: Durability::Eventual,
            ..Default::default()
        },
    )?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), AnyError> {
    let mut args = std::env::args().skip(1);
    let blocks: u64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let size: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let dir = tempfile::tempdir()?;

    let seeder_store = open(&dir.path().join("seeder"))?;
    let core = seeder_store.create_core()?;
    let started = Instant::now();
    let block = vec![0x5a; size];
    let batch: Vec<&[u8]> = vec![&block; 1000];
    let mut left = blocks;
    while left > 0 {
        let n = left.min(1000) as usize;
        core.append_batch(&batch[..n])?;
        left -= n as u64;
    }
    println!(
        "seeder: wrote {blocks} blocks of {size} bytes in {:.2} s; key {}",
        started.elapsed().as_secs_f64(),
        core.key()
    );

    let seeder = Replication::new(
        seeder_store,
        KeyPair::generate()?,
        ReplicationOptions::default(),
    );
    seeder.add_core(&core);
    let (listener, addr) = listen_tcp("127.0.0.1:0").await?;
    let _server = serve_tcp(&seeder, listener);
    println!("seeder: listening on {addr}");

    let cloner_store = open(&dir.path().join("cloner"))?;
    let replica = cloner_store.replica(&core.key())?;
    let cloner = Replication::new(
        cloner_store,
        KeyPair::generate()?,
        ReplicationOptions::default(),
    );
    let started = Instant::now();
    let connection = connect_tcp(&cloner, addr).await?;
    cloner.download(&replica, DownloadRange::all()).await?;
    let seconds = started.elapsed().as_secs_f64();
    let info = replica.info()?;
    let mb = info.bytes_stored as f64 / 1e6;
    println!(
        "cloner: {} blocks, {:.1} MB verified and stored in {seconds:.2} s ({:.1} MB/s, {:.0} blocks/s) from peer {}",
        info.blocks_stored,
        mb,
        mb / seconds,
        info.blocks_stored as f64 / seconds,
        connection.remote_identity()
    );
    if info.blocks_stored != blocks || info.contiguous_length != blocks {
        return Err(format!("cloned {} of {blocks} blocks", info.blocks_stored).into());
    }
    for i in [0, blocks / 2, blocks - 1] {
        if replica.get(i)? != core.get(i)? {
            return Err(format!("block {i} differs").into());
        }
    }
    Ok(())
}
