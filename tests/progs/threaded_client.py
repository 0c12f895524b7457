"""Concurrent keep-alive HTTP/1.1 client: THREADS connections at once, each making REQUESTS GETs.

usage: threaded_client.py HOST PORT THREADS REQUESTS WWW FILE...
Every connection is opened before any request is sent (a barrier), so a thread-per-connection
server serves them all at the same time. Connection t asks for FILE[(t + i) % len(FILE)] on its
i-th request, so responses of every size are in flight together. Every body is compared with the
served file in WWW, byte for byte; a connection stops at its first bad response (its framing can
no longer be trusted) and the requests it did not make count as errors too.
Reports requests (answered exactly), errors, p50_ms/p99_ms over all, small_p50_ms over FILE[0].
"""
import os
import socket
import sys
import threading
import time

from netutil import latency_fields, report

host, port, threads, n, www = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
files = sys.argv[6:]
want = {name: open(os.path.join(www, name), "rb").read() for name in files}
start_line = threading.Barrier(threads, timeout=15)
lock = threading.Lock()
ok, errors, lat, small = [0], [0], [], []


def response(c, buf):
    """(status line, content-length, body, rest) of one response."""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            raise EOFError("server closed the connection before a full header")
        buf += d
    head, buf = buf.split(b"\r\n\r\n", 1)
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    if length is None:
        raise ValueError("no Content-Length: %r" % head[:200])
    while len(buf) < length:
        d = c.recv(1 << 18)
        if not d:
            raise EOFError("server closed mid-body (%d of %d bytes)" % (len(buf), length))
        buf += d
    return head.split(b"\r\n")[0], length, buf[:length], buf[length:]


def client(t):
    c = socket.create_connection((host, port))
    c.settimeout(15)  # the client is not under test; a stuck response must fail, not hang
    done, mine, mine_small = 0, [], []
    try:
        start_line.wait()
        buf = b""
        for i in range(n):
            name = files[(t + i) % len(files)]
            t0 = time.perf_counter()
            c.sendall(b"GET /%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % name.encode())
            status, length, body, buf = response(c, buf)
            ms = (time.perf_counter() - t0) * 1000
            if not status.startswith(b"HTTP/1.1 200 "):
                raise ValueError("%s: status %r" % (name, status))
            if body != want[name]:
                first = next((k for k, (a, b) in enumerate(zip(body, want[name])) if a != b), None)
                raise ValueError("%s: body differs (%d bytes, want %d; first difference at %s)"
                                 % (name, length, len(want[name]), first))
            if buf:
                raise ValueError("%s: %d unexpected bytes after the response" % (name, len(buf)))
            done += 1
            mine.append(ms)
            if name == files[0]:
                mine_small.append(ms)
    except Exception as e:  # noqa: BLE001 - every failure is reported and counted
        print("error: connection %d, request %d: %s: %s" % (t, done, type(e).__name__, e), file=sys.stderr, flush=True)
    finally:
        c.close()
    with lock:
        ok[0] += done
        errors[0] += n - done
        lat.extend(mine)
        small.extend(mine_small)


start = time.perf_counter()
workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
elapsed = time.perf_counter() - start
fields = latency_fields(lat or [0], elapsed)
fields["small_p50_ms"] = latency_fields(small or [0], elapsed)["p50_ms"]
report(requests=ok[0], errors=errors[0], **fields)
sys.exit(1 if errors[0] else 0)
