#!/usr/bin/env bash
# fs.sh: `cairn snapshot` on real filesystems, loop-mounted by this script:
# btrfs, XFS with and without reflink, ext4 and tmpfs. Per filesystem: the
# method chosen for each file, shared extents (filefrag), holes kept (du),
# every byte equal, clone and restore. Then: a btrfs NOCOW file falls back;
# a clone onto another filesystem (EXDEV) copies; a full filesystem
# (ENOSPC) leaves no partial snapshot; the store's lock against a running
# `cairn serve` (create goes through it, restore is refused); a hard-linked
# index never changed by later writes to the live store; kill -9 at every
# step of create and restore leaves the old state or the new one, and a
# store that opens.
#
# usage: fs.sh CAIRN      (exit 77, a skip, unless root with loop devices
#                          and mkfs.btrfs, mkfs.xfs, mkfs.ext4, filefrag)
set -eu
set -o pipefail

CAIRN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
skip () { echo "fs.sh: $*; skipping" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to mount loop filesystems"
for t in mkfs.btrfs mkfs.xfs mkfs.ext4 filefrag chattr lsattr losetup curl flock; do
	command -v $t >/dev/null || skip "$t not found (scripts/install-deps.sh)"
done
[ -e /dev/loop-control ] || skip "no loop devices"

. "$(dirname "$0")/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-snapfs-XXXXXX")
mounts=()
cleanup () {
	serve_kill
	for m in "${mounts[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok () { echo "ok - $*"; }
fail () {
	echo "FAIL - $*" >&2
	fails=$((fails + 1))
}
check () { # check NAME COMMAND...
	local name=$1
	shift
	if "$@"; then ok "$name"; else fail "$name"; fi
}

# mkfs_mount NAME SIZE MKFS...: an image file, formatted and loop-mounted
# at $work/NAME (autoclear: the loop device goes with the unmount).
mkfs_mount () {
	local name=$1 size=$2
	shift 2
	truncate -s "$size" "$work/$name.img"
	"$@" "$work/$name.img" >/dev/null 2>&1
	mkdir -p "$work/$name"
	mount -o loop "$work/$name.img" "$work/$name"
	mounts+=("$work/$name")
}
mkfs_mount btrfs 300M mkfs.btrfs -q
mkfs_mount xfs1 300M mkfs.xfs -q -m reflink=1
mkfs_mount xfs0 300M mkfs.xfs -q -m reflink=0
mkfs_mount ext4 64M mkfs.ext4 -q
mkfs_mount tiny 16M mkfs.ext4 -q
mkdir -p "$work/tmpfs"
mount -t tmpfs -o size=64M tmpfs "$work/tmpfs"
mounts+=("$work/tmpfs")

# The data a store holds: a packed CAR registered as a shard (inside the
# store, so it is part of the snapshot), a sparse file, random bytes.
mkdir -p "$work/tree"
head -c 2000000 /dev/urandom >"$work/tree/a.bin"
echo hello >"$work/tree/b.txt"
"$CAIRN" pack "$work/tree" -o "$work/deal.car" >/dev/null

make_store () { # make_store DIR
	local s=$1
	mkdir -p "$s/deals"
	cp "$work/deal.car" "$s/deals/deal.car"
	"$CAIRN" dagstore register-shard --repo "$s" s1 "$s/deals/deal.car" >/dev/null
	"$CAIRN" dagstore initialize-all --repo "$s" >/dev/null
	head -c 4194304 /dev/urandom >"$s/big.bin"
	truncate -s 48M "$s/sparse.bin"
	head -c 65536 /dev/urandom | dd of="$s/sparse.bin" bs=65536 seek=16 conv=notrunc 2>/dev/null
	head -c 65536 /dev/urandom | dd of="$s/sparse.bin" bs=65536 seek=600 conv=notrunc 2>/dev/null
}

# digest DIR: the contents of the store's files (what a snapshot keeps:
# empty lock files, api and the manifest left out)
digest () {
	(cd "$1" && find . -type f ! -empty ! -name lock ! -name api ! -name snapshot.manifest \
		! -name '*-shm' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}
method_of () { # method_of SNAPDIR PATH
	awk -v p="$2" '$1 == "f" && $5 == p { print $4 }' "$1/snapshot.manifest"
}
json_field () { # json_field FIELD < json
	sed -n "s/.*\"$1\":{\"files\":\([0-9]*\).*/\1/p"
}

for fs in btrfs xfs1 xfs0 ext4 tmpfs; do
	s=$work/$fs/store
	make_store "$s"
	"$CAIRN" snapshot create --repo "$s" --json one >"$work/out" 2>"$work/err" ||
		{ fail "$fs: create: $(cat "$work/err")"; continue; }
	snap=$work/$fs/store.snapshots/one
	case $fs in
	btrfs | xfs1) want_big=reflink want_idx=reflink ;;
	*) want_big=copy want_idx=hardlink ;;
	esac
	check "$fs: big.bin by $want_big" [ "$(method_of "$snap" big.bin)" = $want_big ]
	check "$fs: shard index by $want_idx" [ "$(method_of "$snap" dagstore/indexes/1.idx)" = $want_idx ]
	check "$fs: every byte equal" [ "$(digest "$s")" = "$(digest "$snap")" ]
	# holes kept: 128 KiB of data in 48 MiB
	kb=$(du -k "$snap/sparse.bin" | cut -f1)
	check "$fs: sparse file stays sparse (${kb} KiB allocated)" [ "$kb" -le 1024 ]
	if [ $want_big = reflink ]; then
		check "$fs: filefrag shows shared extents" sh -c "filefrag -v '$snap/big.bin' | grep -q shared"
		# --no-reflink: real copies, no extent shared
		"$CAIRN" snapshot create --repo "$s" --no-reflink --json copies >/dev/null 2>&1
		check "$fs: --no-reflink copies" [ "$(method_of "$s.snapshots/copies" big.bin)" = copy ]
		check "$fs: --no-reflink shares nothing" sh -c "! filefrag -v '$s.snapshots/copies/big.bin' | grep -q shared"
		"$CAIRN" snapshot rm --repo "$s" copies >/dev/null
	else
		check "$fs: the index is the same inode, read-only" \
			[ "$(stat -c '%i %a' "$s/dagstore/indexes/1.idx")" = "$(stat -c '%i' "$snap/dagstore/indexes/1.idx") 444" ]
	fi
	# restore after a change
	before=$(digest "$snap")
	"$CAIRN" dagstore destroy-shard --repo "$s" s1 >/dev/null
	rm "$s/big.bin"
	"$CAIRN" snapshot restore --repo "$s" one >/dev/null 2>"$work/err" || fail "$fs: restore: $(cat "$work/err")"
	check "$fs: restore brings back every byte" [ "$(digest "$s")" = "$before" ]
	check "$fs: restored store opens, shard Available" \
		sh -c "'$CAIRN' dagstore list-shards --repo '$s' | grep -q 's1 .*Available'"
	check "$fs: the snapshot survives the restore" [ "$(digest "$snap")" = "$before" ]
	"$CAIRN" snapshot clone --repo "$s" one "$work/$fs/clone" >/dev/null 2>&1
	check "$fs: clone opens as a store" \
		sh -c "'$CAIRN' dagstore get-block --repo '$work/$fs/clone' \$('$CAIRN' car root '$work/deal.car') -o /dev/null"
