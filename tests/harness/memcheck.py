#!/usr/bin/env python3
"""Memory safety: programs under valgrind memcheck with the shim preloaded, in a private namespace.

usage: memcheck.py --lib PATH [--conns N] [--requests R] [--py-requests P]

Compiles tests/progs/errno_check.c and ka_pair.c (with -g, so reports name lines), then in
`unshare -n` (lo up) runs, each under valgrind with LD_PRELOAD=lib:
  errno     errno_check with every behaviour on (its own check must print "0 failed"), at the
            namespace's default net.ipv4.tcp_fastopen=1; 3 (both sides) for the runs below;
  small/big ka_pair's server (split header and body, every server behaviour on) and client (every
            client behaviour on), both under valgrind and recording each connection
            (SOCKTUNE_STATS, SOCKTUNE_STATS_PROM, SOCKTUNE_AB): N, then 10*N connections of R
            requests;
  py        Debian's python3 -m http.server -p HTTP/1.1 under SOCKTUNE_CORK=1 (PYTHONMALLOC=malloc
            so that valgrind sees every allocation), P keep-alive requests from ka_client.py.
            Debian's build, since pyenv's interpreter alone already draws hundreds of
            uninitialised-value reports (package python3, which scripts/setup.sh installs).

stdout: one line of key=value pairs: for each run R (errno, small_srv, small_cli, big_srv,
big_cli, py_srv): R_errors (valgrind's ERROR SUMMARY, leaks not counted), R_definite (bytes
definitely lost), R_indirect; plus errno_failed, small_srv_records (connections in the
stats file) and the like, the clients' own fields prefixed small_, big_
and py_ (requests, bad, us_per_request; ka_client.py's requests, p50_ms...), and conns_small,
conns_big. stderr: every valgrind report that is not clean.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import netns
import tools

PORT = 7500
BODY = 1000
VALGRIND_WAIT = 300  # seconds: programs run 20-50 times slower under valgrind
DEBIAN_PYTHON = "/usr/bin/python3"
SERVER_ALL = ["SOCKTUNE_CORK=1", "SOCKTUNE_QUICKACK=0", "SOCKTUNE_FASTOPEN=256", "SOCKTUNE_DEFER_ACCEPT=1",
              "SOCKTUNE_NODELAY=1", "SOCKTUNE_BACKLOG=64", "SOCKTUNE_ROLE=server"]
CLIENT_ALL = ["SOCKTUNE_QUICKACK=0", "SOCKTUNE_FASTOPEN_CONNECT=1", "SOCKTUNE_NODELAY=1", "SOCKTUNE_ROLE=client"]
EVERY = SERVER_ALL[:-1] + ["SOCKTUNE_FASTOPEN_CONNECT=1"]  # both roles


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--conns", type=int, default=20)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--py-requests", type=int, default=200)
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def valgrind(log):
    return ["valgrind", "--tool=memcheck", "--leak-check=full", "--errors-for-leak-kinds=none",
            "--show-leak-kinds=definite,indirect", "--track-fds=no", "--log-file=" + log]


def report(log):
    """errors, definitely and indirectly lost bytes from a valgrind log; shows it if not clean."""
    with open(log) as f:
        text = f.read()
    m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    if not m:
        netns.die("valgrind wrote no ERROR SUMMARY to %s:\n%s" % (log, text))
    lost = lambda kind: int(re.search(kind + r" lost: ([\d,]+) bytes", text).group(1).replace(",", "")) \
        if kind + " lost:" in text else 0  # no leak summary when nothing was allocated
    res = {"errors": int(m.group(1).replace(",", "")), "definite": lost("definitely"), "indirect": lost("indirectly")}
    if res["errors"] or res["definite"]:
        print("--- %s ---\n%s" % (os.path.basename(log), text), file=sys.stderr)
    return res


def prefixed(prefix, res):
    return {"%s_%s" % (prefix, k): v for k, v in res.items()}


def spawn(args, cmd, env_pairs, **kw):
    return subprocess.Popen(cmd, env=netns.child_env(args, True, env_pairs), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def wait_listening(server, what):
    deadline = time.monotonic() + VALGRIND_WAIT
    while not netns.listening(PORT):
        if server.poll() is not None or time.monotonic() > deadline:
            netns.stop(server)
            netns.die("%s never listened:\n%s" % (what, server.communicate()[1]))
        time.sleep(0.1)


def finish(proc, what):
    try:
        return proc.communicate(timeout=VALGRIND_WAIT)
    except subprocess.TimeoutExpired:
        netns.stop(proc)
        netns.die("%s did not finish within %d s" % (what, VALGRIND_WAIT))


def errno_run(args, work, prog):
    log = os.path.join(work, "errno.vg")
    # Its deliberate bad pointers would be valgrind errors of the program's own.
    out, _ = finish(spawn(args, valgrind(log) + [prog, "--no-bad-pointers"], EVERY), "errno_check")
    res = prefixed("errno", report(log))
    res["errno_failed"] = re.search(r"^(\d+) failed$", out, re.M).group(1) if "failed" in out else "missing"
    return res


def ka_run(args, work, prog, name, conns):
    """ka_pair server and client, both under valgrind, over `conns` keep-alive connections."""
    srv_log, cli_log = (os.path.join(work, "%s_%s.vg" % (name, side)) for side in ("srv", "cli"))
    stats = {side: os.path.join(work, "%s_%s.stats" % (name, side)) for side in ("srv", "cli")}
    recording = lambda side: ["SOCKTUNE_STATS=" + stats[side], "SOCKTUNE_STATS_PROM=%s.prom" % stats[side],
                              "SOCKTUNE_AB=100"]  # every connection in arm B, so each one corks
    server = spawn(args, valgrind(srv_log) + [prog, "server", str(PORT), str(conns), str(BODY), "split"],
                   SERVER_ALL + recording("srv"))
    wait_listening(server, "ka_pair server")
    client = spawn(args, valgrind(cli_log) + [prog, "client", str(PORT), str(conns), str(args.requests), str(BODY)],
                   CLIENT_ALL + recording("cli"))
    out, err = finish(client, "ka_pair client")
    finish(server, "ka_pair server")  # exits by itself after `conns` connections
    if client.returncode:
        netns.die("ka_pair client failed (%d):\n%s%s" % (client.returncode, out, err))
    res = prefixed(name + "_srv", report(srv_log))
    res.update(prefixed(name + "_cli", report(cli_log)))
    res.update(netns.fields(out, name + "_"))
    for side, path in stats.items():
        with open(path) as f:
            res["%s_%s_records" % (name, side)] = sum('"type":"conn"' in line for line in f)
    res["conns_" + name] = conns
    return res


def py_run(args, work):
    """Debian's python3 http.server under valgrind and cork, with a plain keep-alive client."""
    log, www = os.path.join(work, "py.vg"), os.path.join(work, "www")
    os.mkdir(www)
    with open(os.path.join(www, "f100"), "wb") as f:
        f.write(b"x" * 100)
    server = spawn(args, valgrind(log) + [DEBIAN_PYTHON, "-m", "http.server", "-p", "HTTP/1.1", str(PORT),
                                          "--bind", "127.0.0.1", "-d", www],
                   ["SOCKTUNE_CORK=1", "PYTHONMALLOC=malloc"])
    wait_listening(server, "python3 http.server under valgrind")
    client = subprocess.run([sys.executable, os.path.join(netns.PROGS, "ka_client.py"), "127.0.0.1", str(PORT),
                             str(args.py_requests), "/f100"], env=netns.child_env(args, False, []),
                            capture_output=True, text=True, timeout=VALGRIND_WAIT)
    os.killpg(server.pid, signal.SIGTERM)  # valgrind still writes its full report
    finish(server, "python3 http.server")
    if client.returncode:
        netns.die("ka_client.py failed:\n" + client.stderr)
    res = prefixed("py_srv", report(log))
    res.update(netns.fields(client.stdout, "py_"))
    return res


