#!/usr/bin/env node
// car-summary.mjs: turns the JSON lines bench/car.sh collects into the
// Markdown section "CAR toolkit (issue 3)" of docs/BENCHMARKS.md.
//
// usage: node bench/car-summary.mjs RESULTS.jsonl [--out FILE|-] [--repeat N]
// Every figure is a median over the rounds of car.sh; a ratio is the median
// of the per-round ratios of runs made side by side (paired), with its range.
import fs from 'node:fs'
import path from 'node:path'
import { execSync } from 'node:child_process'

const argv = process.argv.slice(2)
const opts = { out: '-', repeat: '?' }
let resPath = null
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a.startsWith('--') && a.slice(2) in opts && i + 1 < argv.length) opts[a.slice(2)] = argv[++i]
  else if (!resPath) resPath = a
  else {
    process.stderr.write('usage: node car-summary.mjs RESULTS.jsonl [--out FILE|-] [--repeat N]\n')
    process.exit(2)
  }
}
const rows = fs.readFileSync(resPath, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b)
  if (!s.length) return NaN
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
const pick = (f) => rows.filter((r) => Object.entries(f).every(([k, v]) => r[k] === v))
// Median and range of f(a)/g(b) over the rounds where both ran.
function paired (as, bs, fa, fb) {
  const b = new Map(bs.map((r) => [r.run, r]))
  const q = as.filter((r) => b.has(r.run)).map((r) => fa(r) / fb(b.get(r.run))).filter(Number.isFinite)
  return q.length ? { med: median(q), min: Math.min(...q), max: Math.max(...q) } : null
}

const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const fix = (x, d) => (Number.isFinite(x) ? x.toFixed(d) : '–')
const mb = (x) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : '–')
const mil = (x) => (Number.isFinite(x) ? (x / 1e6).toFixed(2) : '–')
const ratio = (q) => (q ? `**${fix(q.med, 2)}** (${fix(q.min, 2)}–${fix(q.max, 2)})` : '–')
const mib = (kib) => (Number.isFinite(kib) ? (kib / 1024).toFixed(0) : '–')
const sh = (cmd) => {
  try {
    return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return '?'
  }
}

function when () {
  const start = rows.find((r) => r.bench === 'load' && r.when === 'start' && r.date)
  const d = start ? new Date(start.date) : new Date()
  return d.toISOString().replace(/:\d\d(\.\d+)?Z$/, ' UTC').replace('T', ' ')
}
const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')
const ncpu = sh('nproc')
const machine = [
  `CPU: ${sh("lscpu | sed -n 's/^Model name: *//p'")} (${sh("lscpu | sed -n 's/^Hypervisor vendor: *//p'") || 'no'} hypervisor), ` +
    `${ncpu} cores (\`nproc\`), SHA-NI ${sh('grep -qw sha_ni /proc/cpuinfo && echo yes || echo no')}; ` +
    `memory ${sh("free -g | awk '/^Mem:/ {print $2}'")} GiB; Linux ${sh('uname -r')}`,
  `${sh('openssl version')}; ${sh('cc --version | head -1')}; node ${process.version}; ` +
    `@ipld/car ${sh(`node -p "require('${repoRoot}/../shared/peers/node_modules/@ipld/car/package.json').version"`)}`,
  `cairn ${sh(`git -C '${repoRoot}' rev-parse --short HEAD`)}` +
    `${sh(`git -C '${repoRoot}' status --porcelain -- src include | head -1`) ? ' (with uncommitted changes in src/ or include/)' : ''}, ` +
    `release build (\`-O3\`); measured ${when()}`
]
const load = Object.fromEntries(pick({ bench: 'load' }).map((r) => [r.when, r.loadavg]))
if (load.start) {
  machine.push(`load average (1, 5, 15 min) at the start ${load.start}, at the end ${load.end ?? '?'} ` +
    '(other sessions share the machine: wall-clock figures move with it, per-CPU-second ones much less)')
}

const ossl = pick({ bench: 'openssl' })
const osslMulti = median(ossl.map((r) => r.multi_Bps))
const osslOne = median(ossl.map((r) => r.one_Bps_cpu))

