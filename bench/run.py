#!/usr/bin/env python3
"""socktune benchmark: unmodified servers and clients without and with each behaviour, on loopback
in a private network namespace, and Fast Open and defer-accept over an emulated wide-area link.

usage: run.py --lib PATH --out DIR [--smoke] [--rounds R] [--only TEXT ...]
Writes DIR/results.json, DIR/results.md and DIR/chart.svg; progress goes to stderr. Each matrix
cell is one run of tests/harness/netns.py (a fresh namespace with tcp_fastopen=3): packets are the
namespace's own TCP segment count, divided by the requests made, warm-up included.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import chart
from link import SRV_ADDR, Link, check as check_link, exit_on_sigterm, host_bound, met as link_met

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HARNESS = os.path.join(ROOT, "tests", "harness", "netns.py")
APPS, CLIENTS = os.path.join(HERE, "apps"), os.path.join(HERE, "clients")
PORT = 8080
BODY_SIZE = 100

NGINX_UNTUNED = "tcp_nopush off; tcp_nodelay off; sendfile on;"
# Each server: how to start it, given {host}, {port} and {work} (holding www/ and the body file).
SERVERS = {
    "http.server HTTP/1.0": "python3 -m http.server {port} --bind {host} -d {work}/www",
    "http.server HTTP/1.1": "python3 -m http.server -p HTTP/1.1 {port} --bind {host} -d {work}/www",
    "gunicorn sync (2 workers)": "gunicorn -w 2 -k sync -b {host}:{port} --chdir %s flask_app:app" % APPS,
    "Flask dev server": "flask --app %s/flask_app.py run --host {host} --port {port}" % APPS,
    "Starman (2 workers)": "starman --workers 2 --listen {host}:{port} %s/app.psgi" % APPS,
    "plackup HTTP::Server::PSGI": "plackup -s HTTP::Server::PSGI --host {host} --port {port} %s/app.psgi" % APPS,
    "nginx untuned": "nginx -p {work} -c {work}/nginx-untuned.conf -e stderr",
    "nginx tuned": "nginx -p {work} -c {work}/nginx-tuned.conf -e stderr",
    "Node.js http": "node %s/server.js {host} {port}" % APPS,
}
NGINX_TUNING = {
    "untuned": (NGINX_UNTUNED, ""),
    "tuned": ("tcp_nopush on; tcp_nodelay on; sendfile on;", " deferred fastopen=256"),
}
SMOKE_SERVERS = ["http.server HTTP/1.0", "http.server HTTP/1.1", "Node.js http"]

# Each behaviour: the server's and the client's SOCKTUNE_* settings.
BEHAVIOURS = {
    "defer": ({"SOCKTUNE_DEFER_ACCEPT": "5"}, {}),
    "cork": ({"SOCKTUNE_CORK": "1"}, {}),
    "quickack-off": ({"SOCKTUNE_QUICKACK": "0"}, {"SOCKTUNE_QUICKACK": "0"}),
    "fastopen": ({"SOCKTUNE_FASTOPEN": "256"}, {"SOCKTUNE_FASTOPEN_CONNECT": "1"}),
    "nodelay": ({"SOCKTUNE_NODELAY": "1"}, {}),
}
# "none" runs without the shim; "all" is every behaviour at once.
CONFIGS = {"none": ({}, {}), **BEHAVIOURS,
           "all": tuple({k: v for b in BEHAVIOURS.values() for k, v in b[side].items()} for side in (0, 1))}
SMOKE_CONFIGS = ["none", "cork", "all"]

# Each client, and which behaviours it runs under (the python client runs under every one).
CLIENT_CMDS = {
    "python": "python3 %s/py_client.py {host} {port} {n} /body {work}/www/body" % CLIENTS,
    "curl": "python3 %s/curl_client.py http://{host}:{port}/body {n} {work}/www/body" % CLIENTS,
    "wrk": "python3 %s/wrk_client.py http://{host}:{port}/body 2 {secs}" % CLIENTS,
}
CLIENT_CONFIGS = {"python": list(CONFIGS), "curl": ["none", "all"], "wrk": ["none", "all"]}
SMOKE_CLIENTS = {"python": SMOKE_CONFIGS, "curl": ["none", "all"]}

# A server log line that means something went wrong (the servers' normal request lines never match).
LOG_ERROR = re.compile(r"Traceback|\[(emerg|alert|crit|error)\]|\bERROR\b|\berror:|^socktune:", re.M | re.I)
# wrk stops at the end of its duration with requests in flight, so a server still writing gets
# EPIPE or ECONNRESET. It happens without the shim too: for wrk these mean the client hung up.
HANGUPS = {"BrokenPipeError", "ConnectionResetError"}


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def prepare_work(work):
    """www/body (BODY_SIZE seeded bytes, so a lost or moved byte shows) and the two nginx configs."""
    os.makedirs(os.path.join(work, "www"))
    os.makedirs(os.path.join(work, "tmp"))
    body = bytes((i * 37 + 11) % 94 + 33 for i in range(BODY_SIZE))
    with open(os.path.join(work, "www", "body"), "wb") as f:
        f.write(body)
    with open(os.path.join(APPS, "nginx.conf")) as f:
        template = f.read()
    for name, (tuning, listen) in NGINX_TUNING.items():
        conf = (template.replace("@WORK@", work).replace("@PORT@", str(PORT))
                .replace("@TUNING@", tuning).replace("@LISTEN@", listen))
        with open(os.path.join(work, "nginx-%s.conf" % name), "w") as f:
            f.write(conf)


def log_problems(text, client, log_error=LOG_ERROR):
    """(problem lines, note) found in a server's log."""
    bad = [line for line in text.splitlines() if log_error.search(line)]
    kinds = set(re.findall(r"^(\w+(?:Error|Exception))\b", text, re.M))
    if client == "wrk" and kinds and kinds <= HANGUPS:
        return ([line for line in bad if not line.startswith("Traceback")],
                "wrk hung up on requests in flight at the end of its run (%s)" % ", ".join(sorted(kinds)))
    return bad, ""


