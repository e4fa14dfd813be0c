#!/bin/sh
# run.sh: the main job, grown with the project. Today, a storage provider's
# data plane up to serving: a client's files are packed into a CAR (the CIDs
# ipfs-car gives), the provider computes the deal's piece CID and imports
# the deal (`cairn deal import`: CommP checked, the piece into a sector, its
# shard mounted from the sector and indexed), and serves every block by CID
# through the top-level index and then over HTTP from `cairn serve` (the
# trustless gateway's raw and CAR responses, and the piece by piece CID);
# the client's unpack of the CAR fetched restores the files.
set -eu
cairn=$(cd "$(dirname "${1:-build/cairn}")" && pwd)/$(basename "${1:-build/cairn}")
fixtures=$(cd "$(dirname "$0")/../../shared/fixtures/codec/fixtures" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CAIRN_PATH="$work/store"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cd "$work"
# The client's data: the IPLD codec fixtures, a tree of a few hundred files.
cp -r "$fixtures" files
step "$cairn" pack --hidden files -o deal.car
root=$("$cairn" car root deal.car)
step "$cairn" car verify deal.car

# The provider: the deal's piece CID, then the deal: its CommP checked, the
# piece added to a sector, its shard registered with the piece mount and
# indexed (`cairn deal import`).
piece=$("$cairn" piece commp --json deal.car | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p')
step "$cairn" piece commp deal.car
step "$cairn" deal import --sector-size 8MiB --piece-cid "$piece" deal.car
step "$cairn" deal list
step "$cairn" dagstore list-shards
step "$cairn" dagstore lookup-pieces "$root"
[ -z "$(ls "$CAIRN_PATH/staging")" ] || { echo "run: staging not empty" >&2; exit 1; }

# Every block, found by CID through the top-level index, read out of the
# sector, hashed, and equal to the block in the CAR.
n=0
for cid in $("$cairn" car ls deal.car); do
	"$cairn" dagstore get-block "$cid" -o got.bin
	"$cairn" car get-block deal.car "$cid" want.bin
	cmp -s got.bin want.bin || { echo "run: block $cid differs" >&2; exit 1; }
	n=$((n + 1))
done
printf '\nrun: %d blocks served by CID through the DAG store, all identical\n' "$n"

# Retrieval over HTTP: `cairn serve` owns the store while it runs.
"$cairn" serve --listen 127.0.0.1:0 >serve.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
i=0
while [ ! -s "$CAIRN_PATH/api" ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat serve.log >&2; echo "run: cairn serve did not start" >&2; exit 1; }
	sleep 0.1
done
port=$(sed -n 's|.*/tcp/\([0-9]*\)/.*|\1|p' "$CAIRN_PATH/api")
printf '\n\033[1m$ cairn serve --listen 127.0.0.1:0\033[0m  (api: %s)\n' "$(cat "$CAIRN_PATH/api")"
step curl -sS -o fetched.car -D headers.txt "http://127.0.0.1:$port/ipfs/$root?format=car"
grep -i -E '^(content-type|x-ipfs-roots|etag):' headers.txt
"$cairn" car ls fetched.car | sort >got.txt
"$cairn" car ls deal.car | sort >want.txt
cmp -s got.txt want.txt || { echo "run: the CAR served differs from the CAR packed" >&2; exit 1; }
printf '\nrun: %d blocks fetched as one CAR over HTTP, the same set as packed\n' "$(wc -l <got.txt)"
step curl -sS -o root.bin "http://127.0.0.1:$port/ipfs/$root?format=raw"
"$cairn" car get-block deal.car "$root" want.bin
cmp root.bin want.bin
# The piece by its piece CID: the CAR, then zeros to the piece's size.
step curl -sS -o piece.bin "http://127.0.0.1:$port/piece/$piece"
cmp -n "$(wc -c <deal.car)" piece.bin deal.car
[ -z "$(tail -c +"$(($(wc -c <deal.car) + 1))" piece.bin | tr -d '\0' | head -c 1)" ] ||
	{ echo "run: the piece's padding is not zeros" >&2; exit 1; }
printf '\nrun: piece %s served: %d bytes, the CAR plus zero padding\n' "$piece" "$(wc -c <piece.bin)"
kill -TERM $server
wait $server || true

# The client's side: the retrieved CAR back into files.
step "$cairn" unpack fetched.car -o restored
diff -r files restored
printf '\nrun: %s fetched over HTTP and unpacked, identical to the files packed\n' "$root"
