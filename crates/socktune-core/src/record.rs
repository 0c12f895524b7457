//! Per-connection records for `SOCKTUNE_STATS` and the counters behind `SOCKTUNE_STATS_PROM`:
//! plain Rust, no FFI. The format is described in docs/stats-format.md.

use crate::config::Opt;
pub use crate::state::Arm;
use crate::state::FdState;
use std::borrow::Cow;
use std::fmt::{self, Write};

#[cfg(feature = "reader")]
mod read;
#[cfg(feature = "reader")]
pub use read::{read, Line, Read};

/// The version written as `"v"` in every line; a reader counts lines of a later one.
pub const VERSION: u64 = 1;

/// A value that records write as one of a few fixed names, so that the writer and the reader
/// share one spelling.
pub trait Named: Copy + 'static {
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    fn named(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }
}

/// Which end of the connection the program is (a record's `"role"`). Servers sort first: they
/// are the usual subject of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Server = 0,
    Client = 1,
}

impl Named for Side {
    const ALL: &'static [Side] = &[Side::Server, Side::Client];
    fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}

impl Named for Arm {
    const ALL: &'static [Arm] = &[Arm::A, Arm::B];
    fn name(self) -> &'static str {
        match self {
            Arm::A => "A",
            Arm::B => "B",
        }
    }
}

/// Picks the arm for a uniformly random `draw`: `pct` percent of draws land in B.
pub fn arm_for(draw: u64, pct: u8) -> Arm {
    if draw % 100 < u64::from(pct) {
        Arm::B
    } else {
        Arm::A
    }
}

/// The arm of a switchback window, the same in every process of the tree: at 50%, windows
/// alternate (odd ones in B); at other shares, each window is drawn with that share.
pub fn window_arm(window: u64, pct: u8) -> Arm {
    if pct == 50 {
        if window % 2 == 1 {
            Arm::B
        } else {
            Arm::A
        }
    } else {
        arm_for(mix(window), pct)
    }
}

/// The window a connection started in, from the low 8 bits its state kept and the window at
/// its end: the latest window with those low bits (a connection that lasts 256 windows or more
/// is put in a later one).
pub fn started_window(low: u8, now: u64) -> u64 {
    now - u64::from((now as u8).wrapping_sub(low)).min(now)
}

/// What splitmix64 adds to its state before each `mix`.
pub const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64: one step of a small, well-mixed generator (statistical quality, not secrecy).
pub fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether a recorded connection's close is the one to report. A socket shared with another fd
/// or process (fork-per-connection servers: the parent accepts and closes, the child serves)
/// is reported by the holder that wrote on it; a holder that never wrote stays silent.
pub fn reports_at_close(state: FdState, responses: u32) -> bool {
    state.has(FdState::RECORDED) && (!state.has(FdState::SHARED) || responses > 0)
}

/// The behaviours a plan applies, as records name them, in the order of [`Applied`]'s low
/// bits; the per-socket options follow them (see [`behaviour_name`]).
pub const PLANNED: &[&str] = &[
    "cork",
    "quickack-off",
    "nodelay",
    "fastopen-connect",
    "defer-accept",
    "fastopen",
    "defer-accept-off",
];

/// How many behaviours a record can name: the planned ones, then one per [`Opt`].
pub const BEHAVIOURS: usize = PLANNED.len() + Opt::ALL.len();

/// Behaviour `i`'s name in records (`i` < [`BEHAVIOURS`]): a planned one's, or an option's
/// key with `-` for `_`.
pub fn behaviour_name(i: usize) -> Cow<'static, str> {
    match PLANNED.get(i) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(Opt::ALL[i - PLANNED.len()].name().replace('_', "-")),
    }
}

/// Bit i set: behaviour `i` ([`behaviour_name`]) applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Applied(pub u32);

