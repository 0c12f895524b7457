"""What the load and memcheck harnesses share: checking for the tools they need before entering
their namespace, failing with a message that names what is missing (a missing tool never skips a
test; scripts/setup.sh installs them all, the harnesses install nothing), and the entry that
re-runs them inside it."""
import os
import shutil
import subprocess
import sys

import netns

PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"  # nginx, for one, lives in sbin


def which(cmd):
    return shutil.which(cmd, path=PATH)


def require(tools):
    """tools: (command, Debian package) pairs; exits with status 2, naming each missing command and
    its package, unless every command is there."""
    missing = ["%s (Debian package %s)" % (cmd, pkg) for cmd, pkg in tools if not which(cmd)]
    if missing:
        netns.die("missing %s; run: bash scripts/setup.sh" % ", ".join(missing))


def harness_main(script, args, run, tools):
    """Checks args.lib and `tools`, then re-executes `script` in a new network namespace,
    where `run(args)` returns the result fields, printed as one key=value line."""
    if not os.path.isfile(args.lib):
        netns.die("library not found: %r (build it with cargo build --release)" % args.lib)
    if args.inside:
        res = run(args)
        print(" ".join("%s=%s" % kv for kv in res.items()), flush=True)
        return
    require(list(tools) + [("unshare", "util-linux"), ("ip", "iproute2")])
    os.execvp("unshare", ["unshare", "-n", sys.executable, os.path.abspath(script), "--inside"] + sys.argv[1:])
