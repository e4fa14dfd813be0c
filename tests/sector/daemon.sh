#!/bin/bash
# daemon.sh: `cairn storage` and `cairn sector` through `cairn serve`. The
# same commands on a store without a daemon (A) and on one with the daemon
# running (B) print the same (UUIDs, paths and file-system sizes masked)
# and exit the same; the daemon's log shows its Cairn.Storage*/Sector*
# calls and its lock is held all along; read-piece through it gives the
# local bytes, a range over several 4 MiB calls included; a read token
# lists but cannot add a piece.
# Usage: tests/sector/daemon.sh CAIRN
set -eu
set -o pipefail

if [ $# -ne 1 ]; then
	echo "usage: daemon.sh CAIRN" >&2
	exit 2
fi
CAIRN=$1
for tool in flock cmp; do
	if ! command -v $tool >/dev/null; then
		echo "daemon.sh: $tool not found; skipping" >&2
		exit 77
	fi
done
unset CAIRN_API_INFO

. "$(dirname "$0")/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-secd-XXXXXX")
cleanup () {
	serve_kill
	rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok () { echo "ok - $*"; }
fail () {
	echo "FAIL - $*" >&2
	fails=$((fails + 1))
}

mkdir -p "$work/data"
head -c 6000000 /dev/urandom >"$work/data/a.bin"
head -c 300000 /dev/urandom >"$work/data/b.bin"
head -c 1000 /dev/urandom >"$work/data/c.bin"
dd if="$work/data/a.bin" of="$work/data/range.bin" bs=1000 skip=1 count=5000 status=none

# Runs a command, its stdout and exit status into the transcript.
run () {
	local rc=0

	echo "\$ $*" >>"$out"
	"$CAIRN" "$@" >>"$out" 2>>"$dir/stderr" || rc=$?
	echo "rc=$rc" >>"$out"
}

# The sequence, in $dir (relative paths: the daemon gets them absolute).
scenario () {
	dir=$1
	out=$dir/transcript
	export CAIRN_PATH=$dir/repo
	cd "$dir"
	run storage attach --init --seal --store p1
	run storage attach --init --store --weight 5 --max-storage 1GiB --json p2
	run storage attach p1
	run storage list
	run storage list --json
	run sector add-piece --size 8MiB s-t01000-1 ../data/a.bin
	run sector add-piece --json --size 2KiB s-t01000-2 ../data/c.bin
	run sector add-piece s-t01000-1 ../data/b.bin
	run sector add-piece s-t01000-3 ../data/b.bin
	run sector add-piece s-t01000-1 ../data/missing.bin
	run sector list
	run sector list --json
	run sector commd s-t01000-1
	run sector commd --json s-t01000-1
	run sector commd s-t01000-9
	run sector check
	run sector check --json s-t01000-1
	piece=$(sed -n 's/^piece CID: *//p' "$out" | head -1)
	"$CAIRN" sector read-piece "$piece" -o whole.bin 2>>"$dir/stderr" || echo "read-piece rc=$?" >>"$out"
	"$CAIRN" sector read-piece --offset 1000 --length 5000000 "$piece" >range.bin 2>>"$dir/stderr" ||
		echo "read-piece range rc=$?" >>"$out"
	"$CAIRN" sector read-piece --offset 5999990 "$piece" >tail.bin 2>>"$dir/stderr" ||
		echo "read-piece tail rc=$?" >>"$out"
	run sector read-piece --offset 6000001 "$piece" -o past.bin
	run sector move s-t01000-1 p2
	run sector move --type sealed s-t01000-1 p2
	run sector list
	run storage list
	run storage redeclare
	run storage redeclare --json p2
	run storage detach p1
	run storage detach p1
	run storage list --json
	run storage attach p1
	rm "$dir"/p2/unsealed/s-t01000-1
	run sector check
	run sector check --json
	run storage redeclare --drop-missing
	run sector check
	cd "$work"
}

mask () {
	sed -E -e "s|$1|DIR|g" \
		-e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/UUID/g' \
		-e 's/^(  capacity:   ).*/\1N/' \
		-e 's/"(capacity|available|fs_available|used)":[0-9-]+/"\1":N/g' "$1/transcript"
}

# A: no daemon
mkdir -p "$work/A" "$work/B"
scenario "$work/A"

# B: the daemon first, on the new store
CAIRN_PATH=$work/B/repo CAIRN_LOG=info serve_start "$work/serve.log" "$CAIRN" --listen 127.0.0.1:0 || exit 1
port=$serve_port
scenario "$work/B"

mask "$work/A" >"$work/A.txt"
mask "$work/B" >"$work/B.txt"
if cmp -s "$work/A.txt" "$work/B.txt"; then
	ok "the same output and exit codes through the daemon ($(grep -c '^\$' "$work/A.txt") commands)"
else
	fail "the output differs through the daemon:"
	diff "$work/A.txt" "$work/B.txt" >&2 || true
fi
grep -q '^rc=0' "$work/A.txt" && grep -q '^rc=1' "$work/A.txt" && ! grep -q '^rc=2' "$work/A.txt" ||
	fail "the sequence should both succeed and fail: $(cat "$work/A.txt")"

# the bytes, equal to the file's
for d in A B; do
	cmp -s "$work/$d/whole.bin" "$work/data/a.bin" || fail "$d: read-piece differs from the file"
	cmp -s "$work/data/range.bin" "$work/$d/range.bin" ||
		fail "$d: read-piece --offset 1000 --length 5000000 differs"
	tail -c 10 "$work/data/a.bin" | cmp -s - "$work/$d/tail.bin" || fail "$d: read-piece of the tail differs"
done
cmp -s "$work/A/range.bin" "$work/B/range.bin" && cmp -s "$work/A/whole.bin" "$work/B/whole.bin" &&
	ok "read-piece through the daemon: the local bytes (5000000 bytes in two calls)"

# every command went through the daemon, which held the lock all along
for m in StorageAttach StorageList StorageDetach StorageRedeclare SectorAddPiece SectorReadPiece \
	SectorCommd SectorCheck SectorList SectorMove; do
	grep -q "rpc: Cairn.$m " "$work/serve.log" || fail "the daemon's log has no Cairn.$m"
done
n=$(grep -c 'rpc: Cairn.SectorReadPiece ' "$work/serve.log")
[ "$n" -ge 5 ] || fail "read-piece: $n calls, not one per 4 MiB"
ok "the daemon's log: Cairn.Storage* and Cairn.Sector* ($n read-piece calls)"
if flock -n "$work/B/repo/lock" true; then
	fail "the store's lock is free while the daemon runs"
else
	ok "the daemon holds the store's lock"
fi
grep -q "in use by another" "$work/B/stderr" && fail "a command found the store in use: $(cat "$work/B/stderr")"

# a read token lists but cannot add a piece (admin)
tok=$(CAIRN_PATH=$work/B/repo "$CAIRN" auth create-token --perm read)
export CAIRN_API_INFO="$tok:/ip4/127.0.0.1/tcp/$port/http"
CAIRN_PATH=$work/nowhere "$CAIRN" sector list >"$work/ro.txt" 2>&1 || fail "sector list with a read token: $(cat "$work/ro.txt")"
grep -q '^s-t01000-1 ' "$work/ro.txt" || fail "sector list with a read token: $(cat "$work/ro.txt")"
if CAIRN_PATH=$work/nowhere "$CAIRN" sector add-piece s-t01000-1 "$work/data/b.bin" >"$work/ro.txt" 2>&1; then
	fail "add-piece with a read token was accepted"
else
	grep -qi "perm\|admin" "$work/ro.txt" && ok "a read token: sector list works, add-piece refused ($(head -1 "$work/ro.txt"))" ||
		fail "add-piece refusal: $(cat "$work/ro.txt")"
fi
if CAIRN_PATH=$work/nowhere "$CAIRN" storage detach "$work/B/p1" >"$work/ro.txt" 2>&1; then
	fail "storage detach with a read token was accepted"
fi
unset CAIRN_API_INFO

serve_stop || true
! grep -l "AddressSanitizer\|runtime error\|LeakSanitizer" "$work/serve.log" "$work/A/stderr" "$work/B/stderr" ||
	fail "sanitizer reports"
[ $fails -eq 0 ] || exit 1
echo "sector/daemon: all passed"
