#!/usr/bin/env python3
"""What socktune costs, side by side with the same programs without it (run by scripts/bench-cost.sh).

usage: cost.py --lib PATH [--out DIR] [--smoke] [--pairs N] [--launches L] [--turns N] [--secs S]

Everything runs in one private network namespace (`unshare -n`, lo up). Timed figures are the
median of N pairs (default 5) measured interleaved: each round runs every variant of a row once,
the order reversed every other round. Sections:
  start-up   /bin/true started 400 times per pair under each of: no preload, a one-hook C
             preload (the floor any preload costs), socktune with nothing set and with every
             behaviour on (against no preload with the same settings in the environment); and a
             program that makes one socket call, where the stub loads the shim, against itself
             unshimmed. One start at a time in turn, on one CPU: µs added per start (median
             start against median start) and callgrind instructions (scripts/bench_overhead.py's
             start-up section);
  calls      setsockopt (and every system call) the shim adds per response under SOCKTUNE_CORK=1,
             counted by strace -f -c over 1,000 keep-alive requests, as the difference of runs of
             200 and 1,000 requests (start-up cancels out), for a server that splits each
             response (python3 http.server, also with SOCKTUNE_QUICKACK=0), one that already
             sends it in one send() with nodelay on (tests/progs/prefork_server.py nodelay
             whole), untuned nginx and Node.js; then
             gunicorn and http.server with a connection per request (what the shim adds at
             accept, shutdown and close; runs of 100 and 300 connections). Exact;
  load       requests/s and the server's CPU time per request (all its processes and threads,
             from /proc, while the client runs), without and with SOCKTUNE_CORK=1: untuned nginx
             at 100 B and 64 KiB against nginx natively tuned (tcp_nopush, tcp_nodelay), nginx
             tuned, Node.js, Redis, aiohttp and
             gunicorn (sync, 2 workers; also hand-tuned by bench/apps/gunicorn_one_send.py,
             which sends each head with its body). A row's servers all run at once, each on its
             own port, and take turns of load (bench/cost/load_turns.c: 64 keep-alive
             connections, one request outstanding on each, as wrk -c64) of S seconds (default
             0.2), N rounds (default 10) after a warm-up round, the order reversed every other
             round; the servers are started L times (default 30), the start order and ports
             reversed every other time. The requests/s ratio is the median of every round's
             ratio against the baseline's turn beside it; CPU per request is each variant's
             total over its turns. Runs taken seconds apart differ by up to ×2 on this host,
             and two processes of one program by a few per cent: the row "Node.js, the same
             twice" shows what the method reads with nothing to tell apart, and each row's
             launches' own medians are given as quartiles;
  instructions  nginx tuned, Node.js, Redis and aiohttp under callgrind (every process and
             thread), without and with SOCKTUNE_CORK=1: user-space instructions per request over
             5,000 ms of load on one connection after a 3,000 ms warm-up, all of them and the
             shim's own (in libsocktune*.so). The shim's own are exact; all of them move by a
             few per cent with the rate (Redis's and Node.js's timers, Node.js's JIT);
  flusher    the flusher threads an untuned nginx under SOCKTUNE_CORK=1 starts, and their wake-ups
             per second (context switches), under load and idle;
  pool       the p50 of Java's HttpServer (tests/progs/PoolServer.java), a thread-pool server,
             under SOCKTUNE_NODELAY=1 alone and under SOCKTUNE_CORK=1.
Prints a table and writes DIR/cost.json and DIR/cost.md (DIR: bench/results-cost). --smoke runs
each section once, briefly, and fails if any program breaks; its figures mean nothing.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import bench_overhead  # noqa: E402
import netns  # noqa: E402
import tools  # noqa: E402

PORT = 8090
CORK = ["SOCKTUNE_CORK=1"]
PROGS = os.path.join(REPO, "tests", "progs")
APPS = os.path.join(REPO, "bench", "apps")
KA_CLIENT = [sys.executable, os.path.join(PROGS, "ka_client.py"), "127.0.0.1", str(PORT)]
NGINX = {
    "untuned": "tcp_nopush off; tcp_nodelay off; sendfile on;",
    "tuned": "tcp_nopush on; tcp_nodelay on; sendfile on;",
}


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--out", default=os.path.join(REPO, "bench", "results-cost"))
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--pairs", type=int, help="interleaved pairs per timed figure (default 5, smoke 1)")
    p.add_argument("--launches", type=int, help="times a load row's servers are started (default 30, smoke 1)")
    p.add_argument("--turns", type=int, help="rounds of load turns per launch (default 10, smoke 2)")
    p.add_argument("--secs", type=float, help="seconds per load turn (default 0.2)")
    p.add_argument("--only", action="append", metavar="TEXT",
                   help="only the load rows whose name contains TEXT (repeatable), or `start-up` or `instructions` for that section alone; skips the other sections")
    p.add_argument("--bin", help=argparse.SUPPRESS)  # compiled programs and files, made before unshare
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.pairs = args.pairs or (1 if args.smoke else 5)
    args.launches = args.launches or (1 if args.smoke else 30)
    args.turns = args.turns or (2 if args.smoke else 10)
    args.secs = args.secs or 0.2
    args.reps = args.pairs  # for bench_overhead.startup
    return args


def servers(args, port):
    """Each server on `port`: its command ({bin} holds www/ and the configs), and the path a client asks for."""
    b = args.bin
    return {
        "http.server": ("python3 -m http.server -p HTTP/1.1 %d --bind 127.0.0.1 -d %s/www" % (port, b), "/f100"),
        "already tuned": ("python3 %s/prefork_server.py 127.0.0.1 %d 1 nodelay whole" % (PROGS, port), "/"),
        "nginx untuned": ("nginx -p %s -c %s/nginx-untuned-%d.conf -e stderr" % (b, b, port), "/f100"),
        "nginx untuned 64 KiB": ("nginx -p %s -c %s/nginx-untuned-%d.conf -e stderr" % (b, b, port), "/f65536"),
        "nginx tuned": ("nginx -p %s -c %s/nginx-tuned-%d.conf -e stderr" % (b, b, port), "/f100"),
        "nginx tuned 64 KiB": ("nginx -p %s -c %s/nginx-tuned-%d.conf -e stderr" % (b, b, port), "/f65536"),
        "Node.js": ("node %s/server.js 127.0.0.1 %d" % (APPS, port), "/f100"),
        "Redis": ("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no" % port, None),
        "aiohttp": ("python3 %s/aiohttp_app.py 127.0.0.1 %d" % (HERE, port), "/f100"),
        "gunicorn": ("gunicorn -w 2 -k sync -b 127.0.0.1:%d --chdir %s flask_app:app" % (port, APPS), "/f100"),
        "gunicorn one send": ("gunicorn -w 2 -k sync -b 127.0.0.1:%d --chdir %s -c %s/gunicorn_one_send.py flask_app:app"
                              % (port, APPS, APPS), "/f100"),
        "PoolServer": ("java -cp %s PoolServer 127.0.0.1 %d" % (b, port), "/"),
    }


class Server:
    """A server started in the namespace (under `prefix`, e.g. strace), stopped on exit."""

    def __init__(self, args, name, settings, prefix=(), port=PORT, startup_s=30):
        cmd, self.path = servers(args, port)[name]
        self.port = port
        env = netns.child_env(args, settings is not None, settings or [])
        env["BENCH_BODY"] = os.path.join(args.bin, "www", "f100")
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(list(prefix) + shlex.split(cmd), env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        self.name = name
        deadline = time.monotonic() + startup_s
        while not netns.listening(port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s never listened:\n%s" % (name, self.stderr()))
            time.sleep(0.02)

    def stderr(self):
        self.log.seek(0)
        return self.log.read()[-2000:]

    def stop(self):
        netns.stop(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def tree(self):
        """Every process of the server (its own and its descendants)."""
        children = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(pid))
        pids, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            todo += children.get(pid, [])
        return pids

    def cpu_s(self):
        """CPU time (user + system, every thread) the server's live processes used so far."""
        total = 0
        for pid in self.tree():
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total / os.sysconf("SC_CLK_TCK")


