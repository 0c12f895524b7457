//! The records of `SOCKTUNE_STATS` (format v1, docs in the README) and what `report` computes
//! from them: per group of connections (role and arm), and the A/B difference with a bootstrap
//! interval.

use serde::Deserialize;
use socktune_core::record;
use std::collections::BTreeMap;

/// One `"type":"conn"` line; keys the report does not use are ignored.
#[derive(Deserialize, Clone, Debug, Default)]
pub struct Conn {
    pub role: String,
    pub arm: Option<String>,
    #[serde(default)]
    pub behaviours: Vec<String>,
    pub responses: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    pub data_segs_out: u64,
    pub retrans: u64,
    pub rtt_us: u64,
    pub syn_data: bool,
}

impl Conn {
    pub fn packets(&self) -> u64 {
        self.segs_in + self.segs_out
    }

    /// A Fast Open attempt: the behaviour that lets data ride in the SYN applied to it.
    fn tried_fastopen(&self) -> bool {
        let wanted = if self.role == "client" {
            "fastopen-connect"
        } else {
            "fastopen"
        };
        self.behaviours.iter().any(|b| b == wanted)
    }
}

#[derive(Deserialize)]
struct Process {
    dropped: u64,
}

/// Everything read from the stats files.
#[derive(Default)]
pub struct Data {
    pub conns: Vec<Conn>,
    /// Records the library lost (full buffer or unwritable file), from its process lines.
    pub dropped: u64,
    /// Lines that are not valid records (a line cut short by a crash, another format).
    pub bad_lines: usize,
    /// Records of a newer format version than this reader knows.
    pub newer: usize,
}

impl Data {
    pub fn add_line(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            self.bad_lines += 1;
            return;
        };
        if value
            .get("v")
            .and_then(|v| v.as_u64())
            .is_some_and(|v| v > 1)
        {
            self.newer += 1;
        }
        let ok = match value.get("type").and_then(|t| t.as_str()) {
            Some("conn") => serde_json::from_value(value)
                .map(|c| self.conns.push(c))
                .is_ok(),
            Some("process") => serde_json::from_value::<Process>(value)
                .map(|p| self.dropped += p.dropped)
                .is_ok(),
            _ => true, // other types are for other readers
        };
        if !ok {
            self.bad_lines += 1;
        }
    }
}

/// Connections of one role and arm.
pub struct Group<'a> {
    pub role: &'a str,
    pub arm: Option<&'a str>,
    pub conns: Vec<&'a Conn>,
}

/// Groups by role, then arm (A before B; unsplit runs have one group per role).
pub fn groups(conns: &[Conn]) -> Vec<Group<'_>> {
    let mut map: BTreeMap<(&str, Option<&str>), Vec<&Conn>> = BTreeMap::new();
    for c in conns {
        map.entry((c.role.as_str(), c.arm.as_deref()))
            .or_default()
            .push(c);
    }
    // "server" sorts after "client"; the server side is the usual subject, so it goes first.
    let mut groups: Vec<Group> = map
        .into_iter()
        .map(|((role, arm), conns)| Group { role, arm, conns })
        .collect();
    groups.sort_by_key(|g| (g.role != "server", g.role, g.arm));
    groups
}

/// Segments per response over a set of connections: total packets over total responses.
pub fn packets_per_response<'a>(conns: impl IntoIterator<Item = &'a Conn>) -> Option<f64> {
    let (packets, responses) = conns
        .into_iter()
        .fold((0, 0), |(p, r), c| (p + c.packets(), r + c.responses));
    (responses > 0).then(|| packets as f64 / responses as f64)
}

pub struct Summary {
    pub conns: usize,
    pub packets_per_conn: f64,
    pub packets_per_response: Option<f64>,
    pub data_segs_per_response: Option<f64>,
    pub rtt_p50_us: u64,
    pub rtt_p99_us: u64,
    pub retrans: u64,
    /// (data in the SYN, attempts) for connections where Fast Open applied.
    pub fastopen: (usize, usize),
}

pub fn summarize(conns: &[&Conn]) -> Summary {
    let n = conns.len();
    let responses: u64 = conns.iter().map(|c| c.responses).sum();
    let mut rtts: Vec<u64> = conns.iter().map(|c| c.rtt_us).collect();
    rtts.sort_unstable();
    let tried: Vec<_> = conns.iter().filter(|c| c.tried_fastopen()).collect();
    Summary {
        conns: n,
        packets_per_conn: conns.iter().map(|c| c.packets()).sum::<u64>() as f64 / n.max(1) as f64,
        packets_per_response: packets_per_response(conns.iter().copied()),
        data_segs_per_response: (responses > 0)
            .then(|| conns.iter().map(|c| c.data_segs_out).sum::<u64>() as f64 / responses as f64),
        rtt_p50_us: percentile(&rtts, 50.0),
        rtt_p99_us: percentile(&rtts, 99.0),
        retrans: conns.iter().map(|c| c.retrans).sum(),
        fastopen: (tried.iter().filter(|c| c.syn_data).count(), tried.len()),
    }
}

