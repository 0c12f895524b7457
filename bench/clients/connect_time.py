"""RTT probe for the link check: COUNT connects, then one-byte ping-pongs on the last connection.

usage: connect_time.py HOST PORT COUNT
Prints connect_p50_ms (a connect() is one SYN/SYN-ACK round trip), ping_p50_ms (a one-byte echo)
and tcpi_rtt_ms (the kernel's smoothed RTT of the last connection, TCP_INFO offset 68, in µs).
"""
import socket
import statistics
import struct
import sys
import time

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
connects, pings = [], []
for i in range(count):
    t = time.perf_counter()
    c = socket.create_connection((host, port), timeout=10)
    connects.append((time.perf_counter() - t) * 1000)
    if i < count - 1:
        c.close()
for _ in range(count):
    t = time.perf_counter()
    c.sendall(b"p")
    if c.recv(1) != b"p":
        sys.exit("echo failed")
    pings.append((time.perf_counter() - t) * 1000)
rtt_us = struct.unpack_from("I", c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512), 68)[0]
c.close()
print("connect_p50_ms=%.3f ping_p50_ms=%.3f tcpi_rtt_ms=%.3f"
      % (statistics.median(connects), statistics.median(pings), rtt_us / 1000))
