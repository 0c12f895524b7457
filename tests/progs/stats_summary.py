"""Summarise SOCKTUNE_STATS files: one line of key=value pairs per the README's record format.

usage: stats_summary.py FILE [PROM_FILE]
Checks every line is a JSON object whose keys come in the documented order, then reports, for
each group <role>_<arm> (arm A, B, or none): conns, responses, packets per response
((segs_in + segs_out) / responses), data_out (data segments sent), acked (bytes the peer acknowledged), the behaviours seen (joined with +, or "-"), and
syn_data and fastopen_child as 0/1 flags in file order, fastopen_fail (the reasons joined with +,
"-" for none), and min_rtt, the number of records whose later TCP_INFO fields are all figures. Also: lines, processes (count of "process" lines), and
with PROM_FILE, prom_connections and prom_segments (sums over the textfile's samples).
"""
import json
import sys

CONN_KEYS = ["type", "v", "ts", "pid", "role", "local_port", "remote_port", "arm", "window",
             "behaviours", "responses", "segs_in", "segs_out", "data_segs_in", "data_segs_out",
             "bytes_acked", "bytes_received", "retrans", "rtt_us", "rttvar_us", "syn_data",
             "fastopen_child", "fastopen_fail", "min_rtt_us", "delivery_rate", "busy_us",
             "rwnd_limited_us", "sndbuf_limited_us", "reordering", "end"]
LATER = ["min_rtt_us", "delivery_rate", "busy_us", "rwnd_limited_us", "sndbuf_limited_us",
         "reordering"]

groups, out = {}, {"lines": 0, "processes": 0}
with open(sys.argv[1]) as f:
    for line in f:
        out["lines"] += 1
        rec = json.loads(line)
        if rec["type"] == "process":
            out["processes"] += 1
            continue
        assert list(rec) == CONN_KEYS, "keys out of order: %s" % list(rec)
        g = groups.setdefault("%s_%s" % (rec["role"], rec["arm"] or "none"),
                              {"conns": 0, "responses": 0, "segs": 0, "data_out": 0, "behaviours": set(),
                               "acked": 0, "syn": "", "child": "", "fail": [], "later": 0})
        g["conns"] += 1
        g["responses"] += rec["responses"]
        g["segs"] += rec["segs_in"] + rec["segs_out"]
        g["data_out"] += rec["data_segs_out"]
        g["acked"] += rec["bytes_acked"]
        g["behaviours"].update(rec["behaviours"])
        g["syn"] += "1" if rec["syn_data"] else "0"
        g["child"] += "1" if rec["fastopen_child"] else "0"
        g["fail"] += [rec["fastopen_fail"]] if rec["fastopen_fail"] else []
        g["later"] += all(isinstance(rec[k], int) for k in LATER)
for name, g in sorted(groups.items()):
    out[name + "_conns"] = g["conns"]
    out[name + "_responses"] = g["responses"]
    out[name + "_ppr"] = "%.2f" % (g["segs"] / max(g["responses"], 1))
    out[name + "_data_out"] = g["data_out"]
    out[name + "_acked"] = g["acked"]
    out[name + "_behaviours"] = "+".join(sorted(g["behaviours"])) or "-"
    out[name + "_syn"] = g["syn"]
    out[name + "_child"] = g["child"]
    out[name + "_fail"] = "+".join(g["fail"]) or "-"
    out[name + "_min_rtt"] = g["later"]
if len(sys.argv) > 2:
    conns = segs = 0
    for line in open(sys.argv[2]):
        if line.startswith("socktune_connections_total"):
            conns += int(line.split()[-1])
        elif line.startswith("socktune_segments_total"):
            segs += int(line.split()[-1])
    out["prom_connections"], out["prom_segments"] = conns, segs
    out["jsonl_segments"] = sum(g["segs"] for g in groups.values())
print(" ".join("%s=%s" % kv for kv in out.items()))
