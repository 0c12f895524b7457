"""Server-speaks-first server: sends a greeting on accept, then drains until the client closes.

usage: greet_server.py HOST PORT [PORT ...]
Listens on every PORT (as a mail server may beside a web port) and reports each listener's
TCP_DEFER_ACCEPT as read back after listen(): defer_<port>=<seconds>.
"""
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
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


host, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
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
