'use strict'

// W7-mirror: mirror-drive on a real source tree this project did not write
// (the same tree `hyper-bench W7-mirror` picks: BENCH_TREE, else the Rust
// toolchain's library sources, else Debian's Python packages in
// /usr/lib/python3, else Python's standard library, else
// /usr/lib/node_modules, else /usr/share/doc), copied to a temp folder first
// so its mtimes are stable.
//   a. Localdrive(tree) -> Hyperdrive on a fresh corestore   => a_* fields
//   b. the writer served by lib/serve-child.js in its own process; a fresh
//      store that knows only the key connects over TCP loopback and mirrors
//      Hyperdrive -> Localdrive(dest), timed from just before net.connect()
//                                                            => b_* fields
//   c. 1% of the files touched (8 bytes rewritten at offset 0, new mtime:
//      every 100th file of size >= 8 in sorted path order), then both
//      mirrors again, into the same drive and the same destination; the
//      reader reconnects to a restarted server             => c_* fields
// Bytes moved are mirror-drive's bytesAdded; every file is checked against
// the source (untimed) after b and c. BENCH_SCALE=N keeps every N-th file.

const fs = require('fs')
const path = require('path')
const { execFileSync } = require('child_process')
const Corestore = require('corestore')
const Hyperdrive = require('hyperdrive')
const Localdrive = require('localdrive')
const MirrorDrive = require('mirror-drive')
const { MB, SCALE, log, emit, now, round, withTmpDir, startServer, connectTo } = require('../lib/common')

// The first of these that exists (BENCH_TREE overrides).
function sourceTree() {
  if (process.env.BENCH_TREE) return process.env.BENCH_TREE
  const candidates = []
  try {
    const sysroot = execFileSync('rustc', ['--print', 'sysroot'], { encoding: 'utf8' }).trim()
    candidates.push(path.join(sysroot, 'lib/rustlib/src/rust/library'))
  } catch {}
  candidates.push('/usr/lib/python3')
  const pythons = fs.existsSync('/usr/lib')
    ? fs.readdirSync('/usr/lib').filter((n) => /^python3\.\d+$/.test(n)).sort()
    : []
  for (const p of pythons) candidates.push(path.join('/usr/lib', p))
  candidates.push('/usr/lib/node_modules', '/usr/share/doc')
  const found = candidates.find((c) => fs.existsSync(c))
  if (!found) throw new Error('no source tree: tried ' + candidates.join(', '))
  return found
}

// Regular files and symlinks below dir, as sorted relative paths.
function walk(dir, rel = '', out = []) {
  const names = fs.readdirSync(path.join(dir, rel)).sort()
  for (const name of names) {
    const r = rel ? rel + '/' + name : name
    const st = fs.lstatSync(path.join(dir, r))
    if (st.isDirectory()) walk(dir, r, out)
    else if (st.isFile() || st.isSymbolicLink()) out.push(r)
  }
  return out
}

// Copies every SCALE-th entry of the tree (symlinks as symlinks).
function copyTree(src, dst) {
  let files = 0
  let bytes = 0
  walk(src).forEach((rel, i) => {
    if (i % SCALE !== 0) return
    const from = path.join(src, rel)
    const to = path.join(dst, rel)
    fs.mkdirSync(path.dirname(to), { recursive: true })
    const st = fs.lstatSync(from)
    if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(from), to)
    } else {
      fs.copyFileSync(from, to)
      fs.chmodSync(to, st.mode & 0o7777)
      bytes += st.size
    }
    files++
  })
  return { files, bytes }
}

// Rewrites 8 bytes of every 100th file of size >= 8; how many were touched.
function touch(root) {
  const big = walk(root).filter((rel) => {
    const st = fs.lstatSync(path.join(root, rel))
    return st.isFile() && st.size >= 8
  })
  let touched = 0
  const later = new Date(Date.now() + 2000)
  big.forEach((rel, i) => {
    if (i % 100 !== 0) return
    const p = path.join(root, rel)
    const fd = fs.openSync(p, 'r+')
    fs.writeSync(fd, Buffer.from('W7MIRROR'), 0, 8, 0)
    fs.closeSync(fd)
    fs.utimesSync(p, later, later)
    touched++
  })
  return touched
}

// Every file of src is in dst with the same bytes.
function checkSame(src, dst) {
  for (const rel of walk(src)) {
    const a = path.join(src, rel)
    const b = path.join(dst, rel)
    if (fs.lstatSync(a).isSymbolicLink()) continue
    if (!fs.readFileSync(a).equals(fs.readFileSync(b))) throw new Error(rel + ' differs after the mirror')
  }
}

async function mirror(src, dst) {
  const m = new MirrorDrive(src, dst)
  const start = now()
  await m.done()
  return { seconds: (now() - start) / 1000, bytes: m.bytesAdded, count: m.count }
}

// The writer's drive, mirrored from the tree (reopened for step c).
async function intoDrive(writerDir, tree, key) {
  const store = new Corestore(writerDir)
  const drive = key ? new Hyperdrive(store, key) : new Hyperdrive(store)
  await drive.ready()
  const res = await mirror(new Localdrive(tree), drive)
  const driveKey = drive.key
  await drive.close()
  await store.close()
  return { ...res, key: driveKey }
}

// Over TCP from a served writer into dest, with the reader store in readerDir.
async function outOfDrive(writerDir, readerDir, key, dest) {
  const server = await startServer('drive', writerDir)
  const store = new Corestore(readerDir)
  const drive = new Hyperdrive(store, key)
  await drive.ready()
  const start = now()
  const socket = await connectTo(server.port, (isInitiator) => store.replicate(isInitiator))
  await drive.core.update({ wait: true })
  const res = await mirror(drive, new Localdrive(dest))
  const seconds = (now() - start) / 1000
  socket.destroy()
  await drive.close()
  await store.close()
  await server.stop()
  return { ...res, seconds }
}

async function W7mirror() {
  const origin = sourceTree()
  await withTmpDir('w7m-tree', async (tree) => {
    await withTmpDir('w7m-writer', async (writerDir) => {
      await withTmpDir('w7m-reader', async (readerDir) => {
        await withTmpDir('w7m-dest', async (dest) => {
          const { files, bytes } = copyTree(origin, tree)
          log('W7-mirror: ' + files + ' files, ' + bytes + ' bytes from ' + origin)

          const a = await intoDrive(writerDir, tree, null)
          const b = await outOfDrive(writerDir, readerDir, a.key, dest)
          checkSame(tree, dest)

          const touched = touch(tree)
          const ca = await intoDrive(writerDir, tree, a.key)
          const cb = await outOfDrive(writerDir, readerDir, a.key, dest)
          checkSame(tree, dest)

          emit('W7-mirror', {
            tree: origin,
            files,
            bytes,
            a_seconds: round(a.seconds),
            a_files_per_sec: round(files / a.seconds, 1),
            a_mb_per_sec: round(bytes / MB / a.seconds),
            b_seconds: round(b.seconds),
            b_files_per_sec: round(files / b.seconds, 1),
            b_mb_per_sec: round(bytes / MB / b.seconds),
            touched,
            c_into_drive_seconds: round(ca.seconds),
            c_into_drive_bytes: ca.bytes,
            c_out_of_drive_seconds: round(cb.seconds),
            c_out_of_drive_bytes: cb.bytes
          })
        })
      })
    })
  })
}

module.exports = { W7mirror }
