#!/bin/sh
# client.sh: a real retrieval client against `cairn serve`:
# @helia/verified-fetch (../shared/clients/fetch.mjs) fetches a file packed by
# cairn (ipfs-car's CIDs) and files inside a directory, asking for single
# raw blocks, verifying each and reassembling the UnixFS file; the bytes must
# equal the originals.
# Usage: tests/serve/client.sh CAIRN. Exit 77 (skipped) without node or npm.
set -eu
cairn=$1
here=$(cd "$(dirname "$0")" && pwd)
clients=${CAIRN_CLIENTS:-$here/../../../shared/clients}
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { echo "client: no node/npm: skipped"; exit 77; }
[ -d "$clients" ] || { echo "client: no $clients: skipped"; exit 77; }
sh "$here/../../scripts/install-peers.sh" "$clients" || exit 1
. "$here/../lib/serve.sh"
work=$(mktemp -d)
trap 'serve_kill; rm -rf "$work"' EXIT
export CAIRN_PATH="$work/store"
cd "$work"
head -c 3000000 /dev/urandom >f.bin
mkdir -p d/sub
head -c 1500000 /dev/urandom >d/a.bin
printf 'hello from cairn\n' >d/sub/h.txt
file_root=$("$cairn" pack --no-wrap f.bin -o f.car)
dir_root=$("$cairn" pack d -o d.car)
"$cairn" dagstore register-shard p1 f.car >/dev/null
"$cairn" dagstore register-shard p2 d.car >/dev/null
"$cairn" dagstore initialize-all >/dev/null
serve_start serve.log "$cairn" --listen 127.0.0.1:0 || exit 1
fail=0
check() { # PATH-UNDER-/ipfs/ EXPECTED-FILE
	out=$(cd "$clients" && node fetch.mjs "$serve_base" "$1" "$work/got.bin" 2>&1) || {
		echo "FAIL $1: $out"; fail=1; return; }
	if cmp -s "$work/got.bin" "$2"; then
		echo "ok   $1 ($(wc -c <"$2") bytes, verified by @helia/verified-fetch)"
	else
		echo "FAIL $1: bytes differ from $2 ($out)"; fail=1
	fi
}
check "$file_root" f.bin
check "$dir_root/a.bin" d/a.bin
check "$dir_root/sub/h.txt" d/sub/h.txt
# A tree packed by ipfs-car itself (../shared/peers), with a directory of
# 1,100 entries (a HAMT shard) and nested plain directories: files fetched by
# path through both, and the same paths as CARs from cairn's own pathing.
peers=${CAIRN_PEERS:-$here/../../../shared/peers}
sh "$here/../../scripts/install-peers.sh" "$peers" || exit 1
if [ -x "$peers/node_modules/.bin/ipfs-car" ]; then
	mkdir -p e/docs/deep e/many
	head -c 2500000 /dev/urandom >e/docs/deep/big.bin
	printf 'nested\n' >e/docs/deep/n.txt
	for i in $(seq -w 0 1099); do printf 'entry %s\n' "$i" >"e/many/f$i.txt"; done
	(cd "$peers" && node_modules/.bin/ipfs-car pack "$work/e" --output "$work/e.car") >ipfs-car.out 2>&1 ||
		{ echo "FAIL ipfs-car pack: $(cat ipfs-car.out)"; exit 1; }
	e_root=$("$cairn" car root e.car)
	serve_stop || true
	"$cairn" dagstore register-shard p3 e.car >/dev/null
	"$cairn" dagstore initialize-all >/dev/null
	rm -f "$CAIRN_PATH/api"
	serve_start serve.log "$cairn" --listen 127.0.0.1:0 || exit 1
	check "$e_root/docs/deep/big.bin" e/docs/deep/big.bin
	check "$e_root/docs/deep/n.txt" e/docs/deep/n.txt
	check "$e_root/many/f0000.txt" e/many/f0000.txt
	check "$e_root/many/f0777.txt" e/many/f0777.txt
	check "$e_root/many/f1099.txt" e/many/f1099.txt
	# cairn's own pathing through the same HAMT, checked by cairn's CAR reader
	if command -v curl >/dev/null; then
		curl -s -o got.car "$serve_base/ipfs/$e_root/many/f0777.txt?format=car" &&
		"$cairn" car verify got.car >/dev/null &&
		[ "$("$cairn" car get-block got.car "$("$cairn" car ls got.car | tail -1)")" = "entry 0777" ] &&
			echo "ok   car by path through ipfs-car's HAMT: $("$cairn" car ls got.car | wc -l) blocks" ||
			{ echo "FAIL car by path through ipfs-car's HAMT"; fail=1; }
	fi
else
	echo "skip ipfs-car's tree: no $peers/node_modules (npm ci there)"
fi
exit $fail
