#!/usr/bin/env bash
# dagstore-bench.sh: the DAG store's figures for issue 6, printed as a
# Markdown table (this script writes no file in the repository):
#   (a) registering REGISTER_N (100,000) shards: one `cairn dagstore
#       import-deals` (batches of 10,000 per transaction), a loop of
#       `cairn dagstore register-shard` commands (LOOP_N of them, timed and
#       extrapolated; into an empty store and into one already holding
#       REGISTER_N shards (FULL_LOOP_N, 100, of them), since every command
#       opens the store and loads its registry), and the
#       library's cairn_dagstore_register in one call;
#   (b) `cairn dagstore initialize-all` over SHARDS (100) CARv1 files of
#       BLOCKS (100,000) raw blocks of SIZE (100) bytes: 10 million blocks,
#       about 1.4 GB, read from the page cache: blocks/s, top-level index
#       entries/s and bytes/s, beside `dd` of the same files from the page
#       cache; the library's initialize_all without hashing (no-verify) and
#       without fsyncs (no-sync); and the top-level index's insertion of the
#       same 10 million entries alone (bench_dagstore tlinsert).
# Reference points: Boost documents 400-500 shard registrations/s (cairn's
# target: 20,000/s batched) and measured about 60,000 top-level index
# insertions/s (cairn's target: 2 million/s, indexing bounded by read
# bandwidth).
#
# usage: bench/dagstore/dagstore-bench.sh     (about 10 minutes on 2 cores)
#
# Environment: BUILD (build-bench: a release build, configured as
# bench/run.sh does), DATA (${TMPDIR:-/tmp}/cairn-dagstore-bench: the CARs,
# made once and kept; the stores, removed after), REPEAT (3: medians of
# that many runs where a run is cheap), SHARDS, BLOCKS, SIZE, REGISTER_N,
# LOOP_N (1000), FULL_LOOP_N (100), CONCURRENCY (0: one per core).
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-dagstore-bench}
REPEAT=${REPEAT:-3}
SHARDS=${SHARDS:-100}
BLOCKS=${BLOCKS:-100000}
SIZE=${SIZE:-100}
REGISTER_N=${REGISTER_N:-100000}
LOOP_N=${LOOP_N:-1000}
FULL_LOOP_N=${FULL_LOOP_N:-100}
CONCURRENCY=${CONCURRENCY:-0}

say () { printf '== %s\n' "$*" >&2; }
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "dagstore-bench.sh: DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA"

# ---- release build: only the two programs, so the rest of the tree being
# mid-edit does not stop them (the options of bench/run.sh).
BUILD_OPTS="-Dbuildtype=release -Dtests=false -Dc_args=-Wno-error=maybe-uninitialized"
if [ ! -f "$BUILD/build.ninja" ]; then
	say "meson setup $BUILD"
	# shellcheck disable=SC2086
	meson setup "$BUILD" "$ROOT" $BUILD_OPTS >/dev/null
fi
say "ninja -C $BUILD (cairn, bench_dagstore)"
ninja -C "$BUILD" cairn bench/bench_dagstore >/dev/null
CAIRN=$BUILD/cairn
BENCH=$BUILD/bench/bench_dagstore

