'use strict'

// W8 (autobase): 3 writers, each an Autobase on its own corestore (own temp
// folder) in its own node process (lib/autobase-peer.js), connected in a full
// mesh over TCP loopback (base.replicate on each socket, Noise-encrypted).
// The view is one core that gets every op appended in linearized order.
//
// Setup (untimed): peer 0 bootstraps the base, peers 1 and 2 open it by key,
// the mesh is connected, peer 0 adds peers 1 and 2 as indexers, and we wait
// until both are writable.
//
// Timed: from sending 'go' to all three peers (each then appends 10,000 small
// JSON ops, {w, i}, one `await base.append(op)` at a time, concurrently with
// the others) until all three views hold 30,000 entries and agree (the same
// tree hash of the view core at 30,000). ops_per_sec = 30,000 / seconds.
// Default autobase options (ackInterval etc.) are used.

const { spawn } = require('child_process')
const path = require('path')
const readline = require('readline')
const { scaled, log, emit, now, round, makeTmpDir, removeDir } = require('../lib/common')

const WRITERS = 3
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
  }

  _onevent(msg) {
    if (msg.type === 'view' && this.onview) this.onview(msg)
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
}

async function W8() {
  const opsPerWriter = scaled(10000)
  const target = opsPerWriter * WRITERS
  const dirs = []
  const peers = []

  try {
    for (let i = 0; i < WRITERS; i++) dirs.push(makeTmpDir('w8-peer' + i))

    log('W8: setting up ' + WRITERS + ' writers')
    peers.push(new Peer(0, dirs[0], null))
    const first = await peers[0].wait('ready')
    const ready = [first]
    for (let i = 1; i < WRITERS; i++) {
      peers.push(new Peer(i, dirs[i], first.key))
      ready.push(await peers[i].wait('ready'))
    }

    // full mesh: peer i dials every peer j < i
    for (let i = 0; i < WRITERS; i++) {
      peers[i].send({ cmd: 'connect', ports: ready.slice(0, i).map((r) => r.port) })
      await peers[i].wait('connected')
    }

    peers[0].send({ cmd: 'add', keys: ready.slice(1).map((r) => r.localKey) })
    await peers[0].wait('added')
    for (const p of peers) await p.wait('writable')

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

    log('W8: go (' + opsPerWriter + ' ops per writer)')
    const start = now()
    for (const p of peers) p.send({ cmd: 'go', ops: opsPerWriter, target })
    const failed = Promise.race(peers.map((p) => p.exited.then((code) => Promise.reject(new Error('peer exited ' + code)))))
    const end = await Promise.race([agreed, failed])
    const seconds = (end - start) / 1000

    for (const v of views) {
      if (v.length > target) throw new Error('a view holds ' + v.length + ' entries, expected ' + target)
    }
    log('W8: views agree at length ' + target + ', hash ' + views[0].hash.slice(0, 16))

    emit('W8', {
      writers: WRITERS,
      ops_per_writer: opsPerWriter,
      ops_per_sec: round(target / seconds, 1),
      seconds: round(seconds, 3)
    })
  } finally {
    for (const p of peers) await p.stop()
    for (const d of dirs) removeDir(d)
  }
}

module.exports = { W8 }
