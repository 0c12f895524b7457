"""HTTP/1.0 server with a lingering close, as gunicorn and Apache do it.

usage: lingering_server.py HOST PORT [SPIN_MS [at-once]]
Per connection: read the request, answer in two sends (header, then a 100-byte body), work
SPIN_MS (default 0) without a system call, shutdown(SHUT_WR), read until the client's FIN, close.
With `at-once` it closes right after the shutdown instead of reading (no lingering). Sets no
socket option itself.
"""
import socket
import sys
import time

from netutil import family_of

host, port = sys.argv[1], int(sys.argv[2])
spin_s = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
lingers = sys.argv[4:5] != ["at-once"]
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(128)
while True:  # until the harness's SIGTERM
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n")
    c.sendall(b"x" * 100)
    until = time.perf_counter() + spin_s
    while time.perf_counter() < until:
        pass
    c.shutdown(socket.SHUT_WR)
    while lingers and c.recv(4096):
        pass
    c.close()
