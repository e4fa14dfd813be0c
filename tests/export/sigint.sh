#!/bin/sh
# sigint.sh: `cairn export` stopped by SIGINT (and SIGTERM) at random moments,
# ITERATIONS times: it must exit promptly with status 1 and "cancelled", and
# leave neither OUT.car nor OUT.car.partial; an export let run to the end is
# the whole DAG. Then kill -9: OUT.car is never there (only the partial).
set -u
CAIRN=$1
GEN=$2
N=${ITERATIONS:-10}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
root=$("$GEN" "$t/dag.car" 300000 7 | cut -d' ' -f1)
fail() { echo "FAIL: $*"; exit 1; }

"$CAIRN" export --from "$t/dag.car" --trusted "$root" -o "$t/full.car" >"$t/full.out" || fail "full export"
"$CAIRN" car ls "$t/full.car" | sort >"$t/want"
[ "$(sort -u "$t/want" | wc -l)" = "$(wc -l <"$t/want")" ] || fail "duplicate blocks"
cancelled=0
i=0
while [ $i -lt "$N" ]; do
	sig=INT
	[ $((i % 3)) = 2 ] && sig=TERM
	"$CAIRN" export --from "$t/dag.car" --trusted -j $((1 + i % 3)) --memory 1MiB \
		--spill-dir "$t" "$root" -o "$t/out.car" >"$t/out" 2>"$t/err" &
	pid=$!
	# 0 to ~0.5 s: from before the first block to after the last.
	sleep "0.$(awk -v s=$i 'BEGIN {srand(s); printf "%03d", int(rand() * 500)}')"
	kill -$sig $pid 2>/dev/null
	start=$(date +%s)
	wait $pid
	status=$?
	[ $(( $(date +%s) - start )) -le 5 ] || fail "iteration $i: took more than 5 s to stop"
	[ -e "$t/out.car.partial" ] && fail "iteration $i: a partial file was left"
	if [ $status = 1 ]; then
		grep -q cancelled "$t/err" || fail "iteration $i: $(cat "$t/err")"
		[ -e "$t/out.car" ] && fail "iteration $i: cancelled but out.car exists"
		cancelled=$((cancelled + 1))
	elif [ $status = 0 ]; then
		"$CAIRN" car ls "$t/out.car" | sort | cmp -s - "$t/want" || fail "iteration $i: finished but not whole"
		rm -f "$t/out.car"
	elif [ $status = 130 ] || [ $status = 143 ]; then
		# the signal came before the export began or after it ended (no
		# handler then) and ended the process by default: no file, or a
		# whole one
		if [ -e "$t/out.car" ]; then
			"$CAIRN" car ls "$t/out.car" | sort | cmp -s - "$t/want" ||
				fail "iteration $i: killed by the signal, and out.car is not whole"
			rm -f "$t/out.car"
		fi
	else
		fail "iteration $i: status $status: $(cat "$t/err")"
	fi
	i=$((i + 1))
done
ls "$t" | grep -q cairn-seen && fail "a seen-set file was left"
# kill -9 cannot be caught: the name is only given to a complete file.
"$CAIRN" export --from "$t/dag.car" --trusted "$root" -o "$t/k.car" >/dev/null 2>&1 &
pid=$!
sleep 0.1
kill -9 $pid 2>/dev/null
wait $pid
[ -e "$t/k.car" ] && [ "$(wc -c <"$t/k.car")" != "$(wc -c <"$t/full.car")" ] && fail "kill -9 left a short k.car"
echo "sigint: $cancelled of $N cancelled, the rest complete"
