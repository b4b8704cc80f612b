'use strict'

// W6 (bee): a hyperbee on a core of a corestore on disk, keyEncoding and
// valueEncoding 'binary'.
//   * 100,000 puts in batches of 1,000 (bee.batch(), batch.put() x 1,000,
//     batch.flush()). Keys: 16 lowercase hex characters (the hex of 8 random
//     bytes; distinct; in random order), stored as their 16 ASCII bytes.
//     Values: 100 random bytes.                           => put_ops_per_sec
//   * 100,000 gets of random existing keys, one at a time => get_ops_per_sec
//   * one full range scan (bee.createReadStream())        => scan_entries_per_sec
//   * disk_bytes: size of the storage folder after closing.

const crypto = require('crypto')
const Corestore = require('corestore')
const Hyperbee = require('hyperbee')
const { scaled, log, emit, now, round, withTmpDir, dirSize, randomIndex } = require('../lib/common')

const BATCH = 1000
const VALUE_SIZE = 100

function makeKeys(count) {
  const seen = new Set()
  const keys = []
  while (keys.length < count) {
    const hex = crypto.randomBytes(8).toString('hex')
    if (seen.has(hex)) continue
    seen.add(hex)
    keys.push(Buffer.from(hex, 'ascii'))
  }
  return keys // random order already: generated at random
}

async function W6() {
  const puts = scaled(100000)
  const gets = scaled(100000)

  await withTmpDir('w6', async (dir) => {
    const keys = makeKeys(puts)
    const values = crypto.randomBytes(puts * VALUE_SIZE)
    const getKeys = new Array(gets)
    for (let i = 0; i < gets; i++) getKeys[i] = keys[randomIndex(puts)]

    const store = new Corestore(dir)
    const core = store.get({ name: 'bee' })
    const bee = new Hyperbee(core, { keyEncoding: 'binary', valueEncoding: 'binary' })
    await bee.ready()

    log('W6: ' + puts + ' puts in batches of ' + BATCH)
    const putStart = now()
    for (let i = 0; i < puts; i += BATCH) {
      const batch = bee.batch()
      const end = Math.min(puts, i + BATCH)
      for (let j = i; j < end; j++) {
        await batch.put(keys[j], values.subarray(j * VALUE_SIZE, (j + 1) * VALUE_SIZE))
      }
      await batch.flush()
    }
    const putSeconds = (now() - putStart) / 1000

    log('W6: ' + gets + ' random gets')
    const getStart = now()
    for (let i = 0; i < gets; i++) {
      const node = await bee.get(getKeys[i])
      if (node === null) throw new Error('missing key ' + getKeys[i].toString())
    }
    const getSeconds = (now() - getStart) / 1000

    log('W6: full scan')
    let scanned = 0
    let prev = null
    const scanStart = now()
    for await (const entry of bee.createReadStream()) {
      if (prev !== null && Buffer.compare(prev, entry.key) >= 0) throw new Error('scan out of order')
      prev = entry.key
      scanned++
    }
    const scanSeconds = (now() - scanStart) / 1000
    if (scanned !== puts) throw new Error('scan saw ' + scanned + ' entries, expected ' + puts)

    await bee.close()
    await store.close()

    emit('W6', {
      puts,
      gets,
      batch_size: BATCH,
      put_ops_per_sec: round(puts / putSeconds, 1),
      get_ops_per_sec: round(gets / getSeconds, 1),
      scan_entries_per_sec: round(scanned / scanSeconds, 1),
      disk_bytes: dirSize(dir)
    })
  })
}

module.exports = { W6 }
