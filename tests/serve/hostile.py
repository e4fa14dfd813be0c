#!/usr/bin/env python3
"""hostile.py: hostile requests against a running `cairn serve`: oversized
paths and headers, bad escapes and path tricks, slowloris clients, many idle
connections, HEAD vs GET bodies on one connection, Range abuse, pipelined
requests, bodies that are never sent, garbage. After each group the server
must still answer /healthz within a second.

usage: hostile.py PORT ROOT_CID PIECE_CID TIMEOUT_S   (prints TAP-ish lines)
"""
import socket
import sys
import time

port, root, piece, timeout_s = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
fails = 0


def ok(msg):
    print("ok - " + msg, flush=True)


def fail(msg):
    global fails
    fails += 1
    print("FAIL - " + msg, file=sys.stderr, flush=True)


def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


class Reader:
    """Responses read one after another from one connection."""

    def __init__(self, s):
        self.s, self.buf = s, b""

    def more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("closed")
        self.buf += d

    def response(self, head=False):
        """(status, headers, body): by Content-Length or chunked; a HEAD
        response has no body whatever its headers say."""
        while b"\r\n\r\n" not in self.buf:
            self.more()
        hdr, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = hdr.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        h = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            h[k.strip().lower()] = v.strip()
        if head:
            return status, h, b""
        if "content-length" in h:
            n = int(h["content-length"])
            while len(self.buf) < n:
                self.more()
            body, self.buf = self.buf[:n], self.buf[n:]
            return status, h, body
        if h.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self.more()
                line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self.more()
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    return status, h, body
        body = self.buf
        while True:
            d = self.s.recv(65536)
            if not d:
                return status, h, body
            body += d


def request(raw, head=False):
    s = conn()
    try:
        s.sendall(raw)
        return Reader(s).response(head)
    finally:
        s.close()


def get(path, extra=b""):
    return request(b"GET " + path.encode("latin-1") + b" HTTP/1.1\r\nHost: x\r\n" + extra +
                   b"Connection: close\r\n\r\n")


def healthy(what, limit=1.0):
    t = time.time()
    try:
        st, _, body = get("/healthz")
        dt = time.time() - t
        if st == 200 and body == b"ok\n" and dt < limit:
            ok("after %s: /healthz in %.0f ms" % (what, dt * 1000))
        else:
            fail("after %s: /healthz %d in %.2f s" % (what, st, dt))
    except Exception as e:  # noqa: BLE001
        fail("after %s: /healthz: %s" % (what, e))


def expect(name, got, want):
    if got in want:
        ok("%s: %d" % (name, got))
    else:
        fail("%s: got %d, want %s" % (name, got, want))


# -------------------------------------------------- oversized and malformed
def status_of(raw):
    try:
        return request(raw)[0]
    except EOFError:
        return 0  # closed without an answer: refused too


