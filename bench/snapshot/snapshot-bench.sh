#!/usr/bin/env bash
# snapshot-bench.sh: `cairn snapshot create` of a store of 2,000 files (half
# shard indexes, which cairn may hard-link, half other files) at 1, 5 and
# 10 GiB, on loop-mounted btrfs and XFS (reflink=1) beside
# `cp -a --reflink=always` + `sync -f`, and on ext4 (the fallback: hard
# links and copy_file_range over data extents) beside
# `cp -a --sparse=always` + `sync -f`. Medians of RUNS runs (default 3),
# wall time including the syncs; the page cache is not dropped.
#
# usage: snapshot-bench.sh CAIRN [SIZES_GIB] [EXT4_SIZES_GIB]
#   e.g. snapshot-bench.sh build/cairn "1 5 10" "1 5"
# Root only (loop mounts). Images go in $BENCH_DIR (default /tmp) and are
# removed at the end; the largest needs about 2 x the biggest size free.
set -eu
set -o pipefail

CAIRN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
SIZES=${2:-"1 5 10"}
EXT4_SIZES=${3:-"1 5"}
RUNS=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "snapshot-bench.sh: needs root (loop mounts)" >&2; exit 1; }

work=$(mktemp -d "${BENCH_DIR:-/tmp}/cairn-snapbench-XXXXXX")
mnt=
cleanup () {
	[ -n "$mnt" ] && umount "$mnt" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

now () { date +%s%N; }
median () { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ms () { awk -v n="$1" 'BEGIN {printf "%.1f", n / 1e6}'; }

# An 8 MiB random chunk, the head of which makes each file: the content
# does not matter to a reflink or a copy, only the bytes and the extents.
head -c 8388608 /dev/urandom >"$work/chunk"

# make_store DIR GIB: 1,000 index files and 1,000 other files, GIB in all
make_store () {
	local s=$1 per=$(( $2 * 1024 * 1024 / 2000 )) # KiB per file
	mkdir -p "$s/dagstore/indexes" "$s/pieces"
	echo 1 >"$s/version"
	for i in $(seq 1 1000); do
		for f in "$s/dagstore/indexes/$i.idx" "$s/pieces/$i.car"; do
			head -c $((per * 1024)) "$work/chunk" >"$f"
		done
	done
	sync -f "$s"
}

# run_fs FS SIZE MKFS... : rows "fs size cairn_ms cp_ms ratio pause_ms"
run_fs () {
	local fs=$1 gib=$2 cpflag
	shift 2
	mnt=$work/mnt
	truncate -s $((gib * 2 + 2))G "$work/img"
	"$@" "$work/img" >/dev/null 2>&1
	mkdir -p "$mnt"
	mount -o loop "$work/img" "$mnt"
	make_store "$mnt/store" "$gib"
	case $fs in ext4) cpflag=--sparse=always ;; *) cpflag=--reflink=always ;; esac
	local c=() p=() k=()
	for r in $(seq "$RUNS"); do
		sync
		t0=$(now)
		"$CAIRN" snapshot create --repo "$mnt/store" --json run$r >"$work/out"
		t1=$(now)
		c+=($((t1 - t0)))
		p+=($(sed -n 's/.*"pause_ms":\([0-9.]*\).*/\1/p' "$work/out"))
		"$CAIRN" snapshot rm --repo "$mnt/store" run$r >/dev/null
		sync
		t0=$(now)
		cp -a $cpflag "$mnt/store" "$mnt/cp$r"
		sync -f "$mnt/cp$r"
		t1=$(now)
		k+=($((t1 - t0)))
		rm -rf "$mnt/cp$r"
	done
	local cm km pm
	cm=$(printf '%s\n' "${c[@]}" | median)
	km=$(printf '%s\n' "${k[@]}" | median)
	pm=$(printf '%s\n' "${p[@]}" | median)
	methods=$(sed -n 's/.*"reflink":{"files":\([0-9]*\).*"hardlink":{"files":\([0-9]*\).*"copy":{"files":\([0-9]*\).*/reflink \1, hardlink \2, copy \3/p' "$work/out")
	printf '| %s | %s GiB | %s | %s | %s | %s | %s |\n' "$fs" "$gib" "$(ms "$cm")" \
		"$(ms "$km")" "$(awk -v a="$cm" -v b="$km" 'BEGIN {printf "%.2f", a / b}')" "$pm" "$methods"
	umount "$mnt"
	mnt=
	rm -f "$work/img"
}

echo "| fs | store | cairn snapshot create (ms) | cp -a + sync -f (ms) | ratio | writers paused (ms) | methods |"
echo "|---|---|---|---|---|---|---|"
for gib in $SIZES; do
	run_fs btrfs "$gib" mkfs.btrfs -q
done
for gib in $SIZES; do
	run_fs xfs "$gib" mkfs.xfs -q -m reflink=1
done
for gib in $EXT4_SIZES; do
	run_fs ext4 "$gib" mkfs.ext4 -q
done