done

# A hard-linked index is never changed by later writes to the live store:
# the shard destroyed and indexed again writes a new file (temporary name,
# rename); the snapshot's inode keeps its bytes.
s=$work/ext4/store
cp "$s.snapshots/one/dagstore/indexes/1.idx" "$work/idx.saved"
"$CAIRN" dagstore destroy-shard --repo "$s" s1 >/dev/null
"$CAIRN" dagstore register-shard --repo "$s" s1 "$s/deals/deal.car" >/dev/null
"$CAIRN" dagstore initialize-all --repo "$s" >/dev/null
check "ext4: hard-linked index unchanged after the live store re-indexed" \
	cmp -s "$work/idx.saved" "$s.snapshots/one/dagstore/indexes/1.idx"

# NOCOW on btrfs: FICLONE says EINVAL; the file is copied, stays NOCOW.
s=$work/btrfs/store
touch "$s/nocow.bin"
chattr +C "$s/nocow.bin"
head -c 1048576 /dev/urandom >>"$s/nocow.bin"
"$CAIRN" snapshot create --repo "$s" nocow >/dev/null 2>&1 || fail "btrfs: nocow snapshot"
check "btrfs: NOCOW file copied" [ "$(method_of "$s.snapshots/nocow" nocow.bin)" = copy ]
check "btrfs: NOCOW file's copy equal" cmp -s "$s/nocow.bin" "$s.snapshots/nocow/nocow.bin"
check "btrfs: the copy stays NOCOW" sh -c "lsattr '$s.snapshots/nocow/nocow.bin' | cut -d' ' -f1 | grep -q C"
check "btrfs: other files still reflinked" [ "$(method_of "$s.snapshots/nocow" big.bin)" = reflink ]

