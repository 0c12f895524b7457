"""Python's ftplib, passive mode, against an FTP server on HOST:PORT: N rounds of an upload (the
client writes the data connection first) and a download (it only reads it), each on a new data
connection, checked byte for byte.

usage: ftp_client.py HOST PORT N TIMEOUT [DIR [SIZE]]    TIMEOUT 0: blocking sockets (no timeout);
files of SIZE bytes (65536 by default) go to DIR (with its slash), "" by default.
Reports rounds (those that came back intact), and the namespace's TCPFastOpenActive and
TCPFastOpenPassive increases: tfo_active (SYNs whose data the server took), tfo_passive
(connections the server accepted on a Fast Open cookie, data or not), and retr_ms_max, the
slowest download's milliseconds from RETR to the end of its data.
"""
import ftplib
import io
import sys
import time

from netutil import body_bytes, report


def counters():
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    return [int(rows[1][rows[0].index(n)]) for n in ("TCPFastOpenActive", "TCPFastOpenPassive")]


host, port, n, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
before = counters()
ftp = ftplib.FTP(timeout=timeout or None)
ftp.connect(host, port)
ftp.login()
ftp.set_pasv(True)
body = body_bytes(int(sys.argv[6]) if len(sys.argv) > 6 else 65536)
ok = 0
retr_ms_max = 0.0
for i in range(n):
    name = "%sup%d" % (sys.argv[5] if len(sys.argv) > 5 else "", i)
    ftp.storbinary("STOR " + name, io.BytesIO(body))
    got = io.BytesIO()
    start = time.monotonic()
    ftp.retrbinary("RETR " + name, got.write)
    retr_ms_max = max(retr_ms_max, (time.monotonic() - start) * 1000)
    ok += got.getvalue() == body
ftp.quit()
after = counters()
report(rounds=ok, tfo_active=after[0] - before[0], tfo_passive=after[1] - before[1],
       retr_ms_max="%.1f" % retr_ms_max)