/// What socktune applied to a connection, from its state.
pub fn applied(state: FdState) -> Applied {
    let on = [
        state.corks(),
        state.reapplies_quickack(),
        state.has(FdState::NODELAY) && !state.has(FdState::APP_NAGLE),
        state.has(FdState::APPLIED_FASTOPEN_CONNECT),
        state.has(FdState::APPLIED_DEFER_ACCEPT),
        state.has(FdState::APPLIED_FASTOPEN),
        state.has(FdState::DEFER_HEALED),
    ];
    // Then the per-socket options, in the order of `config::Opt::ALL`.
    let opts = state.flags(FdState::OPTS) >> FdState::OPT_SHIFT;
    Applied(
        on.iter()
            .enumerate()
            .fold(0, |bits, (i, &b)| bits | (u32::from(b) << i))
            | (opts as u32) << on.len(),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Close,
    Shutdown,
    /// Still open when the process exited (exit or _exit).
    Exit,
    /// Still open when the process exec'd another program, which may use it on.
    Exec,
}

impl Named for End {
    const ALL: &'static [End] = &[End::Close, End::Shutdown, End::Exit, End::Exec];
    fn name(self) -> &'static str {
        match self {
            End::Close => "close",
            End::Shutdown => "shutdown",
            End::Exit => "exit",
            End::Exec => "exec",
        }
    }
}

/// Why a client's Fast Open data did not ride in the SYN: TCP_INFO's `tcpi_fastopen_client_fail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FastopenFail {
    /// The kernel gave no reason (its catch-all).
    Unspecified = 0,
    /// No cookie cached for the server: the SYN asked for one.
    CookieUnavailable = 1,
    /// The SYN-ACK did not acknowledge the data (the server took the SYN without it).
    DataNotAcked = 2,
    /// The SYN was retransmitted, and the retransmission went without data.
    SynRetransmitted = 3,
}

impl Named for FastopenFail {
    const ALL: &'static [FastopenFail] = &[
        FastopenFail::Unspecified,
        FastopenFail::CookieUnavailable,
        FastopenFail::DataNotAcked,
        FastopenFail::SynRetransmitted,
    ];
    fn name(self) -> &'static str {
        match self {
            FastopenFail::Unspecified => "unspecified",
            FastopenFail::CookieUnavailable => "cookie-unavailable",
            FastopenFail::DataNotAcked => "data-not-acked",
            FastopenFail::SynRetransmitted => "syn-retransmitted",
        }
    }
}

/// A client's Fast Open failure, if it tried and its data did not ride in the SYN; `code` is the
/// kernel's 2-bit reason.
pub fn fastopen_fail(
    side: Side,
    applied: Applied,
    syn_data: bool,
    code: u8,
) -> Option<FastopenFail> {
    let tried = applied.0 & (1 << Behaviour::FastopenConnect as u8) != 0;
    (side == Side::Client && tried && !syn_data).then(|| FastopenFail::ALL[usize::from(code & 3)])
}

/// A planned behaviour by its place in [`PLANNED`], which is also its bit in `Applied`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Cork,
    QuickackOff,
    Nodelay,
    FastopenConnect,
    DeferAccept,
    Fastopen,
    /// Not a plan but a correction: this connection, written before it was read, showed a server
    /// that speaks first, and turned defer-accept off on its listener.
    DeferAcceptOff,
}

impl Behaviour {
    pub fn name(self) -> &'static str {
        PLANNED[self as usize]
    }
}

