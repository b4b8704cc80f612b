'use strict'

// W1 (append-small) and W2 (append-large): one core on disk, random blocks
// appended in batches with core.append(arrayOfBuffers).
//
// DURABILITY: "eventual" -- the appends are NOT fsynced per batch.
// How this was determined (hypercore 11.37.1 / hypercore-storage 3.3.1 /
// rocksdb-native 3.18.1):
//   1. Source: core.append() ends in a hypercore-storage write batch that is
//      flushed with rocksdb-native's WriteBatch._flush(), which calls
//      binding.write(handle, batch, ops, ...). binding.cc passes `nullptr` as
//      the write options to librocksdb's rocksdb_write(), and librocksdb then
//      runs `WriteOptions options; db->Write(options, &batch)` -- a default
//      RocksDB WriteOptions, whose `sync` field is false. The batch is appended
//      to the RocksDB write-ahead log with write(2) (OS page cache) and the
//      promise resolves without waiting for the disk. No layer above
//      (hypercore, corestore, hypercore-storage) calls fsync either.
//   2. Measurement: running W1 under `strace -f -c -e trace=fsync,fdatasync,
//      sync_file_range,msync,sync,syncfs` shows (see README.md) no
//      fsync/fdatasync per append batch: a handful of fsync/fdatasync calls in
//      total for the whole run (database open/close, RocksDB manifest and
//      memtable-flush / SST files), against 1,000 append batches.
// So an append that has resolved survives a process crash (it is in the OS
// page cache / WAL file) but not necessarily a power loss or kernel crash.

const Corestore = require('corestore')
const { MB, scaled, log, emit, now, round, withTmpDir, dirSize, randomBlocks } = require('../lib/common')

const DURABILITY = 'eventual'

// Appends `blocks` random blocks of `blockSize` bytes in batches of
// `batchSize` to a fresh named core in `dir`. Returns the timing and closes
// the store. Used by W1/W2 and (untimed) as the setup of W3..W5.
async function fillCore(dir, { blocks, blockSize, batchSize, name = 'bench' }) {
  const data = randomBlocks(blocks, blockSize)

  const store = new Corestore(dir)
  const core = store.get({ name })
  await core.ready()

  const start = now()
  for (let i = 0; i < blocks; i += batchSize) {
    await core.append(data.slice(i, Math.min(blocks, i + batchSize)))
  }
  const seconds = (now() - start) / 1000

  if (core.length !== blocks) throw new Error('expected length ' + blocks + ', got ' + core.length)
  const key = core.key
  await core.close()
  await store.close()
  return { seconds, key }
}

async function appendWorkload(workload, blockSizeFull, blocksFull, batchSize) {
  const blocks = scaled(blocksFull)
  await withTmpDir(workload.toLowerCase(), async (dir) => {
    log(workload + ': appending ' + blocks + ' x ' + blockSizeFull + ' B in batches of ' + batchSize)
    const { seconds } = await fillCore(dir, { blocks, blockSize: blockSizeFull, batchSize })
    emit(workload, {
      durability: DURABILITY,
      block_size: blockSizeFull,
      blocks,
      batch_size: batchSize,
      blocks_per_sec: round(blocks / seconds, 1),
      mb_per_sec: round((blocks * blockSizeFull) / MB / seconds, 3),
      disk_bytes: dirSize(dir)
    })
  })
}

module.exports = {
  DURABILITY,
  fillCore,
  W1: () => appendWorkload('W1', 1024, 100000, 100),
  W2: () => appendWorkload('W2', 65536, 2000, 16)
}
