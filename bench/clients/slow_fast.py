"""Slow and fast clients at once, for defer-accept in front of a prefork server.

usage: slow_fast.py HOST PORT PATH EXPECTED_FILE SLOW FAST PAUSE
SLOW clients connect and stay silent for PAUSE seconds before sending their request (a slow
network, a client thinking). 0.1 s after they connect, FAST clients connect and send at once, all
together. Prints the fast clients' time from connect() to their full response (fast_p50_ms,
fast_max_ms) and how many slow clients were answered correctly (slow_ok). Every response body
is compared with EXPECTED_FILE. Sets no socket option.
"""
import socket
import statistics
import sys
import threading
import time

host, port, path, expected_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
slow, fast, pause = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
with open(expected_file, "rb") as f:
    expected = f.read()
request = b"GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode())


def fetch(c):
    """Send the request on connected socket c and read to the close; True if the body is right."""
    c.sendall(request)
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    c.close()
    return got.startswith(b"HTTP/1.") and got.split(b"\r\n\r\n", 1)[-1] == expected


def slow_client(results):
    c = socket.create_connection((host, port), timeout=60)
    time.sleep(pause)
    results.append(fetch(c))


def fast_client(results):
    t = time.perf_counter()
    ok = fetch(socket.create_connection((host, port), timeout=60))
    results.append((time.perf_counter() - t) * 1000 if ok else None)


def run_all(target, count, results):
    threads = [threading.Thread(target=target, args=(results,)) for _ in range(count)]
    for t in threads:
        t.start()
    return threads


slow_ok, fast_ms = [], []
threads = run_all(slow_client, slow, slow_ok)
time.sleep(0.1)
threads += run_all(fast_client, fast, fast_ms)
for t in threads:
    t.join()
if None in fast_ms:
    sys.exit("slow_fast: a fast client got a wrong response")
print("fast_p50_ms=%.3f fast_max_ms=%.3f slow_ok=%d" % (statistics.median(fast_ms), max(fast_ms), sum(slow_ok)))
