"""Client of inetd_server.py: CONNS connections, each asking for a SIZE-byte body.

usage: inetd_client.py HOST PORT CONNS SIZE
Checks the status line, the child's two lines and the body byte for byte, up to the close.
Reports conns, errors, preloaded (connections whose child had libsocktune loaded) and
max_delay_ms: the longest time from the child's write of a line (its sent_at) to its arrival.
"""
import socket
import sys
import time

from netutil import body_bytes, report

host, port, conns, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
errors, preloaded, worst = 0, 0, 0.0
for _ in range(conns):
    c = socket.create_connection((host, port))
    c.sendall(b"%d\n" % size)
    stream = c.makefile("rb")
    errors += stream.readline() != b"HTTP/1.0 200 OK\r\n"
    for _ in range(2):
        line = stream.readline()
        worst = max(worst, time.monotonic() - float(line.split(b"sent_at=")[1]))
    preloaded += line.startswith(b"preloaded=1 ")
    errors += stream.read() != body_bytes(size)
    c.close()
report(conns=conns, errors=errors, preloaded=preloaded, max_delay_ms="%.1f" % (worst * 1000))
