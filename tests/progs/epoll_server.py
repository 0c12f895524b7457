"""Single-threaded, non-blocking HTTP/1.1 keep-alive file server on select.epoll (no asyncio).

usage: epoll_server.py HOST PORT MODE WWW
MODE is `lt` (level-triggered: one accept or one recv per event) or `et` (edge-triggered,
EPOLLET: every accept, recv and send is repeated until it raises BlockingIOError, since no
further event comes for what is already there).

It serves GET /NAME with the file WWW/NAME (404 for anything else), framed by Content-Length, to
any number of connections at once. Each complete request's response is written with two
separate sock.send() calls, header then body (so untuned, Nagle holds the body until the
delayed ACK of the header: ~44 ms and ~5 packets per request); then the loop goes back to
epoll.poll(). What a send does not take (a full send buffer) is kept, in order, and finished on
EPOLLOUT, which is registered only while something waits to be sent.

Sets no socket option. After every closed connection it reports conns= (accepted so far),
max_open= (most connections open at once), requests= (responses queued), partial= (sends that
took less than they were given, or nothing), threads= (the process's threads now) and mode=.
"""
import collections
import os
import select
import socket
import sys

from netutil import family_of, report

host, port, mode, www = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
if mode not in ("lt", "et"):
    sys.exit("MODE must be lt or et, not %r" % mode)
EDGE = select.EPOLLET if mode == "et" else 0
IN = select.EPOLLIN | EDGE
IN_OUT = select.EPOLLIN | select.EPOLLOUT | EDGE
stats = {"conns": 0, "max_open": 0, "requests": 0, "partial": 0}


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.inbuf = b""
        self.out = collections.deque()  # memoryviews still to send, in order
        self.dead = False

    def send(self, data):
        """One sock.send() of data, unless earlier bytes still wait (then data queues behind them)."""
        if self.dead:
            return
        if self.out:
            self.out.append(memoryview(data))
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError:  # the client went away (EPIPE, ECONNRESET)
            self.dead = True
            return
        if n < len(data):
            stats["partial"] += 1
            self.out.append(memoryview(data)[n:])
            ep.modify(self.sock.fileno(), IN_OUT)

    def writable(self):
        """EPOLLOUT: send what waits until it is all gone or the socket is full again."""
        while self.out and not self.dead:
            chunk = self.out[0]
            try:
                n = self.sock.send(chunk)
            except BlockingIOError:
                return
            except OSError:
                self.dead = True
                return
            if n < len(chunk):
                stats["partial"] += 1
                self.out[0] = chunk[n:]
                if not EDGE:
                    return  # level-triggered: EPOLLOUT fires again while there is room
            else:
                self.out.popleft()
        if not self.dead:
            ep.modify(self.sock.fileno(), IN)

    def readable(self):
        """EPOLLIN: read (once, or until EAGAIN with EPOLLET), then answer every complete request.
        Returns False once the client has closed (or the connection failed)."""
        eof = False
        while True:
            try:
                d = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                return False
            if not d:
                eof = True
                break
            self.inbuf += d
            if not EDGE:
                break
        while b"\r\n\r\n" in self.inbuf:
            head, self.inbuf = self.inbuf.split(b"\r\n\r\n", 1)
            self.respond(head)
        return not eof and not self.dead

    def respond(self, head):
        parts = head.split(b"\r\n", 1)[0].split()
        name = parts[1].decode("latin-1").lstrip("/") if len(parts) == 3 and parts[0] == b"GET" else ""
        path = os.path.join(www, name)
        if name and "/" not in name and os.path.isfile(path):
            with open(path, "rb") as f:
                body = f.read()
            status = b"200 OK"
        else:
            body, status = b"not found\n", b"404 Not Found"
        stats["requests"] += 1
        self.send(b"HTTP/1.1 %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                  % (status, len(body)))
        self.send(body)


def accept_ready():
    while True:
        try:
            sock, _ = lsock.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)
        conns[sock.fileno()] = Conn(sock)
        ep.register(sock.fileno(), IN)
        stats["conns"] += 1
        stats["max_open"] = max(stats["max_open"], len(conns))
        if not EDGE:
            return  # level-triggered: the listener stays readable while connections wait


def close(fd):
    c = conns.pop(fd)
    ep.unregister(fd)
    c.sock.close()
    report(mode=mode, threads=len(os.listdir("/proc/self/task")), **stats)


lsock = socket.socket(family_of(host))
lsock.bind((host, port))
lsock.listen(128)
lsock.setblocking(False)
ep = select.epoll()
ep.register(lsock.fileno(), IN)
conns = {}
while True:  # until the harness's SIGTERM
    for fd, ev in ep.poll():
        if fd == lsock.fileno():
            accept_ready()
            continue
        c = conns.get(fd)
        if c is None:
            continue
        if ev & select.EPOLLOUT:
            c.writable()
        if ev & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR) and not c.readable():
            close(fd)
        elif c.dead:
            close(fd)
