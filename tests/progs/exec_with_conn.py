"""A client that execs another program with its connection still open (as a wrapper execs the
real program): one request and response, then execv /bin/true."""
import os
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
c = socket.create_connection((host, port))
c.sendall(b"GET /f100 HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while b"x" * 100 not in got:
    got += c.recv(4096)
os.execv("/bin/true", ["true"])
