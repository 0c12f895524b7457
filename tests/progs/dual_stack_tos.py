"""A dual-stack listener ([::]:PORT) accepts an IPv4 client: reports the accepted (v4-mapped
IPv6) socket's IP_TOS, which sets the TOS byte of its IPv4 packets, and its IPV6_TCLASS.

usage: dual_stack_tos.py PORT
It sets no option.
"""
import socket
import sys

from netutil import report

IPV6_TCLASS = 67
port = int(sys.argv[1])
listener = socket.socket(socket.AF_INET6)
listener.bind(("::", port))
listener.listen(1)
client = socket.create_connection(("127.0.0.1", port))
accepted, peer = listener.accept()
report(
    peer=peer[0],
    ip_tos=accepted.getsockopt(socket.IPPROTO_IP, socket.IP_TOS),
    tclass=accepted.getsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS),
)
