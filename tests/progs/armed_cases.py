"""Programs that connect and then do something other than write first, against peers in this
process (threads on Fast Open listeners on 127.0.0.1, PORT to PORT+3).

usage: armed_cases.py PORT MODE
  MODE plain: an ordinary program. raw: the program sets TCP_FASTOPEN_CONNECT itself, which
  shows what the kernel does to each case; run it without the shim. Under the shim with
  SOCKTUNE_FASTOPEN_CONNECT=1, MODE plain must behave as plain TCP does, with the first write's
  data in the SYN.
Each case prints CASE=1 when the program saw what a plain connect() gives it, else CASE=0 (a
hang is cut at a few seconds). Also: syn data flags, the connect() errno of a non-blocking
connect (nb_connect), a second connect's answer (nb_again), getpeername's answer, and
TCPFastOpenActive's increase across the getpeername case (tfo_active).
"""
import asyncio
import errno
import os
import queue
import select
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from netutil import report, syn_data

HOST = "127.0.0.1"
PORT, MODE = int(sys.argv[1]), sys.argv[2]
TFO_CONNECT = 30  # TCP_FASTOPEN_CONNECT
LIMIT = 3.0
events = queue.Queue()  # what the echo peer saw first on each connection: b"" means EOF


def read_line(sock):
    """Up to and including the first newline; b"" at EOF."""
    got = b""
    while b"\n" not in got:
        d = sock.recv(4096)
        if not d:
            return b""
        got += d
    return got


class Hang(Exception):
    pass


def on_alarm(*_):
    raise Hang()


signal.signal(signal.SIGALRM, on_alarm)


def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    s.bind((HOST, port))
    s.listen(16)
    return s


def client(nonblocking=False):
    c = socket.socket()
    if MODE == "raw":
        c.setsockopt(socket.IPPROTO_TCP, TFO_CONNECT, 1)
    c.setblocking(not nonblocking)
    return c


def connect(port):
    c = client()
    c.connect((HOST, port))
    return c


def serve(l, handle):
    def loop():
        while True:
            c, _ = l.accept()
            threading.Thread(target=handle, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


data_listener = listener(PORT + 1)


def echo(c):
    """PING -> PONG; DATA -> accept the data connection on PORT+1, then OK (or TIMEOUT)."""
    with c:
        first = True
        while True:
            try:
                line = read_line(c)
            except (OSError, ConnectionError):
                line = b""
            if first:
                events.put(line)
                first = False
            if not line:
                return
            if line == b"DATA\n":
                data_listener.settimeout(LIMIT)
                try:
                    d, _ = data_listener.accept()
                    d.close()
                    c.sendall(b"OK\n")
                except socket.timeout:
                    c.sendall(b"TIMEOUT\n")
            else:
                c.sendall(b"PONG\n")


def ping(c):
    c.sendall(b"PING\n")
    return read_line(c) == b"PONG\n"


def peer_saw_eof():
    try:
        return events.get(timeout=LIMIT) == b""
    except queue.Empty:
        return False


def bounded(case):
    signal.setitimer(signal.ITIMER_REAL, LIMIT + 1)
    try:
        return int(bool(case()))
    except (Hang, OSError, ssl.SSLError, asyncio.TimeoutError, queue.Empty):
        return 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def tfo_active():
    with open("/proc/net/netstat") as f:
        rows = [l.split() for l in f if l.startswith("TcpExt:")]
    return int(rows[1][rows[0].index("TCPFastOpenActive")])


results = {}
serve(listener(PORT), echo)
# The first connection fetches the cookie (cached per server address, so for every port here).
warm = connect(PORT)
ping(warm)
events.get(timeout=LIMIT)
warm.close()


def close_first():
    connect(PORT).close()
    return peer_saw_eof()


def shutdown_first():
    c = connect(PORT)
    c.shutdown(socket.SHUT_WR)
    saw = peer_saw_eof()
    return saw and c.recv(10) == b""


def getpeername_in_syn():
    before = tfo_active()
    c = connect(PORT)
    name = c.getpeername()
    results["peername_ok"] = int(name == (HOST, PORT))
    ok = ping(c)
    events.get(timeout=LIMIT)
    results["peername_syn_data"] = syn_data(c)
    results["tfo_active"] = tfo_active() - before
    c.close()
    return ok and name == (HOST, PORT)


def passive_ftp():
    # Control connection, then the data connection; the command goes on the control one, and
    # only it is polled: the peer accepts the data connection before it answers.
    ctl = connect(PORT)
    ping(ctl)
    events.get(timeout=LIMIT)
    data = connect(PORT + 1)
    ctl.sendall(b"DATA\n")
    p = select.poll()
    p.register(ctl, select.POLLIN)
    ok = bool(p.poll(int(LIMIT * 1000 + 1000))) and read_line(ctl) == b"OK\n"
    data.close()
    ctl.close()
    return ok


def connect_then_accept():
    l = listener(PORT + 2)
    c = connect(PORT + 2)
    a, _ = l.accept()  # blocking, in the thread that connected
    a.close()
    c.close()
    l.close()
    return True


def tcp_state(sock):
    """The socket's TCP state from /proc/net/tcp ("01" established, "02" SYN-SENT): reading a
    file is not a call on the socket."""
    port = "%04X" % sock.getsockname()[1]
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1].endswith(":" + port):
                return fields[3]
    return "?"


