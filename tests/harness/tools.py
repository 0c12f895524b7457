"""What the load and memcheck harnesses share: installing the Debian packages they need before
entering their namespace (which has no network), failing with a clear message when that cannot
be done (a missing tool never skips a test), and the entry that re-runs them inside it."""
import os
import shutil
import subprocess
import sys

import netns

PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"  # nginx, for one, lives in sbin


def which(cmd):
    return shutil.which(cmd, path=PATH)


def install_missing(tools):
    """tools: (command, Debian package) pairs; installs each package whose command is missing."""
    missing = [pkg for cmd, pkg in tools if not which(cmd)]
    if not missing:
        return
    if not shutil.which("apt-get"):
        netns.die("missing %s and no apt-get to install them" % " ".join(missing))
    print("installing %s with apt-get" % " ".join(missing), file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq"] + missing):
        r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600)
        if r.returncode:
            netns.die("%s failed:\n%s" % (" ".join(cmd), r.stderr))
    still = [cmd for cmd, _ in tools if not which(cmd)]
    if still:
        netns.die("apt-get installed %s but %s is still missing" % (" ".join(missing), " ".join(still)))


def harness_main(script, args, run, tools):
    """Checks args.lib, installs `tools`, then re-executes `script` in a new network namespace,
    where `run(args)` returns the result fields, printed as one key=value line."""
    if not os.path.isfile(args.lib):
        netns.die("library not found: %r (build it with cargo build --release)" % args.lib)
    if args.inside:
        res = run(args)
        print(" ".join("%s=%s" % kv for kv in res.items()), flush=True)
        return
    install_missing(tools)
    os.execvp("unshare", ["unshare", "-n", sys.executable, os.path.abspath(script), "--inside"] + sys.argv[1:])
