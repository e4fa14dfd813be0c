#!/bin/sh
# run.sh: the main job, grown with the project. Today: the IPLD codec fixtures
# are packed into an indexed CARv2 as a deal would arrive, verified, and every
# block is fetched back by CID through the index and checked.
set -eu
cairn=$(cd "$(dirname "${1:-build/cairn}")" && pwd)/$(basename "${1:-build/cairn}")
fixtures=$(cd "$(dirname "$0")/../../shared/fixtures/codec/fixtures" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

# 1. Blocks named by their CIDs, as a client would send them.
root=$(ls "$fixtures"/dagpb_2link+data/*.dag-pb)
root_cid=$(basename "${root%.*}")
cp "$fixtures"/*/*.dag-cbor "$fixtures"/*/*.dag-pb "$fixtures"/*/*.dag-json "$work/"
cd "$work"
printf '\n\033[1m$ cairn car create --root %s deal.car <%d block files>\033[0m\n' "$root_cid" "$(ls | wc -l)"
"$cairn" car create --root "$root_cid" deal.car ./*.dag-cbor ./*.dag-pb ./*.dag-json
step "$cairn" car inspect deal.car
step "$cairn" car verify deal.car

# 2. Every block back by CID, through the index, identical to what was sent.
n=0
for f in ./*.dag-*; do
	cid=$(basename "${f%.*}")
	"$cairn" car get-block deal.car "$cid" got.bin
	cmp -s got.bin "$f" || { echo "run: block $cid differs from what was packed" >&2; exit 1; }
	n=$((n + 1))
done
printf '\nrun: %d blocks fetched by CID through the CARv2 index, all identical\n' "$n"

# 3. One of them, as a person would look at it.
step "$cairn" cid inspect "$root_cid"
step "$cairn" block inspect --pretty --cid "$root_cid" "$root"
