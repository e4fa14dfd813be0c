#!/usr/bin/env bash
# daemon.sh: snapshots taken through a running `cairn serve`: create goes
# through the daemon (its log shows the call; it keeps the store's lock the
# whole time) while deals are registered and indexed through it, and every
# snapshot is whole: a clone of it, served by a second `cairn serve`, has
# every shard registered when it was taken and serves every block of each,
# byte for byte. Restore stays refused while the daemon runs. Prints the
# pause times. Runs on whatever filesystem the temporary directory is.
#
# usage: daemon.sh CAIRN        (exit 77, a skip, without curl or flock)
set -eu
set -o pipefail

CAIRN=$1
for t in curl flock timeout; do
	command -v $t >/dev/null || { echo "daemon.sh: $t not found; skipping" >&2; exit 77; }
done

. "$(dirname "$0")/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-snapd-XXXXXX")
pids=()
cleanup () {
	for p in "${pids[@]}"; do
		serve_kill "$p"
	done
	rm -rf "$work"
}
trap cleanup EXIT
fails=0
ok () { echo "ok - $*"; }
fail () {
	echo "FAIL - $*" >&2
	fails=$((fails + 1))
}
export CAIRN_PATH=$work/store
# Every call bounded: a deadlock fails the test instead of hanging it.
c () { timeout 120 "$CAIRN" "$@"; }

# serve STORE LOG: starts `cairn serve` on STORE and waits for its api and
# token files (a command before the token would go through with read
# permission only); sets $url (its base URL) and $spid.
serve () {
	CAIRN_LOG=info CAIRN_PATH=$1 serve_start "$2" "$CAIRN" --listen 127.0.0.1:0 || exit 1
	spid=$serve_pid
	pids+=($spid)
	url=$serve_base
}

# deals FROM TO: CARs d$FROM..d$TO (random data, a few blocks each) and
# their import list $work/deals-FROM.json
deals () {
	local sep=
	printf '[' >"$work/deals-$1.json"
	for i in $(seq "$1" "$2"); do
		mkdir -p "$work/t$i"
		head -c $((300000 + i * 20000)) /dev/urandom >"$work/t$i/data.bin"
		echo "deal $i" >"$work/t$i/name.txt"
		"$CAIRN" pack "$work/t$i" -o "$work/d$i.car" >/dev/null
		printf '%s{"key": "deal-%03d", "url": "%s/d%d.car"}' "$sep" "$i" "$work" "$i" \
			>>"$work/deals-$1.json"
		sep=,
	done
	printf ']\n' >>"$work/deals-$1.json"
}

deals 1 24
deals 25 48
c dagstore import-deals "$work/deals-1.json" >/dev/null
c dagstore initialize-all >/dev/null
c snapshot create before >/dev/null 2>"$work/err"

serve "$CAIRN_PATH" "$work/serve.err"
base=$url srv=$spid

# --------------------------------------------- create through the daemon
c snapshot create one >"$work/one.out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
grep -q "^snapshot one: $CAIRN_PATH.snapshots/one" "$work/one.out" &&
	ok "create through the daemon: $(sed -n 4p "$work/one.out" | sed 's/^ *//')" ||
	fail "create through the daemon printed: $(cat "$work/one.out")"
grep -q "rpc: Cairn.SnapshotCreate" "$work/serve.err" && ok "the daemon's log shows the call" ||
	fail "no Cairn.SnapshotCreate in the daemon's log"
grep -q "snapshot one: .* writers paused" "$work/serve.err" && ok "the daemon logs the pause" ||
	fail "no pause in the daemon's log"
c --json snapshot create two >"$work/out.json"
grep -q '^{"snapshot":"two","path":.*"pause_ms":[0-9.]*,"sync_ms"' "$work/out.json" &&
	ok "--json through the daemon: the same report as without" ||
	fail "--json: $(cat "$work/out.json")"
if flock -n "$CAIRN_PATH/lock" true; then
	fail "the store's lock is free while the daemon runs"
else
	ok "the daemon still holds the store's lock"
fi
kill -0 "$srv" && ok "the daemon still runs" || fail "the daemon died"
if c snapshot restore one 2>"$work/err"; then
	fail "restore while the daemon runs"
else
	grep -q "running \`cairn serve\` (pid $srv); stop it first: a rollback replaces the store" \
		"$work/err" && ok "restore refused, naming the daemon" || fail "restore: $(cat "$work/err")"
fi
c snapshot list >"$work/list"
for s in before one two; do
	grep -q "^$s " "$work/list" || fail "list through the daemon: no $s"
done
ok "list through the daemon: $(grep -c . "$work/list") lines"
grep -q "rpc: Cairn.SnapshotList" "$work/serve.err" || fail "list did not go through the daemon"

# ------------------------- snapshots while deals are registered and indexed
c dagstore import-deals "$work/deals-25.json" >/dev/null &
imp=$!
c dagstore initialize-all --concurrency 2 >"$work/init.out" 2>&1 &
ini=$!
snaps=()
for i in 1 2 3 4 5; do
	c snapshot create "busy$i" >"$work/busy$i.out" 2>"$work/busy$i.err" ||
		fail "busy$i: $(cat "$work/busy$i.err")"
	snaps+=("busy$i")
	sleep 0.2