/// One connection, as TCP_INFO and the shim saw it just before it was closed. The reader takes
/// the keys by these names, but for the ones renamed here.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "reader", derive(serde::Deserialize))]
pub struct Conn {
    #[cfg_attr(
        feature = "reader",
        serde(rename = "ts", deserialize_with = "read::micros")
    )]
    pub ts_us: u64,
    pub pid: u32,
    #[cfg_attr(
        feature = "reader",
        serde(rename = "role", deserialize_with = "read::name")
    )]
    pub side: Option<Side>,
    pub local_port: u16,
    pub remote_port: u16,
    #[cfg_attr(feature = "reader", serde(deserialize_with = "read::name_or_null"))]
    pub arm: Option<Arm>,
    /// The switchback window the connection started in (`SOCKTUNE_AB_MODE=switchback:SECS`).
    pub window: Option<u64>,
    #[cfg_attr(
        feature = "reader",
        serde(rename = "behaviours", deserialize_with = "read::behaviours")
    )]
    pub applied: Applied,
    pub responses: u32,
    pub segs_in: u32,
    pub segs_out: u32,
    pub data_segs_in: u32,
    pub data_segs_out: u32,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub retrans: u32,
    pub rtt_us: u32,
    pub rttvar_us: u32,
    pub syn_data: bool,
    /// A server connection that came from a Fast Open SYN (`TCPI_OPT_TFO_CHILD`).
    #[cfg_attr(feature = "reader", serde(default))]
    pub fastopen_child: bool,
    #[cfg_attr(
        feature = "reader",
        serde(default, deserialize_with = "read::name_or_null")
    )]
    pub fastopen_fail: Option<FastopenFail>,
    /// The TCP_INFO fields of later kernels: `None` where this kernel's TCP_INFO is too short.
    pub min_rtt_us: Option<u32>,
    /// Bytes per second, the kernel's latest delivery rate estimate.
    pub delivery_rate: Option<u64>,
    pub busy_us: Option<u64>,
    pub rwnd_limited_us: Option<u64>,
    pub sndbuf_limited_us: Option<u64>,
    pub reordering: Option<u32>,
    #[cfg_attr(feature = "reader", serde(deserialize_with = "read::name"))]
    pub end: Option<End>,
}

/// A number, or `null` for `None`.
struct OrNull<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for OrNull<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("null"),
        }
    }
}

impl Conn {
    /// The side the record names: one without a side is written as a server's.
    pub fn role(&self) -> Side {
        self.side.unwrap_or(Side::Server)
    }

    pub fn has(&self, behaviour: Behaviour) -> bool {
        self.applied.0 & (1 << behaviour as u8) != 0
    }
}

/// The `"type"` of a connection's line and of a process's; other types are for other readers.
const CONN_TYPE: &str = "conn";
const PROCESS_TYPE: &str = "process";

/// Microseconds, written as seconds with six decimals.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl fmt::Display for Conn {
    /// One JSON line, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{\"type\":\"{CONN_TYPE}\",\"v\":{VERSION},\"ts\":{},\"pid\":{},\"role\":\"{}\",\
             \"local_port\":{},\"remote_port\":{},\"arm\":",
            Seconds(self.ts_us),
            self.pid,
            self.role().name(),
            self.local_port,
            self.remote_port,
        )?;
        write_name(f, self.arm)?;
        write!(f, ",\"window\":{},\"behaviours\":[", OrNull(self.window))?;
        let mut first = true;
        for i in (0..BEHAVIOURS).filter(|i| self.applied.0 & (1 << i) != 0) {
            f.write_str(if first { "\"" } else { ",\"" })?;
            f.write_str(&behaviour_name(i))?;
            f.write_char('"')?;
            first = false;
        }
        write!(
            f,
            "],\"responses\":{},\"segs_in\":{},\"segs_out\":{},\"data_segs_in\":{},\
             \"data_segs_out\":{},\"bytes_acked\":{},\"bytes_received\":{},\"retrans\":{},\
             \"rtt_us\":{},\"rttvar_us\":{},\"syn_data\":{},\"fastopen_child\":{},\
             \"fastopen_fail\":",
            self.responses,
            self.segs_in,
            self.segs_out,
            self.data_segs_in,
            self.data_segs_out,
            self.bytes_acked,
            self.bytes_received,
            self.retrans,
            self.rtt_us,
            self.rttvar_us,
            self.syn_data,
            self.fastopen_child,
        )?;
        write_name(f, self.fastopen_fail)?;
        write!(
            f,
            ",\"min_rtt_us\":{},\"delivery_rate\":{},\"busy_us\":{},\"rwnd_limited_us\":{},\
             \"sndbuf_limited_us\":{},\"reordering\":{},\"end\":\"{}\"}}",
            OrNull(self.min_rtt_us),
            OrNull(self.delivery_rate),
            OrNull(self.busy_us),
            OrNull(self.rwnd_limited_us),
            OrNull(self.sndbuf_limited_us),
            OrNull(self.reordering),
            self.end.unwrap_or(End::Close).name(),
        )
    }
}

