"""Keep-alive client of tests/progs/sized_server.py: every size REPEATS times, byte-exact.

usage: sized_client.py HOST PORT REPEATS
Sizes: 1 B; 1448, 1460 and 1461 (Ethernet payloads around a real MSS); the server's send MSS (its header
tells it; read after a 300 KiB warm-up response) and one more; loopback's full MSS, 65483, and
one more (the MSS grows to it from 32768 as the receive window grows); 64 KiB;
300 KiB. Each body is compared with netutil.body_bytes.
Reports the sizes, and per size the median time per response (p50_<size>) and the segments the client
received per response (segs_<size>, from its TCP_INFO), plus mss, requests and errors.
"""
import socket
import statistics
import sys
import time

from netutil import body_bytes, fail, report, tcp_info

host, port, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
want = body_bytes()
c = socket.create_connection((host, port))
stream = c.makefile("rb")


def fetch(size):
    """The body of one response, and the server's MSS from its header."""
    c.sendall(b"%d\n" % size)
    head = stream.readline().split()
    if head[:2] != [b"LEN", b"%d" % size] or stream.readline() != b"\r\n":
        fail("bad header for size %d: %r" % (size, head))
    return stream.read(size), int(head[3])


got, mss = fetch(307200)
errors = got != want
sizes = sorted({1, 1448, 1460, 1461, mss, mss + 1, 65483, 65484, 65536, 307200})
lat = {size: [] for size in sizes}
segs = {size: 0 for size in sizes}
for _ in range(repeats):
    for size in sizes:
        segs_before = tcp_info(c)[1]
        t = time.perf_counter()
        got, _ = fetch(size)
        lat[size].append((time.perf_counter() - t) * 1000)
        segs[size] += tcp_info(c)[1] - segs_before
        errors += got != want[:size]
fields = {"sizes": ",".join(map(str, sizes)), "mss": mss, "requests": repeats * len(sizes), "errors": errors}
for size in sizes:
    fields["p50_%d" % size] = "%.3f" % statistics.median(lat[size])
    fields["segs_%d" % size] = "%.2f" % (segs[size] / repeats)
report(**fields)
