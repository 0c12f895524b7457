"""curl as a client: N+1 runs of `curl URL`, one process and so one new connection each.

usage: curl_client.py URL N EXPECTED_FILE
The first run is an unmeasured warm-up (it fetches the Fast Open cookie when Fast Open is on).
curl gets no TFO flag: any request in a SYN comes from the shim. Latency is curl's own
time_total; each body is compared with EXPECTED_FILE. syn_data counts the connections whose
request rode in the SYN (the namespace's TCPFastOpenActive counter).
"""
import os
import subprocess
import sys
import tempfile

from common import summary, tcpext

url, n, expected_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(expected_file, "rb") as f:
    expected = f.read()
tfo0 = tcpext("TCPFastOpenActive")
lat = []
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "body")
    for i in range(n + 1):
        run = subprocess.run(["curl", "-sS", "--max-time", "30", "-o", out, "-w", "%{time_total}", url],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit("curl_client: curl exited %d: %s" % (run.returncode, run.stderr.strip()))
        with open(out, "rb") as f:
            if f.read() != expected:
                sys.exit("curl_client: body differs from " + expected_file)
        if i:
            lat.append(float(run.stdout) * 1000)
summary(lat, sum(lat) / 1000, requests=n, requests_total=n + 1, conns=n + 1, syn_data=tcpext("TCPFastOpenActive") - tfo0)