def fields(line):
    return dict(t.split("=", 1) for t in line.split() if "=" in t)


def run_cell(lib, work, logs, server, client, config, n, secs):
    """One server+client run in a fresh namespace; returns its result record."""
    fill = dict(host="127.0.0.1", port="{port}", work=work, n=n, secs=secs)  # the harness fills in {port}
    rec = {"server": server, "client": client, "config": config}
    rec.update(run_harness(lib, work, logs, "%s-%s-%s" % (server, client, config), SERVERS[server].format(**fill),
                           CLIENT_CMDS[client].format(**fill), CONFIGS[config], config != "none", client)[0])
    return rec


def run_harness(lib, work, logs, name, server_cmd, client_cmd, settings, shimmed, client="", log_error=LOG_ERROR,
                extra_env=None, rps=False):
    """Runs tests/harness/netns.py once: server_cmd and client_cmd with settings = (server's,
    client's), under the shim if shimmed. Returns (record, the harness's fields): the record has
    seconds, ok, problems and note (a log line matching log_error, or a failed client, is a
    problem) and the client's measures. A run with a problem or a note leaves its server and
    harness logs in `logs`, named after name. extra_env goes to the harness, server and client;
    rps steers loopback by connection (the harness's --rps)."""
    srv_env, cli_env = settings
    log = os.path.join(work, "server.log")
    open(log, "w").close()
    # The server's stderr goes to a file of ours so that every line of it can be checked.
    wrapped = "sh -c 'exec \"$@\" 2>>\"$0\"' %s %s" % (shlex.quote(log), server_cmd)
    argv = [sys.executable, HARNESS, "--lib", lib, "--tfo", "3", "--port", str(PORT),
            "--server", wrapped, "--client", client_cmd, "--timeout", "120"] + (["--rps"] if rps else [])
    for flag, shim, env in (("--srv", "--srv-shim", srv_env), ("--cli", "--cli-shim", cli_env)):
        if shimmed and (env or flag == "--srv"):
            argv.append(shim)
        argv += ["%s-env=%s=%s" % (flag, k, v) for k, v in env.items()]
    env = dict(os.environ, BENCH_BODY=os.path.join(work, "www", "body"), **(extra_env or {}))
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    res = fields(proc.stdout)
    with open(log, errors="replace") as f:
        errors, note = log_problems(f.read(), client, log_error)
    rec = {"seconds": round(time.monotonic() - t0, 1), "note": note}
    problems = []
    if proc.returncode or res.get("client_rc") != "0":
        problems.append("client failed (rc=%s): %s" % (res.get("client_rc", proc.returncode),
                                                       " | ".join(proc.stderr.strip().splitlines()[-3:])))
    if int(res.get("errors", 0)):
        problems.append("%s wrk errors or non-2xx responses" % res["errors"])
    if errors:
        problems.append("server log: " + " | ".join(errors[:3]))
    rec["ok"] = not problems
    rec["problems"] = problems
    if problems or note:  # keep the evidence
        name = re.sub(r"[^\w.-]+", "_", name)
        with open(os.path.join(logs, name + ".server.log"), "w") as f, open(log, errors="replace") as src:
            f.write(src.read())
        with open(os.path.join(logs, name + ".harness.log"), "w") as f:
            f.write(proc.stdout + proc.stderr)
    if "requests_total" in res:
        rec.update(packets_per_request=round(int(res["ns_segs"]) / int(res["requests_total"]), 2),
                   p50_ms=float(res["p50_ms"]), p99_ms=float(res["p99_ms"]), req_s=float(res["req_s"]),
                   requests=int(res["requests"]), syn_data=int(res["syn_data"]),
                   conns=int(res["conns"]) if "conns" in res else None)
    return rec, res


