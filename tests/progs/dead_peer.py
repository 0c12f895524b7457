"""A peer that stops answering: how long until the client's socket reports it dead.

usage: dead_peer.py server HOST PORT
       dead_peer.py client HOST PORT idle|unacked WAIT
server: accepts connections and holds each open, answering one line, never closing it.
client: connects, exchanges a line, then makes the server unreachable (a blackhole routing
rule for its address, which drops every packet to it: the namespace has no packet filter),
then waits up to WAIT seconds for the kernel to close the connection. idle: it sends nothing
(only keepalive can notice); unacked: it sends 1000 bytes that can never be acknowledged.
Reports dead_after_s (or none) and the error the socket gives (ETIMEDOUT, or over IPv6 the
blackhole's own EINVAL, which the kernel reports in its place). The program sets no option.
"""
import errno
import select
import socket
import subprocess
import sys
import threading
import time

from netutil import family_of, read_line, report


def hold(c):
    read_line(c)
    c.sendall(b"ok\n")
    while c.recv(4096):
        pass


def blackhole(host):
    # The local table's rule (priority 0) answers for our own addresses first: move it after
    # a blackhole rule for the server's address.
    v = "-6" if ":" in host else "-4"
    for args in (["add", "pref", "50", "to", host, "blackhole"],
                 ["add", "pref", "100", "lookup", "local"],
                 ["del", "pref", "0", "lookup", "local"]):
        subprocess.run(["ip", v, "rule"] + args, check=True)


mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    s = socket.socket(family_of(host))
    s.bind((host, port))
    s.listen(5)
    while True:
        c, _ = s.accept()
        threading.Thread(target=hold, args=(c,), daemon=True).start()
what, wait = sys.argv[4], float(sys.argv[5])
c = socket.socket(family_of(host))
c.connect((host, port))
c.sendall(b"hello\n")
read_line(c)
blackhole(host)
start = time.monotonic()
if what == "unacked":
    c.sendall(b"x" * 1000)
TCP_CLOSE = 7
deadline = start + wait
while time.monotonic() < deadline:
    select.select([c], [], [], deadline - time.monotonic())
    if c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] == TCP_CLOSE:
        elapsed = time.monotonic() - start
        err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        report(dead_after_s="%.2f" % elapsed, error=errno.errorcode.get(err, err))
        sys.exit(0)
    time.sleep(0.05)  # readable with a soft error only: the connection is still there
report(dead_after_s="none", error="none")
