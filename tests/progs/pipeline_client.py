"""Pipelining keep-alive HTTP/1.1 client: CONNS connections at once, each making ROUNDS rounds of
DEPTH requests sent together, then read back only after PAUSE seconds.

usage: pipeline_client.py HOST PORT CONNS ROUNDS DEPTH PAUSE WWW FILE...
Request i of a round asks for FILE[i % len(FILE)]. While the client pauses, the server's
responses pile up; once they exceed what the kernel buffers for the connection (its send buffer
plus the client's receive window: about 4 MB on loopback), the server's sends come back short
or with EAGAIN, and it has to finish them later (EPOLLOUT, poll, a blocking send...). Every body
is compared with the served file in WWW, byte for byte, and nothing may follow a round's last
response. A connection stops at its first bad response; the requests it did not get count as
errors. Reports requests (answered exactly), errors and mbytes (bodies received, MB).
"""
import os
import socket
import sys
import threading
import time

from netutil import report

host, port, conns, rounds, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pause, www, files = float(sys.argv[6]), sys.argv[7], sys.argv[8:]
want = {name: open(os.path.join(www, name), "rb").read() for name in files}
start_line = threading.Barrier(conns, timeout=15)
lock = threading.Lock()
ok, errors, got_bytes = [0], [0], [0]


class Reader:
    def __init__(self, sock):
        self.sock, self.buf, self.pos = sock, bytearray(), 0

    def fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise EOFError("server closed the connection (%d bytes unread)" % (len(self.buf) - self.pos))
        self.buf += d

    def head(self):
        while (end := self.buf.find(b"\r\n\r\n", self.pos)) < 0:
            self.fill()
        head, self.pos = bytes(self.buf[self.pos:end]), end + 4
        return head

    def body(self, n):
        while len(self.buf) - self.pos < n:
            self.fill()
        body = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        del self.buf[:self.pos]
        self.pos = 0
        return body


def response(r):
    head = r.head()
    lines = head.split(b"\r\n")
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if length is None:
        raise ValueError("no Content-Length: %r" % head[:200])
    return lines[0], r.body(length)


def client(t):
    c = socket.create_connection((host, port))
    c.settimeout(15)  # the client is not under test; a stuck response must fail, not hang
    r, done, nbytes = Reader(c), 0, 0
    try:
        start_line.wait()
        for _ in range(rounds):
            names = [files[i % len(files)] for i in range(depth)]
            c.sendall(b"".join(b"GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % n.encode() for n in names))
            time.sleep(pause)
            for name in names:
                status, body = response(r)
                if not status.startswith(b"HTTP/1.1 200 "):
                    raise ValueError("%s: status %r" % (name, status))
                if body != want[name]:
                    first = next((k for k, (a, b) in enumerate(zip(body, want[name])) if a != b), None)
                    raise ValueError("%s: body differs (%d bytes, want %d; first difference at %s)"
                                     % (name, len(body), len(want[name]), first))
                done += 1
                nbytes += len(body)
            if len(r.buf) > r.pos:
                raise ValueError("%d unexpected bytes after the round's responses" % (len(r.buf) - r.pos))
    except Exception as e:  # noqa: BLE001 - every failure is reported and counted
        print("error: connection %d, request %d: %s: %s" % (t, done, type(e).__name__, e), file=sys.stderr, flush=True)
    finally:
        c.close()
    with lock:
        ok[0] += done
        errors[0] += rounds * depth - done
        got_bytes[0] += nbytes


workers = [threading.Thread(target=client, args=(t,)) for t in range(conns)]
for w in workers:
    w.start()
for w in workers:
    w.join()
report(requests=ok[0], errors=errors[0], mbytes="%.1f" % (got_bytes[0] / 1e6))
sys.exit(1 if errors[0] else 0)
