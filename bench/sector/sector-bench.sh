#!/bin/sh
# sector-bench.sh: add-piece of a 1 GiB piece (padded; 1,065,353,216 payload
# bytes) into a 32 GiB sector beside `cairn piece commp` of the same file and
# `dd` writing it (conv=fsync, as add-piece fsyncs), and read-piece of it
# back to /dev/null; medians of ROUNDS (default 5). The input sits in the
# page cache (read once before timing), so the disk write is what is timed.
#   bench/sector/sector-bench.sh [build/cairn]   (BENCH_DIR: where to write)
set -eu
CAIRN=$(cd "$(dirname "${1:-build/cairn}")" && pwd)/$(basename "${1:-build/cairn}")
DIR=${BENCH_DIR:-/tmp/cairn-sector-bench}
ROUNDS=${ROUNDS:-5}
PAYLOAD=1065353216

rm -rf "$DIR"
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT
head -c $PAYLOAD /dev/urandom >"$DIR/piece.bin"
cat "$DIR/piece.bin" >/dev/null

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b / s / 1e6}'; }

: >"$DIR/commp.t"; : >"$DIR/dd.t"; : >"$DIR/add.t"; : >"$DIR/read.t"
for r in $(seq 1 "$ROUNDS"); do
	t0=$(now); "$CAIRN" piece commp "$DIR/piece.bin" >/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/commp.t"

	rm -f "$DIR/dd.out"
	t0=$(now); dd if="$DIR/piece.bin" of="$DIR/dd.out" bs=4M conv=fsync 2>/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/dd.t"
	rm -f "$DIR/dd.out"

	rm -rf "$DIR/store"
	export CAIRN_PATH="$DIR/store"
	"$CAIRN" storage attach --init --seal --store "$DIR/store/p" >/dev/null
	t0=$(now); cid=$("$CAIRN" sector add-piece --json --size 32GiB s-t01000-1 "$DIR/piece.bin" |
		sed 's/.*"piece_cid":"\([^"]*\)".*/\1/'); t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/add.t"

	t0=$(now); "$CAIRN" sector read-piece "$cid" >/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/read.t"
	"$CAIRN" sector read-piece "$cid" | cmp - "$DIR/piece.bin"
done

c=$(median <"$DIR/commp.t"); d=$(median <"$DIR/dd.t"); a=$(median <"$DIR/add.t"); rd=$(median <"$DIR/read.t")
printf '| step | median s | MB/s (payload) |\n|---|---|---|\n'
printf '| cairn piece commp | %s | %s |\n' "$c" "$(mbps $PAYLOAD "$c")"
printf '| dd bs=4M conv=fsync | %s | %s |\n' "$d" "$(mbps $PAYLOAD "$d")"
printf '| cairn sector add-piece | %s | %s |\n' "$a" "$(mbps $PAYLOAD "$a")"
printf '| cairn sector read-piece | %s | %s |\n' "$rd" "$(mbps $PAYLOAD "$rd")"
slower=$(awk -v c="$c" -v d="$d" 'BEGIN {print (c > d) ? c : d}')
awk -v s="$slower" -v a="$a" 'BEGIN {printf "add-piece at %.0f %% of the slower of commp and dd\n", 100 * s / a}'
