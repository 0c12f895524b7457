"""A program that manages Nagle and cork itself, as some tuned servers and clients do.

usage: own_options.py server HOST PORT ROUNDS  |  own_options.py client HOST PORT ROUNDS
Each side, on its connection: clears TCP_NODELAY and reads it back; then per round sets TCP_CORK,
writes a message in three send() calls, passes every point where socktune would release its own
cork (a poll() on the socket, a 30 ms sleep, a non-blocking recv), reads TCP_CORK back, notes
the time (time.monotonic, one clock for both processes) and uncorks. The client speaks first
each round, the server answers.
Reports, per side (the server's prefixed srv_ by the harness): nodelay (read back after
clearing), corked (rounds where TCP_CORK still read 1 after the waits), uncork_at (the times it
uncorked, comma separated), arrived_at (when each of the peer's messages was complete) and
segs (data segments received per message, from TCP_INFO).
"""
import select
import socket
import sys
import time

import struct

from netutil import family_of, read_line, report

role, host, port, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
T = socket.IPPROTO_TCP


def speak(c, word):
    """One message, corked by the program itself; returns 1 if its cork held through the waits."""
    c.setsockopt(T, socket.TCP_CORK, 1)
    for piece in (b"%s one " % word, b"two ", b"three\n"):
        c.send(piece)
    p = select.poll()
    p.register(c, select.POLLIN)
    p.poll(0)
    time.sleep(0.03)
    try:
        c.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK)
    except BlockingIOError:
        pass
    held = c.getsockopt(T, socket.TCP_CORK)
    uncork.append(time.monotonic())
    c.setsockopt(T, socket.TCP_CORK, 0)
    return held


def data_segs_in(c):
    """tcpi_data_segs_in (struct tcp_info offset 152): segments that carried data, no bare ACKs."""
    return struct.unpack_from("I", c.getsockopt(T, socket.TCP_INFO, 512), 152)[0]


def hear(c):
    before = data_segs_in(c)
    read_line(c)
    arrived.append(time.monotonic())
    segs.append(data_segs_in(c) - before)


uncork, arrived, segs, corked = [], [], [], 0
if role == "server":
    s = socket.socket(family_of(host))
    s.bind((host, port))
    s.listen(4)
    c, _ = s.accept()
else:
    c = socket.create_connection((host, port))
c.setsockopt(T, socket.TCP_NODELAY, 0)
nodelay = c.getsockopt(T, socket.TCP_NODELAY)
for _ in range(rounds):
    if role == "client":
        corked += speak(c, b"request")
        hear(c)
    else:
        hear(c)
        corked += speak(c, b"response")
times = lambda ts: ",".join("%.6f" % t for t in ts)
report(nodelay=nodelay, corked=corked, uncork_at=times(uncork), arrived_at=times(arrived),
       segs=",".join(map(str, segs)))
if role == "server":
    c.recv(1)  # the client's close
