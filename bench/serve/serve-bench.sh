#!/usr/bin/env bash
# serve-bench.sh: `cairn serve` beside nginx on loopback, in the same run:
# wrk at 256 connections for DURATION seconds each, GETs of 1 KiB blocks
# and of 1 MiB blocks (?format=raw, rotating over many CIDs) and of CARs of
# 1 KiB blocks (?format=car), nginx serving
# the same bytes as static files at the same paths (/ipfs/CID) with two
# workers (cairn: a pool of two threads; the machine's two cores). The
# server's RSS is sampled every second while wrk runs (flat memory).
# Prints requests/s and p99 latency per case and the ratio cairn/nginx.
#
# usage: bench/serve/serve-bench.sh [CAIRN] [DURATION_S] [ROUNDS]
#   CAIRN defaults to build/cairn; DURATION_S to 60; ROUNDS to 1 (with more,
#   cases alternate and medians are printed). CASES picks cases among
#   "1k 1m car" (default all three). KEEP=1 keeps the work folder
#   (wrk's outputs wrk.CASE.out, the daemon's log serve.err, and
#   sockets.txt: the connections' states halfway through each case) and
#   prints it.
set -eu
cairn=$(cd "$(dirname "${1:-build/cairn}")" && pwd)/$(basename "${1:-build/cairn}")
dur=${2:-60}
rounds=${3:-1}
conns=${CONNS:-256}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
command -v wrk >/dev/null && [ -x "$NGINX" ] || { echo "serve-bench: needs wrk and nginx (scripts/install-deps.sh)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-serve-bench-XXXXXX")
srv= ngx= sampler=
cleanup () {
	for p in $sampler $srv $ngx; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	if [ "${KEEP:-0}" = 1 ]; then echo "# kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
chmod 755 "$work"  # nginx workers run as nobody
cd "$work"
export CAIRN_PATH=$work/store

# the blocks: 2,000 files of 1 KiB and 256 of 1 MiB, each one raw block
mkdir -p k m www/ipfs
for i in $(seq 2000); do head -c 1024 /dev/urandom >"k/$i"; done
for i in $(seq 256); do head -c 1048576 /dev/urandom >"m/$i"; done
"$cairn" pack k -o k.car >/dev/null
"$cairn" pack m -o m.car >/dev/null
"$cairn" dagstore register-shard k "$work/k.car" >/dev/null
"$cairn" dagstore register-shard m "$work/m.car" >/dev/null
"$cairn" dagstore initialize-all >/dev/null
: >k.paths
: >m.paths
for set in k m; do
	for cid in $("$cairn" car ls "$set.car" | grep '^bafk'); do
		"$cairn" car get-block "$set.car" "$cid" >"www/ipfs/$cid"
		echo "/ipfs/$cid" >>"$set.paths"
	done
done
cat >rotate.lua <<'LUA'
local paths, i = {}, 0
local suffix = os.getenv("SUFFIX") or ""
for line in io.lines(os.getenv("PATHS")) do paths[#paths + 1] = line .. suffix end
request = function()
	i = i % #paths + 1
	return wrk.format("GET", paths[i])
end
LUA

port_free () { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# below the ephemeral range (32768-60999), where wrk's own connections live
nport=$((10000 + RANDOM % 20000))
while ! port_free $nport; do nport=$((nport + 1)); done
mkdir -p ngx/tmp
cat >ngx/nginx.conf <<NG
daemon off;
worker_processes 2;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	keepalive_timeout 60s;
	open_file_cache max=10000;
	client_body_temp_path $work/ngx/tmp;
	default_type application/vnd.ipld.raw;
	server { listen 127.0.0.1:$nport; root $work/www; }
}
NG
chmod -R a+rX www
"$NGINX" -p "$work/ngx" -c "$work/ngx/nginx.conf" -e "$work/ngx/error.log" &
ngx=$!
printf '{"listen": "127.0.0.1:0", "threads": 2, "max_connections": 1024}\n' >serve.json
"$cairn" serve --config serve.json 2>serve.err &
srv=$!
for _ in $(seq 100); do [ -s store/api ] && break; sleep 0.1; done
cport=$(cut -d/ -f5 store/api)
sleep 0.5
curl -sf -o /dev/null "http://127.0.0.1:$nport$(head -1 k.paths)" || { cat ngx/error.log; exit 1; }
curl -sf -o /dev/null "http://127.0.0.1:$cport$(head -1 k.paths)?format=raw" || { cat serve.err; exit 1; }
# CAR GETs: each 1 KiB block as a CAR (header and one section), nginx
# serving the very bytes cairn answers, as static files at the same paths
: >c.paths
mkdir -p www/car
for p in $(head -500 k.paths); do
	curl -sf -o "www/car/${p#/ipfs/}" "http://127.0.0.1:$cport$p?format=car"
	echo "/car/${p#/ipfs/}" >>c.paths
done
sed 's|^/car/|/ipfs/|' c.paths >c.cairn.paths
chmod -R a+rX www

# sockets NAME PORT: the connections to PORT by state and queue sizes, and
# the server's threads, halfway through a case (KEEP=1), for the stalls
# seen in a few runs (docs/BENCHMARKS.md): were the connections there?
sockets () {
	echo "=== $1 $(date +%T)"
	echo "client side: established $(ss -tn state established "( dport = :$2 )" | tail -n +2 | wc -l)," \
		"syn-sent $(ss -tn state syn-sent "( dport = :$2 )" | tail -n +2 | wc -l)"
	echo "server side, by Recv-Q and Send-Q:"
	ss -tn state established "( sport = :$2 )" | awk 'NR > 1 {print $1, $2}' | sort | uniq -c | sort -rn | head -5
	ss -tln "( sport = :$2 )"
	for t in /proc/$srv/task/*; do echo "cairn thread $(cat "$t/comm"): $(awk '{print $3}' "$t/stat") $(cat "$t/wchan")"; done
	nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop 2>/dev/null | tail -n +2
}

# run NAME URL PATHS SUFFIX: one wrk run; appends "NAME reqs p99_ms errors" to results
run () {
	local name=$1 url=$2 paths=$3 suffix=$4 out=wrk.$1.out
	PATHS=$paths SUFFIX=$suffix wrk -t2 -c"$conns" -d"${dur}s" --latency -s rotate.lua "$url" >"$out" 2>&1 &
	local w=$!
	[ "${KEEP:-0}" = 1 ] && { sleep $((dur / 2)); sockets "$name" "${url##*:}" >>sockets.txt; }
	wait $w
	local rps p99 errs
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
	p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' "$out")
	errs=$(awk '/Socket errors|Non-2xx/ {s = s $0 "; "} END {print s ? s : "none"}' "$out")
	echo "$name $rps $p99 $errs" >>results
	printf '%-12s %10s req/s  p99 %8s ms  errors: %s\n' "$name" "$rps" "$p99" "$errs"
}
rss_kib () { awk '/^VmRSS/ {print $2}' "/proc/$srv/status"; }
# RssAnon: the server's own memory; VmRSS also counts the pages of the shard
# files it keeps mapped for large blocks (page cache, shared, reclaimable)
anon_kib () { awk '/^RssAnon/ {print $2}' "/proc/$srv/status"; }
: >results
: >rss
: >anon
( while kill -0 $srv 2>/dev/null; do rss_kib >>rss; anon_kib >>anon; sleep 1; done ) &
sampler=$!
echo "# wrk -t2 -c$conns -d${dur}s, $rounds round(s); cairn port $cport, nginx port $nport"
echo "# cairn RSS at start: $(rss_kib) KiB"
cases=${CASES:-1k 1m car}
for r in $(seq "$rounds"); do
	for size in $cases; do
		case $size in
		1k) run nginx-1k "http://127.0.0.1:$nport" k.paths ""
		    run cairn-1k "http://127.0.0.1:$cport" k.paths "?format=raw" ;;
		1m) run nginx-1m "http://127.0.0.1:$nport" m.paths ""
		    run cairn-1m "http://127.0.0.1:$cport" m.paths "?format=raw" ;;
		car) run nginx-car "http://127.0.0.1:$nport" c.paths ""
		     run cairn-car "http://127.0.0.1:$cport" c.cairn.paths "?format=car" ;;
		esac
	done
done
kill $sampler 2>/dev/null || true
wait $sampler 2>/dev/null || true
sampler=
med () { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "# medians"
for size in $cases; do
	c=$(awk -v n="cairn-$size" '$1 == n {print $2}' results | med)
	n=$(awk -v n="nginx-$size" '$1 == n {print $2}' results | med)
	cp99=$(awk -v n="cairn-$size" '$1 == n {print $3}' results | med)
	np99=$(awk -v n="nginx-$size" '$1 == n {print $3}' results | med)
	printf '%s blocks: cairn %.0f req/s (p99 %s ms), nginx %.0f req/s (p99 %s ms): %.0f%%\n' \
		"$size" "$c" "$cp99" "$n" "$np99" "$(echo "$c $n" | awk '{print 100 * $1 / $2}')"
done
echo "# cairn RSS over the run (KiB): min $(sort -n rss | head -1), median $(med <rss), max $(sort -n rss | tail -1) ($(wc -l <rss) samples)"
echo "# cairn RssAnon over the run (KiB): min $(sort -n anon | head -1), median $(med <anon), max $(sort -n anon | tail -1)"
