#!/usr/bin/env bash
# unixfs-pack.sh: times `cairn pack` against the JavaScript reference packers
# and the machine's limits, and prints a Markdown table (stdout).
#
# usage: bench/unixfs-pack.sh         (from anywhere; about 5 minutes on 2
#                                      cores with REPEAT=3, plus about 30 s to
#                                      make the data sets the first time)
#
# Data sets (made once in $DATA, never in the repository; about 2 GiB, plus
# one output CAR at a time):
#   file  pack-1024MiB.bin: 1 GiB of the AES-256-CTR keystream with key
#         SHA-256("car-bench") and a zero IV, the bytes of the peers'
#         unixfs-1024MiB data set (README of ../shared/peers), so its
#         ipfs-car root is the one in the peers' RESULTS.md;
#   dir   pack-dir-10000x100KiB/: 10,000 files of 100 KiB (the keystream of
#         SHA-256("car-bench-dir")), f00000 … f09999 — one HAMT-sharded
#         directory in both profiles.
# Commands, each REPEAT times (interleaved), median reported, with peak RSS
# from /usr/bin/time -v and wall/user/system times from bash's time:
#   cairn pack --no-wrap -o OUT.car              (profile ipfs-car, CARv1)
#   cairn pack --no-wrap --car-version 2 -o OUT.car
#   cairn pack --no-wrap -o /dev/shm/…           (tmpfs: cairn fsyncs its CAR,
#                                                 ipfs-car does not)
#   ipfs-car pack --no-wrap --output OUT.car     (the reference CLI)
#   cairn pack --profile kubo -o OUT.car
#   node tests/unixfs/peer-pack.mjs --profile kubo --output OUT.car
#                                                (ipfs-unixfs-importer,
#                                                 unixfs-v0-2015, CARv1)
# (no --no-wrap for the directory: the profiles' defaults), and the limits:
# dd (cat for the directory) of the input from the page cache, and openssl
# speed -evp sha256 on 1 MiB buffers (one process, and one per core). The
# inputs are read once before the runs (warm page cache); the output CARs go
# to $OUTDIR and are deleted after each run. MB = 10^6 bytes, of input.
#
# Environment: BENCH_DATA (${TMPDIR:-/tmp}/cairn-bench), OUTDIR ($BENCH_DATA),
# BUILD (build-bench, the release build bench/run.sh and bench/car.sh share;
# configured once), CAIRN (a cairn binary to use instead of building),
# PEERS (../shared/peers), REPEAT (3), SIZE_MIB (1024), NFILES (10000),
# FILE_KIB (100), ONLY (a grep -E regex over "set step" to run a subset,
# e.g. ONLY='^file').
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${BENCH_DATA:-${TMPDIR:-/tmp}/cairn-bench}
OUTDIR=${OUTDIR:-$DATA}
BUILD=${BUILD:-$ROOT/build-bench}
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" && pwd)}
REPEAT=${REPEAT:-3}
SIZE_MIB=${SIZE_MIB:-1024}
NFILES=${NFILES:-10000}
FILE_KIB=${FILE_KIB:-100}
ONLY=${ONLY:-}

say () { printf '== %s\n' "$*" >&2; }
for tool in node openssl /usr/bin/time dd split; do
	command -v "$tool" >/dev/null || { echo "unixfs-pack.sh: $tool is needed" >&2; exit 1; }
done
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "unixfs-pack.sh: BENCH_DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA" "$OUTDIR"

