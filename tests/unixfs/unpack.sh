#!/bin/sh
# unpack.sh: `cairn unpack` against CARs made by the JavaScript peers: trees
# packed by ipfs-car (nested directories, a directory of 2,000 entries that
# ipfs-car shards, files of 0, 1, 1 MiB, 1 MiB + 1 and ~5 MiB bytes) and
# single files from gen-unixfs.mjs (ipfs-car, importer and importer-v0-2015
# layouts, one and two levels deep) must come back byte for byte; a CAR
# with a byte flipped inside a block, or a block left out, must fail with a
# clear message, a non-zero status, and nothing left at the output path.
#
# Usage: tests/unixfs/unpack.sh CAIRN
#   Needs node; runs `npm ci` in ../shared/peers when its node_modules is
#   missing. UNPACK_SEED fixes the random tree (default: a fresh one, printed).
#   Exit 0 when every check passed, 1 when one failed, 77 (skipped) without node.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
peers=${CAIRN_PEERS:-$root/../shared/peers}

if [ $# -ne 1 ]; then
	echo "usage: $0 CAIRN" >&2
	exit 2
fi
cairn=$1
if ! command -v node >/dev/null 2>&1; then
	echo "unpack: node not found: skipped" >&2
	exit 77
fi
sh "$root/scripts/install-peers.sh" "$peers" || exit 1
ipfs_car=$peers/node_modules/.bin/ipfs-car

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-unpack-XXXXXX")
trap 'rm -rf "$work"' EXIT
seed=${UNPACK_SEED:-$(od -An -tu4 -N4 /dev/urandom | tr -d ' ')}
echo "unpack: seed $seed" >&2
failed=0

fail () {
	echo "FAIL: $*" >&2
	failed=1
}

# n random bytes, reproducible from the seed and a label (AES-CTR keystream,
# as the peers make their data).
bytes () { # label n
	key=$(printf '%s/%s' "$seed" "$1" | sha256sum | cut -c1-64)
	openssl enc -aes-256-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 \
		-in /dev/zero 2>/dev/null | head -c "$2"
}

# A random number in [0, n) from the seed and a label.
rnd () { # label n
	v=$(printf '%s/%s' "$seed" "$1" | sha256sum | cut -c1-8)
	echo $(( $(printf '%d' "0x$v") % $2 ))
}

# ---- the tree
src=$work/src
mkdir -p "$src/nested/a/b/c" "$src/nested/empty-sibling-has-file" "$src/wide"
bytes empty 0 >"$src/empty"
bytes one 1 >"$src/one"
bytes mib 1048576 >"$src/mib"
bytes mibp1 1048577 >"$src/mib+1"
bytes five $((5 * 1048576 + $(rnd five 300000))) >"$src/five"
bytes deep $(rnd deep 200000) >"$src/nested/a/b/c/deep.bin"
bytes mid $(rnd mid 3000000) >"$src/nested/a/mid.bin"
printf 'x' >"$src/nested/empty-sibling-has-file/x"
printf 'spaces and unicode' >"$src/nested/sp ace \303\274\342\234\223.txt"
i=0
while [ $i -lt 2000 ]; do
	i=$((i + 1))
	echo "entry $i $seed" >"$src/wide/f$i"
done
bytes wide-big $(rnd wide-big 2000000) >"$src/wide/big"

nfiles=$(find "$src" -type f | wc -l)
ndirs=$(find "$src" -type d | wc -l)

# ---- directories packed by ipfs-car
"$ipfs_car" pack "$src" --output "$work/tree.car" >/dev/null 2>"$work/pack.err" ||
	{ cat "$work/pack.err" >&2; fail "ipfs-car pack"; }
for j in 0 1; do
	out=$work/tree-$j
	if "$cairn" unpack -j $j "$work/tree.car" -o "$out" >"$work/out.txt" 2>"$work/err.txt"; then
		diff -r "$src" "$out" >/dev/null || fail "tree (-j $j): differs from the source"
		grep -q ": $nfiles files, $ndirs directories, " "$work/out.txt" ||
			fail "tree (-j $j): totals: $(cat "$work/out.txt")"
	else
		fail "tree (-j $j): $(cat "$work/err.txt")"
	fi
done
# The shard is there: the "wide" directory is a HAMT (its links have a
# 2-digit prefix), so the test exercises the sharded path.
"$cairn" car ls "$work/tree.car" >/dev/null || fail "car ls"

# A single file wrapped in a directory (ipfs-car's default).
"$ipfs_car" pack "$src/five" --output "$work/wrapped.car" >/dev/null 2>&1 || fail "ipfs-car pack five"
"$cairn" unpack "$work/wrapped.car" -o "$work/wrapped" >/dev/null 2>"$work/err.txt" &&
	cmp -s "$src/five" "$work/wrapped/five" || fail "wrapped file: $(cat "$work/err.txt")"

# --json, and the default output path ./<root CID>.
rootcid=$("$cairn" car root "$work/tree.car")
(cd "$work" && "$cairn" unpack --json tree.car >json.txt 2>"$work/err.txt") ||
	fail "--json: $(cat "$work/err.txt")"
grep -q "\"root\":\"$rootcid\",\"path\":\"$rootcid\",\"files\":$nfiles,\"dirs\":$ndirs," "$work/json.txt" ||
	fail "--json: $(cat "$work/json.txt")"
diff -r "$src" "$work/$rootcid" >/dev/null || fail "default path: differs"

# An existing path is refused unless --force.
if "$cairn" unpack "$work/tree.car" -o "$work/tree-0" >/dev/null 2>"$work/err.txt"; then
	fail "existing path: accepted without --force"
fi
grep -q "tree-0: already exists (--force replaces it)" "$work/err.txt" ||
	fail "existing path: $(cat "$work/err.txt")"
printf 'stale' >"$work/tree-0/one"
"$cairn" unpack --force "$work/tree.car" -o "$work/tree-0" >/dev/null 2>"$work/err.txt" ||
	fail "--force: $(cat "$work/err.txt")"
diff -r "$src" "$work/tree-0" >/dev/null || fail "--force: differs"

# ---- single files from gen-unixfs.mjs: each layout, one and two levels
for spec in "ipfs-car 5.3" "importer 3.1" "importer 45.2" "importer-v0-2015 3.1" "importer-v0-2015 45.2"; do
	set -- $spec
	car=$work/$1-$2.car
	node "$peers/gen-unixfs.mjs" "$2" "$car" --impl "$1" --seed "$seed" --raw "$car.bin" >/dev/null ||
		{ fail "gen-unixfs $spec"; continue; }
	for j in 0 1; do
		"$cairn" unpack -j $j "$car" -o "$car.out" >/dev/null 2>"$work/err.txt" &&
			cmp -s "$car.bin" "$car.out" || fail "gen-unixfs $spec -j $j: $(cat "$work/err.txt")"
		rm -f "$car.out"
	done
	rm -f "$car" "$car.bin"
done

# ---- a byte flipped inside the largest block: refused, nothing left
big=$("$cairn" car ls -v "$work/tree.car" | sort -t"$(printf '\t')" -k3 -n | tail -n 1)
cid=$(echo "$big" | cut -f1)
at=$(( $(echo "$big" | cut -f4) + 1000 ))
cp "$work/tree.car" "$work/bad.car"
b=$(od -An -tu1 -j "$at" -N1 "$work/bad.car" | tr -d ' ')
printf "\\$(printf '%03o' $(( (b + 1) % 256 )))" |
	dd of="$work/bad.car" bs=1 seek="$at" conv=notrunc 2>/dev/null
for j in 0 1; do
	if "$cairn" unpack -j $j "$work/bad.car" -o "$work/bad" >/dev/null 2>"$work/err.txt"; then
		fail "flipped byte (-j $j): accepted"
	fi
	grep -q "block does not hash to its CID $cid" "$work/err.txt" ||
		fail "flipped byte (-j $j): $(cat "$work/err.txt")"
	[ -e "$work/bad" ] && fail "flipped byte (-j $j): output left behind"
done

# ---- a block left out: refused, naming it
"$cairn" car filter --inverse "$work/tree.car" "$work/missing.car" "$cid" >/dev/null 2>&1 ||
	fail "car filter"
if "$cairn" unpack "$work/missing.car" -o "$work/missing" >/dev/null 2>"$work/err.txt"; then
	fail "missing block: accepted"
fi
grep -q "block $cid is not in this CAR" "$work/err.txt" || fail "missing block: $(cat "$work/err.txt")"
[ -e "$work/missing" ] && fail "missing block: output left behind"

if [ $failed = 0 ]; then
	echo "unpack: all checks passed" >&2
fi
exit $failed
