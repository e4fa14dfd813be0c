#!/usr/bin/env bash
# piece.sh: CommP of 1 GiB with cairn (both cores, one thread, the SHA-NI-only
# and OpenSSL paths) beside the JavaScript peer (@web3-storage/data-segment's
# commp.mjs) and openssl speed, plus fr32 pad; prints a Markdown table.
#
# usage: bench/piece.sh          (from anywhere; about 6 minutes on 2 cores,
#                                 most of it the JS peer)
#
# Steps: a release build in $BUILD (as bench/run.sh makes it); npm ci in the
# peers if their node_modules is missing; the data set (once, in $DATA, never
# in the repository): SIZE_MIB MiB of the AES-256-CTR stream keyed by
# SHA-256("car-bench"), the peers' generator (../shared/peers/README.md);
# REPEAT rounds, each running every command back to back under
# /usr/bin/time -v (wall, user + system, peak RSS): cairn piece commp on 2
# threads and on 1, with CAIRN_NO_AVX512=1 (SHA-NI four lanes) and
# CAIRN_NO_SHANI=1 (OpenSSL), node commp.mjs, cairn piece pad to /dev/null;
# every piece CID must equal the peer's. Then openssl speed -evp sha256 (one
# process and -multi 2) and bench_piece (the inner loops in memory). Medians
# of the rounds go into the table. The figures are for the lead to merge into
# docs/BENCHMARKS.md; this script writes no file in the repository.
#
# Environment: DATA (${TMPDIR:-/tmp}/car-bench, the peers' default), BUILD
# (build-bench), PEERS (../shared/peers), REPEAT (3), SIZE_MIB (1024),
# NODE (1: also run the JS peer; 0 skips it).
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-${TMPDIR:-/tmp}/car-bench}
BUILD=${BUILD:-$ROOT/build-bench}
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" && pwd)}
REPEAT=${REPEAT:-3}
SIZE_MIB=${SIZE_MIB:-1024}
NODE=${NODE:-1}

say () { printf '== %s\n' "$*" >&2; }
for tool in meson ninja node npm openssl /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "piece.sh: $tool is needed" >&2; exit 1; }
done
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "piece.sh: DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA"

# ---- (a) release build (the options bench/run.sh uses; maybe-uninitialized
# stays a warning there, as gcc -O3 reports false ones).
BUILD_OPTS="-Dbuildtype=release -Dtests=false -Dc_args=-Wno-error=maybe-uninitialized"
if [ ! -f "$BUILD/build.ninja" ]; then
	say "meson setup $BUILD"
	# shellcheck disable=SC2086
	meson setup "$BUILD" "$ROOT" $BUILD_OPTS >/dev/null
fi
say "ninja -C $BUILD (cairn, bench_piece)"
ninja -C "$BUILD" cairn bench/piece/bench_piece >/dev/null
CAIRN=$BUILD/cairn
BENCH_PIECE=$BUILD/bench/piece/bench_piece

# ---- (b) the reference peer
if [ "$NODE" = 1 ]; then
	sh "$(dirname "$0")/../scripts/install-peers.sh" "$PEERS"
fi

# ---- (c) the data set
IN=$DATA/unixfs-${SIZE_MIB}MiB.bin
if [ ! -s "$IN" ] || [ "$(stat -c %s "$IN")" != $((SIZE_MIB * 1048576)) ]; then
	say "making $IN"
	KEY=$(printf %s car-bench | sha256sum | cut -c1-64)
	# openssl dies of SIGPIPE when head has enough: not a failure.
	{ openssl enc -aes-256-ctr -nosalt -K "$KEY" -iv 00000000000000000000000000000000 \
		-in /dev/zero 2>/dev/null || true; } | head -c $((SIZE_MIB * 1048576)) >"$IN.tmp"
	mv "$IN.tmp" "$IN"
fi
BYTES=$(stat -c %s "$IN")
cat "$IN" >/dev/null # into the page cache: every run reads it warm

# ---- (d) the rounds
RES=$(mktemp -d "${TMPDIR:-/tmp}/piece-bench-XXXXXX")
trap 'rm -rf "$RES"' EXIT

