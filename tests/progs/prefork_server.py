"""Prefork keep-alive HTTP/1.1 server: listens, then forks WORKERS processes that accept in a loop.

usage: prefork_server.py HOST PORT [WORKERS] [once] [nodelay] [whole]
Each worker serves its connection's requests until the client closes, writing every response in
two sends, header then a 100-byte body (like examples/perl-server.pl and python's http.server).
With "once", a worker answers one request and closes the connection itself with close() alone,
HTTP/1.0 style, right after its last send. With "nodelay", a worker sets TCP_NODELAY on each
connection it accepts, as Starman and gunicorn do. With "whole", each response is one send, as a
server that tuned itself writes it.
Each worker tells the parent over a pipe when it accepts a connection; the parent reports, after
every one, conns= (connections accepted so far) and workers= (distinct workers that accepted).
"""
import os
import socket
import sys

from netutil import family_of, report

BODY = b"x" * 100


def serve(c, whole=False):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(BODY)
        if whole:
            c.sendall(head + BODY)
        else:
            c.sendall(head)
            c.sendall(BODY)


def serve_once(c, whole=False):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            return
        buf += d
    head = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    if whole:
        c.sendall(head + BODY)
    else:
        c.sendall(head)
        c.sendall(BODY)


def worker(s, tell, answer, nodelay, whole):
    while True:
        c, _ = s.accept()
        if nodelay:
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        os.write(tell, b"%d\n" % os.getpid())
        with c:
            answer(c, whole)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    options = sys.argv[4:]
    answer = serve_once if "once" in options else serve
    s = socket.socket(family_of(host))
    s.bind((host, port))
    s.listen(128)
    r, w = os.pipe()
    for _ in range(workers):
        if os.fork() == 0:
            os.close(r)
            try:
                worker(s, w, answer, "nodelay" in options, "whole" in options)
            finally:
                os._exit(0)
    os.close(w)
    conns, seen, pending = 0, set(), b""
    while True:  # until the harness's SIGTERM (to the whole process group)
        d = os.read(r, 4096)
        if not d:
            break
        pending += d
        *lines, pending = pending.split(b"\n")
        for pid in lines:
            conns += 1
            seen.add(pid)
            report(conns=conns, workers=len(seen))


if __name__ == "__main__":
    main()
