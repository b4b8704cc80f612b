'use strict'

// W7 (drive): a hyperdrive on a corestore on disk.
//   * write 1,000 files of 64 KiB (random bytes) at /dir{i%10}/file{i}.bin,
//     one `await drive.put(path, buf)` each      => write_files_per_sec, write_mb_per_sec
//   * read every file back (await drive.get(path)) => read_mb_per_sec
//   * list the drive recursively (drive.list('/', { recursive: true }))
//                                                  => list_entries_per_sec (extra field)
//   * replicate to an empty drive (fresh store, knows only the drive key) over
//     TCP loopback: the writer drive is served by lib/serve-child.js in its own
//     process; the reader connects, waits for the drive's length and runs
//     drive.download('/').done() (all entries and all blobs), timed from just
//     before net.connect()                         => replicate_mb_per_sec
//     (MB = file bytes, 1,000 x 64 KiB; then every file is checked locally).

const Corestore = require('corestore')
const Hyperdrive = require('hyperdrive')
const {
  MB,
  scaled,
  log,
  emit,
  now,
  round,
  withTmpDir,
  randomBlocks,
  startServer,
  connectTo
} = require('../lib/common')

const FILE_SIZE = 65536

function filePath(i) {
  return '/dir' + (i % 10) + '/file' + i + '.bin'
}

async function W7() {
  const files = scaled(1000)
  const totalBytes = files * FILE_SIZE

  await withTmpDir('w7-writer', async (writerDir) => {
    await withTmpDir('w7-reader', async (readerDir) => {
      const data = randomBlocks(files, FILE_SIZE)

      const store = new Corestore(writerDir)
      const drive = new Hyperdrive(store)
      await drive.ready()

      log('W7: writing ' + files + ' files')
      const writeStart = now()
      for (let i = 0; i < files; i++) await drive.put(filePath(i), data[i])
      const writeSeconds = (now() - writeStart) / 1000

      log('W7: reading')
      let readBytes = 0
      const readStart = now()
      for (let i = 0; i < files; i++) {
        const buf = await drive.get(filePath(i))
        readBytes += buf.byteLength
      }
      const readSeconds = (now() - readStart) / 1000
      if (readBytes !== totalBytes) throw new Error('read ' + readBytes + ' bytes, expected ' + totalBytes)

      log('W7: listing')
      let listed = 0
      const listStart = now()
      for await (const entry of drive.list('/', { recursive: true })) {
        if (entry.value.blob) listed++
      }
      const listSeconds = (now() - listStart) / 1000
      if (listed !== files) throw new Error('listed ' + listed + ' files, expected ' + files)

      const key = drive.key
      await drive.close()
      await store.close()

      log('W7: replicating')
      const server = await startServer('drive', writerDir)
      const readerStore = new Corestore(readerDir)
      const mirror = new Hyperdrive(readerStore, key)
      await mirror.ready()

      const replStart = now()
      const socket = await connectTo(server.port, (isInitiator) => readerStore.replicate(isInitiator))
      await mirror.core.update({ wait: true })
      await mirror.download('/').done()
      const replSeconds = (now() - replStart) / 1000

      // Check (untimed) that everything really is local now.
      socket.destroy()
      for (let i = 0; i < files; i++) {
        const buf = await mirror.get(filePath(i), { wait: false })
        if (buf === null || !buf.equals(data[i])) throw new Error('file ' + i + ' missing or wrong after replication')
      }

      await mirror.close()
      await readerStore.close()
      await server.stop()

      emit('W7', {
        files,
        file_size: FILE_SIZE,
        write_files_per_sec: round(files / writeSeconds, 1),
        write_mb_per_sec: round(totalBytes / MB / writeSeconds, 3),
        read_mb_per_sec: round(totalBytes / MB / readSeconds, 3),
        list_entries_per_sec: round(listed / listSeconds, 1),
        replicate_mb_per_sec: round(totalBytes / MB / replSeconds, 3)
      })
    })
  })
}

module.exports = { W7 }
