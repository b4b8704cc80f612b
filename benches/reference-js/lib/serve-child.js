'use strict'

// The writer side of the replication workloads (W4, W5, W7), run in its own
// node process so that writer and reader each have their own event loop, as
// two peers would.
//
//   node lib/serve-child.js core  <storage-dir>   # serves the named core 'bench'
//   node lib/serve-child.js drive <storage-dir>   # serves the hyperdrive (db + blobs)
//
// Opens the store, listens on 127.0.0.1 (random port), replicates every
// incoming TCP connection with store.replicate(false) (Noise-encrypted), and
// reports {"port":N} as one JSON line on its stdout, which is a pipe read by
// the parent (never the benchmark's stdout). Exits when its stdin closes.

const net = require('net')
const Corestore = require('corestore')
const Hyperdrive = require('hyperdrive')

async function main() {
  const [kind, dir] = process.argv.slice(2)
  const store = new Corestore(dir)
  const closers = []

  if (kind === 'core') {
    const core = store.get({ name: 'bench' })
    await core.ready()
    closers.push(() => core.close())
  } else if (kind === 'drive') {
    const drive = new Hyperdrive(store)
    await drive.ready()
    await drive.getBlobs()
    closers.push(() => drive.close())
  } else {
    throw new Error('unknown kind ' + kind)
  }

  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.setNoDelay(true)
    socket.on('error', () => {})
    const stream = store.replicate(false)
    stream.on('error', () => {})
    socket.pipe(stream).pipe(socket)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n')

  let stopping = false
  const shutdown = async () => {
    if (stopping) return
    stopping = true
    for (const s of sockets) s.destroy()
    server.close()
    for (const close of closers) await close()
    await store.close()
    process.exit(0)
  }
  process.stdin.on('end', shutdown)
  process.stdin.on('close', shutdown)
  process.stdin.resume()
}

main().catch((err) => {
  console.error('[reference-js] serve-child failed:', err && err.stack ? err.stack : err)
  process.exit(1)
})
