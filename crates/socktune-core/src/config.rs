//! The one typed configuration, parsed once from `SOCKTUNE_*` variables.
//!
//! Parsing never fails as a whole: each bad value yields one message naming the variable and the
//! accepted forms, and only that behaviour is turned off.

use serde::Deserialize;
use std::fmt;

/// Raw values as envy finds them. Every field is a string so one bad value cannot reject the rest.
#[derive(Deserialize, Default)]
struct Raw {
    defer_accept: Option<String>,
    cork: Option<String>,
    cork_flush_ms: Option<String>,
    quickack: Option<String>,
    fastopen: Option<String>,
    fastopen_connect: Option<String>,
    nodelay: Option<String>,
    backlog: Option<String>,
    ports: Option<String>,
    role: Option<String>,
    cork_role: Option<String>,
    quickack_role: Option<String>,
    nodelay_role: Option<String>,
    log: Option<String>,
    log_file: Option<String>,
    stats: Option<String>,
    stats_prom: Option<String>,
    ab: Option<String>,
}

/// Every variable the shim reads, without the prefix. Anything else under the prefix is a typo.
pub const KNOWN: &[&str] = &[
    "DEFER_ACCEPT",
    "CORK",
    "CORK_FLUSH_MS",
    "QUICKACK",
    "FASTOPEN",
    "FASTOPEN_CONNECT",
    "NODELAY",
    "BACKLOG",
    "PORTS",
    "ROLE",
    "CORK_ROLE",
    "QUICKACK_ROLE",
    "NODELAY_ROLE",
    "LOG",
    "LOG_FILE",
    "STATS",
    "STATS_PROM",
    "AB",
];

pub const PREFIX: &str = "SOCKTUNE_";

/// Set by the first process of a tree that reported on a configuration, so that the processes it
/// starts (wrapper scripts exec several) do not repeat the same lines. Its value is
/// [`Parsed::fingerprint`]; a child with other settings reports again.
pub const REPORTED_VAR: &str = "SOCKTUNE__REPORTED";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Info,
    Debug,
}

/// Which side of a connection a two-sided behaviour applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
    Both,
}

impl Role {
    pub fn server(self) -> bool {
        self != Role::Client
    }
    pub fn client(self) -> bool {
        self != Role::Server
    }
}

/// Inclusive port ranges; `None` in [`Config::ports`] means every port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub defer_accept: Option<u32>,
    pub cork: bool,
    pub cork_flush_ms: u32,
    pub quickack_off: bool,
    pub fastopen: Option<u32>,
    pub fastopen_connect: bool,
    pub nodelay: bool,
    pub backlog: Option<i32>,
    pub ports: Option<PortSet>,
    pub cork_role: Role,
    pub quickack_role: Role,
    pub nodelay_role: Role,
    pub log: Level,
    pub log_file: Option<String>,
    /// JSON lines, one per TCP connection at close, appended here.
    pub stats: Option<String>,
    /// Prometheus textfile of the process tree's counters, rewritten within 0.1 s of a change.
    pub stats_prom: Option<String>,
    /// Percent of connections in arm B (behaviours on); the rest get none.
    pub ab: Option<u8>,
}

pub const DEFAULT_CORK_FLUSH_MS: u32 = 2;

impl Default for Config {
    fn default() -> Self {
        Config {
            defer_accept: None,
            cork: false,
            cork_flush_ms: DEFAULT_CORK_FLUSH_MS,
            quickack_off: false,
            fastopen: None,
            fastopen_connect: false,
            nodelay: false,
            backlog: None,
            ports: None,
            cork_role: Role::Both,
            quickack_role: Role::Both,
            nodelay_role: Role::Both,
            log: Level::Error,
            log_file: None,
            stats: None,
            stats_prom: None,
            ab: None,
        }
    }
}

