#!/usr/bin/env python3
"""rpc_client.py: the JSON-RPC side of `cairn serve` checked from outside
with the standard library only: HTTP calls with every kind of token for
every method, the JSON-RPC errors, hostile bodies, and a small RFC 6455
client for the WebSocket (framing, pings, fragments, bad frames, and
Filecoin.DagstoreInitializeAll streamed as go-jsonrpc channels).

usage: rpc_client.py PORT SECRET_FILE TOKEN_FILE CID_IN_S1 S_NEW_URL
Prints "ok - ..." / "FAIL - ..." lines; exits 1 on any failure.
"""
import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time
import urllib.error
import urllib.request

PORT = int(sys.argv[1])
SECRET = open(sys.argv[2], "rb").read()
ADMIN = open(sys.argv[3]).read().strip()
CID = sys.argv[4]
NEW_URL = sys.argv[5]
BASE = "http://127.0.0.1:%d/rpc/v0" % PORT
fails = 0


def ok(cond, name):
    global fails
    if cond:
        print("ok - " + name)
    else:
        fails += 1
        print("FAIL - " + name, file=sys.stderr)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(payload, secret=SECRET, header=None):
    h = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64u(json.dumps(payload).encode())
    mac = hmac.new(secret, (h + "." + p).encode(), hashlib.sha256).digest()
    return h + "." + p + "." + b64u(mac)


LEVELS = ["read", "write", "sign", "admin"]
TOKENS = {lvl: jwt({"Allow": LEVELS[: i + 1]}) for i, lvl in enumerate(LEVELS)}


