"""Drops its whole environment, as daemons do, then starts /usr/bin/env three ways and prints
what each child saw: os.execv (execv), subprocess with an explicit env (fork/vfork + execve) and
os.posix_spawn. Sets no socket option; it stands for a program that rewrites its environment."""
import os
import subprocess
import sys

way = sys.argv[1]
os.environ.clear()
if way == "execv":
    os.execv("/usr/bin/env", ["env"])
elif way == "subprocess":
    sys.stdout.write(subprocess.run(["/usr/bin/env"], env={"A": "1"}, capture_output=True, text=True).stdout)
elif way == "posix_spawn":
    pid = os.posix_spawn("/usr/bin/env", ["env"], {"A": "1"})
    os.waitpid(pid, 0)
