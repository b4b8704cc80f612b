'use strict'

// W8 (autobase): 3 writers, each an Autobase on its own corestore (own temp
// folder) in its own node process (lib/autobase-peer.js), connected in a full
// mesh over TCP loopback (base.replicate on each socket, Noise-encrypted).
// The view is one core that gets every op appended in linearized order.
//
// Setup (untimed): peer 0 bootstraps the base, peers 1 and 2 open it by key,
// the mesh is connected, peer 0 adds peers 1 and 2 as writers (indexers by
// default), and we wait until both are writable.
//
// Timed: from sending 'go' to all three peers (each then appends 10,000 small
// JSON ops, {w, i}, concurrently with the others; by default one
// `await base.append(op)` per op) until all three views hold 30,000 entries
// and agree (the same tree hash of the view core at 30,000).
// ops_per_sec = 30,000 / seconds. Default autobase options (ackInterval etc.).
//
// Environment knobs (each is echoed in the JSON line):
//   W8_BATCH=N        ops per base.append(array) call (default 1)
//   W8_INDEXERS=all   all three writers are indexers (default)
//   W8_INDEXERS=one   only peer 0 is an indexer
//   W8_TIMEOUT_S=S    give up after S seconds (default 1800); the line then
//                     has "ops_per_sec": null, "timed_out": true and the
//                     progress reached, never an extrapolated figure.

const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')
const { scaled, log, emit, now, round, makeTmpDir, removeDir } = require('../lib/common')

const WRITERS = 3
// W8_INDEXERS=all (default): the three writers are all indexers.
// W8_INDEXERS=one: only peer 0 is an indexer, peers 1 and 2 are plain writers.
const INDEXERS = process.env.W8_INDEXERS || 'all'
if (INDEXERS !== 'all' && INDEXERS !== 'one') throw new Error('W8_INDEXERS must be all or one')
const BATCH = Number(process.env.W8_BATCH || 1)
if (!Number.isInteger(BATCH) || BATCH < 1) throw new Error('W8_BATCH must be an integer >= 1')
const TIMEOUT_S = Number(process.env.W8_TIMEOUT_S || 1800)
const PEER = path.join(__dirname, '..', 'lib', 'autobase-peer.js')

class Peer {
  constructor(index, dir, bootstrap) {
    this.index = index
    this.child = spawn(process.execPath, [PEER, String(index), dir].concat(bootstrap ? [bootstrap] : []), {
      stdio: ['pipe', 'pipe', 'inherit']
    })
    this.waiters = []
    this.events = []
    this.exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.once('exit', (code) => {
      const err = new Error('autobase peer ' + index + ' exited with ' + code)
      for (const w of this.waiters.splice(0)) w.reject(err)
      this.dead = err
    })
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => this._onevent(JSON.parse(line)))
    this.onview = null
    this.progress = null
  }

  _onevent(msg) {
    if (msg.type === 'view' && this.onview) this.onview(msg)
    if (msg.type === 'progress') {
      this.progress = msg
      return
    }
    for (let i = 0; i < this.waiters.length; i++) {
      if (this.waiters[i].type === msg.type) {
        const [w] = this.waiters.splice(i, 1)
        w.resolve(msg)
        return
      }
    }
    this.events.push(msg)
  }

  // Resolves with the next (or an already received) event of this type.
  wait(type) {
    const i = this.events.findIndex((e) => e.type === type)
    if (i !== -1) return Promise.resolve(this.events.splice(i, 1)[0])
    if (this.dead) return Promise.reject(this.dead)
    return new Promise((resolve, reject) => this.waiters.push({ type, resolve, reject }))
  }

  send(msg) {
    this.child.stdin.write(JSON.stringify(msg) + '\n')
  }

  async stop() {
    if (!this.dead) this.send({ cmd: 'stop' })
    this.child.stdin.end()
    return this.exited
  }

  kill() {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    return this.exited
  }
}

