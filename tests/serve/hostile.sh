#!/usr/bin/env bash
# hostile.sh: `cairn serve` against hostile clients (hostile.py: oversized
# paths and headers, bad escapes, slowloris, idle connections, HEAD vs GET
# bodies, Range abuse, pipelining, garbage); the server, configured with a
# 3 s idle timeout and 256 connections, must answer /healthz within a
# second after each group, and still be running at the end.
#
# usage: hostile.sh CAIRN        (exit 77, a skip, without python3 or curl)
set -eu
CAIRN=$1
here=$(cd "$(dirname "$0")" && pwd)
command -v python3 >/dev/null && command -v curl >/dev/null || { echo "hostile.sh: skipped"; exit 77; }
. "$here/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-hostile-XXXXXX")
trap 'serve_kill; rm -rf "$work"' EXIT
cd "$work"
mkdir t
head -c 300000 /dev/urandom >t/a.bin
"$CAIRN" pack t -o t.car >/dev/null
root=$("$CAIRN" car root t.car)
piece=$("$CAIRN" piece commp --json t.car | sed -n 's/.*"piece_cid_v1":"\([^"]*\)".*/\1/p')
"$CAIRN" dagstore register-shard --repo repo "$piece" "$work/t.car" >/dev/null
"$CAIRN" dagstore initialize-all --repo repo >/dev/null
printf '{"listen": "127.0.0.1:0", "threads": 2, "max_connections": 256, "timeout_s": 3}\n' >serve.json
serve_start serve.err "$CAIRN" --repo repo --config serve.json || exit 1
rc=0
python3 "$here/hostile.py" "$serve_port" "$root" "$piece" 3 || rc=1
if serve_alive "$serve_pid" && [ "$(curl -s "$serve_base/healthz")" = ok ]; then
	echo "ok - the server is still up"
else
	echo "FAIL - the server is gone" >&2
	rc=1
fi
serve_stop || { echo "FAIL - exit status $? after SIGTERM" >&2; rc=1; }
exit $rc