def run_client(argv, timeout=600):
    r = subprocess.run(argv, env=netns.child_env(None, False, []), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode:
        raise RuntimeError("%s failed (%d):\n%s%s" % (" ".join(argv), r.returncode, r.stdout, r.stderr[-2000:]))
    return r.stdout


def strace_counts(args, name, settings, requests, per_connection):
    """System calls by name of a server run serving `requests` requests under strace: keep-alive, or
    each on a connection of its own. The flusher thread's own calls are left out: how often it
    wakes depends on time, which strace stretches, and the flusher section counts its wake-ups."""
    with tempfile.NamedTemporaryFile(dir=args.bin, suffix=".strace") as out:
        with Server(args, name, settings, ["strace", "-f", "-qq", "-o", out.name]) as srv:
            run_client(KA_CLIENT + (["1", srv.path, str(requests)] if per_connection else [str(requests), srv.path]))
            flushers = {tid for pid in srv.tree() for tid in thread_ids(pid, "socktune-flush")}
        srv.proc.wait()
        counts = {}
        for line in open(out.name, errors="replace"):
            m = re.match(r"(\d+) +([a-z_0-9]+)\(", line)  # a call's first line, not "<... resumed>"
            if m and int(m.group(1)) not in flushers:
                counts[m.group(2)] = counts.get(m.group(2), 0) + 1
        return counts


def thread_ids(pid, comm):
    """The ids of the threads of process `pid` named `comm`."""
    tids = set()
    for tid in os.listdir("/proc/%d/task" % pid) if os.path.isdir("/proc/%d/task" % pid) else []:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() == comm:
                    tids.add(int(tid))
        except OSError:
            pass
    return tids


# The servers whose calls are counted, and any setting beside cork: keep-alive responses, then
# http.server under quickack-off too, then a connection per request (the shim's calls at accept,
# shutdown and close).
CALLS = [(name, False, []) for name in ("http.server", "already tuned", "nginx untuned", "Node.js")] + [
    ("http.server", False, ["SOCKTUNE_QUICKACK=0"]), ("gunicorn", True, []), ("http.server", True, [])]


def calls(args):
    """setsockopt and all system calls the shim adds per response, per server."""
    res = {}
    for server, per_connection, also in CALLS:
        if per_connection:  # http.server takes ~250 ms to end each connection, with or without the shim
            small, big = (10, 30) if args.smoke else (100, 300)
        else:
            small, big = (50, 150) if args.smoke else (200, 1000)
        name = server + (", a connection per request" if per_connection else "") + "".join(", and " + setting for setting in also)
        per = {}
        for shim in (False, True):
            a, b = (strace_counts(args, server, CORK + also if shim else None, n, per_connection) for n in (small, big))
            per[shim] = {k: (b.get(k, 0) - a.get(k, 0)) / (big - small) for k in set(a) | set(b)}
        added_set = per[True].get("setsockopt", 0) - per[False].get("setsockopt", 0)
        added_all = sum(per[True].values()) - sum(per[False].values())
        res[name] = {"setsockopt_added": round(added_set, 3), "syscalls_without": round(sum(per[False].values()), 2),
                     "syscalls_with": round(sum(per[True].values()), 2), "syscalls_added": round(added_all, 2)}
        progress("calls: %-40s setsockopt added per response %.3f; all calls per response %.2f -> %.2f"
                 % (name, added_set, res[name]["syscalls_without"], res[name]["syscalls_with"]))
    return res


def wrk(srv, secs):
    out = run_client(["wrk", "-t1", "-c64", "-d%ds" % secs, "http://127.0.0.1:%d%s" % (srv.port, srv.path)])
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)",
                                             (re.search(r"Socket errors:.*", out) or [""])[0]))
    errors += int((re.search(r"Non-2xx or 3xx responses: (\d+)", out) or [0, 0])[1])
    if errors:
        raise RuntimeError("wrk against %s: %d errors\n%s" % (srv.name, errors, out))
    return int(re.search(r"(\d+) requests in", out).group(1))


