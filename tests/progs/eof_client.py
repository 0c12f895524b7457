"""N HTTP/1.0 requests, a connection each, each read until the server closes.

usage: eof_client.py HOST PORT N
Reports conns and got: what each connection received after its head, comma-separated.
"""
import socket
import sys

from netutil import recv_until_close, report

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
got = []
for _ in range(n):
    c = socket.create_connection((host, port))
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    _, _, after_head = recv_until_close(c).partition(b"\r\n\r\n")
    got.append(after_head.decode())
    c.close()
report(conns=n, got=",".join(got))
