'use strict'

// Shared helpers for the JavaScript reference benchmarks.
//
// Conventions used by every workload:
//   * stdout carries exactly one JSON line per workload+configuration (emit()),
//     everything else goes to stderr (log()).
//   * 1 MB = 1,000,000 bytes in every *_mb_per_sec field.
//   * Timings use performance.now() (monotonic, sub-millisecond).
//   * Random payloads are generated before the timer starts.
//   * Every workload works in its own fresh temp folder (os.tmpdir(), so the
//     TMPDIR environment variable picks the disk) and removes it at the end.

const { spawn } = require('child_process')
const crypto = require('crypto')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const { performance } = require('perf_hooks')

const MB = 1e6

// BENCH_SCALE divides every block / op / file count (default 1 = full scale).
const SCALE = (() => {
  const raw = process.env.BENCH_SCALE
  if (raw === undefined || raw === '') return 1
  const n = Number(raw)
  if (!Number.isFinite(n) || n < 1) throw new Error('BENCH_SCALE must be a number >= 1, got ' + raw)
  return n
})()

function scaled(n) {
  return Math.max(1, Math.floor(n / SCALE))
}

function log(...args) {
  console.error('[reference-js]', ...args)
}

// Prints one result line. "impl" is always "js"; "scale" only when not 1.
function emit(workload, fields) {
  const out = { workload, impl: 'js', ...fields }
  if (SCALE !== 1) out.scale = SCALE
  process.stdout.write(JSON.stringify(out) + '\n')
}

function now() {
  return performance.now()
}

function round(x, digits = 3) {
  const f = Math.pow(10, digits)
  return Math.round(x * f) / f
}

function makeTmpDir(label) {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hc-bench-js-' + label + '-'))
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true })
}

// Runs fn(dir) with a fresh temp folder and always removes it afterwards.
async function withTmpDir(label, fn) {
  const dir = makeTmpDir(label)
  try {
    return await fn(dir)
  } finally {
    removeDir(dir)
  }
}

// Apparent size (sum of st.size) of every regular file below dir.
function dirSize(dir) {
  let total = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) total += dirSize(p)
    else if (entry.isFile()) total += fs.statSync(p).size
  }
  return total
}

// count blocks of `size` random bytes, as views into one big random buffer
// (generated once, before any timer starts).
function randomBlocks(count, size) {
  const all = crypto.randomBytes(count * size)
  const blocks = new Array(count)
  for (let i = 0; i < count; i++) blocks[i] = all.subarray(i * size, (i + 1) * size)
  return blocks
}

function randomIndex(n) {
  return Math.floor(Math.random() * n)
}

// `count` distinct random integers in [0, n) (count must be <= n).
function distinctRandomIndices(count, n) {
  if (count > n) throw new Error('cannot pick ' + count + ' distinct values out of ' + n)
  const seen = new Set()
  const out = []
  while (out.length < count) {
    const i = randomIndex(n)
    if (seen.has(i)) continue
    seen.add(i)
    out.push(i)
  }
  return out
}

function percentile(sortedAsc, p) {
  if (sortedAsc.length === 0) return NaN
  // nearest-rank method
  const rank = Math.ceil((p / 100) * sortedAsc.length)
  return sortedAsc[Math.min(sortedAsc.length, Math.max(1, rank)) - 1]
}

// Pipes a replication stream (as returned by store.replicate(isInitiator) /
// core.replicate(isInitiator) / drive.replicate(isInitiator)) onto a raw TCP
// socket. The replication stream is a Noise secret stream: what crosses the
// socket is the encrypted Noise transport.
function attach(socket, replicationStream) {
  socket.setNoDelay(true)
  socket.on('error', noop)
  replicationStream.on('error', noop)
  socket.pipe(replicationStream).pipe(socket)
}

// Starts lib/serve-child.js (the writer peer, in its own node process) on a
// store folder. kind is 'core' or 'drive'. Resolves to { port, stop() }.
async function startServer(kind, dir) {
  const child = spawn(process.execPath, [path.join(__dirname, 'serve-child.js'), kind, dir], {
    stdio: ['pipe', 'pipe', 'inherit']
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const port = await new Promise((resolve, reject) => {
    let buf = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk) => {
      buf += chunk
      const nl = buf.indexOf('\n')
      if (nl !== -1) resolve(JSON.parse(buf.slice(0, nl)).port)
    })
    child.once('exit', (code) => reject(new Error('serve-child exited with ' + code + ' before listening')))
  })
  return {
    port,
    async stop() {
      child.stdin.end()
      const code = await exited
      if (code !== 0) throw new Error('serve-child exited with ' + code)
    }
  }
}

// Connects to 127.0.0.1:port and replicates over the socket with
// replicate(true) (the client is the Noise initiator). Resolves once the TCP
// connection is established; returns the socket (socket.bytesRead /
// socket.bytesWritten count the encrypted bytes on the wire).
async function connectTo(port, replicate) {
  const socket = net.connect(port, '127.0.0.1')
  attach(socket, replicate(true))
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return socket
}

function noop() {}

module.exports = {
  MB,
  SCALE,
  scaled,
  log,
  emit,
  now,
  round,
  makeTmpDir,
  removeDir,
  withTmpDir,
  dirSize,
  randomBlocks,
  randomIndex,
  distinctRandomIndices,
  percentile,
  startServer,
  connectTo
}
