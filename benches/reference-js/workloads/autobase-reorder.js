'use strict'

// W8-reorder (autobase): the cost of merging what three writers appended
// while partitioned, the reference side of `hyper-bench W8-reorder`
// (benches/src/reorder.rs). The peers, processes, mesh and view are W8's
// (workloads/autobase.js, lib/autobase-peer.js): three indexers, each an
// Autobase on its own corestore in its own node process, a full TCP mesh.
//
// Setup (untimed): connected, each writer appends one op and the three
// agree on those three ops (the same view tree hash). Then every
// connection is closed and each writer appends N ops while partitioned
// (`partition_seconds`, reported, not timed).
//
// Timed: from the reconnect (a new full mesh) until every view holds all
// 3N + 3 ops, the three hash the same, and each view's signedLength covers
// them (`seconds`; `agreed_seconds`: until the views first agreed, signed
// or not). `ops_per_sec` and `us_per_op` count the 3N partitioned ops and
// `seconds`.
//
// Environment knobs: W8R_BATCH=B and W8R_OPS=N run one configuration (by
// default the list below, as ours runs); W8R_TIMEOUT_S=S (default 900)
// gives up on a merge after S seconds: the line then has "timed_out": true
// and no figure.

const { WRITERS, setUp, connectMesh } = require('./autobase')
const { scaled, log, emit, now, round, makeTmpDir, removeDir } = require('../lib/common')

const CONFIGS = [
  [1, 1000],
  [1, 10000],
  [100, 1000],
  [100, 10000],
  [100, 100000]
]
const TIMEOUT_S = Number(process.env.W8R_TIMEOUT_S || 900)

// Resolves with { agreed, signed }: when every peer first reported a view
// of `target` entries with one hash, and when each also had a signed length
// of at least `signed` (`signed: null` after `seconds`).
function converged(peers, target, signed, seconds) {
  const views = new Array(peers.length).fill(null)
  let agreed = null
  let timer = null
  return Promise.race([
    new Promise((resolve) => {
      peers.forEach((p, i) => {
        p.onview = (msg) => {
          views[i] = msg
          if (views.some((v) => v === null || v.length !== target)) return
          if (!views.every((v) => v.hash === views[0].hash)) return
          if (agreed === null) agreed = now()
          if (views.every((v) => v.signed >= signed)) resolve({ agreed, signed: now() })
        }
      })
    }),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve({ agreed, signed: null }), seconds * 1000)
    })
  ]).finally(() => clearTimeout(timer))
}

async function one(batch, opsPerWriter) {
  const dirs = []
  const peers = []
  const target = WRITERS + opsPerWriter * WRITERS
  const fields = { writers: WRITERS, indexers: WRITERS, ops_per_writer: opsPerWriter, append_batch: batch }
  try {
    for (let i = 0; i < WRITERS; i++) dirs.push(makeTmpDir('w8r-peer' + i))
    const ready = await setUp(peers, dirs, true)

    // One op each, agreed (not necessarily signed) before the partition.
    let agreed = converged(peers, WRITERS, 0, TIMEOUT_S)
    for (const p of peers) p.send({ cmd: 'go', ops: 1, target: WRITERS, batch: 1, from: 0 })
    for (const p of peers) await p.wait('appended')
    if ((await agreed).signed === null) throw new Error('W8-reorder: the writers never agreed on their first ops')

    for (const p of peers) {
      p.send({ cmd: 'disconnect' })
      await p.wait('disconnected')
    }
    log('W8-reorder: partitioned, ' + opsPerWriter + ' ops per writer, ' + batch + ' per append')
    const partitionStart = now()
    for (const p of peers) p.send({ cmd: 'go', ops: opsPerWriter, target, batch, from: 1 })
    for (const p of peers) await p.wait('appended')
    const partitionSeconds = (now() - partitionStart) / 1000

    const start = now()
    agreed = converged(peers, target, target, TIMEOUT_S)
    await connectMesh(peers, ready)
    const end = await agreed
    if (end.signed === null) {
      log('W8-reorder: no signed agreement within ' + TIMEOUT_S + ' s (no figure)')
      emit('W8-reorder', {
        ...fields,
        partition_seconds: round(partitionSeconds, 3),
        agreed_seconds: end.agreed === null ? null : round((end.agreed - start) / 1000, 3),
        timed_out: true,
        seconds: TIMEOUT_S
      })
      for (const p of peers) await p.kill()
      return
    }
    const seconds = (end.signed - start) / 1000
    const merged = opsPerWriter * WRITERS
    emit('W8-reorder', {
      ...fields,
      partition_seconds: round(partitionSeconds, 3),
      agreed_seconds: round((end.agreed - start) / 1000, 3),
      seconds: round(seconds, 3),
      ops_per_sec: round(merged / seconds, 1),
      us_per_op: round((seconds * 1e6) / merged, 1)
    })
  } finally {
    for (const p of peers) await p.stop()
    for (const d of dirs) removeDir(d)
  }
}

async function W8reorder() {
  const only = process.env.W8R_BATCH
    ? [[Number(process.env.W8R_BATCH), Number(process.env.W8R_OPS || 1000)]]
    : CONFIGS
  for (const [batch, ops] of only) {
    if (!Number.isInteger(batch) || batch < 1 || !Number.isInteger(ops) || ops < 1) {
      throw new Error('W8R_BATCH and W8R_OPS must be integers >= 1')
    }
    await one(batch, Math.max(1, scaled(ops)))
  }
}

module.exports = { W8reorder }
