"""Keep-alive HTTP/1.1 server whose sockets take fd numbers that files had first.

usage: files_first.py HOST PORT
Before listening it writes to and reads from four files with os.write and os.read, and closes
them: under socktune the stub sends such calls straight to libc, as the shim keeps no state for
those numbers. The listener and each connection then take those numbers (checked). It reads
each request with os.read and answers with a head and a 100-byte body in two os.write()s, the
case cork fixes. Sets no socket option.
"""
import os
import socket
import sys
import tempfile

from netutil import family_of

host, port = sys.argv[1], int(sys.argv[2])
files = [tempfile.TemporaryFile() for _ in range(4)]
numbers = {f.fileno() for f in files}
for f in files:
    os.write(f.fileno(), b"x")
    os.lseek(f.fileno(), 0, os.SEEK_SET)
    assert os.read(f.fileno(), 1) == b"x"
for f in files:
    f.close()
body = b"b" * 100
head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
listener = socket.socket(family_of(host))
listener.bind((host, port))
listener.listen(16)
while True:
    c, _ = listener.accept()
    assert {listener.fileno(), c.fileno()} <= numbers, (numbers, listener.fileno(), c.fileno())
    with c:
        fd, got = c.fileno(), b""
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            got += data
            while b"\r\n\r\n" in got:
                _, got = got.split(b"\r\n\r\n", 1)
                os.write(fd, head)
                os.write(fd, body)
