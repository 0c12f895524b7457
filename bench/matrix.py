#!/usr/bin/env python3
"""socktune's compatibility matrix: many unmodified programs, each without the shim, with the
library loaded and nothing set, under each behaviour alone and under all of them, on loopback in
private network namespaces.

usage: matrix.py --lib PATH --out DIR [--smoke] [--rounds R] [--only TEXT ...]
Each cell is a pair of runs of tests/harness/netns.py side by side, each in a fresh namespace
(tcp_fastopen=3): the program without the shim and the program under the column's settings,
each with its own copy of the working files. The two clients take turns of 20 ms
(bench/clients/common.py), so both are measured on the same host at the same time: the host's
speed moves by up to x2 within a second here, far more than a cell differs from its baseline.
The rounds interleave: round 1 runs every pair, then round 2. A cell is WORSE when the median of
its p50s is above 1.5 x + 0.5 ms of its twins', or it has more packets per request, or the
median of its rounds' requests/s over its twin's is below 0.9; it BREAKS when any round hangs,
fails, gets a wrong byte or logs an error. A cell marked WORSE (not BREAKS) is measured in 6 more
rounds and judged on all of them: one round's ratio moves by +-15 % on the slower interpreters.
`none` shows the medians of every twin's rounds, but those of the STEERED columns: their pairs run
with RPS on lo (see STEERED).
Writes DIR/results.json and DIR/results.md; progress goes to stderr.
"""
import argparse
import concurrent.futures
import datetime
import glob
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

from link import exit_on_sigterm
from run import APPS, BEHAVIOURS, CLIENTS, LOG_ERROR, NGINX_TUNING, ROOT, SERVERS, prepare_work, progress, \
    run_harness

BACKEND_PORT = 8081  # the reverse proxy's backend
N = 20000  # operations per cell at most, warm-up not counted
# A client stops after this long: each cell measures about a second, whatever the program's speed
# (200 operations took 0.01 to 0.4 s, and their requests/s varied by 40 % between rounds).
SECONDS = 1
PER_CONN = 10  # operations per connection of the non-HTTP clients
HTTP = "python3 %s/py_client.py {host} {port} {n} /body {work}/www/body %d" % (CLIENTS, SECONDS)
PROTO = "python3 %s/proto_client.py %%s {host} {port} {n} %d {work}/www/body %d" % (CLIENTS, PER_CONN, SECONDS)
# vsftpd's sessions are children that close the listener: its first two connections pay under
# defer-accept (docs/behaviours.md), and the warm-up (the `first` table) takes both.
FORKING_GREETER = PROTO + " 2"
# Debian's PostgreSQL server and initdb, of the newest version installed.
PG = max(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]), default="/usr/lib/postgresql/bin")
# Each program: its server, its client, and who speaks first on a new connection.
PROGRAMS = {name: (cmd, HTTP, "client") for name, cmd in SERVERS.items()}
PROGRAMS.update({
    "Redis": ("redis-server --bind 127.0.0.1 --port {port} --save '' --appendonly no", PROTO % "redis", "client"),
    "memcached": ("memcached -u root -l 127.0.0.1 -p {port} -U 0 -t 2", PROTO % "memcached", "client"),
    "PostgreSQL": ("setpriv --reuid=postgres --regid=postgres --init-groups %s/postgres -D {work}/pg "
                   "-h 127.0.0.1 -p {port} -k {work}/tmp -c fsync=off" % PG, PROTO % "postgres", "client"),
    "MariaDB": ("mariadbd --no-defaults --user=root --datadir={work}/mysql --bind-address=127.0.0.1 --port={port} "
                "--socket={work}/tmp/mysql.sock --pid-file={work}/tmp/mysql.pid --skip-grant-tables "
                "--skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=16M", PROTO % "mysql", "server"),
    "Apache event": ("apache2 -DFOREGROUND -f {work}/apache-event.conf", HTTP, "client"),
    "Apache prefork": ("apache2 -DFOREGROUND -f {work}/apache-prefork.conf", HTTP, "client"),
    "haproxy → http.server": ("sh %s/proxied.sh %d {work}/www haproxy -db -f {work}/haproxy.cfg"
                              % (APPS, BACKEND_PORT), HTTP, "client"),
    "nginx proxy_pass → http.server": ("sh %s/proxied.sh %d {work}/www nginx -p {work} -c {work}/nginx-proxy.conf "
                                       "-e stderr" % (APPS, BACKEND_PORT), HTTP, "client"),
    "uvicorn (asyncio)": ("uvicorn --app-dir %s --host 127.0.0.1 --port {port} --no-access-log asgi_app:app" % APPS,
                          HTTP, "client"),
    "Java HttpServer thread pool": ("java -cp {work}/java PoolServer 127.0.0.1 {port}",
                                    HTTP.replace("/www/body", "/www/x100"), "client"),
    "pyftpdlib FTP, passive": ("python3 -m pyftpdlib -i 127.0.0.1 -p {port} -d {work}/www", PROTO % "ftp", "server"),
    "vsftpd FTP, passive": ("vsftpd {work}/vsftpd.conf", FORKING_GREETER % "ftp", "server"),
    "aiosmtpd SMTP": ("env PYTHONPATH=%s python3 -m aiosmtpd -n -l 127.0.0.1:{port} -c smtp_check.Check" % APPS,
                      PROTO % "smtp", "server"),
})
SMOKE_PROGRAMS = ["http.server HTTP/1.0", "Redis", "pyftpdlib FTP, passive", "aiosmtpd SMTP"]
# What each program needs installed (scripts/setup.sh --matrix), beside the full benchmark's.
NEEDS = {"Redis": "redis-server", "memcached": "memcached", "PostgreSQL": PG + "/postgres", "MariaDB": "mariadbd",
         "Apache event": "apache2", "Apache prefork": "apache2", "haproxy → http.server": "haproxy",
         "uvicorn (asyncio)": "uvicorn", "Java HttpServer thread pool": "javac", "vsftpd FTP, passive": "vsftpd"}