def matrix(lib, work, logs, smoke, only, rounds):
    """Every cell `rounds` times, round after round, so that a cell and its unshimmed baseline
    are measured close together each time; each cell keeps its median-latency round."""
    servers = [s for s in (SMOKE_SERVERS if smoke else SERVERS) if not only or any(o in s for o in only)]
    clients = SMOKE_CLIENTS if smoke else CLIENT_CONFIGS
    cells = [(s, c, cfg) for s in servers for c, cfgs in clients.items() for cfg in cfgs]
    n, curl_n, secs = (30, 10, 1) if smoke else (50, 15, 1)
    runs = {cell: [] for cell in cells}
    done = 0
    for r in range(1, rounds + 1):
        for server, client, config in cells:
            rec = run_cell(lib, work, logs, server, client, config, curl_n if client == "curl" else n, secs)
            runs[(server, client, config)].append(rec)
            done += 1
            summary = ("p50 %.3f ms, %.2f packets/request, %.0f req/s" % (
                rec["p50_ms"], rec["packets_per_request"], rec["req_s"]) if "p50_ms" in rec else "")
            progress("[%d/%d] round %d · %s · %s · %s: %s %s (%.1f s)" % (
                done, len(cells) * rounds, r, server, client, config, "ok" if rec["ok"] else "FAILED", summary,
                rec["seconds"]))
            for p in rec["problems"]:
                progress("    " + p)
    return [median_round(recs) for recs in runs.values()]


