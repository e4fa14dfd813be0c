#!/usr/bin/env bash
# dagstore.sh: `cairn dagstore` end to end, with --repo in a temporary
# directory: CARs made by `cairn pack` and `cairn car create`, registered as
# file paths and as http:// URLs served by nginx (with ranges, without
# ranges: a transient copy, and a 404); initialize-all; for every block of
# every CAR, `dagstore get-block` equals `car get-block` and `lookup-pieces`
# lists exactly the shards whose CAR has it; corrupt and truncated CARs end
# Errored with a reason naming the problem and recover once fixed;
# destroy-shard; import-deals (JSON and text, twice); kill -9 during
# initialize-all at several moments, after which every shard ends Available,
# Errored with a reason, or New (never started) and a second initialize-all
# finishes them; the store lock.
#
# usage: dagstore.sh CAIRN        (exit 77, a skip, when nginx is missing)
#
# nginx runs in the foreground as one process (daemon off, master_process
# off) from a config generated in the temporary directory, on a free
# loopback port, and is stopped by its pid (as tests/mount/http.sh).
# Environment: NGINX (default: nginx on PATH, else /usr/sbin/nginx), TMPDIR,
# KILL_ROUNDS (default 4), KILL_SHARDS (default 20), KILL_SHARD_MB (default 20).
set -eu
set -o pipefail