# The columns: each behaviour alone (run.py's, and the listen backlog), then all of them at once.
# `loaded` is the library with nothing set: what loading it alone costs.
COLUMNS = {"none": ({}, {}), "loaded": ({}, {}), **BEHAVIOURS, "backlog": ({"SOCKTUNE_BACKLOG": "4096"}, {})}
COLUMNS["all"] = tuple({k: v for b in list(COLUMNS.values())[2:] for k, v in b[side].items()} for side in (0, 1))
# Fast Open's pairs run with RPS on lo, in both twins (tests/harness/netns.py --rps): plain
# loopback can deliver a Fast Open server's reply before its SYN-ACK, and the client drops it and
# waits 200 ms for it again, the kernel's doing with or without the shim (bench/README.md).
STEERED = ("fastopen", "all")
SMOKE_COLUMNS = ["none", "loaded", "cork", "fastopen", "all"]  # defer alone costs FTP and SMTP 45 s today
# PostgreSQL and MariaDB report a failed query or connection as FATAL; pyftpdlib as "[E ".
MATRIX_LOG_ERROR = re.compile(LOG_ERROR.pattern + r"|\bFATAL\b|\bPANIC\b|^\[E ", re.M | re.I)
WORSE_P50 = (1.5, 0.5)  # p50 above 1.5 x + 0.5 ms of the baseline's
WORSE_REQ_S = 0.9
CONFIRM_ROUNDS = 6  # more rounds for a cell marked WORSE; the docstring says why
# More packets: above the baseline's median by more than 1 %. Both medians are exact counts, but
# whether an ACK is delayed or rides on data depends on timing by a packet in a few hundred.
WORSE_PACKETS = 1.01