def deadline():
    # Connect, then compute for 50 ms without a call the shim sees.
    c = connect(PORT)
    t = time.perf_counter()
    while time.perf_counter() < t + 0.05:
        pass
    state = tcp_state(c)
    ok = ping(c)
    events.get(timeout=LIMIT)
    c.close()
    return ok and state == "01"


def sendfile_first():
    c = connect(PORT)
    with tempfile.TemporaryFile() as f:
        f.write(b"PING\n")
        f.flush()
        os.sendfile(c.fileno(), f.fileno(), 0, 5)
    ok = read_line(c) == b"PONG\n"
    events.get(timeout=LIMIT)
    c.close()
    return ok


def event_loop():
    order = []

    async def main():
        s = client(nonblocking=True)
        rc = s.connect_ex((HOST, PORT))
        results["nb_connect"] = errno.errorcode.get(rc, rc)
        again = s.connect_ex((HOST, PORT))
        results["nb_again"] = errno.errorcode.get(again, again)
        s.close()
        s = client(nonblocking=True)
        loop = asyncio.get_running_loop()
        loop.call_soon(order.append, "soon")
        await asyncio.wait_for(loop.sock_connect(s, (HOST, PORT)), LIMIT)
        order.append("connected")
        results["so_error"] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        reader, writer = await asyncio.open_connection(sock=s)
        writer.write(b"PING\n")
        line = await asyncio.wait_for(reader.readline(), LIMIT)
        results["loop_syn_data"] = syn_data(s)
        writer.close()
        return line == b"PONG\n"

    ok = asyncio.run(main())
    results["loop_order"] = ",".join(order)
    return ok


def tls():
    work = tempfile.mkdtemp()
    key, cert = os.path.join(work, "k.pem"), os.path.join(work, "c.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True, env=dict(os.environ, LD_PRELOAD=""))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)

    def handle(c):
        try:
            with sctx.wrap_socket(c, server_side=True) as t:
                if read_line(t) == b"PING\n":
                    t.sendall(b"PONG\n")
        except (OSError, ssl.SSLError):
            pass

    serve(listener(PORT + 3), handle)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    c = connect(PORT + 3)
    t = cctx.wrap_socket(c)  # checks getpeername: connected, so the handshake starts now
    ok = ping(t)
    results["tls_syn_data"] = syn_data(t)
    t.close()
    return ok


for case in (close_first, shutdown_first, getpeername_in_syn, passive_ftp, connect_then_accept,
             deadline, sendfile_first, event_loop, tls):
    results[case.__name__] = bounded(case)
    while not events.empty():
        events.get()
report(mode=MODE, **results)
