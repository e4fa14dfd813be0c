#!/bin/sh
# kill9.sh: kill -9 at every recorded step of `cairn deal import`
# (CAIRN_DEAL_CRASH_AT) and at random times, from a file and from stdin,
# ITERATIONS times; the same command run again always ends the same: the
# same sector and offset (behind a first deal, so not 0), the same piece
# CID, the shard Available, staging empty, the piece read back equal.
# Usage: tests/deal/kill9.sh CAIRN (ITERATIONS, default 20).
set -eu
cairn=$1
iterations=${ITERATIONS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL $*" >&2; exit 1; }
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
piece_of() { "$cairn" piece commp --json "$1" | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p'; }

mkdir a b
head -c 200000 /dev/urandom >a/x.bin
head -c 24000000 /dev/urandom >b/y.bin
"$cairn" pack a -o a.car >/dev/null
"$cairn" pack b -o b.car >/dev/null
pa=$(piece_of a.car)
pb=$(piece_of b.car)
# the template: a store with one deal, so the next lands past it
CAIRN_PATH="$work/template" "$cairn" deal import --sector-size 512MiB --piece-cid "$pa" a.car >/dev/null
# the reference result, without a crash
cp -a template ref
CAIRN_PATH="$work/ref" "$cairn" deal import --sector-size 512MiB --piece-cid "$pb" b.car --json |
	sed 's/"source":"[^"]*",//; s/,"created_at".*//' >want.json
grep -q '"state":"Available"' want.json || fail "reference import: $(cat want.json)"

# A wrong piece CID of the same size (v1: only add-piece's CommP tells):
# refused, the sector's file byte for byte as it was, one deal.
cp -a template wrong
head -c 1000 /dev/urandom >other.bin
wv1=$("$cairn" piece commp --json other.bin | sed -n 's/.*"piece_cid_v1":"\([^"]*\)".*/\1/p')
unsealed=$(find wrong -path '*/unsealed/*' -type f)
cp "$unsealed" unsealed.before
CAIRN_PATH="$work/wrong" "$cairn" deal import --sector-size 512MiB --piece-cid "$wv1" b.car \
	>/dev/null 2>err.txt && fail "a wrong v1 piece CID was accepted"
grep -q "nothing kept" err.txt || fail "wrong piece CID: $(cat err.txt)"
cmp -s "$unsealed" unsealed.before || fail "a refused piece changed the sector's file"
[ "$(CAIRN_PATH="$work/wrong" "$cairn" deal list --json | wc -l)" = 1 ] || fail "a refused deal is listed"
rm -rf wrong unsealed.before other.bin
echo "ok   a wrong piece CID: refused at add-piece, the sector as it was"

steps="staging staged chosen written added registered indexed available"
i=0
while [ $i -lt "$iterations" ]; do
	i=$((i + 1))
	rm -rf store
	cp -a template store
	export CAIRN_PATH="$work/store"
	r=$(rnd)
	if [ $((r % 2)) = 0 ]; then src=b.car; else src=-; fi
	if [ $((r / 2 % 3)) = 0 ]; then
		# a random time: 0 to 300 ms into the import
		ms=$(($(rnd) % 300))
		"$cairn" deal import --sector-size 512MiB --piece-cid "$pb" "$src" <b.car >/dev/null 2>&1 &
		pid=$!
		sleep "$(printf '0.%03d' $ms)"
		kill -9 $pid 2>/dev/null || true
		wait $pid 2>/dev/null || true
		how="kill -9 after ${ms}ms"
	else
		# a file is read in place: only stdin has a "staging" step
		n=$(( $(rnd) % 8 + 1 ))
		[ "$src" = - ] || [ $n != 1 ] || n=2
		at=$(echo $steps | cut -d' ' -f$n)
		CAIRN_DEAL_CRASH_AT=$at "$cairn" deal import --sector-size 512MiB --piece-cid "$pb" "$src" \
			<b.car >/dev/null 2>&1 && fail "CAIRN_DEAL_CRASH_AT=$at did not crash"
		how="crash at $at"
	fi
	state=$("$cairn" deal list --json | sed -n "s/.*\"piece_cid\":\"[^\"]*\",\"state\":\"\([A-Za-z]*\)\".*/\1/p" | tail -1)
	"$cairn" deal import --sector-size 512MiB --piece-cid "$pb" "$src" --json <b.car |
		sed 's/"source":"[^"]*",//; s/,"created_at".*//' >got.json ||
		fail "iteration $i ($how, source $src): resume failed"
	cmp -s got.json want.json || fail "iteration $i ($how): $(cat got.json) instead of $(cat want.json)"
	[ -z "$(ls store/staging)" ] || fail "iteration $i ($how): staging not empty"
	key=$(sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p' got.json)
	"$cairn" dagstore list-shards | grep -q "^$key *Available" || fail "iteration $i ($how): shard not Available"
	[ "$("$cairn" deal list --json | wc -l)" = 2 ] || fail "iteration $i ($how): deals: $("$cairn" deal list)"
	"$cairn" sector read-piece "$key" -o back.car >/dev/null
	cmp -s back.car b.car || fail "iteration $i ($how): the piece read back differs"
	echo "ok   $i: $how ($src), left ${state:-nothing}, resumed to the same result"
done
echo "deal/kill9: $iterations kills, all resumed to $(sed 's/,"padded_size".*//' want.json)"