def compile_prog(work, name):
    out = os.path.join(work, name)
    cc = subprocess.run(["cc", "-g", "-O1", "-o", out, os.path.join(netns.PROGS, name + ".c")],
                        capture_output=True, text=True)
    if cc.returncode:
        netns.die("cc %s.c failed (is gcc installed?):\n%s" % (name, cc.stderr))
    return out


def run(args):
    netns.setup_namespace(None)
    work = tempfile.mkdtemp(prefix="socktune-memcheck-")
    try:
        # Before Fast Open is on for both sides: with a cached cookie, TCP_FASTOPEN_CONNECT makes
        # connect() succeed at once, and errno_check expects connect's own errors.
        res = errno_run(args, work, compile_prog(work, "errno_check"))
        with open("/proc/sys/net/ipv4/tcp_fastopen", "w") as f:
            f.write("3")  # so that ka_pair's later connections carry data in the SYN
        ka = compile_prog(work, "ka_pair")
        res.update(ka_run(args, work, ka, "small", args.conns))
        res.update(ka_run(args, work, ka, "big", 10 * args.conns))
        res.update(py_run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return res


def main():
    tools.harness_main(__file__, parse_args(sys.argv[1:]), run, [("valgrind", "valgrind"), ("cc", "gcc"), (DEBIAN_PYTHON, "python3")])


if __name__ == "__main__":
    main()
