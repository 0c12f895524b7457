//! What `report` computes from the records of `SOCKTUNE_STATS` (read by `record::read`, format
//! docs in the README): per group of connections (role and arm), and the A/B difference with a
//! bootstrap interval.

use socktune_core::record::{self, Arm, Conn, FastopenFail, Line, Side};
use std::collections::BTreeMap;

/// Segments in + out, from TCP_INFO at close.
pub fn packets(c: &Conn) -> u64 {
    u64::from(c.segs_in) + u64::from(c.segs_out)
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
        let read = record::read(line);
        self.newer += usize::from(read.newer);
        match read.line {
            Some(Line::Conn(c)) => self.conns.push(c),
            Some(Line::Process(p)) => self.dropped += p.dropped,
            Some(Line::Other) => {}
            None => self.bad_lines += 1,
        }
    }
}

/// Connections of one role and arm.
pub struct Group<'a> {
    pub role: Side,
    pub arm: Option<Arm>,
    pub conns: Vec<&'a Conn>,
}

/// Groups by role (server first), then arm (A before B; unsplit runs have one group per role).
pub fn groups(conns: &[Conn]) -> Vec<Group<'_>> {
    let mut map: BTreeMap<(Side, Option<Arm>), Vec<&Conn>> = BTreeMap::new();
    for c in conns {
        map.entry((c.role(), c.arm)).or_default().push(c);
    }
    map.into_iter()
        .map(|((role, arm), conns)| Group { role, arm, conns })
        .collect()
}

/// Segments per response over a set of connections: total packets over total responses.
pub fn packets_per_response<'a>(conns: impl IntoIterator<Item = &'a Conn>) -> Option<f64> {
    let (packets, responses) = conns.into_iter().fold((0, 0), |(p, r), c| {
        (p + packets(c), r + u64::from(c.responses))
    });
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
    /// Why attempts failed (clients), by reason, most frequent first.
    pub fastopen_fails: Vec<(FastopenFail, usize)>,
    /// Server connections made by a Fast Open SYN.
    pub fastopen_children: usize,
    /// The later TCP_INFO fields, over the connections whose kernel had them (`None`: none had).
    pub min_rtt_p50_us: Option<u32>,
    pub delivery_rate_p50: Option<u64>,
    pub busy_us: Option<u64>,
    pub rwnd_limited_us: Option<u64>,
    pub sndbuf_limited_us: Option<u64>,
    pub reordering_max: Option<u32>,
}

/// The median of the values some connections have, if any has one.
fn median_of<T: Copy + Default + Ord>(values: impl Iterator<Item = Option<T>>) -> Option<T> {
    let mut v: Vec<T> = values.flatten().collect();
    v.sort_unstable();
    (!v.is_empty()).then(|| percentile(&v, 50.0))
}

/// The sum of the values some connections have, if any has one.
fn sum_of(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values
        .flatten()
        .fold(None, |sum, v| Some(sum.unwrap_or(0) + v))
}

pub fn summarize(conns: &[&Conn]) -> Summary {
    let n = conns.len();
    let total = |field: fn(&Conn) -> u32| conns.iter().map(|&c| u64::from(field(c))).sum::<u64>();
    let responses = total(|c| c.responses);
    let mut rtts: Vec<u64> = conns.iter().map(|c| u64::from(c.rtt_us)).collect();
    rtts.sort_unstable();
    let tried: Vec<_> = conns.iter().filter(|c| record::tried_fastopen(c)).collect();
    Summary {
        conns: n,
        packets_per_conn: conns.iter().map(|c| packets(c)).sum::<u64>() as f64 / n.max(1) as f64,
        packets_per_response: packets_per_response(conns.iter().copied()),
        data_segs_per_response: (responses > 0)
            .then(|| total(|c| c.data_segs_out) as f64 / responses as f64),
        rtt_p50_us: percentile(&rtts, 50.0),
        rtt_p99_us: percentile(&rtts, 99.0),
        retrans: total(|c| c.retrans),
        fastopen: (tried.iter().filter(|c| c.syn_data).count(), tried.len()),
        fastopen_fails: fails(conns),
        fastopen_children: conns.iter().filter(|c| c.fastopen_child).count(),
        min_rtt_p50_us: median_of(conns.iter().map(|c| c.min_rtt_us)),
        delivery_rate_p50: median_of(conns.iter().map(|c| c.delivery_rate)),
        busy_us: sum_of(conns.iter().map(|c| c.busy_us)),
        rwnd_limited_us: sum_of(conns.iter().map(|c| c.rwnd_limited_us)),
        sndbuf_limited_us: sum_of(conns.iter().map(|c| c.sndbuf_limited_us)),
        reordering_max: conns.iter().filter_map(|c| c.reordering).max(),
    }
}

fn fails(conns: &[&Conn]) -> Vec<(FastopenFail, usize)> {
    let mut by: BTreeMap<FastopenFail, usize> = BTreeMap::new();
    for reason in conns.iter().filter_map(|c| c.fastopen_fail) {
        *by.entry(reason).or_default() += 1;
    }
    let mut out: Vec<_> = by.into_iter().collect();
    out.sort_by_key(|&(reason, n)| (std::cmp::Reverse(n), reason));
    out
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
    bootstrap_by(a, b, |conns| packets_per_response(conns.iter().copied()))
}

