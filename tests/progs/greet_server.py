"""Server-speaks-first server: sends a greeting on accept, then drains until the client closes.

usage: greet_server.py HOST PORT
"""
import socket
import sys
import threading

from netutil import GREETING, family_of


def serve(c):
    with c:
        c.sendall(GREETING)
        c.settimeout(10)  # never keep a thread forever on a silent client
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass


host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(16)
while True:
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
