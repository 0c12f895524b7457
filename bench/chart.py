"""The benchmark's markdown tables and SVG chart, from the results that run.py collects."""
import math
from xml.sax.saxutils import escape

COLOURS = ["#555555", "#8c564b", "#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#2ca02c"]


def python_cells(results):
    return {(r["server"], r["config"]): r for r in results["matrix"] if r["client"] == "python"}


def servers(results):
    return list(dict.fromkeys(r["server"] for r in results["matrix"]))


def cell_text(r):
    if r is None:
        return ""
    if "p50_ms" not in r:
        return "**breaks**"
    text = "%s ms · %.2f" % (fmt_ms(r["p50_ms"]), r["packets_per_request"])
    verdict = r.get("verdict")
    if verdict == "helped":
        return "**%s**" % text
    return "%s: %s" % (verdict, text) if verdict in ("breaks", "worse") else text


def fmt_ms(ms):
    return "%.3g" % ms if ms < 100 else "%.0f" % ms


def ratio(a, b):
    return "×%.2g" % (b / a) if a else "-"


def within(check):
    """A link check's verdict: met, missed, or missed while the host took the CPU."""
    if check["ok"]:
        return "yes"
    if check.get("host_bound"):
        return "no: the host took %.0f %% of the CPU" % (100 * check["host_share"])
    return "**no**"


def link_markdown(link):
    rtt = link["rtt_ms"]
    lines = ["", "## Emulated link: measured RTT", "",
             "A miss is measured again, three times in all; the host's steal is the CPU time the hypervisor "
             "took from this machine meanwhile. A miss while it took 5 % or more of the CPU is the host's: "
             "the RTT could not be checked, and the figures below run high.", "",
             "| configured RTT | TCP connect p50 | 1-byte echo p50 | kernel tcpi_rtt | host's steal | within 1 ms |",
             "|---|---|---|---|---|---|"]
    for c in link["link_check"]:
        lines.append("| %.1f ms | %.3f ms | %.3f ms | %.3f ms | %s ms | %s |" % (c["configured_rtt_ms"], c["connect_p50_ms"],
                     c["ping_p50_ms"], c["tcpi_rtt_ms"], c.get("stolen_ms", "-"), within(c)))
    lines += ["", "## Fast Open over a %g ms RTT link: connect plus response" % rtt, "",
              "`python3 -m http.server` (HTTP/1.0, one request per connection); server `SOCKTUNE_FASTOPEN=256`, "
              "client `SOCKTUNE_FASTOPEN_CONNECT=1`; the clients set no Fast Open option themselves.", "",
              "| client | Fast Open | p50 | in RTTs | requests in the SYN |", "|---|---|---|---|---|"]
    for r in link["fastopen"]:
        lines.append("| %s | %s | %.2f ms | **%.2f** | %d of %d |" % (r["client"], "on" if r["fastopen"] else "off",
                     r["p50_ms"], r["p50_rtt"], r["syn_data"], r["conns"]))
    d = link["defer"][0]
    lines += ["", "## Defer-accept over a %g ms RTT link: prefork server, clients that pause" % rtt, "",
              "gunicorn sync, %d workers. %d clients connect and pause %.1f s before sending; meanwhile %d "
              "clients connect and send at once." % (d["workers"], d["slow_clients"], d["pause_s"], d["fast_clients"]),
              "", "| defer-accept | fast clients' response p50 | max | p50 in RTTs | paused clients answered |",
              "|---|---|---|---|---|"]
    for d in link["defer"]:
        lines.append("| %s | %.1f ms | %.1f ms | **%.1f** | %d of %d |" % ("`SOCKTUNE_DEFER_ACCEPT=5`" if
                     d["defer_accept"] else "off", d["fast_p50_ms"], d["fast_max_ms"], d["fast_p50_rtt"],
                     d["slow_ok"], d["slow_clients"]))
    return lines


