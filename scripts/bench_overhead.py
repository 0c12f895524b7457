#!/usr/bin/env python3
"""The shim's overhead, measured side by side (run through scripts/bench-overhead.sh).

usage: bench_overhead.py --lib PATH [--reps R] [--json FILE]

In a private network namespace (`unshare -n`, lo up), all on one CPU, with and without LD_PRELOAD=lib and every
behaviour on (SHIM_ENV), alternating which goes first in each of R repetitions:
  write      bench/overhead/write_loop.c: 1-byte write() to /dev/null, ns per call;
  epoll      bench/overhead/epoll_loop.c: epoll_wait(timeout 0) with 10,000 registered fds (5,000 loopback
             TCP connections, both ends) of which 8 are ready, ns per call;
  keepalive  tests/progs/ka_pair.c: one keep-alive connection, 20,000 requests, µs per request;
             the server (one write per response) runs with or without the shim, the client never.
  start-up   bench/overhead/spawn_loop.c: /bin/true started 100 times per round, 4 rounds per rep,
             under no preload, a one-hook C preload (bench/overhead/minimal_preload.c, the floor
             any preload costs), socktune with no SOCKTUNE_* set and socktune with every
             behaviour on; µs added per start (the median of each round's difference from its
             no-preload run), and under callgrind the instructions of one whole run, the dynamic
             linker's included.
Prints the median of each side and their ratio (with / without). Then nginx under wrk, 1,000
keep-alive connections for LOAD_SECONDS each way (tests/harness/load.py with --sendfile off, so
that nginx sends each response in one writev and the shim has no stall to remove: the
requests/s it loses, and the workers' CPU time per response, are its cost under load). Then, under callgrind, the
instructions per call, which a busy machine does not disturb: each program runs with N and 2N
iterations and the difference of the totals is divided by N, so start-up and set-up (the 5,000
connections, the library's initialisation) cancel out. Callgrind counts user-space instructions
only: the system call's own work in the kernel is not in them.
Writes every figure to FILE (JSON) too.
"""
import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
import netns  # noqa: E402
import tools  # noqa: E402

SHIM_ENV = ["SOCKTUNE_CORK=1", "SOCKTUNE_QUICKACK=0", "SOCKTUNE_NODELAY=1", "SOCKTUNE_FASTOPEN=256",
            "SOCKTUNE_FASTOPEN_CONNECT=1", "SOCKTUNE_DEFER_ACCEPT=1", "SOCKTUNE_BACKLOG=4096"]
# epoll_loop's clients connect and send nothing, so defer-accept, and quickack-off on the
# connecting side (the handshake's last ACK waits for data, up to 200 ms), would hold each accept().
EPOLL_ENV = [kv for kv in SHIM_ENV if not kv.startswith("SOCKTUNE_DEFER_ACCEPT")] + ["SOCKTUNE_QUICKACK_ROLE=server"]
PORT = 7500
CONNS, READY = 5000, 8
KA_REQUESTS, KA_BODY = 20000, 100
WRITES, WAITS = 3_000_000, 300_000
LOAD_SECONDS = 15
CG_WRITES, CG_WAITS, CG_REQUESTS = 100_000, 20_000, 2_000  # N; callgrind also runs 2N


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--reps", type=int, default=9)
    p.add_argument("--json", default=os.path.join(REPO, "target", "bench-overhead.json"))
    p.add_argument("--bin", help=argparse.SUPPRESS)  # the compiled programs (set before unshare)
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def figure(out, key):
    m = re.search(key + r"=([\d.]+)", out)
    if not m:
        netns.die("no %s= in: %r" % (key, out))
    return float(m.group(1))


