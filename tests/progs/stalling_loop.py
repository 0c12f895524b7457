"""A select() loop that, after answering, blocks where socktune cannot see it: the kind of event
loop that would leave a held response waiting if socktune trusted every loop to come back to
its wait.

usage: stalling_loop.py server HOST PORT BLOCK_S
       stalling_loop.py client HOST PORT N
The server answers each request line with two sends ("part1 ", then "part2\\n"), then blocks
BLOCK_S seconds in a read of a pipe that a helper thread fills after that time, and goes back
to select(). The
client sends N requests one after the other and reports lat_ms (each full answer's arrival, in
ms, comma-separated) and data_segs (data segments received per answer, from TCP_INFO).
Sets no socket option.
"""
import os
import select
import socket
import struct
import sys
import threading
import time

from netutil import family_of, read_line, report

role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

if role == "server":
    block = float(sys.argv[4])
    listener = socket.socket(family_of(host))
    listener.bind((host, port))
    listener.listen(4)
    conns = []
    # The helper is started now: starting a thread waits for it (a boundary socktune sees).
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()

    def helper():
        while os.read(go_r, 1):
            time.sleep(block)
            os.write(done_w, b"x")

    threading.Thread(target=helper, daemon=True).start()
    while True:
        ready, _, _ = select.select([listener] + conns, [], [], 5)
        for s in ready:
            if s is listener:
                conns.append(listener.accept()[0])
                continue
            if not s.recv(4096):
                conns.remove(s)
                s.close()
                continue
            s.send(b"part1 ")
            s.send(b"part2\n")
            os.write(go_w, b"x")
            os.read(done_r, 1)
else:
    n = int(sys.argv[4])
    c = socket.create_connection((host, port))
    lat = []
    for i in range(n):
        if i:
            time.sleep(1.6)
        start = time.monotonic()
        c.sendall(b"request\n")
        if read_line(c) != b"part1 part2\n":
            sys.exit("wrong answer")
        lat.append((time.monotonic() - start) * 1000)
    info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512)
    data_segs_in = struct.unpack_from("I", info, 152)[0]
    report(lat_ms=",".join("%.1f" % t for t in lat), data_segs="%.2f" % (data_segs_in / n))
