#!/usr/bin/env bash
# serve.sh: `cairn serve` end to end, with --repo in a temporary directory:
# a tree packed by `cairn pack`, registered as a shard and indexed; the
# server started on a free port (read back from $REPO/api); with curl,
# every block by ?format=raw equals `cairn car get-block`, the root's
# ?format=car holds the same blocks as the packed CAR with the same root,
# the gateway headers, 404/400/406/405, HEAD without a body, the store lock
# against a second server, and SIGTERM removing the api file.
#
# usage: serve.sh CAIRN        (exit 77, a skip, when curl is missing)
set -eu
set -o pipefail

if [ $# -ne 1 ]; then
	echo "usage: serve.sh CAIRN" >&2
	exit 2
fi
CAIRN=$1
if ! command -v curl >/dev/null; then
	echo "serve.sh: curl not found; skipping" >&2
	exit 77
fi

. "$(dirname "$0")/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-serve-XXXXXX")
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

repo=$work/repo
# a tree: a file of several chunks, small files, the same content twice
mkdir -p "$work/t/sub"
head -c 3000000 /dev/urandom >"$work/t/big.bin"
echo hello >"$work/t/a.txt"
echo hello >"$work/t/sub/same.txt"
head -c 5000 /dev/urandom >"$work/t/sub/c.bin"
"$CAIRN" pack "$work/t" -o "$work/t.car" >/dev/null
root=$("$CAIRN" car root "$work/t.car")
"$CAIRN" dagstore register-shard --repo "$repo" s1 "$work/t.car" >/dev/null
# a second tree whose shard lacks one leaf: its CAR stream must end short
mkdir -p "$work/u"
head -c 2500000 /dev/urandom >"$work/u/f.bin"
"$CAIRN" pack "$work/u" -o "$work/u.car" >/dev/null
uroot=$("$CAIRN" car root "$work/u.car")
"$CAIRN" car ls "$work/u.car" | head -1 >"$work/u.drop"   # a leaf: pack writes children first
"$CAIRN" car filter --inverse --cid-file "$work/u.drop" "$work/u.car" "$work/u-part.car" 2>/dev/null
"$CAIRN" dagstore register-shard --repo "$repo" s2 "$work/u-part.car" >/dev/null
# a third whose file is cut short after it is indexed: its 1 MiB leaves,
# sent from a mapping of the file, must fail cleanly, never crash the server
mkdir -p "$work/v"
head -c 2500000 /dev/urandom >"$work/v/f.bin"
"$CAIRN" pack "$work/v" -o "$work/v.car" >/dev/null
vleaf=$("$CAIRN" car ls "$work/v.car" | head -1)
"$CAIRN" dagstore register-shard --repo "$repo" s3 "$work/v.car" >/dev/null
"$CAIRN" dagstore initialize-all --repo "$repo" >/dev/null

