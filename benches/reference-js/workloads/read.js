'use strict'

// W3 (read): build the W1 core (untimed: 100,000 x 1 KiB in batches of 100),
// close it, then time
//   * open: from `new Corestore(dir)` to `await core.ready()` => open_ms
//   * 100,000 random gets, one at a time (await core.get(i)) => random_gets_per_sec
//   * a sequential read of every block, one at a time in index order => seq_get_mb_per_sec
// The OS page cache is warm (the data was just written); nothing is dropped.

const Corestore = require('corestore')
const { MB, scaled, log, emit, now, round, withTmpDir, randomIndex } = require('../lib/common')
const { fillCore } = require('./append')

const BLOCK_SIZE = 1024

async function W3() {
  const blocks = scaled(100000)
  const gets = scaled(100000)

  await withTmpDir('w3', async (dir) => {
    log('W3: building the W1 core (' + blocks + ' blocks, untimed)')
    await fillCore(dir, { blocks, blockSize: BLOCK_SIZE, batchSize: 100 })

    const indices = new Array(gets)
    for (let i = 0; i < gets; i++) indices[i] = randomIndex(blocks)

    const openStart = now()
    const store = new Corestore(dir)
    const core = store.get({ name: 'bench' })
    await core.ready()
    const openMs = now() - openStart
    if (core.length !== blocks) throw new Error('reopened length ' + core.length + ' != ' + blocks)

    log('W3: ' + gets + ' random gets')
    let checksum = 0
    const randStart = now()
    for (let i = 0; i < gets; i++) {
      const block = await core.get(indices[i])
      checksum += block[0]
    }
    const randSeconds = (now() - randStart) / 1000

    log('W3: sequential read')
    let bytes = 0
    const seqStart = now()
    for (let i = 0; i < blocks; i++) {
      const block = await core.get(i)
      bytes += block.byteLength
    }
    const seqSeconds = (now() - seqStart) / 1000
    if (bytes !== blocks * BLOCK_SIZE) throw new Error('sequential read returned ' + bytes + ' bytes')

    await core.close()
    await store.close()
    log('W3: checksum ' + checksum)

    emit('W3', {
      blocks,
      random_gets: gets,
      open_ms: round(openMs, 3),
      random_gets_per_sec: round(gets / randSeconds, 1),
      seq_get_mb_per_sec: round(bytes / MB / seqSeconds, 3)
    })
  })
}

module.exports = { W3 }
