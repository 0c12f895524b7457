"""Streaming server: one connection, one request line, then N small events with a pause between.

usage: stream_server.py HOST PORT MODE [N]
MODE is how the server waits between events. None of them touches the connection, so none is a
response boundary of cork-per-response (except select-other: select() is one, on any fd):
  sleep         time.sleep(GAP)
  cond          threading.Event().wait(GAP) (a condition variable nobody signals)
  select-other  select() on a pipe nobody writes, GAP timeout
  read-other    blocking os.read() on a pipe that a helper thread writes to after GAP
Under SOCKTUNE_CORK=1 an event's send may be held (MSG_MORE); only the shim's flusher (or the
select() boundary) can push it before the kernel's own 200 ms cork timer. (Once the shim has seen
an event leave in one write it may send the next as it is.)

Each event is EVENT_LEN bytes: its index and the time.monotonic() just before its send.
CLOCK_MONOTONIC is system-wide, so the client on this machine measures each event's delay.
Reports (after closing the connection):
  held         events with bytes still unsent (SIOCOUTQNSD) right after their send: the shim held
  still_held   events with bytes still unsent after the pause: nothing pushed them
  sha256       of every byte sent
Reading the unsent byte count observes; the program sets no option.
"""
import fcntl
import hashlib
import os
import select
import socket
import struct
import sys
import threading
import time

from netutil import family_of, read_line, report

GAP = 0.05
EVENT_LEN = 30


def event(i, ts):
    ev = b"ev=%02d ts=%020.6f\n" % (i, ts)
    assert len(ev) == EVENT_LEN
    return ev


def waiter(mode):
    if mode == "sleep":
        return lambda: time.sleep(GAP)
    if mode == "cond":
        flag = threading.Event()
        return lambda: flag.wait(GAP)
    r, w = os.pipe()
    if mode == "select-other":
        return lambda: select.select([r], [], [], GAP)
    if mode == "read-other":
        def pause():
            threading.Thread(target=lambda: (time.sleep(GAP), os.write(w, b"x"))).start()
            os.read(r, 1)
        return pause
    sys.exit("unknown mode %r" % mode)


SIOCOUTQNSD = 0x894B  # bytes written and not yet sent (linux/sockios.h)


def held(c):
    unsent = struct.unpack("i", fcntl.ioctl(c.fileno(), SIOCOUTQNSD, b"\0" * 4))[0]
    return int(unsent > 0)


host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 10
pause = waiter(mode)
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(16)
c, _ = s.accept()
read_line(c)
sent, n_held, n_still = hashlib.sha256(), 0, 0
for i in range(n):
    ev = event(i, time.monotonic())
    c.sendall(ev)
    n_held += held(c)
    sent.update(ev)
    pause()
    n_still += held(c)
c.close()
report(events=n, held=n_held, still_held=n_still, sha256=sent.hexdigest())
