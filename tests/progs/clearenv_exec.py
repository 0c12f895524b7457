"""Drops its whole environment, as daemons do, then starts /usr/bin/env three ways and prints
what each child saw: os.execv (execv), subprocess with an explicit env (fork/vfork + execve) and
os.posix_spawn. Sets no socket option; it stands for a program that rewrites its environment.
With a second argument "as-nobody" it first changes its user and group to nobody (65534), as a
server that drops privileges before starting a user's session."""
import os
import subprocess
import sys

way = sys.argv[1]
if sys.argv[2:] == ["as-nobody"]:
    os.setgid(65534)
    os.setuid(65534)
os.environ.clear()
if way == "execv":
    os.execv("/usr/bin/env", ["env"])
elif way == "subprocess":
    sys.stdout.write(subprocess.run(["/usr/bin/env"], env={"A": "1"}, capture_output=True, text=True).stdout)
elif way == "posix_spawn":
    pid = os.posix_spawn("/usr/bin/env", ["env"], {"A": "1"})
    os.waitpid(pid, 0)
