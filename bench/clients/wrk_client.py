"""wrk as a client: `wrk -t1 -c CONNS -d SECS --latency URL`, its report turned into key=value.

usage: wrk_client.py URL CONNS SECS
wrk checks no body, so correctness here is: no socket error and no non-2xx response (errors=).
"""
import re
import subprocess
import sys

from common import tcpext

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
url, conns, secs = sys.argv[1], sys.argv[2], sys.argv[3]
tfo0 = tcpext("TCPFastOpenActive")
run = subprocess.run(["wrk", "-t1", "-c", conns, "-d", secs + "s", "--latency", url],
                     capture_output=True, text=True, timeout=int(secs) + 60)
out = run.stdout
if run.returncode:
    sys.exit("wrk_client: wrk exited %d: %s%s" % (run.returncode, out, run.stderr))


def latency(pct):
    value, unit = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m)$" % pct, out, re.M).groups()
    return "%.3f" % (float(value) * UNITS[unit])


socket_errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)",
                                                (re.search(r"Socket errors:.*", out) or [""])[0]))
non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
requests = int(re.search(r"(\d+) requests in", out).group(1))
print("requests=%d requests_total=%d syn_data=%d errors=%d p50_ms=%s p99_ms=%s req_s=%s"
      % (requests, requests, tcpext("TCPFastOpenActive") - tfo0, socket_errors + non2xx, latency(50),
         latency(99), re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)))
