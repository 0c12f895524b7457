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
  start-up   bench/overhead/spawn_loop.c: /bin/true started 400 times per rep under each of no
             preload, a one-hook C preload (bench/overhead/minimal_preload.c, the floor any
             preload costs), socktune with no SOCKTUNE_* set and socktune with every behaviour
             on (against no preload with those entries in its environment), one start at a time
             in turn; µs added per start (median start against its base's median start), and
             under callgrind the instructions of one whole run, the dynamic linker's included.
Prints the median of each side, their ratio (with / without), and the range of each side's runs: separate
runs of one program differ by up to 25 % on a shared host, more than the hooks cost. So the write() hook is
also timed inside one process (bench/overhead/write_pairs.c: blocks of 1,000 writes through the program's
write, under socktune its hook, and through libc's own, in turn), where both see the same host speed and
address layout; without the shim both are libc's, which shows the method's noise. Then nginx under wrk, 1,000
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


def alternating(args, measure):
    """measure(shim) without and with the shim, args.reps times each, alternating which goes first."""
    got = {False: [], True: []}
    for rep in range(args.reps):
        for shim in (False, True) if rep % 2 == 0 else (True, False):
            got[shim].append(measure(shim))
    return got


def timings(args):
    res = {}
    for name, (unit, measure) in BENCHES.items():
        got = alternating(args, lambda shim: measure(args, shim))
        plain, shim = statistics.median(got[False]), statistics.median(got[True])
        res[name] = {"unit": unit, "without": plain, "with": shim, "ratio": shim / plain,
                     "all_without": got[False], "all_with": got[True]}
        print("%-10s %10.2f %10.2f  %-11s %6.3f  (runs %.1f to %.1f; %.1f to %.1f)" % (
            name, plain, shim, unit, shim / plain, min(got[False]), max(got[False]), min(got[True]), max(got[True])),
            flush=True)
    return res


WRITE_PAIRS = 2000


def write_in_one_process(args):
    """write_pairs with and without the shim, alternating: each run's median pair ratio (hook / libc's own)."""
    print("\nwrite() inside one process (bench/overhead/write_pairs.c): %d pairs of 1,000-write blocks per run, "
          "hook against libc's own; the median of %d runs' median pair ratios" % (WRITE_PAIRS, args.reps))
    print("%-10s %10s %20s %10s %10s %8s" % ("", "ratio", "runs", "ns hook", "ns libc", "threads"), flush=True)
    def measure(shim):
        out = run(args, [os.path.join(args.bin, "write_pairs"), str(WRITE_PAIRS)], shim)
        return {k: figure(out, k) for k in ("ratio", "hooked_ns", "libc_ns", "threads")}

    got = alternating(args, measure)
    res = {}
    for shim, label in ((True, "with"), (False, "without")):
        runs = got[shim]
        r = {k: statistics.median(x[k] for x in runs) for k in ("ratio", "hooked_ns", "libc_ns")}
        r["threads"] = max(x["threads"] for x in runs)
        r["all_ratios"] = [x["ratio"] for x in runs]
        res[label] = r
        print("%-10s %10.4f %9.4f to %.4f %10.1f %10.1f %8d%s" % (
            label, r["ratio"], min(r["all_ratios"]), max(r["all_ratios"]), r["hooked_ns"], r["libc_ns"],
            r["threads"], "" if shim else "  (both libc's: the method's noise)"), flush=True)
    return res


def callgrind_totals(text, what="callgrind's output"):
    """The instructions a callgrind output file (or dump) counted in all."""
    m = re.search(r"^totals: (\d+)", text, re.M)
    if not m:
        netns.die("no totals in %s" % what)
    return int(m.group(1))


def callgrind_total(args, shim, cmd_of_n, n):
    """Instructions callgrind counted over a whole run of cmd_of_n(n)."""
    with tempfile.NamedTemporaryFile(dir=args.bin, suffix=".cg") as out:
        cmd_of_n(args, shim, n, ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out.name])
        return callgrind_totals(open(out.name).read())


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


# Starts of each start-up variant per --reps, one at a time in turn (bench/overhead/spawn_loop.c).
STARTS_PER_REP = 400


def startup_variants(args):
    """(name, LD_PRELOAD or "-", settings, program, the variant it is measured against) for each
    start-up measurement: /bin/true, which makes no socket call (the stub alone), and a program
    that makes one (the stub loads the shim), also with the shim preloaded itself, as before the
    stub. A variant with settings is measured against no preload with the same entries in its
    environment: glibc reads every entry at start-up, whoever set it."""
    one_socket = os.path.join(args.bin, "one_socket")
    shim_alone = os.path.join(os.path.dirname(args.lib), "libsocktune_shim.so")
    return [("no preload", "-", [], "/bin/true", None),
            ("no preload, the settings in the environment", "-", SHIM_ENV, "/bin/true", None),
            ("one-hook C preload", os.path.join(args.bin, "minimal_preload.so"), [], "/bin/true", "no preload"),
            ("socktune, nothing set", args.lib, [], "/bin/true", "no preload"),
            ("socktune, every behaviour", args.lib, SHIM_ENV, "/bin/true",
             "no preload, the settings in the environment"),
            ("one socket, no preload", "-", SHIM_ENV, one_socket, None),
            ("one socket, every behaviour", args.lib, SHIM_ENV, one_socket, "one socket, no preload"),
            ("one socket, the shim preloaded itself", shim_alone, SHIM_ENV, one_socket, "one socket, no preload")]


def startup_header(args):
    print("\nstart-up: %d starts of each variant, one at a time in turn on one CPU; µs: the median start; added: "
          "that minus its base's; callgrind: one run" % (args.reps * STARTS_PER_REP))
    print("%-44s %8s %8s  %9s %9s  %6s  %6s" % ("", "µs", "added", "instr.", "added", "×floor", "instr×"), flush=True)


def startup(args):
    """µs per start (the median of every start of a variant, all variants in turn on one CPU),
    the µs each adds to its base, and instructions per run (callgrind, the dynamic linker's
    included)."""
    variants = startup_variants(args)
    starts = args.reps * STARTS_PER_REP
    specs = ["\n".join([program, preload] + pairs) for _, preload, pairs, program, _ in variants]
    cpu = max(os.sched_getaffinity(0))
    out = subprocess.run([os.path.join(args.bin, "spawn_loop"), str(starts)] + specs,
                         env=netns.child_env(args, False, []), stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, check=True, timeout=1800, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    times = [[] for _ in variants]
    for line in out.stdout.splitlines():
        index, ns = line.split()
        times[int(index)].append(int(ns) / 1000)
    res = {}
    for (name, preload, pairs, program, _), t in zip(variants, times):
        env = netns.child_env(args, False, [])
        env.update(kv.split("=", 1) for kv in pairs)
        if preload != "-":
            env["LD_PRELOAD"] = preload
        with tempfile.NamedTemporaryFile(dir=args.bin, suffix=".cg") as cg:
            subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg.name, program],
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=120)
            total = callgrind_totals(open(cg.name).read())
        # The median of each tenth of the run too: how far the figure moves within it.
        tenth = max(1, len(t) // 10)
        res[name] = {"us_per_start": statistics.median(t), "instructions": total,
                     "tenths_us": [statistics.median(t[i:i + tenth]) for i in range(0, len(t) - tenth + 1, tenth)]}
    for name, *_, base in variants:
        r = res[name]
        if base is None:
            continue
        b = res[base]
        r["added_us"] = round(r["us_per_start"] - b["us_per_start"], 1)
        r["added_us_tenths"] = [round(x - y, 1) for x, y in zip(r["tenths_us"], b["tenths_us"])]
        r["added_instructions"] = r["instructions"] - b["instructions"]
    floor = res["one-hook C preload"]
    for name, *_, base in variants:
        r = res[name]
        if base is None:
            print("%-44s %8.1f %8s  %9d" % (name, r["us_per_start"], "", r["instructions"]), flush=True)
            continue
        r["added_x_floor"] = round(r["added_us"] / floor["added_us"], 2) if floor["added_us"] > 0 else None
        r["added_instructions_x_floor"] = round(r["added_instructions"] / floor["added_instructions"], 2)
        spread = sorted(r["added_us_tenths"])
        print("%-44s %8.1f %+8.1f  %9d %+9d  %6s  %6s  (tenths %+.1f to %+.1f)" % (
            name, r["us_per_start"], r["added_us"], r["instructions"], r["added_instructions"],
            r["added_x_floor"], r["added_instructions_x_floor"], spread[0], spread[-1]), flush=True)
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
    res["write_in_one_process"] = write_in_one_process(args)
    print("\ninstructions per call (callgrind; user space; N and 2N iterations, difference / N)")
    print("%-10s %10s %10s %10s" % ("", "without", "with", "added"), flush=True)
    res["instructions"] = instructions(args)
    startup_header(args)
    res["startup"] = startup(args)
    with open(args.json, "w") as f:
        json.dump(res, f, indent=1)


def compile_all(work):
    for name, src in (("write_loop", "bench/overhead/write_loop.c"), ("write_pairs", "bench/overhead/write_pairs.c"),
                      ("epoll_loop", "bench/overhead/epoll_loop.c"),
                      ("ka_pair", "tests/progs/ka_pair.c"), ("spawn_loop", "bench/overhead/spawn_loop.c"),
                      ("one_socket", "bench/overhead/one_socket.c"),
                      ("load_turns", "bench/cost/load_turns.c"),
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
