#!/bin/sh
# chain_rpc.sh: Cairn.ChainExportRange through `cairn serve`: a generated
# chain put into the store's blocks, exported on the daemon's side under
# Lotus's name in the store directory, the same blocks as the chain; the
# admin permission needed; a bad tail refused with no file.
#
# usage: chain_rpc.sh CAIRN GEN_CHAIN     (exit 77, a skip, without curl)
set -u
CAIRN=$1
GEN=$2
command -v curl >/dev/null 2>&1 || exit 77
. "$(dirname "$0")/../lib/serve.sh"
t=$(mktemp -d)
trap 'serve_kill; rm -rf "$t"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Seed 13, 7 epochs: a null round, a head of two blocks, and every block
# reached from the head with the tail at genesis.
gen=$("$GEN" "$t/c.car" 7 13) || fail "gen_chain"
head=$(echo "$gen" | cut -d' ' -f1)
mkdir "$t/blk"
for cid in $("$CAIRN" car ls "$t/c.car"); do
	"$CAIRN" block get --from "$t/c.car" "$cid" -o "$t/blk/$cid" || fail "block get $cid"
done
cd "$t/blk"
put() { # CID-PREFIX ARGS...: puts the blocks whose CIDs start so
	p=$1; shift
	set -- "$@" $(ls | grep "^$p" || true)
	"$CAIRN" block put --repo "$t/repo" --no-check "$@" >/dev/null || fail "block put $p"
}
put bafy2 -c dag-cbor --hash blake2b-256
put bafk2 -c raw --hash blake2b-256
put bafi2 -c 81 --hash blake2b-256
put bafyrei -c dag-cbor
cd "$t"

# serve_start waits for the api and token files both
serve_start "$t/serve.out" "$CAIRN" --repo "$t/repo" --listen 127.0.0.1:0 || fail "the daemon did not start"
token=$(cat "$t/repo/token")
rpc() { # AUTH PARAMS
	curl -s ${1:+-H "Authorization: Bearer $1"} -H 'Content-Type: application/json' \
		-d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Cairn.ChainExportRange\",\"params\":$2}" \
		"$serve_base/rpc/v0"
}
heads=$(echo "$head" | sed 's/\([^,]*\)/{"\/":"\1"}/g')
out=$(rpc "$token" "[[$heads],0,{\"NumWorkers\":2,\"IncludeMessages\":true,\"IncludeReceipts\":true,\"IncludeStateRoots\":true}]")
path=$(echo "$out" | sed -n 's/.*"Path":"\([^"]*\)".*/\1/p')
[ -n "$path" ] || fail "no path: $out"
case $(basename "$path") in
snapshot_0_6_[0-9]*.car) ;;
*) fail "not Lotus's name: $path" ;;
esac
[ "$(dirname "$path")" = "$t/repo" ] || fail "not in the store directory: $path"
"$CAIRN" car ls "$t/c.car" | sort >"$t/want"
"$CAIRN" car ls "$path" | sort | cmp -s - "$t/want" || fail "not the chain's blocks"
[ "$("$CAIRN" car root "$path" | paste -sd, -)" = "$head" ] || fail "roots are not the head"
# Strings for CIDs, no config: headers and the genesis state only.
out=$(rpc "$token" "[[\"$(echo "$head" | cut -d, -f1)\"],6]")
echo "$out" | grep -q '"Blocks":' || fail "strings: $out"
# No token: admin is needed. A tail above the head: refused, no file.
rpc "" "[[$heads],0]" | grep -q "need 'admin'" || fail "no token was let in"
n=$(ls "$t/repo" | grep -c '^snapshot_')
rpc "$token" "[[$heads],7]" | grep -q "above the head" || fail "tail above the head"
[ "$(ls "$t/repo" | grep -c '^snapshot_')" = "$n" ] || fail "a file was left"
rpc "$token" "[[$heads],-1]" | grep -q '"error"' || fail "a negative tail"
echo "ok"
