#!/bin/sh
# run.sh: the main job, grown with the project. Today, a storage provider's
# data plane up to serving: a client's files are packed into a CAR (the CIDs
# ipfs-car gives), the provider computes the deal's piece CID, imports the
# deal into the DAG store as a shard, indexes it, and serves every block by
# CID through the top-level index; the client's unpack restores the files.
# (`cairn serve` and the fetch over HTTP come with the serve issue.)
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

# The provider: the deal's piece CID, then the piece becomes a shard.
piece=$("$cairn" piece commp --json deal.car | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p')
step "$cairn" piece commp deal.car
printf '[{"key": "%s", "url": "%s/deal.car"}]\n' "$piece" "$work" >deals.json
step "$cairn" dagstore import-deals deals.json
step "$cairn" dagstore initialize-all
step "$cairn" dagstore list-shards
step "$cairn" dagstore lookup-pieces "$root"

# Every block, found by CID through the top-level index, hashed, and equal
# to the block in the CAR.
n=0
for cid in $("$cairn" car ls deal.car); do
	"$cairn" dagstore get-block "$cid" -o got.bin
	"$cairn" car get-block deal.car "$cid" want.bin
	cmp -s got.bin want.bin || { echo "run: block $cid differs" >&2; exit 1; }
	n=$((n + 1))
done
printf '\nrun: %d blocks served by CID through the DAG store, all identical\n' "$n"

# The client's side: the retrieved CAR back into files.
step "$cairn" unpack deal.car -o restored
diff -r files restored
printf '\nrun: %s unpacked, identical to the files packed\n' "$root"
