#!/usr/bin/env bash
# gateway2.sh: the rest of the gateway, end to end with curl against
# `cairn serve` (started from $REPO/config.json): pathing through plain and
# HAMT directories (raw: the terminal block; car: the path's blocks, then
# the entity), 404 for a missing name, dag-scope=entity, entity-bytes
# ranges checked leaf by leaf against the file's bytes, dups=y|n, CAR
# version and order parameters, the identity probe, /piece/ with ranges
# equal to the CAR zero-filled to the piece's unpadded size, /metrics
# values that move with requests, and the config file's errors.
#
# usage: gateway2.sh CAIRN        (exit 77, a skip, when curl is missing)
set -eu
set -o pipefail

CAIRN=$1
command -v curl >/dev/null || { echo "gateway2.sh: no curl; skipping" >&2; exit 77; }

. "$(dirname "$0")/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-gw2-XXXXXX")
cleanup () {
	serve_kill
	rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok () { echo "ok - $*"; }
fail () { echo "FAIL - $*" >&2; fails=$((fails + 1)); }
check () { if eval "$2"; then ok "$1"; else fail "$1"; fi; }

repo=$work/repo
cd "$work"
# A: a tree with a file of 1,075 chunks of 1 KiB (a root over two levels of
# links), nested directories, and one content twice (a repeated block)
mkdir -p d/sub/deeper
head -c 1100000 /dev/urandom >d/big.bin
echo "deep file" >d/sub/deeper/x.txt
echo "the same" >d/dup1.txt
echo "the same" >d/sub/dup2.txt
"$CAIRN" pack --chunk-size 1024 d -o a.car >/dev/null
aroot=$("$CAIRN" car root a.car)
# H: 1,100 files: ipfs-car's profile makes a HAMT past 1,000 entries
mkdir -p h
for i in $(seq -w 0 1099); do echo "file $i" >"h/f$i.txt"; done
"$CAIRN" pack h -o h.car >/dev/null
hroot=$("$CAIRN" car root h.car)
apiece=$("$CAIRN" piece commp --json a.car | sed -n 's/.*"piece_cid_v1":"\([^"]*\)".*/\1/p')
apiece2=$("$CAIRN" piece commp --json a.car | sed -n 's/.*"piece_cid":"\([^"]*\)".*/\1/p')
apadded=$("$CAIRN" piece commp --json a.car | sed -n 's/.*"padded_piece_size":\([0-9]*\).*/\1/p')
hpiece=$("$CAIRN" piece commp --json h.car | sed -n 's/.*"piece_cid_v1":"\([^"]*\)".*/\1/p')
printf '[{"key": "%s", "url": "%s/a.car"}, {"key": "%s", "url": "%s/h.car"}]\n' \
	"$apiece" "$work" "$hpiece" "$work" >deals.json
"$CAIRN" dagstore import-deals --repo "$repo" deals.json >/dev/null
"$CAIRN" dagstore initialize-all --repo "$repo" >/dev/null

# ------------------------------------------------------ the config file
printf '{"listen": "127.0.0.1:0", "threads": 2, "wat": 1}\n' >bad.json
if "$CAIRN" serve --repo "$repo" --config bad.json 2>err; then
	fail "config: unknown key accepted"
else
	grep -q 'bad.json: unknown key "wat"' err && ok "config: unknown key: $(cat err)" ||
		fail "config: unknown key: $(cat err)"
fi
printf '{"serve": {"threads": -1}}\n' >bad2.json
if "$CAIRN" serve --repo "$repo" --config bad2.json 2>err; then fail "config: threads -1 accepted"
else grep -q '"threads" must be an integer' err && ok "config: bad value: $(cat err)" ||
	fail "config: bad value: $(cat err)"; fi
if "$CAIRN" serve --repo "$repo" --config nothere.json 2>err; then fail "config: missing file accepted"
else ok "config: missing --config file: $(cat err)"; fi
# the default file, with a listen address the flag must override
printf '{"serve": {"listen": "127.0.0.1:1", "threads": 2, "max_connections": 512, "timeout_s": 20}}\n' \
	>"$repo/config.json"
serve_start serve.err "$CAIRN" --repo "$repo" --listen 127.0.0.1:0 || exit 1
[ "$serve_port" != 1 ] && ok "config: --listen overrides the file's listen" || fail "config: listen"
base=$serve_base

status () {
	local url=$1
	shift
	curl -s -o body -D hdr -w '%{http_code}' "$@" "$url"
}
expect () {
	local want=$1 name=$2 got
	shift 2
	got=$(status "$@")
	if [ "$got" = "$want" ]; then ok "$name: $got"; else fail "$name: got $got, want $want ($(head -c 300 body))"; fi
}
slice () { dd if="$1" iflag=skip_bytes,count_bytes skip="$2" count="$3" bs=65536 status=none; }
hdr () { tr -d '\r' <hdr | grep -i "^$1: " | head -1 | cut -d' ' -f2-; }

# ------------------------------------------------------------- pathing
expect 200 "raw by path" "$base/ipfs/$aroot/sub/deeper/x.txt?format=raw"
cmp -s body d/sub/deeper/x.txt && ok "raw by path: the file's block" || fail "raw by path: body"
expect 200 "car by path" "$base/ipfs/$aroot/sub/deeper/x.txt?format=car"
"$CAIRN" car ls body >path.cids
check "car by path: the root, sub, deeper, x.txt ($(wc -l <path.cids) blocks)" \
	'[ "$(wc -l <path.cids)" = 4 ] && [ "$(head -1 path.cids)" = "$aroot" ]'
xcid=$(tail -1 path.cids)
[ "$("$CAIRN" car get-block body "$xcid" | cmp - d/sub/deeper/x.txt && echo same)" = same ] &&
	ok "car by path: the terminal block" || fail "car by path: terminal"
roots=$(hdr X-Ipfs-Roots)
check "X-Ipfs-Roots lists the path's 4 CIDs" '[ "$roots" = "$(paste -sd, path.cids)" ]'
expect 200 "path with a trailing slash" "$base/ipfs/$aroot/sub/?format=car&dag-scope=block"
check "trailing slash: root and sub" '[ "$("$CAIRN" car ls body | wc -l)" = 2 ]'
expect 404 "missing name" "$base/ipfs/$aroot/sub/nope.txt?format=car"
grep -q 'no "nope.txt" in directory' body && ok "404 names the missing name" || fail "404 body: $(cat body)"
expect 404 "missing name, raw" "$base/ipfs/$aroot/nope?format=raw"
expect 404 "a name under a file" "$base/ipfs/$aroot/big.bin/x?format=car"
grep -q "not a directory" body && ok "under a file: says why" || fail "under a file: $(cat body)"
expect 400 "malformed path" "$base/ipfs/$aroot/sub//x.txt?format=car" --path-as-is
expect 400 "dot-dot in a path" "$base/ipfs/$aroot/sub/../big.bin?format=raw" --path-as-is
expect 400 "malformed CID with a path" "$base/ipfs/bafyNOPE/sub?format=car"
expect 200 "escaped name" "$base/ipfs/$aroot/sub/deeper/x%2Etxt?format=raw"
cmp -s body d/sub/deeper/x.txt && ok "escaped name: the file" || fail "escaped name: body"

# HAMT directory
hentries=$("$CAIRN" car ls h.car | wc -l)
expect 200 "HAMT: raw by path" "$base/ipfs/$hroot/f0777.txt?format=raw"
cmp -s body h/f0777.txt && ok "HAMT: f0777.txt" || fail "HAMT: f0777.txt body"
bad=0
for n in 0000 0001 0500 0999 1000 1099; do
	[ "$(status "$base/ipfs/$hroot/f$n.txt?format=raw")" = 200 ] && cmp -s body "h/f$n.txt" || bad=$((bad + 1))
done
[ $bad = 0 ] && ok "HAMT: six names found" || fail "HAMT: $bad names wrong"
expect 200 "HAMT: car by path" "$base/ipfs/$hroot/f0042.txt?format=car"
"$CAIRN" car ls body >hpath.cids
check "HAMT: the root, its shards on the way, the file ($(wc -l <hpath.cids) blocks)" \
	'[ "$(wc -l <hpath.cids)" -ge 3 ] && [ "$(head -1 hpath.cids)" = "$hroot" ]'
[ "$("$CAIRN" car get-block body "$(tail -1 hpath.cids)" | cmp - h/f0042.txt && echo same)" = same ] &&
	ok "HAMT: the file last" || fail "HAMT: terminal"
check "HAMT: X-Ipfs-Roots is the root and the file" \
	'[ "$(hdr X-Ipfs-Roots)" = "$hroot,$(tail -1 hpath.cids)" ]'
expect 404 "HAMT: missing name" "$base/ipfs/$hroot/f5000.txt?format=raw"
grep -q 'no "f5000.txt"' body && ok "HAMT: 404 names it" || fail "HAMT 404: $(cat body)"
expect 200 "HAMT: dag-scope=entity" "$base/ipfs/$hroot?format=car&dag-scope=entity"
"$CAIRN" car ls body >hent.cids
# the entity is the shard blocks: everything in h.car but the 1,100 files
check "HAMT entity: the $((hentries - 1100)) shard blocks, no entries" \
	'[ "$(wc -l <hent.cids)" = $((hentries - 1100)) ] && ! grep -q "^bafk" hent.cids'

# ------------------------------------------------------- dag-scope=entity
expect 200 "plain directory entity" "$base/ipfs/$aroot/sub?format=car&dag-scope=entity"
check "plain directory entity: the root and the directory node" '[ "$("$CAIRN" car ls body | wc -l)" = 2 ]'
expect 200 "file entity" "$base/ipfs/$aroot/big.bin?format=car&dag-scope=entity"
"$CAIRN" car ls body | tail -n +2 >ent.cids
expect 200 "file all" "$base/ipfs/$aroot/big.bin?format=car"
"$CAIRN" car ls body | tail -n +2 >all.cids
check "file entity = the whole file ($(wc -l <ent.cids) blocks)" 'cmp -s ent.cids all.cids'
etag_all=$(hdr ETag)

# entity-bytes: the raw leaves of the answer, in order, must be exactly the
# 1 KiB chunks covering the range
leaves () { # CAR -> the concatenated raw blocks, in CAR order
	: >leaves.bin
	for c in $("$CAIRN" car ls "$1" | grep '^bafk'); do "$CAIRN" car get-block "$1" "$c" >>leaves.bin; done
}
size=1100000
range_ok () { # FROM TO(inclusive) -> chunks covering it
	local a=$1 b=$2 first last
	first=$((a / 1024 * 1024))
	last=$(( (b / 1024 + 1) * 1024 ))
	[ $last -gt $size ] && last=$size
	slice d/big.bin $first $((last - first)) >want.bin
	leaves body
	cmp -s leaves.bin want.bin
}
for spec in "0:0 0 0" "0:1023 0 1023" "1024:1024 1024 1024" "5000:300000 5000 300000" \
	"-1:* $((size - 1)) $((size - 1))" "-3000:* $((size - 3000)) $((size - 1))" \
	"499:-1000 499 $((size - 1000))" "0:* 0 $((size - 1))" "1048576:1050000 1048576 1050000" \
	"1099000:9999999 1099000 $((size - 1))" "-99999999:10 0 10"; do
	set -- $spec
	got=$(status "$base/ipfs/$aroot/big.bin?format=car&entity-bytes=$1")
	if [ "$got" = 200 ] && range_ok "$2" "$3"; then
		ok "entity-bytes=$1: $("$CAIRN" car ls body | wc -l) blocks, the chunks of bytes $2-$3"
	else
		fail "entity-bytes=$1: status $got, leaves differ"
	fi
done
[ "$(hdr ETag)" != "$etag_all" ] && ok "entity-bytes: its own ETag" || fail "entity-bytes ETag"
expect 200 "entity-bytes on the file's CID" "$base/ipfs/$(head -1 ent.cids)?format=car&entity-bytes=0:10"
expect 200 "entity-bytes resolving to nothing" "$base/ipfs/$aroot/big.bin?format=car&entity-bytes=2000:-1099999"
check "nothing wanted: the path and the file's root only" '[ "$("$CAIRN" car ls body | wc -l)" = 2 ]'
expect 400 "entity-bytes past the end" "$base/ipfs/$aroot/big.bin?format=car&entity-bytes=2000000:*"
expect 400 "entity-bytes malformed" "$base/ipfs/$aroot/big.bin?format=car&entity-bytes=abc"
expect 400 "entity-bytes from after to" "$base/ipfs/$aroot/big.bin?format=car&entity-bytes=5:3"
expect 400 "entity-bytes +1" "$base/ipfs/$aroot/big.bin?format=car&entity-bytes=%2B1:3"
expect 200 "entity-bytes on a directory: ignored" "$base/ipfs/$aroot/sub?format=car&entity-bytes=0:10"
check "entity-bytes on a directory = entity" '[ "$("$CAIRN" car ls body | wc -l)" = 2 ]'

# ----------------------------------------------------- dups, order, version
expect 200 "dups=n" "$base/ipfs/$aroot?format=car"
n_nodup=$("$CAIRN" car ls body | wc -l)
expect 200 "dups=y by Accept" "$base/ipfs/$aroot" -H 'Accept: application/vnd.ipld.car; version=1; order=dfs; dups=y'
check "dups=y: Content-Type says so" '[ "$(hdr Content-Type)" = "application/vnd.ipld.car; version=1; order=dfs; dups=y" ]'
"$CAIRN" car ls body >dups.cids
check "dups=y: one block more, the repeated one twice" \
	'[ "$(wc -l <dups.cids)" = $((n_nodup + 1)) ] && [ "$(sort dups.cids | uniq -d | wc -l)" = 1 ]'
expect 200 "car-dups=y query" "$base/ipfs/$aroot?format=car&car-dups=y"
check "car-dups=y: dups=y" '[ "$(hdr Content-Type)" = "application/vnd.ipld.car; version=1; order=dfs; dups=y" ]'
expect 200 "format=car with Accept dups=y" "$base/ipfs/$aroot?format=car" -H 'Accept: application/vnd.ipld.car;dups=y'
check "format=car keeps the Accept's dups=y" '[ "$("$CAIRN" car ls body | wc -l)" = $((n_nodup + 1)) ]'
expect 200 "order=unk" "$base/ipfs/$aroot" -H 'Accept: application/vnd.ipld.car; order=unk'
check "order=unk answered as dfs, dups=n" '[ "$(hdr Content-Type)" = "application/vnd.ipld.car; version=1; order=dfs; dups=n" ]'
expect 406 "version=2" "$base/ipfs/$aroot" -H 'Accept: application/vnd.ipld.car; version=2'
grep -q "version 1" body && ok "406 says why" || fail "406 body: $(cat body)"
expect 406 "order=foo" "$base/ipfs/$aroot?format=car" -H 'Accept: application/vnd.ipld.car; order=foo'
expect 406 "dups=maybe" "$base/ipfs/$aroot?format=car&car-dups=maybe"
expect 200 "a refused CAR variant, then raw" "$base/ipfs/$aroot" \
	-H 'Accept: application/vnd.ipld.car; version=2, application/vnd.ipld.raw;q=0.5'
check "falls back to raw" '[ "$(hdr Content-Type)" = application/vnd.ipld.raw ]'
expect 200 "q-values: car over raw" "$base/ipfs/$aroot" \
	-H 'Accept: application/vnd.ipld.raw;q=0.2, application/vnd.ipld.car;q=0.9'
check "q-values: car" '[ "$(hdr Content-Type | cut -d";" -f1)" = application/vnd.ipld.car ]'
expect 200 "identity probe, raw" "$base/ipfs/bafkqaaa?format=raw"
check "identity probe: empty body" '[ ! -s body ]'
expect 200 "identity probe, car" "$base/ipfs/bafkqaaa?format=car"
check "identity probe car: root bafkqaaa, no blocks" \
	'[ "$("$CAIRN" car root body)" = bafkqaaa ] && [ -z "$("$CAIRN" car ls body)" ]'
expect 412 "only-if-cached, not here" "$base/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw" \
	-H 'Cache-Control: only-if-cached'
expect 200 "only-if-cached, here" "$base/ipfs/$aroot?format=raw" -H 'Cache-Control: only-if-cached'
expect 200 "HEAD by path" "$base/ipfs/$aroot/sub/deeper/x.txt?format=raw" -I
check "HEAD by path: Content-Length" '[ "$(hdr Content-Length)" = "$(wc -c <d/sub/deeper/x.txt | tr -d " ")" ]'
expect 404 "HEAD missing name" "$base/ipfs/$aroot/zzz?format=car" -I

# ---------------------------------------------------------------- /piece/
usize=$((apadded / 128 * 127))
cp a.car want.piece
truncate -s "$usize" want.piece
expect 200 "piece v1: whole" "$base/piece/$apiece"
cmp -s body want.piece && ok "piece: the CAR and zeros to $usize bytes" || fail "piece: bytes differ"
check "piece: headers" '[ "$(hdr Content-Type)" = application/piece ] && [ "$(hdr Accept-Ranges)" = bytes ] &&
	[ "$(hdr ETag)" = "\"$apiece\"" ] && [ "$(hdr Content-Length)" = "$usize" ]'
got=$("$CAIRN" piece commp --json body | sed -n 's/.*"piece_cid_v1":"\([^"]*\)".*/\1/p')
check "piece: commp of the body is the piece CID" '[ "$got" = "$apiece" ]'
expect 200 "piece v2: whole" "$base/piece/$apiece2"
cmp -s body want.piece && ok "piece v2: the same bytes" || fail "piece v2: bytes differ"
csize=$(wc -c <a.car | tr -d ' ')
for r in "0-99" "1000-1000" "$((csize - 50))-$((csize + 50))" "$((usize - 10))-" "-10" "5-$((usize + 99))" "$csize-"; do
	case $r in
	-*) from=$((usize - ${r#-})); to=$((usize - 1)) ;;
	*-) from=${r%-}; to=$((usize - 1)) ;;
	*) from=${r%-*}; to=${r#*-}; [ "$to" -ge "$usize" ] && to=$((usize - 1)) ;;
	esac
	got=$(status "$base/piece/$apiece" -H "Range: bytes=$r")
	slice want.piece $from $((to - from + 1)) >want.range
	if [ "$got" = 206 ] && cmp -s body want.range && [ "$(hdr Content-Range)" = "bytes $from-$to/$usize" ]; then
		ok "piece Range $r: 206, bytes $from-$to"
	else
		fail "piece Range $r: $got, $(hdr Content-Range)"
	fi
done
expect 416 "piece: range past the end" "$base/piece/$apiece" -H "Range: bytes=$usize-"
check "416: Content-Range bytes */size" '[ "$(hdr Content-Range)" = "bytes */$usize" ]'
expect 200 "piece: several ranges, the whole" "$base/piece/$apiece" -H "Range: bytes=0-1,5-9"
cmp -s body want.piece && ok "several ranges: the whole piece" || fail "several ranges: body"
expect 200 "piece: malformed Range ignored" "$base/piece/$apiece" -H "Range: bytes=x-y"
expect 200 "piece: HEAD" "$base/piece/$apiece" -I
check "piece HEAD: Content-Length, no body" '[ "$(hdr Content-Length)" = "$usize" ] &&
	[ "$(curl -s -I -o /dev/null -w "%{size_download}" "$base/piece/$apiece")" = 0 ]'
expect 404 "piece: unknown" "$base/piece/baga6ea4seaqjgjsk5szrdxlmjxfjx6a76pnbrlnppxo22wfunepx4kllpatngky"
expect 400 "piece: not a piece CID" "$base/piece/$aroot"
expect 400 "piece: malformed" "$base/piece/nonsense"
expect 400 "piece: a path below" "$base/piece/$apiece/x"

# ---------------------------------------------------------------- metrics
metric () { grep -v '^#' metrics.txt | grep -F "$1 " | head -1 | awk '{print $NF}'; }
expect 200 "metrics" "$base/metrics"
cp body metrics.txt
check "metrics: text format" '[ "$(hdr Content-Type)" = "text/plain; version=0.0.4; charset=utf-8" ]'
r200=$(metric 'cairn_http_requests_total{route="ipfs",code="200"}')
r404=$(metric 'cairn_http_requests_total{route="ipfs",code="404"}')
b0=$(metric 'cairn_http_response_bytes_total{route="ipfs"}')
p0=$(metric 'cairn_http_response_bytes_total{route="piece"}')
check "metrics: shards Available 2, index bytes" \
	'[ "$(metric "cairn_dagstore_shards{state=\"Available\"}")" = 2 ] && [ "$(metric cairn_dagstore_index_bytes)" -gt 0 ]'
check "metrics: a latency histogram" 'grep -q "cairn_http_request_duration_seconds_bucket{route=\"ipfs\",le=\"+Inf\"}" metrics.txt'
for _ in 1 2 3; do curl -s -o /dev/null "$base/ipfs/$aroot/big.bin?format=raw"; done
curl -s -o /dev/null "$base/ipfs/$aroot/nope?format=raw"
curl -s -o /dev/null -H 'Range: bytes=0-999' "$base/piece/$apiece"
expect 200 "metrics again" "$base/metrics"
cp body metrics.txt
check "metrics: ipfs 200 +3" '[ "$(metric "cairn_http_requests_total{route=\"ipfs\",code=\"200\"}")" = $((r200 + 3)) ]'
check "metrics: ipfs 404 +1" '[ "$(metric "cairn_http_requests_total{route=\"ipfs\",code=\"404\"}")" = $((${r404:-0} + 1)) ]'
check "metrics: ipfs bytes grew" '[ "$(metric "cairn_http_response_bytes_total{route=\"ipfs\"}")" -gt "$b0" ]'
check "metrics: piece bytes +1000" '[ "$(metric "cairn_http_response_bytes_total{route=\"piece\"}")" = $((p0 + 1000)) ]'
check "metrics: piece 206 counted" 'grep -q "cairn_http_requests_total{route=\"piece\",code=\"206\"}" metrics.txt'
check "metrics: its own requests counted" 'grep -q "cairn_http_requests_total{route=\"metrics\",code=\"200\"} 1" metrics.txt'

serve_stop && ok "SIGTERM: exit 0" || fail "SIGTERM"
if [ "$fails" -gt 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "all passed"
