"""Non-TCP traffic that the shim must leave alone: a UNIX stream exchange (server speaks first,
replies in two writes), UDP echoes over IPv4 and IPv6 (unconnected and connected clients), and
socketpair() stream and datagram exchanges.

usage: family_echo.py
Prints unix_stream=ok udp4=ok udp6=ok socketpair=ok (or fail:<reason>); exits 1 if any failed.
Every socket has a 5 s timeout, so a shim that stalls or swallows data fails instead of hanging.
"""
import os
import socket
import tempfile
import threading

from netutil import GREETING, read_line, recv_until_close, report

TIMEOUT = 5


def unix_stream():
    path = os.path.join(tempfile.mkdtemp(), "echo.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.settimeout(TIMEOUT)
        c.sendall(GREETING)
        read_line(c)
        c.sendall(b"pong ")
        c.sendall(b"in two writes\n")
        c.close()

    threading.Thread(target=serve, daemon=True).start()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.connect(path)
    assert read_line(c) == GREETING, "bad greeting"
    c.sendall(b"ping\n")
    got = recv_until_close(c)
    assert got == b"pong in two writes\n", got
    c.close()
    os.unlink(path)


def udp(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    srv = socket.socket(fam, socket.SOCK_DGRAM)
    srv.bind((host, 0))
    srv.settimeout(TIMEOUT)

    def serve():
        for _ in range(2):
            data, peer = srv.recvfrom(2048)
            srv.sendto(data.upper(), peer)

    threading.Thread(target=serve, daemon=True).start()
    addr = srv.getsockname()[:2]
    unconnected = socket.socket(fam, socket.SOCK_DGRAM)
    unconnected.settimeout(TIMEOUT)
    unconnected.sendto(b"datagram one", addr)
    assert unconnected.recvfrom(2048)[0] == b"DATAGRAM ONE"
    connected = socket.socket(fam, socket.SOCK_DGRAM)
    connected.settimeout(TIMEOUT)
    connected.connect(addr)
    connected.send(b"datagram two")
    assert connected.recv(2048) == b"DATAGRAM TWO"


def socketpair():
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        a, b = socket.socketpair(socket.AF_UNIX, kind)
        a.settimeout(TIMEOUT)
        b.settimeout(TIMEOUT)
        a.send(b"one ")
        a.send(b"two")
        got = b.recv(64) + b.recv(64) if kind == socket.SOCK_DGRAM else b.recv(64)
        while kind == socket.SOCK_STREAM and len(got) < 7:
            got += b.recv(64)
        assert got == b"one two", got
        b.send(b"back")
        assert a.recv(64) == b"back"
        a.close()
        b.close()


results = {}
for name, check in (("unix_stream", unix_stream), ("udp4", lambda: udp("127.0.0.1")), ("udp6", lambda: udp("::1")),
                    ("socketpair", socketpair)):
    try:
        check()
        results[name] = "ok"
    except Exception as e:  # report every family, not just the first failure
        results[name] = "fail:" + (type(e).__name__ + ":" + str(e)).replace(" ", "_")[:80]
report(**results)
raise SystemExit(0 if all(v == "ok" for v in results.values()) else 1)