def prepare(work, programs):
    """run.py's www/body and nginx configs; www/x100 (the Java server's body); the Apache,
    haproxy, nginx-proxy and vsftpd configs (and vsftpd's empty directory); and for the programs that run, PoolServer.class and
    PostgreSQL's and MariaDB's data directories."""
    prepare_work(work)
    os.chmod(work, 0o755)  # PostgreSQL runs as postgres and Apache's workers as www-data
    with open(os.path.join(work, "www", "x100"), "wb") as f:
        f.write(b"x" * 100)
    with open(os.path.join(APPS, "apache.conf")) as f:
        apache = f.read().replace("@WORK@", work).replace("@PORT@", "8080")
    for mpm in ("event", "prefork"):
        with open(os.path.join(work, "apache-%s.conf" % mpm), "w") as f:
            f.write(apache.replace("@MPM@", mpm))
    for name, backend in (("haproxy.cfg", BACKEND_PORT), ("vsftpd.conf", None)):
        with open(os.path.join(APPS, name)) as f:
            conf = f.read().replace("@PORT@", "8080").replace("@BACKEND@", str(backend)).replace("@WORK@", work)
        with open(os.path.join(work, name), "w") as f:
            f.write(conf)
    os.makedirs(os.path.join(work, "empty"))  # vsftpd's secure_chroot_dir
    with open(os.path.join(APPS, "nginx.conf")) as f:  # the untuned nginx, proxying instead of serving
        conf = (f.read().replace("@WORK@", work).replace("@PORT@", "8080").replace("@LISTEN@", "")
                .replace("@TUNING@", NGINX_TUNING["untuned"][0])
                .replace("root %s/www;" % work, "location / { proxy_pass http://127.0.0.1:%d; }" % BACKEND_PORT))
    with open(os.path.join(work, "nginx-proxy.conf"), "w") as f:
        f.write(conf)
    steps = {
        "Java HttpServer thread pool": ["javac", "-d", os.path.join(work, "java"), os.path.join(ROOT, "tests", "progs", "PoolServer.java")],
        "PostgreSQL": ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", PG + "/initdb", "-D",
         os.path.join(work, "pg"), "-U", "postgres", "--auth=trust", "--no-sync"],
        "MariaDB": ["mariadb-install-db", "--no-defaults", "--user=root", "--datadir=" + os.path.join(work, "mysql"),
         "--skip-test-db", "--auth-root-authentication-method=normal"],
    }
    os.chmod(os.path.join(work, "tmp"), 0o1777)  # PostgreSQL's socket
    if "PostgreSQL" in programs:  # initdb runs as postgres, PostgreSQL's own user
        os.makedirs(os.path.join(work, "pg"))
        shutil.chown(os.path.join(work, "pg"), "postgres", "postgres")
    for argv in (argv for program, argv in steps.items() if program in programs):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        if done.returncode:
            sys.exit("matrix: %s failed: %s" % (" ".join(argv[:2]), done.stderr.strip()[-500:]))


def run_cell(lib, work, logs, program, column, turns, steered):
    server, client, _ = PROGRAMS[program]
    fill = dict(port="{port}", work=work, host="127.0.0.1", n=N)  # the harness fills in {port}
    rec, res = run_harness(lib, work, logs, "%s-%s" % (program, column), server.format(**fill),
                           client.format(**fill), COLUMNS[column], column != "none", log_error=MATRIX_LOG_ERROR,
                           extra_env={"BENCH_TURNS": turns, "HOME": work},  # twins share no ~/.gunicorn
                           rps=steered)
    rec.update(program=program, column=column)
    for key in ("first_ms", "max_ms"):
        if key in res:
            rec[key] = float(res[key])
    return rec


def run_pair(lib, works, logs, program, column):
    """The program without the shim and under `column`, side by side, their clients taking turns:
    returns (the column's record, its twin's)."""
    with tempfile.TemporaryDirectory(prefix="socktune-turns-") as fifos:
        a, b = os.path.join(fifos, "none"), os.path.join(fifos, "shim")
        os.mkfifo(a)
        os.mkfifo(b)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            steered = column in STEERED
            twin = pool.submit(run_cell, lib, works[0], logs, program, "none", "%s %s 1" % (a, b), steered)
            rec = pool.submit(run_cell, lib, works[1], logs, program, column, "%s %s 0" % (b, a), steered)
            return rec.result(), twin.result()


def median(recs, key):
    values = [r[key] for r in recs if key in r]
    return round(statistics.median(values), 3) if values else None