# EXDEV: a clone onto another filesystem is copied, holes kept, and opens.
"$CAIRN" snapshot clone --repo "$s" one "$work/ext4/xclone" --json >"$work/out" 2>"$work/err" ||
	fail "EXDEV clone: $(cat "$work/err")"
check "EXDEV: nothing reflinked or linked" [ "$(json_field reflink <"$work/out")$(json_field hardlink <"$work/out")" = 00 ]
check "EXDEV: every byte equal" [ "$(digest "$work/ext4/xclone")" = "$(digest "$s.snapshots/one")" ]
check "EXDEV: sparse kept" [ "$(du -k "$work/ext4/xclone/sparse.bin" | cut -f1)" -le 1024 ]
check "EXDEV: the clone opens" sh -c "'$CAIRN' dagstore list-shards --repo '$work/ext4/xclone' | grep -q Available"

# ENOSPC: a 16 MiB ext4 with 10 MiB of data cannot hold a copy.
s=$work/tiny/store
make_store "$s" 2>/dev/null || true
rm -f "$s/sparse.bin"
head -c 6000000 /dev/urandom >"$s/more.bin"
if "$CAIRN" snapshot create --repo "$s" full >"$work/out" 2>"$work/err"; then
	fail "ENOSPC: the snapshot was made"
else
	check "ENOSPC: the message says so" grep -q "No space left" "$work/err"
	check "ENOSPC: nothing left in .snapshots" [ "$(ls -A "$s.snapshots")" = .lock ]
	check "ENOSPC: the store still opens" sh -c "'$CAIRN' dagstore list-shards --repo '$s' | grep -q s1"
fi

# The store's lock: `cairn serve` owns the store.
s=$work/btrfs/store
serve_start "$work/serve.err" "$CAIRN" --repo "$s" --listen 127.0.0.1:0 || fail "lock: cairn serve did not start"
# create goes through the daemon, which keeps the lock and pauses its
# writers; restore is still refused (it replaces the store under it).
if CAIRN_LOG=info "$CAIRN" snapshot create --repo "$s" busy >"$work/out" 2>"$work/err"; then
	check "lock: create through the running serve" grep -q "^snapshot busy: $s.snapshots/busy" "$work/out"
	check "lock: through the daemon" grep -q "through the daemon at" "$work/err"
	check "lock: reflinked through the daemon" [ "$(method_of "$s.snapshots/busy" cairn.db)" = reflink ]
else
	fail "lock: create while serve runs: $(cat "$work/err")"
fi
check "lock: serve still holds the store" sh -c "! flock -n '$s/lock' true"
if "$CAIRN" snapshot restore --repo "$s" one 2>"$work/err"; then
	fail "lock: restore while serve runs"
else
	check "lock: restore refused, naming serve and its pid" grep -q "running \`cairn serve\` (pid $serve_pid); stop it first" "$work/err"