const out = []
const p = (s = '') => out.push(s)
p('## CAR toolkit (issue 3)')
p()
p('Written by `bench/car.sh`; do not edit by hand (the next run replaces it).')
p()
for (const m of machine) p(`- ${m}`)
p()
p('### Verify and index beside the JavaScript peers')
p()
p('The peers\' data sets (`gen-unixfs.mjs 1024`: 1 GiB of 1 MiB raw leaves, 1025 blocks; ' +
  '`gen-cbor.mjs 1000000`: a chain of ~230-byte DAG-CBOR blocks), warm page cache. ' +
  `${opts.repeat} rounds; in each, for each data set, back to back: \`cairn car verify\`, the peers\' ` +
  '`node verify.mjs` (CarBlockIterator, each block re-hashed), `cairn car index --detached` and ' +
  '`node index.mjs --out` (CarIndexer, sort, MultihashIndexSorted written). cairn\'s figures are whole ' +
  'processes, start-up and the index file\'s writing included: wall time (bash\'s `time`, to the ms) and ' +
  'CPU seconds (user + system). The JS rates are the peers\' own (timed inside the script, without ' +
  'Node\'s start-up of ≈ 0.04 s), as in the peers\' RESULTS.md; their wall time is beside them. ' +
  'Figures are medians over the rounds; the ratio is cairn / JS in blocks per second, the median of ' +
  'the per-round ratios with their range. MB/s is over the CAR\'s size. Peak RSS from `/usr/bin/time -v`. ' +
  '`cairn car index` writes its output crash-safe (a temporary file, fsync, rename, fsync of the folder), ' +
  'here on the disk beside the data; the "to tmpfs" rows write it to `/dev/shm` instead, where the fsync ' +
  'costs nothing: the difference is the disk\'s share. index.mjs\'s own time stops before it serializes ' +
  'and writes the index.')
p()
p('| data set | step | cairn wall s | cairn MB/s | cairn blocks/s | per CPU-s | JS wall s | JS script ms | JS blocks/s | ratio cairn / JS | peak RSS MiB cairn / JS |')
p('|---|---|---|---|---|---|---|---|---|---|---|')
const sets = ['unixfs-1024MiB', 'cbor-1000000']
const figs = {}
for (const set of sets) {
  for (const step of ['verify', 'index']) {
    const c = pick({ bench: 'car', tool: 'cairn', step, set })
    const j = pick({ bench: 'car', tool: 'js', step, set })
    if (!c.length) continue
    const blocks = (r) => r.blocks ?? r.entries
    const carBytes = j.find((r) => r.car_bytes)?.car_bytes ?? c.find((r) => r.bytes)?.bytes
    const cw = median(c.map((r) => r.wall_s))
    const ccpu = median(c.map((r) => r.user_s + r.sys_s))
    const cb = median(c.map((r) => blocks(r) / r.wall_s))
    const cbcpu = median(c.map((r) => blocks(r) / (r.user_s + r.sys_s)))
    const jb = median(j.map((r) => blocks(r) / (r.ms / 1000)))
    const q = paired(c, j, (r) => blocks(r) / r.wall_s, (r) => blocks(r) / (r.ms / 1000))
    const crss = median(c.map((r) => r.peak_rss_kib))
    const jrss = median(j.map((r) => r.peak_rss_kib))
    figs[`${set}/${step}`] = { cw, ccpu, cb, cbcpu, crss, carBytes, c, j, q, jb }
    p(`| ${set} | ${step === 'index' ? 'index --detached' : 'verify'} | ${fix(cw, 3)} | ${mb(carBytes / cw / 1e6)} | ` +
      `${int(cb)} | ${int(cbcpu)} | ${fix(median(j.map((r) => r.wall_s)), 2)} | ${int(median(j.map((r) => r.ms)))} | ` +
      `${int(jb)} | ${ratio(q)} | ${mib(crss)} / ${mib(jrss)} |`)
    const t = pick({ bench: 'car', tool: 'cairn', step: 'index-tmpfs', set })
    if (step === 'index' && t.length) {
      const tw = median(t.map((r) => r.wall_s))
      figs[`${set}/index-tmpfs`] = { cw: tw, cb: median(t.map((r) => blocks(r) / r.wall_s)), c: t }
      p(`| ${set} | index --detached, to tmpfs | ${fix(tw, 3)} | ${mb(carBytes / tw / 1e6)} | ` +
        `${int(median(t.map((r) => blocks(r) / r.wall_s)))} | ${int(median(t.map((r) => blocks(r) / (r.user_s + r.sys_s))))} | | | | | ` +
        `${mib(median(t.map((r) => r.peak_rss_kib)))} / |`)
    }
  }
}
const same = pick({ bench: 'index-same' })
p()
p(`Indexes: cairn's detached index and index.mjs's are ${same.length && same.every((r) => r.same) ? 'the same bytes' : '**not** the same bytes'} ` +
  `on both data sets in every round (${same.filter((r) => r.same).length} of ${same.length} compared).`)