# ---- (a) cairn: a release build, as bench/car.sh makes it (same directory
# and options), unless CAIRN names a binary.
if [ -z "${CAIRN:-}" ]; then
	if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
		echo "unixfs-pack.sh: meson and ninja are needed (or set CAIRN)" >&2
		exit 1
	fi
	BUILD_OPTS="-Dbuildtype=release -Dtests=false -Dc_args=-Wno-error=maybe-uninitialized"
	if [ ! -f "$BUILD/build.ninja" ]; then
		say "meson setup $BUILD"
		# shellcheck disable=SC2086
		meson setup "$BUILD" "$ROOT" $BUILD_OPTS >/dev/null
	else
		# shellcheck disable=SC2016
		have=$(meson introspect --buildoptions "$BUILD" | node -e '
			let s = ""
			process.stdin.on("data", (d) => { s += d }).on("end", () => {
				const o = Object.fromEntries(JSON.parse(s).map((x) => [x.name, x.value]))
				console.log(`${o.buildtype} ${o.tests} ${o.c_args.join(",")}`)
			})')
		if [ "$have" != "release false -Wno-error=maybe-uninitialized" ]; then
			say "meson configure $BUILD (was: $have)"
			# shellcheck disable=SC2086
			meson configure "$BUILD" $BUILD_OPTS >/dev/null
		fi
	fi
	say "ninja -C $BUILD cairn"
	ninja -C "$BUILD" cairn >/dev/null
	CAIRN=$BUILD/cairn
fi
[ -x "$CAIRN" ] || { echo "unixfs-pack.sh: $CAIRN is not executable" >&2; exit 1; }

# ---- (b) the reference peers
sh "$(dirname "$0")/../scripts/install-peers.sh" "$PEERS"
IPFSCAR=$PEERS/node_modules/ipfs-car/bin.js
PEERPACK=$ROOT/tests/unixfs/peer-pack.mjs

# ---- (c) the data sets
keystream () { # SEED BYTES: the AES-256-CTR keystream of the peers' README
	local key
	key=$(printf %s "$1" | sha256sum | cut -c1-64)
	# (openssl dies of SIGPIPE when head has had enough: not an error)
	{ openssl enc -aes-256-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 \
		-in /dev/zero 2>/dev/null || true; } | head -c "$2"
}
FILE=$DATA/pack-${SIZE_MIB}MiB.bin
FILE_BYTES=$((SIZE_MIB * 1024 * 1024))
if [ ! -f "$FILE" ] || [ "$(stat -c %s "$FILE")" -ne "$FILE_BYTES" ]; then
	say "making $FILE"
	keystream car-bench "$FILE_BYTES" >"$FILE.tmp"
	mv "$FILE.tmp" "$FILE"
fi
DIR=$DATA/pack-dir-${NFILES}x${FILE_KIB}KiB
DIR_BYTES=$((NFILES * FILE_KIB * 1024))
if [ ! -f "$DIR.done" ]; then
	say "making $DIR"
	rm -rf "$DIR"
	mkdir -p "$DIR"
	keystream car-bench-dir "$DIR_BYTES" |
		split -b $((FILE_KIB * 1024)) -d -a "$(( ${#NFILES} > 5 ? ${#NFILES} : 5 ))" - "$DIR/f"
	touch "$DIR.done"
fi

# ---- (d) the runs
RES=$DATA/pack-results.tsv
: >"$RES"
OUT=$OUTDIR/pack-bench-out.car
# cairn fsyncs the CAR it writes (ipfs-car does not): the same run with the
# CAR on tmpfs, where fsync costs nothing, shows what the disk adds.
SHM=
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	SHM=$(mktemp -d /dev/shm/cairn-pack-bench.XXXXXX)
	trap 'rm -rf "$SHM"' EXIT
fi
SHOUT=$DATA/pack-bench.stdout
TIMEV=$DATA/pack-bench.time

# timed SET STEP RUN BYTES -- command...: one run, appended to $RES as
# set, step, run, wall s, user s, sys s, peak RSS KiB, root, input bytes.
timed () {
	local set=$1 step=$2 run=$3 bytes=$4 t rss root
	shift 5
	if [ -n "$ONLY" ] && ! printf '%s %s\n' "$set" "$step" | grep -Eq -- "$ONLY"; then
		return 0
	fi
	rm -f "$OUT"
	t=$({ TIMEFORMAT='%R %U %S'; time /usr/bin/time -v -o "$TIMEV" "$@" >"$SHOUT" 2>"$SHOUT.err"; } 2>&1 | tail -n 1) || {
		echo "unixfs-pack.sh: $set $step failed:" >&2
		head -n 20 "$SHOUT.err" >&2
		t="nan nan nan"
	}
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TIMEV")
	root=$(sed -n '1{s/^{"root":"\([^"]*\)".*/\1/;p}' "$SHOUT" | head -n 1)
	[ -n "$root" ] || root=$(tail -n 1 "$SHOUT")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$step" "$run" "${t// /	}" "${rss:-0}" "${root:--}" "$bytes" >>"$RES"
	rm -f "$OUT"
}
openssl_one () { # -> bytes per second, one process, 1 MiB buffers
	openssl speed -evp sha256 -bytes 1048576 -seconds 3 -mr 2>/dev/null |
		awk -F: '/^\+F:/ { r = $4 } END { if (r == "") exit 1; printf "%.0f\n", r }'
}
openssl_multi () { # -> bytes per second of wall time, one process per core
	openssl speed -evp sha256 -multi "$(nproc)" -bytes 1048576 -seconds 3 2>/dev/null |
		awk '/^sha256/ { v = $NF; sub(/k$/, "", v); printf "%.0f\n", v * 1000 }'
}

say "warming the page cache"
cat "$FILE" >/dev/null
find "$DIR" -type f -exec cat {} + >/dev/null
echo "# loadavg start $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES"
for r in $(seq 1 "$REPEAT"); do
	say "round $r/$REPEAT: limits"
	timed file "dd" "$r" "$FILE_BYTES" -- dd if="$FILE" of=/dev/null bs=1M
	# shellcheck disable=SC2016
	timed dir "cat" "$r" "$DIR_BYTES" -- sh -c 'find "$1" -type f -exec cat {} + >/dev/null' sh "$DIR"
	if [ -z "$ONLY" ] || printf 'openssl\n' | grep -Eq -- "$ONLY"; then
		printf 'openssl\tsha256-1\t%s\t%s\n' "$r" "$(openssl_one)" >>"$RES"
		printf 'openssl\tsha256-%s\t%s\t%s\n' "$(nproc)" "$r" "$(openssl_multi)" >>"$RES"
	fi
	say "round $r/$REPEAT: file ($SIZE_MIB MiB)"
	timed file cairn-car "$r" "$FILE_BYTES" -- "$CAIRN" pack "$FILE" --no-wrap -o "$OUT"
	timed file cairn-car-v2 "$r" "$FILE_BYTES" -- "$CAIRN" pack "$FILE" --no-wrap --car-version 2 -o "$OUT"
	if [ -n "$SHM" ]; then
		timed file cairn-car-tmpfs "$r" "$FILE_BYTES" -- "$CAIRN" pack "$FILE" --no-wrap -o "$SHM/out.car"
		rm -f "$SHM/out.car"
	fi
	timed file ipfs-car "$r" "$FILE_BYTES" -- node "$IPFSCAR" pack "$FILE" --no-wrap --output "$OUT"
	timed file cairn-kubo "$r" "$FILE_BYTES" -- "$CAIRN" pack "$FILE" --profile kubo -o "$OUT"
	timed file importer-v0 "$r" "$FILE_BYTES" -- node "$PEERPACK" --profile kubo "$FILE" --output "$OUT"
	say "round $r/$REPEAT: dir ($NFILES × $FILE_KIB KiB)"
	timed dir cairn-car "$r" "$DIR_BYTES" -- "$CAIRN" pack "$DIR" -o "$OUT"
	timed dir cairn-car-v2 "$r" "$DIR_BYTES" -- "$CAIRN" pack "$DIR" --car-version 2 -o "$OUT"
	if [ -n "$SHM" ]; then
		timed dir cairn-car-tmpfs "$r" "$DIR_BYTES" -- "$CAIRN" pack "$DIR" -o "$SHM/out.car"
		rm -f "$SHM/out.car"
	fi
	timed dir ipfs-car "$r" "$DIR_BYTES" -- node "$IPFSCAR" pack "$DIR" --output "$OUT"
	timed dir cairn-kubo "$r" "$DIR_BYTES" -- "$CAIRN" pack "$DIR" --profile kubo -o "$OUT"
	timed dir importer-v0 "$r" "$DIR_BYTES" -- node "$PEERPACK" --profile kubo "$DIR" --output "$OUT"
done
echo "# loadavg end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES"
rm -f "$OUT" "$SHOUT" "$SHOUT.err" "$TIMEV"

# ---- (e) the Markdown
node - "$RES" "$SIZE_MIB" "$NFILES" "$FILE_KIB" "$(nproc)" "$REPEAT" <<'EOF'
const fs = require('node:fs')
const [file, sizeMiB, nfiles, fileKiB, nproc, repeat] = process.argv.slice(2)
const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)
const load = lines.filter((l) => l.startsWith('# loadavg')).map((l) => l.slice(2))
const runs = {}
for (const l of lines) {
  if (l.startsWith('#')) continue
  const f = l.split('\t')
  const key = `${f[0]} ${f[1]}`
  ;(runs[key] ??= []).push(f)
}
const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}
const stat = (set, step) => {
  const rs = runs[`${set} ${step}`]
  if (!rs) return null
  const wall = median(rs.map((f) => Number(f[3])))
  const cpu = median(rs.map((f) => Number(f[4]) + Number(f[5])))
  const rss = median(rs.map((f) => Number(f[6])))
  const bytes = Number(rs[0][8])
  const roots = [...new Set(rs.map((f) => f[7]))]
  return { wall, cpu, rss, bytes, mbps: bytes / wall / 1e6, roots, n: rs.length }
}
const fmt = (x, d = 2) => Number.isFinite(x) ? x.toFixed(d) : 'n/a'
const mbps = (x) => Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : 'n/a'
const names = {
  dd: 'dd bs=1M (page cache)',
  cat: 'cat of every file (page cache)',
  'cairn-car': 'cairn pack (ipfs-car profile, CARv1)',
  'cairn-car-v2': 'cairn pack --car-version 2',
  'cairn-car-tmpfs': 'cairn pack, CARv1 to tmpfs (no fsync cost)',
  'ipfs-car': '**ipfs-car pack** (reference)',
  'cairn-kubo': 'cairn pack --profile kubo',
  'importer-v0': '**importer unixfs-v0-2015** (reference, peer-pack.mjs)'
}
const refOf = { 'cairn-car': 'ipfs-car', 'cairn-car-v2': 'ipfs-car', 'cairn-car-tmpfs': 'ipfs-car', 'cairn-kubo': 'importer-v0' }
const sets = {
  file: `${sizeMiB} MiB file (--no-wrap)`,
  dir: `${nfiles} × ${fileKiB} KiB dir`
}
const out = []
out.push(`| data set | command | wall s | MB/s | CPU s | peak RSS MiB | vs reference: wall | CPU | root |`)
out.push(`|---|---|---|---|---|---|---|---|---|`)
const notes = []
for (const set of ['file', 'dir']) {
  for (const step of ['dd', 'cat', 'cairn-car', 'cairn-car-v2', 'cairn-car-tmpfs', 'ipfs-car', 'cairn-kubo', 'importer-v0']) {
    const s = stat(set, step)
    if (!s) continue
    let vs = ''
    let vscpu = ''
    let root = ''
    if (refOf[step]) {
      const r = stat(set, refOf[step])
      if (r) {
        const ratio = r.wall / s.wall
        vs = `**${fmt(ratio, 1)}×**`
        vscpu = `${fmt(r.cpu / s.cpu, 1)}×`
        root = s.roots.length === 1 && r.roots.length === 1 && s.roots[0] === r.roots[0] ? 'same' : 'DIFFERENT'
        if (root !== 'same') notes.push(`${set} ${step}: roots ${s.roots.join(', ')} vs reference ${r.roots.join(', ')}`)
      }
    } else if (step === 'ipfs-car' || step === 'importer-v0') {
      vs = '1×'
      vscpu = '1×'
      root = s.roots.length === 1 ? `\`${s.roots[0]}\`` : s.roots.join(', ')
    }
    const limit = step === 'dd' || step === 'cat'
    out.push(`| ${sets[set]} | ${names[step]} | ${fmt(s.wall, 3)} | ${mbps(s.mbps)} | ${limit ? '' : fmt(s.cpu, 2)} | ${limit ? '' : fmt(s.rss / 1024, 0)} | ${vs} | ${vscpu} | ${root} |`)
  }
}
for (const step of ['sha256-1', `sha256-${nproc}`]) {
  const rs = runs[`openssl ${step}`]
  if (!rs) continue
  const v = median(rs.map((f) => Number(f[3])))
  const what = step === 'sha256-1' ? 'one process' : `${nproc} processes`
  out.push(`| limit | openssl speed -evp sha256, 1 MiB, ${what} | | ${mbps(v / 1e6)} | | | | | |`)
}
console.log(out.join('\n'))
console.log()
console.log(`Speed vs reference = the reference's time / cairn's (wall, and CPU = user + system). Medians of ${repeat} runs; MB = 10^6 bytes of input; wall and CPU (user + system) from bash's time, peak RSS from /usr/bin/time -v; node start-up included for the references. ${load.join('; ')}.`)
const known = 'bafybeifhxb7yagjfsr7dm73hpw23l7qflpv3eqr3fm7rjcn7xyh6ve62eu'
const f = stat('file', 'cairn-car')
if (f && Number(sizeMiB) === 1024) {
  console.log(`1 GiB file root ${f.roots.join(', ')} ${f.roots.length === 1 && f.roots[0] === known ? '= the peers\' unixfs-1024MiB root (RESULTS.md)' : `!= the peers' unixfs-1024MiB root ${known}`}.`)
}
for (const n of notes) console.log(`MISMATCH ${n}`)
EOF