// Starts one peer per folder of `dirs` into `peers` (peer 0 bootstraps the
// base, the others open it by key), connects the full mesh, and has peer 0
// add the others (as indexers when `indexers`); resolves once all are
// writable with each peer's 'ready' event.
async function setUp(peers, dirs, indexers) {
  peers.push(new Peer(0, dirs[0], null))
  const first = await peers[0].wait('ready')
  const ready = [first]
  for (let i = 1; i < dirs.length; i++) {
    peers.push(new Peer(i, dirs[i], first.key))
    ready.push(await peers[i].wait('ready'))
  }
  await connectMesh(peers, ready)
  peers[0].send({ cmd: 'add', keys: ready.slice(1).map((r) => r.localKey), indexer: indexers })
  await peers[0].wait('added')
  for (const p of peers) await p.wait('writable')
  return ready
}

// The full mesh: peer i dials every peer j < i.
async function connectMesh(peers, ready) {
  for (let i = 0; i < peers.length; i++) {
    peers[i].send({ cmd: 'connect', ports: ready.slice(0, i).map((r) => r.port) })
    await peers[i].wait('connected')
  }
}

async function W8() {
  const opsPerWriter = scaled(10000)
  const target = opsPerWriter * WRITERS
  const dirs = []
  const peers = []

  try {
    for (let i = 0; i < WRITERS; i++) dirs.push(makeTmpDir('w8-peer' + i))

    log('W8: setting up ' + WRITERS + ' writers')
    await setUp(peers, dirs, INDEXERS === 'all')

    // latest reported view of each peer
    const views = new Array(WRITERS).fill(null)
    let resolveAgreed
    const agreed = new Promise((resolve) => {
      resolveAgreed = resolve
    })
    const onview = () => {
      if (views.some((v) => v === null || v.length !== target)) return
      if (views.every((v) => v.hash === views[0].hash)) resolveAgreed(now())
    }
    peers.forEach((p, i) => {
      p.onview = (msg) => {
        views[i] = msg
        onview()
      }
    })

    log('W8: go (' + opsPerWriter + ' ops per writer, ' + BATCH + ' per append)')
    const start = now()
    for (const p of peers) p.send({ cmd: 'go', ops: opsPerWriter, target, batch: BATCH })
    const failed = Promise.race(
      peers.map((p) => p.exited.then((code) => Promise.reject(new Error('peer exited ' + code))))
    )
    let timer = null
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), TIMEOUT_S * 1000)
    })
    const ticker = setInterval(() => {
      const p = peers.map((x) => (x.progress ? x.progress.appended + '/' + x.progress.viewLength : '-'))
      log('W8: ' + round((now() - start) / 1000, 0) + ' s, appended/view per peer: ' + p.join(' '))
    }, 30000)
    const end = await Promise.race([agreed, failed, timedOut])
    clearTimeout(timer)
    clearInterval(ticker)

    const fields = {
      writers: WRITERS,
      indexers: INDEXERS === 'all' ? WRITERS : 1,
      ops_per_writer: opsPerWriter,
      append_batch: BATCH
    }

    if (end === 'timeout') {
      log('W8: no agreement within ' + TIMEOUT_S + ' s, giving up (no figure)')
      emit('W8', {
        ...fields,
        ops_per_sec: null,
        timed_out: true,
        seconds: TIMEOUT_S,
        progress: peers.map((p) => p.progress && { appended: p.progress.appended, view_length: p.progress.viewLength })
      })
      for (const p of peers) await p.kill()
      return
    }

    const seconds = (end - start) / 1000
    for (const v of views) {
      if (v.length > target) throw new Error('a view holds ' + v.length + ' entries, expected ' + target)
    }
    log('W8: views agree at length ' + target + ', hash ' + views[0].hash.slice(0, 16))

    emit('W8', {
      ...fields,
      ops_per_sec: round(target / seconds, 1),
      seconds: round(seconds, 3)
    })
  } finally {
    for (const p of peers) await p.stop()
    for (const d of dirs) removeDir(d)
  }
}

module.exports = { W8, WRITERS, setUp, connectMesh }
