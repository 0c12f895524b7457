//! `socktune report`: reads `--stats` files and compares the arms of an A/B run.

use crate::stats::{self, Data, Group, Summary};
use crate::{flags, svg, Fail};
use socktune_core::record::{Arm, Behaviour, Named, Side};
use std::collections::VecDeque;
use std::io::BufRead;
use std::path::PathBuf;

pub const HELP: &str = "\
usage: socktune report [--svg PATH] STATS...

Reads the JSON lines the library wrote with --stats (SOCKTUNE_STATS), from one or more files
(prefork children and several runs may share a file), and prints one row per role (server:
accepted connections, client: connected ones) and arm (A: behaviours off, B: on; `-` when the
run had no --ab split):
  conns          connections recorded
  pkts/conn      segments in + out per connection, from TCP_INFO at close
  pkts/resp      the same per response (server) or request (client): all segments over all
                 responses, where a response is what the program writes between two reads
  data/resp      data segments sent per response (1.00: each response left as one segment)
  rtt p50, p99   the kernel's smoothed RTT of the connections, in microseconds
  retrans        retransmitted segments
  fast open      connections whose data rode in the SYN, of those where Fast Open applied

Where the kernel's TCP_INFO has them, a second table tells why:
  min rtt p50    the median of the connections' lowest RTT seen (the path, without queueing)
  rate p50       the median of their last delivery rate estimates
  busy           time the connections had data to send, in total
  rwnd-limited   the share of it limited by the peer's receive window
  sndbuf-limited the share limited by the send buffer
  reordering     the highest reordering degree the kernel saw

Then, per row where Fast Open applied, its success rate and the kernel's reasons for the
failures (cookie-unavailable: no cookie cached yet, or the server gives none; data-not-acked:
the server took the SYN without its data; syn-retransmitted: the SYN was resent without it).

With both arms, it then says whether B differs from A by more than the noise: the difference
in packets per response with a 95% bootstrap interval (2000 resamples of the connections, fixed
seed, so the same data always gives the same answer). `significant` means the interval leaves
out zero. That compares per-connection arms (--ab). Data from switchback windows (--ab-mode
switchback:SECS) is compared by the mean of each window's packets per response, with the
interval from resampling the windows, not the connections; its line says `switchback`.

  --svg PATH   also draw the packets per response and the p50 RTT of each row as an SVG chart
  -h, --help

exit status: 0; 1 if a file cannot be read or none holds a connection record (a file
without any is named); 2 for a usage error.
";

pub fn report(args: Vec<String>) -> Result<(), Fail> {
    let mut files = Vec::new();
    let mut svg_path = None;
    let mut args = VecDeque::from(args);
    while let Some(a) = args.pop_front() {
        let (flag, inline) = flags::split_inline(&a);
        match a.as_str() {
            "-h" | "--help" => return Err(Fail::Help),
            _ if flag == "--svg" => {
                svg_path = Some(PathBuf::from(flags::value(
                    &mut args, flag, inline, "PATH",
                )?));
            }
            _ if a.starts_with('-') && a.len() > 1 => {
                return Err(Fail::Usage(format!("unknown flag {a}")))
            }
            _ => files.push(PathBuf::from(a)),
        }
    }
    if files.is_empty() {
        return Err(Fail::Usage("no STATS file given".into()));
    }
    let mut data = Data::default();
    let mut empty = Vec::new();
    for path in &files {
        let before = data.conns.len();
        let file = std::fs::File::open(path).map_err(|e| io_fail(path, &e))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| io_fail(path, &e))?;
            data.add_line(&line);
        }
        if data.conns.len() == before {
            empty.push(path.display().to_string());
        }
    }
    let no_records =
        |path: &String| format!("{path} holds no connection records (is it a file --stats wrote?)");
    if data.conns.is_empty() {
        let lines: Vec<String> = empty
            .iter()
            .map(|p| format!("socktune report: {}", no_records(p)))
            .collect();
        return Err(Fail::Exit(1, lines.join("\n")));
    }
    let groups = stats::groups(&data.conns);
    let rows: Vec<(String, Summary)> = groups
        .iter()
        .map(|g| (label(g), stats::summarize(&g.conns)))
        .collect();
    print!("{}", table(&rows));
    for line in fastopen_lines(&rows)
        .into_iter()
        .chain(comparisons(&groups))
    {
        println!("{line}");
    }
    for line in notes(&data, &groups)
        .into_iter()
        .chain(empty.iter().map(no_records))
    {
        println!("note: {line}");
    }
    if let Some(path) = svg_path {
        std::fs::write(&path, svg::chart(&rows)).map_err(|e| io_fail(&path, &e))?;
        println!("chart: {}", path.display());
    }
    Ok(())
}

