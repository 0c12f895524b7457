"""Helpers shared by the bench clients."""


def tcpext(name):
    """A TcpExt counter of the calling process's network namespace (/proc/net/netstat), e.g.
    TCPFastOpenActive: connections whose SYN carried data that the server acknowledged."""
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    return int(rows[1][rows[0].index(name)])


def summary(lat_ms, seconds, **fields):
    """The result line: fields, then p50/p99 of lat_ms and the request rate over `seconds`."""
    s = sorted(lat_ms)
    fields.update(p50_ms="%.3f" % s[len(s) // 2], p99_ms="%.3f" % s[min(len(s) - 1, int(len(s) * 0.99))],
                  req_s="%.1f" % (len(s) / seconds))
    print(" ".join("%s=%s" % kv for kv in fields.items()), flush=True)
