#!/bin/sh
# export.sh: `cairn export` of a DAG with shared structure (gen_dag: a tree
# updated by path copying, one header per epoch), with 1 and 2 workers, and
# with 128 MiB (two bits per block of the indexed source; and --seen-by-cid,
# every CID in the seen-set, so the spill path runs); the JS walk over @ipld/car
# (walk.mjs) beside it. Prints a Markdown table of medians over REPEAT runs.
#
#   bench/export/export.sh BUILD_DIR        (BLOCKS=10000000 REPEAT=3
#                                            JS_BLOCKS=1000000 DATA=/tmp/...)
#
# Wall time and peak RSS from /usr/bin/time; the source CAR (a CARv2 with its
# index) is read with --trusted, as the JS walk does not hash either. The
# index and the blocks are mapped (but in the --no-mmap runs), so the pages
# read count in RSS: RssAnon (the export's own memory) is sampled from /proc
# beside it. Wall time includes the fsync of the CAR written.
#
# The source CAR's pages are dropped from the page cache and read back by
# one untimed export first, so every run reads it as Linux caches a file
# read from disk. That matters: the kernel keeps a file in folios of the
# size it was written or read ahead in, and a mapping of 2 MiB folios
# takes a TLB entry per 2 MiB instead of per 4 KiB. The generator writes
# 1 MiB at a time (4 KiB pages when mapped), a read from disk on Linux 6.x
# caches 2 MiB folios (cairn export advises huge pages on the CAR it reads),
# and the export of 10 M blocks was 14% faster so. The last column is how
# much of the CAR a run had mapped in 2 MiB (FilePmdMapped).
set -eu
BUILD=$1
BLOCKS=${BLOCKS:-10000000}
JS_BLOCKS=${JS_BLOCKS:-1000000}
REPEAT=${REPEAT:-3}
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-export-bench}
PEERS=${PEERS:-$(cd "$(dirname "$0")/../../../shared/peers" && pwd)}
mkdir -p "$DATA"
CAIRN=$BUILD/cairn
GEN=$BUILD/bench/export/gen_dag

dag() { # blocks -> prints the root, generating the CAR once
	if [ ! -s "$DATA/dag-$1.root" ]; then
		"$GEN" "$DATA/dag-$1.car" "$1" 1 | cut -d' ' -f1 >"$DATA/dag-$1.root"
	fi
	cat "$DATA/dag-$1.root"
}

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# from_disk CAR: drop the CAR's pages, so the next run reads it from disk.
from_disk() {
	dd if="$1" iflag=nocache count=0 2>/dev/null || true
}