def load_turns(args, srvs):
    """The row's servers, all running, in turns of load (bench/cost/load_turns.c), one warm-up round
    first: per server, its turns' requests, seconds and CPU ticks."""
    mode = "redis" if srvs[0].name == "Redis" else "http"
    specs = ["%d:%s:%s" % (srv.port, srv.path or "-", ",".join(map(str, srv.tree()))) for srv in srvs]
    out = run_client([os.path.join(args.bin, "load_turns"), mode, "64", "%g" % (args.secs * 1000),
                      str(args.turns + 1)] + specs)
    got = [[] for _ in srvs]
    for line in out.splitlines():
        _, rnd, k, requests, secs, ticks = line.split()
        if int(rnd) > 0:
            got[int(k)].append({"requests": int(requests), "secs": float(secs), "cpu_ticks": int(ticks),
                                "req_s": int(requests) / float(secs)})
    return got


# Each load row: its variants (label, server, settings or None for no shim); the first is the baseline.
LOAD_ROWS = [
    ("nginx untuned 100 B", [("nginx natively tuned", "nginx tuned", None), ("untuned", "nginx untuned", None),
                             ("untuned + shim", "nginx untuned", CORK)]),
    ("nginx untuned 64 KiB", [("nginx natively tuned", "nginx tuned 64 KiB", None),
                              ("untuned", "nginx untuned 64 KiB", None),
                              ("untuned + shim", "nginx untuned 64 KiB", CORK)]),
    ("nginx tuned", [("without", "nginx tuned", None), ("with shim", "nginx tuned", CORK)]),
    ("Node.js", [("without", "Node.js", None), ("with shim", "Node.js", CORK)]),
    # The method's own resolution: one program against itself, neither with the shim.
    ("Node.js, the same twice", [("without", "Node.js", None), ("without, again", "Node.js", None)]),
    ("Redis", [("without", "Redis", None), ("with shim", "Redis", CORK)]),
    ("aiohttp", [("without", "aiohttp", None), ("with shim", "aiohttp", CORK)]),
    ("gunicorn", [("without", "gunicorn", None), ("hand-tuned: head and body in one send", "gunicorn one send", None),
                  ("with shim", "gunicorn", CORK)]),
]


