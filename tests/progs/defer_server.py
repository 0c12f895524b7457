"""One-connection server that reports what it sees at accept time.

usage: defer_server.py HOST PORT
Prints the listener's TCP_DEFER_ACCEPT as read back after listen() (reading is not setting), then,
right after accept(), how many request bytes are already readable without waiting.
"""
import socket
import sys

from netutil import family_of, read_line, report

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(16)
report(defer_readback=s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT))
c, _ = s.accept()
try:
    ready = len(c.recv(4096, socket.MSG_PEEK | socket.MSG_DONTWAIT))
except BlockingIOError:
    ready = 0
report(ready_bytes=ready)
read_line(c)
c.sendall(b"ok\n")
c.close()
