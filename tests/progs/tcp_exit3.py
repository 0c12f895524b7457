"""A small loopback TCP exchange that prints the reply and exits with code 3.

Used to check that a bad configuration leaves a program's stdout and exit code unchanged.
"""
import socket
import sys
import threading

from netutil import read_line, recv_until_close

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)


def serve():
    c, _ = srv.accept()
    c.sendall(b"echo: " + read_line(c))
    c.close()


t = threading.Thread(target=serve)
t.start()
cli = socket.create_connection(srv.getsockname())
cli.sendall(b"ping\n")
print(recv_until_close(cli).decode().strip())
cli.close()
t.join()
sys.exit(3)