now_ns () { date +%s%N; }
# median of the numbers on stdin
median () { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# field NAME: the value of NAME=... in the line on stdin
field () { tr ' ' '\n' | sed -n "s/^$1=//p"; }
# 1234567 -> 1,234,567
fmt () { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
rate () { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", (s > 0 ? n / s : 0) }'; }
secs () { awk -v ns="$1" 'BEGIN { printf "%.3f", ns / 1e9 }'; }
stores=$DATA/stores
rm -rf "$stores"
mkdir -p "$stores"
trap 'rm -rf "$stores"' EXIT

# ------------------------------------------------------- (a) registration
say "(a) registration of $REGISTER_N shards"
deals=$DATA/deals-$REGISTER_N.txt
if [ ! -f "$deals" ]; then
	awk -v n="$REGISTER_N" 'BEGIN {
		for (i = 0; i < n; i++) {
			# Keys shaped like piece CIDs (62 characters), in random order.
			k = sprintf("baga6ea4seaq%08x%08x%08x%08x%08x%02x", (i * 2654435761) % 4294967296,
				    i, (i * 40503) % 65536, i * 7, n - i, i % 251)
			printf "%s file:///data/pieces/%d.car\n", k, i
		}
	}' >"$deals"
fi
import_t=()
for _ in $(seq "$REPEAT"); do
	rm -rf "$stores/import"
	t0=$(now_ns)
	"$CAIRN" dagstore import-deals --repo "$stores/import" "$deals" >"$stores/out"
	import_t+=("$(( $(now_ns) - t0 ))")
	grep -q "$REGISTER_N deals: $REGISTER_N registered" "$stores/out" || { cat "$stores/out" >&2; exit 1; }
done
import_ns=$(printf '%s\n' "${import_t[@]}" | median)
# A second run of the same list: every deal already known.
t0=$(now_ns)
"$CAIRN" dagstore import-deals --repo "$stores/import" "$deals" >/dev/null
again_ns=$(( $(now_ns) - t0 ))

lib_t=()
for _ in $(seq "$REPEAT"); do
	rm -rf "${stores:?}/lib"
	lib_t+=("$("$BENCH" register "$stores/lib" "$REGISTER_N" | field seconds)")
done
lib_s=$(printf '%s\n' "${lib_t[@]}" | median)

# One command per shard: into an empty store, and into the full one.
loop () {
	local repo=$1 tag=$2 n=$3 i
	t0=$(now_ns)
	for i in $(seq "$n"); do
		"$CAIRN" dagstore register-shard --repo "$repo" "loop-$tag-$i" "file:///data/loop/$i.car" >/dev/null
	done
	echo $(( $(now_ns) - t0 ))
}
rm -rf "$stores/loop"
loop_empty_ns=$(loop "$stores/loop" empty "$LOOP_N")
loop_full_ns=$(loop "$stores/import" full "$FULL_LOOP_N")
rm -rf "${stores:?}/loop" "${stores:?}/lib"

# ----------------------------------------------- (b) initialize-all, 10M
total_blocks=$((SHARDS * BLOCKS))
cars=$DATA/cars-$SHARDS-$BLOCKS-$SIZE
if [ ! -f "$cars/done" ]; then
	say "(b) generating $SHARDS CARs of $BLOCKS blocks of $SIZE bytes in $cars"
	rm -rf "$cars"
	"$BENCH" gen "$cars" "$SHARDS" "$BLOCKS" "$SIZE" >&2
	touch "$cars/done"
fi
car_bytes=$(du -cb "$cars"/*.car | tail -1 | cut -f1)
ls "$cars"/*.car | awk '{ n = split($0, p, "/"); k = p[n]; sub(/\.car$/, "", k); print k, $0 }' >"$DATA/cars.txt"

say "(b) dd of the CARs from the page cache"
cat "$cars"/*.car >/dev/null
dd_t=()
for _ in $(seq "$REPEAT"); do
	t0=$(now_ns)
	for f in "$cars"/*.car; do
		dd if="$f" of=/dev/null bs=1M status=none
	done
	dd_t+=("$(( $(now_ns) - t0 ))")
done
dd_ns=$(printf '%s\n' "${dd_t[@]}" | median)

say "(b) cairn dagstore initialize-all, $REPEAT runs"
conc_opt=()
[ "$CONCURRENCY" = 0 ] || conc_opt=(--concurrency "$CONCURRENCY")
init_t=()
for _ in $(seq "$REPEAT"); do
	rm -rf "$stores/init"
	"$CAIRN" dagstore import-deals --repo "$stores/init" "$DATA/cars.txt" >/dev/null
	cat "$cars"/*.car >/dev/null
	t0=$(now_ns)
	"$CAIRN" dagstore initialize-all --repo "$stores/init" "${conc_opt[@]}" >"$stores/out"
	init_t+=("$(( $(now_ns) - t0 ))")
	grep -q "^$SHARDS shards: $SHARDS Available, 0 Errored; $total_blocks blocks" "$stores/out" ||
		{ cat "$stores/out" >&2; exit 1; }
	say "   $(cat "$stores/out")"
done
init_ns=$(printf '%s\n' "${init_t[@]}" | median)
idx_bytes=$(du -cb "$stores/init/dagstore/indexes" | tail -1 | cut -f1)
tl_bytes=$(du -cb "$stores/init/dagstore/toplevel" | tail -1 | cut -f1)
# A spot check: a block of the last shard, through the top-level index.
cid=$("$CAIRN" car ls "$cars/shard-$(printf %05d $((SHARDS - 1))).car" | tail -1)
"$CAIRN" dagstore get-block --repo "$stores/init" "$cid" | cmp -s - <("$CAIRN" car get-block "$cars/shard-$(printf %05d $((SHARDS - 1))).car" "$cid") ||
	{ echo "dagstore-bench.sh: get-block of $cid is wrong" >&2; exit 1; }

variant () {
	local args=("$@") t=()
	for _ in $(seq "$REPEAT"); do
		rm -rf "${stores:?}/var"
		"$CAIRN" dagstore import-deals --repo "$stores/var" "$DATA/cars.txt" >/dev/null
		cat "$cars"/*.car >/dev/null
		t+=("$("$BENCH" init "$stores/var" "$CONCURRENCY" "${args[@]}" | field seconds)")
	done
	printf '%s\n' "${t[@]}" | median
}
say "(b) library initialize_all variants"
lib_sync_s=$(variant)
lib_nosync_s=$(variant no-sync)
lib_noverify_s=$(variant no-sync no-verify)
rm -rf "${stores:?}/var"

say "(b) top-level index insertion alone"
tl_t=()
tl_nosync_t=()
for _ in $(seq "$REPEAT"); do
	rm -rf "$stores/tl"
	tl_t+=("$("$BENCH" tlinsert "$cars" "$stores/tl" | field add_seconds)")
	rm -rf "$stores/tl"
	tl_nosync_t+=("$("$BENCH" tlinsert "$cars" "$stores/tl" no-sync | field add_seconds)")
done
tl_s=$(printf '%s\n' "${tl_t[@]}" | median)
tl_nosync_s=$(printf '%s\n' "${tl_nosync_t[@]}" | median)
rm -rf "$stores/tl"

# ------------------------------------------------------------------ table
mbs () { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f MB/s", (s > 0 ? b / s / 1e6 : 0) }'; }
import_s=$(secs "$import_ns")
again_s=$(secs "$again_ns")
loop_empty_s=$(secs "$loop_empty_ns")
loop_full_s=$(secs "$loop_full_ns")
dd_s=$(secs "$dd_ns")
init_s=$(secs "$init_ns")
cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')
cat <<EOF

### DAG store (issue 6): $(nproc) cores ($cpu), medians of $REPEAT

| what | time | rate | reference |
|---|---|---|---|
| register $(fmt "$REGISTER_N") shards: \`import-deals\` (10,000 per transaction) | ${import_s} s | $(fmt "$(rate "$REGISTER_N" "$import_s")") shards/s | Boost: 400–500/s; target 20,000/s |
| the same list again (all already known) | ${again_s} s | $(fmt "$(rate "$REGISTER_N" "$again_s")") shards/s | |
| register $(fmt "$REGISTER_N"): library, one \`cairn_dagstore_register\` call | ${lib_s} s | $(fmt "$(rate "$REGISTER_N" "$lib_s")") shards/s | |
| \`register-shard\`, one command per shard, empty store ($LOOP_N timed) | ${loop_empty_s} s | $(fmt "$(rate "$LOOP_N" "$loop_empty_s")") shards/s (→ $(fmt "$(awk -v s="$loop_empty_s" -v n="$LOOP_N" -v N="$REGISTER_N" 'BEGIN { print s / n * N }')") s for $(fmt "$REGISTER_N")) | |
| \`register-shard\` into a store of $(fmt "$REGISTER_N") shards ($FULL_LOOP_N timed) | ${loop_full_s} s | $(fmt "$(rate "$FULL_LOOP_N" "$loop_full_s")") shards/s | |
| \`dd\` of the $SHARDS CARs ($(fmt "$car_bytes") bytes) from the page cache | ${dd_s} s | $(mbs "$car_bytes" "$dd_s") | read bandwidth |
| \`initialize-all\`: $SHARDS shards, $(fmt "$total_blocks") blocks of $SIZE B (hashed, fsynced) | ${init_s} s | $(fmt "$(rate "$total_blocks" "$init_s")") blocks/s = top-level entries/s; $(mbs "$car_bytes" "$init_s") | Boost: ~60,000 entries/s; target 2,000,000/s |
| library \`initialize_all\` (as the CLI: hashed, fsynced) | ${lib_sync_s} s | $(fmt "$(rate "$total_blocks" "$lib_sync_s")") blocks/s; $(mbs "$car_bytes" "$lib_sync_s") | |
| library, no fsync | ${lib_nosync_s} s | $(fmt "$(rate "$total_blocks" "$lib_nosync_s")") blocks/s; $(mbs "$car_bytes" "$lib_nosync_s") | |
| library, no fsync, no hashing | ${lib_noverify_s} s | $(fmt "$(rate "$total_blocks" "$lib_noverify_s")") blocks/s; $(mbs "$car_bytes" "$lib_noverify_s") | |
| top-level index alone: add $(fmt "$total_blocks") entries ($SHARDS adds, fsynced) | ${tl_s} s | $(fmt "$(rate "$total_blocks" "$tl_s")") entries/s | target 2,000,000/s |
| top-level index alone, no fsync | ${tl_nosync_s} s | $(fmt "$(rate "$total_blocks" "$tl_nosync_s")") entries/s | |

On disk after \`initialize-all\`: CARv2 index files $(fmt "$idx_bytes") bytes, top-level index $(fmt "$tl_bytes") bytes ($(awk -v b="$tl_bytes" -v n="$total_blocks" 'BEGIN { printf "%.1f", b / n }') bytes per entry).
EOF
