#!/usr/bin/env python3
"""Load: untuned nginx under many concurrent keep-alive wrk connections, without and with the shim.

usage: load.py --lib PATH [--conns 1000] [--duration 30] [--sendfile on|off] [--env K=V ...]

Checks for nginx and wrk (scripts/setup.sh installs them; a missing one fails, naming it), then in
a private network namespace (`unshare -n`, lo up, see
netns.py) runs each variant once, in random order: "plain" (no shim) and "shim" (LD_PRELOAD=lib
plus --env, default SOCKTUNE_CORK=1). Each variant starts nginx afresh: 2 workers, sendfile on
(header by writev, body by sendfile: without the shim, Nagle and delayed ACKs stall each
response 40 ms; --sendfile off gives one writev per response and no stall), tcp_nopush off,
tcp_nodelay off (so the program never takes cork or Nagle over from the shim), keep-alive, one
small static file. wrk runs -t2 -c CONNS -d DURATION with load_check.lua, which
compares every response body with the file byte for byte.

While wrk runs, the workers' open fds (/proc/PID/fd) and VmRSS are summed every SAMPLE seconds.

stdout: one line of key=value pairs, for each variant V (plain, shim):
  V_req_s, V_requests (wrk), V_errors (wrk's connect+read+write+timeout errors and non-2xx/3xx
  responses), V_good and V_bad (responses load_check.lua found exact / not),
  V_fd_idle (before wrk), V_fd_start, V_fd_mid, V_fd_end (while it runs), V_fd_after (after it),
  V_rss_start_kb, V_rss_mid_kb, V_rss_end_kb, V_rss_growth2_kb (the highest RSS of the second
  half minus the RSS at mid-run), V_user_us_per_req and V_sys_us_per_req (the workers' CPU time,
  all threads, per response served), and order=first,second.
Exit status 2 on a setup failure (no namespace, a tool missing).
"""
import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import netns
import tools

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 8080
BODY_SIZE = 1024
WARMUP = 2.0  # seconds for wrk to open every connection before the first sample
SAMPLE = 2.0
TOOLS = (("nginx", "nginx-light"), ("wrk", "wrk"))

