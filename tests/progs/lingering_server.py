"""HTTP/1.0 server with a lingering close, as gunicorn and Apache do it.

usage: lingering_server.py HOST PORT
Per connection: read the request, answer in two sends (header, then a 100-byte body),
shutdown(SHUT_WR), read until the client's FIN, close. Sets no socket option itself.
"""
import socket
import sys

from netutil import family_of

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(128)
while True:  # until the harness's SIGTERM
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\n")
    c.sendall(b"x" * 100)
    c.shutdown(socket.SHUT_WR)
    while c.recv(4096):
        pass
    c.close()
