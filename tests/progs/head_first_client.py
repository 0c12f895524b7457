"""N keep-alive requests on one connection to a server that sends a response's head and body in
two writes with Nagle on (its body waits for the ACK of its head). After the first read returns the
head alone, this client does nothing for 10 ms (no system call at all), then asks the kernel how
much has arrived (FIONREAD, which only observes). A body still missing then was held by the ACK
that this client's kernel delayed: no delayed-ACK timer fires that soon (40 ms at least).

usage: head_first_client.py HOST PORT N PATH
Reports conns=N, split (responses whose first read was the head alone) and held (of those, the
ones whose body had not arrived 10 ms later).
"""
import fcntl
import socket
import struct
import sys
import termios
import time

from netutil import report

host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
req = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode()
split = held = 0
c = socket.create_connection((host, port), timeout=30)
for _ in range(n):
    c.sendall(req)
    first = c.recv(65536)
    head, sep, body = first.partition(b"\r\n\r\n")
    if not sep:
        sys.exit("head_first_client: the first read is not a whole head: %r" % first)
    length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
    if len(body) < length:
        split += 1
        until = time.perf_counter() + 0.010
        while time.perf_counter() < until:
            pass
        waiting = struct.unpack("i", fcntl.ioctl(c.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        if len(body) + waiting < length:
            held += 1
        while len(body) < length:
            d = c.recv(65536)
            if not d:
                sys.exit("head_first_client: the server closed mid-body")
            body += d
    if len(body) != length:
        sys.exit("head_first_client: %d bytes after the head, want %d" % (len(body), length))
c.close()
report(conns=n, split=split, held=held)
