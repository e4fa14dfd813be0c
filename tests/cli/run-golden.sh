#!/bin/sh
# run-golden.sh: runs each command-line case and compares stdout, stderr and the
# exit status with the files beside it. UPDATE_GOLDEN=1 rewrites them instead.
#
# A case is a folder in CASES holding `cmd` (a shell script; `cairn` is on
# PATH, $FIXTURES names ../shared/fixtures, the folder is the working
# directory), and the expected `stdout`, `stderr` and `status`.
set -u

CAIRN=$1
CASES=$2
BIN_DIR=$(mktemp -d)
trap 'rm -rf "$BIN_DIR"' EXIT
ln -s "$(cd "$(dirname "$CAIRN")" && pwd)/$(basename "$CAIRN")" "$BIN_DIR/cairn"
FIXTURES=${CAIRN_FIXTURES:-$(cd "$CASES/../../../../shared/fixtures" 2>/dev/null && pwd)}
export FIXTURES

passed=0
failed=0
for dir in "$CASES"/*/; do
	name=$(basename "$dir")
	out=$(mktemp) err=$(mktemp)
	# A clean environment: colour and logging come only from the case.
	(cd "$dir" && env -u NO_COLOR -u CAIRN_LOG PATH="$BIN_DIR:$PATH" sh ./cmd >"$out" 2>"$err" </dev/null)
	status=$?
	if [ "${UPDATE_GOLDEN:-}" = 1 ]; then
		cp "$out" "$dir/stdout"
		cp "$err" "$dir/stderr"
		echo "$status" >"$dir/status"
	fi
	ok=1
	if ! cmp -s "$out" "$dir/stdout"; then
		echo "FAIL $name: stdout differs:"; diff "$dir/stdout" "$out" | head -20; ok=0
	fi
	if ! cmp -s "$err" "$dir/stderr"; then
		echo "FAIL $name: stderr differs:"; diff "$dir/stderr" "$err" | head -20; ok=0
	fi
	if [ "$status" != "$(cat "$dir/status")" ]; then
		echo "FAIL $name: exit status $status, expected $(cat "$dir/status")"; ok=0
	fi
	if [ $ok = 1 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
	rm -f "$out" "$err"
done
echo "cli: $passed passed, $failed failed"
[ $failed = 0 ] && [ $passed -gt 0 ]
