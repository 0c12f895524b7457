"""inetd/CGI-style server: a child process answers each connection on its stdout.

usage: inetd_server.py HOST PORT STYLE     STYLE: fork-exec | subprocess | posix_spawn
Per connection: reads the request line (a body size), writes the status line itself, then starts
tests/progs/cgi_child.py with the connection as its fd 1 (os.fork + os.dup2 + os.execv;
subprocess.Popen(stdout=...), which uses vfork; or os.posix_spawn with a dup2 file action),
closes its own copy and reaps the child. Sets no socket option.
"""
import os
import socket
import sys

from netutil import family_of

host, port, style = sys.argv[1], int(sys.argv[2]), sys.argv[3]
child = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cgi_child.py")]
s = socket.socket(family_of(host))
s.bind((host, port))
s.listen(16)
while True:
    conn, _ = s.accept()
    size = conn.makefile("rb").readline().strip()
    conn.send(b"HTTP/1.0 200 OK\r\n")
    argv = child + [size.decode()]
    if style == "fork-exec":
        pid = os.fork()
        if pid == 0:
            os.dup2(conn.fileno(), 1)
            os.execv(argv[0], argv)
    elif style == "subprocess":
        pid = __import__("subprocess").Popen(argv, stdout=conn.fileno()).pid
    else:
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, conn.fileno(), 1)])
    conn.close()
    os.waitpid(pid, 0)