p()

// ---------------------------------------------------------------- targets
const v1 = figs['unixfs-1024MiB/verify']
const vc = figs['cbor-1000000/verify']
const ic = figs['cbor-1000000/index']
const iu = figs['unixfs-1024MiB/index']
const vsOssl = v1 ? paired(v1.c, ossl, (r) => r.bytes / r.wall_s, (r) => r.multi_Bps) : null
const perCpuVsOssl = v1 ? median(v1.c.map((r) => r.bytes / (r.user_s + r.sys_s))) / osslOne : NaN
p('### Targets')
p()
p(`The hashing limit: \`openssl speed -evp sha256 -multi ${ncpu} -bytes 1048576 -seconds 3\`, run once per round ` +
  `beside the others (it divides by wall time), gave **${mb(osslMulti / 1e6)} MB/s** (median); one process, ` +
  `per CPU second (\`-seconds 2\`, no \`-multi\`), ${mb(osslOne / 1e6)} MB/s.`)
p()
p('| what | target | measured | |')
p('|---|---|---|---|')
if (v1) {
  p(`| verify, 1 GiB UnixFS (wall) | 75 % of openssl -multi ${ncpu} (${mb(0.75 * osslMulti / 1e6)} MB/s) | ` +
    `${mb(v1.carBytes / v1.cw / 1e6)} MB/s = ${ratio(vsOssl && { med: vsOssl.med * 100, min: vsOssl.min * 100, max: vsOssl.max * 100 })} % | ` +
    `${vsOssl && vsOssl.med >= 0.75 ? 'met' : 'not met'} |`)
  p(`| verify, 1 GiB UnixFS (per CPU second) | (one openssl process: ${mb(osslOne / 1e6)} MB/s) | ` +
    `${mb(median(v1.c.map((r) => r.bytes / (r.user_s + r.sys_s))) / 1e6)} MB/s = ${fix(perCpuVsOssl * 100, 0)} % | |`)
}
if (vc) p(`| verify, 1,000,000 DAG-CBOR blocks | 4 M blocks/s | ${mil(vc.cb)} M blocks/s (${mil(vc.cbcpu)} M per CPU-s) | ${vc.cb >= 4e6 ? 'met' : 'not met'} |`)
if (ic) p(`| index --detached, 1,000,000 blocks | 10 M blocks/s | ${mil(ic.cb)} M blocks/s (${mil(ic.cbcpu)} M per CPU-s)` +
  `${figs['cbor-1000000/index-tmpfs'] ? `; ${mil(figs['cbor-1000000/index-tmpfs'].cb)} M with the index written to tmpfs` : ''} | ${ic.cb >= 10e6 ? 'met' : 'not met'} |`)
if (iu) p(`| index --detached, 1 GiB UnixFS | | ${mb(iu.carBytes / iu.cw / 1e6)} MB/s, ${int(iu.cb)} blocks/s | |`)
const idxBytes = pick({ bench: 'lookup-index' })[0]?.index_bytes
const lk = pick({ bench: 'lookup' })
const lkRss = median(lk.map((r) => r.peak_rss_kib))
const memRows = []
for (const [k, f] of Object.entries(figs)) {
  if (!f.crss) continue
  // The index a step holds: index writes one (40 MB for a million CIDs).
  const extra = k.endsWith('/index') ? f.c.find((r) => r.index_bytes)?.index_bytes ?? 0 : 0
  memRows.push({ k, rss: f.crss, limit: 64 * 1024 + extra / 1024 })
}
if (lk.length && idxBytes) memRows.push({ k: 'lookups', rss: lkRss, limit: 64 * 1024 + idxBytes / 1024 })
const memOk = memRows.every((m) => m.rss < m.limit)
p(`| peak RSS | under 64 MiB + the index | ${memRows.map((m) => `${m.k}: ${mib(m.rss)} (limit ${mib(m.limit)})`).join('; ')} MiB | ${memOk ? 'met' : 'not met'} |`)
p()
if (v1 && Number.isFinite(osslOne)) {
  const hashS = v1.carBytes / osslOne
  p(`Where the time goes. verify of 1 GiB: ${fix(v1.ccpu, 2)} CPU seconds, of which hashing at openssl's rate ` +
    `is ${fix(hashS, 2)} s; the rest is mostly the copy out of the page cache (pread), on the threads that ` +
    `hash; on ${ncpu} cores the floor is about ${fix(v1.ccpu / Number(ncpu), 2)} s of wall time ` +
    `(measured: ${fix(v1.cw, 3)} s).` +
    (ic && figs['cbor-1000000/index-tmpfs']
      ? ` index --detached of a million blocks: ${fix(ic.cw, 3)} s, of which writing the 40 MB index ` +
        `crash-safe on the disk (write, fsync, rename, fsync of the folder) is ${fix(ic.cw - figs['cbor-1000000/index-tmpfs'].cw, 3)} s ` +
        `(the to-tmpfs row); the rest is one thread reading the sections, then building and sorting the index.`
      : ''))
  p()
}