if [ $# -ne 1 ]; then
	echo "usage: dagstore.sh CAIRN" >&2
	exit 2
fi
CAIRN=$1
. "$(dirname "$0")/../lib/nginx.sh"
if ! nginx_found; then
	echo "dagstore.sh: nginx not found (scripts/install-deps.sh installs nginx-light); skipping" >&2
	exit 77
fi
KILL_ROUNDS=${KILL_ROUNDS:-4}
KILL_SHARDS=${KILL_SHARDS:-20}
KILL_SHARD_MB=${KILL_SHARD_MB:-20}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-dagstore-XXXXXX")
bg_pids=()
cleanup () {
	for p in "${bg_pids[@]}"; do
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	nginx_stop
	rm -rf "$work"
}
trap cleanup EXIT

fails=0
t_start=$(date +%s%N)
# section NAME: a heading with the time since the start.
section () { echo "# $(( ($(date +%s%N) - t_start) / 1000000 )) ms: $*"; }
ok () { echo "ok - $*"; }
fail () {
	echo "FAIL - $*" >&2
	fails=$((fails + 1))
}
# check NAME COMMAND...: the command must succeed.
check () {
	local name=$1
	shift
	if "$@" >"$work/out" 2>"$work/err"; then
		ok "$name"
	else
		fail "$name"
		sed 's/^/    /' "$work/out" "$work/err" >&2
	fi
}

repo=$work/repo
# ds SUBCOMMAND ARGS...: `cairn dagstore` on the test's store.
ds () {
	local sub=$1
	shift
	"$CAIRN" dagstore "$sub" --repo "$repo" "$@"
}
# The JSON lines of list-shards, one shard a line: {"key":...,"state":...}.
shards_json () { ds list-shards --json; }
# state_of KEY [JSON-FILE]: the shard's state.
state_of () {
	grep -F "{\"key\":\"$1\"," "${2:-$work/list.json}" | sed 's/.*"state":"\([A-Za-z]*\)".*/\1/'
}
# error_of KEY [JSON-FILE]: the shard's error, as JSON (null or a string).
error_of () {
	grep -F "{\"key\":\"$1\"," "${2:-$work/list.json}" | sed 's/.*"error":\(null\|"\(\\.\|[^"\\]\)*"\).*/\1/'
}
# expect_state KEY STATE: after a fresh list-shards into $work/list.json.
expect_state () {
	local got
	got=$(state_of "$1")
	if [ "$got" = "$2" ]; then
		ok "$1 is $2"
	else
		fail "$1 is '$got', expected $2 (error: $(error_of "$1"))"
	fi
}
# expect_errored KEY PATTERN...: Errored, with a reason matching each
# (extended, case-insensitive) pattern.
expect_errored () {
	local key=$1 got why
	shift
	got=$(state_of "$key")
	why=$(error_of "$key")
	if [ "$got" != Errored ] || [ "$why" = null ] || [ -z "$why" ]; then
		fail "$key is '$got' with error $why, expected Errored with a reason"
		return
	fi
	for p in "$@"; do
		if ! grep -Eqi -- "$p" <<<"$why"; then
			fail "$key's reason does not match /$p/: $why"
			return
		fi
	done
	ok "$key is Errored: $why"
}

# ---------------------------------------------------------------- the CARs
www=$work/www
mkdir -p "$www/tmp" "$work/tmp" "$work/t1" "$work/t2/sub" "$work/t3" "$work/blocks"
rand () { head -c "$2" /dev/urandom >"$1"; }
# t1: files over several 1 MiB chunks, one small file (a single raw block).
rand "$work/t1/big.bin" $((2500 * 1024))
rand "$work/t1/small.bin" 3000
rand "$work/t1/mid.bin" $((300 * 1024))
# t2 shares big.bin (so its chunks are in t1 and t2) and has files of its own.
cp "$work/t1/big.bin" "$work/t2/big-copy.bin"
rand "$work/t2/sub/other.bin" $((1200 * 1024))
echo "hello dagstore" >"$work/t2/sub/hello.txt"
# t3: kubo's profile: CIDv0, DAG-PB leaves.
rand "$work/t3/a.bin" $((600 * 1024))
rand "$work/t3/b.bin" 100
"$CAIRN" pack "$work/t1" -o "$www/t1.car" >/dev/null
"$CAIRN" pack --car-version 2 "$work/t2" -o "$www/t2.car" >/dev/null
"$CAIRN" pack --profile kubo "$work/t3" -o "$www/t3.car" >/dev/null
# c4: raw blocks made by `car create`, one of them t1's small file.
cp "$work/t1/small.bin" "$work/blocks/1-small.bin"
rand "$work/blocks/2.bin" 5000
rand "$work/blocks/3.bin" 70000
echo "another block" >"$work/blocks/4.txt"
"$CAIRN" car create --version 1 "$www/c4.car" "$work/blocks/1-small.bin" "$work/blocks/2.bin" \
	"$work/blocks/3.bin" "$work/blocks/4.txt" >/dev/null
# A Filecoin piece: t3's CARv1 zero-padded to a power of two.
cp "$www/t3.car" "$www/piece.car"
truncate -s $((1 << 22)) "$www/piece.car"
# Damaged copies: a byte flipped in the middle of a block of t1 (the
# section of big.bin's second chunk), t2 cut in the middle of a block.
cp "$www/t1.car" "$www/corrupt.car"
flip_at=$("$CAIRN" car ls -v "$www/t1.car" | sed -n 2p | cut -f4)
flip_at=$((flip_at + 1000))
b=$(od -An -tu1 -j "$flip_at" -N1 "$www/corrupt.car" | tr -d ' ')
printf "\\$(printf %03o $(((b + 1) % 256)))" |
	dd of="$www/corrupt.car" bs=1 seek="$flip_at" conv=notrunc status=none
head -c $(($(stat -c %s "$www/t2.car") / 2)) "$www/t2.car" >"$www/truncated.car"
# The same damage, served over HTTP.
cp "$www/corrupt.car" "$www/corrupt-http.car"
cp "$www/corrupt.car" "$www/corrupt-norange.car"
cp "$www/truncated.car" "$www/truncated-http.car"
# For recovery later.
mkdir -p "$work/good"
cp "$www/t1.car" "$work/good/corrupt.car"
cp "$www/t2.car" "$work/good/truncated.car"

# ------------------------------------------------------------------ nginx
nginx_start "$work" "$www" "location /norange/ { alias $www/; max_ranges 0; }" || exit 1

# ------------------------------------------------------- register, index
section "register, initialize"
# KEY -> the CAR file holding its data (for the checks), and how it is read.
declare -A car_of
reg () {
	local key=$1 where=$2 file=$3
	car_of[$key]=$file
	if ds register-shard "$key" "$where" >"$work/out" 2>"$work/err" &&
	   grep -q "registered" "$work/out"; then
		:
	else
		fail "register-shard $key $where"
		cat "$work/err" >&2
	fi
}
# Files, by path: absolute and relative.
reg f-t1 "$www/t1.car" "$www/t1.car"
(cd "$www" && ds register-shard f-t2 t2.car >/dev/null) && car_of[f-t2]=$www/t2.car ||
	fail "register-shard with a relative path"
reg f-t3 "$www/t3.car" "$www/t3.car"
reg f-c4 "file://$www/c4.car" "$www/c4.car"
reg f-piece "$www/piece.car" "$www/piece.car"
reg f-corrupt "$www/corrupt.car" "$www/corrupt.car"
reg f-truncated "$www/truncated.car" "$www/truncated.car"
# Over HTTP: ranges, no ranges (a transient copy), the padded piece, a 404,
# damaged ones.
reg h-t1 "$base/t1.car" "$www/t1.car"
reg h-t2-norange "$base/norange/t2.car" "$www/t2.car"
reg h-piece "$base/piece.car" "$www/piece.car"
reg h-piece-norange "$base/norange/piece.car" "$www/piece.car"
reg h-missing "$base/missing.car" "$www/missing.car"
reg h-corrupt "$base/corrupt-http.car" "$www/corrupt-http.car"
reg h-truncated "$base/norange/truncated-http.car" "$www/truncated-http.car"
reg h-corrupt-norange "$base/norange/corrupt-norange.car" "$www/corrupt-norange.car"

# Registering again: the same URL is a no-op, another URL is refused.
out=$(ds register-shard f-t1 "$www/t1.car")
[ "$out" = "f-t1: already registered" ] && ok "register again: $out" || fail "register again: $out"
if ds register-shard f-t1 "$www/t3.car" >"$work/out" 2>"$work/err"; then
	fail "register f-t1 with another URL succeeded"
else
	grep -q "already registered" "$work/err" && ok "another URL refused: $(cat "$work/err")" ||
		fail "another URL: $(cat "$work/err")"
fi
if ds register-shard bad "" >"$work/out" 2>"$work/err"; then
	fail "register an empty path succeeded"
else
	ok "empty path refused: $(head -1 "$work/err")"
fi

shards_json >"$work/list.json"
n_new=$(grep -c '"state":"New"' "$work/list.json" || true)
[ "$n_new" -eq 15 ] && ok "15 shards registered New" || fail "$n_new shards New, expected 15"
expect_state f-t2 New

# initialize-shard of one; then initialize-all of the rest: it exits 1
# since some fail, each failure printed as it happens.
check "initialize-shard f-t1" ds initialize-shard f-t1
grep -q "f-t1: Available, [0-9]* blocks" "$work/out" && ok "initialize-shard says $(cat "$work/out")" ||
	fail "initialize-shard output: $(cat "$work/out")"
if ds initialize-all --concurrency 3 >"$work/out" 2>"$work/err"; then
	fail "initialize-all succeeded with bad shards"
else
	grep -q "^14 shards: 8 Available, 6 Errored" "$work/out" && ok "initialize-all: $(cat "$work/out")" ||
		fail "initialize-all: $(cat "$work/out")"
	for k in h-missing f-corrupt f-truncated h-corrupt h-truncated h-corrupt-norange; do
		grep -q "^$k: Errored: " "$work/err" || fail "initialize-all did not print $k's failure"
	done
fi
shards_json >"$work/list.json"
for k in f-t1 f-t2 f-t3 f-c4 f-piece h-t1 h-t2-norange h-piece h-piece-norange; do
	expect_state "$k" Available
done
expect_errored h-missing "missing\.car" "404|not found"
expect_errored f-corrupt "corrupt\.car" "hash|match"
expect_errored f-truncated "truncated\.car" "end|truncat|short"
expect_errored h-corrupt "corrupt-http\.car" "hash|match"
expect_errored h-truncated "truncated-http\.car" "end|truncat|short"
expect_errored h-corrupt-norange "hash|match"
# The piece's data ends before its padding.
ps=$(grep -F '{"key":"f-piece",' "$work/list.json" | sed 's/.*"data_size":\([0-9]*\).*/\1/')
[ "$ps" -lt $((1 << 22)) ] && [ "$ps" -gt 0 ] && ok "piece data_size $ps" || fail "piece data_size $ps"
# The server without ranges was read once, whole, into a transient.
ls "$repo/dagstore/transients/"*.complete >/dev/null 2>&1 && ok "transient copies made" ||
	fail "no transient copy in $repo/dagstore/transients"

# ------------------------------------------------ every block of every CAR
section "every block"
# For each Available shard, the CIDs of its CAR; then for every CID, the
# shards holding it must be exactly those whose CAR lists it, and the bytes
# those of `car get-block` on the CAR.
check_blocks () {
	local label=$1 key cid want got nblocks=0 bad=0
	shards_json >"$work/list.json"
	: >"$work/holders"
	for key in $(grep '"state":"Available"' "$work/list.json" | sed 's/{"key":"\([^"]*\)".*/\1/'); do
		"$CAIRN" car ls --zero-length-as-eof "${car_of[$key]}" | sed "s/\$/ $key/" >>"$work/holders"
	done
	sort -u "$work/holders" -o "$work/holders"
	for cid in $(cut -d' ' -f1 "$work/holders" | sort -u); do
		nblocks=$((nblocks + 1))
		want=$(grep "^$cid " "$work/holders" | cut -d' ' -f2 | LC_ALL=C sort | tr '\n' ' ')
		got=$(ds lookup-pieces --json "$cid" | sed 's/{"key":"\([^"]*\)".*/\1/' | tr '\n' ' ')
		# Key order is strcmp order.
		if [ "$got" != "$want" ]; then
			fail "$label: lookup-pieces $cid: '$got', expected '$want'"
			bad=$((bad + 1))
			continue
		fi
		key=$(grep "^$cid " "$work/holders" | head -1 | cut -d' ' -f2)
		"$CAIRN" car get-block --zero-length-as-eof "${car_of[$key]}" "$cid" >"$work/want.bin"
		if ! ds get-block "$cid" -o "$work/got.bin" 2>"$work/err" ||
		   ! cmp -s "$work/want.bin" "$work/got.bin"; then
			fail "$label: get-block $cid differs from car get-block ($(cat "$work/err"))"
			bad=$((bad + 1))
		fi
	done
	[ "$nblocks" -gt 0 ] && [ "$bad" -eq 0 ] && ok "$label: $nblocks blocks: lookup-pieces and get-block right" ||
		fail "$label: $bad of $nblocks blocks wrong"
}
check_blocks "after initialize-all"
# Blocks really held by several shards: big.bin's chunks in t1 and t2 (so in
# f-t1, h-t1, f-t2, h-t2-norange), the small file in t1 and c4.
small=$("$CAIRN" car ls "$www/c4.car" | head -1)
got=$(ds lookup-pieces --json "$small" | sed 's/{"key":"\([^"]*\)".*/\1/' | tr '\n' ' ')
[ "$got" = "f-c4 f-t1 h-t1 " ] && ok "a block in three shards: $got" || fail "the small block: $got"
chunk=$("$CAIRN" car ls "$www/t1.car" | head -1)
n=$(ds lookup-pieces "$chunk" | wc -l)
[ "$n" -eq 4 ] && ok "a chunk in four shards" || fail "a chunk in $n shards, expected 4"
# Text output, and a block no shard holds.
ds lookup-pieces "$small" | grep -q "^f-c4 *Available" && ok "lookup-pieces text" || fail "lookup-pieces text"
echo "nobody has this block" >"$work/nobody.txt"
"$CAIRN" car create "$work/nobody.car" "$work/nobody.txt" >/dev/null
nobody=$("$CAIRN" car ls "$work/nobody.car")
if ds lookup-pieces "$nobody" >"$work/out" 2>"$work/err"; then
	fail "lookup-pieces of an unknown block succeeded"
else
	grep -q "no Available shard holds" "$work/err" && ok "unknown block: $(cat "$work/err")" ||
		fail "unknown block: $(cat "$work/err")"
fi
ds get-block "$nobody" >/dev/null 2>&1 && fail "get-block of an unknown block succeeded" ||
	ok "get-block of an unknown block fails"
ds get-block not-a-cid >/dev/null 2>&1 && fail "get-block not-a-cid succeeded" || ok "get-block not-a-cid fails"

# ---------------------------------------------------------------- recover
section "recover"
if ds recover-shard f-t1 >"$work/out" 2>"$work/err"; then
	fail "recover-shard of an Available shard succeeded"
else
	ok "recover-shard of an Available shard refused: $(cat "$work/err")"
fi
# Still bad: Errored again.
ds recover-shard f-corrupt >/dev/null 2>&1 && fail "recover of a still-corrupt shard succeeded" ||
	ok "recover of a still-corrupt shard fails"
shards_json >"$work/list.json"
expect_errored f-corrupt "hash|match"
# Fixed: Available.
cp "$work/good/corrupt.car" "$www/corrupt.car"
cp "$work/good/truncated.car" "$www/truncated.car"
cp "$work/good/corrupt.car" "$www/corrupt-http.car"
cp "$work/good/truncated.car" "$www/truncated-http.car"
cp "$work/good/corrupt.car" "$www/corrupt-norange.car"
cp "$www/t1.car" "$www/missing.car"
car_of[h-missing]=$www/t1.car
for k in f-corrupt f-truncated h-corrupt h-truncated h-missing h-corrupt-norange; do
	check "recover-shard $k" ds recover-shard "$k"
done
shards_json >"$work/list.json"
for k in f-corrupt f-truncated h-corrupt h-truncated h-missing h-corrupt-norange; do
	expect_state "$k" Available
done
check_blocks "after recovery"

# ---------------------------------------------------------------- destroy
section "destroy"
idx_before=$(ls "$repo/dagstore/indexes" | wc -l)
check "destroy-shard f-t1" ds destroy-shard f-t1
idx_after=$(ls "$repo/dagstore/indexes" | wc -l)
[ "$idx_after" -eq $((idx_before - 1)) ] && ok "its index file is gone" ||
	fail "index files: $idx_before before, $idx_after after"
shards_json >"$work/list.json"
grep -q '"key":"f-t1"' "$work/list.json" && fail "f-t1 still listed" || ok "f-t1 no longer listed"
got=$(ds lookup-pieces --json "$small" | sed 's/{"key":"\([^"]*\)".*/\1/' | tr '\n' ' ')
[ "$got" = "f-c4 f-corrupt h-corrupt h-corrupt-norange h-missing h-t1 " ] && ok "lookups stop returning it: $got" ||
	fail "after destroy: $got"
ds destroy-shard f-t1 >/dev/null 2>&1 && fail "destroy of an unknown shard succeeded" ||
	ok "destroy of an unknown shard fails"
check "gc" ds gc --json
grep -q '"orphans_removed":0' "$work/out" && ok "gc: $(cat "$work/out")" || fail "gc: $(cat "$work/out")"
check_blocks "after destroy and gc"

# ------------------------------------------------------------ import-deals
section "import-deals"
cat >"$work/deals.json" <<EOF
[
  {"key": "j-t1", "url": "$www/t1.car"},
  {"PieceCID": {"/": "$small"}, "path": "$www/c4.car"},
  {"piece_cid": "j-http", "url": "$base/t3.car"}
]
EOF
cat >"$work/deals.txt" <<EOF
# key url
t-t1	$www/t1.car
t-t2   file://$www/t2.car

t-http $base/norange/t3.car
EOF
check "import-deals JSON" ds import-deals --json "$work/deals.json"
grep -q '"deals":3,"registered":3,"already":0' "$work/out" && ok "JSON: $(cat "$work/out")" ||
	fail "JSON: $(cat "$work/out")"
check "import-deals JSON again" ds import-deals --json "$work/deals.json"
grep -q '"deals":3,"registered":0,"already":3' "$work/out" && ok "JSON again: $(cat "$work/out")" ||
	fail "JSON again: $(cat "$work/out")"
check "import-deals text" ds import-deals "$work/deals.txt"
grep -q "^3 deals: 3 registered, 0 already known" "$work/out" && ok "text: $(cat "$work/out")" ||
	fail "text: $(cat "$work/out")"
check "import-deals text again" ds import-deals "$work/deals.txt"
grep -q "^3 deals: 0 registered, 3 already known" "$work/out" && ok "text again: $(cat "$work/out")" ||
	fail "text again: $(cat "$work/out")"
printf 'x-1 %s\nx-2\n' "$www/t1.car" >"$work/bad.txt"
if ds import-deals "$work/bad.txt" >"$work/out" 2>"$work/err"; then
	fail "import-deals of a bad list succeeded"
else
	grep -q "line 2" "$work/err" && ok "bad list: $(cat "$work/err")" || fail "bad list: $(cat "$work/err")"
fi
shards_json >"$work/list.json"
grep -q '"key":"x-1"' "$work/list.json" && fail "a bad list registered some" || ok "a bad list registers nothing"
car_of[j-t1]=$www/t1.car
car_of[$small]=$www/c4.car
car_of[j-http]=$www/t3.car
car_of[t-t1]=$www/t1.car
car_of[t-t2]=$www/t2.car
car_of[t-http]=$www/t3.car
expect_state "$small" New
check "initialize-all of the imported" ds initialize-all
grep -q "^6 shards: 6 Available, 0 Errored" "$work/out" && ok "$(cat "$work/out")" || fail "$(cat "$work/out")"
check_blocks "after import-deals"

# -------------------------------------------------------------- the lock
section "the lock"
# Held by another process: every command says so and does nothing.
# (flock waits: the poll below takes the lock for an instant too)
( flock 9 || exit 1; exec sleep 60 ) 9>"$repo/lock" &
lock_pid=$!
bg_pids+=("$lock_pid")
for _ in $(seq 100); do
	flock -n "$repo/lock" true 2>/dev/null || break
	sleep 0.05
done
if ds list-shards >"$work/out" 2>"$work/err"; then
	fail "list-shards ran while the store was held"
else
	grep -q "in use by another cairn process" "$work/err" && ok "held store: $(cat "$work/err")" ||
		fail "held store: $(cat "$work/err")"
fi
kill "$lock_pid"
wait "$lock_pid" 2>/dev/null || true
check "the lock is released with its holder" ds list-shards

# ------------------------------------------------ kill -9 in initialize-all
section "kill -9"
# KILL_SHARDS shards of about KILL_SHARD_MB MiB each; initialize-all killed
# at several moments, then list-shards (which resumes what was running) and
# a second initialize-all.
mkdir -p "$work/big"
# One random file; shard i's data is it behind i bytes, so with fixed-size
# chunks every chunk differs from every other shard's.
rand "$work/big/base.bin" $((KILL_SHARD_MB << 20))
for i in $(seq -w 1 "$KILL_SHARDS"); do
	{ printf "%$((10#$i))s" ""; cat "$work/big/base.bin"; } >"$work/big/data.bin"
	# Small chunks: more blocks per byte, so indexing takes a while.
	"$CAIRN" pack --no-wrap --chunk-size 16384 "$work/big/data.bin" -o "$work/big/s$i.car" >/dev/null
done
rm -f "$work/big/base.bin" "$work/big/data.bin"
cp "$work/big/s01.car" "$www/s01.car"
# The time a whole run takes, to spread the kills over it.
krepo () { "$CAIRN" dagstore "$1" --repo "$work/krepo" "${@:2}"; }
kreg () {
	for i in $(seq -w 1 "$KILL_SHARDS"); do
		printf 'k%s %s\n' "$i" "$work/big/s$i.car"
	done >"$work/kdeals.txt"
	printf 'k-http %s\n' "$base/s01.car" >>"$work/kdeals.txt"
	krepo import-deals "$work/kdeals.txt" >/dev/null
}
rm -rf "$work/krepo"
kreg
t0=$(date +%s%N)
krepo initialize-all --concurrency 2 >"$work/out" 2>&1 || fail "initialize-all of the big shards: $(cat "$work/out")"
full_ms=$((($(date +%s%N) - t0) / 1000000))
echo "# initialize-all of $KILL_SHARDS x $KILL_SHARD_MB MiB: $full_ms ms ($(cat "$work/out"))"
rounds_ok=0
resumed_total=0
for r in $(seq 1 "$KILL_ROUNDS"); do
	rm -rf "$work/krepo"
	kreg
	# From 10% to 90% of a full run.
	delay_ms=$((full_ms * (10 + 80 * (r - 1) / (KILL_ROUNDS > 1 ? KILL_ROUNDS - 1 : 1)) / 100))
	# Not through krepo: $! must be cairn itself, not a subshell.
	"$CAIRN" dagstore initialize-all --repo "$work/krepo" --concurrency 2 >"$work/kout" 2>&1 &
	kpid=$!
	bg_pids+=("$kpid")
	sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
	# While it runs, the store is held (looked at in the first half of a run
	# only: near its end, the process may have closed the store already).
	held=
	if [ $((delay_ms * 2)) -lt "$full_ms" ] && kill -0 "$kpid" 2>/dev/null; then
		if krepo list-shards >/dev/null 2>"$work/err"; then
			kill -0 "$kpid" 2>/dev/null && held="not held"
		elif ! grep -q "in use" "$work/err"; then
			held="not refused as in use: $(cat "$work/err")"
		fi
	fi
	kill -9 "$kpid" 2>/dev/null || true
	wait "$kpid" 2>/dev/null || true
	[ -z "$held" ] || fail "round $r: the store during initialize-all: $held"
	# The next command resumes what was Initializing.
	krepo list-shards --json --log-level info >"$work/klist.json" 2>"$work/kerr" || {
		fail "round $r: list-shards after kill -9: $(cat "$work/kerr")"
		continue
	}
	n_av=$(grep -c '"state":"Available"' "$work/klist.json" || true)
	n_new=$(grep -c '"state":"New"' "$work/klist.json" || true)
	n_err=$(grep -c '"state":"Errored"' "$work/klist.json" || true)
	n_all=$(wc -l <"$work/klist.json")
	resumed=$(sed -n 's/.*resuming \([0-9]*\) shards interrupted.*/\1/p' "$work/kerr")
	resumed=${resumed:-0}
	resumed_total=$((resumed_total + resumed))
	stuck=$(grep -v '"state":"\(Available\|New\|Errored\)"' "$work/klist.json" || true)
	noreason=$(grep '"state":"Errored"' "$work/klist.json" | grep '"error":null' || true)
	if [ -n "$stuck" ] || [ -n "$noreason" ] || [ "$n_all" -ne $((KILL_SHARDS + 1)) ]; then
		fail "round $r (kill at ${delay_ms} ms): stuck or reasonless shards: $stuck $noreason"
		continue
	fi
	find "$work/krepo/dagstore/indexes" -type f ! -name '*.idx' >"$work/leftover"
	[ -s "$work/leftover" ] && fail "round $r: leftovers in indexes/: $(cat "$work/leftover")"
	# Every shard not Available yet is finished by a second run.
	krepo initialize-all --concurrency 2 >"$work/kout2" 2>&1 ||
		fail "round $r: second initialize-all: $(cat "$work/kout2")"
	krepo list-shards --json >"$work/klist2.json"
	n_av2=$(grep -c '"state":"Available"' "$work/klist2.json" || true)
	if [ "$n_av2" -ne $((KILL_SHARDS + 1)) ]; then
		fail "round $r: $n_av2 Available after the second run"
		continue
	fi
	# A few blocks of each shard, through the top-level index.
	bad=0
	for i in 01 $(seq -w 2 7 "$KILL_SHARDS"); do
		for cid in $("$CAIRN" car ls "$work/big/s$i.car" | awk 'NR % 400 == 1'); do
			want="k$i "
			[ "$i" = 01 ] && want="k-http k01 "
			got=$(krepo lookup-pieces --json "$cid" | sed 's/{"key":"\([^"]*\)".*/\1/' | tr '\n' ' ')
			[ "$got" = "$want" ] || { bad=$((bad + 1)); echo "    lookup $cid: '$got' not '$want'" >&2; }
			krepo get-block "$cid" -o "$work/got.bin" &&
				"$CAIRN" car get-block "$work/big/s$i.car" "$cid" | cmp -s - "$work/got.bin" ||
				bad=$((bad + 1))
		done
	done
	if [ "$bad" -eq 0 ]; then
		rounds_ok=$((rounds_ok + 1))
		ok "round $r: killed at ${delay_ms} ms; list-shards resumed $resumed; then $n_av Available, $n_new New, $n_err Errored, none stuck; all Available after a second run, blocks right"
	else
		fail "round $r: $bad block checks failed"
	fi
done
[ "$rounds_ok" -eq "$KILL_ROUNDS" ] || fail "$rounds_ok of $KILL_ROUNDS kill rounds passed"
# The kills landed while shards were being indexed (two at a time): the
# resume at open was exercised.
[ "$resumed_total" -gt 0 ] && ok "$resumed_total shards resumed after the kills" ||
	fail "no kill landed during an indexing: nothing was resumed"

# kill -9 during recover-shard: the next command resumes the recovery.
section "kill -9 in recover-shard"
head -c $(($(stat -c %s "$work/big/s02.car") / 2)) "$work/big/s02.car" >"$work/big/rec.car"
krepo register-shard k-rec "$work/big/rec.car" >/dev/null
krepo initialize-shard k-rec >/dev/null 2>&1 && fail "initialize of a truncated CAR succeeded"
cp "$work/big/s02.car" "$work/big/rec.car"
t0=$(date +%s%N)
krepo recover-shard k-rec >/dev/null || fail "recover-shard k-rec"
rec_ms=$((($(date +%s%N) - t0) / 1000000))
krepo destroy-shard k-rec >/dev/null
head -c $(($(stat -c %s "$work/big/s02.car") / 2)) "$work/big/s02.car" >"$work/big/rec.car"
krepo register-shard k-rec "$work/big/rec.car" >/dev/null
krepo initialize-shard k-rec >/dev/null 2>&1 && fail "initialize of a truncated CAR succeeded"
cp "$work/big/s02.car" "$work/big/rec.car"
"$CAIRN" dagstore recover-shard --repo "$work/krepo" k-rec >/dev/null 2>&1 &
kpid=$!
bg_pids+=("$kpid")
delay_ms=$((rec_ms / 2))
sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
kill -9 "$kpid" 2>/dev/null || true
wait "$kpid" 2>/dev/null || true
krepo list-shards --json --log-level info >"$work/klist.json" 2>"$work/kerr"
st=$(state_of k-rec "$work/klist.json")
resumed=$(sed -n 's/.*resuming \([0-9]*\) shards interrupted.*/\1/p' "$work/kerr")
case "$st" in
Available) ok "recover-shard killed at ${delay_ms} ms of ${rec_ms}: k-rec Available (resumed: ${resumed:-0})" ;;
Errored)
	ok "recover-shard killed at ${delay_ms} ms: k-rec Errored: $(error_of k-rec "$work/klist.json")"
	krepo recover-shard k-rec >/dev/null || fail "recover-shard k-rec after the kill" ;;
*) fail "recover-shard killed at ${delay_ms} ms: k-rec is '$st'" ;;
esac
cid=$("$CAIRN" car ls "$work/big/s02.car" | sed -n 100p)
got=$(krepo lookup-pieces --json "$cid" | sed 's/{"key":"\([^"]*\)".*/\1/' | tr '\n' ' ')
[ "$got" = "k-rec k02 " ] && ok "k-rec serves after the kill: $got" || fail "k-rec after the kill: '$got'"

if [ "$fails" -ne 0 ]; then
	echo "dagstore.sh: $fails failures" >&2
	exit 1
fi
echo "dagstore.sh: all passed"
