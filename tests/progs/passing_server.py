"""Keep-alive HTTP/1.1 server split in two processes, as vsftpd's privileged process and session
are: the parent accepts each connection and hands it by SCM_RIGHTS to a worker it forked before,
then closes its copy; the worker answers every request with the header and the body in two
sends, as http.server does. The worker never saw the socket made.

usage: passing_server.py HOST PORT    Answers every GET with a 100-byte body. Sets no socket option.
"""
import os
import socket
import sys

from netutil import family_of

host, port = sys.argv[1], int(sys.argv[2])
body = b"x" * 100
header = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
to_worker, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

if os.fork() == 0:
    to_worker.close()
    while True:
        _, fds, _, _ = socket.recv_fds(worker_end, 1, 1)
        if not fds:
            os._exit(0)
        with socket.socket(fileno=fds[0]) as c, c.makefile("rb") as requests:
            for line in requests:
                if line.strip():
                    continue  # the request line and headers, up to the blank line
                c.sendall(header)
                c.sendall(body)

worker_end.close()
listener = socket.socket(family_of(host))
listener.bind((host, port))
listener.listen(16)
while True:
    c, _ = listener.accept()
    socket.send_fds(to_worker, [b"c"], [c.fileno()])
    c.close()