def interleaved(rounds, variants, measure):
    """Every variant measured once a round, the order reversed every other round."""
    got = {label: [] for label, *_ in variants}
    for r in range(rounds):
        for label, *rest in variants if r % 2 == 0 else variants[::-1]:
            got[label].append(measure(*rest))
    return got


def quartiles(values):
    """The first and third quartiles (both the value itself when there is one)."""
    if len(values) < 2:
        return [round(values[0], 3)] * 2
    q = statistics.quantiles(values, n=4)
    return [round(q[0], 3), round(q[2], 3)]


def load(args):
    res = {}
    for row, variants in LOAD_ROWS:
        if args.only and not any(o in row for o in args.only):
            continue
        turns = [[] for _ in variants]  # per variant, every launch's turns
        ratios = [[] for _ in variants]  # per variant, each round's requests/s against the baseline's
        launch_medians = [[] for _ in variants]  # per variant, each launch's median of those
        for launch in range(args.launches):
            # Which server starts first, and on which port, changes from launch to launch: two
            # processes of one program differ by a few per cent, and so do start order and port.
            order = list(range(len(variants)))[::-1 if launch % 2 else 1]
            with contextlib.ExitStack() as running:
                srvs = [running.enter_context(Server(args, variants[k][1], variants[k][2], port=PORT + i))
                        for i, k in enumerate(order)]
                got = dict(zip(order, load_turns(args, srvs)))
            for k, mine in got.items():
                turns[k] += mine
                mine_ratios = [t["req_s"] / b["req_s"] for t, b in zip(mine, got[0])]
                ratios[k] += mine_ratios
                launch_medians[k].append(statistics.median(mine_ratios))
        # CPU: a turn is a few clock ticks of it, so each variant's total over its total requests.
        cpu_us = lambda turns: (sum(t["cpu_ticks"] for t in turns) * 1e6 / os.sysconf("SC_CLK_TCK")
                                / sum(t["requests"] for t in turns))
        res[row] = {label: {"req_s": sum(t["requests"] for t in mine) / sum(t["secs"] for t in mine),
                            "cpu_us_per_req": cpu_us(mine), "req_s_ratio": round(statistics.median(r), 3),
                            "cpu_ratio": round(cpu_us(mine) / cpu_us(turns[0]), 3),
                            "launch_quartiles": quartiles(medians), "all": mine}
                    for (label, *_), mine, r, medians in zip(variants, turns, ratios, launch_medians)}
        for label, m in res[row].items():
            progress("load: %-22s %-22s %9.0f req/s (%.3f×; launches %.3f to %.3f)  %7.1f µs CPU/request (%.3f×)"
                     % ((row, label, m["req_s"], m["req_s_ratio"]) + tuple(m["launch_quartiles"])
                        + (m["cpu_us_per_req"], m["cpu_ratio"])))
    return res


