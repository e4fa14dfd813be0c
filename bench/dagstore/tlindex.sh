#!/usr/bin/env bash
# tlindex.sh: runs the top-level index benchmarks (bench_tlindex) and prints a
# Markdown table: batched insertion rates, a large build, bytes per entry,
# lookups warm and cold on one and two threads, removal, and the LMDB
# prototype beside the index at the same size.
#
# usage: bench/dagstore/tlindex.sh     (from anywhere; about 15 minutes on 2
#                                       cores with BIG=100000000, needs ~3 GiB
#                                       of disk in $DATA and root for cold runs)
#
# Environment: DATA (${TMPDIR:-/tmp}/cairn-bench-tlindex), BUILD (build-bench,
# shared with bench/run.sh), INSERT (10000000 entries per insertion case), BIG
# (100000000: the large build), BIG_SHARD (1000000), SMALL (10000000: the size
# compared with LMDB), LOOKUPS (1000000 warm), COLD_LOOKUPS (20000), REPEAT
# (1: runs of each insertion case; the table shows the median).
set -eu
set -o pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA=${DATA:-${TMPDIR:-/tmp}/cairn-bench-tlindex}
BUILD=${BUILD:-$ROOT/build-bench}
INSERT=${INSERT:-10000000}
BIG=${BIG:-100000000}
BIG_SHARD=${BIG_SHARD:-1000000}
SMALL=${SMALL:-10000000}
LOOKUPS=${LOOKUPS:-1000000}
COLD_LOOKUPS=${COLD_LOOKUPS:-20000}
REPEAT=${REPEAT:-1}