def combine(recs):
    """One cell from its rounds: the median of each measure, broken if any round broke."""
    out = {k: recs[0][k] for k in ("program", "column")}
    out.update(ok=all(r["ok"] for r in recs), problems=list(dict.fromkeys(p for r in recs for p in r["problems"])),
               rounds=len(recs), **{key + "_rounds": [r.get(key) for r in recs]
                                    for key in ("p50_ms", "packets_per_request", "req_s", "max_ms")})
    for key in ("p50_ms", "p99_ms", "req_s", "packets_per_request", "first_ms", "max_ms", "syn_data", "conns"):
        value = median(recs, key)
        if value is not None:
            out[key] = value
    return out


def judge(cell, base):
    """Ratios to the baseline (its twins, round by round) and the marks: BREAKS, or WORSE with its
    reasons."""
    cell["marks"] = []
    if not cell["ok"]:
        cell["marks"].append("BREAKS")
    if cell["column"] == "none" or "p50_ms" not in cell or "p50_ms" not in base:
        return cell
    cell["p50_ratio"] = round(cell["p50_ms"] / base["p50_ms"], 3)
    cell["packets_ratio"] = round(cell["packets_per_request"] / base["packets_per_request"], 3)
    cell["base_req_s_rounds"] = base["req_s_rounds"]
    pairs = [c / b for c, b in zip(cell["req_s_rounds"], base["req_s_rounds"]) if c and b]
    cell["req_s_ratio"] = round(statistics.median(pairs), 3)
    why = []
    if cell["p50_ms"] > WORSE_P50[0] * base["p50_ms"] + WORSE_P50[1]:
        why.append("p50")
    if cell["packets_per_request"] > WORSE_PACKETS * base["packets_per_request"]:
        why.append("packets")
    if cell["req_s_ratio"] < WORSE_REQ_S:
        why.append("req/s")
    if why:
        cell["marks"].append("WORSE (%s)" % ", ".join(why))
    return cell


def run_matrix(lib, works, logs, programs, columns, rounds, confirm):
    runs = {(p, c): [] for p in programs for c in columns if c != "none"}
    twins = {key: [] for key in runs}

    def measure(keys, rounds, what):
        total, done = len(keys) * rounds, 0
        for r in range(1, rounds + 1):
            for program, column in keys:
                rec, twin = run_pair(lib, works, logs, program, column)
                runs[(program, column)].append(rec)
                twins[(program, column)].append(twin)
                done += 1
                progress("[%d/%d] %s %d · %s · %s: %s%s (%.1f s)" % (
                    done, total, what, r, program, column, "ok" if rec["ok"] and twin["ok"] else "BREAKS",
                    "".join(" %s p50 %.3f ms, %.2f packets/request, %.0f req/s;" % (
                        x["column"], x["p50_ms"], x["packets_per_request"], x["req_s"]) for x in (twin, rec)
                        if "p50_ms" in x), max(rec["seconds"], twin["seconds"])))
                for p in rec["problems"] + twin["problems"]:
                    progress("    " + p)
        return [judge(combine(runs[key]), combine(twins[key])) for key in keys]

    cells = measure(list(runs), rounds, "round")
    doubtful = [(c["program"], c["column"]) for c in cells if c["marks"] and "BREAKS" not in c["marks"]]
    if doubtful and confirm:
        again = dict(zip(doubtful, measure(doubtful, confirm, "confirming, round")))
        cells = [again.get((c["program"], c["column"]), c) for c in cells]
    def plain_twins(program):  # the none cell is plain loopback's, unless only steered columns ran
        mine = [(c, ts) for (p, c), ts in twins.items() if p == program]
        plain = [t for c, ts in mine if c not in STEERED for t in ts]
        return plain or [t for _, ts in mine for t in ts]

    nones = [judge(combine(plain_twins(program)), None) for program in programs]
    return sorted(nones + cells, key=lambda c: (programs.index(c["program"]), columns.index(c["column"])))