serve_start "$work/serve.err" "$CAIRN" --repo "$repo" --listen 127.0.0.1:0 || exit 1
case $serve_api in
/ip4/127.0.0.1/tcp/*/http) ok "api file: $serve_api" ;;
*) fail "api file: $serve_api" ;;
esac
base=$serve_base

# status URL [CURL ARGS...]: the HTTP status, the body in $work/body
status () {
	local url=$1
	shift
	curl -s -o "$work/body" -D "$work/hdr" -w '%{http_code}' "$@" "$url"
}
expect () {
	local want=$1 name=$2
	shift 2
	local got
	got=$(status "$@")
	if [ "$got" = "$want" ]; then ok "$name: $got"; else fail "$name: got $got, want $want"; fi
}

expect 200 healthz "$base/healthz"
[ "$(cat "$work/body")" = ok ] && ok "healthz body" || fail "healthz body: $(cat "$work/body")"

# every block, raw, equals the CAR layer's
"$CAIRN" car ls "$work/t.car" >"$work/cids"
n=0 bad=0
while read -r cid; do
	"$CAIRN" car get-block "$work/t.car" "$cid" >"$work/want"
	if [ "$(status "$base/ipfs/$cid?format=raw")" = 200 ] && cmp -s "$work/want" "$work/body"; then
		n=$((n + 1))
	else
		bad=$((bad + 1))
		echo "    block $cid differs" >&2
	fi
done <"$work/cids"
[ "$bad" = 0 ] && ok "$n blocks by ?format=raw equal car get-block" || fail "$bad blocks differ"

# Accept header, and the headers
expect 200 "raw by Accept" "$base/ipfs/$root" -H 'Accept: text/html, application/vnd.ipld.raw;q=0.9'
"$CAIRN" car get-block "$work/t.car" "$root" >"$work/want"
cmp -s "$work/want" "$work/body" && ok "raw by Accept: the block" || fail "raw by Accept: body differs"
hdr () { tr -d '\r' <"$work/hdr" | grep -i "^$1: " | head -1 | cut -d' ' -f2-; }
check_hdr () {
	local name=$1 want=$2 got
	got=$(hdr "$name")
	[ "$got" = "$want" ] && ok "header $name" || fail "header $name: got '$got', want '$want'"
}
check_hdr Content-Type application/vnd.ipld.raw
check_hdr X-Ipfs-Roots "$root"
check_hdr ETag "\"$root.raw\""
check_hdr Cache-Control "public, max-age=29030400, immutable"
check_hdr Access-Control-Allow-Origin "*"
check_hdr X-Content-Type-Options nosniff

# the CAR of the root: the same blocks, the same root
expect 200 "car of the root" "$base/ipfs/$root?format=car"
cp "$work/body" "$work/got.car"
check_hdr Content-Type "application/vnd.ipld.car; version=1; order=dfs; dups=n"
check_hdr ETag "\"$root.car\""
[ "$("$CAIRN" car root "$work/got.car")" = "$root" ] && ok "car root" || fail "car root"
"$CAIRN" car ls "$work/got.car" >"$work/got.cids" || fail "car ls of the response"
if cmp -s <(sort "$work/cids") <(sort "$work/got.cids"); then
	ok "car: the same $(wc -l <"$work/got.cids") blocks as the packed CAR"
else
	fail "car: blocks differ"
	diff <(sort "$work/cids") <(sort "$work/got.cids") >&2 || true
fi
[ "$(sort "$work/got.cids" | uniq -d | wc -l)" = 0 ] && ok "car: each block once" || fail "car: duplicates"
[ "$(head -1 "$work/got.cids")" = "$root" ] && ok "car: the root first" || fail "car: root not first"
expect 200 "car by Accept" "$base/ipfs/$root" -H 'Accept: application/vnd.ipld.car; version=1'
cmp -s "$work/body" "$work/got.car" && ok "car by Accept: the same bytes" || fail "car by Accept differs"
expect 200 "car dag-scope=block" "$base/ipfs/$root?format=car&dag-scope=block"
[ "$("$CAIRN" car ls "$work/body")" = "$root" ] && ok "dag-scope=block: the root alone" ||
	fail "dag-scope=block: $("$CAIRN" car ls "$work/body" 2>&1 | head -3)"

# a block missing below the root: 200 was sent, so the stream is cut short
# (no final chunk), which curl reports, and the server logs it
if curl -sf -o "$work/body" "$base/ipfs/$uroot?format=car"; then
	fail "missing block: the stream ended cleanly"
else
	ok "missing block: the stream is cut short (curl exit $?)"
fi
sleep 0.2
grep -q "stream cut short" "$work/serve.err" && ok "missing block: logged" ||
	fail "missing block: not logged: $(cat "$work/serve.err")"
expect 200 "still serving after a cut stream" "$base/healthz"

# errors
unknown=bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy
expect 404 "unknown CID" "$base/ipfs/$unknown?format=raw"
grep -q "no shard holds it" "$work/body" && ok "404 body" || fail "404 body: $(cat "$work/body")"
expect 404 "unknown CID, car" "$base/ipfs/$unknown?format=car"
expect 400 "malformed CID" "$base/ipfs/bafynotacid?format=raw"
expect 400 "bad escape" "$base/ipfs/$root%zz?format=raw"
expect 400 "%00" "$base/ipfs/$root%00?format=raw"
expect 400 "dot-dot" "$base/ipfs/../$root?format=raw" --path-as-is
expect 400 "empty segment" "$base/ipfs//$root?format=raw" --path-as-is
expect 400 "no CID" "$base/ipfs/?format=raw"
expect 400 "bad format" "$base/ipfs/$root?format=html"
expect 406 "no Accept" "$base/ipfs/$root"
grep -q "only verifiable responses" "$work/body" && ok "406 body" || fail "406 body: $(cat "$work/body")"
expect 406 "Accept */*" "$base/ipfs/$root" -H 'Accept: */*'
expect 404 "unknown route" "$base/nothing"
expect 405 "POST" "$base/ipfs/$root?format=raw" -X POST -d x
long=$(head -c 40000 /dev/zero | tr '\0' a)
got=$(status "$base/ipfs/$root?format=raw" -H "X-Long: $long")
case $got in 4*) ok "oversized header: $got" ;; *) fail "oversized header: $got" ;; esac
expect 200 "still serving" "$base/healthz"

# HEAD
expect 200 "HEAD raw" "$base/ipfs/$root?format=raw" -I
# with -I curl writes the headers to -o: count the body bytes instead
nobody () { [ "$(curl -s -I -o /dev/null -w '%{size_download}' "$1")" = 0 ]; }
nobody "$base/ipfs/$root?format=raw" && ok "HEAD raw: no body" || fail "HEAD raw: a body"
check_hdr Content-Length "$(wc -c <"$work/want" | tr -d ' ')"
expect 200 "HEAD car" "$base/ipfs/$root?format=car" -I
nobody "$base/ipfs/$root?format=car" && ok "HEAD car: no body" || fail "HEAD car: a body"
expect 404 "HEAD unknown" "$base/ipfs/$unknown?format=raw" -I

# a shard's file cut short under the server: the cut block is a 500 that
# names the file and the byte, not a crash, and the other blocks are still served
expect 200 "leaf of the shard to cut" "$base/ipfs/$vleaf?format=raw"
[ "$(wc -c <"$work/body")" = 1048576 ] && ok "leaf: 1 MiB" || fail "leaf: $(wc -c <"$work/body") bytes"
truncate -s 600000 "$work/v.car"
expect 500 "block in the cut part of a shard" "$base/ipfs/$vleaf?format=raw"
grep -q "v.car: at byte 600000" "$work/body" && ok "500 names file and byte: $(head -c 200 "$work/body")" ||
	fail "500 body: $(head -c 200 "$work/body")"
expect 200 "healthz after the cut" "$base/healthz"
expect 200 "another shard after the cut" "$base/ipfs/$root?format=raw"

# a second server on the same store
if "$CAIRN" serve --repo "$repo" --listen 127.0.0.1:0 >"$work/out" 2>"$work/err"; then
	fail "a second server started"
else
	grep -q "in use" "$work/err" && ok "second server: $(cat "$work/err")" || fail "second server: $(cat "$work/err")"
fi

# SIGTERM: stops, removes the api file
if serve_stop; then ok "SIGTERM: exit 0"; else fail "SIGTERM: exit $?"; fi
[ ! -e "$repo/api" ] && ok "api file removed" || fail "api file left"

if [ "$fails" -gt 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "all passed"