def post(body, token=None, raw=False, headers=None):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(BASE, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if raw:
        return status, text
    return status, (json.loads(text) if text else None)


def call(method, params, token=None):
    return post({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}, token)


# Every method with params that are harmless when the call is allowed.
METHODS = [
    ("Filecoin.Version", [], "read"),
    ("Filecoin.AuthVerify", [TOKENS["read"]], "read"),
    ("Filecoin.AuthNew", [["read"]], "admin"),
    ("Filecoin.DagstoreListShards", [], "read"),
    ("Filecoin.DagstoreRegisterShard", ["nope-lotus"], "admin"),
    ("Filecoin.DagstoreInitializeShard", ["nope"], "write"),
    ("Filecoin.DagstoreRecoverShard", ["nope"], "write"),
    ("Filecoin.DagstoreGC", [], "admin"),
    ("Filecoin.DagstoreLookupPieces", [{"/": CID}], "admin"),
    ("Cairn.DagstoreListShards", [], "read"),
    ("Cairn.DagstoreShardInfo", ["s1"], "read"),
    ("Cairn.DagstoreGetBlock", [{"/": CID}], "read"),
    ("Cairn.DagstoreLookupPieces", [{"/": CID}], "admin"),
    ("Cairn.DagstoreRegisterShard", ["never-1", "file:///nonexistent.car"], "admin"),
    ("Cairn.DagstoreImportDeals", [[{"Key": "never-2", "URL": "file:///nonexistent.car"}]], "admin"),
    ("Cairn.DagstoreInitializeShard", ["nope"], "write"),
    ("Cairn.DagstoreRecoverShard", ["nope"], "write"),
    ("Cairn.DagstoreInitializeAll", [1], "write"),
    ("Cairn.DagstoreDestroyShard", ["nope"], "admin"),
    ("Cairn.DagstoreGC", [], "admin"),
]

now = int(time.time())
BAD = {
    "forged": jwt({"Allow": LEVELS}, secret=b"x" * 32),
    "expired": jwt({"Allow": LEVELS, "exp": now - 10}),
    "alg none": b64u(b'{"alg":"none","typ":"JWT"}') + "." + b64u(json.dumps({"Allow": LEVELS}).encode()) + ".",
    "malformed": "not-a-token",
    "two parts": "abc.def",
    "bad base64": "a!b.c!d.e!f",
    "not json": b64u(b"{") + "." + b64u(b"[") + ".",
    "tampered": TOKENS["read"][:-30] + jwt({"Allow": LEVELS})[-30:],
}
# the tampered one: the payload of an admin token under a read token's MAC
h, p, s = TOKENS["admin"].split(".")
BAD["payload swapped"] = h + "." + p + "." + TOKENS["read"].split(".")[2]


def is_perm_error(resp, method):
    e = resp and resp.get("error")
    short = method.split(".", 1)[1]
    return bool(e) and e.get("code") == 1 and ("missing permission to invoke '%s'" % short) in e.get("message", "")


# --- the matrix: every method x every kind of token
for method, params, need in METHODS:
    for name, tok in BAD.items():
        st, r = call(method, params, tok)
        ok(st == 401 and r and "result" not in r and r["error"]["code"] == -32001,
           "%s with a %s token: 401, no result" % (method, name))
    st, r = call(method, params, None)
    if need == "read":
        ok(st == 200 and not is_perm_error(r, method), "%s without a token: allowed (read)" % method)
    else:
        ok(st == 200 and is_perm_error(r, method) and "need '%s'" % need in r["error"]["message"],
           "%s without a token: refused (needs %s)" % (method, need))
    for lvl in LEVELS:
        st, r = call(method, params, TOKENS[lvl])
        allowed = LEVELS.index(lvl) >= LEVELS.index(need)
        if allowed:
            ok(st == 200 and not is_perm_error(r, method), "%s with %s: allowed" % (method, lvl))
        else:
            ok(st == 200 and is_perm_error(r, method), "%s with %s: refused" % (method, lvl))
    # go-jsonrpc's rule: a token lists its permissions; "admin" alone is not "read"
    st, r = call(method, params, jwt({"Allow": [need]}))
    ok(st == 200 and not is_perm_error(r, method), "%s with exactly [%s]" % (method, need))
    other = [x for x in LEVELS if x != need]
    st, r = call(method, params, jwt({"Allow": other}))
    ok(st == 200 and is_perm_error(r, method), "%s with every permission but %s: refused" % (method, need))

# --- never the action
st, r = call("Cairn.DagstoreDestroyShard", ["s1"], BAD["forged"])
st2, r2 = call("Cairn.DagstoreShardInfo", ["s1"])
ok(st == 401 and r2.get("result", {}).get("Key") == "s1", "forged destroy: s1 still there")
st, r = call("Cairn.DagstoreDestroyShard", ["s1"], TOKENS["write"])
st2, r2 = call("Cairn.DagstoreShardInfo", ["s1"])
ok(is_perm_error(r, "Cairn.DagstoreDestroyShard") and "result" in r2, "write-token destroy: s1 still there")
call("Cairn.DagstoreRegisterShard", ["forged-1", NEW_URL], BAD["expired"])
call("Cairn.DagstoreRegisterShard", ["forged-2", NEW_URL], TOKENS["write"])
call("Cairn.DagstoreImportDeals", [[{"Key": "forged-3", "URL": NEW_URL}]], None)
st, r = call("Cairn.DagstoreListShards", [])
keys = [x["Key"] for x in r["result"]]
ok(not any(k.startswith("forged") for k in keys), "refused registrations registered nothing")
ok("never-1" in keys and "never-2" in keys, "allowed registrations registered (admin)")
st, r = call("Filecoin.AuthNew", [["read", "write"]], TOKENS["sign"])
ok(is_perm_error(r, "Filecoin.AuthNew"), "AuthNew with sign: no token minted")

# --- tokens: AuthNew, AuthVerify, exp, ?token=
st, r = call("Filecoin.AuthNew", [["read", "write"]], ADMIN)
minted = base64.b64decode(r["result"]).decode()
st, r = call("Filecoin.AuthVerify", [minted])
ok(r.get("result") == ["read", "write"], "AuthNew then AuthVerify: [read, write]")
st, r = call("Filecoin.AuthVerify", [BAD["forged"]])
ok("error" in r and "signature" in r["error"]["message"], "AuthVerify of a forged token: an error")
st, r = call("Cairn.DagstoreGC", [], jwt({"Allow": ["admin"], "exp": now + 3600}))
ok("result" in r, "a token expiring in an hour works")
st, r = post({"jsonrpc": "2.0", "id": 1, "method": "Cairn.DagstoreGC", "params": []},
             headers={"Authorization": "Token " + ADMIN})
ok(st == 401, "Authorization without 'Bearer ': 401")
req = urllib.request.Request(BASE + "?token=" + TOKENS["admin"], method="POST",
                             data=b'{"jsonrpc":"2.0","id":1,"method":"Cairn.DagstoreGC","params":[]}')
with urllib.request.urlopen(req) as resp:
    ok("result" in json.loads(resp.read()), "?token= on POST, as go-jsonrpc's auth handler reads it")

# --- shapes
st, r = call("Filecoin.Version", [])
ok(set(r["result"]) == {"Version", "APIVersion", "BlockDelay"}, "Version: Lotus's shape")
st, r = call("Filecoin.DagstoreListShards", [])
ok(all(set(x) == {"Key", "State", "Error"} and x["State"].startswith("ShardState") for x in r["result"]),
   "DagstoreListShards: [{Key, State, Error}] with ShardState names")
st, r = call("Filecoin.DagstoreLookupPieces", [{"/": CID}], ADMIN)
ok("s1" in [x["Key"] for x in r["result"]], "DagstoreLookupPieces: the shards holding the CID")
st, r = call("Cairn.DagstoreGetBlock", [CID])
ok(r["result"]["Key"] == "s1" and len(base64.b64decode(r["result"]["Data"])) > 0, "GetBlock: base64 data")
st, r = call("Filecoin.DagstoreRecoverShard", ["s1"], ADMIN)
ok("cannot recover shard; expected state ShardStateErrored, was: ShardStateAvailable" in r["error"]["message"],
   "DagstoreRecoverShard of an Available shard: Lotus's message")
st, r = call("Filecoin.DagstoreGC", [], ADMIN)
ok(r.get("result") == [], "DagstoreGC: a list")

# --- JSON-RPC errors
def err_code(st_r):
    st, r = st_r
    return r["error"]["code"] if r and "error" in r else None

ok(err_code(post(b"{not json")) == -32700, "bad JSON: -32700")
ok(err_code(post(b"")) == -32700, "empty body: -32700")
ok(err_code(post({"id": 1, "method": "Filecoin.Version", "params": []})) == -32600, "no jsonrpc: -32600")
ok(err_code(post({"jsonrpc": "2.0", "id": 1, "method": 5})) == -32600, "method not a string: -32600")
ok(err_code(post({"jsonrpc": "2.0", "id": {"a": 1}, "method": "Filecoin.Version"})) == -32600, "id an object: -32600")
st, r = call("Filecoin.Nope", [])
ok(r["error"]["code"] == -32601 and r["error"]["message"] == "method 'Filecoin.Nope' not found", "unknown method: -32601")
st, r = call("Filecoin.Version", [1])
ok(r["error"]["code"] == -32602 and "wrong param count (method 'Filecoin.Version'): 1 != 0" in r["error"]["message"],
   "wrong param count: -32602, go-jsonrpc's message")
st, r = call("Cairn.DagstoreShardInfo", [5])
ok(r["error"]["code"] == -32602, "a number for a string: -32602")
st, r = post({"jsonrpc": "2.0", "id": 1, "method": "Filecoin.Version", "params": {"a": 1}})
ok(r["error"]["code"] == -32602, "params by name: -32602")
st, r = post({"jsonrpc": "2.0", "id": "abc", "method": "Filecoin.Version", "params": []})
ok(r["id"] == "abc", "a string id comes back")
st, r = call("Filecoin.DagstoreInitializeAll", [{"MaxConcurrency": 1, "IncludeSealed": False}], ADMIN)
ok(r["error"]["code"] == -32601 and "not supported in this mode" in r["error"]["message"],
   "InitializeAll over plain HTTP: go-jsonrpc's 'no out channel support'")
st, r = post([{"jsonrpc": "2.0", "id": 1, "method": "Filecoin.Version", "params": []},
              {"jsonrpc": "2.0", "method": "Filecoin.Version", "params": []},
              {"jsonrpc": "2.0", "id": 3, "method": "Nope", "params": []}])
ok(isinstance(r, list) and [x["id"] for x in r] == [1, 3] and "result" in r[0] and "error" in r[1],
   "a batch: answers in order, none for the notification")
st, r = post([])
ok(r["error"]["code"] == -32600, "an empty batch: -32600")
st, text = post(b'{"jsonrpc":"2.0","method":"Filecoin.Version","params":[]}', raw=True)
ok(st == 200 and text == b"", "a notification: no answer")
st, r = post(b"[" * 5000 + b"]" * 5000)
ok(err_code((st, r)) == -32700, "JSON nested 5000 deep: a parse error")
def raw_http(req_bytes):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    try:
        s.sendall(req_bytes)
    except (BrokenPipeError, ConnectionResetError):
        pass
    resp = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            resp += chunk
            if b"\r\n\r\n" in resp:
                break
    except ConnectionResetError:
        pass
    s.close()
    return int(resp.split()[1]) if resp else 0

ok(raw_http(b"POST /rpc/v0 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % ((1 << 20) + 2)) == 413,
   "Content-Length over 1 MiB: 413 before the body")
chunk = b" " * 65536
body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17)) + b"0\r\n\r\n"
ok(raw_http(b"POST /rpc/v0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body) == 413,
   "a chunked body over 1 MiB: 413")
st, r = call("Filecoin.Version", [])
ok("result" in r, "still serving")

# --------------------------------------------------------------- websocket
def ws_connect(path="/rpc/v0", headers=None):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % PORT, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk:
            break
        resp += chunk
    head, _, rest = resp.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    accept = [l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-accept:")]
    return s, status, rest, (accept == [want])


def frame(op, payload, fin=True, mask=True, length_override=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload) if length_override is None else length_override
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    m = os.urandom(4)
    return hdr + m + bytes(c ^ m[i % 4] for i, c in enumerate(payload))


class WS:
    def __init__(self, sock, rest):
        self.s, self.buf = sock, rest

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read(self):
        self._need(2)
        op, n = self.buf[0] & 15, self.buf[1] & 127
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack("!H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n)
        data, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return op, data

    def send(self, op, payload, **kw):
        self.s.sendall(frame(op, payload, **kw))

    def rpc(self, obj):
        self.send(1, json.dumps(obj).encode())
        op, data = self.read()
        return json.loads(data)


s, st, rest, accept_ok = ws_connect()
ok(st == 101 and accept_ok, "websocket handshake: 101 with the right Sec-WebSocket-Accept")
w = WS(s, rest)
r = w.rpc({"jsonrpc": "2.0", "id": 1, "method": "Filecoin.Version", "params": []})
ok(r.get("id") == 1 and "result" in r, "Version over the websocket")
r = w.rpc({"jsonrpc": "2.0", "id": 2, "method": "Cairn.DagstoreGC", "params": []})
ok(is_perm_error(r, "Cairn.DagstoreGC"), "a tokenless websocket: read only")
w.send(9, b"hello")
op, data = w.read()
ok(op == 10 and data == b"hello", "ping: pong with the same payload")
msg = json.dumps({"jsonrpc": "2.0", "id": 3, "method": "Filecoin.Version", "params": []}).encode()
w.send(1, msg[:10], fin=False)
w.send(9, b"mid")  # a control frame between fragments
w.send(0, msg[10:20], fin=False)
w.send(0, msg[20:])
op, data = w.read()
ok(op == 10 and data == b"mid", "ping between fragments answered")
op, data = w.read()
ok(op == 1 and json.loads(data).get("id") == 3, "a fragmented message reassembled")
w.send(1, b"{bad")
op, data = w.read()
ok(json.loads(data)["error"]["code"] == -32700, "bad JSON over the websocket: -32700")
w.send(8, struct.pack("!H", 1000))
op, data = w.read()
ok(op == 8 and data[:2] == struct.pack("!H", 1000), "close: echoed")
s.close()

for name, hdrs, path in [("forged bearer", {"Authorization": "Bearer " + BAD["forged"]}, "/rpc/v0"),
                         ("expired ?token=", {}, "/rpc/v0?token=" + BAD["expired"]),
                         ("malformed ?token=", {}, "/rpc/v0?token=abc")]:
    s, st, rest, _ = ws_connect(path, hdrs)
    ok(st == 401, "websocket upgrade with a %s: 401" % name)
    s.close()

def ws_close_code(payload_frames):
    s, st, rest, _ = ws_connect()
    w = WS(s, rest)
    try:
        for f in payload_frames:
            s.sendall(f)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        op, data = w.read()
    except (EOFError, ConnectionResetError):
        return None
    s.close()
    return struct.unpack("!H", data[:2])[0] if op == 8 and len(data) >= 2 else None

ok(ws_close_code([frame(1, b"{}", mask=False)]) == 1002, "an unmasked frame: close 1002")
ok(ws_close_code([bytes([0xC1]) + frame(1, b"{}")[1:]]) == 1002, "reserved bits: close 1002")
ok(ws_close_code([struct.pack("!BBH", 0x81, 0x80 | 126, 5) + b"mask" + b"hello"]) == 1002,
   "a length not in its shortest form: close 1002")
ok(ws_close_code([frame(9, b"x" * 126, length_override=None)]) == 1002, "a ping over 125 bytes: close 1002")
ok(ws_close_code([frame(1, b"", length_override=(1 << 20) + 1)]) == 1009, "a frame over 1 MiB: close 1009")
ok(ws_close_code([frame(1, b"a" * 700000, fin=False), frame(0, b"a" * 400000)]) == 1009, "a message over 1 MiB in fragments: close 1009")
ok(ws_close_code([frame(2, b"\x00")]) == 1003, "a binary message: close 1003")
ok(ws_close_code([frame(0, b"x")]) == 1002, "a continuation with no message: close 1002")

# --- DagstoreInitializeAll streamed: register two New shards, then stream
for k in ("stream-1", "stream-2"):
    st, r = call("Cairn.DagstoreRegisterShard", [k, NEW_URL], ADMIN)
s, st, rest, _ = ws_connect("/rpc/v0?token=" + TOKENS["write"])
w = WS(s, rest)
w.send(1, json.dumps({"jsonrpc": "2.0", "id": 9, "method": "Filecoin.DagstoreInitializeAll",
                      "params": [{"MaxConcurrency": 1, "IncludeSealed": False}]}).encode())
op, data = w.read()
first = json.loads(data)
chan = first.get("result")
ok(first.get("id") == 9 and isinstance(chan, int), "InitializeAll: answered with a channel id")
events = []
while True:
    op, data = w.read()
    m = json.loads(data)
    if m.get("method") == "xrpc.ch.close":
        ok(m["params"] == [chan], "xrpc.ch.close for the channel")
        break
    ok(m.get("method") == "xrpc.ch.val" and m["params"][0] == chan, "xrpc.ch.val on the channel")
    events.append(m["params"][1])
new_keys = sorted({e["Key"] for e in events})
ok(new_keys == sorted(set(new_keys) | {"stream-1", "stream-2"}) and "stream-1" in new_keys and "stream-2" in new_keys,
   "the New shards streamed: %s" % new_keys)
for k in ("stream-1", "stream-2"):
    evs = [e for e in events if e["Key"] == k]
    ok([e["Event"] for e in evs] == ["start", "end"] and evs[1]["Success"] is True and evs[1]["Error"] == ""
       and evs[0]["Total"] == len(new_keys) and evs[0]["Current"] == evs[1]["Current"] >= 1,
       "%s: start then end, Success, Total and Current" % k)
ok(all(set(e) == {"Key", "Event", "Success", "Error", "Total", "Current"} for e in events),
   "events have Lotus's DagstoreInitializeAllEvent fields")
r = w.rpc({"jsonrpc": "2.0", "id": 10, "method": "Cairn.DagstoreShardInfo", "params": ["stream-2"]})
ok(r["result"]["State"] == "Available", "after the stream: the shard is Available")
s.close()
st, r = call("Filecoin.Version", [])
ok("result" in r, "still serving after the websockets")

print("rpc_client: %d failures" % fails)
sys.exit(1 if fails else 0)
