"""N HTTP/1.0 requests, a connection each: per connection, whether the server's FIN had come
by the time the response's last byte was read (it rode on the response, or followed at once).

usage: fin_client.py HOST PORT N
Reads the response to its Content-Length, then looks without waiting for the end of the stream;
then reads until the server closes. Reports conns and fin_with_body, a string of 0/1 flags.
"""
import socket
import sys

from netutil import fail, read_http_response, recv_until_close, report

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
flags = []
for _ in range(n):
    c = socket.create_connection((host, port))
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    if read_http_response(c, b""):
        fail("bytes after the response")
    c.setblocking(False)
    try:
        ended = c.recv(1) == b""
    except BlockingIOError:
        ended = False
    flags.append("1" if ended else "0")
    c.setblocking(True)
    recv_until_close(c)
    c.close()
report(conns=n, fin_with_body="".join(flags))