def run(args, cmd, shim, env=SHIM_ENV, prefix=()):
    r = subprocess.run(list(prefix) + cmd, env=netns.child_env(args, shim, env), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        netns.die("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r.stdout


def keepalive(args, shim, requests, prefix=()):
    """One keep-alive connection of `requests` requests; the server may run under `prefix`."""
    ka = os.path.join(args.bin, "ka_pair")
    server = subprocess.Popen(list(prefix) + [ka, "server", str(PORT), "1", str(KA_BODY), "single"],
                              env=netns.child_env(args, shim, SHIM_ENV), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not netns.listening(PORT):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            netns.die("ka_pair server never listened:\n" + server.communicate()[1])
        time.sleep(0.02)
    out = run(args, [ka, "client", str(PORT), "1", str(requests), str(KA_BODY)], False)
    if server.wait(timeout=600):
        netns.die("ka_pair server failed:\n" + server.communicate()[1])
    return out


BENCHES = {  # name: (unit, function(args, shim) -> one measurement)
    "write": ("ns/call", lambda a, shim: figure(run(a, [os.path.join(a.bin, "write_loop"), str(WRITES)], shim),
                                                "ns_per_call")),
    "epoll": ("ns/call", lambda a, shim: figure(run(a, [os.path.join(a.bin, "epoll_loop"), str(CONNS), str(READY),
                                                        str(WAITS)], shim, EPOLL_ENV), "ns_per_call")),
    "keepalive": ("µs/request", lambda a, shim: figure(keepalive(a, shim, KA_REQUESTS), "us_per_request")),
}


def timings(args):
    res = {}
    for name, (unit, measure) in BENCHES.items():
        got = {False: [], True: []}
        for rep in range(args.reps):
            for shim in (False, True) if rep % 2 == 0 else (True, False):
                got[shim].append(measure(args, shim))
        plain, shim = statistics.median(got[False]), statistics.median(got[True])
        res[name] = {"unit": unit, "without": plain, "with": shim, "ratio": shim / plain,
                     "all_without": got[False], "all_with": got[True]}
        print("%-10s %10.2f %10.2f  %-11s %6.3f" % (name, plain, shim, unit, shim / plain), flush=True)
    return res


def callgrind_total(args, shim, cmd_of_n, n):
    """Instructions callgrind counted over a whole run of cmd_of_n(n)."""
    with tempfile.NamedTemporaryFile(dir=args.bin, suffix=".cg") as out:
        cmd_of_n(args, shim, n, ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out.name])
        text = open(out.name).read()
    m = re.search(r"^totals: (\d+)", text, re.M)
    if not m:
        netns.die("no totals in callgrind's output")
    return int(m.group(1))


CALLGRIND = {  # name: (unit, N, function(args, shim, n, prefix))
    "write": ("write()", CG_WRITES, lambda a, shim, n, p: run(a, [os.path.join(a.bin, "write_loop"), str(n)], shim,
                                                               prefix=p)),
    "epoll": ("epoll_wait()", CG_WAITS, lambda a, shim, n, p: run(a, [os.path.join(a.bin, "epoll_loop"), str(CONNS),
                                                                      str(READY), str(n)], shim, EPOLL_ENV, p)),
    "keepalive": ("request (server)", CG_REQUESTS, lambda a, shim, n, p: keepalive(a, shim, n, p)),
}


def instructions(args):
    res = {}
    for name, (unit, n, cmd_of_n) in CALLGRIND.items():
        per = {}
        for shim in (False, True):
            per[shim] = (callgrind_total(args, shim, cmd_of_n, 2 * n) - callgrind_total(args, shim, cmd_of_n, n)) / n
        res[name] = {"per": unit, "without": per[False], "with": per[True], "added": per[True] - per[False]}
        print("%-10s %10.1f %10.1f %10.1f  per %s" % (name, per[False], per[True], per[True] - per[False], unit),
              flush=True)
    return res


def nginx_load(args):
    """requests/s of nginx without and with the shim (every behaviour on), one run each."""
    print("\nnginx, sendfile off, wrk -t2 -c1000 -d%ds each way (not pinned to one CPU)" % LOAD_SECONDS, flush=True)
    r = subprocess.run([sys.executable, os.path.join(REPO, "tests", "harness", "load.py"), "--lib", args.lib,
                        "--duration", str(LOAD_SECONDS), "--sendfile", "off"] + ["--env=" + kv for kv in SHIM_ENV],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
    if r.returncode:
        netns.die("load.py failed:\n" + r.stderr)
    got = dict(t.split("=", 1) for t in r.stdout.split())
    keys = ("req_s", "errors", "bad", "user_us_per_req", "sys_us_per_req")
    res = {v: {k: float(got["%s_%s" % (v, k)]) for k in keys} for v in ("plain", "shim")}
    res["order"] = got["order"]
    for key, unit in (("req_s", "requests/s"), ("user_us_per_req", "µs user"), ("sys_us_per_req", "µs system")):
        plain, shim = res["plain"][key], res["shim"][key]
        print("%-10s %10.2f %10.2f  %-11s %6.3f" % ("nginx", plain, shim, unit, shim / plain), flush=True)
    print("(the workers' CPU time per response, all threads; errors %d / %d; order %s)" % (
        res["plain"]["errors"], res["shim"]["errors"], res["order"]), flush=True)
    return res


STARTS = 100
# Start-up rounds per --reps: short rounds, many of them, each variant's added time taken against
# the no-preload run of its own round, since the host's speed moves between rounds.
STARTUP_ROUNDS_PER_REP = 4


def startup_variants(args):
    """(name, LD_PRELOAD or "-", settings, program, the variant it is measured against) for each
    start-up measurement: /bin/true, which makes no socket call (the stub alone), and a program
    that makes one (the stub loads the shim), also with the shim preloaded itself, as before the
    stub."""
    one_socket = os.path.join(args.bin, "one_socket")
    return [("no preload", "-", [], "/bin/true", "no preload"),
            ("one-hook C preload", os.path.join(args.bin, "minimal_preload.so"), [], "/bin/true", "no preload"),
            ("socktune, nothing set", args.lib, [], "/bin/true", "no preload"),
            ("socktune, every behaviour", args.lib, SHIM_ENV, "/bin/true", "no preload"),
            ("one socket, no preload", "-", [], one_socket, "one socket, no preload"),
            ("one socket, every behaviour", args.lib, SHIM_ENV, one_socket, "one socket, no preload"),
            ("one socket, the shim preloaded itself", os.path.join(os.path.dirname(args.lib), "libsocktune_shim.so"),
             SHIM_ENV, one_socket, "one socket, no preload")]


def startup_env(args, preload, pairs):
    """No preload for the spawning loop itself; `pairs`, and LD_PRELOAD=preload unless "-"."""
    env = netns.child_env(args, False, [])
    env.update(kv.split("=", 1) for kv in pairs)
    if preload != "-":
        env["LD_PRELOAD"] = preload
    return env


def startup(args):
    """µs per start (median of alternating rounds) and instructions per run, per variant."""
    variants = startup_variants(args)
    times = {name: [] for name, *_ in variants}
    spawn_loop = os.path.join(args.bin, "spawn_loop")
    for rep in range(args.reps * STARTUP_ROUNDS_PER_REP):
        for name, preload, pairs, program, _ in variants if rep % 2 == 0 else variants[::-1]:
            out = subprocess.run([spawn_loop, str(STARTS), preload, program], env=startup_env(args, "-", pairs),
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True, timeout=600)
            times[name].append(figure(out.stdout, "us_per_run"))
    res = {}
    for name, preload, pairs, program, _ in variants:
        env = startup_env(args, preload, pairs)
        with tempfile.NamedTemporaryFile(dir=args.bin, suffix=".cg") as out:
            subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out.name, program],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=120)
            total = int(re.search(r"^totals: (\d+)", open(out.name).read(), re.M).group(1))
        res[name] = {"us_per_start": statistics.median(times[name]), "all_us": times[name], "instructions": total}
    base_of = {name: base for name, *_, base in variants}
    added = {name: statistics.median(t - b for t, b in zip(times[name], times[base_of[name]])) for name in times}
    floor_us = added["one-hook C preload"]
    floor_ir = res["one-hook C preload"]["instructions"] - res["no preload"]["instructions"]
    for name, r in res.items():
        r["added_us"] = round(added[name], 1)
        r["added_x_floor"] = round(r["added_us"] / floor_us, 2) if floor_us > 0 else None
        r["added_instructions"] = r["instructions"] - res[base_of[name]]["instructions"]
        r["added_instructions_x_floor"] = round(r["added_instructions"] / floor_ir, 2) if floor_ir else None
        print("%-26s %8.1f %+8.1f  %9d %+9d  %6s" % (name, r["us_per_start"], r["added_us"], r["instructions"],
                                                     r["added_instructions"], r["added_instructions_x_floor"]),
              flush=True)
    return res


def measure(args):
    netns.setup_namespace(None)
    # One CPU for every program, so that a request loop's client and server always meet on it:
    # left to the scheduler, each run places them differently and timings vary threefold.
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    machine = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
               "kernel": platform.release(), "load_before": float(load), "pinned_cpu": cpu}
    print("socktune overhead, %(date)s, %(cores)d cores, Linux %(kernel)s, load average %(load_before)s, "
          "every program on CPU %(pinned_cpu)d" % machine)
    print("every behaviour on: %s\n" % " ".join(SHIM_ENV))
    print("timing: median of %d alternating runs each" % args.reps)
    print("%-10s %10s %10s  %-11s %6s" % ("", "without", "with", "unit", "ratio"), flush=True)
    res = {"machine": machine, "shim_env": SHIM_ENV, "reps": args.reps, "timing": timings(args)}
    print("\ninstructions per call (callgrind; user space; N and 2N iterations, difference / N)")
    print("%-10s %10s %10s %10s" % ("", "without", "with", "added"), flush=True)
    res["instructions"] = instructions(args)
    print("\nstart-up: /bin/true, %d starts per round, %d alternating rounds, added µs: the median of each "
          "round's difference from its no-preload run; callgrind: one run" % (STARTS, args.reps * STARTUP_ROUNDS_PER_REP))
    print("%-26s %8s %8s  %9s %9s  %6s" % ("", "µs", "added", "instr.", "added", "×floor"), flush=True)
    res["startup"] = startup(args)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)


