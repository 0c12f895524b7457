"""Keep-alive HTTP/1.1 client: N GETs of PATH over one connection to HOST:PORT.

usage: ka_client.py HOST PORT N PATH
Packets per request come from the kernel's own TCP_INFO segment counters of the one connection
(segments out + in, minus the 3 of the handshake), so they are exact without a capture tool.
"""
import socket
import sys
import time

from netutil import latency_fields, read_http_response, report, tcp_info

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
c = socket.create_connection((host, port))  # plain blocking socket; the harness bounds the run
req = b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path.encode()
buf, lat = b"", []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    c.sendall(req)
    buf = read_http_response(c, buf)
    lat.append((time.perf_counter() - t) * 1000)
elapsed = time.perf_counter() - start
time.sleep(0.25)  # let a last delayed ACK (40-200 ms) go out before counting
segs_out, segs_in, _ = tcp_info(c)
c.close()
report(requests=n, packets_per_request="%.2f" % ((segs_out + segs_in - 3) / n), **latency_fields(lat, elapsed))