say () { printf '== %s\n' "$*" >&2; }
case "$DATA" in "$ROOT"|"$ROOT"/*) echo "tlindex.sh: DATA must be outside the repository" >&2; exit 1 ;; esac
mkdir -p "$DATA"

# A release build of the benchmark alone (the options bench/run.sh uses).
BUILD_OPTS="-Dbuildtype=release -Dtests=false -Dc_args=-Wno-error=maybe-uninitialized"
if [ ! -f "$BUILD/build.ninja" ]; then
	say "meson setup $BUILD"
	# shellcheck disable=SC2086
	meson setup "$BUILD" "$ROOT" $BUILD_OPTS >/dev/null
fi
ninja -C "$BUILD" bench/dagstore/bench_tlindex >/dev/null
B="$BUILD/bench/dagstore/bench_tlindex"
LOG="$DATA/results.txt"
: >"$LOG"
run () { say "$*"; "$B" "$@" | tee -a "$LOG" >&2; }

COLD=true
if [ "$(id -u)" != 0 ] || ! [ -w /proc/sys/vm/drop_caches ]; then
	say "not root (or no drop_caches): cold lookups skipped"
	COLD=false
fi

# ---- insertion: small shards batched (1000 a call), middling (10 a call),
# large (1 a call), and small shards one per call (what batching saves).
for r in $(seq "$REPEAT"); do
	run --dir "$DATA/ins" --total "$INSERT" --shard-size 100 --batch 1000 insert
	run --dir "$DATA/ins" --total "$INSERT" --shard-size 10000 --batch 10 insert
	run --dir "$DATA/ins" --total "$INSERT" --shard-size 1000000 --batch 1 insert
	run --dir "$DATA/ins" --total 200000 --shard-size 100 --batch 1 insert
done

# ---- the big build: adds, lookups on the runs it leaves, compact, lookups
# warm and cold on one and two threads, removal of one shard.
BIGA=(--dir "$DATA/big" --total "$BIG" --shard-size "$BIG_SHARD")
run "${BIGA[@]}" --batch 1 build
run "${BIGA[@]}" --count "$LOOKUPS" lookup
run "${BIGA[@]}" settle
run "${BIGA[@]}" --count "$LOOKUPS" lookup
run "${BIGA[@]}" compact
for t in 1 2; do
	run "${BIGA[@]}" --threads "$t" --count "$LOOKUPS" lookup
done
if $COLD; then
	for t in 1 2; do
		run "${BIGA[@]}" --threads "$t" --count "$COLD_LOOKUPS" --cold lookup
	done
fi
run "${BIGA[@]}" remove

# ---- the same map in LMDB against the index, at SMALL entries.
SMALLA=(--total "$SMALL" --shard-size 10000 --batch 10)
run --dir "$DATA/lmdb" "${SMALLA[@]}" --count "$LOOKUPS" lmdb
run --dir "$DATA/small" "${SMALLA[@]}" build
run --dir "$DATA/small" "${SMALLA[@]}" compact
run --dir "$DATA/small" "${SMALLA[@]}" --count "$LOOKUPS" lookup
rm -rf "$DATA/small" "$DATA/lmdb" "$DATA/ins"

# ---- the table.
awk '
function kv(line, key,   n, i, a, b) {
	n = split(line, a, " ")
	for (i = 1; i <= n; i++) { split(a[i], b, "="); if (b[1] == key) return b[2] }
	return ""
}
function k(x) { return sprintf("%.2f M", x / 1e6) }
/^RESULT insert / {
	key = kv($0, "shard_size") " x " kv($0, "batch")
	if (!(key in ins)) order[++no] = key
	ins[key] = ins[key] " " kv($0, "add_rate")
	set[key] = set[key] " " kv($0, "settled_rate")
	bpe[key] = kv($0, "du_bytes_per_entry")
}
/^RESULT build / { if (!bigdone) { big = $0; bigdone = 1 } else small = $0 }
/^RESULT settle / { settle = $0 }
/^RESULT compact / { if (!cdone) { comp = $0; cdone = 1 } else comp2 = $0 }
/^RESULT lookup / { look[++nl] = $0 }
/^RESULT remove_shard / { rem = $0 }
/^RESULT lmdb insert / { li = $0 }
/^RESULT lmdb lookup / { ll = $0 }
/^RESULT lmdb remove_shard / { lr = $0 }
function median(s,   n, a, i, j, t) {
	n = split(s, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return a[int((n + 1) / 2)]
}
END {
	print "| insertion (entries/s; each add durable on return) | adds | with final compact | bytes/entry on disk |"
	print "|---|---|---|---|"
	for (i = 1; i <= no; i++) {
		split(order[i], p, " x ")
		printf "| shards of %s entries, %s a call | %s/s | %s/s | %s |\n", p[1], p[2], k(median(ins[order[i]])), k(median(set[order[i]])), bpe[order[i]]
	}
	print ""
	printf "Build of %s entries (%s a shard): %s entries/s for the adds (%s s); the merges left behind then took %s s (%s runs left); compact to one run %s s; %s bytes/entry (du).\n", kv(big, "entries"), kv(big, "shard_size"), k(kv(big, "add_rate")), kv(big, "adds_s"), kv(settle, "secs"), kv(settle, "runs"), kv(comp, "secs"), kv(comp, "du_bytes_per_entry")
	print ""
	print "| lookups | entries | runs | threads | lookups/s | present p50 / p99 / p99.9 (us) | absent p50 / p99 (us) | open (ms) |"
	print "|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= nl; i++) {
		l = look[i]
		printf "| %s | %s | %s | %s | %s | %s / %s / %s | %s / %s | %s |\n", (l ~ / cold / ? "cold" : "warm"), kv(l, "entries"), kv(l, "runs"), kv(l, "threads"), kv(l, "rate"), kv(l, "present_p50_us"), kv(l, "present_p99_us"), kv(l, "present_p999_us"), kv(l, "absent_p50_us"), kv(l, "absent_p99_us"), kv(l, "open_ms")
	}
	print ""
	printf "Removing a shard of %s entries: %s s (a tombstone in the manifest).\n", kv(rem, "entries"), kv(rem, "secs")
	print ""
	print "| at " k(kv(li, "entries")) " entries | insert entries/s | bytes/entry | warm lookups/s (1 thread) | p99 (us) | remove a shard |"
	print "|---|---|---|---|---|---|"
	printf "| LMDB dupsort | %s/s | %s | %s | %s | %s s (%s entries, a delete each) |\n", k(kv(li, "rate")), kv(li, "du_bytes_per_entry"), kv(ll, "rate"), kv(ll, "p99_us"), kv(lr, "secs"), kv(lr, "entries")
	sl = look[nl]
	printf "| tlindex | %s/s | %s | %s | %s | %s s (%s entries, a tombstone) |\n", k(kv(small, "add_rate")), kv(comp2, "du_bytes_per_entry"), kv(sl, "rate"), kv(sl, "present_p99_us"), kv(rem, "secs"), kv(rem, "entries")
}' "$LOG"
