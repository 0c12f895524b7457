"""Helpers shared by the plain test programs.

These programs stand for *unmodified* applications, so nothing here sets a socket option.
Reading one back (getsockopt, TCP_INFO) is allowed: it observes, it does not tune.
"""
import socket
import struct
import sys

TCPI_OPT_SYN_DATA = 32  # tcpi_options bit: the SYN carried data and the peer acked it
GREETING = b"220 socktune greeting\r\n"  # what the server-speaks-first programs send


def tcp_info(sock):
    """(segs_out, segs_in, options) from the kernel's struct tcp_info (offsets 136, 140, 5)."""
    b = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
    segs_out, segs_in = struct.unpack_from("II", b, 136)
    return segs_out, segs_in, b[5]


def syn_data(sock):
    """1 if this connection's first data rode in the SYN (TCP Fast Open), else 0."""
    return 1 if tcp_info(sock)[2] & TCPI_OPT_SYN_DATA else 0


def body_bytes(size=307200):
    """Seeded pseudo-random bytes: a lost, repeated or moved chunk shows in a comparison."""
    import random
    return random.Random(7).randbytes(size)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connections(host, port):
    """Listens on HOST:PORT and yields each accepted connection with a reader of its input, one
    connection at a time, closing both when the caller moves on."""
    s = socket.socket(family_of(host))
    s.bind((host, port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        with c, c.makefile("rb") as requests:
            yield c, requests


def recv_until_close(sock):
    got = b""
    while True:
        d = sock.recv(65536)
        if not d:
            return got
        got += d


def read_line(sock):
    """Blocking read up to and including the first newline."""
    got = b""
    while b"\n" not in got:
        d = sock.recv(4096)
        if not d:
            fail("peer closed before a full line: %r" % got)
        got += d
    return got


def read_http_response(sock, buf):
    """Read one Content-Length framed response; return the bytes that follow it."""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            fail("server closed the connection")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    check_status(head)
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(rest) < n:
        d = sock.recv(65536)
        if not d:
            fail("server closed mid-body")
        rest += d
    return rest[n:]


def check_status(resp):
    if not resp.startswith(b"HTTP/1.") or resp.split(b" ", 2)[1] != b"200":
        fail("unexpected response: %r" % resp[:80])


def latency_fields(lat_ms, elapsed_s):
    """p50/p99 (ms) and request rate for a list of per-request latencies."""
    s = sorted(lat_ms)
    return {
        "p50_ms": "%.3f" % s[len(s) // 2],
        "p99_ms": "%.3f" % s[min(len(s) - 1, int(len(s) * 0.99))],
        "req_s": "%.1f" % (len(s) / elapsed_s),
    }


def report(**fields):
    """One line of key=value pairs on stdout: the harness merges them into its result."""
    print(" ".join("%s=%s" % kv for kv in fields.items()), flush=True)


def fail(msg):
    print("error: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)
