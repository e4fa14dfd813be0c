#!/usr/bin/env bash
# http.sh: HTTP mounts against a real nginx on a free loopback port: sizes,
# random reads, connection reuse, CAR sections equal to the file's, a server
# without Range support served through transient copies under a budget,
# 404/403/500, redirects, truncated and corrupt CARs, a file cut short.
#
# usage: http.sh MOUNT_TOOL        (exit 77, a skip, when nginx is missing)
#
# nginx runs in the foreground as one process (daemon off, master_process
# off) from a generated config in a temporary directory that holds its pid
# file, logs and temp paths. With no master process it never switches user,
# so it runs as whoever runs the test, root included, and reads the files
# the test made without a `user` directive. It is stopped by its pid.
# Environment: NGINX (default: nginx on PATH, else /usr/sbin/nginx),
# CAIRN_FIXTURES, TMPDIR.
set -eu
set -o pipefail

if [ $# -ne 1 ]; then
	echo "usage: http.sh MOUNT_TOOL" >&2
	exit 2
fi
TOOL=$1
. "$(dirname "$0")/../lib/nginx.sh"
if ! nginx_found; then
	echo "http.sh: nginx not found (scripts/install-deps.sh installs nginx-light); skipping" >&2
	exit 77
fi
FIX=${CAIRN_FIXTURES:?CAIRN_FIXTURES is not set}/car

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-mount-http-XXXXXX")
cleanup () {
	nginx_stop
	rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok () { echo "ok - $*"; }
fail () {
	echo "FAIL - $*" >&2
	fails=$((fails + 1))
}
# check NAME COMMAND...: the command must succeed.
check () {
	local name=$1
	shift
	if "$@" >"$work/out" 2>"$work/err"; then
		ok "$name"
	else
		fail "$name"
		sed 's/^/    /' "$work/out" "$work/err" >&2
	fi
}

# ------------------------------------------------------------------ files
www=$work/www
mkdir -p "$www/car" "$www/big" "$www/tmp" "$work/tmp"
for f in sample-v1.car sample-wrapped-v2.car sample-v2-indexless.car carv2-basic.car \
	 sample-v1-with-zero-len-section.car sample-v1-tailing-corrupt-section.car; do
	cp "$FIX/$f" "$www/car/$f"
done
# A Filecoin piece: a CARv1, then zero padding to 1 MiB.
cp "$FIX/sample-v1.car" "$www/car/piece.car"
truncate -s $((1 << 20)) "$www/car/piece.car"
# Cut in the middle of a section.
head -c 300001 "$FIX/sample-v1.car" >"$www/car/truncated.car"
# One byte flipped inside a block near the middle.
cp "$FIX/sample-v1.car" "$www/car/corrupt.car"
printf '\xff' | dd of="$www/car/corrupt.car" bs=1 seek=240000 conv=notrunc status=none
head -c $((3 << 20)) /dev/urandom >"$www/big/big1.bin"
head -c $((3 << 20)) /dev/urandom >"$www/big/big2.bin"
head -c $((8 << 20)) /dev/urandom >"$www/big/big3.bin"
cp "$www/big/big1.bin" "$www/tmp/shrink.bin"

# ------------------------------------------------------------------ nginx
nginx_start "$work" "$www" "location /norange/ { alias $www/; max_ranges 0; }
		location /redirect/ { rewrite ^/redirect/(.*)\$ /\$1 redirect; }
		location = /err500 { return 500; }
		location = /err403 { return 403; }" || exit 1

# Requests nginx logged for a URI: "<connection> <status> ..." lines.
log_for () { grep -F " $1 " "$work/access.log" || true; }

# ------------------------------------------------------------- sizes, reads
for f in car/sample-v1.car car/sample-wrapped-v2.car car/piece.car big/big3.bin; do
	want=$(stat -c %s "$www/$f")
	got=$("$TOOL" size "$base/$f")
	[ "$got" = "$want" ] && ok "size $f" || fail "size $f: $got, not $want"
done
"$TOOL" cat "$base/car/sample-wrapped-v2.car" >"$work/cat.out"
cmp -s "$work/cat.out" "$www/car/sample-wrapped-v2.car" && ok "cat whole file" || fail "cat whole file"
"$TOOL" cat "$base/car/sample-v1.car" 4095 70000 >"$work/cat.out"
dd if="$www/car/sample-v1.car" iflag=skip_bytes,count_bytes skip=4095 count=70000 bs=64K status=none |
	cmp -s - "$work/cat.out" && ok "cat a range" || fail "cat a range"
check "random reads, 4 threads (sample-v1.car)" "$TOOL" verify "$base/car/sample-v1.car" "$www/car/sample-v1.car" 4 800
check "random reads, 8 threads (big3.bin)" "$TOOL" verify "$base/big/big3.bin" "$www/big/big3.bin" 8 400

# One thread: the probe and 300 reads share one handle and one connection.
check "random reads, 1 thread (big2.bin)" "$TOOL" verify "$base/big/big2.bin" "$www/big/big2.bin" 1 300
grep -q "handles=1 " "$work/out" && ok "one easy handle" || fail "one easy handle: $(tail -1 "$work/out")"
n=$(log_for /big/big2.bin | wc -l)
c=$(log_for /big/big2.bin | cut -d' ' -f1 | sort -u | wc -l)
[ "$n" -ge 300 ] && [ "$c" -eq 1 ] && ok "connection reused ($n requests, $c connection)" ||
	fail "connection reuse: $n requests on $c connections"
log_for /big/big2.bin | grep -qv ' 206 ' && fail "a read of big2.bin was not a 206" || ok "every read a 206"

# ------------------------------------------------------------ CAR sections
# Through HTTP, through the file mount, and by the descriptor reader: the
# same sections, offsets, blocks and result.
sections_equal () {
	local f=$1
	shift
	"$TOOL" sections "$base/car/$f" "$@" >"$work/s.http" 2>"$work/s.http.err" || true
	"$TOOL" sections "$www/car/$f" "$@" >"$work/s.file" 2>"$work/s.file.err" || true
	"$TOOL" sections-ref "$www/car/$f" "$@" >"$work/s.ref" 2>/dev/null || true
	if cmp -s "$work/s.http" "$work/s.file" && cmp -s "$work/s.file" "$work/s.ref" &&
	   [ "$(wc -l <"$work/s.ref")" -gt 1 ]; then
		ok "sections $f $* ($(($(wc -l <"$work/s.ref") - 2)) sections, $(tail -1 "$work/s.ref"))"
	else
		fail "sections $f $*"
		diff "$work/s.ref" "$work/s.http" | head -5 >&2 || true
	fi
}
for f in sample-v1.car sample-wrapped-v2.car sample-v2-indexless.car carv2-basic.car; do
	sections_equal "$f"
	sections_equal "$f" --trusted --no-blocks --window 65536
done
sections_equal piece.car --zero-eof
sections_equal piece.car
sections_equal sample-v1-with-zero-len-section.car --zero-eof --trusted
sections_equal sample-v1-tailing-corrupt-section.car

# Damaged CARs: the same result as the file, and the message names the URL
# and the byte.
sections_equal truncated.car
grep -q "end ECORRUPT" "$work/s.http" && grep -qF "$base/car/truncated.car: at byte" "$work/s.http.err" &&
	ok "truncated CAR: $(cat "$work/s.http.err")" || fail "truncated CAR: $(cat "$work/s.http.err")"
sections_equal corrupt.car
grep -q "end EMISMATCH" "$work/s.http" && grep -qF "$base/car/corrupt.car: section at byte" "$work/s.http.err" &&
	ok "corrupt CAR: $(cat "$work/s.http.err")" || fail "corrupt CAR: $(cat "$work/s.http.err")"

# The CARv2 index stays on the server: no read reaches past the payload.
cp "$www/car/sample-wrapped-v2.car" "$www/car/index-stays.car"
"$TOOL" sections "$base/car/index-stays.car" >/dev/null
end=$("$TOOL" sections-ref "$www/car/index-stays.car" | sed -n 1p | sed 's/.*data [0-9]*-\([0-9]*\).*/\1/')
bad=$(log_for /car/index-stays.car | grep -o '"bytes=[0-9]*-[0-9]*"' | tr -d '"' | sed 's/bytes=[0-9]*-//' |
	awk -v end="$end" '$1 >= end' | wc -l)
[ "$bad" -eq 0 ] && ok "CARv2 index not fetched" || fail "$bad reads reached past the payload ($end)"

# ------------------------------------------------------------------ errors
expect_fail () {
	local name=$1 needle=$2
	shift 2
	if "$@" >"$work/out" 2>&1; then
		fail "$name: it worked"
	elif grep -qF -- "$needle" "$work/out"; then
		ok "$name: $(head -1 "$work/out")"
	else
		fail "$name: $(cat "$work/out")"
	fi
}
expect_fail "404" "error ENOTFOUND: $base/car/nope.car: not found (HTTP 404)" "$TOOL" size "$base/car/nope.car"
expect_fail "403 not retried" "HTTP 403 Forbidden" "$TOOL" size "$base/err403"
[ "$(log_for /err403 | wc -l)" -eq 1 ] && ok "403: one request" || fail "403: $(log_for /err403 | wc -l) requests"
expect_fail "500 retried" "HTTP 500 Internal Server Error (after 3 attempts)" \
	"$TOOL" --retries 2 --retry-delay 10 size "$base/err500"
[ "$(log_for /err500 | wc -l)" -eq 3 ] && ok "500: three requests" || fail "500: $(log_for /err500 | wc -l) requests"
n=$("$TOOL" size "$base/redirect/car/sample-v1.car")
[ "$n" = "$(stat -c %s "$www/car/sample-v1.car")" ] && ok "redirect followed" || fail "redirect: $n"
expect_fail "no transients directory" "does not honour Range requests" "$TOOL" size "$base/norange/car/sample-v1.car"

# A file cut short behind an open mount: the reads past its new end fail as
# corrupt, naming the URL and the byte.
size=$(stat -c %s "$www/tmp/shrink.bin")
cat >"$work/shrink.script" <<EOF
open a $base/tmp/shrink.bin
read a $((size - 1000)) 1000 $www/tmp/shrink.bin
truncate $www/tmp/shrink.bin $((size - 500))
expect-error ECORRUPT read a $((size - 1000)) 1000 $www/tmp/shrink.bin
expect-error ECORRUPT read a $((size - 100)) 100 $www/tmp/shrink.bin
close a
EOF
check "shrunk file" "$TOOL" script <"$work/shrink.script"
grep -qF "$base/tmp/shrink.bin: at byte $((size - 1000)): the resource has $((size - 500)) bytes now ($size at open)" "$work/out" &&
	grep -qF "$base/tmp/shrink.bin: at byte $((size - 100)): range not satisfiable (HTTP 416)" "$work/out" &&
	ok "shrunk file: messages" || fail "shrunk file: $(cat "$work/out")"

# ------------------------------------------------------- without ranges
t=$work/transients
check "no ranges: stat" "$TOOL" --transients "$t" stat "$base/norange/car/sample-v1.car"
grep -q "exists=1 size=$(stat -c %s "$www/car/sample-v1.car") ready=1 random=0 transient=1 kind=remote fd=yes" "$work/out" &&
	ok "no ranges: served from a transient" || fail "no ranges: $(cat "$work/out")"
check "no ranges: random reads" "$TOOL" --transients "$t" verify "$base/norange/big/big1.bin" "$www/big/big1.bin" 4 400
log_for /norange/big/big1.bin | grep -q ' 206 ' && fail "no ranges: nginx sent a 206" || ok "no ranges: nginx sent only 200s"
check "no ranges: sections" "$TOOL" --transients "$t" sections "$base/norange/car/sample-wrapped-v2.car"
"$TOOL" sections-ref "$www/car/sample-wrapped-v2.car" | cmp -s - "$work/out" && ok "no ranges: sections equal the file's" ||
	fail "no ranges: sections differ"
check "no ranges: files" "$TOOL" script <<<"files $t"
grep -q "complete=3 partial=0" "$work/out" && ok "three transients, no partial" || fail "transients: $(cat "$work/out")"
# A later run adopts them: no download.
check "restart adopts transients" "$TOOL" --transients "$t" script <<EOF
open a $base/norange/car/sample-v1.car
read a 0 1000 $www/car/sample-v1.car
expect-stats downloads=0 transients=3 in_use=1
EOF
# A .partial left by a crash is deleted.
touch "$t/0123456789abcdef0123456789abcdef.partial"
check "a leftover .partial is deleted" "$TOOL" --transients "$t" script <<<"files $t"
grep -q "complete=3 partial=0" "$work/out" && ok "leftover deleted" || fail "leftover: $(cat "$work/out")"

# The budget: 5 MiB; big1 and big2 are 3 MiB each, big3 8 MiB.
check "transient budget" "$TOOL" --transients "$work/budget" --budget $((5 << 20)) script <<EOF
open a $base/norange/big/big1.bin
expect-stats downloads=1 transients=1 in_use=1 bytes=$((3 << 20))
files $work/budget
close a
# a is unused: the second copy evicts it
open b $base/norange/big/big2.bin
read b 1000 5000 $www/big/big2.bin
expect-stats downloads=2 transients=1 in_use=1 evictions=1
# b is in use: a third copy cannot fit, and the budget is not exceeded
expect-error ETOOBIG open c $base/norange/big/big1.bin
# larger than the whole budget
expect-error ETOOBIG open d $base/norange/big/big3.bin
expect-stats downloads=2 transients=1 in_use=1 bytes=$((3 << 20))
files $work/budget
# a second user of b shares the copy
open e $base/norange/big/big2.bin
expect-stats downloads=2 transients=1 in_use=1
close b
close e
gc
expect-stats transients=0 bytes=0
files $work/budget
EOF
grep -q "ETOOBIG: $base/norange/big/big1.bin: a transient copy needs 3145728 bytes and only 2097152 of the transients budget of 5242880 bytes are free" "$work/out" &&
	grep -q "ETOOBIG: $base/norange/big/big3.bin: a transient copy needs 8388608 bytes, over the transients budget of 5242880 bytes" "$work/out" &&
	ok "budget messages" || fail "budget messages: $(cat "$work/out")"
[ "$(grep -c "complete=1 partial=0" "$work/out")" -eq 2 ] && grep -q "complete=0 partial=0" "$work/out" &&
	ok "budget: files on disk" || fail "budget files: $(grep complete= "$work/out")"
# ETOOBIG is decided before downloading: big3 was probed, never fetched
# (nginx logs a request without Range as "-"); big2 was fetched once.
[ "$(log_for /norange/big/big3.bin | grep -c '"-"$')" -eq 0 ] &&
	[ "$(log_for /norange/big/big2.bin | grep -c '"-"$')" -eq 1 ] &&
	ok "budget: nothing fetched for a copy that cannot fit" || fail "budget: downloads: $(grep -F /norange/big/ "$work/access.log")"

# FETCH_NEVER: stat without a download.
check "fetch never" "$TOOL" --transients "$work/never" --fetch never stat "$base/norange/big/big3.bin"
grep -q "exists=1 size=$((8 << 20)) ready=1 random=0 transient=0" "$work/out" && ok "fetch never: stat" ||
	fail "fetch never: $(cat "$work/out")"

if grep -q "\[alert\]\|\[crit\]\|\[emerg\]" "$work/error.log"; then
	fail "nginx logged serious errors"
	grep "\[alert\]\|\[crit\]\|\[emerg\]" "$work/error.log" >&2
fi
if [ "$fails" -ne 0 ]; then
	echo "http.sh: $fails failed" >&2
	exit 1
fi
echo "http.sh: all passed"
