"""Servers that start processes in the two ways no fork handler announces, and their client.

usage: raw_clone.py server STYLE HOST PORT      STYLE: clone | subprocess
       raw_clone.py client HOST PORT N

Per connection the server reads a request line and answers in two sends ("header\\r\\n" and
"body\\r\\n"), then closes the connection.
- clone: a forking server that forks as vsftpd does, by the clone system call through libc's
  syscall() (ctypes): no fork handler runs in either process. The child closes its copy of the
  listener and answers; the parent closes its copy of the connection and reaps the child.
- subprocess: the server answers itself, but first runs /bin/true by subprocess with close_fds
  (a vfork child on Python >= 3.10, which closes every fd above 2 before it execs, the open
  connection's included).
The server prints pid=<its pid>. The client makes N connections one after another and prints
conns=N once every answer was whole.
"""
import ctypes
import os
import socket
import subprocess
import sys

from netutil import family_of, read_line, recv_until_close

REPLY = (b"header\r\n", b"body\r\n")
SYS_CLONE = 56  # x86-64
SIGCHLD = 17


def raw_fork():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pid = libc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_long(SIGCHLD), ctypes.c_long(0),
                       ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
    if pid < 0:
        sys.exit("clone failed: errno %d" % ctypes.get_errno())
    return pid


def answer(c):
    read_line(c)
    for part in REPLY:
        c.send(part)
    c.close()


def server(style, host, port):
    listener = socket.socket(family_of(host))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(16)
    print("pid=%d" % os.getpid(), flush=True)
    while True:
        c, _ = listener.accept()
        if style == "subprocess":
            read_line(c)
            subprocess.run(["/bin/true"], close_fds=True, check=True)
            for part in REPLY:
                c.send(part)
            c.close()
            continue
        pid = raw_fork()
        if pid == 0:
            listener.close()
            answer(c)
            os._exit(0)
        c.close()
        os.waitpid(pid, 0)


def client(host, port, n):
    for i in range(n):
        c = socket.create_connection((host, port))
        c.settimeout(10)
        c.sendall(b"GET %d\r\n" % i)
        got = recv_until_close(c)
        c.close()
        if got != b"".join(REPLY):
            sys.exit("connection %d: got %r" % (i, got))
    print("conns=%d" % n)


if sys.argv[1] == "server":
    server(sys.argv[2], sys.argv[3], int(sys.argv[4]))
else:
    client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
