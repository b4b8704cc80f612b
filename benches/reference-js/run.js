#!/usr/bin/env node
'use strict'

// Entry point of the JavaScript reference benchmarks.
//
//   node run.js all                 # W1..W8 in order (W7-mirror after W7)
//   node run.js W1 W3 W6            # only these, in the given order
//   node run.js W8-reorder          # by name only (not in `all`)
//   BENCH_SCALE=100 node run.js all # counts divided by 100 (smoke run)
//
// Each requested workload runs in its own child node process (so one
// workload's heap, open handles or leftover timers cannot slow down or hang the
// next), with stdout passed straight through: stdout carries only the JSON
// result lines, all diagnostics go to stderr. The exit code is non-zero if any
// workload failed.

const { spawnSync } = require('child_process')
const path = require('path')

const WORKLOADS = {
  W1: () => require('./workloads/append').W1(),
  W2: () => require('./workloads/append').W2(),
  W3: () => require('./workloads/read').W3(),
  W4: () => require('./workloads/replicate-full').W4(),
  W5: () => require('./workloads/replicate-sparse').W5(),
  W6: () => require('./workloads/bee').W6(),
  W7: () => require('./workloads/drive').W7(),
  'W7-MIRROR': () => require('./workloads/mirror').W7mirror(),
  W8: () => require('./workloads/autobase').W8(),
  'W8-REORDER': () => require('./workloads/autobase-reorder').W8reorder()
}

// Run by name only, not by `all` (as on the Rust side: minutes to hours).
const BY_NAME_ONLY = new Set(['W8-REORDER'])

function usage() {
  console.error('usage: node run.js all | W1 [W2 ...]   (env BENCH_SCALE=N divides counts)')
  process.exit(2)
}

async function runOne(id) {
  await WORKLOADS[id]()
}

function main(argv) {
  if (argv[0] === '--one') {
    const id = argv[1]
    if (!WORKLOADS[id]) usage()
    runOne(id).then(
      () => process.exit(0), // do not wait for stray timers of the stack
      (err) => {
        console.error('[reference-js] ' + id + ' failed:', err && err.stack ? err.stack : err)
        process.exit(1)
      }
    )
    return
  }

  if (argv.length === 0) usage()
  let ids = []
  for (const a of argv) {
    if (a.toLowerCase() === 'all') ids.push(...Object.keys(WORKLOADS).filter((k) => !BY_NAME_ONLY.has(k)))
    else if (WORKLOADS[a.toUpperCase()]) ids.push(a.toUpperCase())
    else usage()
  }

  let failed = 0
  for (const id of ids) {
    const res = spawnSync(process.execPath, [path.join(__dirname, 'run.js'), '--one', id], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: process.env
    })
    if (res.status !== 0) {
      failed++
      console.error('[reference-js] ' + id + ' exited with ' + (res.status === null ? res.signal : res.status))
    }
  }
  process.exit(failed === 0 ? 0 : 1)
}

main(process.argv.slice(2))