/// B − A in `stat`, with the 95% interval of `RESAMPLES` resamples (with replacement) of the
/// items of each arm: connections, or switchback windows.
fn bootstrap_by<T: Copy>(
    a: &[T],
    b: &[T],
    stat: impl Fn(&[T]) -> Option<f64>,
) -> Option<Difference> {
    let estimate = stat(b)? - stat(a)?;
    let mut rng = Rng::new(SEED);
    let mut resample = |arm: &[T]| {
        let drawn: Vec<T> = (0..arm.len()).map(|_| arm[rng.below(arm.len())]).collect();
        stat(&drawn)
    };
    let mut diffs: Vec<f64> = (0..RESAMPLES)
        .filter_map(|_| Some(resample(b)? - resample(a)?))
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

/// One switchback window of one arm: the connections that started in it, summed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub window: u64,
    pub arm: Arm,
    pub packets: u64,
    pub responses: u64,
}

impl Window {
    fn packets_per_response(&self) -> Option<f64> {
        (self.responses > 0).then(|| self.packets as f64 / self.responses as f64)
    }
}

/// The switchback windows of these connections (those that carry one and an arm), in order.
pub fn windows<'a>(conns: impl IntoIterator<Item = &'a Conn>) -> Vec<Window> {
    let mut by: BTreeMap<(u64, Arm), Window> = BTreeMap::new();
    for c in conns {
        let (Some(window), Some(arm)) = (c.window, c.arm) else {
            continue;
        };
        let w = by.entry((window, arm)).or_insert(Window {
            window,
            arm,
            packets: 0,
            responses: 0,
        });
        w.packets += packets(c);
        w.responses += u64::from(c.responses);
    }
    by.into_values().collect()
}

/// The mean over windows of each window's packets per response (windows without a response
/// left out).
fn window_mean(windows: &[Window]) -> Option<f64> {
    let v: Vec<f64> = windows
        .iter()
        .filter_map(Window::packets_per_response)
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Switchback: B − A in the mean of the windows' packets per response, with an interval from
/// resampling the windows, not the connections (they share each window's conditions).
pub fn switchback(windows: &[Window]) -> Option<Difference> {
    let arm = |a: Arm| -> Vec<Window> { windows.iter().copied().filter(|w| w.arm == a).collect() };
    bootstrap_by(&arm(Arm::A), &arm(Arm::B), window_mean)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(arm: Arm, packets: u32, responses: u32) -> Conn {
        Conn {
            side: Some(Side::Server),
            arm: Some(arm),
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
        assert_eq!(packets(&d.conns[0]), 6);
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
        let a: Vec<Conn> = (0..20).map(|i| conn(Arm::A, 100 + i % 3, 20)).collect();
        let b: Vec<Conn> = (0..20).map(|i| conn(Arm::B, 40 + i % 3, 20)).collect();
        let (ra, rb): (Vec<&Conn>, Vec<&Conn>) = (a.iter().collect(), b.iter().collect());
        let d = bootstrap(&ra, &rb).unwrap();
        assert!((d.estimate - (-3.0)).abs() < 1e-9, "{}", d.estimate);
        assert!(d.low <= d.estimate && d.estimate <= d.high);
        assert!(d.significant());
        let same: Vec<Conn> = (0..20).map(|i| conn(Arm::B, 100 + i % 3, 20)).collect();
        let rs: Vec<&Conn> = same.iter().collect();
        let d = bootstrap(&ra, &rs).unwrap();
        assert!(!d.significant(), "{} {}", d.low, d.high);
    }

    #[test]
    fn switchback_compares_window_means_with_an_interval_from_the_windows() {
        let conns: Vec<Conn> = (0..8u64)
            .flat_map(|w| {
                let arm = if w % 2 == 1 { Arm::B } else { Arm::A };
                let per = if arm == Arm::B { 20 } else { 50 };
                (0..3).map(move |i| Conn {
                    window: Some(w),
                    ..conn(arm, per + i as u32, 10)
                })
            })
            .collect();
        let ws = windows(&conns);
        assert_eq!(ws.len(), 8);
        assert_eq!((ws[1].window, ws[1].arm, ws[1].responses), (1, Arm::B, 30));
        let d = switchback(&ws).unwrap();
        assert!((d.estimate - (-3.0)).abs() < 1e-9, "{}", d.estimate);
        assert!(d.significant() && d.low <= d.estimate && d.estimate <= d.high);
        // No windows: a per-connection split has nothing to give here.
        assert!(windows(
            &conns
                .iter()
                .map(|c| Conn {
                    window: None,
                    ..c.clone()
                })
                .collect::<Vec<_>>()
        )
        .is_empty());
    }

    #[test]
    fn groups_put_the_server_first_and_arm_a_before_b() {
        let mut c = conn(Arm::B, 4, 2);
        c.side = Some(Side::Client);
        let conns = vec![conn(Arm::B, 4, 2), c, conn(Arm::A, 10, 2)];
        let g = groups(&conns);
        let keys: Vec<_> = g.iter().map(|g| (g.role, g.arm)).collect();
        assert_eq!(
            keys,
            [
                (Side::Server, Some(Arm::A)),
                (Side::Server, Some(Arm::B)),
                (Side::Client, Some(Arm::B))
            ]
        );
    }
}
