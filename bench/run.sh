#!/usr/bin/env bash
# run.sh: runs the IPLD core benchmarks beside the machine's limit (openssl
# speed) and the JavaScript reference, and writes their figures to docs/BENCHMARKS.md.
#
# usage: bench/run.sh            (from anywhere; 3-4 minutes on 2 cores)
#
# Steps: a release build in build-bench (configured once, reused after);
# npm ci in the reference peers if their node_modules is missing; REPEAT
# rounds of openssl speed -evp sha256 and bench_cid interleaved size by size;
# the DAG-CBOR CARs made by the peers' gen-cbor.mjs (once, in $DATA, never in
# the repository); REPEAT rounds of bench_dagcbor and bench/dagcbor-decode.mjs
# interleaved, each under /usr/bin/time -v for its peak RSS; then
# bench/summarize.mjs prints the Markdown and updates $OUT.
#
# Environment: DATA (${TMPDIR:-/tmp}/cairn-bench), BUILD (build-bench),
# PEERS (../shared/peers), REPEAT (3), SECS (1: seconds per CID measurement),
# SIZES (200 1024 16384 1048576), SETS (100000 1000000: DAG-CBOR block counts),
# OUT (docs/BENCHMARKS.md; "-" prints only).
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-bench}
BUILD=${BUILD:-$ROOT/build-bench}
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" && pwd)}
REPEAT=${REPEAT:-3}
SECS=${SECS:-1}
SIZES=${SIZES:-200 1024 16384 1048576}
SETS=${SETS:-100000 1000000}
OUT=${OUT:-$ROOT/docs/BENCHMARKS.md}
NCPU=$(nproc)
case "$SECS" in ''|*[!0-9]*|0) echo "run.sh: SECS must be a whole number of seconds (openssl speed -seconds)" >&2; exit 2 ;; esac

say () { printf '== %s\n' "$*" >&2; }
for tool in meson ninja node npm openssl /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "run.sh: DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA"

# ---- (a) release build: only the two benchmark programs, so the rest of the
# tree being mid-edit does not stop them. -Dtests=false keeps tests/ and fuzz/
# out. gcc 12 at -O3 reports maybe-uninitialized false positives in src/ipld
# (dagcbor.c, dagjson.c, dagpb.c: outputs of helpers left unset on their error
# paths, which gcc cannot tell return non-zero), so that one warning is not an
# error here.
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
say "ninja -C $BUILD (bench targets)"
ninja -C "$BUILD" bench/bench_cid bench/bench_dagcbor >/dev/null
BENCH_CID=$BUILD/bench/bench_cid
BENCH_DAGCBOR=$BUILD/bench/bench_dagcbor

# ---- (b) the reference peers
sh "$(dirname "$0")/../scripts/install-peers.sh" "$PEERS"

RES=$DATA/results.jsonl
: >"$RES"
# Adds fields to the JSON objects on stdin, one per line: tag 'k:v,k:v'.
tag () { sed "s/}\$/,$1}/"; }
# How busy the machine was (other work skews wall-clock rates).
loadavg () {
	echo "{\"bench\":\"load\",\"when\":\"$1\",\"date\":\"$(date -u +%FT%TZ)\",\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$RES"
}
loadavg start