def clients_markdown(results):
    """curl and wrk without the shim and with every behaviour: p50 · packets per request."""
    cells = {(r["server"], r["client"], r["config"]): r for r in results["matrix"]}
    clients = [c for c in ("curl", "wrk") if any(k[1] == c for k in cells)]
    if not clients:
        return []
    head = ["curl none", "curl all", "curl all: in the SYN"] if "curl" in clients else []
    head += ["wrk none", "wrk all"] if "wrk" in clients else []
    lines = ["", "## curl and wrk: p50 latency · packets per request (· requests/s for wrk)", "",
             "curl runs once per request (a new process and connection each, no TFO flag); wrk keeps 2 "
             "connections busy for the run.", "", "| server | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for s in servers(results):
        row = []
        for client in clients:
            for config in ("none", "all"):
                r = cells.get((s, client, config))
                text = cell_text(r)
                if r and client == "wrk" and "req_s" in r:
                    text += " · {:,.0f}".format(r["req_s"])
                row.append(text)
                if client == "curl" and config == "all":
                    row.append("%d of %d" % (r["syn_data"], r["conns"]) if r and "syn_data" in r else "")
        lines.append("| %s | %s |" % (s, " | ".join(row)))
    return lines


def markdown(results, configs):
    cells = python_cells(results)
    lines = ["# socktune benchmark", "",
             "%s, %s, %d s%s. Loopback in a private network namespace (`tcp_fastopen=3`) unless said otherwise. "
             "Each matrix cell ran %d time(s), round after round; the round with the median p50 is shown."
             % (results["date"], results["machine"], results["seconds"], " (smoke run)" if results["smoke"] else "",
                results["rounds"])]
    if results["link"]["link_check"]:
        lines += link_markdown(results["link"])
    shown = [c for c in configs if any(k[1] == c for k in cells)]
    lines += ["", "## Matrix: plain Python client, p50 latency · packets per request", "",
              "Each server unmodified; each column one behaviour (server and client settings in run.py), "
              "`all` is every behaviour at once. **Bold**: helped (packets -10 % or p50 halved against `none`); "
              "`worse`: more packets, or p50 doubled and 1 ms slower. The last column is `all` over `none` "
              "(× < 1 is better).", "",
              "| server | " + " | ".join(shown) + " | all / none: p50, packets |",
              "|---" * (len(shown) + 2) + "|"]
    for s in servers(results):
        none, best = cells.get((s, "none")), cells.get((s, "all"))
        gain = ("%s, %s" % (ratio(none["p50_ms"], best["p50_ms"]), ratio(none["packets_per_request"],
                best["packets_per_request"])) if none and best and "p50_ms" in none and "p50_ms" in best else "-")
        lines.append("| %s | %s | %s |" % (s, " | ".join(cell_text(cells.get((s, c))) for c in shown), gain))
    lines += clients_markdown(results)
    lines += ["", "## All cells", "",
              "| server | client | behaviour | ok | packets/request | p50 ms | p99 ms | req/s | in SYN | vs none | "
              "problem or note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["matrix"]:
        m = ("%.2f | %s | %s | %.0f | %s" % (r["packets_per_request"], fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]),
             r["req_s"], "%d of %d" % (r["syn_data"], r["conns"]) if r["conns"] else "-")
             if "p50_ms" in r else " | | | | ")
        lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (r["server"], r["client"], r["config"],
                     "yes" if r["ok"] else "**no**", m, r.get("verdict", ""),
                     escape("; ".join(r["problems"]) or r["note"]).replace("|", "/")))
    return "\n".join(lines) + "\n"


def svg(results, configs):
    """Two panels, p50 latency (log scale) and packets per request: a row per server, a bar per
    behaviour, from the plain Python client's cells."""
    cells = python_cells(results)
    rows = servers(results)
    shown = [c for c in configs if any(k[1] == c for k in cells)]
    bar, gap, label_w, panel_w, top = 9, 14, 200, 330, 75
    row_h = bar * len(shown) + gap
    width, height = label_w + 2 * panel_w + 60, top + row_h * len(rows) + 40
    lat = [r["p50_ms"] for r in cells.values() if "p50_ms" in r]
    pkts = [r["packets_per_request"] for r in cells.values() if "p50_ms" in r]
    lo, hi = math.floor(math.log10(min(lat or [0.01]))), math.ceil(math.log10(max(lat or [100])))
    hi = max(hi, lo + 1)
    pmax = math.ceil(max(pkts or [1]))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
           'font-size="11">' % (width, height), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="18" font-size="14" font-weight="bold">socktune: unmodified servers, plain Python '
           'client, loopback</text><text x="%d" y="18" text-anchor="end" fill="#666">%s, %s</text>'
           % (width - 10, escape(results["date"]), escape(results["machine"]))]
    for i, c in enumerate(shown):
        x = 10 + i * 95
        out.append('<rect x="%d" y="32" width="10" height="10" fill="%s"/><text x="%d" y="41">%s</text>'
                   % (x, COLOURS[i % len(COLOURS)], x + 14, escape(c)))
    panels = [("p50 latency, ms (log scale)", lambda v: (math.log10(v) - lo) / (hi - lo), "p50_ms",
               [(10 ** e, "%g" % 10 ** e) for e in range(lo, hi + 1)]),
              ("packets per request", lambda v: v / pmax, "packets_per_request",
               [(v, str(v)) for v in range(0, pmax + 1)])]
    for p, (title, scale, key, ticks) in enumerate(panels):
        x0 = label_w + p * (panel_w + 30)
        out.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (x0, top - 8, escape(title)))
        for v, text in ticks:
            x = x0 + scale(v) * panel_w
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" '
                       'text-anchor="middle" fill="#666">%s</text>' % (x, top, x, height - 30, x, height - 16, text))
        for r, server in enumerate(rows):
            for i, c in enumerate(shown):
                cell = cells.get((server, c))
                if not cell or "p50_ms" not in cell:
                    continue
                y = top + r * row_h + i * bar
                w = max(1.0, scale(max(cell[key], 10 ** lo)) * panel_w)
                out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s, %s: %s</title></rect>'
                           % (x0, y, w, bar - 1, COLOURS[i % len(COLOURS)], escape(server), escape(c), cell[key]))
                if not cell["ok"]:
                    out.append('<text x="%.1f" y="%d" fill="red">breaks</text>' % (x0 + w + 3, y + bar - 1))
    for r, server in enumerate(rows):
        y = top + r * row_h + (row_h - gap) / 2 + 4
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>' % (label_w - 8, y, escape(server)))
    out.append("</svg>")
    return "\n".join(out) + "\n"