/// A name in quotes, or `null`.
fn write_name<T: Named>(f: &mut fmt::Formatter<'_>, v: Option<T>) -> fmt::Result {
    match v {
        Some(v) => write!(f, "\"{}\"", v.name()),
        None => f.write_str("null"),
    }
}

/// A process's last line, written at exit when it recorded anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "reader", derive(serde::Deserialize))]
pub struct Process {
    #[cfg_attr(
        feature = "reader",
        serde(rename = "ts", deserialize_with = "read::micros")
    )]
    pub ts_us: u64,
    pub pid: u32,
    pub connections: u64,
    pub dropped: u64,
}

impl fmt::Display for Process {
    /// One JSON line, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{\"type\":\"{PROCESS_TYPE}\",\"v\":{VERSION},\"ts\":{},\"pid\":{},\
             \"connections\":{},\"dropped\":{}}}",
            Seconds(self.ts_us),
            self.pid,
            self.connections,
            self.dropped
        )
    }
}

/// The line a process writes at exit when it recorded anything.
pub fn process_line(ts_us: u64, pid: u32, connections: u64, dropped: u64) -> String {
    Process {
        ts_us,
        pid,
        connections,
        dropped,
    }
    .to_string()
}

/// Counters shared by a process tree: one per (metric, role, arm). `dropped` sits after the
/// first six metrics, where files of earlier versions have it, so that a kept counters file
/// goes on counting in the same places.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Connections,
    SegmentsIn,
    SegmentsOut,
    Responses,
    Retransmits,
    SynData,
    FastopenAttempts,
    FastopenChild,
    /// One per [`FastopenFail`], in its order.
    FastopenFail0,
    FastopenFail1,
    FastopenFail2,
    FastopenFail3,
    BusyUs,
    RwndLimitedUs,
    SndbufLimitedUs,
}

const METRICS: usize = Metric::SndbufLimitedUs as usize + 1;
/// Metrics before `dropped`.
const FIRST_METRICS: usize = Metric::FastopenAttempts as usize;
const ARMS: [Option<Arm>; 3] = [None, Some(Arm::A), Some(Arm::B)];
/// Slots per metric: role × arm.
const GROUPS: usize = Side::ALL.len() * ARMS.len();
pub const DROPPED_SLOT: usize = FIRST_METRICS * GROUPS;
pub const COUNTER_SLOTS: usize = METRICS * GROUPS + 1;

fn arm_index(arm: Option<Arm>) -> usize {
    match arm {
        None => 0,
        Some(Arm::A) => 1,
        Some(Arm::B) => 2,
    }
}

pub fn slot(metric: Metric, side: Side, arm: Option<Arm>) -> usize {
    let m = metric as usize;
    m * GROUPS + usize::from(m >= FIRST_METRICS) + side as usize * ARMS.len() + arm_index(arm)
}

/// The counter of a client's Fast Open failures for that reason.
fn fail_metric(reason: FastopenFail) -> Metric {
    [
        Metric::FastopenFail0,
        Metric::FastopenFail1,
        Metric::FastopenFail2,
        Metric::FastopenFail3,
    ][reason as usize]
}

/// A Fast Open attempt: the behaviour that lets data ride in the SYN applied to it.
pub fn tried_fastopen(c: &Conn) -> bool {
    c.has(match c.role() {
        Side::Client => Behaviour::FastopenConnect,
        Side::Server => Behaviour::Fastopen,
    })
}

