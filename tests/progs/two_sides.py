"""One process with two listeners and two kinds of outgoing connection, as a proxy has:
reports the options each socket ended up with, read back.

usage: two_sides.py PORT_A PORT_B
Listens on 127.0.0.1:PORT_A and [::1]:PORT_B, connects to each (client sockets ca and cb),
accepts both (sa and sb), and reports for each socket its keepalive idle time (0 when
SO_KEEPALIVE is off), TOS/traffic class, mark, priority and TCP_USER_TIMEOUT, as
<socket>_<option>=value. It sets no option.
"""
import socket
import sys

from netutil import report

SO_PRIORITY, SO_MARK, IPV6_TCLASS, TCP_USER_TIMEOUT = 12, 36, 67, 18


def options(name, s):
    g = s.getsockopt
    tos = (socket.IPPROTO_IPV6, IPV6_TCLASS) if s.family == socket.AF_INET6 else (socket.IPPROTO_IP, socket.IP_TOS)
    keepalive = g(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
    return {
        name + "_ka": g(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) if keepalive else 0,
        name + "_tos": g(*tos),
        name + "_mark": g(socket.SOL_SOCKET, SO_MARK),
        name + "_prio": g(socket.SOL_SOCKET, SO_PRIORITY),
        name + "_ut": g(socket.IPPROTO_TCP, TCP_USER_TIMEOUT),
    }


port_a, port_b = int(sys.argv[1]), int(sys.argv[2])
la = socket.socket(socket.AF_INET)
la.bind(("127.0.0.1", port_a))
la.listen(5)
lb = socket.socket(socket.AF_INET6)
lb.bind(("::1", port_b))
lb.listen(5)
ca = socket.create_connection(("127.0.0.1", port_a))
cb = socket.create_connection(("::1", port_b))
sa, _ = la.accept()
sb, _ = lb.accept()
fields = {}
for name, s in [("ca", ca), ("cb", cb), ("sa", sa), ("sb", sb)]:
    fields.update(options(name, s))
report(**fields)
for s in (ca, cb, sa, sb, la, lb):
    s.close()
