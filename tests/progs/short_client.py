"""N short HTTP/1.0 connections: connect, send the request, read until the server closes, close.

usage: short_client.py HOST PORT N PATH
Reports latency and, per connection, whether the request rode in the SYN (TCPI_OPT_SYN_DATA), as a
string of 0/1 flags. Packets are not counted here: a connection's last FIN/ACK exchange happens
after close(), where TCP_INFO can no longer be read. The harness counts them exactly instead, from
the private namespace's own TCP counters (see netns.py).
"""
import socket
import sys
import time

from netutil import check_status, latency_fields, recv_until_close, report, syn_data

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
req = b"GET %s HTTP/1.0\r\n\r\n" % path.encode()
flags, lat = [], []
start = time.perf_counter()
for _ in range(n):
    t = time.perf_counter()
    c = socket.create_connection((host, port))
    c.sendall(req)
    check_status(recv_until_close(c))
    flags.append(str(syn_data(c)))  # read while the socket is still open
    c.close()
    lat.append((time.perf_counter() - t) * 1000)
report(conns=n, syn_data="".join(flags), **latency_fields(lat, time.perf_counter() - start))
