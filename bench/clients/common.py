"""Helpers shared by the bench clients."""
import atexit
import os
import signal
import time

# A turn ends after its first operation that ends past this much measuring; the host's speed
# drifts by up to x2 over a second, and twins that hand over this often see the same host.
TURN_SECONDS = 0.02
TWIN_WAIT = 60  # seconds without a turn back: the twin is gone


def tcpext(name):
    """A TcpExt counter of the calling process's network namespace (/proc/net/netstat), e.g.
    TCPFastOpenActive: connections whose SYN carried data that the server acknowledged."""
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    return int(rows[1][rows[0].index(name)])


def summary(lat_ms, seconds, **fields):
    """The result line: fields, then p50/p99/max of lat_ms and the request rate over `seconds`."""
    s = sorted(lat_ms)
    fields.update(p50_ms="%.3f" % s[len(s) // 2], p99_ms="%.3f" % s[min(len(s) - 1, int(len(s) * 0.99))],
                  max_ms="%.3f" % s[-1], req_s="%.1f" % (len(s) / seconds))
    print(" ".join("%s=%s" % kv for kv in fields.items()), flush=True)


class Turns:
    """Measuring in turns with a twin client in another namespace, so that both see the same host.

    BENCH_TURNS="MINE THEIRS FIRST" names two FIFOs (this client's and the twin's) and whether
    this client starts. Each holds the turn for TURN_SECONDS of operations, then hands it over by
    a byte in the twin's FIFO: "t" for a turn, "q" when it stops. Only the time spent in its own
    turns counts as measuring, so requests/s compare like for like. Blocking reads of a FIFO are
    all the waiting: around a pipe's read the shim does nothing. Without BENCH_TURNS each call
    is free and the measuring time is the time since start()."""

    def __init__(self):
        spec = os.environ.get("BENCH_TURNS", "").split()
        self.paired, self.told = bool(spec), False
        self.busy = 0.0
        if self.paired:
            mine, theirs, first = spec
            self.inbox = os.open(mine, os.O_RDWR)  # O_RDWR never blocks, so neither twin waits to open
            self.outbox = os.open(theirs, os.O_RDWR)
            self.holding = first == "1"
            atexit.register(self.stop)  # a client that fails still lets its twin go
            signal.signal(signal.SIGALRM, twin_gone)

    def start(self):
        self.started = self.turn_started = time.perf_counter()

    def go(self):
        """Before an operation: waits for the turn; False once the twin has stopped."""
        if not self.paired or self.holding:
            return True
        signal.alarm(TWIN_WAIT)
        try:
            got = os.read(self.inbox, 1)
        except TimeoutError:
            got = b""
        signal.alarm(0)
        if got != b"t":
            self.told = True  # the twin has stopped: nobody to tell
            return False
        self.holding, self.turn_started = True, time.perf_counter()
        return True

    def measured(self):
        """Seconds measured so far: this client's turns."""
        now = time.perf_counter()
        if not self.paired:
            return now - self.started
        return self.busy + (now - self.turn_started if self.holding else 0.0)

    def done_op(self):
        """After an operation: hands the turn over once it has lasted TURN_SECONDS."""
        now = time.perf_counter()
        if self.paired and now - self.turn_started >= TURN_SECONDS:
            self.busy += now - self.turn_started
            self.holding = False
            os.write(self.outbox, b"t")

    def stop(self):
        """After the last operation: the measuring time, and the twin told to stop too."""
        total = self.measured()
        if self.paired and not self.told:
            self.told = True
            os.write(self.outbox, b"q")
        return total


def twin_gone(*_):
    raise TimeoutError
