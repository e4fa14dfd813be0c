#!/usr/bin/env bash
# rollback-serve.sh: a store with a real deal (packed, its piece CID
# computed, imported with `dagstore import-deals`, indexed) is snapshotted,
# changed (a second deal imported, the first shard destroyed), rolled back,
# and served: every block of the first deal fetched through the gateway
# (?format=raw) equals the packed CAR's, and the second deal's root is
# unknown again. Runs on whatever filesystem the temporary directory is.
#
# usage: rollback-serve.sh CAIRN        (exit 77, a skip, without curl)
set -eu
set -o pipefail

CAIRN=$1
command -v curl >/dev/null || { echo "rollback-serve.sh: curl not found; skipping" >&2; exit 77; }

. "$(dirname "$0")/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-rollback-XXXXXX")
cleanup () {
	serve_kill
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

# deal DIR NAME: packs DIR into NAME.car and imports it as a deal
deal () {
	"$CAIRN" pack "$1" -o "$work/$2.car" >/dev/null
	piece=$("$CAIRN" piece commp --json "$work/$2.car" | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p')
	printf '[{"key": "%s", "url": "%s/%s.car"}]\n' "$piece" "$work" "$2" >"$work/$2.json"
	"$CAIRN" dagstore import-deals "$work/$2.json" >/dev/null
	"$CAIRN" dagstore initialize-all >/dev/null
	echo "$piece"
}

mkdir -p "$work/t1/sub" "$work/t2"
head -c 3000000 /dev/urandom >"$work/t1/big.bin"
echo one >"$work/t1/a.txt"
head -c 5000 /dev/urandom >"$work/t1/sub/c.bin"
head -c 500000 /dev/urandom >"$work/t2/other.bin"
piece1=$(deal "$work/t1" d1)
root1=$("$CAIRN" car root "$work/d1.car")

"$CAIRN" snapshot create before >"$work/out" 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
ok "snapshot: $(sed -n 2p "$work/out" | sed 's/^ *//')"

# the change: a second deal, and the first one's shard destroyed
deal "$work/t2" d2 >/dev/null
root2=$("$CAIRN" car root "$work/d2.car")
"$CAIRN" dagstore destroy-shard "$piece1" >/dev/null
if "$CAIRN" dagstore get-block "$root1" -o /dev/null 2>/dev/null; then
	fail "the change: the first deal still served"
else
	ok "the change: the first deal is gone"
fi

"$CAIRN" snapshot restore before >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
ok "restored"
"$CAIRN" dagstore list-shards >"$work/shards"
grep -q "$piece1 .*Available" "$work/shards" && ok "the first deal's shard Available" ||
	fail "shards after the rollback: $(cat "$work/shards")"
[ "$(grep -c . "$work/shards")" = 2 ] && ok "one shard, as before" || fail "shards: $(cat "$work/shards")"

serve_start "$work/serve.err" "$CAIRN" --listen 127.0.0.1:0 || exit 1
base=$serve_base

n=0 bad=0
while read -r cid; do
	"$CAIRN" car get-block "$work/d1.car" "$cid" >"$work/want"
	code=$(curl -s -o "$work/got" -w '%{http_code}' "$base/ipfs/$cid?format=raw")
	if [ "$code" = 200 ] && cmp -s "$work/want" "$work/got"; then
		n=$((n + 1))
	else
		bad=$((bad + 1))
		echo "    block $cid: HTTP $code or different bytes" >&2
	fi
done < <("$CAIRN" car ls "$work/d1.car")
[ "$bad" = 0 ] && [ "$n" -gt 3 ] && ok "all $n blocks of the old contents served, byte for byte" ||
	fail "$bad blocks differ ($n equal)"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/ipfs/$root2?format=raw")
[ "$code" = 404 ] && ok "the second deal is unknown again (404)" || fail "second deal: HTTP $code"

serve_stop || true
if [ "$fails" -gt 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "all passed"
