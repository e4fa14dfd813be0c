#!/usr/bin/env node
// walk.mjs IN.car OUT.car: the JS counterpart of `cairn export`: opens the CAR
// with @ipld/car's CarIndexedReader (an indexing pass, then positioned reads),
// walks the DAG from its first root depth first with a Set of the CIDs seen
// (each block once), decodes each DAG-CBOR block with @ipld/dag-cbor to find
// its links, and writes every block reached with CarWriter. Not hashed (as
// `cairn export --trusted`). Prints JSON: blocks, time to open and to walk.
// Run from ../shared/peers' node_modules: NODE_PATH is set by export.sh.
import fs from 'node:fs'
import { Readable } from 'node:stream'
import { CarIndexedReader } from '@ipld/car/indexed-reader'
import { CarWriter } from '@ipld/car/writer'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'

const [inPath, outPath] = process.argv.slice(2)
const t0 = performance.now()
const reader = await CarIndexedReader.fromFile(inPath)
const roots = await reader.getRoots()
const t1 = performance.now()
const { writer, out } = CarWriter.create(roots)
const done = new Promise((resolve, reject) => {
  Readable.from(out).pipe(fs.createWriteStream(outPath)).on('finish', resolve).on('error', reject)
})

function links (value, found) {
  if (value === null || typeof value !== 'object') return
  const cid = CID.asCID(value)
  if (cid) { found.push(cid); return }
  if (value instanceof Uint8Array) return
  for (const v of Array.isArray(value) ? value : Object.values(value)) links(v, found)
}

const seen = new Set()
const stack = [...roots]
for (const r of roots) seen.add(r.toString())
let blocks = 0
let bytes = 0
while (stack.length) {
  const cid = stack.pop()
  const block = await reader.get(cid)
  if (!block) throw new Error(`missing block ${cid}`)
  await writer.put(block)
  blocks++
  bytes += block.bytes.length
  if (cid.code !== dagCbor.code) continue
  const found = []
  links(dagCbor.decode(block.bytes), found)
  for (let i = found.length - 1; i >= 0; i--) {
    const k = found[i].toString()
    if (!seen.has(k)) { seen.add(k); stack.push(found[i]) }
  }
}
await writer.close()
await done
await reader.close()
const t2 = performance.now()
console.log(JSON.stringify({ blocks, bytes, open_ms: Math.round(t1 - t0), walk_ms: Math.round(t2 - t1),
  blocks_per_s: Math.round(blocks / ((t2 - t1) / 1000)) }))