NGINX_CONF = """\
user root;  # the files live in a private temporary directory
worker_processes 2;
worker_rlimit_nofile {nofile};
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile {sendfile};
    tcp_nopush off;
    tcp_nodelay off;
    keepalive_timeout 65s;
    keepalive_requests 1000000;  # connections stay open for the whole run: fd counts are exact
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;  # wrk opens every connection at once
        root {work}/www;
    }}
}}
"""


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True, help="path of libsocktune.so")
    p.add_argument("--conns", type=int, default=1000)
    p.add_argument("--duration", type=int, default=30, help="seconds wrk runs per variant")
    p.add_argument("--sendfile", choices=("on", "off"), default="on",
                   help="off: nginx writes header and body in one writev, so there is no Nagle stall to remove")
    p.add_argument("--env", action="append", metavar="K=V", help="shim settings (default SOCKTUNE_CORK=1)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def workers(master):
    with open("/proc/%d/task/%d/children" % (master, master)) as f:
        return [int(p) for p in f.read().split()]


def sample(pids):
    """(open fds, VmRSS in KiB), summed over pids."""
    fds = rss = 0
    for pid in pids:
        fds += len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/status" % pid) as f:
            rss += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


def cpu_seconds(pids):
    """(user, system) CPU seconds used so far by pids, every thread included."""
    user = system = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime (stat fields 14, 15)
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def wrk_fields(out):
    """Requests/s, requests, errors, good and bad responses from wrk's report."""
    def num(pattern, default=None):
        m = re.search(pattern, out)
        if m is None and default is None:
            netns.die("no %r in wrk's output:\n%s" % (pattern, out))
        return m.group(1) if m else default

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(num(r"Non-2xx or 3xx responses: (\d+)", "0"))
    return {"req_s": num(r"Requests/sec:\s+([\d.]+)"), "requests": num(r"(\d+) requests in"),
            "errors": errors, "good": num(r"lua_good=(\d+)"), "bad": num(r"lua_bad=(\d+)")}


def start_nginx(args, work, env):
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=work, port=PORT, sendfile=args.sendfile, nofile=resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    err = open(os.path.join(work, "nginx.stderr"), "w+")
    nginx = subprocess.Popen([tools.which("nginx"), "-p", work, "-c", conf, "-e", os.path.join(work, "error.log")],
                             env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True)
    deadline = time.monotonic() + netns.LISTEN_WAIT
    while not (netns.listening(PORT) and len(workers(nginx.pid)) == 2):
        if nginx.poll() is not None or time.monotonic() > deadline:
            netns.stop(nginx)
            err.seek(0)
            netns.die("nginx did not start:\n" + err.read())
        time.sleep(0.05)
    return nginx


def variant(args, name, work):
    """Runs nginx (shimmed or not) under wrk; returns its result fields, prefixed name_."""
    env = netns.child_env(args, name == "shim", args.env or ["SOCKTUNE_CORK=1"])
    nginx = start_nginx(args, work, env)
    try:
        pids = workers(nginx.pid)
        res = {"fd_idle": sample(pids)[0]}
        cpu0 = cpu_seconds(pids)
        wrk = subprocess.Popen([tools.which("wrk"), "-t2", "-c%d" % args.conns, "-d%ds" % args.duration, "--latency",
                                "-s", os.path.join(HERE, "load_check.lua"), "http://127.0.0.1:%d/body" % PORT,
                                "--", os.path.join(work, "www", "body")],
                               env=netns.child_env(args, False, []), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        start = time.monotonic()
        time.sleep(WARMUP)
        samples = []  # (seconds since wrk started, fds, rss)
        while wrk.poll() is None and time.monotonic() - start < args.duration - 0.5:
            samples.append((time.monotonic() - start,) + sample(pids))
            time.sleep(SAMPLE)
        out = wrk.communicate(timeout=args.duration + 60)[0]
        if wrk.returncode:
            netns.die("wrk failed (%d):\n%s" % (wrk.returncode, out))
        print("[%s] wrk:\n%s" % (name, out), file=sys.stderr, flush=True)
        deadline = time.monotonic() + 5  # nginx closes each connection once wrk's close reaches it
        while sample(pids)[0] > res["fd_idle"] and time.monotonic() < deadline:
            time.sleep(0.1)
        res["fd_after"] = sample(pids)[0]
        cpu = [b - a for a, b in zip(cpu0, cpu_seconds(pids))]
    finally:
        netns.stop(nginx)
    if len(samples) < 3:
        netns.die("only %d samples in %d s" % (len(samples), args.duration))
    mid = min(samples, key=lambda s: abs(s[0] - args.duration / 2))
    second_half = [s for s in samples if s[0] >= mid[0]]
    res.update(fd_start=samples[0][1], fd_mid=mid[1], fd_end=samples[-1][1],
               rss_start_kb=samples[0][2], rss_mid_kb=mid[2], rss_end_kb=samples[-1][2],
               rss_growth2_kb=max(s[2] for s in second_half) - mid[2], samples=len(samples))
    res.update(wrk_fields(out))
    served = int(res["good"]) + int(res["bad"]) or 1
    res.update(user_us_per_req="%.2f" % (cpu[0] * 1e6 / served), sys_us_per_req="%.2f" % (cpu[1] * 1e6 / served))
    return {"%s_%s" % (name, k): v for k, v in res.items()}


def run(args):
    netns.setup_namespace(None)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]  # raising it may be forbidden even to root
    nofile = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if nofile < 2 * args.conns + 100:
        netns.die("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (hard, args.conns))
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))  # inherited: one fd per connection
    order = random.sample(["plain", "shim"], 2)  # neither variant always runs on a warm machine
    res = {"order": ",".join(order)}
    for name in order:
        work = tempfile.mkdtemp(prefix="socktune-load-")
        try:
            os.mkdir(os.path.join(work, "www"))
            with open(os.path.join(work, "www", "body"), "wb") as f:
                f.write(random.Random(BODY_SIZE).randbytes(BODY_SIZE))
            res.update(variant(args, name, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    tools.harness_main(__file__, parse_args(sys.argv[1:]), run, TOOLS)


if __name__ == "__main__":
    main()
