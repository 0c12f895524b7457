"""Installs the Debian packages a harness needs, before it enters its namespace (which has no
network), and fails with a clear message when it cannot: a missing tool never skips a test."""
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