def worst(cells, columns):
    """Per behaviour: the highest p50 and packet ratios, the lowest req/s ratio, and where."""
    out = {}
    for column in columns[1:]:
        mine = [c for c in cells if c["column"] == column and "p50_ratio" in c]
        if not mine:
            continue
        pick = lambda key, f: f(mine, key=lambda c: c[key])
        out[column] = {
            "p50_ratio": [pick("p50_ratio", max)["p50_ratio"], pick("p50_ratio", max)["program"]],
            "packets_ratio": [pick("packets_ratio", max)["packets_ratio"], pick("packets_ratio", max)["program"]],
            "req_s_ratio": [pick("req_s_ratio", min)["req_s_ratio"], pick("req_s_ratio", min)["program"]],
            "worse": sum(1 for c in cells if c["column"] == column and any(m.startswith("WORSE") for m in c["marks"])),
            "breaks": sum(1 for c in cells if c["column"] == column and "BREAKS" in c["marks"]),
        }
    return out


def cell_text(c, rounds):
    if c is None:
        return ""
    marks = " ".join("**%s**" % m for m in c["marks"])
    if "p50_ms" not in c:
        return marks
    if c["column"] == "none":
        return "%.3g ms · %.2f pk · %.0f/s" % (c["p50_ms"], c["packets_per_request"], c["req_s"])
    if "p50_ratio" not in c:
        return "%.3g ms · %.2f pk %s" % (c["p50_ms"], c["packets_per_request"], marks)
    confirmed = " (%d rounds)" % c["rounds"] if c["rounds"] > rounds else ""
    return ("×%s · %.2f pk · ×%s/s%s %s" % (fmt_ratio(c["p50_ratio"]), c["packets_per_request"],
                                            fmt_ratio(c["req_s_ratio"]), confirmed, marks)).strip()


def fmt_ratio(x):
    return "%.2f" % x if 0.1 <= x < 100 else "%.2g" % x


