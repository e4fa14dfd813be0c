#!/usr/bin/env bash
# kill9.sh: kill -9 the read-write CAR store while it ingests, then resume and
# finalize what it left: every CID printed before the kill must be in the CAR.
#
# usage: kill9.sh CAIRN CARRW_TOOL     (ITERATIONS=20 by default; the bench runs 1000)
#
# For tests/meson.build (after the unit_tests loop):
#
#   carrw_tool = executable('carrw_tool', 'store/carrw_tool.c',
#     include_directories : inc, dependencies : libcairn_dep)
#   test('store/kill9', find_program('store/kill9.sh'),
#     args : [cairn_exe.full_path(), carrw_tool.full_path()],
#     depends : [cairn_exe, carrw_tool], env : test_env + ['ITERATIONS=20'],
#     suite : 'store', timeout : 600)
#
# Each iteration: a fresh seed; `carrw_tool ingest` (SYNC_EVERY_PUT, a CID on
# stdout after each put returns) killed with SIGKILL after a random 0-0.5 s;
# one time in three a second ingest on the same file, killed again (a resume
# of a torn file that goes on writing); then `carrw_tool resume` (open,
# report, put the root back if the kill came before it, finalize),
# `carrw_tool check` (every whole line printed names a block of the CAR that
# its index finds) and `cairn car verify` (roots, every hash, every index
# entry). Environment: ITERATIONS (20), MAX_SLEEP_MS (500), TMPDIR.
set -eu
set -o pipefail

if [ $# -ne 2 ]; then
	echo "usage: kill9.sh CAIRN CARRW_TOOL" >&2
	exit 2
fi
CAIRN=$1
TOOL=$2
ITERATIONS=${ITERATIONS:-20}
MAX_SLEEP_MS=${MAX_SLEEP_MS:-500}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-kill9-XXXXXX")
trap 'rm -rf "$work"' EXIT
car=$work/k.car
cids=$work/cids

fail () {
	echo "kill9: iteration $1 (seed $2): $3" >&2
	for f in "$work"/*.err; do
		[ -s "$f" ] && sed "s|^|  $(basename "$f"): |" "$f" >&2
	done
	exit 1
}

# Runs one ingest and kills it at a random moment; an ingest that ends on its
# own (it never should: its source is endless) or fails is an error.
ingest_and_kill () {
	local i=$1 seed=$2 ms st
	"$TOOL" ingest "$car" --seed "$seed" >>"$cids" 2>>"$work/ingest.err" &
	local pid=$!
	ms=$(( (RANDOM * 32768 + RANDOM) % (MAX_SLEEP_MS + 1) ))
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -KILL "$pid" 2>/dev/null || true
	st=0
	# (braces: the shell's own "Killed" notice goes to /dev/null too)
	{ wait "$pid"; } 2>/dev/null || st=$?
	[ "$st" -eq 137 ] || fail "$i" "$seed" "ingest ended with status $st, not killed"
}

torn=0
listed=0
for i in $(seq 1 "$ITERATIONS"); do
	rm -f "$car" "$cids" "$work"/*.err "$car.carrw-tmp"
	: >"$cids"
	seed=$(( RANDOM * 32768 + RANDOM ))
	ingest_and_kill "$i" "$seed"
	if [ $(( RANDOM % 3 )) -eq 0 ]; then
		ingest_and_kill "$i" "$seed"
	fi
	"$TOOL" resume "$car" --seed "$seed" 2>"$work/resume.err" ||
		fail "$i" "$seed" "resume failed"
	if grep -q 'cut [1-9]' "$work/resume.err" "$work/ingest.err"; then
		torn=$((torn + 1))
	fi
	"$TOOL" check "$car" "$cids" 2>"$work/check.err" ||
		fail "$i" "$seed" "a CID put before the kill is missing"
	listed=$(( listed + $(grep -c '' "$cids" || true) ))
	"$CAIRN" car verify "$car" >"$work/verify.out" 2>"$work/verify.err" ||
		fail "$i" "$seed" "cairn car verify failed"
done
echo "kill9: $ITERATIONS runs killed and resumed; $torn left a torn tail that was cut;" \
	"$listed CIDs printed before the kills, all in the finalized CARs"