/// What one connection adds to the counters: (slot, amount) pairs.
pub fn increments(c: &Conn) -> [(usize, u64); 12] {
    let side = c.role();
    let at = |m| slot(m, side, c.arm);
    // No failure adds nothing (to any slot).
    let fail = c
        .fastopen_fail
        .map_or((DROPPED_SLOT, 0), |r| (at(fail_metric(r)), 1));
    [
        (at(Metric::Connections), 1),
        (at(Metric::SegmentsIn), u64::from(c.segs_in)),
        (at(Metric::SegmentsOut), u64::from(c.segs_out)),
        (at(Metric::Responses), u64::from(c.responses)),
        (at(Metric::Retransmits), u64::from(c.retrans)),
        (at(Metric::SynData), u64::from(c.syn_data)),
        (at(Metric::FastopenAttempts), u64::from(tried_fastopen(c))),
        (at(Metric::FastopenChild), u64::from(c.fastopen_child)),
        fail,
        (at(Metric::BusyUs), c.busy_us.unwrap_or(0)),
        (at(Metric::RwndLimitedUs), c.rwnd_limited_us.unwrap_or(0)),
        (
            at(Metric::SndbufLimitedUs),
            c.sndbuf_limited_us.unwrap_or(0),
        ),
    ]
}

/// A metric family of the textfile: the counters it shows, with the label that tells them apart.
struct Family {
    name: &'static str,
    help: &'static str,
    /// (counter, its extra label); several for a family split by one more label.
    series: &'static [(Metric, Option<(&'static str, &'static str)>)],
    /// Counted in microseconds, shown in seconds.
    seconds: bool,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "socktune_connections_total",
        help: "TCP connections recorded at close.",
        series: &[(Metric::Connections, None)],
        seconds: false,
    },
    Family {
        name: "socktune_segments_total",
        help: "TCP segments of recorded connections (TCP_INFO).",
        series: &[
            (Metric::SegmentsIn, Some(("dir", "in"))),
            (Metric::SegmentsOut, Some(("dir", "out"))),
        ],
        seconds: false,
    },
    Family {
        name: "socktune_responses_total",
        help: "Write bursts after a read (responses, or requests for clients).",
        series: &[(Metric::Responses, None)],
        seconds: false,
    },
    Family {
        name: "socktune_retransmits_total",
        help: "Retransmitted segments of recorded connections.",
        series: &[(Metric::Retransmits, None)],
        seconds: false,
    },
    Family {
        name: "socktune_syn_data_total",
        help: "Connections whose data rode in the SYN (Fast Open).",
        series: &[(Metric::SynData, None)],
        seconds: false,
    },
    Family {
        name: "socktune_fastopen_attempts_total",
        help: "Connections where socktune applied Fast Open (listener or connect).",
        series: &[(Metric::FastopenAttempts, None)],
        seconds: false,
    },
    Family {
        name: "socktune_fastopen_child_total",
        help: "Server connections that came from a Fast Open SYN.",
        series: &[(Metric::FastopenChild, None)],
        seconds: false,
    },
    Family {
        name: "socktune_fastopen_failures_total",
        help:
            "Client Fast Open attempts whose data did not ride in the SYN, by the kernel's reason.",
        series: &[
            (Metric::FastopenFail0, Some(("reason", "unspecified"))),
            (
                Metric::FastopenFail1,
                Some(("reason", "cookie-unavailable")),
            ),
            (Metric::FastopenFail2, Some(("reason", "data-not-acked"))),
            (Metric::FastopenFail3, Some(("reason", "syn-retransmitted"))),
        ],
        seconds: false,
    },
    Family {
        name: "socktune_busy_seconds_total",
        help: "Time recorded connections had data to send (TCP_INFO busy time).",
        series: &[(Metric::BusyUs, None)],
        seconds: true,
    },
    Family {
        name: "socktune_rwnd_limited_seconds_total",
        help: "Of that, time limited by the peer's receive window.",
        series: &[(Metric::RwndLimitedUs, None)],
        seconds: true,
    },
    Family {
        name: "socktune_sndbuf_limited_seconds_total",
        help: "Of that, time limited by the send buffer.",
        series: &[(Metric::SndbufLimitedUs, None)],
        seconds: true,
    },
];