impl Config {
    /// True when no behaviour is on, so the shim need track nothing.
    pub fn inert(&self) -> bool {
        self.defer_accept.is_none()
            && !self.cork
            && !self.quickack_off
            && self.fastopen.is_none()
            && !self.fastopen_connect
            && !self.nodelay
            && self.backlog.is_none()
            && !self.records()
    }

    /// Connections are recorded, so every TCP socket is tracked even with no behaviour on.
    pub fn records(&self) -> bool {
        self.stats.is_some() || self.stats_prom.is_some()
    }
}

/// A config plus the lines to print about it: errors for bad values, warnings for unknown names.
pub struct Parsed {
    pub config: Config,
    pub problems: Vec<String>,
    /// Identifies the `SOCKTUNE_*` settings (FNV-1a of the sorted pairs), in hex.
    pub fingerprint: String,
    /// The settings were already reported by an ancestor process.
    pub reported: bool,
}

/// Parses the `SOCKTUNE_*` subset of `vars`. Never panics, whatever the values.
pub fn parse<I: IntoIterator<Item = (String, String)>>(vars: I) -> Parsed {
    let mut reported_as = None;
    let mut ours: Vec<(String, String)> = Vec::new();
    for (k, v) in vars {
        if k == REPORTED_VAR {
            reported_as = Some(v);
        } else if k.starts_with(PREFIX) {
            ours.push((k, v));
        }
    }
    ours.sort();
    let fingerprint = fnv1a(&ours);
    let reported = reported_as.as_deref() == Some(fingerprint.as_str());
    let mut problems = Vec::new();
    for (name, _) in &ours {
        let bare = &name[PREFIX.len()..];
        if !KNOWN.contains(&bare) {
            problems.push(unknown_name_message(name));
        }
    }
    let raw: Raw = envy::prefixed(PREFIX).from_iter(ours).unwrap_or_default();
    let mut p = Checker {
        problems: &mut problems,
    };
    let shared_role = p
        .field(
            "ROLE",
            raw.role.as_deref(),
            parse_role,
            ROLE_FORMS,
            "the default role is used",
        )
        .unwrap_or(Role::Both);
    let role = |p: &mut Checker, name, value: Option<&str>| {
        p.field(
            name,
            value,
            parse_role,
            ROLE_FORMS,
            "the default role is used",
        )
        .unwrap_or(shared_role)
    };
    let config = Config {
        defer_accept: p
            .number(
                "DEFER_ACCEPT",
                raw.defer_accept.as_deref(),
                0..=3600,
                SECONDS_FORMS,
                "defer-accept is off",
            )
            .filter(|&s| s > 0),
        cork: p
            .boolean("CORK", raw.cork.as_deref(), "cork-per-response is off")
            .unwrap_or(false),
        cork_flush_ms: p
            .number(
                "CORK_FLUSH_MS",
                raw.cork_flush_ms.as_deref(),
                1..=200,
                FLUSH_FORMS,
                "the default of 2 ms is used",
            )
            .unwrap_or(DEFAULT_CORK_FLUSH_MS),
        quickack_off: p
            .boolean("QUICKACK", raw.quickack.as_deref(), "quickack-off is off")
            .map(|on| !on)
            .unwrap_or(false),
        fastopen: p
            .number(
                "FASTOPEN",
                raw.fastopen.as_deref(),
                0..=65535,
                QLEN_FORMS,
                "server Fast Open is off",
            )
            .filter(|&q| q > 0),
        fastopen_connect: p
            .boolean(
                "FASTOPEN_CONNECT",
                raw.fastopen_connect.as_deref(),
                "client Fast Open is off",
            )
            .unwrap_or(false),
        nodelay: p
            .boolean("NODELAY", raw.nodelay.as_deref(), "nodelay is off")
            .unwrap_or(false),
        backlog: p
            .number(
                "BACKLOG",
                raw.backlog.as_deref(),
                1..=i32::MAX as u32,
                BACKLOG_FORMS,
                "the program's own backlog is used",
            )
            .map(|b| b as i32),
        ports: p.field(
            "PORTS",
            raw.ports.as_deref(),
            parse_ports,
            PORTS_FORMS,
            "every behaviour is off",
        ),
        cork_role: role(&mut p, "CORK_ROLE", raw.cork_role.as_deref()),
        quickack_role: role(&mut p, "QUICKACK_ROLE", raw.quickack_role.as_deref()),
        nodelay_role: role(&mut p, "NODELAY_ROLE", raw.nodelay_role.as_deref()),
        log: p
            .field(
                "LOG",
                raw.log.as_deref(),
                parse_level,
                LEVEL_FORMS,
                "level error is used",
            )
            .unwrap_or(Level::Error),
        log_file: raw.log_file.filter(|f| !f.is_empty()),
        stats: raw.stats.filter(|f| !f.is_empty()),
        stats_prom: raw.stats_prom.filter(|f| !f.is_empty()),
        ab: p
            .number(
                "AB",
                raw.ab.as_deref(),
                0..=100,
                AB_FORMS,
                "there is no A/B split",
            )
            .map(|n| n as u8),
    };
    // A bad port list must not widen the scope to every port: switch everything off instead.
    let config = if raw.ports.is_some() && config.ports.is_none() {
        Config {
            log: config.log,
            log_file: config.log_file,
            stats: config.stats,
            stats_prom: config.stats_prom,
            ..Config::default()
        }
    } else {
        config
    };
    Parsed {
        config,
        problems,
        fingerprint,
        reported,
    }
}

