#!/bin/sh
# pack-interop.sh: interop test of `cairn pack` (and `cairn unpack`) against
# the JavaScript reference peers (../shared/peers): ipfs-car 3.1.0's CLI for
# --profile ipfs-car, ipfs-unixfs-importer 17.1.1 with profile unixfs-v0-2015
# (`ipfs add` defaults, through tests/unixfs/peer-pack.mjs) for --profile kubo.
#
# Usage: tests/unixfs/pack-interop.sh CAIRN
#   CAIRN is the cairn executable. Needs node; runs `npm ci` in
#   ../shared/peers (or $CAIRN_PEERS) when its node_modules is missing.
#   PACK_SEED fixes the seed of the generated inputs (default: a fresh one,
#   printed). PACK_KEEP=1 keeps the work folder (printed) for inspection.
#   PACK_SELFTEST=1 also unpacks the reference CARs and checks them against
#   the expected trees (checks the test's own expectations; slower).
#   PACK_ONLY=REGEX runs only the cases whose "PROFILE LABEL" matches
#   (grep -E), e.g. PACK_ONLY='^kubo tree'.
#   PACK_JOBS=N runs the cases in N parallel runners (default: the number
#   of processors, at most 4).
#   Exit 0 when every check passed, 1 when one failed, 77 (skipped) without
#   node.
#
# The inputs are generated at test time in a temporary folder: single files
# (empty, 1 byte, 256 KiB and 1 MiB — one chunk of each profile — and one
# byte more, 174 × 256 KiB + 1 = two levels for kubo, random sizes), a tree
# (nesting, empty directories, a directory holding only an empty directory,
# hidden files and directories, symbolic links, unicode names that sort
# differently bytewise and in UTF-16, names around '/' in sort order), files
# spread over subdirectories or paths (ipfs-car's common parent, its
# --no-wrap of a lone file, several PATHs), directories of 1,000, 1,001
# and 10,000 entries (ipfs-car shards above 1,000; kubo above 262,144 bytes of
# names + CIDs) and two of 4,096 entries whose Σ(name + CID bytes) is exactly
# 262,144 and 262,145 (kubo's threshold edge: the importer and today's boxo
# shard above it, not at it), one whose subdirectory's link crosses it (the
# importer does not count it), and sharded directories inside flat ones.
#
# For each case: the root CID printed by `cairn pack` equals the reference's;
# `cairn unpack` of cairn's CAR restores the expected tree (the input as the
# profile sees it: ipfs-car drops empty directories and hidden files and
# names files relative to their common parent; kubo keeps empty directories
# and drops hidden files), checked with cmp / diff -r; `ipfs-car unpack`
# (the JS CLI) restores the same tree from cairn's CAR. One line per check,
# then a summary.
#
# Registered in tests/unixfs/meson.build (suite unixfs).

set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
peers=${CAIRN_PEERS:-$root/../shared/peers}