# run NAME CMD...: one timed run; appends "wall cpu rss_kib" to $RES/NAME and
# keeps its standard output in $RES/NAME.out.
run () {
	local name=$1 t
	shift
	t=$RES/time.txt
	/usr/bin/time -v -o "$t" "$@" >"$RES/$name.out"
	awk -F': ' '
		/Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = 0; for (i = 1; i <= n; i++) w = w * 60 + p[i] }
		/User time/ { u = $2 } /System time/ { s = $2 }
		/Maximum resident set size/ { r = $2 }
		END { printf "%.3f %.3f %d\n", w, u + s, r }' "$t" >>"$RES/$name"
}

# cid FILE KEY: a piece CID from cairn's or the peer's JSON.
cid () {
	tr ',' '\n' <"$1" | sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p" | head -n 1
}

for r in $(seq "$REPEAT"); do
	say "round $r of $REPEAT"
	run cairn2 "$CAIRN" piece commp --json "$IN"
	run cairn1 "$CAIRN" piece commp --json --threads 1 "$IN"
	run shani2 env CAIRN_NO_AVX512=1 "$CAIRN" piece commp --json "$IN"
	run openssl2 env CAIRN_NO_SHANI=1 "$CAIRN" piece commp --json "$IN"
	run pad "$CAIRN" piece pad "$IN" /dev/null
	if [ "$NODE" = 1 ]; then
		run node node "$PEERS/commp.mjs" "$IN"
	fi
done

want=$(cid "$RES/cairn2.out" piece_cid)
names="cairn1 shani2 openssl2"
[ "$NODE" = 1 ] && names="$names node"
for name in $names; do
	got=$(cid "$RES/$name.out" piece_cid)
	if [ "$got" != "$want" ]; then
		echo "piece.sh: $name gives $got, cairn gives $want" >&2
		exit 1
	fi
done

say "openssl speed -evp sha256"
ssl1=$(openssl speed -seconds 3 -bytes 16384 -evp sha256 2>/dev/null | awk '/^sha256/ { sub("k", "", $2); print $2 * 1000 }')
ssl2=$(openssl speed -seconds 3 -bytes 16384 -multi 2 -evp sha256 2>/dev/null | awk '/^evp|^sha256/ { v = $NF } END { sub("k", "", v); print v * 1000 }')
say "bench_piece"
"$BENCH_PIECE" 256 >"$RES/inner.json"

# ---- (e) the table: medians; MB = 10^6 bytes.
median () { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
row () {
	local name=$1 label=$2 wall cpu rss
	[ -s "$RES/$name" ] || return 0
	wall=$(cut -d' ' -f1 "$RES/$name" | median)
	cpu=$(cut -d' ' -f2 "$RES/$name" | median)
	rss=$(cut -d' ' -f3 "$RES/$name" | median)
	awk -v l="$label" -v w="$wall" -v c="$cpu" -v r="$rss" -v b="$BYTES" 'BEGIN {
		printf "| %s | %.2f | %.2f | %.0f | %.1f |\n", l, w, c, b / w / 1e6, r / 1024 }'
}

echo
echo "CommP of $SIZE_MIB MiB (AES-CTR stream, page cache warm), median of $REPEAT runs:"
echo "piece CID $want"
echo
echo "| command | wall s | CPU s | MB/s | peak RSS MiB |"
echo "|---|---|---|---|---|"
row cairn2 "cairn piece commp (2 threads: AVX-512 x16 + SHA-NI)"
row cairn1 "cairn piece commp --threads 1"
row shani2 "CAIRN_NO_AVX512=1 cairn piece commp (2 threads, SHA-NI x4)"
row openssl2 "CAIRN_NO_SHANI=1 cairn piece commp (2 threads, OpenSSL)"
row node "node commp.mjs (@web3-storage/data-segment)"
row pad "cairn piece pad IN /dev/null (fr32, 1 thread)"
echo
echo "Machine limits and inner loops (MB/s):"
echo
echo "| measurement | MB/s |"
echo "|---|---|"
awk -v a="$ssl1" -v b="$ssl2" 'BEGIN {
	printf "| openssl speed -evp sha256, 16 KiB blocks, 1 process | %.0f |\n", a / 1e6
	printf "| openssl speed -evp sha256, 16 KiB blocks, -multi 2 | %.0f |\n", b / 1e6 }'
sed -n 's/.*"bench":"\([^"]*\)","MBps":\([0-9]*\).*/| bench_piece: \1 | \2 |/p' "$RES/inner.json"
