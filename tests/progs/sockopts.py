"""Reports, by reading back, the per-socket options of an accepted or a connected socket.

usage: sockopts.py server|client HOST PORT [--sets]
server: listens, accepts one connection, reports its options, one line-exchange.
client: connects, reports its socket's options, one line-exchange.
--sets stands for a program that tunes itself: before listen()/connect() and again on the
accepted or connected socket it sets every option to a value of its own (OWN below), as a
program that uses them would; without it nothing is set, only read.
"""
import socket
import struct
import sys

from netutil import family_of, read_line, report

# Option numbers (linux/tcp.h, asm-generic/socket.h, linux/in6.h).
TCP_SYNCNT, TCP_CONGESTION, TCP_USER_TIMEOUT, TCP_NOTSENT_LOWAT = 7, 13, 18, 25
SO_PRIORITY, SO_MARK, IPV6_TCLASS = 12, 36, 67
SOL_TCP, SOL_SOCKET = socket.IPPROTO_TCP, socket.SOL_SOCKET


def tos_option(sock):
    if sock.family == socket.AF_INET6:
        return socket.IPPROTO_IPV6, IPV6_TCLASS
    return socket.IPPROTO_IP, socket.IP_TOS


# What a self-tuning program sets: each differs from the kernel's default and from the tests'.
OWN = [
    (SOL_SOCKET, socket.SO_KEEPALIVE, 0),
    (SOL_TCP, TCP_USER_TIMEOUT, 1234),
    (SOL_TCP, TCP_CONGESTION, b"cubic"),
    (SOL_TCP, TCP_NOTSENT_LOWAT, 4321),
    (SOL_SOCKET, socket.SO_SNDBUF, 20000),
    (SOL_SOCKET, socket.SO_RCVBUF, 30000),
    (None, None, 0x20),  # TOS
    (SOL_SOCKET, SO_MARK, 99),
    (SOL_SOCKET, SO_PRIORITY, 1),
    (SOL_TCP, socket.TCP_MAXSEG, 600),
    (SOL_TCP, socket.TCP_NODELAY, 0),
    (SOL_TCP, socket.TCP_QUICKACK, 1),
    (SOL_TCP, socket.TCP_CORK, 1),
]


def set_own(sock):
    for level, name, value in OWN:
        if level is None:
            level, name = tos_option(sock)
        sock.setsockopt(level, name, value)


def options(sock):
    g = sock.getsockopt
    level, name = tos_option(sock)
    return dict(
        ka=g(SOL_SOCKET, socket.SO_KEEPALIVE),
        ka_idle=g(SOL_TCP, socket.TCP_KEEPIDLE),
        ka_intvl=g(SOL_TCP, socket.TCP_KEEPINTVL),
        ka_cnt=g(SOL_TCP, socket.TCP_KEEPCNT),
        ut=g(SOL_TCP, TCP_USER_TIMEOUT),
        syncnt=g(SOL_TCP, TCP_SYNCNT),
        cc=g(SOL_TCP, TCP_CONGESTION, 16).rstrip(b"\0").decode(),
        lowat=struct.unpack("I", g(SOL_TCP, TCP_NOTSENT_LOWAT, 4))[0],
        sndbuf=g(SOL_SOCKET, socket.SO_SNDBUF),
        rcvbuf=g(SOL_SOCKET, socket.SO_RCVBUF),
        tos=g(level, name),
        mark=g(SOL_SOCKET, SO_MARK),
        prio=g(SOL_SOCKET, SO_PRIORITY),
        mss=g(SOL_TCP, socket.TCP_MAXSEG),
        nodelay=g(SOL_TCP, socket.TCP_NODELAY),
        quickack=g(SOL_TCP, socket.TCP_QUICKACK),
        cork=g(SOL_TCP, socket.TCP_CORK),
    )


mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sets = "--sets" in sys.argv[4:]
s = socket.socket(family_of(host))
if sets:
    set_own(s)
if mode == "server":
    s.bind((host, port))
    s.listen(5)
    c, _ = s.accept()
else:
    s.connect((host, port))
    c = s
if sets:
    set_own(c)
report(**options(c))
if mode == "server":
    read_line(c)
    c.sendall(b"ok\n")
else:
    c.sendall(b"hello\n")
    read_line(c)
c.close()
