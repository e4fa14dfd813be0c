#!/usr/bin/env bash
# rpc.sh: the JSON-RPC side of `cairn serve` and the command line through
# the daemon, end to end with --repo in temporary directories:
#   - every `cairn dagstore` command run on two identical stores, one
#     opened by the command itself and one owned by a running daemon, gives
#     the same stdout, stderr and exit status (timings and paths aside); the
#     daemon's log shows each command's call, and its lock is held all along
#     (so the commands could not have opened the store themselves);
#   - rpc_client.py: every method against forged, expired, malformed and
#     under-privileged tokens and none, each permission level, the JSON-RPC
#     errors, hostile bodies, and the WebSocket (framing, bad frames,
#     DagstoreInitializeAll streamed as go-jsonrpc channels);
#   - cairn auth create-token / api-info, with and without the daemon;
#   - the token and api files (0600, removed on SIGTERM), a second daemon
#     refused, a daemon killed -9 leaving a stale api file that commands
#     then ignore.
#
# usage: rpc.sh CAIRN        (exit 77, a skip, when curl or python3 is missing)
set -eu
set -o pipefail

if [ $# -ne 1 ]; then
	echo "usage: rpc.sh CAIRN" >&2
	exit 2
fi
CAIRN=$1
here=$(cd "$(dirname "$0")" && pwd)
for tool in curl python3 flock; do
	if ! command -v $tool >/dev/null; then
		echo "rpc.sh: $tool not found; skipping" >&2
		exit 77
	fi
done
unset CAIRN_API_INFO

. "$here/../lib/serve.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-rpc-XXXXXX")
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

# the data: two trees packed, a corrupt CAR, a deal list
mkdir -p "$work/data/t" "$work/data/u"
head -c 1500000 /dev/urandom >"$work/data/t/big.bin"
echo hello >"$work/data/t/a.txt"
head -c 700000 /dev/urandom >"$work/data/u/f.bin"
"$CAIRN" pack "$work/data/t" -o "$work/data/t.car" >/dev/null
"$CAIRN" pack "$work/data/u" -o "$work/data/u.car" >/dev/null
cid=$("$CAIRN" car ls "$work/data/t.car" | tail -1)
root=$("$CAIRN" car root "$work/data/t.car")

# start_daemon REPO: `cairn serve` on a free port, logging each RPC call
# (the api and token files may be stale ones: serve_start then waits for
# the server's own word)
start_daemon () {
	serve_start "$work/serve.err" "$CAIRN" --repo "$1" --listen 127.0.0.1:0 --log-level info || exit 1
}
stop_daemon () {
	serve_stop || fail "daemon exit status $?"
}

# session DIR: every dagstore command, from DIR (relative paths), each
# one's stdout, stderr and status appended to DIR.out, with the paths,
# timings and times that differ between runs normalized.
session () {
	local dir=$1 n=0
	mkdir -p "$dir"
	cp "$work/data/t.car" "$work/data/u.car" "$dir/"
	printf 'not a car' >"$dir/bad.car"
	printf '[{"key":"d1","url":"t.car"},{"PieceCID":{"/":"%s"},"path":"u.car"}]\n' \
		"baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq" >"$dir/deals.json"
	printf 'd3 t.car\n# comment\nd4 u.car\n' >"$dir/deals.txt"
	run () {
		n=$((n + 1))
		echo "## $n: $*" >>"$dir.out"
		( cd "$dir" && "$CAIRN" dagstore "$@" --repo repo ) >"$dir.o" 2>"$dir.e" && st=0 || st=$?
		sed -e "s|$dir|DIR|g" -e 's/[0-9.]* blocks\/s/N blocks\/s/' -e 's/"seconds":[0-9.]*/"seconds":S/' \
			-e 's/"indexed_at":[0-9]*/"indexed_at":T/g' "$dir.o" "$dir.e" >>"$dir.out"
		echo "status $st" >>"$dir.out"
	}
	# the first command makes the store; with a daemon, it is running now
	if [ -n "${2:-}" ]; then
		"$CAIRN" dagstore list-shards --repo "$dir/repo" >/dev/null
		start_daemon "$dir/repo"
	fi
	run register-shard s1 t.car
	run register-shard s2 u.car
	run register-shard --json s3 bad.car
	run register-shard s1 t.car
	run register-shard s1 u.car
	run list-shards
	run list-shards --json
	run initialize-shard s1
	run initialize-shard --json s1
	run initialize-shard nope
	run initialize-all --concurrency 1
	run initialize-all --concurrency 99
	run list-shards --json
	run lookup-pieces "$cid"
	run lookup-pieces --json "$root"
	run lookup-pieces bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy
	run lookup-pieces not-a-cid
	run get-block "$cid" -o block.bin
	run get-block bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy
	run recover-shard s3
	cp "$dir/t.car" "$dir/bad.car"
	run recover-shard --json s3
	run recover-shard s3
	run destroy-shard s2
	run destroy-shard --json s2
	run gc
	run gc --json
	run import-deals deals.json
	run import-deals --json deals.txt
	run import-deals deals.json
	run register-shard --initialize s9 u.car
	run list-shards
	"$CAIRN" dagstore get-block "$cid" --repo "$dir/repo" >"$dir/stdout-block.bin"
}