fn fnv1a(pairs: &[(String, String)]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in pairs {
        for b in k.bytes().chain([b'=']).chain(v.bytes()).chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

const BOOL_FORMS: &str = "1/0, true/false, yes/no, on/off";
const SECONDS_FORMS: &str = "whole seconds from 0 to 3600";
const FLUSH_FORMS: &str = "whole milliseconds from 1 to 200";
const QLEN_FORMS: &str = "a queue length from 0 to 65535";
const BACKLOG_FORMS: &str = "a whole number from 1 to 2147483647";
const PORTS_FORMS: &str = "a comma list of ports and ranges, e.g. 80,8080,9000-9100";
const ROLE_FORMS: &str = "server, client or both";
const LEVEL_FORMS: &str = "error, info or debug";
const AB_FORMS: &str = "a whole percent from 0 to 100";

struct Checker<'a> {
    problems: &'a mut Vec<String>,
}

impl Checker<'_> {
    fn boolean(&mut self, name: &str, value: Option<&str>, consequence: &str) -> Option<bool> {
        self.field(name, value, parse_bool, BOOL_FORMS, consequence)
    }

    fn number(
        &mut self,
        name: &str,
        value: Option<&str>,
        range: std::ops::RangeInclusive<u32>,
        forms: &str,
        consequence: &str,
    ) -> Option<u32> {
        self.field(
            name,
            value,
            |v| parse_uint(v, *range.start(), *range.end()),
            forms,
            consequence,
        )
    }

    /// Parses one variable; on a bad value records one line and yields `None` (behaviour off).
    fn field<T>(
        &mut self,
        name: &str,
        value: Option<&str>,
        parse: impl Fn(&str) -> Option<T>,
        forms: &str,
        consequence: &str,
    ) -> Option<T> {
        let value = value?;
        let parsed = parse(value.trim());
        if parsed.is_none() {
            self.problems.push(format!(
                "socktune: {PREFIX}{name}={value:?} is not valid (accepted: {forms}); {consequence}"
            ));
        }
        parsed
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_uint(v: &str, min: u32, max: u32) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u32>().ok().filter(|n| (min..=max).contains(n))
}

fn parse_port(v: &str) -> Option<u16> {
    parse_uint(v.trim(), 1, 65535).map(|p| p as u16)
}

pub fn parse_ports(v: &str) -> Option<PortSet> {
    let mut ranges = Vec::new();
    for item in v.split(',') {
        let item = item.trim();
        let range = match item.split_once('-') {
            Some((lo, hi)) => (parse_port(lo)?, parse_port(hi)?),
            None => {
                let p = parse_port(item)?;
                (p, p)
            }
        };
        if range.0 > range.1 {
            return None;
        }
        ranges.push(range);
    }
    Some(PortSet(ranges))
}

fn parse_role(v: &str) -> Option<Role> {
    match v.to_ascii_lowercase().as_str() {
        "server" => Some(Role::Server),
        "client" => Some(Role::Client),
        "both" => Some(Role::Both),
        _ => None,
    }
}

fn parse_level(v: &str) -> Option<Level> {
    match v.to_ascii_lowercase().as_str() {
        "error" => Some(Level::Error),
        "info" => Some(Level::Info),
        "debug" => Some(Level::Debug),
        _ => None,
    }
}

fn unknown_name_message(name: &str) -> String {
    let bare = &name[PREFIX.len()..];
    let nearest = KNOWN
        .iter()
        .map(|k| (edit_distance(bare, k), k))
        .min()
        .filter(|(d, _)| *d <= 2);
    match nearest {
        Some((_, k)) => {
            format!("socktune: unknown variable {name} ignored (did you mean {PREFIX}{k}?)")
        }
        None => format!("socktune: unknown variable {name} ignored"),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(prev + usize::from(ca != *cb));
            prev = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Server => "server",
        Role::Client => "client",
        Role::Both => "both",
    }
}

/// The effective settings as one aligned block, for `SOCKTUNE_LOG=info`.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<u32>| v.map_or("off".to_string(), |n| n.to_string());
        let on = |b: bool| if b { "on" } else { "off" };
        writeln!(f, "socktune: effective settings")?;
        writeln!(f, "  defer_accept      {}", opt(self.defer_accept))?;
        writeln!(
            f,
            "  cork              {} (role {}, flush after {} ms)",
            on(self.cork),
            role_name(self.cork_role),
            self.cork_flush_ms
        )?;
        writeln!(
            f,
            "  quickack_off      {} (role {})",
            on(self.quickack_off),
            role_name(self.quickack_role)
        )?;
        writeln!(f, "  fastopen          {}", opt(self.fastopen))?;
        writeln!(f, "  fastopen_connect  {}", on(self.fastopen_connect))?;
        let implied = if self.cork && !self.nodelay {
            " (on for corked sockets: cork sets it)"
        } else {
            ""
        };
        writeln!(
            f,
            "  nodelay           {} (role {}){implied}",
            on(self.nodelay),
            role_name(self.nodelay_role)
        )?;
        writeln!(
            f,
            "  backlog           {}",
            opt(self.backlog.map(|b| b as u32))
        )?;
        match &self.ports {
            Some(PortSet(r)) => {
                let list: Vec<String> = r
                    .iter()
                    .map(|&(lo, hi)| {
                        if lo == hi {
                            lo.to_string()
                        } else {
                            format!("{lo}-{hi}")
                        }
                    })
                    .collect();
                writeln!(f, "  ports             {}", list.join(","))
            }
            None => writeln!(f, "  ports             all"),
        }?;
        let path = |p: &Option<String>| p.clone().unwrap_or_else(|| "off".to_string());
        writeln!(f, "  stats             {}", path(&self.stats))?;
        writeln!(f, "  stats_prom        {}", path(&self.stats_prom))?;
        match self.ab {
            Some(pct) => write!(f, "  ab                {pct}% of connections in arm B"),
            None => write!(f, "  ab                off"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Parsed {
        parse(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn empty_environment_is_inert() {
        let p = env(&[("PATH", "/bin"), ("HOME", "/root")]);
        assert!(p.config.inert());
        assert!(p.problems.is_empty());
    }

    #[test]
    fn every_boolean_form() {
        for (v, want) in [
            ("1", true),
            ("TRUE", true),
            ("yes", true),
            ("On", true),
            ("0", false),
            ("false", false),
            ("NO", false),
            ("off", false),
            (" on ", true),
        ] {
            let p = env(&[("SOCKTUNE_CORK", v)]);
            assert_eq!(p.config.cork, want, "value {v:?}");
            assert!(p.problems.is_empty(), "value {v:?}");
        }
    }

    #[test]
    fn bad_boolean_names_variable_and_forms_and_turns_off() {
        let p = env(&[("SOCKTUNE_CORK", "maybe"), ("SOCKTUNE_NODELAY", "1")]);
        assert!(!p.config.cork);
        assert!(p.config.nodelay, "other behaviours stay on");
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0].contains("SOCKTUNE_CORK=\"maybe\""));
        assert!(p.problems[0].contains("1/0, true/false, yes/no, on/off"));
    }

    #[test]
    fn quickack_zero_means_quickack_off_behaviour() {
        assert!(env(&[("SOCKTUNE_QUICKACK", "0")]).config.quickack_off);
        assert!(!env(&[("SOCKTUNE_QUICKACK", "1")]).config.quickack_off);
    }

    #[test]
    fn defer_accept_range() {
        assert_eq!(
            env(&[("SOCKTUNE_DEFER_ACCEPT", "5")]).config.defer_accept,
            Some(5)
        );
        assert_eq!(
            env(&[("SOCKTUNE_DEFER_ACCEPT", "0")]).config.defer_accept,
            None
        );
        for bad in ["-3", "5s", "", "99999", "1.5"] {
            let p = env(&[("SOCKTUNE_DEFER_ACCEPT", bad)]);
            assert_eq!(p.config.defer_accept, None, "{bad:?}");
            assert_eq!(p.problems.len(), 1, "{bad:?}");
            assert!(p.problems[0].contains("SOCKTUNE_DEFER_ACCEPT"));
        }
    }

    #[test]
    fn stats_alone_tracks_connections_and_ab_takes_a_percent() {
        let p = env(&[("SOCKTUNE_STATS", "/tmp/s.jsonl"), ("SOCKTUNE_AB", "50")]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert!(!p.config.inert());
        assert_eq!(p.config.ab, Some(50));
        for bad in ["101", "-1", "half", "50%"] {
            let p = env(&[("SOCKTUNE_AB", bad)]);
            assert_eq!(p.config.ab, None, "{bad:?}");
            assert!(p.problems[0].contains("SOCKTUNE_AB"), "{bad:?}");
        }
    }

    #[test]
    fn ports_lists_and_ranges() {
        let set = parse_ports("80, 8080,9000-9100").unwrap();
        for p in [80, 8080, 9000, 9050, 9100] {
            assert!(set.contains(p), "{p}");
        }
        for p in [81, 8999, 9101, 443] {
            assert!(!set.contains(p), "{p}");
        }
        for bad in ["80-abc", "", "0", "65536", "90-80", "80,,81", "-5"] {
            assert!(parse_ports(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn bad_ports_turn_every_behaviour_off_rather_than_widening() {
        let p = env(&[
            ("SOCKTUNE_PORTS", "80-abc"),
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_LOG", "debug"),
        ]);
        assert!(p.config.inert());
        assert_eq!(p.config.log, Level::Debug);
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0].contains("SOCKTUNE_PORTS"));
    }

    #[test]
    fn unknown_names_are_warned_with_a_suggestion() {
        let p = env(&[("SOCKTUNE_CORKK", "1")]);
        assert_eq!(p.problems.len(), 1);
        assert!(p.problems[0].contains("SOCKTUNE_CORKK"));
        assert!(p.problems[0].contains("did you mean SOCKTUNE_CORK?"));
        let far = env(&[("SOCKTUNE_WHATEVER", "1")]);
        assert!(!far.problems[0].contains("did you mean"));
    }

    #[test]
    fn a_tree_reports_once_per_configuration() {
        let first = env(&[("SOCKTUNE_CORK", "maybe")]);
        assert!(!first.reported);
        let child = env(&[
            ("SOCKTUNE_CORK", "maybe"),
            (REPORTED_VAR, &first.fingerprint),
        ]);
        assert!(child.reported);
        assert!(
            child.problems.len() == 1,
            "the marker itself is not an unknown name"
        );
        let changed = env(&[("SOCKTUNE_CORK", "1"), (REPORTED_VAR, &first.fingerprint)]);
        assert!(!changed.reported);
    }

    #[test]
    fn roles_default_to_shared_role() {
        let p = env(&[
            ("SOCKTUNE_ROLE", "client"),
            ("SOCKTUNE_CORK_ROLE", "server"),
        ]);
        assert_eq!(p.config.cork_role, Role::Server);
        assert_eq!(p.config.quickack_role, Role::Client);
        assert!(!Role::Client.server() && Role::Client.client() && Role::Both.server());
    }

    #[test]
    fn values_with_odd_bytes_never_panic() {
        let samples = [
            "\u{0}",
            "💥",
            "9".repeat(400).as_str().to_owned().leak(),
            "1-",
            ",",
            "-",
            "0x10",
            "+1",
            " ",
            "\t1\n",
        ];
        for name in KNOWN {
            for v in samples {
                let _ = env(&[(&format!("SOCKTUNE_{name}"), v)]);
            }
        }
    }

    #[test]
    fn display_lists_every_setting() {
        let p = env(&[("SOCKTUNE_CORK", "1"), ("SOCKTUNE_PORTS", "80,9000-9100")]);
        let text = p.config.to_string();
        assert!(text.contains("cork              on"));
        assert!(text.contains("ports             80,9000-9100"));
        assert!(
            text.contains("on for corked sockets"),
            "cork implies nodelay: {text}"
        );
    }

    /// Every problem line word for word, in one order whatever the environment's: unknown names
    /// first, then the settings in the order they are read.
    #[test]
    fn every_problem_line_word_for_word() {
        let bad = [
            "AB",
            "LOG",
            "NODELAY_ROLE",
            "QUICKACK_ROLE",
            "CORK_ROLE",
            "PORTS",
            "BACKLOG",
            "NODELAY",
            "FASTOPEN_CONNECT",
            "FASTOPEN",
            "QUICKACK",
            "CORK_FLUSH_MS",
            "CORK",
            "DEFER_ACCEPT",
            "ROLE",
        ];
        let vars = bad
            .iter()
            .map(|k| (format!("{PREFIX}{k}"), "x".to_string()))
            .chain([
                ("SOCKTUNE_CORKK".to_string(), "1".to_string()),
                ("SOCKTUNE_WHATEVER".to_string(), "1".to_string()),
            ]);
        let want = [
            "socktune: unknown variable SOCKTUNE_CORKK ignored (did you mean SOCKTUNE_CORK?)",
            "socktune: unknown variable SOCKTUNE_WHATEVER ignored",
            r#"socktune: SOCKTUNE_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_DEFER_ACCEPT="x" is not valid (accepted: whole seconds from 0 to 3600); defer-accept is off"#,
            r#"socktune: SOCKTUNE_CORK="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); cork-per-response is off"#,
            r#"socktune: SOCKTUNE_CORK_FLUSH_MS="x" is not valid (accepted: whole milliseconds from 1 to 200); the default of 2 ms is used"#,
            r#"socktune: SOCKTUNE_QUICKACK="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); quickack-off is off"#,
            r#"socktune: SOCKTUNE_FASTOPEN="x" is not valid (accepted: a queue length from 0 to 65535); server Fast Open is off"#,
            r#"socktune: SOCKTUNE_FASTOPEN_CONNECT="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); client Fast Open is off"#,
            r#"socktune: SOCKTUNE_NODELAY="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); nodelay is off"#,
            r#"socktune: SOCKTUNE_BACKLOG="x" is not valid (accepted: a whole number from 1 to 2147483647); the program's own backlog is used"#,
            r#"socktune: SOCKTUNE_PORTS="x" is not valid (accepted: a comma list of ports and ranges, e.g. 80,8080,9000-9100); every behaviour is off"#,
            r#"socktune: SOCKTUNE_CORK_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_QUICKACK_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_NODELAY_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_LOG="x" is not valid (accepted: error, info or debug); level error is used"#,
            r#"socktune: SOCKTUNE_AB="x" is not valid (accepted: a whole percent from 0 to 100); there is no A/B split"#,
        ];
        assert_eq!(parse(vars).problems, want);
    }

    #[test]
    fn effective_settings_word_for_word() {
        let defaults = "\
socktune: effective settings
  defer_accept      off
  cork              off (role both, flush after 2 ms)
  quickack_off      off (role both)
  fastopen          off
  fastopen_connect  off
  nodelay           off (role both)
  backlog           off
  ports             all
  stats             off
  stats_prom        off
  ab                off";
        assert_eq!(Config::default().to_string(), defaults);
        let p = env(&[
            ("SOCKTUNE_DEFER_ACCEPT", "5"),
            ("SOCKTUNE_CORK", "1"),
            ("SOCKTUNE_CORK_FLUSH_MS", "7"),
            ("SOCKTUNE_QUICKACK", "0"),
            ("SOCKTUNE_FASTOPEN", "16"),
            ("SOCKTUNE_FASTOPEN_CONNECT", "1"),
            ("SOCKTUNE_BACKLOG", "64"),
            ("SOCKTUNE_PORTS", "80,8000-8100"),
            ("SOCKTUNE_ROLE", "client"),
            ("SOCKTUNE_NODELAY_ROLE", "server"),
            ("SOCKTUNE_STATS", "/tmp/s.jsonl"),
            ("SOCKTUNE_STATS_PROM", "/tmp/s.prom"),
            ("SOCKTUNE_AB", "50"),
            ("SOCKTUNE_LOG", "debug"),
            ("SOCKTUNE_LOG_FILE", "/tmp/l"),
        ]);
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        let everything = "\
socktune: effective settings
  defer_accept      5
  cork              on (role client, flush after 7 ms)
  quickack_off      on (role client)
  fastopen          16
  fastopen_connect  on
  nodelay           off (role server) (on for corked sockets: cork sets it)
  backlog           64
  ports             80,8000-8100
  stats             /tmp/s.jsonl
  stats_prom        /tmp/s.prom
  ab                50% of connections in arm B";
        assert_eq!(p.config.to_string(), everything);
        let nodelay = env(&[("SOCKTUNE_NODELAY", "1")]).config.to_string();
        assert!(
            nodelay.contains("\n  nodelay           on (role both)\n"),
            "{nodelay}"
        );
    }

    /// Property tests over arbitrary names and values (proptest; 1000 cases each, well under a
    /// second in release).
    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::select;

        /// Valid settings for every variable, so that any problem comes from the one changed.
        const GOOD: &[(&str, &str)] = &[
            ("DEFER_ACCEPT", "5"),
            ("CORK", "1"),
            ("CORK_FLUSH_MS", "3"),
            ("QUICKACK", "0"),
            ("FASTOPEN", "16"),
            ("FASTOPEN_CONNECT", "yes"),
            ("NODELAY", "on"),
            ("BACKLOG", "64"),
            ("PORTS", "80,8000-8100"),
            ("ROLE", "server"),
            ("CORK_ROLE", "both"),
            ("QUICKACK_ROLE", "client"),
            ("NODELAY_ROLE", "both"),
            ("LOG", "info"),
            ("LOG_FILE", "/tmp/socktune.log"),
            ("STATS", "/tmp/socktune.jsonl"),
            ("STATS_PROM", "/tmp/socktune.prom"),
            ("AB", "50"),
        ];

        /// Each variable's effect on the config, by variable name.
        fn effects(c: &Config) -> Vec<(&'static str, String)> {
            vec![
                ("DEFER_ACCEPT", format!("{:?}", c.defer_accept)),
                ("CORK", format!("{:?}", c.cork)),
                ("CORK_FLUSH_MS", format!("{:?}", c.cork_flush_ms)),
                ("QUICKACK", format!("{:?}", c.quickack_off)),
                ("FASTOPEN", format!("{:?}", c.fastopen)),
                ("FASTOPEN_CONNECT", format!("{:?}", c.fastopen_connect)),
                ("NODELAY", format!("{:?}", c.nodelay)),
                ("BACKLOG", format!("{:?}", c.backlog)),
                ("PORTS", format!("{:?}", c.ports)),
                ("CORK_ROLE", format!("{:?}", c.cork_role)),
                ("QUICKACK_ROLE", format!("{:?}", c.quickack_role)),
                ("NODELAY_ROLE", format!("{:?}", c.nodelay_role)),
                ("LOG", format!("{:?}", c.log)),
                ("LOG_FILE", format!("{:?}", c.log_file)),
                ("STATS", format!("{:?}", c.stats)),
                ("STATS_PROM", format!("{:?}", c.stats_prom)),
                ("AB", format!("{:?}", c.ab)),
            ]
        }

        /// Values: anything, digits and separators, and near-misses of the accepted forms.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[0-9 ,\\-+x.]{0,12}",
                select(
                    &[
                        "1",
                        "0",
                        "on",
                        "OFF",
                        "maybe",
                        "",
                        " ",
                        "-1",
                        "65536",
                        "4294967296"
                    ][..]
                )
                .prop_map(String::from),
            ]
        }

        /// Names: ours, near-misses of ours, and anything at all.
        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                select(KNOWN).prop_map(|k| format!("{PREFIX}{k}")),
                "[A-Z_]{0,14}".prop_map(|k| format!("{PREFIX}{k}")),
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn any_environment_parses_and_every_problem_is_one_named_line(
                vars in proptest::collection::vec((name(), value()), 0..10)
            ) {
                let p = parse(vars.clone());
                for line in &p.problems {
                    prop_assert!(line.starts_with("socktune: ") && !line.contains('\n'), "{line:?}");
                    prop_assert!(
                        vars.iter().any(|(k, _)| k.starts_with(PREFIX) && line.contains(k.as_str())),
                        "{line:?} names none of {vars:?}"
                    );
                }
            }

            #[test]
            fn a_bad_value_turns_off_only_its_own_behaviour(
                changed in select(KNOWN), v in value()
            ) {
                let env = |changed_to: Option<&str>| {
                    parse(GOOD.iter().map(|(k, good)| {
                        let v = if *k == changed { changed_to.unwrap_or(good) } else { good };
                        (format!("{PREFIX}{k}"), v.to_string())
                    }))
                };
                let (good, p) = (env(None), env(Some(&v)));
                prop_assert!(good.problems.is_empty(), "{:?}", good.problems);
                let named = format!("{PREFIX}{changed}=");
                prop_assert!(p.problems.len() <= 1, "{:?}", p.problems);
                if let Some(line) = p.problems.first() {
                    prop_assert!(line.starts_with(&format!("socktune: {named}")), "{line:?}");
                    if changed == "PORTS" {
                        // A bad port list switches every behaviour off rather than widening.
                        prop_assert!(!p.config.cork && p.config.defer_accept.is_none());
                        return Ok(());
                    }
                }
                // The shared role is the default of the three per-behaviour roles, all set here.
                for ((var, want), (_, got)) in effects(&good.config).iter().zip(effects(&p.config)) {
                    if *var != changed {
                        prop_assert_eq!(want, &got, "{} changed by {}{}={:?}", var, PREFIX, changed, v);
                    }
                }
            }
        }
    }
}