// ---------------------------------------------------------------- lookups
if (lk.length) {
  const drop = lk.find((r) => r.cache === 'cold')?.drop
  p('### Point lookups')
  p()
  p(`\`bench_lookup\` on the CARv2 that \`cairn car index\` makes of cbor-1000000 (${int(lk[0].entries)} index entries, ` +
    `index ${mb(idxBytes / 1e6)} MB): a CID drawn at random from the index, \`cairn_car_index_find\` (binary search ` +
    'in the mmap), then `cairn_car_section_read` (pread of the section; untrusted also hashes the block against its ' +
    'CID), on 1 and 2 threads sharing the index and the file descriptor (`POSIX_FADV_RANDOM`: no read-ahead). Warm: ' +
    `the file read whole first, ${int(lk.find((r) => r.cache === 'warm')?.lookups)} lookups per repeat. Cold: ` +
    `${drop === 'drop_caches' ? 'the page cache emptied (`echo 3 > /proc/sys/vm/drop_caches`, as root)' : 'the file\'s pages dropped with `posix_fadvise(POSIX_FADV_DONTNEED)` (writing /proc/sys/vm/drop_caches was not permitted)'} ` +
    `and the index mapped again before each repeat, then ${int(lk.find((r) => r.cache === 'cold')?.lookups)} lookups, ` +
    'each mostly two page reads from the disk (index and data). Medians of ' +
    `${lk[0].repeats} repeats, with their range; per CPU-s sums the threads' CPU time. Peak RSS of the process ` +
    `(index mapped in it): ${mib(lkRss)} MiB.`)
  p()
  p('| cache | threads | block hashed | lookups/s | range | per CPU-s | µs per lookup (wall, per thread) |')
  p('|---|---|---|---|---|---|---|')
  for (const r of lk) {
    p(`| ${r.cache} | ${r.threads} | ${r.trusted ? 'no (trusted)' : 'yes'} | **${int(r.per_s)}** | ${int(r.per_s_min)}–${int(r.per_s_max)} | ` +
      `${int(r.per_cpu_s)} | ${fix(1e6 * r.threads / r.per_s, 2)} |`)
  }
  p()
}
p('Reproduce: `bench/car.sh` (3–4 minutes, plus about 20 s to make the data sets the first time, in ' +
  '`${TMPDIR:-/tmp}/car-bench`, where the raw results are in `car-results.jsonl`); `make bench` runs it ' +
  'after `bench/run.sh`.')

const section = out.join('\n') + '\n'
const BEGIN = '<!-- BEGIN car: written by bench/car.sh -->'
const END = '<!-- END car -->'
const block = `${BEGIN}\n${section}${END}\n`

process.stdout.write(section)
if (opts.out !== '-') {
  let doc = fs.existsSync(opts.out) ? fs.readFileSync(opts.out, 'utf8') : ''
  const a = doc.indexOf(BEGIN)
  const b = doc.indexOf(END)
  if (a >= 0 && b > a) doc = doc.slice(0, a) + block + doc.slice(b + END.length).replace(/^\n/, '')
  else doc = doc.replace(/\n*$/, '\n\n') + block
  fs.writeFileSync(opts.out + '.tmp', doc)
  fs.renameSync(opts.out + '.tmp', opts.out)
  process.stderr.write(`car-summary.mjs: wrote ${opts.out}\n`)
}