fn io_fail(path: &std::path::Path, e: &std::io::Error) -> Fail {
    Fail::Exit(
        1,
        format!(
            "socktune report: {}: {}",
            path.display(),
            crate::describe(e)
        ),
    )
}

fn label(g: &Group) -> String {
    format!("{} {}", g.role.name(), g.arm.map_or("-", Named::name))
}

const HEADERS: [&str; 9] = [
    "role arm",
    "conns",
    "pkts/conn",
    "pkts/resp",
    "data/resp",
    "rtt p50",
    "rtt p99",
    "retrans",
    "fast open",
];

/// The second table: the TCP_INFO figures that tell why.
const WHY_HEADERS: [&str; 7] = [
    "role arm",
    "min rtt p50",
    "rate p50",
    "busy",
    "rwnd-limited",
    "sndbuf-limited",
    "reordering",
];

fn table(rows: &[(String, Summary)]) -> String {
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|(label, s)| {
            let (syn, tried) = s.fastopen;
            vec![
                label.clone(),
                s.conns.to_string(),
                format!("{:.2}", s.packets_per_conn),
                opt(s.packets_per_response),
                opt(s.data_segs_per_response),
                format!("{} us", s.rtt_p50_us),
                format!("{} us", s.rtt_p99_us),
                s.retrans.to_string(),
                if tried == 0 {
                    "-".into()
                } else {
                    format!("{syn}/{tried}")
                },
            ]
        })
        .collect();
    let mut out = aligned(&HEADERS, &cells);
    let why: Vec<Vec<String>> = rows
        .iter()
        .filter(|(_, s)| s.min_rtt_p50_us.is_some())
        .map(|(label, s)| why_row(label, s))
        .collect();
    if !why.is_empty() {
        out += "\n";
        out += &aligned(&WHY_HEADERS, &why);
    }
    out
}

fn why_row(label: &str, s: &Summary) -> Vec<String> {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    // Limited times as a share of the time the connections had data to send.
    let share = |us: Option<u64>| {
        or_dash(
            us.zip(s.busy_us)
                .map(|(us, busy)| format!("{:.1}%", 100.0 * us as f64 / busy.max(1) as f64)),
        )
    };
    vec![
        label.to_string(),
        or_dash(s.min_rtt_p50_us.map(|us| format!("{us} us"))),
        or_dash(s.delivery_rate_p50.map(rate)),
        or_dash(s.busy_us.map(|us| format!("{:.1} ms", us as f64 / 1000.0))),
        share(s.rwnd_limited_us),
        share(s.sndbuf_limited_us),
        or_dash(s.reordering_max.map(|r| r.to_string())),
    ]
}

/// Bytes per second, as bits per second with a unit.
fn rate(bytes_per_s: u64) -> String {
    let bits = bytes_per_s as f64 * 8.0;
    match bits {
        b if b >= 1e9 => format!("{:.1} Gbit/s", b / 1e9),
        b if b >= 1e6 => format!("{:.1} Mbit/s", b / 1e6),
        b => format!("{:.0} kbit/s", b / 1e3),
    }
}