expect("path of 40,000 bytes", status_of(
    b"GET /ipfs/" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"), (414, 431, 400, 0))
expect("header of 40,000 bytes", status_of(
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 40000 + b"\r\n\r\n"), (431, 400, 0))
expect("2,000 headers", status_of(
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(2000)) +
    b"\r\n"), (431, 400, 0))
expect("64 segments deep path", get("/ipfs/%s/%s?format=car" % (root, "/".join(["a"] * 64)))[0], (404,))
expect("65 segments", get("/ipfs/%s/%s?format=car" % (root, "/".join(["a"] * 65)))[0], (400,))
for bad in ["%zz", "%", "%0", "%00", "%%", "%2e%2e", "%2E", "a%00b", "%0d%0a", "%7f"]:
    expect("bad escape or trick %r" % bad,
           get("/ipfs/%s/%s?format=raw" % (root, bad))[0], (400,))
expect("raw newline in the path", status_of(
    b"GET /ipfs/" + root.encode() + b"/a\nb HTTP/1.1\r\nHost: x\r\n\r\n"), (400, 0))
expect("/ipfs/../../etc/passwd", get("/ipfs/../../etc/passwd")[0], (400,))
expect("/ipfs//", get("/ipfs//")[0], (400,))
expect("a CID of 5,000 characters", get("/ipfs/b" + "a" * 5000 + "?format=raw")[0], (400,))
expect("query of 20,000 bytes", get("/ipfs/%s?format=raw&x=%s" % (root, "q" * 20000))[0], (200, 414, 431))
expect("garbage request line", status_of(b"\x00\x01\x02 garbage\r\n\r\n"), (400, 0))
expect("HTTP/9.9", status_of(b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"), (505, 400, 0))
# RFC 9112 wants 400; libmicrohttpd 0.9.75 answers: either is harmless
expect("no Host (HTTP/1.1)", status_of(b"GET /healthz HTTP/1.1\r\n\r\n"), (400, 200))
healthy("oversized and malformed requests")

# ------------------------------------------------------- bodies not sent
s = conn()
s.sendall(b"PUT /ipfs/" + root.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n")
try:
    expect("PUT announcing 10 GB, body never sent", Reader(s).response()[0], (405, 413))
except EOFError:
    ok("PUT announcing 10 GB: closed")
s.close()
healthy("an announced body")

# ------------------------------------------------------------ Range abuse
for rng in [b"bytes=" + b",".join([b"0-0"] * 2000), b"bytes=99999999999999999999999-",
            b"bytes=-0", b"bytes=--1", b"bytes=5-1", b"bytes=-99999999999999999999",
            b"bytes=0-0," * 3000, b"items=0-1", b"bytes=\xff\xfe"]:
    st = status_of(b"GET /piece/" + piece.encode() + b" HTTP/1.1\r\nHost: x\r\nRange: " + rng +
                   b"\r\nConnection: close\r\n\r\n")
    expect("Range %r" % rng[:40], st, (200, 206, 416, 431))
healthy("Range abuse")

# ------------------------------------------------- HEAD vs GET, pipelined
# HEAD and GET of each route: a HEAD's answer has the GET's headers and
# no body (nothing arrives after its headers before libmicrohttpd closes the
# connection, which it does after a HEAD), the GET's body matches its
# Content-Length.
for p in ["/healthz", "/ipfs/%s?format=raw" % root, "/ipfs/%s?format=car" % root,
          "/piece/%s" % piece, "/metrics"]:
    try:
        s = conn()
        s.sendall(b"HEAD " + p.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        rd = Reader(s)
        st1, h1, _ = rd.response(head=True)
        s.settimeout(1)
        try:
            while True:
                rd.more()
        except (socket.timeout, EOFError):
            pass
        leaked = len(rd.buf)
        s.close()
        st2, h2, body = get(p)
        # (the metrics change between the two requests)
        same = h1.get("content-length") == h2.get("content-length") or p == "/metrics"
        if st1 == st2 == 200 and leaked == 0 and same:
            ok("HEAD and GET %s: no HEAD body, GET %d bytes, same length" % (p, len(body)))
        else:
            fail("HEAD and GET %s: %s %s, %d bytes after HEAD, lengths %s %s" % (
                p, st1, st2, leaked, h1.get("content-length"), h2.get("content-length")))
    except Exception as e:  # noqa: BLE001
        fail("HEAD and GET %s: %s" % (p, e))
# 100 GETs in one write: libmicrohttpd answers what it has parsed and then
# closes (Connection: close) rather than queueing pipelined requests, which
# HTTP/1.1 allows; the answers given must be whole and in order, and the
# connection must end cleanly, not hang.
s = conn()
s.sendall(b"".join(b"GET /ipfs/%s?format=raw HTTP/1.1\r\nHost: x\r\n\r\n" % root.encode()
                   for _ in range(100)))
rd = Reader(s)
n = 0
try:
    while n < 100:
        st, h, body = rd.response()
        if st != 200:
            break
        n += 1
        if h.get("connection", "").lower() == "close":
            break
    (ok if n >= 1 else fail)("100 pipelined GETs: %d whole answers, then a clean close" % n)
except EOFError:
    (ok if n >= 1 else fail)("100 pipelined GETs: %d whole answers, then closed" % n)
except Exception as e:  # noqa: BLE001
    fail("100 pipelined GETs: %s" % e)
s.close()
healthy("pipelining")

# ------------------------------------------------- slowloris, idle sockets
# 50 clients sending their headers a byte a second, 200 connections that
# send nothing: the server answers others at once meanwhile, and closes the
# idle ones after its idle timeout.
slow = [conn() for _ in range(50)]
idle = [conn() for _ in range(200)]
line = b"GET /ipfs/%s?format=raw HTTP/1.1\r\nHost: x\r\n" % root.encode()
for i in range(4):
    for c in slow:
        try:
            c.sendall(line[i:i + 1])
        except OSError:
            pass
    healthy("%d s of 50 slowloris and 200 idle connections" % (i + 1))
    time.sleep(1)
time.sleep(timeout_s + 2)
closed = 0
for c in idle:
    c.settimeout(2)
    try:
        if c.recv(1) == b"":
            closed += 1
    except OSError:
        closed += 1
(ok if closed == len(idle) else fail)("idle connections closed after the %d s timeout: %d of %d" %
                                      (timeout_s, closed, len(idle)))
for c in slow + idle:
    c.close()
healthy("slowloris and idle connections")

# ---------------------------------------- more connections than allowed
many = []
refused = 0
for _ in range(300):
    try:
        many.append(conn())
    except OSError:
        refused += 1
time.sleep(0.5)
for c in many:
    c.close()
time.sleep(0.5)
ok("300 connections at once (limit 256): %d opened, %d refused" % (len(many), refused))
# the refused ones wait in the kernel's backlog until libmicrohttpd, back
# under its limit, accepts and drops them: /healthz queues behind them
healthy("a burst over the connection limit", 5.0)

sys.exit(1 if fails else 0)
