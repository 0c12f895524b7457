"""Fetches URL N times with curl, one new connection each, and reports the median and slowest
time in ms (p50_ms, max_ms) and conns=N. curl is the program under test: it inherits the
environment, shim included."""
import statistics
import subprocess
import sys

url, n = sys.argv[1], int(sys.argv[2])
times = []
for _ in range(n):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}", url],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    times.append(float(out) * 1000)
print("p50_ms=%.3f max_ms=%.3f conns=%d" % (statistics.median(times), max(times), n))
