#!/usr/bin/env python3
"""Run one server + client scenario in a private network namespace and print one result line.

usage: netns.py --client CMD [--server CMD] [--port P] [--tfo [BITS]] [--rps] [--lib PATH]
                [--srv-shim] [--srv-env K=V ...] [--cli-shim] [--cli-env K=V ...]
                [--settle S] [--timeout S] [--trace]

Inside `unshare -n` (and -m with --rps), with only loopback up: optionally sets
net.ipv4.tcp_fastopen=3 (per namespace) and RPS on lo (below), starts the server (under
LD_PRELOAD=lib and its SOCKTUNE_* env if --srv-shim), waits for its port to be listening, runs
the client (same for --cli-shim), and always kills the server.
Commands are shell-like strings; {port}, {www} (a directory holding f100, 100 bytes "x", and
the BIG_FILES below) and {progs} (tests/progs) are substituted.

stdout: exactly one line of key=value pairs:
  - every key=value the client printed; the server's, prefixed srv_
  - client_rc; cli_socktune_lines and srv_socktune_lines (stderr lines starting "socktune:")
  - ns_segs: TCP segments in the namespace while the client ran (plus a settle period), and
    packets_per_conn = ns_segs / conns when the client reported conns.
stderr: the server's and client's stderr, prefixed; with --trace, the packets (needs tcpdump).
Exit status 2 on a setup failure (no namespace, a program or tool missing, server never
listened), else 0. It installs nothing: scripts/setup.sh installs every tool the tests use.

Why --rps: on plain loopback a packet joins the backlog of the CPU that sent it, so two packets
of one connection sent from two CPUs can arrive in either order. A Fast Open server's SYN-ACK
(sent in the softirq that took the SYN) and its reply (sent by the server's thread) then race: a
reply that arrives first finds the client in SYN_SENT, which drops it (drop reason TCP_FLAGS),
and it is retransmitted about 200 ms later. That happens without socktune too. With every CPU in
lo's rps_cpus, each flow's packets are steered by its hash to one CPU's backlog, and keep their
order, as on one wire; a private sysfs (hence -m) shows the namespace's own lo. It is not the
default: receiving on another CPU changes how ACKs coalesce, and an untuned two-send answer then
takes 10-12 packets instead of a steady 12, which the packet-counting tests compare against.

Why ns_segs is exact: both ends live in this namespace and loopback loses nothing, so every
segment either end sends is received once here, and the kernel's Tcp InSegs counter
(/proc/net/snmp, per namespace) counts each one, including segments TCP then drops, such as the
bare ACK that TCP_DEFER_ACCEPT discards. It matched a tcpdump count packet for packet. Unlike the
client's TCP_INFO it also sees the FIN/ACK exchange that follows close(). The port wait reads
/proc/net/tcp{,6} so it sends no packet of its own.
"""
import argparse
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROGS = os.path.join(os.path.dirname(HERE), "progs")
LISTEN_WAIT = 15  # seconds for the server to start listening
KILL_WAIT = 3  # seconds between SIGTERM and SIGKILL
# More files in {www}, named f<size>: 1461 (one 1460-byte Ethernet MSS + 1), 32769 and 65484 (one
# more than loopback's MSS: 32768 until the window grows, then 65483), 307200 (300 KiB).
BIG_FILES = (1461, 32769, 65484, 307200)