def markdown(results):
    cells = {(c["program"], c["column"]): c for c in results["cells"]}
    columns, programs = results["columns"], results["programs"]
    lines = ["# socktune compatibility matrix", "",
             "%s, %s, %d s%s. Each program unmodified, on loopback in private namespaces (`tcp_fastopen=3`). "
             "Each cell runs side by side with a twin without the shim, in its own namespace, the two clients "
             "taking turns of 20 ms so that both meet the same host; each measures for %g s of its own turns (at most "
             "%d operations) after one warm-up, %d round(s) interleaved, medians shown%s. `none` shows p50 · "
             "packets per request · requests/s of every twin; `loaded` is the library loaded with nothing set; every "
             "other column shows p50 over its twins' · packets per request · the median of each round's requests/s "
             "over its twin's. The %s columns' pairs, both twins, run with loopback steered by connection (RPS on lo), "
             "which keeps a Fast Open reply behind its SYN-ACK; `none` is plain loopback's. **WORSE**: p50 above %g × + %g ms, packets above "
             "%g ×, or requests/s below %g × of the twins'. **BREAKS**: a hang, an error, a wrong byte or an error "
             "in the server's log, in any round." % (
                 results["date"], results["machine"], results["seconds"], " (smoke run)" if results["smoke"] else "",
                 SECONDS, results["operations"], results["rounds"],
                 "; a cell marked WORSE after them is measured in %d more rounds and judged on all of them (their "
                 "count is shown)" % results["confirm_rounds"] if results["confirm_rounds"] else "",
                 " and ".join("`%s`" % c for c in STEERED), WORSE_P50[0], WORSE_P50[1], WORSE_PACKETS, WORSE_REQ_S),
             "", "| program | first | " + " | ".join(columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for p in programs:
        lines.append("| %s | %s | %s |" % (p, PROGRAMS[p][2], " | ".join(cell_text(cells.get((p, c)), results["rounds"])
                                                                      for c in columns)))
    lines += ["", "## Worst ratio per behaviour", "",
              "| behaviour | highest p50 ratio | highest packets ratio | lowest req/s ratio | worse cells | "
              "breaks cells |", "|---|---|---|---|---|---|"]
    for column, w in results["worst"].items():
        lines.append("| %s | ×%.2f (%s) | ×%.2f (%s) | ×%.2f (%s) | %d | %d |" % (
            column, w["p50_ratio"][0], w["p50_ratio"][1], w["packets_ratio"][0], w["packets_ratio"][1],
            w["req_s_ratio"][0], w["req_s_ratio"][1], w["worse"], w["breaks"]))
    lines += ["", "## Server-speaks-first programs: the warm-up operations, connects included (vsftpd: two)", "",
              "| program | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for p in programs:
        if PROGRAMS[p][2] == "server":
            lines.append("| %s | %s |" % (p, " | ".join(
                "%.0f ms" % cells[(p, c)]["first_ms"] if "first_ms" in cells.get((p, c), {}) else ""
                for c in columns)))
    bad = [c for c in results["cells"] if c["marks"]]
    lines += ["", "## Marked cells: each round's figures", ""] + (
        ["| program | column | marks | p50 ms | packets per request | req/s | its twins' req/s | problems |",
         "|---|---|---|---|---|---|---|---|"] if bad else ["None."])
    rounds = lambda c, key: ", ".join("%s" % v for v in c[key + "_rounds"]) if c else ""
    for c in bad:
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c["program"], c["column"], " ".join(c["marks"]), rounds(c, "p50_ms"), rounds(c, "packets_per_request"),
            rounds(c, "req_s"), ", ".join("%s" % v for v in c.get("base_req_s_rounds", [])),
            "; ".join(c["problems"]).replace("|", "/")[:400]))
    return "\n".join(lines) + "\n"


def missing(programs):
    return [p for p in programs if p in NEEDS and not (os.path.exists(NEEDS[p]) if NEEDS[p].startswith("/")
                                                       else shutil.which(NEEDS[p], path=os.path.dirname(
                                                           sys.executable) + os.pathsep + os.environ["PATH"]))]


def main():
    exit_on_sigterm()
    p = argparse.ArgumentParser()
    p.add_argument("--lib", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true", help="a few programs and columns, one round")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3, smoke 1); medians are kept")
    p.add_argument("--only", action="append", metavar="TEXT", help="only the programs whose name contains TEXT")
    p.add_argument("--columns", help="comma-separated columns to run (none is always run)")
    args = p.parse_args()
    lib = os.path.abspath(args.lib)
    rounds = args.rounds or (1 if args.smoke else 3)
    confirm = 0 if args.smoke else CONFIRM_ROUNDS  # the smoke run is judged on its one round
    programs = [q for q in (SMOKE_PROGRAMS if args.smoke else PROGRAMS)
                if not args.only or any(o.lower() in q.lower() for o in args.only)]
    columns = SMOKE_COLUMNS if args.smoke else list(COLUMNS)
    if args.columns:
        columns = ["none"] + [c for c in args.columns.split(",") if c in COLUMNS and c != "none"]
    lacking = missing(programs)
    if lacking:
        sys.exit("matrix: %s not installed; run: bash scripts/setup.sh --matrix" % ", ".join(lacking))
    logs = os.path.join(args.out, "logs")  # server and harness logs of the cells that broke
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="socktune-matrix-") as none, \
            tempfile.TemporaryDirectory(prefix="socktune-matrix-") as shim:
        for work in (none, shim):  # twins run at once: each has its own files, pid files and databases
            prepare(work, programs)
        cells = run_matrix(lib, (none, shim), logs, programs, columns, rounds, confirm)
    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": "%s %s, %d cores" % (platform.system(), platform.release(), os.cpu_count()),
        "smoke": args.smoke, "rounds": rounds, "confirm_rounds": confirm, "operations": N, "columns": columns, "programs": programs,
        "settings": {c: {"server": COLUMNS[c][0], "client": COLUMNS[c][1]} for c in columns},
        "cells": cells, "worst": worst(cells, columns), "seconds": round(time.monotonic() - started),
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown(results))
    broken = [c for c in cells if "BREAKS" in c["marks"]]
    worse = [c for c in cells if any(m.startswith("WORSE") for m in c["marks"])]
    progress("matrix: %d s; %d cells, %d BREAKS, %d WORSE; wrote results.md and results.json in %s"
             % (results["seconds"], len(cells), len(broken), len(worse), args.out))
    # The smoke run is CI's: a broken cell fails it (timings are too noisy there to fail on WORSE).
    sys.exit(1 if broken and args.smoke else 0)


if __name__ == "__main__":
    main()
