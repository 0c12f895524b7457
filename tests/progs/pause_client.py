"""Connect, wait PAUSE seconds, then send one line and read the reply until close.

usage: pause_client.py HOST PORT PAUSE
Stands for a client whose first data comes well after the handshake (defer-accept scenario).
"""
import socket
import sys
import time

from netutil import recv_until_close, report

host, port, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = socket.create_connection((host, port))
time.sleep(pause)
c.sendall(b"hello after a pause\n")
report(reply_bytes=len(recv_until_close(c)))
c.close()