# ---- (c) CIDs per second beside openssl speed, interleaved size by size so
# drift in the machine's speed hits both alike. openssl speed -evp times
# EVP_Digest per block with a fetched digest and divides by the CPU time it
# used (no -elapsed), as bench_cid does: the machine is shared, and wall time
# would measure the other tenants. For all cores, N openssl processes run at
# once and their rates are summed: openssl speed -multi N would do the same but
# divides by wall time whatever the flags.
openssl_one () { # size -> bytes per CPU second
	openssl speed -evp sha256 -bytes "$1" -seconds "$SECS" -mr 2>/dev/null |
		awk -F: '/^\+F:/ { r = $4 } END { if (r == "") exit 1; print r }'
}
openssl_rate () { # size threads -> bytes per CPU second, summed
	local i pids=""
	if [ "$2" -eq 1 ]; then
		openssl_one "$1"
		return
	fi
	for i in $(seq 1 "$2"); do
		openssl_one "$1" >"$DATA/openssl.$i" &
		pids="$pids $!"
	done
	for i in $pids; do
		wait "$i"
	done
	for i in $(seq 1 "$2"); do cat "$DATA/openssl.$i"; done | awk '{ s += $1 } END { print s }'
	for i in $(seq 1 "$2"); do rm -f "$DATA/openssl.$i"; done
}
THREADS="1"
[ "$NCPU" -gt 1 ] && THREADS="1 $NCPU"
for r in $(seq 1 "$REPEAT"); do
	for size in $SIZES; do
		for t in $THREADS; do
			say "round $r/$REPEAT: sha2-256 $size B, $t thread(s): openssl, cairn"
			bps=$(openssl_rate "$size" "$t")
			echo "{\"bench\":\"openssl\",\"hash\":\"sha2-256\",\"size\":$size,\"threads\":$t,\"seconds\":$SECS,\"cids_per_s\":$(awk -v b="$bps" -v s="$size" 'BEGIN { printf "%.1f", b / s }'),\"MBps\":$(awk -v b="$bps" 'BEGIN { printf "%.2f", b / 1e6 }')}" |
				tag "\"run\":$r" >>"$RES"
			# One thread also times the bare SHA256_* calls and EVP_Digest in
			# the same harness: what the CID layer and EVP each cost.
			impls=cairn
			[ "$t" -eq 1 ] && impls=cairn,bare,evp
			"$BENCH_CID" --json --seconds "$SECS" --sizes "$size" --threads "$t" \
				--hashes sha2-256 --impls "$impls" 2>/dev/null | tag "\"run\":$r" >>"$RES"
		done
	done
	say "round $r/$REPEAT: blake2b-256"
	"$BENCH_CID" --json --seconds "$SECS" --sizes 200,1048576 --threads "${THREADS// /,}" \
		--hashes blake2b-256 2>/dev/null | tag "\"run\":$r" >>"$RES"
done

# ---- (d) DAG-CBOR decode and link walk on the peers' blocks
for n in $SETS; do
	car=$DATA/cbor-$n.car
	if [ ! -s "$car" ]; then
		say "gen-cbor.mjs $n"
		node "$PEERS/gen-cbor.mjs" "$n" "$car.tmp" >/dev/null
		mv "$car.tmp" "$car"
	fi
	cat "$car" >/dev/null # into the page cache
done
timed () { # set run -- command...: JSON lines tagged with peak RSS and wall time
	local set=$1 run=$2 out rss wall
	shift 3
	out=$(/usr/bin/time -v -o "$DATA/time.txt" "$@")
	rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$DATA/time.txt")
	wall=$(awk '/Elapsed \(wall clock\)/ { n = split($NF, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; print s }' "$DATA/time.txt")
	printf '%s\n' "$out" | tag "\"set\":\"cbor-$set\",\"run\":$run,\"peak_rss_kib\":$rss,\"wall_s\":$wall" >>"$RES"
}
for r in $(seq 1 "$REPEAT"); do
	for n in $SETS; do
		car=$DATA/cbor-$n.car
		say "round $r/$REPEAT: DAG-CBOR cbor-$n: cairn, @ipld/dag-cbor"
		timed "$n" "$r" -- "$BENCH_DAGCBOR" --json --repeats 3 --min-seconds 0.2 \
			--threads "${THREADS// /,}" "$car"
		# A JS pass over a million blocks takes seconds: there one timed
		# pass per process, and no verify, keep the run short.
		modes=decode+walk,verify
		jsrep=3
		[ "$n" -gt 100000 ] && modes=decode+walk jsrep=1
		timed "$n" "$r" -- node "$ROOT/bench/dagcbor-decode.mjs" "$car" --repeats "$jsrep" \
			--min-seconds 0.2 --modes "$modes" --peers "$PEERS"
	done
done

loadavg end

# ---- (e) the Markdown
say "summarize"
node "$ROOT/bench/summarize.mjs" "$RES" --out "$OUT" --peers "$PEERS" --repeat "$REPEAT" --secs "$SECS"