/// The name of every metric family of the textfile, in its order.
pub fn prom_families() -> impl Iterator<Item = &'static str> {
    FAMILIES
        .iter()
        .map(|f| f.name)
        .chain(["socktune_stats_dropped_total"])
}

/// The Prometheus text exposition of `counters` (node_exporter's textfile collector format).
/// Groups that never saw a connection are left out, so an unsplit run shows no arm labels.
pub fn render_prom(counters: &[u64; COUNTER_SLOTS]) -> String {
    let mut out = String::new();
    for family in FAMILIES {
        let name = family.name;
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} counter", family.help);
        for &(metric, label) in family.series {
            for &side in Side::ALL {
                for arm in ARMS {
                    if counters[slot(Metric::Connections, side, arm)] == 0 {
                        continue;
                    }
                    let _ = write!(out, "{name}{{role=\"{}\"", side.name());
                    if let Some(a) = arm {
                        let _ = write!(out, ",arm=\"{}\"", a.name());
                    }
                    if let Some((k, v)) = label {
                        let _ = write!(out, ",{k}=\"{v}\"");
                    }
                    let n = counters[slot(metric, side, arm)];
                    let _ = if family.seconds {
                        writeln!(out, "}} {}", Seconds(n))
                    } else {
                        writeln!(out, "}} {n}")
                    };
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP socktune_stats_dropped_total Connection records lost (buffer full or file unwritable).\n\
         # TYPE socktune_stats_dropped_total counter\nsocktune_stats_dropped_total {}",
        counters[DROPPED_SLOT]
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Kind;

    #[test]
    fn a_shared_socket_is_reported_by_the_holder_that_wrote() {
        let recorded = FdState::new(Kind::Server, FdState::RECORDED, 80);
        assert!(reports_at_close(recorded, 0));
        assert!(!reports_at_close(recorded.with(FdState::SHARED), 0));
        assert!(reports_at_close(recorded.with(FdState::SHARED), 1));
        assert!(!reports_at_close(FdState::new(Kind::Server, 0, 80), 1));
    }

    #[test]
    fn applied_names_what_socktune_did_not_what_the_program_did() {
        let corked = FdState::new(
            Kind::Server,
            FdState::CORK
                | FdState::QUICKACK_OFF
                | FdState::APPLIED_DEFER_ACCEPT
                | FdState::APPLIED_FASTOPEN,
            80,
        );
        assert_eq!(applied(corked), Applied(0b110011));
        let taken_over = corked
            .with(FdState::APP_NAGLE | FdState::APP_QUICKACK)
            .without(FdState::APPLIED_DEFER_ACCEPT | FdState::APPLIED_FASTOPEN);
        assert_eq!(applied(taken_over), Applied(0));
        let client = FdState::new(
            Kind::Client,
            FdState::NODELAY | FdState::APPLIED_FASTOPEN_CONNECT,
            80,
        );
        assert_eq!(applied(client), Applied(0b1100));
    }

    #[test]
    fn arms_split_by_percent() {
        let b = (0..10_000u64)
            .filter(|&i| arm_for(mix(i), 30) == Arm::B)
            .count();
        assert!((2_700..3_300).contains(&b), "{b}");
        assert!((0..1000u64).all(|i| arm_for(mix(i), 0) == Arm::A));
        assert!((0..1000u64).all(|i| arm_for(mix(i), 100) == Arm::B));
    }

    #[test]
    fn switchback_windows_alternate_at_half_and_draw_at_other_shares() {
        let arms: Vec<Arm> = (10..14).map(|w| window_arm(w, 50)).collect();
        assert_eq!(arms, [Arm::A, Arm::B, Arm::A, Arm::B]);
        let b = (0..10_000u64)
            .filter(|&w| window_arm(w, 20) == Arm::B)
            .count();
        assert!((1_700..2_300).contains(&b), "{b}");
        assert!((0..100u64).all(|w| window_arm(w, 100) == Arm::B));
    }

    #[test]
    fn a_connection_keeps_the_window_it_started_in() {
        let start = 123_456u64;
        for later in [0, 1, 200, 255] {
            assert_eq!(started_window(start as u8, start + later), start, "{later}");
        }
        assert_eq!(started_window(start as u8, start + 256), start + 256);
        assert_eq!(started_window(200, 3), 0, "never before the first window");
    }

    /// A connection with every field set, each to a value of its own.
    pub(super) fn every_field() -> Conn {
        Conn {
            ts_us: 1_763_856_000_000_042,
            pid: 7,
            side: Some(Side::Client),
            local_port: 40000,
            remote_port: 8000,
            arm: Some(Arm::B),
            window: Some(18),
            applied: Applied(0b10_1101),
            responses: 3,
            segs_in: 11,
            segs_out: 12,
            data_segs_in: 13,
            data_segs_out: 14,
            bytes_acked: 1 << 40,
            bytes_received: (1 << 40) + 1,
            retrans: 15,
            rtt_us: 16,
            rttvar_us: 17,
            syn_data: true,
            fastopen_child: true,
            fastopen_fail: Some(FastopenFail::DataNotAcked),
            min_rtt_us: Some(19),
            delivery_rate: Some(1 << 33),
            busy_us: Some(20),
            rwnd_limited_us: Some(21),
            sndbuf_limited_us: Some(22),
            reordering: Some(23),
            end: Some(End::Shutdown),
        }
    }

    #[test]
    fn a_record_is_one_json_line_in_the_documented_key_order() {
        assert_eq!(
            every_field().to_string(),
            "{\"type\":\"conn\",\"v\":1,\"ts\":1763856000.000042,\"pid\":7,\"role\":\"client\",\
             \"local_port\":40000,\"remote_port\":8000,\"arm\":\"B\",\"window\":18,\
             \"behaviours\":[\"cork\",\"nodelay\",\"fastopen-connect\",\"fastopen\"],\
             \"responses\":3,\"segs_in\":11,\"segs_out\":12,\"data_segs_in\":13,\
             \"data_segs_out\":14,\"bytes_acked\":1099511627776,\"bytes_received\":1099511627777,\
             \"retrans\":15,\"rtt_us\":16,\"rttvar_us\":17,\"syn_data\":true,\
             \"fastopen_child\":true,\"fastopen_fail\":\"data-not-acked\",\"min_rtt_us\":19,\
             \"delivery_rate\":8589934592,\"busy_us\":20,\"rwnd_limited_us\":21,\
             \"sndbuf_limited_us\":22,\"reordering\":23,\"end\":\"shutdown\"}"
        );
        let none = Conn::default().to_string();
        assert!(
            none.contains("\"arm\":null,\"window\":null,\"behaviours\":[],"),
            "{none}"
        );
        assert!(
            none.contains("\"fastopen_fail\":null,\"min_rtt_us\":null,"),
            "{none}"
        );
        assert_eq!(
            process_line(2_000_001, 7, 3, 1),
            "{\"type\":\"process\",\"v\":1,\"ts\":2.000001,\"pid\":7,\"connections\":3,\
             \"dropped\":1}"
        );
    }

    #[test]
    fn a_behaviour_is_named_by_its_place_in_the_list() {
        assert_eq!(Behaviour::Cork.name(), "cork");
        assert_eq!(Behaviour::DeferAcceptOff as usize + 1, PLANNED.len());
        let names: Vec<_> = (0..BEHAVIOURS).map(behaviour_name).collect();
        // The names and bits that files already written hold.
        assert_eq!(
            names.join(" "),
            "cork quickack-off nodelay fastopen-connect defer-accept fastopen defer-accept-off \
             keepalive user-timeout syncnt congestion notsent-lowat sndbuf rcvbuf tos mark \
             priority maxseg"
        );
        let keepalive = FdState::new(Kind::Client, FdState::opt(0), 80);
        let c = Conn {
            applied: applied(keepalive),
            ..Conn::default()
        };
        assert!(
            c.to_string().contains(r#""behaviours":["keepalive"]"#),
            "{c}"
        );
        let c = Conn {
            applied: Applied(1 << Behaviour::DeferAccept as u8),
            ..Conn::default()
        };
        assert!(c.has(Behaviour::DeferAccept) && !c.has(Behaviour::Fastopen));
    }

    #[test]
    fn the_dropped_counter_keeps_its_place_and_every_slot_is_its_own() {
        assert_eq!(DROPPED_SLOT, 36, "where files of earlier versions count it");
        let mut seen = vec![DROPPED_SLOT];
        for m in 0..METRICS {
            let metric = [
                Metric::Connections,
                Metric::SegmentsIn,
                Metric::SegmentsOut,
                Metric::Responses,
                Metric::Retransmits,
                Metric::SynData,
                Metric::FastopenAttempts,
                Metric::FastopenChild,
                Metric::FastopenFail0,
                Metric::FastopenFail1,
                Metric::FastopenFail2,
                Metric::FastopenFail3,
                Metric::BusyUs,
                Metric::RwndLimitedUs,
                Metric::SndbufLimitedUs,
            ][m];
            for &side in Side::ALL {
                for arm in ARMS {
                    seen.push(slot(metric, side, arm));
                }
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..COUNTER_SLOTS).collect::<Vec<_>>());
    }

    #[test]
    fn fastopen_failures_are_counted_by_reason_for_clients_that_tried() {
        let tried = Applied(1 << Behaviour::FastopenConnect as u8);
        assert_eq!(
            fastopen_fail(Side::Client, tried, false, 1),
            Some(FastopenFail::CookieUnavailable)
        );
        assert_eq!(fastopen_fail(Side::Client, tried, true, 0), None);
        assert_eq!(fastopen_fail(Side::Client, Applied(0), false, 2), None);
        assert_eq!(fastopen_fail(Side::Server, tried, false, 2), None);
        let c = Conn {
            side: Some(Side::Client),
            applied: tried,
            fastopen_fail: Some(FastopenFail::DataNotAcked),
            ..Conn::default()
        };
        let mut counters = [0u64; COUNTER_SLOTS];
        for (s, n) in increments(&c) {
            counters[s] += n;
        }
        let text = render_prom(&counters);
        for series in [
            "socktune_fastopen_attempts_total{role=\"client\"} 1\n",
            "socktune_fastopen_failures_total{role=\"client\",reason=\"data-not-acked\"} 1\n",
            "socktune_fastopen_failures_total{role=\"client\",reason=\"cookie-unavailable\"} 0\n",
            "socktune_stats_dropped_total 0\n",
        ] {
            assert!(text.contains(series), "{series} in {text}");
        }
    }

    #[test]
    fn prometheus_text_labels_only_the_groups_seen() {
        let mut counters = [0u64; COUNTER_SLOTS];
        let c = Conn {
            side: Some(Side::Server),
            arm: Some(Arm::A),
            responses: 10,
            segs_in: 30,
            segs_out: 21,
            ..Conn::default()
        };
        for (s, n) in increments(&c) {
            counters[s] += n;
        }
        let text = render_prom(&counters);
        assert!(
            text.contains("socktune_connections_total{role=\"server\",arm=\"A\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("socktune_segments_total{role=\"server\",arm=\"A\",dir=\"in\"} 30\n"),
            "{text}"
        );
        assert!(
            text.contains("socktune_segments_total{role=\"server\",arm=\"A\",dir=\"out\"} 21\n"),
            "{text}"
        );
        assert!(
            text.contains("socktune_responses_total{role=\"server\",arm=\"A\"} 10\n"),
            "{text}"
        );
        assert!(!text.contains("arm=\"B\""), "{text}");
        assert!(
            text.contains("socktune_busy_seconds_total{role=\"server\",arm=\"A\"} 0.000000\n"),
            "{text}"
        );
        assert!(text.ends_with("socktune_stats_dropped_total 0\n"), "{text}");
        let families = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(families, prom_families().count(), "{text}");
        assert_eq!(text.matches("# TYPE socktune_segments_total").count(), 1);
    }
}