fi
check "lock: list works while serve runs" sh -c "'$CAIRN' snapshot list --repo '$s' | grep -q '^one '"
check "lock: clone works while serve runs" "$CAIRN" snapshot clone --repo "$s" one "$work/btrfs/clone2"
serve_stop || true

# kill -9 at every step of create: no snapshot or a whole one; the store
# opens; the next operation removes what was left.
for step in create-begin create-tmpdir create-file create-cloned create-manifest create-synced \
	    create-renamed create-pruned; do
	set +e
	CAIRN_SNAPSHOT_CRASH_AT=$step "$CAIRN" snapshot create --repo "$s" --keep 5 k9 >/dev/null 2>&1
	st=$?
	set -e
	[ $st = 137 ] || fail "$step: exit $st, not killed"
	if [ -d "$s.snapshots/k9" ]; then
		check "$step: a whole snapshot" [ "$(digest "$s.snapshots/k9")" = "$(digest "$s")" ] 
		tail -1 "$s.snapshots/k9/snapshot.manifest" | grep -qx end || fail "$step: manifest cut short"
		case $step in create-renamed | create-pruned) ;; *) fail "$step: published too early" ;; esac
	else
		case $step in create-renamed | create-pruned) fail "$step: no snapshot after the rename" ;; *) ok "$step: no snapshot" ;; esac
	fi
	check "$step: the store opens" sh -c "'$CAIRN' dagstore list-shards --repo '$s' | grep -q 's1 .*Available'"
	"$CAIRN" snapshot rm --repo "$s" k9 >/dev/null 2>&1 || true
	check "$step: leftovers removed by the next operation" [ "$(ls -A "$s.snapshots" | grep '^\.' | grep -v '^\.lock$' | wc -l)" = 0 ]
done

# kill -9 at every step of restore: the old store or the snapshot's, never
# a mix, always a store that opens.
"$CAIRN" snapshot create --repo "$s" base >/dev/null 2>&1
new=$(digest "$s.snapshots/base")
"$CAIRN" dagstore destroy-shard --repo "$s" s1 >/dev/null
# gc merges the top-level index now: else a later open may merge it in the
# background, and the files change though the contents do not
"$CAIRN" dagstore gc --repo "$s" >/dev/null
head -c 100000 /dev/urandom >"$s/changed.bin"
old=$(digest "$s")
for step in restore-begin restore-file restore-cloned restore-synced restore-exchanged restore-removed; do
	set +e
	CAIRN_SNAPSHOT_CRASH_AT=$step "$CAIRN" snapshot restore --repo "$s" base >/dev/null 2>&1
	st=$?
	set -e
	[ $st = 137 ] || fail "$step: exit $st, not killed"
	got=$(digest "$s")
	case $step in
	restore-exchanged | restore-removed) want=$new ;;
	*) want=$old ;;
	esac
	if [ "$got" = "$want" ]; then ok "$step: $([ $want = "$new" ] && echo new || echo old) state whole"
	elif [ "$got" = "$new" ] || [ "$got" = "$old" ]; then ok "$step: a whole state"
	else fail "$step: a mix ($got; old $old, new $new)"; fi
	check "$step: the store opens" "$CAIRN" dagstore list-shards --repo "$s"
	"$CAIRN" snapshot list --repo "$s" >/dev/null
	if [ "$got" = "$new" ]; then # back to the changed state for the next step
		"$CAIRN" dagstore destroy-shard --repo "$s" s1 >/dev/null
		"$CAIRN" dagstore gc --repo "$s" >/dev/null
		cp "$s.snapshots/base/big.bin" /dev/null
		head -c 100000 /dev/urandom >"$s/changed.bin"
		old=$(digest "$s")
	fi
done
"$CAIRN" snapshot rm --repo "$s" base >/dev/null 2>&1
check "restore: leftovers removed by the next operation" [ "$(ls -A "$s.snapshots" | grep '^\.' | grep -v '^\.lock$' | wc -l)" = 0 ]

if [ "$fails" -gt 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "all passed"
