#!/usr/bin/env node
// peer-pack.mjs: the reference root CID of `cairn pack`, computed by the
// JavaScript peers in ../shared/peers (or $PEERS).
//
// usage: node tests/unixfs/peer-pack.mjs --profile ipfs-car|kubo
//             [--no-wrap|--wrap] [--hidden] [--output OUT.car] PATH...
//
// Prints one line of JSON: {"root": CID, "profile": P, "ms": T} (ms: time
// spent packing, without Node's start-up).
//
// --profile ipfs-car  runs the real CLI, `ipfs-car pack PATH... --output X.car
//                     [--no-wrap] [--hidden]`, and takes the CID it prints.
//                     Its semantics: only files (empty directories vanish),
//                     names relative to the common parent of all files,
//                     hidden names skipped unless --hidden, directories of
//                     more than 1,000 entries HAMT-sharded, wrapped in a
//                     directory unless --no-wrap and a single file.
// --profile kubo      ipfs-unixfs-importer, profile 'unixfs-v0-2015' (what
//                     `ipfs add` does by default: 256 KiB chunks, dag-pb
//                     leaves, CIDv0, width 174, HAMT when the Σ(name bytes +
//                     CID bytes) of a directory's links exceeds 262144), fed
//                     the entries `ipfs add -r PATH` would add: PATH's
//                     basename as the root, directories before their contents
//                     (so empty ones are kept), names starting with '.'
//                     skipped unless --hidden, symlinks and special files
//                     skipped. No wrapping (unless --wrap): the root is PATH
//                     itself. One PATH only.
// --output OUT.car    also write the blocks (kubo: importer order, CARv1 with
//                     the root patched into the header); the ipfs-car profile
//                     always writes OUT.car (default: a temporary file).
//
// The peers' modules are loaded by absolute path from $PEERS/node_modules
// (default: ../shared/peers beside the project root), so this script runs
// from anywhere.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { pathToFileURL, fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const peers = path.resolve(process.env.PEERS ?? process.env.CAIRN_PEERS ?? path.join(here, '..', '..', '..', 'shared', 'peers'))
const modules = path.join(peers, 'node_modules')

function die (msg, code = 2) {
  process.stderr.write(`peer-pack: ${msg}\n`)
  process.exit(code)
}

// The ES module entry of a package in $PEERS/node_modules (exports "." import).
async function load (pkg, sub = '.') {
  const dir = path.join(modules, pkg)
  let meta
  try {
    meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  } catch {
    die(`${pkg} not found in ${modules} (run npm ci in ${peers})`, 1)
  }
  let entry = meta.exports?.[sub] ?? (sub === '.' ? meta.exports : undefined)
  if (entry != null && typeof entry === 'object') entry = entry.import ?? entry.default ?? entry['module-sync']
  if (entry == null) entry = sub === '.' ? (meta.module ?? meta.main ?? 'index.js') : sub
  return import(pathToFileURL(path.join(dir, entry)).href)
}

// ---- arguments
const args = process.argv.slice(2)
let profile = 'ipfs-car'
let wrap = null
let hidden = false
let output = null
const paths = []
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  if (a === '--profile') profile = args[++i]
  else if (a.startsWith('--profile=')) profile = a.slice(10)
  else if (a === '--no-wrap') wrap = false
  else if (a === '--wrap') wrap = true
  else if (a === '--hidden' || a === '-H') hidden = true
  else if (a === '--output' || a === '-o') output = args[++i]
  else if (a === '--') paths.push(...args.slice(i + 1)), i = args.length
  else if (a.startsWith('-') && a !== '-') die(`unknown option ${a}`)
  else paths.push(a)
}
if (paths.length === 0 || (profile !== 'ipfs-car' && profile !== 'kubo')) {
  die('usage: node peer-pack.mjs --profile ipfs-car|kubo [--no-wrap|--wrap] [--hidden] [--output OUT.car] PATH...')
}
for (const p of paths) {
  if (!fs.existsSync(p)) die(`${p}: no such file or directory`, 1)
}

const t0 = process.hrtime.bigint()
let root

if (profile === 'ipfs-car') {
  // The real CLI, so its file selection and sharding are the reference's own.
  const bin = path.join(modules, 'ipfs-car', 'bin.js')
  let tmpDir = null
  let out = output
  if (out == null) {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'peer-pack-'))
    out = path.join(tmpDir, 'out.car')
  }
  const cli = [bin, 'pack', ...paths, '--output', out]
  if (wrap === false) cli.push('--no-wrap')
  if (hidden) cli.push('--hidden')
  try {
    root = execFileSync(process.execPath, cli, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
  } catch (e) {
    die(`ipfs-car pack failed (${e.status ?? e.message})`, 1)
  } finally {
    if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true })
  }
} else {
  if (paths.length !== 1) die('--profile kubo takes one PATH (like ipfs add -r PATH)')
  const { importer } = await load('ipfs-unixfs-importer')
  const top = path.resolve(paths[0])
  const base = path.basename(top)

  // What `ipfs add -r` adds: the tree in pre-order (a directory before its
  // contents, names sorted bytewise as Go's os.ReadDir does).
  const byteOrder = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))
  const fileContent = (p) => (async function * () {
    yield * fs.createReadStream(p, { highWaterMark: 1 << 20 })
  })()
  async function * walk (abs, rel) {
    yield { path: rel }
    const names = fs.readdirSync(abs).sort(byteOrder)
    for (const name of names) {
      if (!hidden && name.startsWith('.')) continue
      const p = path.join(abs, name)
      const st = fs.lstatSync(p)
      if (st.isDirectory()) yield * walk(p, `${rel}/${name}`)
      else if (st.isFile()) yield { path: `${rel}/${name}`, content: fileContent(p) }
      // symlinks, sockets, fifos, devices: skipped
    }
  }
  async function * source () {
    const st = fs.statSync(top)
    if (st.isDirectory()) yield * walk(top, base)
    else if (st.isFile()) yield { path: base, content: fileContent(top) }
    else die(`${paths[0]}: not a file or directory`, 1)
  }

  let blockstore
  let finish = async () => {}
  if (output != null) {
    const { CarWriter } = await load('@ipld/car', './writer')
    const { CID } = await load('multiformats')
    const placeholder = CID.parse('QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn') // CIDv0: same length as the root
    const { writer, out } = CarWriter.create([placeholder])
    const fd = fs.openSync(output, 'w')
    const drained = (async () => { for await (const chunk of out) fs.writeSync(fd, chunk) })()
    blockstore = {
      async put (cid, bytes) { await writer.put({ cid, bytes }); return cid },
      async has () { return false },
      get () { throw new Error('write-only blockstore') }
    }
    finish = async () => {
      await writer.close()
      await drained
      fs.closeSync(fd)
      const h = await fs.promises.open(output, 'r+')
      await CarWriter.updateRootsInFile(h, [root])
      await h.close()
    }
  } else {
    blockstore = {
      async put (cid) { return cid },
      async has () { return false },
      get () { throw new Error('write-only blockstore') }
    }
  }

  const want = wrap === true ? '' : base
  for await (const entry of importer(source(), blockstore, { profile: 'unixfs-v0-2015', wrapWithDirectory: wrap === true })) {
    if (entry.path === want) root = entry.cid
  }
  if (root == null) die('the importer yielded no root', 1)
  await finish()
}

const ms = Number(process.hrtime.bigint() - t0) / 1e6
process.stdout.write(JSON.stringify({ root: root.toString(), profile, ms: Math.round(ms * 1000) / 1000 }) + '\n')