# The already-tuned servers whose load rows read within a few per cent of 1x, where req/s cannot
# tell the shim's cost from the method's noise: what it adds per request, counted.
INSTRUCTION_SERVERS = ["nginx tuned", "Node.js", "Redis", "aiohttp"]


def instructions_by_object(dump):
    """Instructions by object (executable or library) in a callgrind dump: each cost line's
    first event (Ir), the lines after `calls=` (a call's inclusive cost) left out."""
    names, by, current, after_call = {}, {}, None, False
    for line in dump.splitlines():
        m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?", line)
        if m:
            names[m.group(2)] = m.group(3) or names.get(m.group(2))
            current = names[m.group(2)] if m.group(1) == "ob" else current
        elif line.startswith("calls="):
            after_call = True
            continue
        elif line[:1].isdigit() or line[:1] in "+-*":
            fields = line.split()
            if not after_call and len(fields) > 1:
                by[current] = by.get(current, 0) + int(fields[1])
        after_call = False
    return by


def callgrind_per_request(args, name, settings):
    """User-space instructions per request of a server under callgrind (every process and thread),
    all and socktune's own: one connection, one request at a time, counted over a turn of load
    after a warm-up turn."""
    out = os.path.join(args.bin, "cg-%s" % name.replace(" ", "-"))
    warm, counted = (500, 1000) if args.smoke else (3000, 5000)
    prefix = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--callgrind-out-file=%s.%%p" % out]
    with Server(args, name, settings, prefix=prefix, startup_s=120) as srv:
        mode = "redis" if name == "Redis" else "http"
        turn = lambda ms: run_client([os.path.join(args.bin, "load_turns"), mode, "1", str(ms), "1",
                                      "%d:%s:%s" % (srv.port, srv.path or "-", ",".join(map(str, srv.tree())))])
        turn(warm)
        pids = srv.tree()
        for pid in pids:
            subprocess.run(["callgrind_control", "-z", str(pid)], capture_output=True)
        requests = int(turn(counted).split()[3])
        for pid in pids:
            subprocess.run(["callgrind_control", "-d", str(pid)], capture_output=True)
        total = own = 0
        for dump in [f for f in os.listdir(args.bin) if re.fullmatch(re.escape(os.path.basename(out)) + r"\.\d+\.\d+", f)]:
            with open(os.path.join(args.bin, dump)) as f:
                text = f.read()
            total += bench_overhead.callgrind_totals(text, "%s's callgrind dump %s" % (name, dump))
            own += sum(n for ob, n in instructions_by_object(text).items() if "libsocktune" in (ob or ""))
        if not total:
            raise RuntimeError("%s: callgrind dumped nothing:\n%s" % (name, srv.stderr()))
    for f in os.listdir(args.bin):  # the dumps, and the files callgrind wrote at exit
        if f.startswith(os.path.basename(out) + "."):
            os.unlink(os.path.join(args.bin, f))
    return total / requests, own / requests


def instructions(args):
    res = {}
    for name in INSTRUCTION_SERVERS:
        (without, _), (with_shim, own) = (callgrind_per_request(args, name, settings) for settings in (None, CORK))
        res[name] = {"without": round(without), "with": round(with_shim), "added": round(with_shim - without),
                     "ratio": round(with_shim / without, 4), "socktune_own": round(own),
                     "own_ratio": round(own / without, 4)}
        progress("instructions: %-12s %9.0f -> %9.0f per request (%+.0f, %.4f×); socktune's own %.0f (%.2f %%)"
                 % (name, without, with_shim, with_shim - without, with_shim / without, own, 100 * own / without))
    return res


