#!/usr/bin/env bash
# unixfs-unpack.sh: times `cairn unpack` of a 1 GiB UnixFS file (ipfs-car's
# layout: 1 MiB raw leaves under one node of width 1024) against the
# JavaScript peers (extract.mjs, `ipfs-car unpack`) and dd, and prints a
# Markdown table (medians over REPEAT rounds).
#
# usage: bench/unixfs-unpack.sh     (from anywhere; about 2 minutes on 2
#                                    cores, plus ~30 s to make the data once)
#
# Steps: a release build in $BUILD (configured once); npm ci in the peers if
# their node_modules is missing; the data set (gen-unixfs.mjs 1024, with its
# raw bytes to check the output against) in $DATA, never in the repository;
# then REPEAT rounds, each running every command once, in turn, under
# /usr/bin/time -v (wall, user, system seconds and peak RSS). Each command
# writes a new file: its output from the round before is removed, and the
# disk synced, before the clock starts. The CAR is in the page cache (read
# once beforehand), so the figures are CPU and page-cache bound, and dd (the
# CAR copied to a new file, no hashing) is the machine's limit for the same
# bytes. cairn's output is compared with the raw bytes once.
#
# Environment: DATA (${TMPDIR:-/tmp}/cairn-unpack-bench), BUILD (build-bench,
# shared with run.sh and car.sh), PEERS (../shared/peers), REPEAT (3).
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-unpack-bench}
BUILD=${BUILD:-$ROOT/build-bench}
PEERS=${PEERS:-$(cd "$ROOT/../shared/peers" && pwd)}
REPEAT=${REPEAT:-3}

say () { printf '== %s\n' "$*" >&2; }
for tool in meson ninja node npm dd /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "unixfs-unpack.sh: $tool is needed" >&2; exit 1; }
done
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "unixfs-unpack.sh: DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA"

# ---- release build (the options run.sh and car.sh use: gcc -O3 may warn
# maybe-uninitialized where it cannot follow the error paths).
BUILD_OPTS="-Dbuildtype=release -Dtests=false -Dc_args=-Wno-error=maybe-uninitialized"
if [ ! -f "$BUILD/build.ninja" ]; then
	say "meson setup $BUILD"
	# shellcheck disable=SC2086
	meson setup "$BUILD" "$ROOT" $BUILD_OPTS >/dev/null
fi
say "ninja -C $BUILD cairn"
ninja -C "$BUILD" cairn >/dev/null
CAIRN=$BUILD/cairn

# ---- the peers and the data set
sh "$(dirname "$0")/../scripts/install-peers.sh" "$PEERS"
CAR=$DATA/unixfs-1024MiB.car
RAW=$DATA/unixfs-1024MiB.bin
if [ ! -s "$CAR" ] || [ ! -s "$RAW" ]; then
	say "gen-unixfs.mjs 1024 (ipfs-car layout)"
	node "$PEERS/gen-unixfs.mjs" 1024 "$CAR.tmp" --raw "$RAW" >/dev/null
	mv "$CAR.tmp" "$CAR"
fi
ROOT_CID=$("$CAIRN" car root "$CAR")
OUT=$DATA/out
RES=$DATA/unpack-results.txt
: >"$RES"

# One timed command: "tool wall user sys rss_kib" appended to $RES.
timed () { # tool -- command...
	local tool=$1
	shift 2
	rm -rf "$OUT"
	mkdir -p "$OUT"
	sync
	if ! /usr/bin/time -f '%e %U %S %M' -o "$DATA/time.txt" "$@" >/dev/null 2>"$DATA/err.txt"; then
		cat "$DATA/err.txt" >&2
		echo "unixfs-unpack.sh: $tool failed" >&2
		exit 1
	fi
	echo "$tool $(cat "$DATA/time.txt")" >>"$RES"
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cat "$CAR" >/dev/null # into the page cache
say "cairn unpack, checked against the raw bytes"
rm -rf "$OUT"
mkdir -p "$OUT"
"$CAIRN" unpack "$CAR" -o "$OUT/file" >/dev/null
cmp "$OUT/file" "$RAW"

for r in $(seq 1 "$REPEAT"); do
	say "round $r/$REPEAT"
	timed "dd (page cache to a new file)" -- dd if="$CAR" of="$OUT/file" bs=1M
	timed "dd (page cache to /dev/null)" -- dd if="$CAR" of=/dev/null bs=1M
	timed "cairn unpack" -- "$CAIRN" unpack "$CAR" -o "$OUT/file"
	timed "cairn unpack -j 1" -- "$CAIRN" unpack -j 1 "$CAR" -o "$OUT/file"
	timed "node extract.mjs (ipfs-unixfs-exporter)" -- node "$PEERS/extract.mjs" "$CAR" "$OUT"
	timed "ipfs-car unpack" -- "$PEERS/node_modules/.bin/ipfs-car" unpack "$CAR" --output "$OUT/file"
done
rm -rf "$OUT" "$DATA/time.txt" "$DATA/err.txt"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table: medians per tool, throughput over the file's 2^30 bytes.
say "summary"
echo "Unpack of a 1 GiB UnixFS file ($ROOT_CID: 1024 raw leaves of 1 MiB, one"
echo "root of width 1024), CAR in the page cache, $(nproc) cores, median of $REPEAT;"
echo "GB/s = 2^30 bytes / wall time. Load average: $load_start at the start, $load_end at the end."
echo
echo "| tool | wall s | GB/s | user s | sys s | peak RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
awk '{ rss = $NF; sys = $(NF-1); user = $(NF-2); wall = $(NF-3); $NF = ""; $(NF-1) = ""; $(NF-2) = ""; $(NF-3) = ""
       sub(/ +$/, ""); print $0 "\t" wall "\t" user "\t" sys "\t" rss }' "$RES" |
	node -e '
		let s = ""
		process.stdin.on("data", (d) => { s += d }).on("end", () => {
			const by = new Map()
			for (const line of s.trim().split("\n")) {
				const [tool, ...v] = line.split("\t")
				if (!by.has(tool)) by.set(tool, [])
				by.get(tool).push(v.map(Number))
			}
			const med = (a) => { a = [...a].sort((x, y) => x - y); return a[(a.length - 1) >> 1] }
			for (const [tool, runs] of by) {
				const col = (i) => med(runs.map((r) => r[i]))
				const wall = col(0)
				console.log(`| ${tool} | ${wall.toFixed(2)} | ${(2 ** 30 / wall / 1e9).toFixed(2)} | ` +
					`${col(1).toFixed(2)} | ${col(2).toFixed(2)} | ${(col(3) / 1024).toFixed(1)} |`)
			}
		})'