# run NAME CMD...: REPEAT runs; median wall seconds, peak RSS and RssAnon,
# and the most of the files mapped in 2 MiB (MiB).
run() {
	name=$1; shift
	: >"$DATA/wall" ; : >"$DATA/rss" ; : >"$DATA/anon" ; : >"$DATA/pmd"
	i=0
	while [ $i -lt "$REPEAT" ]; do
		sync # the last run's CAR is written back now, not during this one
		/usr/bin/time -f '%e %M' -o "$DATA/time" "$@" >/dev/null &
		pid=$!
		anon=0 ; pmd=0
		while kill -0 $pid 2>/dev/null; do
			for p in $(pgrep -P $pid) ; do
				a=$(awk '/RssAnon/ {print $2}' /proc/$p/status 2>/dev/null || echo 0)
				[ "${a:-0}" -gt $anon ] && anon=$a
				m=$(awk '/FilePmdMapped/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null || echo 0)
				[ "${m:-0}" -gt $pmd ] && pmd=$m
			done
			sleep 0.2
		done
		wait $pid
		cut -d' ' -f1 "$DATA/time" >>"$DATA/wall"
		echo $(( $(cut -d' ' -f2 "$DATA/time") / 1024 )) >>"$DATA/rss"
		echo $((anon / 1024)) >>"$DATA/anon"
		echo $((pmd / 1024)) >>"$DATA/pmd"
		rm -f "$DATA/out.car" "$DATA/js.car"
		i=$((i + 1))
	done
	wall=$(median <"$DATA/wall")
	printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$wall" \
		"$(awk -v b="$blocks" -v w="$wall" 'BEGIN {printf "%.0f", b / w}')" \
		"$(median <"$DATA/rss")" "$(median <"$DATA/anon")" "$(median <"$DATA/pmd")"
}

header() {
	echo "| $1 blocks | wall s (median of $REPEAT) | blocks/s | peak RSS MiB | peak RssAnon MiB | mapped in 2 MiB, MiB |"
	echo "|---|---|---|---|---|---|"
}

root=$(dag "$BLOCKS")
blocks=$BLOCKS
from_disk "$DATA/dag-$BLOCKS.car"
REPEAT=1 run "read from disk" "$CAIRN" export --from "$DATA/dag-$BLOCKS.car" --trusted -j 2 \
	--spill-dir "$DATA" "$root" -o "$DATA/out.car" >/dev/null
header "$BLOCKS"
for j in 1 2; do
	run "cairn export -j $j --memory 1GiB" "$CAIRN" export --from "$DATA/dag-$BLOCKS.car" --trusted \
		-j $j --memory 1GiB --spill-dir "$DATA" "$root" -o "$DATA/out.car"
done
# 128 MiB: from the indexed CAR two bits per block (2.5 MB for 10 M blocks),
# so nothing spills; --seen-by-cid keeps every CID in the seen-set, which
# then spills (the path any store without positions takes).
run "cairn export -j 2 --memory 128MiB" "$CAIRN" export --from "$DATA/dag-$BLOCKS.car" --trusted \
	-j 2 --memory 128MiB --spill-dir "$DATA" "$root" -o "$DATA/out.car"
for j in 1 2; do
	run "cairn export -j $j --memory 128MiB --seen-by-cid" "$CAIRN" export --from "$DATA/dag-$BLOCKS.car" \
		--trusted --seen-by-cid -j $j --memory 128MiB --spill-dir "$DATA" "$root" -o "$DATA/out.car"
done
# The source read with pread: its blocks' pages stay out of the RSS (its
# index is read in place by the locates of a walk by positions); and so with
# the spill path running, the issue's RSS case, where the index is read with
# pread too.
run "cairn export -j 2 --memory 128MiB --no-mmap" "$CAIRN" export --from "$DATA/dag-$BLOCKS.car" \
	--trusted --no-mmap -j 2 --memory 128MiB --spill-dir "$DATA" "$root" -o "$DATA/out.car"
run "cairn export -j 2 --memory 128MiB --no-mmap --seen-by-cid" "$CAIRN" export \
	--from "$DATA/dag-$BLOCKS.car" --trusted --no-mmap --seen-by-cid -j 2 --memory 128MiB \
	--spill-dir "$DATA" "$root" -o "$DATA/out.car"
# The JS walk holds every CID in a Set and the CAR's index in a Map: it is
# run on a smaller DAG of the same shape, with the same, for comparison.
if [ -d "$PEERS/node_modules/@ipld/car" ] && [ "$JS_BLOCKS" -gt 0 ]; then
	jsroot=$(dag "$JS_BLOCKS")
	blocks=$JS_BLOCKS
	ln -sfn "$PEERS/node_modules" "$DATA/node_modules"
	cp "$(dirname "$0")/walk.mjs" "$DATA/walk.mjs"
	from_disk "$DATA/dag-$JS_BLOCKS.car"
	REPEAT=1 run "read from disk" "$CAIRN" export --from "$DATA/dag-$JS_BLOCKS.car" --trusted \
		-j 2 --spill-dir "$DATA" "$jsroot" -o "$DATA/out.car" >/dev/null
	echo
	header "$JS_BLOCKS"
	for j in 1 2; do
		run "cairn export -j $j" "$CAIRN" export --from "$DATA/dag-$JS_BLOCKS.car" --trusted -j $j \
			--spill-dir "$DATA" "$jsroot" -o "$DATA/out.car"
	done
	REPEAT=1 run "node walk.mjs (@ipld/car, one run)" node "$DATA/walk.mjs" "$DATA/dag-$JS_BLOCKS.car" "$DATA/js.car"
fi
