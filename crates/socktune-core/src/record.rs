//! Per-connection records for `SOCKTUNE_STATS` and the counters behind `SOCKTUNE_STATS_PROM`:
//! plain Rust, no FFI. The format is described in the README ("Per-connection proof").

pub use crate::state::Arm;
use crate::state::FdState;
use std::fmt::{self, Write};

/// Which end of the connection the program is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server = 0,
    Client = 1,
}

/// Picks the arm for a uniformly random `draw`: `pct` percent of draws land in B.
pub fn arm_for(draw: u64, pct: u8) -> Arm {
    if draw % 100 < u64::from(pct) {
        Arm::B
    } else {
        Arm::A
    }
}

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

/// The behaviours named in records, in the order of [`Applied`]'s bits.
pub const BEHAVIOURS: &[&str] = &[
    "cork",
    "quickack-off",
    "nodelay",
    "fastopen-connect",
    "defer-accept",
    "fastopen",
];

/// Bit i set: `BEHAVIOURS[i]` applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Applied(pub u8);

/// What socktune applied to a connection, from its state.
pub fn applied(state: FdState) -> Applied {
    let on = [
        state.corks(),
        state.reapplies_quickack(),
        state.has(FdState::NODELAY) && !state.has(FdState::APP_NAGLE),
        state.has(FdState::APPLIED_FASTOPEN_CONNECT),
        state.has(FdState::APPLIED_DEFER_ACCEPT),
        state.has(FdState::APPLIED_FASTOPEN),
    ];
    Applied(
        on.iter()
            .enumerate()
            .fold(0, |bits, (i, &b)| bits | (u8::from(b) << i)),
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Close,
    Shutdown,
}

/// One connection, as TCP_INFO and the shim saw it just before it was closed.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Conn {
    pub ts_us: u64,
    pub pid: u32,
    pub side: Option<Side>,
    pub local_port: u16,
    pub remote_port: u16,
    pub arm: Option<Arm>,
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
    pub end: Option<End>,
}

fn arm_json(arm: Option<Arm>) -> &'static str {
    match arm {
        Some(Arm::A) => "\"A\"",
        Some(Arm::B) => "\"B\"",
        None => "null",
    }
}

impl fmt::Display for Conn {
    /// One JSON line, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.side {
            Some(Side::Client) => "client",
            _ => "server",
        };
        write!(
            f,
            "{{\"type\":\"conn\",\"v\":1,\"ts\":{}.{:06},\"pid\":{},\"role\":\"{role}\",\
             \"local_port\":{},\"remote_port\":{},\"arm\":{},\"behaviours\":[",
            self.ts_us / 1_000_000,
            self.ts_us % 1_000_000,
            self.pid,
            self.local_port,
            self.remote_port,
            arm_json(self.arm),
        )?;
        let mut first = true;
        for (i, name) in BEHAVIOURS.iter().enumerate() {
            if self.applied.0 & (1 << i) != 0 {
                f.write_str(if first { "\"" } else { ",\"" })?;
                f.write_str(name)?;
                f.write_char('"')?;
                first = false;
            }
        }
        write!(
            f,
            "],\"responses\":{},\"segs_in\":{},\"segs_out\":{},\"data_segs_in\":{},\
             \"data_segs_out\":{},\"bytes_acked\":{},\"bytes_received\":{},\"retrans\":{},\
             \"rtt_us\":{},\"rttvar_us\":{},\"syn_data\":{},\"end\":\"{}\"}}",
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
            match self.end {
                Some(End::Shutdown) => "shutdown",
                _ => "close",
            }
        )
    }
}

/// The line a process writes at exit when it recorded anything.
pub fn process_line(ts_us: u64, pid: u32, connections: u64, dropped: u64) -> String {
    format!(
        "{{\"type\":\"process\",\"v\":1,\"ts\":{}.{:06},\"pid\":{pid},\"connections\":{connections},\"dropped\":{dropped}}}",
        ts_us / 1_000_000,
        ts_us % 1_000_000
    )
}

/// Counters shared by a process tree: one per (metric, role, arm), then `dropped`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Connections,
    SegmentsIn,
    SegmentsOut,
    Responses,
    Retransmits,
    SynData,
}

const METRICS: [Metric; 6] = [
    Metric::Connections,
    Metric::SegmentsIn,
    Metric::SegmentsOut,
    Metric::Responses,
    Metric::Retransmits,
    Metric::SynData,
];
const ARMS: [Option<Arm>; 3] = [None, Some(Arm::A), Some(Arm::B)];
const SIDES: [Side; 2] = [Side::Server, Side::Client];
/// Slots per metric: role × arm.
const GROUPS: usize = SIDES.len() * ARMS.len();
pub const DROPPED_SLOT: usize = METRICS.len() * GROUPS;
pub const COUNTER_SLOTS: usize = DROPPED_SLOT + 1;

