"""Keep-alive HTTP/1.1 server that writes like a proxy: the header with MSG_MORE, then a wait
for its backend (a 5 ms select on a pipe that never becomes readable), then the body.

usage: more_server.py HOST PORT    Answers every GET with a 100-byte body. Sets no socket option:
MSG_MORE is the program's own hint that the header must wait for the body.
"""
import os
import select
import socket
import sys

from netutil import connections

host, port = sys.argv[1], int(sys.argv[2])
body = b"x" * 100
header = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
backend, _ = os.pipe()

for c, requests in connections(host, port):
    for line in requests:
        if line.strip():
            continue  # the request line and headers, up to the blank line
        c.send(header, socket.MSG_MORE)
        select.select([backend], [], [], 0.005)
        c.sendall(body)