def median_round(recs):
    """The round with the median p50, marked broken if any round broke, with every round's p50."""
    measured = sorted((r for r in recs if "p50_ms" in r), key=lambda r: r["p50_ms"])
    rec = dict(measured[(len(measured) - 1) // 2] if measured else recs[0])
    rec["ok"] = all(r["ok"] for r in recs)
    rec["problems"] = list(dict.fromkeys(p for r in recs for p in r["problems"]))
    rec["note"] = "; ".join(dict.fromkeys(r["note"] for r in recs if r["note"]))
    rec["p50_ms_rounds"] = [r.get("p50_ms") for r in recs]
    return rec


def verdict(rec, base):
    """How a cell compares with the same server and client without the shim. Loopback latency
    varies about 2x between runs on a shared machine, so only a clear change counts."""
    if not rec["ok"]:
        return "breaks"
    if base is None or not base["ok"] or "p50_ms" not in base:
        return "-"
    pkts, p50 = rec["packets_per_request"] / base["packets_per_request"], rec["p50_ms"] / base["p50_ms"]
    if pkts > 1.1 or (p50 > 2 and rec["p50_ms"] - base["p50_ms"] > 1):
        return "worse"
    return "helped" if pkts < 0.9 or p50 < 0.5 else "not helped"


def add_verdicts(cells):
    base = {(r["server"], r["client"]): r for r in cells if r["config"] == "none"}
    for r in cells:
        if r["config"] != "none":
            r["verdict"] = verdict(r, base.get((r["server"], r["client"])))
    return cells


def wait_listening(link, port, proc, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("%s exited early" % what)
        tcp = subprocess.run(link.cmd(link.srv, ["cat", "/proc/net/tcp"]), capture_output=True, text=True).stdout
        if any(l.split()[3] == "0A" and int(l.split()[1].rsplit(":", 1)[1], 16) == port
               for l in tcp.splitlines()[1:]):
            return
        time.sleep(0.05)
    raise RuntimeError("%s never listened" % what)


def shim_env(lib, settings, extra):
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("SOCKTUNE_")}
    env.update(extra)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    if settings:
        env.update(settings, LD_PRELOAD=lib)
    return env


def over_link(lib, work, link, server_cmd, settings, client_argv):
    """Runs one server and one client across the link, with settings = (server's, client's);
    returns the client's result fields."""
    extra = {"BENCH_BODY": os.path.join(work, "www", "body")}
    with open(os.path.join(work, "server.log"), "w+") as log:
        server = subprocess.Popen(link.cmd(link.srv, shlex.split(server_cmd)), env=shim_env(lib, settings[0], extra),
                                  stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            wait_listening(link, PORT, server, server_cmd)
            cli = subprocess.run(link.cmd(link.cli, client_argv), env=shim_env(lib, settings[1], extra),
                                 capture_output=True, text=True, timeout=120)
        finally:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.seek(0)
        errors, _ = log_problems(log.read(), "link")
    if cli.returncode or errors:
        raise RuntimeError("over the link, %s against %s failed: %s" % (client_argv, server_cmd,
                                                                         cli.stderr.strip() or errors))
    return fields(cli.stdout)


def rtt_section(lib, work, smoke):
    """Fast Open and defer-accept over the emulated link, in RTTs of the configured link."""
    one_way = 5.0
    rtt = 2 * one_way
    out = {"link_check": check_link([one_way] if smoke else [one_way, 20.0]), "rtt_ms": rtt, "fastopen": [],
           "defer": []}
    fill = dict(host=SRV_ADDR, port=PORT, work=work)
    body = os.path.join(work, "www", "body")
    n = 10 if smoke else 20
    clients = {
        "python": [sys.executable, os.path.join(CLIENTS, "py_client.py"), SRV_ADDR, str(PORT), str(n), "/body", body],
        "curl": [sys.executable, os.path.join(CLIENTS, "curl_client.py"), "http://%s:%d/body" % (SRV_ADDR, PORT),
                 str(n), body],
    }
    with Link(one_way, tfo=3) as link:
        for client, argv in clients.items():
            for config in ("none", "fastopen"):
                res = over_link(lib, work, link, SERVERS["http.server HTTP/1.0"].format(**fill), CONFIGS[config], argv)
                rec = {"client": client, "fastopen": config == "fastopen", "p50_ms": float(res["p50_ms"]),
                       "p50_rtt": round(float(res["p50_ms"]) / rtt, 2), "syn_data": int(res["syn_data"]),
                       "conns": int(res["conns"])}
                out["fastopen"].append(rec)
                progress("link: %s, Fast Open %s: connect + response p50 %.2f ms = %.2f RTT, %d of %d in the SYN"
                         % (client, "on" if rec["fastopen"] else "off", rec["p50_ms"], rec["p50_rtt"],
                            rec["syn_data"], rec["conns"]))
        workers, slow, fast, pause = 2, 3, 4, 1.0
        for config in ("none", "defer"):
            res = over_link(lib, work, link, SERVERS["gunicorn sync (2 workers)"].format(**fill), CONFIGS[config],
                            [sys.executable, os.path.join(CLIENTS, "slow_fast.py"), SRV_ADDR, str(PORT), "/body",
                             body, str(slow), str(fast), str(pause)])
            defer = config == "defer"
            rec = {"defer_accept": defer, "workers": workers, "slow_clients": slow, "fast_clients": fast,
                   "pause_s": pause, "fast_p50_ms": float(res["fast_p50_ms"]),
                   "fast_max_ms": float(res["fast_max_ms"]), "fast_p50_rtt": round(float(res["fast_p50_ms"]) / rtt, 1),
                   "slow_ok": int(res["slow_ok"])}
            out["defer"].append(rec)
            progress("link: gunicorn, %d workers, %d clients pausing %.1f s, defer-accept %s: %d fast clients' "
                     "response p50 %.1f ms = %.1f RTT" % (workers, slow, pause, "on" if defer else "off", fast,
                                                         rec["fast_p50_ms"], rec["fast_p50_rtt"]))
    return out


def main():
    exit_on_sigterm()
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--rounds", type=int, help="times each cell runs (default 3, smoke 1); the median is kept")
    p.add_argument("--only", action="append", metavar="TEXT",
                   help="only the servers whose name contains TEXT (repeatable); skips the link section")
    args = p.parse_args()
    lib = os.path.abspath(args.lib)
    rounds = args.rounds or (1 if args.smoke else 3)
    logs = os.path.join(args.out, "logs")  # server and harness logs of the cells that broke
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="socktune-bench-") as work:
        prepare_work(work)
        results = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": "%s %s, %d cores" % (platform.system(), platform.release(), os.cpu_count()),
            "smoke": args.smoke,
            "link": {"link_check": [], "rtt_ms": None, "fastopen": [], "defer": []} if args.only
            else rtt_section(lib, work, args.smoke),
            "rounds": rounds,
            "matrix": add_verdicts(matrix(lib, work, logs, args.smoke, args.only, rounds)),
        }
    results["seconds"] = round(time.monotonic() - started)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(chart.markdown(results, CONFIGS))
    with open(os.path.join(args.out, "chart.svg"), "w") as f:
        f.write(chart.svg(results, list(CONFIGS)))
    broken = [r for r in results["matrix"] if not r["ok"]]
    link_off = not link_met(results["link"]["link_check"])
    unchecked = host_bound(results["link"]["link_check"])
    # Past the first connection (the cookie request), every Fast Open request must ride in the SYN.
    no_syn_data = [r for r in results["link"]["fastopen"] if r["fastopen"] and r["syn_data"] < r["conns"] - 1]
    progress("bench: %d s; wrote results.json, results.md and chart.svg in %s; %d cell(s) broke%s%s%s"
             % (results["seconds"], args.out, len(broken), "; THE LINK MISSED ITS RTT" if link_off else "",
                "; THE LINK'S RTT COULD NOT BE CHECKED: THE HOST TOOK THE CPU (its RTT figures are high)"
                if unchecked else "",
                "; FAST OPEN DATA MISSED THE SYN" if no_syn_data else ""))
    # A broken cell is a finding for the table; in the smoke run (only programs known to work) and
    # for the link and Fast Open it is a failure.
    sys.exit(1 if link_off or no_syn_data or (broken and args.smoke) else 0)


if __name__ == "__main__":
    main()
