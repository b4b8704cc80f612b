'use strict'

// W5 (replicate-sparse): a writer with 100,000 x 1 KiB blocks (built untimed,
// served by lib/serve-child.js in its own process); a reader that knows only
// the public key connects over TCP loopback (Noise-encrypted replication
// stream on the socket), learns the length (update), and then fetches 1,000
// distinct random blocks one at a time with `await core.get(i)`.
//
//   * p50_ms / p99_ms: per-block latency of those gets (nearest-rank).
//   * wire_bytes_per_block: bytes read + written on the reader's socket
//     between the first and the last get (so the Noise handshake and the
//     initial sync/length exchange are excluded), divided by the number of
//     gets. Bytes are counted at the TCP socket, i.e. encrypted framing
//     included.

const Corestore = require('corestore')
const {
  scaled,
  log,
  emit,
  now,
  round,
  withTmpDir,
  startServer,
  connectTo,
  distinctRandomIndices,
  percentile
} = require('../lib/common')
const { fillCore } = require('./append')

async function W5() {
  const blocks = scaled(100000)
  const gets = Math.min(blocks, scaled(1000))

  await withTmpDir('w5-writer', async (writerDir) => {
    await withTmpDir('w5-reader', async (readerDir) => {
      log('W5: building writer core ' + blocks + ' x 1024 B (untimed)')
      const { key } = await fillCore(writerDir, { blocks, blockSize: 1024, batchSize: 100 })
      const server = await startServer('core', writerDir)

      const readerStore = new Corestore(readerDir)
      const reader = readerStore.get({ key })
      await reader.ready()

      const socket = await connectTo(server.port, (isInitiator) => readerStore.replicate(isInitiator))
      await reader.update({ wait: true })
      if (reader.length !== blocks) throw new Error('reader saw length ' + reader.length)

      const indices = distinctRandomIndices(gets, blocks)
      const latencies = new Array(gets)

      log('W5: ' + gets + ' random remote gets')
      const bytesBefore = socket.bytesRead + socket.bytesWritten
      for (let i = 0; i < gets; i++) {
        const t = now()
        const block = await reader.get(indices[i])
        latencies[i] = now() - t
        if (block.byteLength !== 1024) throw new Error('bad block length ' + block.byteLength)
      }
      const wireBytes = socket.bytesRead + socket.bytesWritten - bytesBefore

      socket.destroy()
      await reader.close()
      await readerStore.close()
      await server.stop()

      latencies.sort((a, b) => a - b)
      emit('W5', {
        blocks,
        gets,
        p50_ms: round(percentile(latencies, 50), 4),
        p99_ms: round(percentile(latencies, 99), 4),
        wire_bytes_per_block: round(wireBytes / gets, 1)
      })
    })
  })
}

module.exports = { W5 }