if [ $# -ne 1 ]; then
	echo "usage: $0 CAIRN" >&2
	exit 2
fi
case $1 in
/*) cairn=$1 ;;
*) cairn=$(pwd)/$1 ;;
esac
if [ ! -x "$cairn" ]; then
	echo "pack-interop: $cairn is not an executable (build it first)" >&2
	exit 1
fi
if ! command -v node >/dev/null 2>&1; then
	echo "pack-interop: node not found: skipped" >&2
	exit 77
fi
sh "$root/scripts/install-peers.sh" "$peers" || exit 1
peers=$(cd "$peers" && pwd)
ipfscar=$peers/node_modules/ipfs-car/bin.js
if [ ! -f "$ipfscar" ]; then
	echo "pack-interop: $ipfscar missing (npm ci in $peers)" >&2
	exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-pack-interop-XXXXXX") || exit 1
if [ "${PACK_KEEP:-0}" = 1 ]; then
	trap 'echo "pack-interop: kept $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi
trap 'exit 1' INT TERM HUP

# A time limit per command, when coreutils' timeout is there.
limit=
if command -v timeout >/dev/null 2>&1; then
	limit="timeout ${PACK_TIMEOUT:-300}"
fi

seed=${PACK_SEED:-pack-$(date +%s)-$$}
selftest=${PACK_SELFTEST:-0}
only=${PACK_ONLY:-}
passed=0
failed=0
skipped=0

echo "pack-interop: seed $seed (PACK_SEED=$seed to repeat)"
echo "pack-interop: cairn $cairn"
echo "pack-interop: peers $peers ($(node --version))"

pass() {
	passed=$((passed + 1))
	echo "ok    $*"
}
fail() {
	failed=$((failed + 1))
	echo "FAIL  $*"
}
skip() {
	skipped=$((skipped + 1))
	echo "skip  $*"
}
# Indented excerpt of a log file after a failure.
show() {
	[ -s "$1" ] && sed 's/^/      /' "$1" | head -n "${2:-15}"
	return 0
}

# ---------------------------------------------------------------------------
# Inputs, generated once (about 60 MiB and 25,000 small files).
in=$tmp/in
mkdir -p "$in"
cat >"$tmp/gen.mjs" <<'EOF'
// gen.mjs DIR SEED: the inputs of pack-interop.sh. File bytes are the
// AES-256-CTR keystream with key SHA-256(seed) (all files drawn in turn
// from one stream); sizes and names come from a PRNG seeded the same way.
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'

const [dir, seed] = process.argv.slice(2)
const key = crypto.createHash('sha256').update(seed).digest()
const ctr = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
const bytes = (n) => ctr.update(Buffer.alloc(n))
let s = key.readUInt32LE(0)
const rand = () => { // mulberry32
  s = (s + 0x6d2b79f5) >>> 0
  let t = s
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (lo, hi) => lo + Math.floor(rand() * (hi - lo + 1))
const pick = (a) => a[Math.floor(rand() * a.length)]
const file = (p, n) => {
  fs.mkdirSync(path.dirname(p), { recursive: true })
  const fd = fs.openSync(p, 'w')
  for (let left = n; left > 0;) {
    const k = Math.min(left, 1 << 22)
    fs.writeSync(fd, bytes(k))
    left -= k
  }
  fs.closeSync(fd)
}
const text = (p, t) => {
  fs.mkdirSync(path.dirname(p), { recursive: true })
  fs.writeFileSync(p, t)
}
const mkdir = (p) => fs.mkdirSync(p, { recursive: true })
const j = (...a) => path.join(dir, ...a)
const KiB = 1024
const MiB = 1024 * KiB
// Sizes: mostly small, some over a chunk, a few over several chunks.
const size = () => {
  const r = rand()
  if (r < 0.1) return int(0, 16)
  if (r < 0.7) return int(17, 64 * KiB)
  if (r < 0.9) return int(64 * KiB, 600 * KiB)
  return int(600 * KiB, 2.5 * MiB)
}
const sizes = {}

// Single files.
const single = {
  'empty.bin': 0,
  'one.bin': 1,
  'k256.bin': 256 * KiB,
  'k256p1.bin': 256 * KiB + 1,
  'm1.bin': MiB,
  'm1p1.bin': MiB + 1,
  'deep.bin': 174 * 256 * KiB + 1,
  'rand-a.bin': int(2, 256 * KiB),
  'rand-b.bin': int(256 * KiB, 3 * MiB),
  'rand-c.bin': int(3 * MiB, 9 * MiB)
}
for (const [name, n] of Object.entries(single)) {
  file(j('files', name), n)
  sizes[name] = n
}

// The tree: nesting, empty directories, hidden entries, names whose bytewise
// (UTF-8, dag-pb) order differs from their UTF-16 (JavaScript) order, and
// names around '/' (0x2f) in sort order: "d" (directory), "d-x" (0x2d),
// "d.x" (0x2e), "d0" (0x30).
const t = (...a) => j('tree', ...a)
for (const name of ['a', 'B', 'b', 'é', 'e\u0301', '😀', 'ｚ', 'Ω', '日本語', 'with space', 'd-x', 'd.x', 'd0', 'zero']) {
  file(t(name), name === 'zero' ? 0 : size())
}
file(t('ｚｚ', '😀', 'inner.bin'), size())
file(t('d', 'mid.bin'), size())
file(t('d', 'e', 'f', 'g', 'h', 'i', 'leaf.txt'), int(1, 100))
file(t('d', 'e', 'f', 'sibling.bin'), 256 * KiB + 7)
file(t('d', 'e', 'big.bin'), MiB + 3)
mkdir(t('empty'))
mkdir(t('onlyempty', 'inner'))
mkdir(t('d', 'e', 'emptytoo'))
text(t('.hidden'), 'hidden file\n')
text(t('.hdir', 'x.txt'), 'in a hidden directory\n')
text(t('.hdir', 'y', 'z.txt'), 'deeper in a hidden directory\n')
text(t('d', '.h2'), 'hidden in a subdirectory\n')
mkdir(t('.hiddenempty'))
// Symbolic links (to a file, to a directory): skipped by both profiles.
fs.symlinkSync('a', t('link-to-a'))
fs.symlinkSync('d', t('link-to-d'))
const parts = ['r', 'r/s', 'r/s/t', 'r/u', 'd/e', 'x']
const frags = ['data', 'file', 'ñ', 'Ā', '∑', '🙂', 'q', 'Z', '-', '_', '.bin', '0']
for (let i = 0; i < 40; i++) {
  let name = ''
  for (let k = int(1, 3); k > 0; k--) name += pick(frags)
  name = `${name}${i}`
  if (rand() < 0.08) name = `.${name}`
  file(t(pick(parts), name), size())
}

// All files in one subdirectory (ipfs-car roots at the common parent), and
// the same with a single file (ipfs-car --no-wrap packs it as a file).
text(j('nested', 'only', 'deeper', 'x.txt'), 'x\n')
file(j('nested', 'only', 'deeper', 'y.bin'), size())
mkdir(j('nested', 'only', 'empty'))
text(j('nested1', 'only', 'deeper', 'f.txt'), 'the only file\n')
text(j('nested1', 'only', '.also', 'g.txt'), 'hidden\n')
// No files at all.
mkdir(j('emptyonly', 'inner'))
mkdir(j('void'))
text(j('hidonly', '.a'), 'a\n')
text(j('hidonly', '.b', 'c'), 'c\n')
// Two roots for ipfs-car's multi-path mode.
text(j('multi', 'p', 'x.txt'), 'p/x\n')
file(j('multi', 'q', 'y', 'z.bin'), size())
text(j('multi', 'q', 'y', '.h'), 'hidden\n')

// Wide directories.
const wide = (name, n, nameOf) => {
  mkdir(j(name))
  for (let i = 0; i < n; i++) fs.writeFileSync(j(name, nameOf(i)), `${name} ${i}\n`)
}
wide('d1000', 1000, (i) => `f${i}`)
wide('d1001', 1001, (i) => `f${i}`)
wide('big', 10000, (i) => `${i}`)
// Sharded directories inside a flat one (the parent's link to a HAMT root).
wide('nestcar/inner', 1001, (i) => `f${i}`)
text(j('nestcar', 'x.txt'), 'beside a sharded directory\n')
wide('nestkubo/inner', 4096, (i) => i === 0 ? `n${String(i).padStart(30, '0')}` : `n${String(i).padStart(29, '0')}`)
text(j('nestkubo', 'x.txt'), 'beside a sharded directory\n')
// kubo's threshold: 4096 links × (30 name bytes + 34 CIDv0 bytes) = 262144
// (not sharded); one name a byte longer: 262145 (sharded).
wide('k4096', 4096, (i) => `n${String(i).padStart(29, '0')}`)
wide('k4096p', 4096, (i) => i === 0 ? `n${String(i).padStart(30, '0')}` : `n${String(i).padStart(29, '0')}`)
// 4095 such files and a non-empty subdirectory with a 31-byte name: 262080
// bytes counting the files, 262145 counting the subdirectory's link too.
// ipfs-unixfs-importer counts only links whose CID is known when an entry
// is added — a subdirectory's is not until it is flushed — so it stays flat;
// Go's boxo (kubo) counts every link and would shard it.
wide('ksub', 4095, (i) => `n${String(i + 1).padStart(29, '0')}`)
text(j('ksub', `d${'0'.repeat(30)}`, 'f.txt'), 'in a subdirectory\n')
EOF
echo "pack-interop: generating inputs in $in"
if ! node "$tmp/gen.mjs" "$in" "$seed"; then
	echo "pack-interop: generating the inputs failed" >&2
	exit 1
fi

# ---------------------------------------------------------------------------
# Expected trees.

# expect_car OUT WRAP HIDDEN PATH...: what ipfs-car packs: regular files only
# (not under a hidden name unless HIDDEN=1), named relative to the common
# parent directory of them all; a lone file is the root itself when WRAP=0.
expect_car() {
	ec_out=$1 ec_wrap=$2 ec_hid=$3
	shift 3
	: >"$ec_out.list"
	for ec_p in "$@"; do
		ec_abs=$(cd "$(dirname "$ec_p")" && pwd)/$(basename "$ec_p")
		if [ "$ec_hid" = 0 ]; then
			case $(basename "$ec_abs") in .*) continue ;; esac
		fi
		if [ -f "$ec_abs" ]; then
			echo "$ec_abs"
		elif [ "$ec_hid" = 0 ]; then
			find "$ec_abs" -mindepth 1 -name '.*' -prune -o -type f -print
		else
			find "$ec_abs" -type f
		fi
	done >"$ec_out.list"
	ec_n=$(wc -l <"$ec_out.list")
	if [ "$ec_n" -eq 1 ] && [ "$ec_wrap" = 0 ]; then
		cp "$(cat "$ec_out.list")" "$ec_out"
		return
	fi
	# common parent: the longest common prefix of the files' directories
	ec_common=$(awk '{
		n = split($0, p, "/"); n--
		if (NR == 1) { m = n; for (i = 1; i <= n; i++) c[i] = p[i]; next }
		if (n < m) m = n
		for (i = 1; i <= m; i++) if (c[i] != p[i]) { m = i - 1; break }
	} END { s = ""; for (i = 2; i <= m; i++) s = s "/" c[i]; print s }' "$ec_out.list")
	mkdir -p "$ec_out"
	# copied by tar, with the common parent's components stripped (one
	# process for 10,000 files)
	ec_k=0
	[ -n "$ec_common" ] && ec_k=$(printf '%s\n' "$ec_common" | awk -F/ '{ print NF - 1 }')
	sed 's|^/||' "$ec_out.list" >"$ec_out.rel"
	[ -s "$ec_out.rel" ] || return 0
	tar -C / -cf - --no-recursion -T "$ec_out.rel" |
		tar -C "$ec_out" -xf - --strip-components="$ec_k"
}

# expect_kubo OUT HIDDEN PATH: what `ipfs add -r` adds: the file, or the
# directory with its empty directories, without hidden names unless HIDDEN=1.
expect_kubo() {
	if [ -f "$3" ]; then
		cp "$3" "$1"
		return
	fi
	cp -R "$3" "$1"
	find "$1" -type l -exec rm -f {} +
	if [ "$2" = 0 ]; then
		find "$1" -mindepth 1 -name '.*' -prune -exec rm -rf {} +
	fi
}

# same_tree EXPECTED GOT: a file equal byte for byte, or a directory with the
# same names (empty directories included) and contents.
same_tree() {
	if [ -f "$1" ]; then
		[ -f "$2" ] || { echo "$2: not a file"; return 1; }
		cmp "$1" "$2"
	else
		[ -d "$2" ] || { echo "$2: not a directory"; return 1; }
		diff -r "$1" "$2"
	fi
}

# ---------------------------------------------------------------------------
# pack_case LABEL PROFILE FLAGS PATH...: one input packed by the reference
# and by cairn, then unpacked by both. FLAGS: words among --no-wrap, --hidden,
# --car-version=2, --json (space-separated, or - for none).
n=0
pack_case() {
	pc_label=$1 pc_profile=$2 pc_flags=$3
	shift 3
	pc_what="$pc_profile $pc_label"
	if [ -n "$only" ] && ! printf '%s\n' "$pc_what" | grep -Eq -- "$only"; then
		return
	fi
	n=$((n + 1))
	[ $((n % jobs)) -eq "$job" ] || return 0
	pc_dir=$tmp/case$n
	mkdir -p "$pc_dir"
	pc_wrap=1 pc_hid=0 pc_v2=0 pc_json=0
	pc_ref_flags='' pc_cairn_flags=''
	for pc_f in $pc_flags; do
		case $pc_f in
		--no-wrap) pc_wrap=0 pc_ref_flags="$pc_ref_flags --no-wrap" pc_cairn_flags="$pc_cairn_flags --no-wrap" ;;
		--hidden) pc_hid=1 pc_ref_flags="$pc_ref_flags --hidden" pc_cairn_flags="$pc_cairn_flags --hidden" ;;
		--car-version=2) pc_v2=1 pc_cairn_flags="$pc_cairn_flags --car-version 2" ;;
		--json) pc_json=1 pc_cairn_flags="$pc_cairn_flags --json" ;;
		-) ;;
		*) echo "pack-interop: bad flag $pc_f" >&2; exit 2 ;;
		esac
	done

	# the reference
	if [ "$pc_profile" = ipfs-car ]; then
		# shellcheck disable=SC2086
		pc_ref=$($limit node "$ipfscar" pack "$@" --output "$pc_dir/ref.car" $pc_ref_flags 2>"$pc_dir/ref.err" | tail -n 1)
		expect_car "$pc_dir/exp" "$pc_wrap" "$pc_hid" "$@"
	else
		pc_ref_arg=
		[ "$selftest" = 1 ] && pc_ref_arg="--output $pc_dir/ref.car"
		# shellcheck disable=SC2086
		pc_ref=$($limit node "$here/peer-pack.mjs" --profile kubo $pc_ref_flags $pc_ref_arg "$@" 2>"$pc_dir/ref.err" |
			sed -n 's/^{"root":"\([^"]*\)".*/\1/p')
		expect_kubo "$pc_dir/exp" "$pc_hid" "$1"
	fi
	if [ -z "$pc_ref" ]; then
		fail "$pc_what: the reference failed"
		show "$pc_dir/ref.err"
		return
	fi
	if [ "$selftest" = 1 ]; then
		if node "$ipfscar" unpack "$pc_dir/ref.car" --output "$pc_dir/ref.out" >"$pc_dir/log" 2>&1 &&
			same_tree "$pc_dir/exp" "$pc_dir/ref.out" >>"$pc_dir/log" 2>&1; then
			pass "$pc_what: (self-test) the reference's CAR restores the expected tree"
		else
			fail "$pc_what: (self-test) the reference's CAR does not restore the expected tree"
			show "$pc_dir/log"
		fi
	fi

	# cairn
	# shellcheck disable=SC2086
	$limit "$cairn" pack "$@" -o "$pc_dir/cairn.car" --profile "$pc_profile" $pc_cairn_flags \
		>"$pc_dir/cairn.out" 2>"$pc_dir/cairn.err"
	pc_rc=$?
	if [ "$pc_json" = 1 ]; then
		pc_got=$(sed -n 's/.*"root" *: *"\([^"]*\)".*/\1/p' "$pc_dir/cairn.out" | head -n 1)
	else
		pc_got=$(head -n 1 "$pc_dir/cairn.out")
	fi
	if [ "$pc_rc" -ne 0 ] || [ ! -s "$pc_dir/cairn.car" ]; then
		fail "$pc_what: cairn pack failed (exit $pc_rc; reference $pc_ref)"
		show "$pc_dir/cairn.err"
		skip "$pc_what: unpack checks (no CAR)"
		return
	fi
	if [ "$pc_got" = "$pc_ref" ]; then
		pass "$pc_what: root $pc_got"
	else
		fail "$pc_what: root cairn ${pc_got:-(none)} != reference $pc_ref"
	fi
	if [ "$pc_json" = 1 ]; then
		pc_files=$(find "$pc_dir/exp" -type f | wc -l)
		pc_jfiles=$(sed -n 's/.*"files" *: *\([0-9]*\).*/\1/p' "$pc_dir/cairn.out" | head -n 1)
		pc_jcar=$(sed -n 's/.*"car" *: *"\([^"]*\)".*/\1/p' "$pc_dir/cairn.out" | head -n 1)
		if [ "$pc_jfiles" = "$pc_files" ] && [ "$pc_jcar" = "$pc_dir/cairn.car" ]; then
			pass "$pc_what: --json: files $pc_jfiles, car as given"
		else
			fail "$pc_what: --json: files ${pc_jfiles:-?} (expected $pc_files), car ${pc_jcar:-?}"
		fi
		sed 's/^/      /' "$pc_dir/cairn.out"
	fi
	if [ "$pc_v2" = 1 ]; then
		if [ "$(od -An -tx1 -j1 -N10 "$pc_dir/cairn.car" | tr -d ' \n')" = a16776657273696f6e02 ]; then
			pass "$pc_what: CARv2 header"
		else
			fail "$pc_what: not a CARv2 (--car-version 2)"
		fi
		if (cd "$peers" && node check-index.mjs "$pc_dir/cairn.car") >"$pc_dir/log" 2>&1; then
			pass "$pc_what: check-index.mjs accepts the CARv2 index"
		else
			fail "$pc_what: check-index.mjs rejects the CARv2 index"
			show "$pc_dir/log"
		fi
	fi
	# the same root in the CAR header (read by cairn itself here, to spare a
	# Node start-up; ipfs-car unpack below starts from the header's root too)
	pc_hroot=$("$cairn" car root "$pc_dir/cairn.car" 2>/dev/null | head -n 1)
	if [ "$pc_hroot" = "$pc_got" ]; then
		pass "$pc_what: CAR header root is the printed root"
	else
		fail "$pc_what: CAR header root ${pc_hroot:-(unreadable)} != printed ${pc_got:-(none)}"
	fi

	# cairn unpack restores the expected tree
	if $limit "$cairn" unpack "$pc_dir/cairn.car" -o "$pc_dir/unpacked" >"$pc_dir/log" 2>&1 &&
		same_tree "$pc_dir/exp" "$pc_dir/unpacked" >>"$pc_dir/log" 2>&1; then
		pass "$pc_what: cairn unpack restores the tree"
	else
		fail "$pc_what: cairn unpack does not restore the tree"
		show "$pc_dir/log"
	fi
	# so does ipfs-car unpack
	if $limit node "$ipfscar" unpack "$pc_dir/cairn.car" --output "$pc_dir/jsout" >"$pc_dir/log" 2>&1 &&
		same_tree "$pc_dir/exp" "$pc_dir/jsout" >>"$pc_dir/log" 2>&1; then
		pass "$pc_what: ipfs-car unpack restores the tree from cairn's CAR"
	else
		fail "$pc_what: ipfs-car unpack does not restore the tree from cairn's CAR"
		show "$pc_dir/log"
	fi
	[ "${PACK_KEEP:-0}" = 1 ] || rm -rf "$pc_dir"
}

