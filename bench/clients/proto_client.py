"""Clients of the matrix's non-HTTP programs: each sets no socket option and checks every reply.

usage: proto_client.py PROTOCOL HOST PORT N PER_CONN EXPECTED_FILE [SECONDS [WARM]]
PROTOCOL is redis, memcached, postgres, mysql, ftp or smtp. One operation fetches (or, for smtp,
sends) the 100 bytes of EXPECTED_FILE and checks them byte for byte: redis GET, memcached get,
a PostgreSQL or MariaDB query that echoes them, an FTP RETR in passive mode (a second connection
to the same host each time), an SMTP message that the server checks. A new connection every
PER_CONN operations (login, greeting and all). WARM (default 1) unmeasured warm-up operations
first, each on its own connection (the first stores the value, and fetches the Fast Open cookie):
2 for a forking server-speaks-first program, whose first two connections pay under defer-accept. Latency is per operation,
including its connect when it opens one. Prints the fields of common.summary, plus first_ms (the
warm-ups, connects included: what a server-speaks-first program pays under defer-accept).
With SECONDS it stops early, after the first operation that ends past SECONDS of measuring.
With BENCH_TURNS it measures in turns with a twin (common.Turns).
"""
import ftplib
import io
import smtplib
import socket
import sys
import time

from common import Turns, summary, tcpext

proto, host, port, n, per_conn, expected_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6]
seconds = float(sys.argv[7]) if len(sys.argv) > 7 else float("inf")
warm_conns = int(sys.argv[8]) if len(sys.argv) > 8 else 1
with open(expected_file, "rb") as f:
    EXPECTED = f.read()
TIMEOUT = 30


def fail(msg):
    sys.exit("proto_client %s: %s" % (proto, msg))


def check(got, what):
    if got != EXPECTED:
        fail("%s differs from %s: %r (want %d bytes)" % (what, expected_file, got[:60], len(EXPECTED)))


class Lines:
    """A socket read by lines and by counts, for the text protocols."""

    def __init__(self):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            fail("server closed the connection")
        self.buf += d

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, count):
        while len(self.buf) < count:
            self.fill()
        data, self.buf = self.buf[:count], self.buf[count:]
        return data

    def close(self):
        self.sock.close()


class Redis(Lines):
    def store(self):
        self.sock.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (len(EXPECTED), EXPECTED))
        if self.line() != b"+OK":
            fail("SET not answered +OK")

    def op(self):
        self.sock.sendall(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        head = self.line()
        if not head.startswith(b"$"):
            fail("GET answered %r" % head)
        data = self.exact(int(head[1:]) + 2)
        check(data[:-2], "GET's value")


class Memcached(Lines):
    def store(self):
        self.sock.sendall(b"set k 0 0 %d\r\n%s\r\n" % (len(EXPECTED), EXPECTED))
        if self.line() != b"STORED":
            fail("set not STORED")

    def op(self):
        self.sock.sendall(b"get k\r\n")
        head = self.line().split()
        if head[:2] != [b"VALUE", b"k"]:
            fail("get answered %r" % head)
        data = self.exact(int(head[3]) + 2)
        check(data[:-2], "get's value")
        if self.line() != b"END":
            fail("get's reply did not end with END")


class Postgres:
    def __init__(self):
        import pg8000.native
        self.conn = pg8000.native.Connection("postgres", host=host, port=port, database="postgres", timeout=TIMEOUT)

    def store(self):
        pass

    def op(self):
        check(self.conn.run("SELECT :v::text", v=EXPECTED.decode())[0][0].encode(), "the query's row")

    def close(self):
        self.conn.close()


class Mysql:
    def __init__(self):
        import pymysql
        self.conn = pymysql.connect(host=host, port=port, user="root", connect_timeout=TIMEOUT,
                                    read_timeout=TIMEOUT, write_timeout=TIMEOUT)
        self.cur = self.conn.cursor()

    def store(self):
        pass

    def op(self):
        self.cur.execute("SELECT %s", (EXPECTED.decode(),))
        check(self.cur.fetchone()[0].encode(), "the query's row")

    def close(self):
        self.conn.close()


class Ftp:
    def __init__(self):
        self.ftp = ftplib.FTP()
        self.ftp.connect(host, port, timeout=TIMEOUT)
        self.ftp.login()
        self.ftp.set_pasv(True)

    def store(self):
        pass

    def op(self):
        out = io.BytesIO()
        self.ftp.retrbinary("RETR body", out.write)
        check(out.getvalue(), "RETR body")

    def close(self):
        self.ftp.quit()


class Smtp:
    """The server (bench/apps/smtp_check.py) answers 250 only when the message body is EXPECTED."""

    def __init__(self):
        self.smtp = smtplib.SMTP(host, port, timeout=TIMEOUT)
        self.smtp.ehlo()

    def store(self):
        pass

    def op(self):
        refused = self.smtp.sendmail("bench@example.org", ["sink@example.org"],
                                     b"Subject: bench\r\n\r\n" + EXPECTED + b"\r\n")
        if refused:
            fail("recipients refused: %r" % refused)

    def close(self):
        self.smtp.quit()


CLIENTS = {"redis": Redis, "memcached": Memcached, "postgres": Postgres, "mysql": Mysql, "ftp": Ftp, "smtp": Smtp}


def main():
    if proto not in CLIENTS:
        fail("unknown protocol (one of %s)" % ", ".join(CLIENTS))
    kind = CLIENTS[proto]
    tfo0 = tcpext("TCPFastOpenActive")
    t = time.perf_counter()
    try:
        for i in range(warm_conns):
            warm = kind()
            if i == 0:
                warm.store()
            warm.op()
            warm.close()
    except Exception as e:  # a library's error names the protocol step; the traceback adds nothing
        fail("warm-up: %s: %s" % (type(e).__name__, e))
    first_ms = (time.perf_counter() - t) * 1000
    lat, conns, c = [], warm_conns, None
    turns = Turns()
    turns.start()
    try:
        for i in range(n):
            if not turns.go():
                break
            t = time.perf_counter()
            if i % per_conn == 0:
                if c is not None:
                    c.close()
                c = kind()
                conns += 1
            c.op()
            lat.append((time.perf_counter() - t) * 1000)
            turns.done_op()
            if turns.measured() > seconds:
                break
        if c is None:
            fail("its twin stopped before it measured anything")
        c.close()
    except Exception as e:
        fail("operation %d: %s: %s" % (len(lat) + 1, type(e).__name__, e))
    elapsed = turns.stop()
    summary(lat, elapsed, requests=len(lat), requests_total=len(lat) + warm_conns, conns=conns,
            syn_data=tcpext("TCPFastOpenActive") - tfo0, first_ms="%.3f" % first_ms)


main()
