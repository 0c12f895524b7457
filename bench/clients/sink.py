"""Echo server for the link check: accepts connections and echoes every byte at once.

usage: sink.py HOST PORT    prints "listening" once the socket listens.
"""
import socket
import sys
import threading


def echo(c):
    with c:
        while True:
            d = c.recv(4096)
            if not d:
                return
            c.sendall(d)


s = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    threading.Thread(target=echo, args=(conn,), daemon=True).start()