def compile_all(work):
    for name, src in (("write_loop", "bench/overhead/write_loop.c"), ("epoll_loop", "bench/overhead/epoll_loop.c"),
                      ("ka_pair", "tests/progs/ka_pair.c"), ("spawn_loop", "bench/overhead/spawn_loop.c"),
                      ("one_socket", "bench/overhead/one_socket.c"),
                      ("minimal_preload.so", "bench/overhead/minimal_preload.c")):
        shared = ["-shared", "-fPIC"] if name.endswith(".so") else []
        cc = subprocess.run(["cc", "-O2", "-g"] + shared + ["-o", os.path.join(work, name), os.path.join(REPO, src)],
                            capture_output=True, text=True)
        if cc.returncode:
            netns.die("cc %s failed:\n%s" % (src, cc.stderr))


def main():
    args = parse_args(sys.argv[1:])
    if args.inside:
        measure(args)
        return
    if not os.path.isfile(args.lib):
        netns.die("library not found: %r" % args.lib)
    tools.require([("valgrind", "valgrind"), ("cc", "gcc"), ("nginx", "nginx-light"), ("wrk", "wrk")])
    work = tempfile.mkdtemp(prefix="socktune-bench-")
    try:
        compile_all(work)
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), "--inside", "--bin", work,
                        "--lib", os.path.abspath(args.lib), "--reps", str(args.reps),
                        "--json", os.path.abspath(args.json)], check=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(args.json) as f:
        res = json.load(f)
    res["nginx"] = nginx_load(args)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)
    print("\nwritten to %s" % args.json)


if __name__ == "__main__":
    main()