fn arm_index(arm: Option<Arm>) -> usize {
    match arm {
        None => 0,
        Some(Arm::A) => 1,
        Some(Arm::B) => 2,
    }
}

pub fn slot(metric: Metric, side: Side, arm: Option<Arm>) -> usize {
    metric as usize * GROUPS + side as usize * ARMS.len() + arm_index(arm)
}

/// What one connection adds to the counters: (slot, amount) pairs.
pub fn increments(c: &Conn) -> [(usize, u64); 6] {
    let side = c.side.unwrap_or(Side::Server);
    let at = |m| slot(m, side, c.arm);
    [
        (at(Metric::Connections), 1),
        (at(Metric::SegmentsIn), u64::from(c.segs_in)),
        (at(Metric::SegmentsOut), u64::from(c.segs_out)),
        (at(Metric::Responses), u64::from(c.responses)),
        (at(Metric::Retransmits), u64::from(c.retrans)),
        (at(Metric::SynData), u64::from(c.syn_data)),
    ]
}

/// The Prometheus text exposition of `counters` (node_exporter's textfile collector format).
/// Groups that never saw a connection are left out, so an unsplit run shows no arm labels.
pub fn render_prom(counters: &[u64; COUNTER_SLOTS]) -> String {
    let mut out = String::new();
    let families: [(Metric, &str, &str, Option<&str>); 6] = [
        (
            Metric::Connections,
            "socktune_connections_total",
            "TCP connections recorded at close.",
            None,
        ),
        (
            Metric::SegmentsIn,
            "socktune_segments_total",
            "TCP segments of recorded connections (TCP_INFO).",
            Some("in"),
        ),
        (
            Metric::SegmentsOut,
            "socktune_segments_total",
            "",
            Some("out"),
        ),
        (
            Metric::Responses,
            "socktune_responses_total",
            "Write bursts after a read (responses, or requests for clients).",
            None,
        ),
        (
            Metric::Retransmits,
            "socktune_retransmits_total",
            "Retransmitted segments of recorded connections.",
            None,
        ),
        (
            Metric::SynData,
            "socktune_syn_data_total",
            "Connections whose data rode in the SYN (Fast Open).",
            None,
        ),
    ];
    for (metric, name, help, dir) in families {
        if !help.is_empty() {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        }
        for side in SIDES {
            for arm in ARMS {
                if counters[slot(Metric::Connections, side, arm)] == 0 {
                    continue;
                }
                let role = if side == Side::Server {
                    "server"
                } else {
                    "client"
                };
                let _ = write!(out, "{name}{{role=\"{role}\"");
                if let Some(a) = arm {
                    let _ = write!(out, ",arm=\"{}\"", if a == Arm::A { "A" } else { "B" });
                }
                if let Some(d) = dir {
                    let _ = write!(out, ",dir=\"{d}\"");
                }
                let _ = writeln!(out, "}} {}", counters[slot(metric, side, arm)]);
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
    fn a_record_is_one_json_line_in_the_documented_key_order() {
        let c = Conn {
            ts_us: 1_763_856_000_000_042,
            pid: 7,
            side: Some(Side::Client),
            local_port: 40000,
            remote_port: 8000,
            arm: Some(Arm::B),
            applied: Applied(0b1001),
            responses: 2,
            segs_in: 5,
            segs_out: 6,
            syn_data: true,
            ..Conn::default()
        };
        assert_eq!(
            c.to_string(),
            "{\"type\":\"conn\",\"v\":1,\"ts\":1763856000.000042,\"pid\":7,\"role\":\"client\",\
             \"local_port\":40000,\"remote_port\":8000,\"arm\":\"B\",\
             \"behaviours\":[\"cork\",\"fastopen-connect\"],\"responses\":2,\"segs_in\":5,\
             \"segs_out\":6,\"data_segs_in\":0,\"data_segs_out\":0,\"bytes_acked\":0,\
             \"bytes_received\":0,\"retrans\":0,\"rtt_us\":0,\"rttvar_us\":0,\"syn_data\":true,\
             \"end\":\"close\"}"
        );
        let none = Conn::default().to_string();
        assert!(none.contains("\"arm\":null,\"behaviours\":[],"), "{none}");
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
        assert!(text.ends_with("socktune_stats_dropped_total 0\n"), "{text}");
        assert_eq!(text.matches("# TYPE socktune_segments_total").count(), 1);
    }
}
