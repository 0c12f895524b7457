"""N HTTP/1.0 requests, a connection each: per connection, whether the server's FIN had come
by the time the response's last byte was read (it rode on the response, or followed at once),
and whether that last byte took 50 ms or more from the request.

usage: fin_client.py HOST PORT N
Reads the response to its Content-Length, then looks without waiting for the end of the stream;
then reads until the server closes, and gives the server 200 ms before the next connection, so
that each request meets a server that waits in accept(). Reports conns, and fin_with_body and
slow, strings of 0/1 flags.
"""
import socket
import sys
import time

from netutil import fail, read_http_response, recv_until_close, report

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
flags, slow = [], []
for _ in range(n):
    c = socket.create_connection((host, port))
    sent = time.perf_counter()
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    if read_http_response(c, b""):
        fail("bytes after the response")
    slow.append("1" if time.perf_counter() - sent >= 0.05 else "0")
    c.setblocking(False)
    try:
        ended = c.recv(1) == b""
    except BlockingIOError:
        ended = False
    flags.append("1" if ended else "0")
    c.setblocking(True)
    recv_until_close(c)
    c.close()
    time.sleep(0.2)
report(conns=n, fin_with_body="".join(flags), slow="".join(slow))