def die(msg):
    print("netns.py: " + msg, file=sys.stderr, flush=True)
    sys.exit(2)


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--client", required=True)
    p.add_argument("--server")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--tfo", nargs="?", const="3", default=None,
                   help="sysctl net.ipv4.tcp_fastopen=BITS (default 3) in the namespace; a new one starts at 1")
    p.add_argument("--rps", action="store_true",
                   help="steer each connection on lo to one CPU (RPS), so that it keeps its order (see above)")
    p.add_argument("--lib", help="path of libsocktune.so, needed by --srv-shim/--cli-shim")
    p.add_argument("--srv-shim", action="store_true")
    p.add_argument("--srv-env", action="append", default=[], metavar="K=V")
    p.add_argument("--cli-shim", action="store_true")
    p.add_argument("--cli-env", action="append", default=[], metavar="K=V")
    p.add_argument("--settle", type=float, default=0.4, help="seconds to let last ACKs out before counting")
    p.add_argument("--timeout", type=float, default=60, help="seconds the client may run")
    p.add_argument("--trace", action="store_true", help="print the packets on the port (tcpdump)")
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child_env(args, shim, pairs):
    """The inherited environment without any shim setting, plus LD_PRELOAD and pairs if shimmed."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("SOCKTUNE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # "python3" in a command is this interpreter, run directly: a wrapper script (such as a pyenv
    # shim) would load the shim into a dozen helper processes too.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    if shim:
        env["LD_PRELOAD"] = args.lib
        env.update(kv.split("=", 1) for kv in pairs)
    return env


def listening(port):
    """True if a TCP socket in this namespace listens on port (state 0A in /proc/net/tcp*)."""
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    return True
    return False


def tcp_in_segs():
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Tcp:")]
    return int(rows[1][rows[0].index("InSegs")])


def fields(text, prefix=""):
    return {prefix + k: v for k, v in (t.split("=", 1) for t in text.split() if "=" in t)}


def forward(tag, text, keep=20):
    """Copy a program's stderr to ours: its socktune: lines and its last `keep` lines."""
    lines = text.splitlines()
    head = [line for line in lines[:-keep] if line.startswith("socktune:")]
    if len(lines) > keep:
        head.append("... (%d more lines)" % (len(lines) - keep - len(head)))
    for line in head + lines[-keep:]:
        print("[%s] %s" % (tag, line), file=sys.stderr)


