#!/bin/sh
# run.sh: the main job, grown with the project. Today: take blocks from the
# IPLD codec fixtures, compute their CIDs, and show them as DAG-JSON.
set -eu
cairn=${1:-build/cairn}
fixtures=$(cd "$(dirname "$0")/../../shared/fixtures/codec/fixtures" && pwd)

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

block=$(ls "$fixtures"/dagpb_2link+data/*.dag-pb)
cid=$("$cairn" block hash --codec dag-pb "$block")
step "$cairn" cid inspect "$cid"
step "$cairn" block inspect --pretty --cid "$cid" "$block"
step "$cairn" block inspect --links --cid "$cid" "$block"
# Every fixture block hashes to the CID in its file name.
n=0
for f in "$fixtures"/*/*.dag-cbor "$fixtures"/*/*.dag-json "$fixtures"/*/*.dag-pb; do
	name=$(basename "$f")
	want=${name%.*}
	got=$("$cairn" block hash --codec "${name##*.}" "$f")
	if [ "$got" != "$want" ]; then
		echo "run: $f hashes to $got, not $want" >&2
		exit 1
	fi
	n=$((n + 1))
done
printf '\nrun: %d fixture blocks decoded and hashed to the CIDs in their names\n' "$n"