def flusher_switches(srv):
    """(threads, context switches) of the server's socktune-flush threads so far."""
    threads = total = 0
    for pid in srv.tree():
        for tid in os.listdir("/proc/%d/task" % pid) if os.path.isdir("/proc/%d/task" % pid) else []:
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    if f.read().strip() != "socktune-flush":
                        continue
                threads += 1
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    total += sum(int(v) for v in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)",
                                                            f.read(), re.M))
            except OSError:
                pass
    return threads, total


def flusher(args):
    idle = 1.0 if args.smoke else 3.0
    with Server(args, "nginx untuned", CORK) as srv:
        s0, t0 = flusher_switches(srv)[1], time.monotonic()
        wrk(srv, 1 if args.smoke else 5)
        threads, s1 = flusher_switches(srv)
        t1 = time.monotonic()
        time.sleep(0.5)  # the thread's last polls after the load
        s2 = flusher_switches(srv)[1]
        time.sleep(idle)
        s3 = flusher_switches(srv)[1]
    res = {"threads": threads, "load_wakeups_s": round((s1 - s0) / (t1 - t0), 1),
           "idle_wakeups_s": round((s3 - s2) / idle, 1)}
    progress("flusher: untuned nginx under cork: %(threads)d flusher threads, %(load_wakeups_s).1f wake-ups/s "
             "under load, %(idle_wakeups_s).1f idle" % res)
    return res


def pool_p50(args, settings):
    with Server(args, "PoolServer", settings) as srv:
        out = run_client(KA_CLIENT + ["50" if args.smoke else "300", srv.path])
    return float(re.search(r"p50_ms=([\d.]+)", out).group(1))


def pool(args):
    variants = [("SOCKTUNE_NODELAY=1 alone", ["SOCKTUNE_NODELAY=1"]), ("SOCKTUNE_CORK=1", CORK)]
    got = interleaved(args.pairs, variants, lambda settings: pool_p50(args, settings))
    res = {label: {"p50_ms": statistics.median(v), "all": v} for label, v in got.items()}
    for label, r in res.items():
        progress("pool: Java HttpServer, %-26s p50 %.3f ms" % (label, r["p50_ms"]))
    return res


def markdown(res):
    lines = ["# socktune's cost, %s, %s" % (res["date"], res["machine"]), "",
             "Median of %d interleaved pairs; load: the row's servers side by side, %d launches of %d "
             "rounds of turns of %g s each (requests/s: the median of the rounds' ratios).%s" % (
                 res["pairs"], res["launches"], res["turns"], res["secs"],
                 " SMOKE RUN: the figures mean nothing." if res["smoke"] else ""), "",
             "| Start-up (/bin/true; one socket: a program that makes one socket call) | added µs | "
             "× the one-hook C preload's | added instructions × |",
             "|---|---|---|---|"]
    for name, r in res["startup"].items():
        if "no preload" not in name:
            lines.append("| %s | %+.1f | %s | %s |" % (name, r["added_us"], r["added_x_floor"],
                                                      r["added_instructions_x_floor"]))
    lines += ["", "| Calls per response, SOCKTUNE_CORK=1 (strace) | setsockopt added | all calls without → with |",
              "|---|---|---|"]
    for name, r in res["calls"].items():
        lines.append("| %s | %.3f | %.2f → %.2f |" % (name, r["setsockopt_added"], r["syscalls_without"],
                                                        r["syscalls_with"]))
    lines += ["", "| Load (64 connections, in turns) | variant | req/s | × first | launches' quartiles | "
              "CPU µs/request | × first |", "|---|---|---|---|---|---|---|"]
    for row, variants in res["load"].items():
        for label, m in variants.items():
            lines.append("| %s | %s | %.0f | %.3f | %.3f to %.3f | %.1f | %.3f |" % (
                (row, label, m["req_s"], m["req_s_ratio"]) + tuple(m["launch_quartiles"])
                + (m["cpu_us_per_req"], m["cpu_ratio"])))
    lines += ["", "| Instructions per request, callgrind (one connection) | without | with shim | added | × | "
              "socktune's own |", "|---|---|---|---|---|---|"]
    for name, r in res["instructions"].items():
        lines.append("| %s | %d | %d | %+d | %.4f | %d (%.2f %%) |" % (
            name, r["without"], r["with"], r["added"], r["ratio"], r["socktune_own"], 100 * r["own_ratio"]))
    f = res["flusher"]
    lines += ["", "Flusher (untuned nginx, cork): %d threads; %.1f wake-ups/s under load, %.1f idle." % (
        f["threads"], f["load_wakeups_s"], f["idle_wakeups_s"]), ""]
    lines += ["| Thread-pool server (Java HttpServer) | p50 ms |", "|---|---|"]
    lines += ["| %s | %.3f |" % (label, r["p50_ms"]) for label, r in res["pool"].items()]
    return "\n".join(lines) + "\n"