/// Nearest-rank percentile of sorted values (0 for none).
pub fn percentile<T: Copy + Default>(sorted: &[T], pct: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (pct / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A small fixed-seed generator (the library's splitmix64), so a report reads the same every time.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(record::GAMMA);
        record::mix(self.0)
    }

    /// Uniform in 0..n (n > 0); the modulo bias is below 2^-40 for the sizes used here.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub const RESAMPLES: usize = 2000;
const SEED: u64 = 0x50c4_7e57;

/// The difference B − A in packets per response, with its 95% bootstrap interval: both arms'
/// connections are resampled with replacement, `RESAMPLES` times.
pub struct Difference {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

impl Difference {
    /// The interval leaves out zero.
    pub fn significant(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

pub fn bootstrap(a: &[&Conn], b: &[&Conn]) -> Option<Difference> {
    let estimate =
        packets_per_response(b.iter().copied())? - packets_per_response(a.iter().copied())?;
    let mut rng = Rng::new(SEED);
    let resample = |arm: &[&Conn], rng: &mut Rng| {
        packets_per_response((0..arm.len()).map(|_| arm[rng.below(arm.len())]))
    };
    let mut diffs: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| Some(resample(b, &mut rng)? - resample(a, &mut rng)?))
        .collect();
    if diffs.len() < RESAMPLES / 2 {
        return None; // most resamples had no response at all: too little data
    }
    diffs.sort_by(f64::total_cmp);
    Some(Difference {
        estimate,
        low: percentile(&diffs, 2.5),
        high: percentile(&diffs, 97.5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(arm: &str, packets: u64, responses: u64) -> Conn {
        Conn {
            role: "server".into(),
            arm: Some(arm.into()),
            responses,
            segs_in: packets / 2,
            segs_out: packets - packets / 2,
            ..Conn::default()
        }
    }

    #[test]
    fn lines_are_read_and_unknowns_ignored() {
        let mut d = Data::default();
        d.add_line(r#"{"type":"conn","v":1,"ts":1.5,"pid":1,"role":"server","local_port":80,"remote_port":4,"arm":null,"behaviours":["cork"],"responses":2,"segs_in":3,"segs_out":3,"data_segs_in":2,"data_segs_out":2,"bytes_acked":1,"bytes_received":1,"retrans":0,"rtt_us":30,"rttvar_us":1,"syn_data":false,"end":"close","new_key":7}"#);
        d.add_line(r#"{"type":"process","v":1,"ts":2,"pid":1,"connections":1,"dropped":3}"#);
        d.add_line(r#"{"type":"future","v":1}"#);
        d.add_line(r#"{"type":"conn","role":"serv"#);
        assert_eq!(d.conns.len(), 1);
        assert_eq!(d.conns[0].packets(), 6);
        assert_eq!((d.dropped, d.bad_lines), (3, 1));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&[7u64], 99.0), 7);
        assert_eq!(percentile::<u64>(&[], 50.0), 0);
    }

    #[test]
    fn a_clear_difference_is_significant_and_equal_arms_are_not() {
        let a: Vec<Conn> = (0..20).map(|i| conn("A", 100 + i % 3, 20)).collect();
        let b: Vec<Conn> = (0..20).map(|i| conn("B", 40 + i % 3, 20)).collect();
        let (ra, rb): (Vec<&Conn>, Vec<&Conn>) = (a.iter().collect(), b.iter().collect());
        let d = bootstrap(&ra, &rb).unwrap();
        assert!((d.estimate - (-3.0)).abs() < 1e-9, "{}", d.estimate);
        assert!(d.low <= d.estimate && d.estimate <= d.high);
        assert!(d.significant());
        let same: Vec<Conn> = (0..20).map(|i| conn("B", 100 + i % 3, 20)).collect();
        let rs: Vec<&Conn> = same.iter().collect();
        let d = bootstrap(&ra, &rs).unwrap();
        assert!(!d.significant(), "{} {}", d.low, d.high);
    }

    #[test]
    fn groups_put_the_server_first_and_arm_a_before_b() {
        let mut c = conn("B", 4, 2);
        c.role = "client".into();
        let conns = vec![conn("B", 4, 2), c, conn("A", 10, 2)];
        let g = groups(&conns);
        let keys: Vec<_> = g.iter().map(|g| (g.role, g.arm)).collect();
        assert_eq!(
            keys,
            [
                ("server", Some("A")),
                ("server", Some("B")),
                ("client", Some("B"))
            ]
        );
    }
}
