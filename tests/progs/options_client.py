"""Connects, reports its own socket's TCP_NODELAY as read back after connect(), then one
line-exchange with the server.

usage: options_client.py HOST PORT
"""
import socket
import sys

from netutil import family_of, read_line, report

host, port = sys.argv[1], int(sys.argv[2])
c = socket.socket(family_of(host))
c.connect((host, port))
report(nodelay=c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
c.sendall(b"hello\n")
read_line(c)
c.close()
