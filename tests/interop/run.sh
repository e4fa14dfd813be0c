#!/bin/sh
# run.sh: interop test of cairn's CAR writer and indexes against the JavaScript
# reference peers (@ipld/car): fresh peer data, rewritten and indexed by cairn, checked by the peers.
#
# Usage: tests/interop/run.sh BUILD_DIR
#   BUILD_DIR is the cairn build folder holding the car_tool helper
#   (tests/car_tool, tests/interop/car_tool or car_tool under it).
#   Needs node; runs `npm ci` in ../shared/peers when its node_modules is missing.
#   INTEROP_SEED fixes the seed of the generated data (default: a fresh one, printed).
#   Exit 0 when every check passed, 1 when one failed, 77 (skipped) without node.
#
# For the lead, in tests/meson.build (after the unit tests):
#
#   car_tool = executable('car_tool', 'interop/car_tool.c',
#     include_directories : inc, dependencies : libcairn_dep)
#   test('interop', find_program('interop/run.sh'),
#     args : [meson.project_build_root()], depends : car_tool,
#     env : test_env, suite : 'interop', timeout : 600)

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
peers=${CAIRN_PEERS:-$root/../shared/peers}
fixtures=${CAIRN_FIXTURES:-$root/../shared/fixtures}

if [ $# -ne 1 ]; then
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
fi
tool=
for t in "$1/tests/car_tool" "$1/tests/interop/car_tool" "$1/car_tool"; do
	if [ -x "$t" ]; then
		tool=$t
		break
	fi
done
if [ -z "$tool" ]; then
	echo "interop: no car_tool under $1 (build it first)" >&2
	exit 1
fi
if ! command -v node >/dev/null 2>&1; then
	echo "interop: node not found: skipped" >&2
	exit 77
fi
sh "$root/scripts/install-peers.sh" "$peers" || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-interop-XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

seed=${INTEROP_SEED:-cairn-$(date +%s)-$$}
passed=0
failed=0

# check NAME CMD...: runs CMD, counts it, shows its output when it fails.
# (sh has no locals: helpers keep to their own prefixed names.)
check() {
	ck_name=$1
	shift
	if "$@" >"$tmp/out" 2>&1; then
		passed=$((passed + 1))
		echo "ok    $ck_name"
	else
		failed=$((failed + 1))
		echo "FAIL  $ck_name"
		sed 's/^/      /' "$tmp/out" | head -n 40
	fi
}

node_in() {
	(cd "$peers" && node "$@")
}

# The "blocks" count of verify.mjs on a CAR (empty when it fails).
blocks_of() {
	node_in verify.mjs "$1" 2>/dev/null | sed -n 's/^  "blocks": \([0-9]*\),*$/\1/p'
}

same_blocks() {
	sb_a=$(blocks_of "$1")
	sb_b=$(blocks_of "$2")
	echo "$1: ${sb_a:-?} blocks, $2: ${sb_b:-?} blocks"
	[ -n "$sb_a" ] && [ "$sb_a" = "$sb_b" ]
}

# The index a CARv2 carries (from index_offset, bytes 43..50 LE, to the end).
embedded_index() {
	ei_off=$(od -An -tu8 -j43 -N8 "$1" | tr -d ' ')
	[ -n "$ei_off" ] && [ "$ei_off" -gt 0 ] && tail -c +$((ei_off + 1)) "$1" >"$2"
}

same_embedded_index() {
	embedded_index "$1" "$tmp/embedded.idx" && cmp "$tmp/embedded.idx" "$2"
}

echo "interop: seed $seed, peers $peers"
echo "interop: car_tool $tool"
node_in gen-cbor.mjs 2000 "$tmp/chain.car" --seed "$seed" >/dev/null || exit 1
node_in gen-cbor.mjs 700 "$tmp/tree.car" --seed "$seed" --shape tree --fanout 7 >/dev/null || exit 1
node_in gen-unixfs.mjs 3 "$tmp/unixfs.car" --seed "$seed" >/dev/null || exit 1
node_in gen-unixfs.mjs 1 "$tmp/unixfs-v0.car" --seed "$seed" --impl importer-v0-2015 >/dev/null || exit 1

for name in chain tree unixfs unixfs-v0; do
	in=$tmp/$name.car
	# detached index: cairn's bytes are the peer's bytes, and the peer accepts them
	node_in index.mjs "$in" --out "$tmp/$name.ref.idx" >/dev/null
	check "$name: cairn index runs" "$tool" index "$in" "$tmp/$name.cairn.idx"
	check "$name: index bytes equal index.mjs" cmp "$tmp/$name.cairn.idx" "$tmp/$name.ref.idx"
	check "$name: check-index.mjs accepts cairn's detached index" \
		node_in check-index.mjs "$in" "$tmp/$name.cairn.idx"
	# CARv1 rewrite: read by @ipld/car, same blocks; the same bytes as the peer wrote
	check "$name: cairn write-v1 runs" "$tool" write-v1 "$in" "$tmp/$name.v1.car"
	check "$name: verify.mjs reads cairn's CARv1" node_in verify.mjs "$tmp/$name.v1.car"
	check "$name: CARv1 has the same block count" same_blocks "$in" "$tmp/$name.v1.car"
	check "$name: CARv1 is byte-identical to the peer's" cmp "$in" "$tmp/$name.v1.car"
	# CARv2 with each index codec
	for codec in mh sorted; do
		out=$tmp/$name.v2-$codec.car
		check "$name: cairn write-v2 --codec=$codec runs" "$tool" write-v2 "$in" "$out" --codec=$codec
		check "$name: verify.mjs reads cairn's CARv2 ($codec)" node_in verify.mjs "$out"
		check "$name: CARv2 ($codec) has the same block count" same_blocks "$in" "$out"
		check "$name: check-index.mjs accepts the embedded index ($codec)" node_in check-index.mjs "$out"
	done
	check "$name: embedded 0x0401 index equals index.mjs" \
		same_embedded_index "$tmp/$name.v2-mh.car" "$tmp/$name.ref.idx"
	out=$tmp/$name.v2-none.car
	check "$name: cairn write-v2 --codec=none runs" "$tool" write-v2 "$in" "$out" --codec=none
	check "$name: verify.mjs reads cairn's index-less CARv2" same_blocks "$in" "$out"
done

# go-car's fixtures: the same three implementations agree on sample-v1.
if [ -f "$fixtures/car/sample-v1.car" ]; then
	v1=$fixtures/car/sample-v1.car
	noid=$fixtures/car/sample-v1-noidentity.car
	node_in index.mjs "$v1" --out "$tmp/sample.ref.idx" >/dev/null
	node_in index.mjs "$noid" --out "$tmp/noid.ref.idx" >/dev/null
	check "sample-v1: cairn index runs" "$tool" index "$v1" "$tmp/sample.cairn.idx"
	check "sample-v1: index equals go-car's carindex" \
		cmp "$tmp/sample.cairn.idx" "$fixtures/car/sample-multihash-index-sorted.carindex"
	check "sample-v1: index equals index.mjs" cmp "$tmp/sample.cairn.idx" "$tmp/sample.ref.idx"
	check "sample-v1: cairn write-v2 runs" "$tool" write-v2 "$v1" "$tmp/sample.v2.car"
	check "sample-v1: CARv2 (identity left out) read by verify.mjs" node_in verify.mjs "$tmp/sample.v2.car"
	check "sample-v1: CARv2 index equals index.mjs of sample-v1-noidentity" \
		same_embedded_index "$tmp/sample.v2.car" "$tmp/noid.ref.idx"
	check "sample-v1: check-index.mjs accepts it" node_in check-index.mjs "$tmp/sample.v2.car"
fi

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
