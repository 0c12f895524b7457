"""HTTP/1.0 server whose responses may run past the length their head declares.

usage: overlong_server.py HOST PORT PLAN
PLAN has a letter per connection, the last one repeated: `e` answers exactly (a head declaring 4
bytes, then "body", in two sends), `o` sends "tail" after that, past the declared end, and `z`
makes an empty send() after it instead. Then it closes. Sets no socket option itself; a send error ends it with a traceback.
"""
import socket
import sys

from netutil import family_of

host, port, plan = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(16)
served = 0
while True:  # until the harness's SIGTERM
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n")
    c.sendall(b"body")
    step = plan[min(served, len(plan) - 1)]
    if step == "o":
        c.sendall(b"tail")
    elif step == "z":
        c.send(b"")
    served += 1
    c.close()