session "$work/A"
session "$work/B" daemon
if cmp -s "$work/A.out" "$work/B.out"; then
	ok "$(grep -c '^## ' "$work/B.out") dagstore commands: the same output with and without the daemon"
else
	fail "dagstore commands differ through the daemon"
	diff "$work/A.out" "$work/B.out" >&2 || true
fi
cmp -s "$work/A/block.bin" "$work/B/block.bin" && [ -s "$work/B/block.bin" ] &&
	ok "get-block -o: the same bytes" || fail "get-block -o differs"
cmp -s "$work/A/stdout-block.bin" "$work/B/stdout-block.bin" && ok "get-block to stdout: the same bytes" ||
	fail "get-block to stdout differs"
# through the daemon: its log has one call per command that reached it
calls=$(grep -c 'rpc: Cairn\.Dagstore' "$work/serve.err" || true)
want=$(grep -c '^## ' "$work/B.out")
# lookup-pieces not-a-cid and initialize-all --concurrency 99 stop at the
# command line (usage), so never reach the daemon
want=$((want - 2 + 1)) # the get-block to stdout at the end
[ "$calls" = "$want" ] && ok "the daemon ran $calls calls, one per command" ||
	fail "the daemon ran $calls calls, want $want: $(grep 'rpc:' "$work/serve.err" | head -50)"
for m in RegisterShard ListShards InitializeShard InitializeAll LookupPieces GetBlock RecoverShard \
	DestroyShard GC ImportDeals; do
	grep -q "rpc: Cairn.Dagstore$m (perms 15)" "$work/serve.err" && ok "through the daemon: $m" ||
		fail "the daemon never ran Cairn.Dagstore$m"
done
if flock -n "$work/B/repo/lock" true; then
	fail "the store's lock is free while the daemon runs"
else
	ok "the daemon holds the store's lock (a command could not have opened it)"
fi
"$CAIRN" dagstore list-shards --repo "$work/B/repo" --log-level info >/dev/null 2>"$work/err"
grep -q "through the daemon at http://127.0.0.1:" "$work/err" && ok "the command says it went through the daemon" ||
	fail "no 'through the daemon': $(cat "$work/err")"

# files
repo=$work/B/repo
[ "$(stat -c %a "$repo/token")" = 600 ] && ok "token file mode 0600" || fail "token mode $(stat -c %a "$repo/token")"
[ "$(stat -c %a "$repo/keystore/jwt-secret")" = 600 ] && ok "secret mode 0600" || fail "secret mode"
[ "$(stat -c %a "$repo/keystore")" = 700 ] && ok "keystore mode 0700" || fail "keystore mode"
port=$serve_port

# the RPC matrix and the websocket
newcar=$work/data/u.car
if python3 "$here/rpc_client.py" "$port" "$repo/keystore/jwt-secret" "$repo/token" "$cid" \
	"file://$newcar" >"$work/py.out" 2>&1; then
	ok "rpc_client.py: $(grep -c '^ok - ' "$work/py.out") checks"
else
	fail "rpc_client.py:"
	grep -v '^ok - ' "$work/py.out" >&2 || true
fi

# auth through the daemon: create-token, then use it
tok=$("$CAIRN" auth create-token --repo "$repo" --perm write)
resp=$(curl -s -H "Authorization: Bearer $tok" -d '{"jsonrpc":"2.0","id":1,"method":"Filecoin.AuthVerify","params":["'"$tok"'"]}' "http://127.0.0.1:$port/rpc/v0")
[ "$resp" = '{"jsonrpc":"2.0","id":1,"result":["read","write"]}' ] && ok "create-token --perm write (daemon): read, write" ||
	fail "create-token through the daemon: $resp"
