"""Server-speaks-first server: sends a greeting on accept, then drains until the client closes.

usage: greet_server.py [--fork] HOST PORT [PORT ...]
Listens on every PORT (as a mail server may beside a web port) and reports each listener's
TCP_DEFER_ACCEPT as read back after listen(): defer_<port>=<seconds>. With --fork, each
connection is served by a forked child that closes its copy of the listener first, as vsftpd's
do, so only the parent holds it.
"""
import os
import socket
import sys
import threading

from netutil import GREETING, family_of, report


def serve(c):
    with c:
        c.sendall(GREETING)
        c.settimeout(10)  # never keep a thread forever on a silent client
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass


def accept_forever(s):
    while True:
        conn, _ = s.accept()
        if not forking:
            threading.Thread(target=serve, args=(conn,), daemon=True).start()
        elif os.fork() == 0:
            s.close()
            serve(conn)
            os._exit(0)
        else:
            conn.close()
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass


forking = sys.argv[1] == "--fork"
args = sys.argv[2:] if forking else sys.argv[1:]
host, ports = args[0], [int(p) for p in args[1:]]
listeners = []
for port in ports:
    s = socket.socket(family_of(host))
    s.bind((host, port))
    s.listen(16)
    listeners.append(s)
report(**{"defer_%d" % port: s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)
          for port, s in zip(ports, listeners)})
for s in listeners[1:]:
    threading.Thread(target=accept_forever, args=(s,), daemon=True).start()
accept_forever(listeners[0])
