"""A server that, after answering, blocks where socktune cannot see it: the kind of program that
would leave a held response waiting if nothing bounded the hold.

usage: stalling_loop.py server HOST PORT BLOCK_S [MODE]
       stalling_loop.py client HOST PORT N
The server answers each request line with two sends ("part1 ", then "part2\\n"), then blocks
BLOCK_S seconds in a read of a pipe that a helper process fills after that time. MODE `loop`
(the default) serves from a select() loop; `nproc0` serves one connection with blocking calls,
after dropping to user nobody with RLIMIT_NPROC at 0, as vsftpd's sessions do, so that no thread
can be created. The client sends N requests one after the other, each once the server's block
is over, and reports lat_ms (each full answer's arrival, in ms, comma-separated) and data_segs
(data segments received per answer, from TCP_INFO). Sets no socket option.
"""
import os
import resource
import select
import socket
import struct
import sys
import time

from netutil import family_of, read_line, report

role, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

if role == "server":
    block = float(sys.argv[4])
    mode = sys.argv[5] if len(sys.argv) > 5 else "loop"
    listener = socket.socket(family_of(host))
    listener.bind((host, port))
    listener.listen(4)
    # The helper, made before anything else, sleeps BLOCK_S whenever asked.
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    if os.fork() == 0:
        while os.read(go_r, 1):
            time.sleep(block)
            os.write(done_w, b"x")
        os._exit(0)

    def answer(s):
        if not s.recv(4096):
            return False
        s.send(b"part1 ")
        s.send(b"part2\n")
        os.write(go_w, b"x")
        os.read(done_r, 1)
        return True

    if mode == "nproc0":
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        os.setgid(65534)
        os.setuid(65534)
        c, _ = listener.accept()
        while answer(c):
            pass
        sys.exit(0)
    conns = []
    while True:
        ready, _, _ = select.select([listener] + conns, [], [], 5)
        for s in ready:
            if s is listener:
                conns.append(listener.accept()[0])
            elif not answer(s):
                conns.remove(s)
                s.close()
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
