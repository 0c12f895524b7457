"""Plain HTTP client (sets no socket option): N GETs of PATH, each checked byte for byte.

usage: py_client.py HOST PORT N PATH EXPECTED_FILE [SECONDS]
With SECONDS it stops early, after the first request that ends past SECONDS of measuring.
It keeps the connection open while the server allows it (HTTP/1.1 without "Connection: close")
and reconnects otherwise, so it measures keep-alive servers and one-request-per-connection
servers alike. One unmeasured warm-up request first (workers booting, Fast Open cookie).
With BENCH_TURNS it measures in turns with a twin (common.Turns).
Latency is from the request's send (or its connect(), on a new connection) to the response's
last byte. Prints requests_total (warm-up included, for packet counts), conns, syn_data
(connections whose request rode in the SYN, from the namespace's TCPFastOpenActive counter).
"""
import socket
import sys
import time

from common import Turns, summary, tcpext

host, port, n, path, expected_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
seconds = float(sys.argv[6]) if len(sys.argv) > 6 else float("inf")
with open(expected_file, "rb") as f:
    expected = f.read()
request = b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode())


def fail(msg):
    sys.exit("py_client: " + msg)


def read_response(c, buf):
    """One Content-Length framed response; returns (body, keep_alive, the bytes after it)."""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            fail("server closed before a full header (%d bytes)" % len(buf))
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.") or lines[0].split()[1] != b"200":
        fail("unexpected status line %r" % lines[0])
    headers = dict((k.strip().lower(), v.strip().lower()) for k, _, v in (l.partition(b":") for l in lines[1:]))
    if b"content-length" not in headers:
        fail("no Content-Length")
    length = int(headers[b"content-length"])
    while len(rest) < length:
        d = c.recv(65536)
        if not d:
            fail("server closed mid-body")
        rest += d
    keep = lines[0].startswith(b"HTTP/1.1") and headers.get(b"connection") != b"close"
    return rest[:length], keep, rest[length:]


def main():
    tfo0 = tcpext("TCPFastOpenActive")
    lat, conns, c, buf = [], 0, None, b""
    turns = Turns()
    for i in range(n + 1):
        if i == 1:
            turns.start()
        if i and not turns.go():
            break
        t = time.perf_counter()
        if c is None:
            c = socket.create_connection((host, port), timeout=30)
            conns += 1
        c.sendall(request)
        body, keep, buf = read_response(c, buf)
        if body != expected:
            fail("body differs from %s (%d bytes, want %d)" % (expected_file, len(body), len(expected)))
        if not keep:
            c.close()
            c, buf = None, b""
        if i:
            lat.append((time.perf_counter() - t) * 1000)
            turns.done_op()
            if turns.measured() > seconds:
                break
    elapsed = turns.stop()
    if not lat:
        fail("its twin stopped before it measured anything")
    if c is not None:
        c.close()
    summary(lat, elapsed, requests=len(lat), requests_total=len(lat) + 1, conns=conns,
            syn_data=tcpext("TCPFastOpenActive") - tfo0)

main()
