"""CGI-style child: answers on its stdout, which is the connection (see inetd_server.py).

usage: cgi_child.py SIZE
Writes a line saying whether libsocktune is loaded in this process and when it was written
(time.monotonic, one clock for every process), waits 0.3 s as a CGI doing work would, writes a
second such line, then SIZE bytes of netutil.body_bytes, each with one os.write to fd 1, and exits.
"""
import os
import sys
import time

from netutil import body_bytes

size = int(sys.argv[1])
with open("/proc/self/maps") as maps:
    loaded = int("libsocktune" in maps.read())
for i in range(2):
    if i:
        time.sleep(0.3)
    os.write(1, b"preloaded=%d sent_at=%.6f\r\n" % (loaded, time.monotonic()))
data = body_bytes(size)
while data:
    data = data[os.write(1, data):]
