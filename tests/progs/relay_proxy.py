"""A small reverse proxy, both roles in one process: it accepts clients on 127.0.0.1:PORT and
relays each to a new connection to a backend on BACKEND_PORT, one thread per direction.

usage: relay_proxy.py PORT BACKEND_PORT WWW
It starts the backend itself, without the shim (python3 -m http.server -p HTTP/1.1, which sends
header and body separately with Nagle on), waits for it to listen, then listens.
"""
import os
import socket
import subprocess
import sys
import threading
import time

port, backend_port, www = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("SOCKTUNE_")}
subprocess.Popen([sys.executable, "-m", "http.server", "-p", "HTTP/1.1", str(backend_port),
                  "--bind", "127.0.0.1", "-d", www], env=env,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(500):
    try:
        socket.create_connection(("127.0.0.1", backend_port)).close()
        break
    except OSError:
        time.sleep(0.02)


def pipe(src, dst):
    try:
        while True:
            d = src.recv(65536)
            if not d:
                break
            dst.sendall(d)
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def relay(client):
    backend = socket.create_connection(("127.0.0.1", backend_port))
    back = threading.Thread(target=pipe, args=(backend, client), daemon=True)
    back.start()
    pipe(client, backend)
    back.join()
    client.close()
    backend.close()


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(64)
while True:
    c, _ = listener.accept()
    threading.Thread(target=relay, args=(c,), daemon=True).start()
