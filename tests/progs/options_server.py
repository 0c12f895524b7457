"""One-connection server that reports, by reading back, the options its sockets ended up with.

usage: options_server.py HOST PORT
listen(5), then reports the listener's maximum backlog (struct tcp_info's tcpi_sacked on a
listener, byte offset 28) and TCP_FASTOPEN queue length; after accept(), the accepted socket's
TCP_NODELAY. Reading an option back is observing, not setting.
"""
import socket
import struct
import sys

from netutil import family_of, read_line, report

host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(5)
info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
report(
    max_backlog=struct.unpack_from("I", info, 28)[0],
    fastopen_qlen=s.getsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN),
)
c, _ = s.accept()
report(nodelay=c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
read_line(c)
c.sendall(b"ok\n")
c.close()
