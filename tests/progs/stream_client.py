"""Client of stream_server.py: sends one request line, then times each event's arrival.

usage: stream_client.py HOST PORT N
Each event carries the server's time.monotonic() at its send; the arrival time is taken when the
recv() that completes the event returns. Reports:
  events         complete, well-formed events received in order (must be N, then EOF)
  max_delay_ms   worst send-to-arrival delay (kernel cork timer: ~200; shim flusher: ~2)
  min_gap_ms     smallest spacing between consecutive arrivals (events held and then released
                 together arrive with a gap near 0, though they were sent GAP apart)
  sha256         of every byte received (the server reports the same of what it sent)
"""
import hashlib
import socket
import sys
import time

from netutil import fail, family_of, report

EVENT_LEN = 30

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection((host, port))
c.settimeout(10)  # the client is not under test; a lost event must fail, not hang
c.sendall(b"GO\n")
buf, got, arrivals, delays = b"", hashlib.sha256(), [], []
while True:
    d = c.recv(65536)
    t = time.monotonic()
    if not d:
        break
    got.update(d)
    buf += d
    while len(buf) >= EVENT_LEN:
        ev, buf = buf[:EVENT_LEN], buf[EVENT_LEN:]
        i = len(arrivals)
        if not (ev.startswith(b"ev=%02d ts=" % i) and ev.endswith(b"\n")):
            fail("event %d malformed or out of order: %r" % (i, ev))
        ts = float(ev[9:-1])
        if ev != b"ev=%02d ts=%020.6f\n" % (i, ts):
            fail("event %d not byte-exact: %r" % (i, ev))
        arrivals.append(t)
        delays.append((t - ts) * 1000)
if buf or len(arrivals) != n:
    fail("expected %d events, got %d and %d stray bytes" % (n, len(arrivals), len(buf)))
gaps = [(b - a) * 1000 for a, b in zip(arrivals, arrivals[1:])]
report(events=len(arrivals), max_delay_ms="%.2f" % max(delays), min_gap_ms="%.2f" % min(gaps),
       delays_ms=",".join("%.1f" % d for d in delays), sha256=got.hexdigest())