/// Columns right-aligned under their headers, the first left-aligned.
fn aligned(headers: &[&str], cells: &[Vec<String>]) -> String {
    let width = |i: usize| {
        cells
            .iter()
            .map(|r| r[i].len())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let line = |cols: Vec<&str>| {
        let mut out = format!("{:<w$}", cols[0], w = widths[0]);
        for (c, w) in cols[1..].iter().zip(&widths[1..]) {
            out += &format!("  {c:>w$}");
        }
        out + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in cells {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

/// Per group where Fast Open applied: how often the data rode in the SYN, and why not.
fn fastopen_lines(rows: &[(String, Summary)]) -> Vec<String> {
    let mut out = Vec::new();
    for (label, s) in rows {
        let (syn, tried) = s.fastopen;
        if tried == 0 {
            continue;
        }
        let mut line = format!(
            "{label}: fast open {syn}/{tried} in the SYN ({:.0}%)",
            100.0 * syn as f64 / tried as f64
        );
        if !s.fastopen_fails.is_empty() {
            let why: Vec<String> = s
                .fastopen_fails
                .iter()
                .map(|(reason, n)| format!("{} {n}", reason.name()))
                .collect();
            line += &format!("; not: {}", why.join(", "));
        }
        if s.fastopen_children > 0 {
            line += &format!("; {} made by a Fast Open SYN", s.fastopen_children);
        }
        out.push(line);
    }
    out
}

/// For each role with both arms: B − A in packets per response, and whether it beats the noise.
fn comparisons(groups: &[Group]) -> Vec<String> {
    let arm = |role: Side, arm: Arm| {
        groups
            .iter()
            .find(|g| g.role == role && g.arm == Some(arm))
            .map(|g| g.conns.as_slice())
    };
    let mut roles: Vec<Side> = groups.iter().map(|g| g.role).collect();
    roles.dedup();
    let mut out = Vec::new();
    for role in roles {
        let (Some(a), Some(b)) = (arm(role, Arm::A), arm(role, Arm::B)) else {
            continue;
        };
        let role = role.name();
        let windows = stats::windows(a.iter().chain(b).copied());
        if !windows.is_empty() {
            out.push(switchback_line(role, &windows));
            continue;
        }
        if a.len() < 2 || b.len() < 2 {
            out.push(format!(
                "{role}: too few connections in an arm to compare (A {}, B {})",
                a.len(),
                b.len()
            ));
            continue;
        }
        match stats::bootstrap(a, b) {
            Some(d) => out.push(format!(
                "{role}: B - A = {:+.2} packets per response, 95% bootstrap interval {:+.2} to {:+.2} \
                 ({} resamples): {}",
                d.estimate,
                d.low,
                d.high,
                stats::RESAMPLES,
                verdict(&d)
            )),
            None => out.push(format!("{role}: an arm has no responses; nothing to compare")),
        }
    }
    out
}

/// A switchback run's comparison: by window means, the interval from the windows.
fn switchback_line(role: &str, windows: &[stats::Window]) -> String {
    let count = |arm| windows.iter().filter(|w| w.arm == arm).count();
    let (na, nb) = (count(Arm::A), count(Arm::B));
    let mode = format!("switchback, {} windows (A {na}, B {nb})", na + nb);
    if na < 2 || nb < 2 {
        return format!("{role}: {mode}: too few windows in an arm to compare");
    }
    match stats::switchback(windows) {
        Some(d) => format!(
            "{role}: {mode}: B - A = {:+.2} packets per response (mean of window means), 95% \
             bootstrap interval {:+.2} to {:+.2} ({} resamples of the windows): {}",
            d.estimate,
            d.low,
            d.high,
            stats::RESAMPLES,
            verdict(&d)
        ),
        None => format!("{role}: {mode}: an arm has no responses; nothing to compare"),
    }
}

fn verdict(d: &stats::Difference) -> &'static str {
    if d.significant() {
        "significant"
    } else {
        "not significant (the interval includes 0)"
    }
}

fn notes(data: &Data, groups: &[Group]) -> Vec<String> {
    let mut out = Vec::new();
    // Listener options are set before any connection exists, so the split cannot reach them.
    let in_arm_a = |b: Behaviour| {
        groups
            .iter()
            .filter(|g| g.arm == Some(Arm::A))
            .any(|g| g.conns.iter().any(|c| c.has(b)))
    };
    let shared: Vec<&str> = [Behaviour::DeferAccept, Behaviour::Fastopen]
        .into_iter()
        .filter(|&b| in_arm_a(b))
        .map(Behaviour::name)
        .collect();
    if !shared.is_empty() {
        out.push(format!(
            "{} applied in both arms: listener options cannot be split per connection",
            shared.join(" and ")
        ));
    }
    let per_connection = groups
        .iter()
        .any(|g| g.arm.is_some() && g.conns.iter().any(|c| c.window.is_none()));
    if per_connection {
        out.push(
            "arms were drawn per connection (--ab): connections that share a bottleneck bias \
             each other; --ab-mode switchback:SECS compares whole windows instead"
                .into(),
        );
    }
    if data.dropped > 0 {
        out.push(format!(
            "the library dropped {} records (buffer full or file unwritable)",
            data.dropped
        ));
    }
    if data.bad_lines > 0 {
        out.push(format!(
            "{} lines were not valid records and were skipped",
            data.bad_lines
        ));
    }
    if data.newer > 0 {
        out.push(format!(
            "{} records are of a newer format than this socktune knows",
            data.newer
        ));
    }
    out
}
