#!/bin/sh
# commp-interop.sh: cairn's piece CIDs against @web3-storage/data-segment
# (../shared/peers/commp.mjs) on fresh files of many sizes.
#
# Usage: tests/piece/commp-interop.sh CAIRN
#   CAIRN is the cairn executable. Needs node and openssl; runs `npm ci` in
#   ../shared/peers when its node_modules is missing.
#   INTEROP_SEED fixes the seed of the generated data (default: a fresh one,
#   printed). INTEROP_BIG=0 leaves out the files over 8 MiB.
#   Exit 0 when every check passed, 1 when one failed, 77 (skipped) without
#   node.
#
# The sizes cover payloads under 127 bytes (where data-segment gives an
# answer, so cairn must agree), the edges of a quad, of the hasher's 1 MiB
# chunk (127 * 2^13 bytes) and of its batches, 1 MiB +- 1, and a few files
# up to 64 MiB. Files of 1 MiB and more also go through one thread, the
# OpenSSL path (CAIRN_NO_SHANI=1) and the SHA-NI path without AVX-512
# (CAIRN_NO_AVX512=1), which must all give the same.

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
	echo "piece interop: node not found: skipped" >&2
	exit 77
fi
if ! command -v openssl >/dev/null 2>&1; then
	echo "piece interop: openssl not found: skipped" >&2
	exit 77
fi
sh "$root/scripts/install-peers.sh" "$peers" || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-commp-interop-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

seed=${INTEROP_SEED:-cairn-$(date +%s)-$$}
passed=0
failed=0

# gen NAME SIZE: SIZE bytes of the AES-256-CTR stream keyed by the seed and
# NAME (the peers' generator, so any failure can be replayed).
gen() {
	gen_key=$(printf '%s/%s' "$seed" "$1" | sha256sum | cut -c1-64)
	openssl enc -aes-256-ctr -nosalt -K "$gen_key" -iv 00000000000000000000000000000000 \
		-in /dev/zero 2>/dev/null | head -c "$2" >"$tmp/$1"
}

# field NAME: the value of "NAME" in JSON on standard input (one line or
# pretty-printed).
field() {
	tr ',' '\n' | sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -n 1
}

# reference FILE: commp.mjs's piece CIDs of FILE into ref_v2 and ref_v1.
ref_v2= ref_v1=
reference() {
	node "$peers/commp.mjs" "$1" >"$tmp/ref.json" 2>"$tmp/ref.err" || {
		cat "$tmp/ref.err"
		return 1
	}
	ref_v2=$(field piece_cid <"$tmp/ref.json")
	ref_v1=$(field piece_cid_v1 <"$tmp/ref.json")
}

# check NAME FILE VAR=VALUE [OPTION...]: cairn piece commp on FILE, with that
# environment variable and options, must give the reference's CIDs.
check() {
	ck_name=$1
	ck_file=$2
	ck_env=$3
	shift 3
	if env "$ck_env" "$cairn" piece commp --json "$@" "$ck_file" >"$tmp/out.json" 2>"$tmp/out.err"; then
		ck_v2=$(field piece_cid <"$tmp/out.json")
		ck_v1=$(field piece_cid_v1 <"$tmp/out.json")
	else
		ck_v2="(failed: $(cat "$tmp/out.err"))"
		ck_v1=
	fi
	if [ -n "$ref_v2" ] && [ "$ck_v2" = "$ref_v2" ] && [ "$ck_v1" = "$ref_v1" ]; then
		passed=$((passed + 1))
		echo "ok    $ck_name"
	else
		failed=$((failed + 1))
		echo "FAIL  $ck_name"
		echo "      cairn:        $ck_v2 $ck_v1"
		echo "      data-segment: $ref_v2 $ref_v1"
	fi
}

chunk=$((127 * 8192))
mib=1048576
sizes="0 1 2 31 32 63 64 65 66 96 126 127 128 129 253 254 255 256 381 508 509 1016 1017 4096
	$((mib - 1)) $mib $((mib + 1)) $((chunk - 1)) $chunk $((chunk + 1))
	$((4 * chunk)) $((4 * chunk + 127)) $((8 * chunk + 1))"
if [ "${INTEROP_BIG:-1}" != 0 ]; then
	sizes="$sizes $((16 * mib - 1)) $((33 * mib + 12345)) $((64 * mib))"
fi
# A few random sizes, from the seed.
rnd=$(printf '%s' "$seed" | sha256sum | cut -c1-12)
for i in 1 2 3 4; do
	sizes="$sizes $(( (0x$rnd >> (i * 6)) % (3 * mib) ))"
done

echo "piece interop: seed $seed, peers $peers"
for size in $sizes; do
	name=f$size
	gen "$name" "$size"
	if ! reference "$tmp/$name"; then
		failed=$((failed + 1))
		echo "FAIL  $size bytes: commp.mjs failed"
		continue
	fi
	check "$size bytes" "$tmp/$name" CAIRN_NO_SHANI=0
	if [ "$size" -ge $mib ]; then
		check "$size bytes, one thread" "$tmp/$name" CAIRN_NO_SHANI=0 --threads 1
		check "$size bytes, OpenSSL (CAIRN_NO_SHANI=1)" "$tmp/$name" CAIRN_NO_SHANI=1
		check "$size bytes, no AVX-512 (CAIRN_NO_AVX512=1)" "$tmp/$name" CAIRN_NO_AVX512=1
	fi
	rm -f "$tmp/$name"
done

echo "piece interop: $passed passed, $failed failed"
[ $failed = 0 ] && [ $passed -gt 0 ]