def stop(proc):
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(KILL_WAIT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_trace(port, pcap):
    proc = subprocess.Popen(["tcpdump", "--immediate-mode", "-i", "lo", "-nn", "-U", "-w", pcap, "tcp port %d" % port],
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    proc.stderr.readline()  # "listening on lo ..." once capture has started
    return proc


def setup_namespace(tfo, rps=False):
    """Loopback up, and Fast Open's sysctl set; with rps, RPS on lo (needs a mount namespace too)."""
    try:
        up = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True, timeout=30)
        if up.returncode:
            die("ip link set lo up: " + up.stderr.strip())
    except OSError as e:
        die("cannot run ip (Debian package iproute2): %s; run: bash scripts/setup.sh" % e)
    if rps:
        # This mount namespace's own sysfs shows this network namespace's lo.
        mount = subprocess.run(["mount", "-t", "sysfs", "sysfs", "/sys"], capture_output=True, text=True, timeout=30)
        if mount.returncode:
            die("mount -t sysfs: " + mount.stderr.strip())
        mask = sum(1 << cpu for cpu in os.sched_getaffinity(0))
        groups = []  # the kernel's bitmap format: 32-bit hex groups, highest first, comma-separated
        while True:
            groups.insert(0, "%08x" % (mask & 0xFFFFFFFF))
            mask >>= 32
            if not mask:
                break
        with open("/sys/class/net/lo/queues/rx-0/rps_cpus", "w") as f:
            f.write(",".join(groups))
    if tfo is not None:
        with open("/proc/sys/net/ipv4/tcp_fastopen", "w") as f:
            f.write(tfo)


def scenario(args, work):
    """Runs server and client with files under `work`; returns the result fields."""
    www = os.path.join(work, "www")
    os.mkdir(www)
    with open(os.path.join(www, "f100"), "wb") as f:
        f.write(b"x" * 100)
    rnd = random.Random(100)  # seeded pseudo-random bytes: a lost, repeated or moved chunk shows
    for size in BIG_FILES:
        with open(os.path.join(www, "f%d" % size), "wb") as f:
            f.write(rnd.randbytes(size))
    subst = {"port": args.port, "www": www, "progs": PROGS}
    cmd = lambda s: [t.format(**subst) for t in shlex.split(s)]
    server = trace = None
    srv_out, srv_err = (open(os.path.join(work, n), "w+") for n in ("srv.out", "srv.err"))
    try:
        if args.server:
            server = subprocess.Popen(cmd(args.server), env=child_env(args, args.srv_shim, args.srv_env),
                                      stdin=subprocess.DEVNULL, stdout=srv_out, stderr=srv_err,
                                      start_new_session=True)
            deadline = time.monotonic() + LISTEN_WAIT
            while not listening(args.port):
                if server.poll() is not None or time.monotonic() > deadline:
                    srv_err.seek(0)
                    forward("srv", srv_err.read())
                    die("server never listened on port %d: %s" % (args.port, args.server))
                time.sleep(0.02)
        if args.trace:
            trace = start_trace(args.port, os.path.join(work, "trace.pcap"))
        segs0 = tcp_in_segs()
        try:
            cli = subprocess.run(cmd(args.client), env=child_env(args, args.cli_shim, args.cli_env),
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=args.timeout)
            rc, cli_out, cli_err = cli.returncode, cli.stdout, cli.stderr
        except subprocess.TimeoutExpired as e:
            rc, cli_out, cli_err = "timeout", e.stdout or "", e.stderr or ""
            cli_out, cli_err = (s.decode() if isinstance(s, bytes) else s for s in (cli_out, cli_err))
        time.sleep(args.settle)
        segs = tcp_in_segs() - segs0
    finally:
        for proc in (server, trace):
            if proc:
                stop(proc)
    srv_out.seek(0)
    srv_err.seek(0)
    srv_text, srv_err_text = srv_out.read(), srv_err.read()
    forward("srv", srv_err_text)
    forward("cli", cli_err)
    if trace:
        dump = subprocess.run(["tcpdump", "-nn", "-r", os.path.join(work, "trace.pcap")],
                              capture_output=True, text=True, timeout=30).stdout
        forward("pkt", dump, keep=10**6)

    res = fields(cli_out)
    res.update(fields(srv_text, "srv_"))
    res["client_rc"] = rc
    res["ns_segs"] = segs
    if "conns" in res:
        res["packets_per_conn"] = "%.2f" % (segs / int(res["conns"]))
    count = lambda text: sum(1 for line in text.splitlines() if line.startswith("socktune:"))
    res["cli_socktune_lines"] = count(cli_err)
    res["srv_socktune_lines"] = count(srv_err_text)
    return res


def run(args):
    setup_namespace(args.tfo, args.rps)
    work = tempfile.mkdtemp(prefix="socktune-netns-")
    try:
        res = scenario(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(" ".join("%s=%s" % kv for kv in res.items()), flush=True)


def require_programs(args):
    """Exits with status 2, naming what is missing, unless the tools this harness runs and the
    server's and client's programs are installed, so that a missing one is not mistaken for a
    server that never listened or a failing client."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    needed = [("unshare", "Debian package util-linux"), ("ip", "Debian package iproute2")]
    if args.trace:
        needed.append(("tcpdump", "Debian package tcpdump"))
    for side, cmd in (("server", args.server), ("client", args.client)):
        prog = shlex.split(cmd)[0] if cmd else "{"
        if "{" not in prog:  # {progs}/... is this repository's own
            needed.append((prog, "the %s's program" % side))
    missing = ["%s (%s)" % (prog, what) for prog, what in needed if not shutil.which(prog, path=path)]
    if missing:
        die("missing %s; run: bash scripts/setup.sh" % ", ".join(missing))


def main():
    args = parse_args(sys.argv[1:])
    if (args.srv_shim or args.cli_shim) and not (args.lib and os.path.isfile(args.lib)):
        die("library not found: %r (build it with cargo build --release)" % args.lib)
    if args.inside:
        run(args)
        return
    require_programs(args)
    try:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, timeout=30)
        problem = probe.stderr.strip() if probe.returncode else ""
    except (OSError, subprocess.TimeoutExpired) as e:
        problem = str(e)
    if problem:
        die("`unshare -n` failed (these scenarios need root, or CAP_SYS_ADMIN, for a private "
            "network namespace): " + problem)
    os.execvp("unshare", ["unshare", "-n"] + (["-m"] if args.rps else []) + [sys.executable, os.path.abspath(__file__), "--inside"] + sys.argv[1:])


if __name__ == "__main__":
    main()
