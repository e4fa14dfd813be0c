#!/bin/sh
# check.sh: builds cairn three ways (gcc, gcc under AddressSanitizer and
# UndefinedBehaviorSanitizer, clang), runs every test in each, checks the
# install, and runs each fuzz target briefly. Ends with "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."

passed=0
failed=0
# Adds the counts from a meson test log (its summary lines "Ok:" and "Fail:").
count() {
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$1" | tail -1)
	bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$1" | tail -1)
	timeout=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$1" | tail -1)
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${bad:-0} + ${timeout:-0}))
}

suite() {
	dir=$1
	shift
	# The tests against the JavaScript peers are slow and test no C paths
	# the other builds would not: they run in the release build only.
	test_args=${TEST_ARGS:-}
	echo "== $dir: $*"
	# Reconfigure a kept build dir, so its options are always these.
	if [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" -Dtests=true "$@" >/dev/null
	else
		meson setup "$dir" -Dtests=true "$@" >/dev/null
	fi
	ninja -C "$dir" >/dev/null
	log=$(mktemp)
	meson test -C "$dir" --print-errorlogs --num-processes 2 $test_args >"$log" 2>&1 || true
	grep -E '^ *[0-9]+/[0-9]+ ' "$log" | grep -v ' OK ' || true
	grep -E -A40 '^(FAIL|TIMEOUT)|^=+ [0-9]+/[0-9]+ =+' "$log" | head -200 || true
	tail -8 "$log" | grep -E '^(Ok|Fail|Timeout):' || true
	count "$log"
	rm -f "$log"
}

# Sanitizer runs stop at the first report, so a report is a failure.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1

# The JavaScript peers, once, before the tests that share them run in
# parallel (each test also calls this; it waits on the same lock).
sh scripts/install-peers.sh >/dev/null 2>&1 || echo "install-peers failed: the peers' tests will say why"

suite build --buildtype=release
TEST_ARGS="--no-suite peers" suite build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
TEST_ARGS="--no-suite peers" CC=clang suite build-clang --buildtype=debugoptimized

echo "== install"
dest=$(mktemp -d)
missing=""
DESTDIR="$dest" meson install -C build --quiet >/dev/null 2>&1 || missing="(meson install failed)"
for want in bin/cairn include/cairn.h include/cairn/ipld.h libcairn.so libcairn.a cairn.pc man1/cairn.1; do
	[ -n "$(find "$dest" -path "*$want" | head -1)" ] || missing="$missing $want"
done
if [ -z "$missing" ]; then
	passed=$((passed + 1))
	echo "install: ok"
else
	failed=$((failed + 1))
	echo "install: FAILED: missing$missing"
fi
# Only the public API leaves the shared library.
leaked=$(nm -D --defined-only build/libcairn.so | awk '$2 ~ /^[TDB]$/ && $3 !~ /^cairn_/ {print $3}' | grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
internal=$(nm -D --defined-only build/libcairn.so | awk '{print $3}' | grep -E '^cairn_[a-z]+__' || true)
if [ -z "$leaked$internal" ]; then
	passed=$((passed + 1))
	echo "exports: ok"
else
	failed=$((failed + 1))
	echo "exports: FAILED: $leaked $internal"
fi
rm -rf "$dest"

echo "== fuzz (short runs on the fixtures)"
if FUZZ_SECONDS=${FUZZ_SECONDS:-10} sh scripts/fuzz.sh; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi

echo "check: $passed passed, $failed failed"
[ "$failed" = 0 ]
