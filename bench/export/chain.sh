#!/bin/sh
# chain.sh: `cairn chain export-range` of a generated Filecoin-shaped chain
# (gen_chain: real headers, legacy message and receipt AMTs, state trees of
# a HAMT and AMTs changing a little each epoch, null rounds), with 1 and 2
# workers: the whole chain (tail at genesis, every flag) and a recent range
# (the last 2,000 epochs). Prints a Markdown table of medians over REPEAT runs.
#
#   bench/export/chain.sh BUILD_DIR        (EPOCHS=100000 REPEAT=3 DATA=/tmp/...)
#
# Wall time and peak RSS from /usr/bin/time; RssAnon (the export's own
# memory, without the mapped source CAR) sampled from /proc beside it. The
# source CAR (a CARv2 with its index) is read with --trusted.
set -eu
BUILD=$1
EPOCHS=${EPOCHS:-100000}
REPEAT=${REPEAT:-3}
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-chain-bench}
mkdir -p "$DATA"
CAIRN=$BUILD/cairn
GEN=$BUILD/bench/export/gen_chain
CAR=$DATA/chain-$EPOCHS.car

if [ ! -s "$DATA/chain-$EPOCHS.head" ]; then
	start=$(date +%s.%N)
	"$GEN" "$CAR" "$EPOCHS" 1 >"$DATA/chain-$EPOCHS.head"
	echo "generated $EPOCHS epochs in $(echo "$(date +%s.%N) - $start" | bc) s:" \
		"$(cat "$DATA/chain-$EPOCHS.head" | cut -d' ' -f2-) (height tipsets headers messages nulls)," \
		"$(du -m "$CAR" | cut -f1) MiB" >&2
fi
head=$(cut -d' ' -f1 "$DATA/chain-$EPOCHS.head")
height=$(cut -d' ' -f2 "$DATA/chain-$EPOCHS.head")

median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# run NAME CMD...: REPEAT runs; median wall seconds, blocks/s, peak RSS and
# RssAnon (MiB). The blocks come from the command's --json output.
run() {
	name=$1; shift
	: >"$DATA/wall" ; : >"$DATA/rss" ; : >"$DATA/anon"
	i=0
	while [ $i -lt "$REPEAT" ]; do
		/usr/bin/time -f '%e %M' -o "$DATA/time" "$@" --json >"$DATA/json" &
		pid=$!
		anon=0
		while kill -0 $pid 2>/dev/null; do
			for p in $(pgrep -P $pid) ; do
				a=$(awk '/RssAnon/ {print $2}' /proc/$p/status 2>/dev/null || echo 0)
				[ "${a:-0}" -gt $anon ] && anon=$a
			done
			sleep 0.2
		done
		wait $pid
		cut -d' ' -f1 "$DATA/time" >>"$DATA/wall"
		echo $(( $(cut -d' ' -f2 "$DATA/time") / 1024 )) >>"$DATA/rss"
		echo $((anon / 1024)) >>"$DATA/anon"
		rm -f "$DATA/out.car"
		i=$((i + 1))
	done
	blocks=$(sed 's/.*"blocks":\([0-9]*\).*/\1/' "$DATA/json")
	wall=$(median <"$DATA/wall")
	printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$blocks" "$wall" \
		"$(awk -v b="$blocks" -v w="$wall" 'BEGIN {printf "%.0f", b / w}')" \
		"$(median <"$DATA/rss")" "$(median <"$DATA/anon")"
}

echo "| $EPOCHS epochs | blocks | wall s (median of $REPEAT) | blocks/s | peak RSS MiB | peak RssAnon MiB |"
echo "|---|---|---|---|---|---|"
for j in 1 2; do
	run "export-range --tail 0, all flags, -j $j" "$CAIRN" chain export-range --from "$CAR" \
		--trusted --head "$head" --tail 0 --messages --receipts --stateroots -j $j \
		-o "$DATA/out.car"
done
for j in 1 2; do
	run "export-range --tail $((height - 2000)), all flags, -j $j" "$CAIRN" chain export-range \
		--from "$CAR" --trusted --head "$head" --tail $((height - 2000)) --messages --receipts \
		--stateroots -j $j -o "$DATA/out.car"
done