grep -q "rpc: Filecoin.AuthNew (perms 15)" "$work/serve.err" && ok "create-token went through Filecoin.AuthNew" ||
	fail "create-token did not call AuthNew"
info=$("$CAIRN" auth api-info --repo "$repo" --perm read)
case $info in
"CAIRN_API_INFO=ey"*":/ip4/127.0.0.1/tcp/$port/http") ok "api-info: $info" ;;
*) fail "api-info: $info" ;;
esac
# CAIRN_API_INFO alone finds the daemon (here a read token: listing works, gc is refused)
if CAIRN_API_INFO=${info#CAIRN_API_INFO=} "$CAIRN" dagstore list-shards --repo "$work/nowhere" >"$work/out" 2>&1 &&
	grep -q '^s1 ' "$work/out"; then
	ok "CAIRN_API_INFO: the daemon's shards"
else
	fail "CAIRN_API_INFO list: $(cat "$work/out")"
fi
if CAIRN_API_INFO=${info#CAIRN_API_INFO=} "$CAIRN" dagstore gc --repo "$work/nowhere" >"$work/out" 2>&1; then
	fail "a read token ran gc"
else
	grep -q "missing permission to invoke 'DagstoreGC' (need 'admin')" "$work/out" &&
		ok "CAIRN_API_INFO with a read token: gc refused" || fail "gc refusal: $(cat "$work/out")"
fi
# a daemon whose token file is unreadable to the command: read only
mv "$repo/token" "$repo/token.away"
"$CAIRN" dagstore gc --repo "$repo" >"$work/out" 2>&1 && fail "gc without a token ran" ||
	{ grep -q "missing permission" "$work/out" && ok "no token file: the daemon refuses gc" || fail "$(cat "$work/out")"; }
mv "$repo/token.away" "$repo/token"

# a second daemon refuses
if "$CAIRN" serve --repo "$repo" --listen 127.0.0.1:0 >"$work/out" 2>"$work/err"; then
	fail "a second daemon started"
else
	grep -q "in use" "$work/err" && ok "second daemon refused: $(cat "$work/err")" || fail "second daemon: $(cat "$work/err")"
fi

# SIGTERM removes api and token
stop_daemon
[ ! -e "$repo/api" ] && [ ! -e "$repo/token" ] && ok "SIGTERM: api and token files removed" || fail "files left"

# without a daemon: create-token signs locally with the same secret
tok=$("$CAIRN" auth create-token --repo "$repo" --perm admin)
python3 - "$tok" "$repo/keystore/jwt-secret" <<'EOF' && ok "create-token (no daemon): admin, signed with the store's secret" || fail "local token"
import base64, hashlib, hmac, json, sys
tok, secret = sys.argv[1], open(sys.argv[2], "rb").read()
h, p, s = tok.split(".")
pad = lambda x: x + "=" * (-len(x) % 4)
assert hmac.compare_digest(base64.urlsafe_b64decode(pad(s)), hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest())
assert json.loads(base64.urlsafe_b64decode(pad(p))) == {"Allow": ["read", "write", "sign", "admin"]}
assert json.loads(base64.urlsafe_b64decode(pad(h)))["alg"] == "HS256"
EOF
"$CAIRN" auth api-info --repo "$repo" --perm read >"$work/out" 2>&1 && fail "api-info with no daemon" ||
	{ grep -q "no api file" "$work/out" && ok "api-info with no daemon: refused" || fail "api-info: $(cat "$work/out")"; }

# kill -9: api and token stay, the lock goes; commands open the store
start_daemon "$repo"
kill -9 "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
serve_pid=
[ -e "$repo/api" ] && ok "kill -9 leaves a stale api file" || fail "no stale api file"
if "$CAIRN" dagstore list-shards --repo "$repo" --log-level info >"$work/out" 2>"$work/err" &&
	grep -q '^s1 ' "$work/out" && ! grep -q "through the daemon" "$work/err"; then
	ok "stale api file ignored: the command opened the store"
else
	fail "stale api file: $(cat "$work/out" "$work/err")"
fi
start_daemon "$repo"
ok "a daemon starts again over the stale files"
stop_daemon

if [ "$fails" -gt 0 ]; then
	echo "$fails failures" >&2
	exit 1
fi
echo "all passed"
