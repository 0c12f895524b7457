"""Client of a server-speaks-first protocol: it waits for the greeting before writing anything.

usage: read_first_client.py HOST PORT MODE N      MODE: blocking | poll | epoll
First two write-first connections (the first fetches a Fast Open cookie, the second may carry its
data in the SYN: reported as write_first_syn_data, e.g. "01"), then N read-first connections in
MODE. Each read-first connection must get the greeting within 5 s, else it reports hang=1 and
exits 1.
"""
import errno
import select
import signal
import socket
import sys
import time

from netutil import GREETING, family_of, fail, read_line, report, syn_data

LIMIT = 5.0  # seconds a read-first client may wait for the greeting


class Hang(Exception):
    pass


def write_first(addr):
    c = socket.create_connection(addr)
    c.sendall(b"HELO client\r\n")
    line = read_line(c)
    flag = syn_data(c)
    c.close()
    return line, flag


def blocking(addr):
    # Plain blocking calls; SIGALRM interrupts a recv() that would wait forever.
    def on_alarm(*_):
        raise Hang()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    try:
        c = socket.create_connection(addr)
        return c, read_line(c)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def poll(addr):
    c = socket.create_connection(addr)
    p = select.poll()
    p.register(c, select.POLLIN)
    if not p.poll(int(LIMIT * 1000)):
        raise Hang()
    return c, read_line(c)


def epoll(addr):
    # Event-loop style: non-blocking connect, wait for EPOLLOUT, then for EPOLLIN.
    deadline = time.monotonic() + LIMIT
    c = socket.socket(family_of(addr[0]))
    c.setblocking(False)
    rc = c.connect_ex(addr)
    if rc not in (0, errno.EINPROGRESS):
        fail("connect: " + errno.errorcode.get(rc, str(rc)))
    ep = select.epoll()
    ep.register(c, select.EPOLLOUT)

    def wait(events):
        ep.modify(c, events)
        if not ep.poll(max(0.0, deadline - time.monotonic())):
            raise Hang()

    wait(select.EPOLLOUT)
    err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        fail("connect failed: " + errno.errorcode.get(err, str(err)))
    got = b""
    while b"\n" not in got:
        wait(select.EPOLLIN)
        try:
            d = c.recv(4096)
        except BlockingIOError:
            continue
        if not d:
            fail("peer closed before the greeting")
        got += d
    ep.close()
    return c, got


host, port, mode, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
addr = (host, port)
read_first = {"blocking": blocking, "poll": poll, "epoll": epoll}[mode]
flags = ""
for _ in range(2):
    line, flag = write_first(addr)
    if line != GREETING:
        fail("write-first connection got %r" % line)
    flags += str(flag)
worst = 0.0
for i in range(n):
    t = time.perf_counter()
    try:
        c, line = read_first(addr)
    except Hang:
        report(mode=mode, write_first_syn_data=flags, greetings=i, hang=1)
        sys.exit(1)
    worst = max(worst, (time.perf_counter() - t) * 1000)
    if line != GREETING:
        fail("read-first connection got %r" % line)
    c.close()
report(mode=mode, write_first_syn_data=flags, greetings=n, hang=0, greet_ms_max="%.3f" % worst)
