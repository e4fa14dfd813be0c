#!/usr/bin/env bash
# car.sh: runs the CAR toolkit benchmarks (cairn car verify, cairn car index
# --detached, point lookups) beside openssl speed and the JavaScript peers'
# verify.mjs and index.mjs, and writes their figures to docs/BENCHMARKS.md.
#
# usage: bench/car.sh            (from anywhere; 3-4 minutes on 2 cores, plus
#                                 about 20 s to make the data sets the first time)
#
# Steps: a release build in build-bench (shared with run.sh; configured once);
# npm ci in the reference peers if their node_modules is missing; the data sets
# the peers' bench.sh makes (unixfs-1024MiB.car by gen-unixfs.mjs 1024,
# cbor-1000000.car by gen-cbor.mjs 1000000; once, in $DATA, never in the
# repository), and a CARv2 of the second made by `cairn car index`; REPEAT
# rounds, each running back to back openssl speed -multi 2, and for each data
# set cairn car verify, node verify.mjs, cairn car index --detached, node
# index.mjs, every command under /usr/bin/time -v (peak RSS) and bash's time
# (wall, user and system seconds to the millisecond); bench_lookup on the
# CARv2, warm and cold cache (cold drops the page cache, which needs root);
# then bench/car-summary.mjs prints the Markdown and updates $OUT.
#
# Environment: DATA (${TMPDIR:-/tmp}/car-bench, the peers' default), BUILD
# (build-bench), PEERS (../shared/peers), REPEAT (5), LOOKUPS (1000000 per
# warm repeat), COLD_LOOKUPS (5000 per cold repeat), OUT (docs/BENCHMARKS.md;
# "-" prints only).
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-${TMPDIR:-/tmp}/car-bench}
BUILD=${BUILD:-$ROOT/build-bench}
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" && pwd)}
REPEAT=${REPEAT:-5}
LOOKUPS=${LOOKUPS:-1000000}
COLD_LOOKUPS=${COLD_LOOKUPS:-5000}
OUT=${OUT:-$ROOT/docs/BENCHMARKS.md}

say () { printf '== %s\n' "$*" >&2; }
for tool in meson ninja node npm openssl /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "car.sh: $tool is needed" >&2; exit 1; }
done
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "car.sh: DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA"

# ---- (a) release build, as run.sh makes it (the same directory and options;
# see there why maybe-uninitialized is not an error).
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
say "ninja -C $BUILD (cairn, bench_lookup)"
ninja -C "$BUILD" cairn bench/bench_lookup >/dev/null
CAIRN=$BUILD/cairn
BENCH_LOOKUP=$BUILD/bench/bench_lookup

# ---- (b) the reference peers
sh "$(dirname "$0")/../scripts/install-peers.sh" "$PEERS"

# ---- (c) the data sets, as the peers' bench.sh makes them
UNIXFS=$DATA/unixfs-1024MiB.car
CBOR=$DATA/cbor-1000000.car
CBOR2=$DATA/cbor-1000000.v2.car
if [ ! -s "$UNIXFS" ]; then
	say "gen-unixfs.mjs 1024"
	node "$PEERS/gen-unixfs.mjs" 1024 "$UNIXFS.tmp" >/dev/null
	mv "$UNIXFS.tmp" "$UNIXFS"
fi
if [ ! -s "$CBOR" ]; then
	say "gen-cbor.mjs 1000000"
	node "$PEERS/gen-cbor.mjs" 1000000 "$CBOR.tmp" >/dev/null
	mv "$CBOR.tmp" "$CBOR"
fi
# Made again each time: the CARv2 is the current build's output.
say "cairn car index (CARv2 for the lookups)"
"$CAIRN" car index "$CBOR" "$CBOR2"

RES=$DATA/car-results.jsonl
: >"$RES"
loadavg () {
	echo "{\"bench\":\"load\",\"when\":\"$1\",\"date\":\"$(date -u +%FT%TZ)\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$RES"
}
loadavg start

