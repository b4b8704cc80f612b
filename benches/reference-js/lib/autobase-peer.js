'use strict'

// One autobase writer for W8, run in its own node process by
// workloads/autobase.js. Talks to the parent with JSON lines: commands on
// stdin, events on stdout (a pipe read by the parent, never the benchmark's
// stdout). Diagnostics go to stderr.
//
//   node lib/autobase-peer.js <index> <storage-dir> [<bootstrap key hex>]
//
// events:   {type:'ready', key, localKey, port}   after open + listen
//           {type:'connected'}                    after 'connect'
//           {type:'added'}                        after 'add' (peer 0 only)
//           {type:'writable'}                     once this peer may append
//           {type:'progress', appended, viewLength} every 5 s after 'go'
//           {type:'appended'}                     after its own ops are appended
//           {type:'view', length, hash, signed}   whenever the view length
//                                                 reaches the target, or its
//                                                 hash or signed length (the
//                                                 view core's signedLength)
//                                                 changes after that
//           {type:'disconnected'}                 after 'disconnect'
// commands: {cmd:'connect', ports:[...]}  dial these peers (TCP loopback)
//           {cmd:'add', keys:[hex,...]}   append addWriter ops (indexers)
//           {cmd:'go', ops:N, target:T, batch:B, from:F}
//                                         append N ops (numbered from F,
//                                         default 0), B per base.append()
//                                         call (B=1: one op per call); report
//                                         the view once it holds T entries
//           {cmd:'disconnect'}            close every connection (a
//                                         partition: nobody dials again
//                                         until the next 'connect')
//           {cmd:'stop'}                  close and exit

const net = require('net')
const readline = require('readline')
const Corestore = require('corestore')
const Autobase = require('autobase')

const index = Number(process.argv[2])
const dir = process.argv[3]
const bootstrap = process.argv[4] ? Buffer.from(process.argv[4], 'hex') : null

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n')
}

// The view: one core holding every op in linearized order. addWriter ops
// change the system, not the view; ack nodes (null) never reach apply.
function open(store) {
  return store.get({ name: 'view', valueEncoding: 'json' })
}

async function apply(nodes, view, host) {
  for (const { value } of nodes) {
    if (value === null) continue
    if (value.add) {
      await host.addWriter(Buffer.from(value.add, 'hex'), { indexer: value.indexer !== false })
      continue
    }
    await view.append(value)
  }
}

function attach(socket, stream) {
  socket.setNoDelay(true)
  socket.on('error', () => {})
  stream.on('error', () => {})
  socket.pipe(stream).pipe(socket)
}

async function main() {
  const store = new Corestore(dir)
  const base = new Autobase(store, bootstrap, { valueEncoding: 'json', open, apply })
  await base.ready()

  const sockets = new Set()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    attach(socket, base.replicate(false))
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))

  send({
    type: 'ready',
    key: base.key.toString('hex'),
    localKey: base.local.key.toString('hex'),
    port: server.address().port
  })

  let target = -1
  let lastReport = null
  let checking = false
  let recheck = false

  // Report the view whenever it holds the target number of entries and its
  // content (tree hash) differs from what was last reported.
  async function checkView() {
    if (target < 0) return
    if (checking) {
      recheck = true
      return
    }
    checking = true
    try {
      do {
        recheck = false
        const length = base.view.length
        if (length < target) continue
        const hash = (await base.view.treeHash(length)).toString('hex')
        const signed = base.view.signedLength
        const report = hash + ' ' + signed
        if (report !== lastReport) {
          lastReport = report
          send({ type: 'view', length, hash, signed })
        }
      } while (recheck)
    } finally {
      checking = false
    }
  }

  base.on('update', () => {
    checkView().catch((err) => console.error('[reference-js] peer', index, 'view check failed', err))
  })

  function reportWritable() {
    if (base.writable) send({ type: 'writable' })
    else base.once('writable', () => send({ type: 'writable' }))
  }

  let progress = null
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    const msg = JSON.parse(line)
    if (msg.cmd === 'connect') {
      for (const port of msg.ports) {
        const socket = net.connect(port, '127.0.0.1')
        sockets.add(socket)
        attach(socket, base.replicate(true))
        await new Promise((resolve, reject) => {
          socket.once('connect', resolve)
          socket.once('error', reject)
        })
      }
      send({ type: 'connected' })
      reportWritable()
    } else if (msg.cmd === 'add') {
      for (const key of msg.keys) await base.append({ add: key, indexer: msg.indexer !== false })
      send({ type: 'added' })
    } else if (msg.cmd === 'go') {
      target = msg.target
      const batch = msg.batch || 1
      let appended = 0
      progress = setInterval(() => {
        send({ type: 'progress', appended, viewLength: base.view.length })
      }, 5000)
      const t = Date.now()
      while (appended < msg.ops) {
        const from = msg.from || 0
        if (batch === 1) {
          await base.append({ w: index, i: from + appended })
          appended++
        } else {
          const ops = []
          for (let i = appended; i < Math.min(msg.ops, appended + batch); i++) ops.push({ w: index, i: from + i })
          await base.append(ops)
          appended += ops.length
        }
      }
      console.error(
        '[reference-js] W8 peer ' + index + ' appended ' + msg.ops + ' ops in ' + (Date.now() - t) +
          ' ms; its view holds ' + base.view.length
      )
      send({ type: 'appended' })
      await checkView()
    } else if (msg.cmd === 'disconnect') {
      for (const s of sockets) s.destroy()
      sockets.clear()
      send({ type: 'disconnected' })
    } else if (msg.cmd === 'stop') {
      break
    }
  }

  clearInterval(progress)
  for (const s of sockets) s.destroy()
  server.close()
  await base.close()
  await store.close()
  process.exit(0)
}

main().catch((err) => {
  console.error('[reference-js] autobase peer', index, 'failed:', err && err.stack ? err.stack : err)
  process.exit(1)
})
