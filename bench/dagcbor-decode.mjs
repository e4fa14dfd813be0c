#!/usr/bin/env node
// dagcbor-decode.mjs: the JavaScript reference for bench_dagcbor, timing
// @ipld/dag-cbor decode plus a link walk over the blocks of a CARv1 in memory.
//
// usage: node bench/dagcbor-decode.mjs FILE.car [--repeats N] [--min-seconds S]
//                                     [--modes decode+walk,verify] [--peers DIR]
//
// Same method as bench_dagcbor: the whole CAR is read into memory and split
// into blocks (@ipld/car CarBlockIterator.fromBytes; blocks are views into
// the file's bytes), then per mode one untimed pass (JIT warm-up, and to size
// the repeats), then N repeats (default 5) of whole passes lasting at least S
// seconds (default 0.5). Prints one JSON line per mode: median, lowest and
// highest blocks/s, and the link count as a checksum. As in bench_dagcbor,
// blocks/s is per CPU second (process.cpuUsage: the main thread plus Node's
// GC and compiler threads, all work the decode costs), so other load on the
// machine skews it less; blocks_per_s_wall is over wall time.
//   decode+walk: dagCbor.decode(bytes), then a walk of the value counting
//                CIDs (CID.asCID) in lists and maps
//   verify:      sha256 of each block (multiformats, node:crypto) compared
//                with its CID's digest
// The packages come from the reference peers' node_modules (--peers, default
// ../../shared/peers from this file), which are ES modules only: they are
// resolved here through their package.json "exports" and imported by path.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { performance } from 'node:perf_hooks'

const argv = process.argv.slice(2)
const opts = { repeats: 5, 'min-seconds': 0.5, modes: 'decode+walk,verify', peers: null }
let carPath = null
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a.startsWith('--') && a.slice(2) in opts && i + 1 < argv.length) opts[a.slice(2)] = argv[++i]
  else if (!a.startsWith('--') && !carPath) carPath = a
  else usage()
}
if (!carPath) usage()
const repeats = Number(opts.repeats)
const minSeconds = Number(opts['min-seconds'])
const modes = String(opts.modes).split(',')
if (!(Number.isInteger(repeats) && repeats >= 1) || !(minSeconds >= 0) ||
    !modes.every((m) => m === 'decode+walk' || m === 'verify')) usage()

function usage () {
  process.stderr.write('usage: node dagcbor-decode.mjs FILE.car [--repeats N] [--min-seconds S] ' +
    '[--modes decode+walk,verify] [--peers DIR]\n')
  process.exit(2)
}

const here = path.dirname(fileURLToPath(import.meta.url))
const peers = path.resolve(opts.peers ?? path.join(here, '..', '..', 'shared', 'peers'))

// Resolves 'pkg/sub' against node_modules/pkg/package.json "exports" with the
// import condition, as Node does for a bare specifier inside the peers' tree.
function peerURL (spec) {
  const parts = spec.split('/')
  const n = spec.startsWith('@') ? 2 : 1
  const dir = path.join(peers, 'node_modules', ...parts.slice(0, n))
  const sub = parts.length > n ? './' + parts.slice(n).join('/') : '.'
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  let target = pkg.exports?.[sub] ?? (sub === '.' ? pkg.module ?? pkg.main : null)
  while (target && typeof target === 'object') target = target.node ?? target.import ?? target.default
  if (typeof target !== 'string') throw new Error(`cannot resolve ${spec} in ${dir}`)
  return pathToFileURL(path.join(dir, target)).href
}
const version = (name) =>
  JSON.parse(fs.readFileSync(path.join(peers, 'node_modules', name, 'package.json'), 'utf8')).version

const dagCbor = await import(peerURL('@ipld/dag-cbor'))
const { CarBlockIterator } = await import(peerURL('@ipld/car/iterator'))
const { CID } = await import(peerURL('multiformats/cid'))
const { sha256 } = await import(peerURL('multiformats/hashes/sha2'))

const fileBytes = fs.readFileSync(carPath)
const blocks = []
let blockBytes = 0
const iter = await CarBlockIterator.fromBytes(fileBytes)
for await (const b of iter) {
  if (b.cid.code !== dagCbor.code) throw new Error(`${carPath}: block ${blocks.length} is not DAG-CBOR`)
  blocks.push(b)
  blockBytes += b.bytes.length
}
if (!blocks.length) throw new Error(`${carPath}: no blocks`)

function countLinks (v) {
  if (v === null || typeof v !== 'object') return 0
  if (CID.asCID(v)) return 1
  if (v instanceof Uint8Array) return 0
  let k = 0
  if (Array.isArray(v)) {
    for (const x of v) k += countLinks(x)
  } else {
    for (const key in v) k += countLinks(v[key])
  }
  return k
}

function pass (mode) {
  let links = 0
  if (mode === 'decode+walk') {
    for (const b of blocks) links += countLinks(dagCbor.decode(b.bytes))
  } else {
    for (const b of blocks) {
      const got = sha256.digest(b.bytes).digest
      const want = b.cid.multihash.digest
      if (got.length !== want.length) throw new Error('digest length mismatch')
      for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) throw new Error(`${b.cid}: hash mismatch`)
    }
  }
  return links
}

const cpuSeconds = (u) => (u.user + u.system) / 1e6
const median = (xs) => {
  xs.sort((a, b) => a - b)
  const n = xs.length
  return n % 2 ? xs[(n - 1) / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2
}
for (const mode of modes) {
  let t0 = performance.now()
  let links = pass(mode)
  let s = (performance.now() - t0) / 1000
  const passes = s > 0 && s < minSeconds ? Math.floor(minSeconds / s) + 1 : 1
  const rates = []
  const walls = []
  for (let r = 0; r < repeats; r++) {
    const c0 = process.cpuUsage()
    t0 = performance.now()
    for (let p = 0; p < passes; p++) links = pass(mode)
    s = (performance.now() - t0) / 1000
    const cpu = cpuSeconds(process.cpuUsage(c0))
    rates.push(blocks.length * passes / cpu)
    walls.push(blocks.length * passes / s)
  }
  const med = median(rates)
  const wall = median(walls)
  const r1 = (x) => Math.round(x * 10) / 10
  process.stdout.write(JSON.stringify({
    bench: 'dagcbor',
    impl: 'js',
    mode,
    car: carPath,
    blocks: blocks.length,
    block_bytes: blockBytes,
    threads: 1,
    repeats,
    passes,
    blocks_per_s: r1(med),
    blocks_per_s_min: r1(rates[0]),
    blocks_per_s_max: r1(rates[rates.length - 1]),
    MBps: Math.round(med * blockBytes / blocks.length / 1e4) / 100,
    links,
    blocks_per_s_wall: r1(wall),
    versions: { node: process.version, '@ipld/dag-cbor': version('@ipld/dag-cbor'), '@ipld/car': version('@ipld/car'), multiformats: version('multiformats') }
  }) + '\n')
}
