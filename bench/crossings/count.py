"""gdb script: counts the calls between modules of the socktune crates while one_connection.c
serves its one connection (between its two dup() markers), on the program's main thread.

Run by bench/crossings/run.sh. A call counts when caller and callee sit in different modules
(socktune::cork -> socktune::fdtable); hooks/ counts as one module. Calls to the methods of the
fd state word (FdState, and before it Meta, Tally, Kind) are counted apart: they are accessors of
one value, inlined in a release build.
"""
import collections
import re

import gdb

VALUE_METHODS = re.compile(r"::(FdState|Meta|Tally|Kind)::")
recording = [False]
crossings = []


def module(name):
    m = re.match(r"(socktune(?:_core)?)::([a-z_]+)", name or "")
    return "%s::%s" % m.groups() if m else None


class Call(gdb.Breakpoint):
    def stop(self):
        frame = gdb.newest_frame()
        callee = frame.name() or ""
        caller = frame.older().name() if frame.older() else ""
        if caller == "main" and "dup" in callee:
            fd = int(gdb.parse_and_eval("fd"))
            recording[0] = {998: True, 999: False}.get(fd, recording[0])
            return False
        if not recording[0] or gdb.selected_thread().ptid[1] != gdb.selected_inferior().pid:
            return False
        if module(callee) and module(caller) != module(callee):
            crossings.append((module(caller), module(callee), callee))
        return False


gdb.execute("set pagination off")
gdb.execute("break main")
gdb.execute("run")
names = set()
for line in gdb.execute("info functions ^socktune", to_string=True).splitlines():
    m = re.search(r"\b(socktune(?:_core)?::[A-Za-z0-9_:<>]+?)\(", line)
    if m:
        names.add(m.group(1))
for name in sorted(names):
    try:
        Call(name, internal=True)
    except gdb.error:
        pass  # a generic instance gdb cannot place
for _ in range(50):  # gdb may lose the thread when the flusher starts: continue again
    try:
        gdb.execute("continue")
    except gdb.error:
        pass
    if not gdb.selected_inferior().pid:
        break
inside = [c for c in crossings if c[0]]
print("crossings=%d without_state_methods=%d" % (
    len(inside), sum(1 for c in inside if not VALUE_METHODS.search(c[2]))))
for (a, b), n in sorted(collections.Counter((a, b) for a, b, _ in inside).items(), key=lambda x: -x[1]):
    print("  %3d %s -> %s" % (n, a, b))
