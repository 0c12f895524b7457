"""Fork-per-connection keep-alive HTTP/1.1 server whose children end with os._exit().

usage: forking_server.py HOST PORT [leave-open]
The parent accepts, forks a child for the connection and closes its own copy at once. The child
serves the connection's requests (header and 100-byte body in two sends) until the client closes,
then calls os._exit(0) right away, before any background thread could write what it buffered.
With leave-open, the child does not close the connection before it exits.
"""
import os
import signal
import socket
import sys

from netutil import family_of
from prefork_server import serve

host, port = sys.argv[1], int(sys.argv[2])
leave_open = sys.argv[3:] == ["leave-open"]
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # no zombies
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(128)
while True:  # until the harness's SIGTERM
    c, _ = s.accept()
    if os.fork() == 0:
        s.close()
        serve(c)
        if not leave_open:
            c.close()
        os._exit(0)
    c.close()
