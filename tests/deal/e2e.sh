#!/bin/sh
# e2e.sh: the deal flow as a new user runs it: `cairn pack` a directory,
# `cairn piece commp`, `cairn deal import`, `cairn serve`; then the file
# fetched by CID with @helia/verified-fetch (../shared/clients/fetch.mjs),
# the piece by piece CID through /piece/ (the CAR plus zero padding), and
# every block with ?format=raw, all equal to what was packed. Also: deal
# import and list through the daemon print what they print without it,
# stdin through the daemon is refused, a wrong --piece-cid leaves nothing,
# and a store whose sectors hold pieces gets their shards on first start.
# Usage: tests/deal/e2e.sh CAIRN. The fetch.mjs step is skipped without node.
set -eu
cairn=$1
here=$(cd "$(dirname "$0")" && pwd)
clients=${CAIRN_CLIENTS:-$here/../../../shared/clients}
. "$here/../lib/serve.sh"
work=$(mktemp -d)
trap 'serve_kill; rm -rf "$work"' EXIT
export CAIRN_PATH="$work/store"
cd "$work"
fail() { echo "FAIL $*" >&2; exit 1; }
ok() { echo "ok   $*"; }
piece_of() { "$cairn" piece commp --json "$1" | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p'; }
v1_of() { "$cairn" piece commp --json "$1" | sed -n 's/.*"piece_cid_v1":"\([^"]*\)".*/\1/p'; }

mkdir -p files/sub
head -c 2500000 /dev/urandom >files/a.bin
printf 'hello from a deal\n' >files/sub/h.txt
root=$("$cairn" pack files -o deal.car)
piece=$(piece_of deal.car)
key=$(v1_of deal.car)
[ -n "$piece" ] && [ -n "$key" ] || fail "piece commp gave no piece CID"

# A wrong piece CID: refused with both CIDs named; nothing registered,
# nothing staged, no deal.
head -c 100000 /dev/urandom >other.bin
wrong=$(piece_of other.bin)
if "$cairn" deal import --sector-size 8MiB --piece-cid "$wrong" - <deal.car >out.txt 2>err.txt; then
	fail "a wrong --piece-cid was accepted"
fi
grep -q "$key" err.txt && grep -q "$(v1_of other.bin)" err.txt || fail "the refusal does not name both CIDs: $(cat err.txt)"
[ -z "$(ls "$CAIRN_PATH/staging")" ] || fail "staging not empty after a refusal"
[ "$("$cairn" deal list --json)" = "" ] || fail "a refused deal is listed"
"$cairn" dagstore list-shards --json >shards.txt
[ ! -s shards.txt ] || fail "a refused deal left a shard: $(cat shards.txt)"
ok "a wrong --piece-cid is refused, nothing kept"

# The import.
"$cairn" deal import --sector-size 8MiB --piece-cid "$piece" deal.car >import.txt
grep -q "state: *Available" import.txt || fail "import: $(cat import.txt)"
[ -z "$(ls "$CAIRN_PATH/staging")" ] || fail "staging not empty"
"$cairn" deal list >list-local.txt
"$cairn" deal list --json >list-local.json
grep -q "\"piece_cid\":\"$key\",\"state\":\"Available\"" list-local.json || fail "deal list: $(cat list-local.json)"
ok "deal import: $(sed -n 's/^sector: *//p' import.txt) at $(sed -n 's/^offset: *//p' import.txt)"

serve_start serve.log "$cairn" --listen 127.0.0.1:0 || fail "cairn serve did not start"
base=$serve_base

# Through the daemon: the same output; a second deal imported by the daemon.
"$cairn" deal list >list-rpc.txt
"$cairn" deal list --json >list-rpc.json
cmp -s list-local.txt list-rpc.txt && cmp -s list-local.json list-rpc.json ||
	fail "deal list differs through the daemon"
"$cairn" deal import --sector-size 8MiB --piece-cid "$piece" deal.car >import-rpc.txt
cmp -s import.txt import-rpc.txt || fail "deal import differs through the daemon"
if "$cairn" deal import --piece-cid "$piece" - <deal.car 2>err.txt; then fail "stdin through the daemon"; fi
grep -q "cannot read this command's stdin" err.txt || fail "stdin refusal: $(cat err.txt)"
mkdir -p f2
head -c 300000 /dev/urandom >f2/b.bin
root2=$("$cairn" pack f2 -o two.car)
"$cairn" deal import --sector-size 8MiB --piece-cid "$(piece_of two.car)" two.car >import2.txt ||
	fail "deal import through the daemon"
grep -q "state: *Available" import2.txt || fail "import through the daemon: $(cat import2.txt)"
ok "deal import and list through the daemon"

# The piece by piece CID: the CAR then zeros to the unpadded piece size.
curl -sSf -o piece.bin "$base/piece/$piece" || fail "GET /piece/$piece"
padded=$(sed -n 's/^padded size: *//p' import.txt)
size=$(wc -c <deal.car)
cp deal.car want.bin
head -c $((padded / 128 * 127 - size)) /dev/zero >>want.bin
cmp -s piece.bin want.bin || fail "/piece/ bytes differ from the CAR plus zero padding"
ok "/piece/$piece: $(wc -c <piece.bin) bytes, the CAR plus zero padding"

# Every block, raw, equal to the CAR's.
n=0
for cid in $("$cairn" car ls deal.car) $("$cairn" car ls two.car); do
	curl -sSf -o got.bin "$base/ipfs/$cid?format=raw" || fail "GET /ipfs/$cid"
	"$cairn" car get-block deal.car "$cid" blk.bin 2>/dev/null || "$cairn" car get-block two.car "$cid" blk.bin
	cmp -s got.bin blk.bin || fail "block $cid differs"
	n=$((n + 1))
done
ok "$n blocks by ?format=raw, all equal"

# The file by CID, verified by a real client.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && [ -d "$clients" ]; then
	sh "$here/../../scripts/install-peers.sh" "$clients" || fail "npm ci in $clients"
	for p in "$root/a.bin:files/a.bin" "$root/sub/h.txt:files/sub/h.txt" "$root2/b.bin:f2/b.bin"; do
		path=${p%%:*}
		want=${p#*:}
		out=$(cd "$clients" && node fetch.mjs "$base" "$path" "$work/got.bin" 2>&1) || fail "fetch $path: $out"
		cmp -s got.bin "$want" || fail "fetch $path: bytes differ"
		ok "$path fetched by @helia/verified-fetch, equal"
	done
else
	echo "skip fetch.mjs: no node/npm or no $clients"
fi
serve_stop || true

# First start: pieces put in sectors without the deal flow become shards
# once, when the store is next opened.
export CAIRN_PATH="$work/store2"
"$cairn" storage attach --init --seal --store "$work/paths2" >/dev/null
"$cairn" sector add-piece --size 8MiB s-t01000-7 deal.car >/dev/null
"$cairn" dagstore list-shards >shards.txt
grep -q "^$key *New" shards.txt || fail "first start: $key not registered: $(cat shards.txt)"
# once: a piece added later, or a shard destroyed, is not registered again
"$cairn" sector add-piece s-t01000-7 two.car >/dev/null
"$cairn" dagstore destroy-shard "$key" >/dev/null
"$cairn" dagstore list-shards >shards.txt
[ "$(grep -c '^baga' shards.txt || true)" = 0 ] || fail "first start ran twice: $(cat shards.txt)"
ok "first start: the pieces in sectors registered once"
echo "deal/e2e: all passed"