# ---------------------------------------------------------------------------
# The cases, spread round-robin over $jobs parallel runners (each case is
# mostly Node start-up and single-threaded JavaScript).
cases() {
	for f in empty one k256 k256p1 m1 m1p1 deep rand-a rand-b rand-c; do
		pack_case "files/$f.bin --no-wrap" ipfs-car --no-wrap "files/$f.bin"
		pack_case "files/$f.bin" kubo - "files/$f.bin"
	done
	for f in empty one k256p1 rand-a; do
		pack_case "files/$f.bin (wrapped)" ipfs-car - "files/$f.bin"
	done
	pack_case "files/" ipfs-car - files
	pack_case "files/" kubo - files
	pack_case "tree/" ipfs-car - tree
	pack_case "tree/ --hidden" ipfs-car --hidden tree
	pack_case "tree/" kubo - tree
	pack_case "tree/ --hidden" kubo --hidden tree
	pack_case "tree/d (a subdirectory)" ipfs-car - tree/d
	pack_case "tree/d (a subdirectory)" kubo - tree/d
	pack_case "tree/ --json" ipfs-car --json tree
	pack_case "tree/ --json" kubo --json tree
	pack_case "tree/ --car-version 2" ipfs-car --car-version=2 tree
	pack_case "files/m1p1.bin --car-version 2" kubo --car-version=2 files/m1p1.bin
	for d in nested nested1 emptyonly void hidonly; do
		pack_case "$d/" ipfs-car - "$d"
		pack_case "$d/" kubo - "$d"
	done
	pack_case "nested1/ --no-wrap (one file)" ipfs-car --no-wrap nested1
	pack_case "hidonly/ --hidden" ipfs-car --hidden hidonly
	pack_case "hidonly/ --hidden" kubo --hidden hidonly
	pack_case "multi/p multi/q (two paths)" ipfs-car - multi/p multi/q
	pack_case "files/one.bin tree/d (two paths)" ipfs-car - files/one.bin tree/d
	pack_case "files/one.bin files/empty.bin (two files)" ipfs-car - files/one.bin files/empty.bin
	for d in d1000 d1001 big; do
		pack_case "$d/" ipfs-car - "$d"
		pack_case "$d/" kubo - "$d"
	done
	pack_case "nestcar/ (holds a 1,001-entry directory)" ipfs-car - nestcar
	pack_case "nestkubo/ (holds a sharded directory)" kubo - nestkubo
	pack_case "k4096/ (links 262144 bytes)" kubo - k4096
	pack_case "k4096p/ (links 262145 bytes)" kubo - k4096p
	pack_case "ksub/ (links 262080 bytes + a subdirectory's 65)" kubo - ksub
}

jobs=${PACK_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
[ "$jobs" -le 4 ] || jobs=4
cd "$in" || exit 1
job=0
while [ "$job" -lt "$jobs" ]; do
	(
		cases
		echo "$passed $failed $skipped" >"$tmp/job$job.count"
	) >"$tmp/job$job.log" 2>&1 &
	job=$((job + 1))
done
wait
cd "$tmp" || exit 1
job=0
while [ "$job" -lt "$jobs" ]; do
	cat "$tmp/job$job.log"
	if [ -f "$tmp/job$job.count" ]; then
		read -r jp jf js <"$tmp/job$job.count"
		passed=$((passed + jp)) failed=$((failed + jf)) skipped=$((skipped + js))
	else
		fail "runner $job did not finish"
	fi
	job=$((job + 1))
done

echo "pack-interop: $passed passed, $failed failed, $skipped skipped ($jobs runners, seed $seed)"
if [ "$failed" -gt 0 ]; then
	echo "pack-interop: to look at a failing case: PACK_SEED=$seed PACK_KEEP=1 PACK_ONLY='^PROFILE LABEL' $0 $cairn"
fi
[ "$failed" -eq 0 ]
