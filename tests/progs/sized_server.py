"""Keep-alive server of odd-sized responses, written the ways real servers write them.

usage: sized_server.py HOST PORT STYLE     STYLE: writev | sendmsg | msg_more
The client sends "<size>\\n"; the reply is a header "LEN <size> MSS <mss>\\r\\n\\r\\n" (the
connection's current send MSS, TCP_MAXSEG read back) then the first <size> bytes of a seeded pseudo-random file (netutil.body_bytes), sent with os.sendfile. The header
goes out by os.writev of two buffers, socket.sendmsg of two buffers, or send(MSG_MORE): the
program's own MSG_MORE. Serves one connection at a time until the client closes. Sets no socket
option.
"""
import os
import socket
import sys
import tempfile

from netutil import body_bytes, connections

host, port, style = sys.argv[1], int(sys.argv[2]), sys.argv[3]
body = tempfile.TemporaryFile()
body.write(body_bytes())
body.flush()


def reply(c, size):
    mss = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    head = [b"LEN %d MSS %d\r\n" % (size, mss), b"\r\n"]
    if style == "writev":
        os.writev(c.fileno(), head)
    elif style == "sendmsg":
        c.sendmsg(head)
    else:
        c.send(b"".join(head), socket.MSG_MORE)
    sent = 0
    while sent < size:
        sent += os.sendfile(c.fileno(), body.fileno(), sent, size - sent)


for c, requests in connections(host, port):
    for line in requests:
        reply(c, int(line))