# One timed command: its JSON output (one object) with the step, the data
# set, the round, wall/user/system seconds and the peak RSS merged in.
# /usr/bin/time reports times to 10 ms, too coarse for runs of 20 ms:
# bash's time gives milliseconds (its user and system times count the
# command through /usr/bin/time, whose own share is well under that).
timed () { # tool step set run -- command...
	local tool=$1 step=$2 set=$3 run=$4 out t rss
	shift 5
	out=$({ TIMEFORMAT='%R %U %S'; time /usr/bin/time -v -o "$DATA/time.txt" "$@" >"$DATA/out.json"; } 2>&1)
	t=$(printf '%s\n' "$out" | tail -n 1)
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$DATA/time.txt")
	node -e '
		const fs = require("node:fs")
		const [file, tool, step, set, run, t, rss] = process.argv.slice(1)
		const [wall, user, sys] = t.split(" ").map(Number)
		let j = {}
		try { j = JSON.parse(fs.readFileSync(file, "utf8")) } catch { j = { parse_error: true } }
		delete j.versions
		delete j.roots
		const rec = { bench: "car", tool, step, set, run: Number(run), wall_s: wall, user_s: user, sys_s: sys, peak_rss_kib: Number(rss), ...j }
		process.stdout.write(JSON.stringify(rec) + "\n")
	' "$DATA/out.json" "$tool" "$step" "$set" "$run" "$t" "$rss" >>"$RES"
}
openssl_multi () { # -> bytes per second of wall time, 2 processes at once
	openssl speed -evp sha256 -multi "$(nproc)" -bytes 1048576 -seconds 3 2>/dev/null |
		awk '/^sha256/ { v = $NF; sub(/k$/, "", v); printf "%.0f\n", v * 1000 }'
}
openssl_one () { # -> bytes per CPU second, one process
	openssl speed -evp sha256 -bytes 1048576 -seconds 2 -mr 2>/dev/null |
		awk -F: '/^\+F:/ { r = $4 } END { if (r == "") exit 1; print r }'
}

SHM=
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	SHM=$(mktemp -d /dev/shm/car-bench.XXXXXX)
	trap 'rm -rf "$SHM"' EXIT
fi
cat "$UNIXFS" "$CBOR" "$CBOR2" >/dev/null # into the page cache
for r in $(seq 1 "$REPEAT"); do
	say "round $r/$REPEAT: openssl speed"
	multi=$(openssl_multi)
	one=$(openssl_one)
	echo "{\"bench\":\"openssl\",\"run\":$r,\"procs\":$(nproc),\"multi_Bps\":$multi,\"one_Bps_cpu\":$one}" >>"$RES"
	for set in unixfs-1024MiB cbor-1000000; do
		car=$DATA/$set.car
		say "round $r/$REPEAT: $set: cairn car verify, verify.mjs, cairn car index --detached, index.mjs"
		timed cairn verify "$set" "$r" -- "$CAIRN" car verify --json "$car"
		timed js verify "$set" "$r" -- node "$PEERS/verify.mjs" "$car"
		timed cairn index "$set" "$r" -- "$CAIRN" car index --detached --json "$car" "$DATA/$set.cairn.idx"
		timed js index "$set" "$r" -- node "$PEERS/index.mjs" "$car" --out "$DATA/$set.js.idx"
		# The same with the index written to tmpfs, where its fsync costs
		# nothing: what the disk adds to the step.
		if [ -n "$SHM" ]; then
			timed cairn index-tmpfs "$set" "$r" -- "$CAIRN" car index --detached --json "$car" "$SHM/$set.idx"
			rm -f "$SHM/$set.idx"
		fi
		# The two indexes must be the same bytes (both write go-car's
		# MultihashIndexSorted).
		if cmp -s "$DATA/$set.cairn.idx" "$DATA/$set.js.idx"; then same=true; else same=false; fi
		echo "{\"bench\":\"index-same\",\"set\":\"$set\",\"run\":$r,\"same\":$same}" >>"$RES"
	done
done

# ---- (d) point lookups on the CARv2: warm, then cold (bench_lookup drops
# the page cache before each cold repeat: all of it as root, else the file's).
say "bench_lookup: $LOOKUPS warm and $COLD_LOOKUPS cold lookups per repeat"
out=$(/usr/bin/time -v -o "$DATA/time.txt" "$BENCH_LOOKUP" --json --lookups "$LOOKUPS" \
	--cold-lookups "$COLD_LOOKUPS" --repeats "$REPEAT" "$CBOR2")
rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$DATA/time.txt")
printf '%s\n' "$out" | sed "s/}\$/,\"peak_rss_kib\":$rss}/" >>"$RES"
echo "{\"bench\":\"lookup-index\",\"index_bytes\":$(($(stat -c %s "$CBOR2") - $("$CAIRN" car inspect --json "$CBOR2" | node -e '
	let s = ""
	process.stdin.on("data", (d) => { s += d }).on("end", () => {
		const j = JSON.parse(s)
		console.log(j.index_offset ?? j.v2?.index_offset ?? 0)
	})')))}" >>"$RES"
cat "$UNIXFS" "$CBOR" >/dev/null # leave the cache as it was found: warm

loadavg end
rm -f "$DATA/time.txt" "$DATA/out.json"

# ---- (e) the Markdown
say "summarize"
node "$ROOT/bench/car-summary.mjs" "$RES" --out "$OUT" --repeat "$REPEAT"
