"""Keep-alive HTTP/1.1 client: N GETs of PATH over one connection to HOST:PORT.

usage: ka_client.py HOST PORT N PATH [CONNS]
Packets per request come from the kernel's own TCP_INFO segment counters of the one connection
(segments out + in, minus the 3 of the handshake), so they are exact without a capture tool.
With CONNS, that many such connections are made one after the other (N GETs on each), and the
counts are summed over them. Each connection stays open until the next one's first response, so
a prefork server serves them from different workers.
"""
import socket
import sys
import time

from netutil import latency_fields, read_http_response, report, tcp_info

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conns = int(sys.argv[5]) if len(sys.argv) > 5 else 1
req = b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode()
lat, elapsed, segs = [], 0.0, 0
prev = None
for _ in range(conns):
    c = socket.create_connection((host, port))  # plain blocking socket; the harness bounds the run
    buf = b""
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        c.sendall(req)
        buf = read_http_response(c, buf)
        lat.append((time.perf_counter() - t) * 1000)
        if i == 0 and prev:
            # Closed only now, so that the worker serving it is still busy when this connection
            # arrives: a prefork server's next connection goes to another worker, whatever the
            # scheduling of the machine.
            prev.close()
            prev = None
    elapsed += time.perf_counter() - start
    time.sleep(0.25)  # let a last delayed ACK (40-200 ms) go out before counting
    segs_out, segs_in, _ = tcp_info(c)
    segs += segs_out + segs_in - 3
    prev = c
prev.close()
more = {"conns": conns} if conns > 1 else {}  # the harness adds packets_per_conn for conns
report(requests=n * conns, packets_per_request="%.2f" % (segs / (n * conns)), **more, **latency_fields(lat, elapsed))
