#!/bin/sh
# deal-bench.sh: `cairn deal import` of a 1 GiB piece (a CAR of 1000 MiB of
# random bytes, padded to 1 GiB) into a new 32 GiB sector (the default),
# beside `cairn piece commp` of the same CAR and `dd` writing it
# (conv=fsync, as the import fsyncs), then read-piece of it to /dev/null;
# medians of ROUNDS (default 3). The target: deal import within 80% of the
# slower of commp and dd (its throughput at least 0.8 times theirs). The CAR
# sits in the page cache (read once before timing).
#   bench/deal/deal-bench.sh [build/cairn]   (BENCH_DIR: where to write)
set -eu
CAIRN=$(cd "$(dirname "${1:-build/cairn}")" && pwd)/$(basename "${1:-build/cairn}")
DIR=${BENCH_DIR:-/tmp/cairn-deal-bench}
ROUNDS=${ROUNDS:-3}

rm -rf "$DIR"
mkdir -p "$DIR/data"
trap 'rm -rf "$DIR"' EXIT
head -c 1048576000 /dev/urandom >"$DIR/data/payload.bin"
"$CAIRN" pack "$DIR/data" -o "$DIR/deal.car" >/dev/null
rm -rf "$DIR/data"
BYTES=$(wc -c <"$DIR/deal.car")
PIECE=$("$CAIRN" piece commp --json "$DIR/deal.car" | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p')
cat "$DIR/deal.car" >/dev/null

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b / s / 1e6}'; }

: >"$DIR/commp.t"; : >"$DIR/dd.t"; : >"$DIR/deal.t"; : >"$DIR/read.t"
for r in $(seq 1 "$ROUNDS"); do
	t0=$(now); "$CAIRN" piece commp "$DIR/deal.car" >/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/commp.t"

	rm -f "$DIR/dd.out"
	t0=$(now); dd if="$DIR/deal.car" of="$DIR/dd.out" bs=4M conv=fsync 2>/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/dd.t"
	rm -f "$DIR/dd.out"

	rm -rf "$DIR/store"
	export CAIRN_PATH="$DIR/store"
	t0=$(now); "$CAIRN" deal import --piece-cid "$PIECE" "$DIR/deal.car" >/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/deal.t"

	t0=$(now); "$CAIRN" sector read-piece "$PIECE" -o /dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$DIR/read.t"
done
c=$(median <"$DIR/commp.t"); d=$(median <"$DIR/dd.t"); i=$(median <"$DIR/deal.t"); rd=$(median <"$DIR/read.t")
slower=$(awk -v a="$c" -v b="$d" 'BEGIN {print (a > b) ? a : b}')
echo "deal import of a 1 GiB piece ($BYTES bytes of CAR), medians of $ROUNDS:"
echo "  piece commp   ${c}s  $(mbps "$BYTES" "$c") MB/s"
echo "  dd (fsync)    ${d}s  $(mbps "$BYTES" "$d") MB/s"
echo "  deal import   ${i}s  $(mbps "$BYTES" "$i") MB/s  ($(awk -v s="$slower" -v i="$i" \
	'BEGIN {printf "%.0f", 100 * s / i}')% of the slower; target 80%)"
echo "  read-piece    ${rd}s  $(mbps "$BYTES" "$rd") MB/s"
