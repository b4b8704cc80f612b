'use strict'

// W4 (replicate-full): a writer core (built untimed) is downloaded in full by
// a reader that knows only its public key, with a fresh store in another temp
// folder, over one TCP loopback connection (node `net`). The writer is served
// by lib/serve-child.js in its own node process; the reader runs here. The replication
// stream returned by store.replicate(isInitiator) is a Noise secret stream
// piped onto the socket, so the bytes on the wire are encrypted.
//
// Timed: from just before net.connect() to every block being present locally
// (update to learn the length, then download({ start: 0, end: length }).done()).
// Two configurations: 100,000 x 1 KiB (the W1 core) and 2,000 x 64 KiB (W2's).

const Corestore = require('corestore')
const { MB, scaled, log, emit, now, round, withTmpDir, startServer, connectTo } = require('../lib/common')
const { fillCore } = require('./append')

async function replicateFull(blockSize, blocksFull, batchSize) {
  const blocks = scaled(blocksFull)

  await withTmpDir('w4-writer', async (writerDir) => {
    await withTmpDir('w4-reader', async (readerDir) => {
      log('W4: building writer core ' + blocks + ' x ' + blockSize + ' B (untimed)')
      const { key } = await fillCore(writerDir, { blocks, blockSize, batchSize })

      const server = await startServer('core', writerDir)

      const readerStore = new Corestore(readerDir)
      const reader = readerStore.get({ key })
      await reader.ready()

      log('W4: downloading')
      const start = now()
      const socket = await connectTo(server.port, (isInitiator) => readerStore.replicate(isInitiator))
      await reader.update({ wait: true })
      log('W4: length known after ' + round(now() - start, 1) + ' ms')
      const length = reader.length
      await reader.download({ start: 0, end: length }).done()
      const seconds = (now() - start) / 1000

      if (length !== blocks) throw new Error('reader saw length ' + length + ', expected ' + blocks)
      if (reader.contiguousLength !== blocks) {
        throw new Error('reader has ' + reader.contiguousLength + ' contiguous blocks, expected ' + blocks)
      }
      const wireBytes = socket.bytesRead + socket.bytesWritten

      socket.destroy()
      await reader.close()
      await readerStore.close()
      await server.stop()

      emit('W4', {
        block_size: blockSize,
        blocks,
        mb_per_sec: round((blocks * blockSize) / MB / seconds, 3),
        seconds: round(seconds, 4),
        wire_bytes: wireBytes
      })
    })
  })
}

async function W4() {
  await replicateFull(1024, 100000, 100)
  await replicateFull(65536, 2000, 16)
}

module.exports = { W4 }