done
wait "$imp" || fail "import-deals through the daemon failed"
wait "$ini" || fail "initialize-all through the daemon: $(cat "$work/init.out")"
c dagstore initialize-all >/dev/null
c snapshot create after >"$work/after.out"
snaps+=(after)
pauses=$(for s in one "${snaps[@]}"; do
	sed -n 's/.*writers paused \([0-9.]*\) ms.*/\1/p' "$work/$s.out" 2>/dev/null
done | tr '\n' ' ')
ok "5 snapshots during import and indexing, no deadlock; writers paused (ms): $pauses"
c dagstore list-shards >"$work/live"
[ "$(grep -c ' Available' "$work/live")" = 48 ] && ok "the live store: 48 shards Available" ||
	fail "live store: $(cat "$work/live")"

# ----------------- every snapshot whole: a clone serves every block it had
# check_clone NAME: clones snapshot NAME, serves the clone, indexes what
# was New in it, and fetches every block of every shard it has.
check_clone () {
	local cl=$work/clone-$1 n=0 bad=0 shards fresh
	c snapshot clone "$1" "$cl" >/dev/null
	serve "$cl" "$work/serve-$1.err"
	fresh=$(CAIRN_PATH=$cl c dagstore list-shards | grep -c '^deal-.* New' || true)
	CAIRN_PATH=$cl c dagstore initialize-all >/dev/null 2>"$work/ia-$1.err" ||
		fail "$1: initialize-all in the clone: $(cat "$work/ia-$1.err")"
	CAIRN_PATH=$cl c dagstore list-shards >"$work/shards-$1"
	shards=$(grep -c '^deal-' "$work/shards-$1" || true)
	if grep -q '^deal-.* \(Errored\|New\|Initializing\|Recovering\)' "$work/shards-$1"; then
		fail "$1: shards not Available in the clone: $(grep -v Available "$work/shards-$1")"
	fi
	for key in $(sed -n 's/^\(deal-[0-9]*\) .*/\1/p' "$work/shards-$1"); do
		i=$((10#${key#deal-}))
		while read -r cid; do
			"$CAIRN" car get-block "$work/d$i.car" "$cid" >"$work/want"
			code=$(curl -s -o "$work/got" -w '%{http_code}' "$url/ipfs/$cid?format=raw")
			if [ "$code" = 200 ] && cmp -s "$work/want" "$work/got"; then
				n=$((n + 1))
			else
				bad=$((bad + 1))
				echo "    $1: $key block $cid: HTTP $code or different bytes" >&2
			fi
		done < <("$CAIRN" car ls "$work/d$i.car")
	done
	serve_stop "$spid" || true
	unset 'pids[-1]'
	[ "$bad" = 0 ] && [ "$shards" -ge 24 ] &&
		ok "$1: the clone opens with $shards shards ($fresh not yet indexed when taken) and serves all $n of their blocks" ||
		fail "$1: $bad blocks bad, $n good, $shards shards"
}
for s in one busy1 busy3 busy5 after; do
	check_clone "$s"
done
grep -c '^deal-' "$work/shards-after" | grep -qx 48 || fail "after: not every shard in the last snapshot"

# ------ a piece added through the daemon is whole in a snapshot taken meanwhile
# The snapshot starts once the daemon has logged the call: it must wait for
# the call to end (cli_repo_quiesce), so its clone holds the whole piece and
# the sector's record of it, not half an unsealed file and no record.
c storage attach --init --seal --store "$CAIRN_PATH/sp1" >/dev/null
head -c $((96 << 20)) /dev/urandom >"$work/big.bin"
c sector add-piece --size 512MiB s-t01000-1 "$work/big.bin" >"$work/add.out" 2>&1 &
add=$!
for _ in $(seq 1000); do
	grep -q "rpc: Cairn.SectorAddPiece" "$work/serve.err" && break
	sleep 0.01
done
c snapshot create mid >"$work/mid.out" 2>"$work/mid.err" || fail "mid: $(cat "$work/mid.err")"
wait "$add" || fail "add-piece through the daemon: $(cat "$work/add.out")"
piece=$(grep -o 'baga[a-z0-9]*' "$work/add.out" | head -1)
c snapshot clone mid "$work/clone-mid" >/dev/null
if CAIRN_PATH=$work/clone-mid c sector read-piece "$piece" >"$work/mid.piece" 2>"$work/err" &&
	cmp -s "$work/mid.piece" "$work/big.bin"; then
	ok "a snapshot taken during add-piece waited for it: its clone reads the whole piece"
else
	fail "snapshot during add-piece: the clone's piece $piece: $(cat "$work/err")"
fi
rm -rf "$work/clone-mid" "$work/big.bin" "$work/mid.piece"

# The daemon served on through all of it.
cid=$("$CAIRN" car root "$work/d1.car")
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/ipfs/$cid?format=raw")
[ "$code" = 200 ] && ok "the daemon serves on" || fail "the daemon: HTTP $code"
serve_stop "$srv" || true
pids=()
if [ "$fails" -gt 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "all passed"
