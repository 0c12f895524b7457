"""Read-first client of a server-speaks-first protocol: N connections, one after another, each
waiting for the greeting before it writes. Reports first_ms (the first greeting's wait) and
rest_max_ms (the slowest of the others), and after_two_max_ms (the slowest from the third on).
usage: greet_times.py HOST PORT N [PREFIX]: with PREFIX (a real server's, such as vsftpd's
"220"), any greeting line that starts with it will do, and each session is read to its end
(the server's close after QUIT) before the next begins."""
import socket
import sys
import time

from netutil import GREETING, read_line, recv_until_close

host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prefix = sys.argv[4].encode() if len(sys.argv) > 4 else None
times = []
for _ in range(n):
    t = time.perf_counter()
    c = socket.create_connection((host, port))
    c.settimeout(10)
    line = read_line(c)
    if not (line.startswith(prefix) if prefix else line == GREETING):
        sys.exit("wrong greeting")
    times.append((time.perf_counter() - t) * 1000)
    c.sendall(b"QUIT\r\n")
    if prefix:
        recv_until_close(c)
    c.close()
print("first_ms=%.1f rest_max_ms=%.1f after_two_max_ms=%.1f"
      % (times[0], max(times[1:]), max(times[2:])))
