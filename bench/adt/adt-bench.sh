#!/usr/bin/env bash
# adt-bench.sh: the AMT and HAMT figures of docs/BENCHMARKS.md: sets and gets
# per second for AMTs of 1 and 10 million entries at bit width 5 and a HAMT of
# 1 million keys, and diff time against the number of changes at two sizes
# (it must follow the changes, not the size). Median of REPEAT runs.
#
# usage: bench/adt/adt-bench.sh            (about 10 minutes on 2 cores)
# Environment: BUILD (build-bench: a release build, configured once), REPEAT
# (3), STORE (mem: the structure's own speed; lmdb puts LMDB under it, in
# DATA), DATA (${TMPDIR:-/tmp}/cairn-bench-adt).
#
# There is no Go toolchain here, so go-amt-ipld is not run beside it; no
# JavaScript AMT is pinned in ../shared/peers either. The figures stand alone.
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
REPEAT=${REPEAT:-3}
STORE=${STORE:-mem}
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-bench-adt}

if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" "$ROOT" -Dbuildtype=release -Dtests=false >/dev/null
fi
ninja -C "$BUILD" bench/adt/bench_adt >/dev/null
B=$BUILD/bench/adt/bench_adt
RES=$(mktemp)
trap 'rm -f "$RES"; rm -rf "$DATA"' EXIT

run () {
	local dir="$DATA/lmdb-$$-$RANDOM"
	mkdir -p "$DATA"
	if [ "$STORE" = lmdb ]; then
		"$B" "$@" --store lmdb --dir "$dir" >>"$RES"
	else
		"$B" "$@" >>"$RES"
	fi
	rm -rf "$dir"
}

for r in $(seq "$REPEAT"); do
	echo "== round $r" >&2
	run amt --n 1000000 --bw 5 --seed "$r"
	run amt --n 10000000 --bw 5 --seed "$r"
	run hamt --n 1000000 --bw 5 --seed "$r"
	run diff --n 1000000 --bw 5 --changes 1,10,100,1000,10000,100000 --seed "$r"
	run diff --n 10000000 --bw 5 --changes 1,10,100,1000,10000,100000 --seed "$r"
	run hdiff --n 1000000 --bw 5 --changes 1,10,100,1000,10000 --seed "$r"
done

# Medians, as a Markdown table.
python3 - "$RES" <<'EOF'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(xs): return st.median(xs)
print("| structure | entries | sets/s | flush (s) | cold gets/s | warm gets/s | random sets/s | peak RSS (MiB) |")
print("|---|---|---|---|---|---|---|---|")
for kind in ("amt", "hamt"):
    for n in sorted({r["n"] for r in rows if r["bench"] == kind}):
        rs = [r for r in rows if r["bench"] == kind and r["n"] == n]
        print(f"| {kind.upper()} bw {rs[0]['bw']} | {n:,} | {med([r['sets_per_s'] for r in rs]):,.0f} | "
              f"{med([r['flush_s'] for r in rs]):.2f} | {med([r['cold_gets_per_s'] for r in rs]):,.0f} | "
              f"{med([r['warm_gets_per_s'] for r in rs]):,.0f} | "
              + (f"{med([r['random_sets_per_s'] for r in rs]):,.0f}" if kind == "amt" else "-")
              + f" | {med([r['maxrss_mib'] for r in rs]):.0f} |")
print()
print("| diff | entries | values changed | changes reported | diff time (ms) | nodes read |")
print("|---|---|---|---|---|---|")
for kind in ("amt_diff", "hamt_diff"):
    for n in sorted({r["n"] for r in rows if r["bench"] == kind}):
        for c in sorted({r["changed"] for r in rows if r["bench"] == kind and r["n"] == n}):
            rs = [r for r in rows if r["bench"] == kind and r["n"] == n and r["changed"] == c]
            print(f"| {kind.split('_')[0].upper()} | {n:,} | {c:,} | {med([r['changes'] for r in rs]):,.0f} | "
                  f"{med([r['diff_s'] for r in rs]) * 1000:.2f} | {med([r['node_reads'] for r in rs]):,.0f} |")
EOF