def measure(args):
    netns.setup_namespace(None)
    with open("/proc/loadavg") as f:
        load_avg = float(f.read().split()[0])
    res = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": "Linux %s, %d cores, load average %.2f at the start" % (platform.release(), os.cpu_count(),
                                                                             load_avg),
           "smoke": args.smoke, "pairs": args.pairs, "launches": args.launches, "turns": args.turns, "secs": args.secs}
    progress("cost: %(date)s, %(machine)s" % res)
    if args.only == ["start-up"]:
        bench_overhead.startup_header(args)
        bench_overhead.startup(args)
        return
    if args.only == ["instructions"]:
        print(json.dumps(instructions(args), indent=1))
        return
    if args.only:
        res["load"] = load(args)
        print(json.dumps(res["load"], indent=1))
        return
    res["calls"] = calls(args)
    res["flusher"] = flusher(args)
    res["pool"] = pool(args)
    res["load"] = load(args)
    res["instructions"] = instructions(args)
    bench_overhead.startup_header(args)
    res["startup"] = bench_overhead.startup(args)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "cost.json"), "w") as f:
        json.dump(res, f, indent=1)
    text = markdown(res)
    with open(os.path.join(args.out, "cost.md"), "w") as f:
        f.write(text)
    print(text)


def prepare(work):
    """www/ (f100, f65536), the nginx configs and PoolServer.class; the overhead programs."""
    bench_overhead.compile_all(work)
    www = os.path.join(work, "www")
    os.makedirs(www)
    os.makedirs(os.path.join(work, "tmp"))
    for size in (100, 65536):
        with open(os.path.join(www, "f%d" % size), "wb") as f:
            f.write(bytes((i * 37 + 11) % 94 + 33 for i in range(size)))
    with open(os.path.join(APPS, "nginx.conf")) as f:
        template = f.read()
    for name, tuning in NGINX.items():
        for port in range(PORT, PORT + max(len(variants) for _, variants in LOAD_ROWS)):
            with open(os.path.join(work, "nginx-%s-%d.conf" % (name, port)), "w") as f:
                f.write(template.replace("@WORK@", work).replace("@PORT@", str(port)).replace("@TUNING@", tuning)
                        .replace("@LISTEN@", ""))
    subprocess.run(["javac", "-d", work, os.path.join(PROGS, "PoolServer.java")], check=True)


def main():
    args = parse_args(sys.argv[1:])
    if args.inside:
        measure(args)
        return
    if not os.path.isfile(args.lib):
        netns.die("library not found: %r" % args.lib)
    tools.require([("valgrind", "valgrind"), ("cc", "gcc"), ("nginx", "nginx-light"), ("wrk", "wrk"),
                   ("strace", "strace"), ("node", "nodejs"), ("redis-server", "redis-server"),
                   ("javac", "default-jdk-headless")])
    work = tempfile.mkdtemp(prefix="socktune-cost-")
    try:
        prepare(work)
        argv = ["unshare", "-n", sys.executable, os.path.abspath(__file__), "--inside", "--bin", work,
                "--lib", os.path.abspath(args.lib), "--out", os.path.abspath(args.out), "--pairs", str(args.pairs),
                "--launches", str(args.launches), "--turns", str(args.turns), "--secs", str(args.secs)] + (["--smoke"] if args.smoke else []) + [
                    "--only=" + o for o in args.only or []]
        sys.exit(subprocess.run(argv).returncode)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
