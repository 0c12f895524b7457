//! The one typed configuration, parsed once from `SOCKTUNE_*` variables.
//!
//! Each variable is one entry of [`SETTINGS`]: the values it takes and where a good one goes in
//! [`Config`], its line in the effective settings, and what the launcher's flags and the man page
//! say of it. Parsing never fails as a whole: each bad value yields one message naming the
//! variable and the accepted forms, and only that behaviour is turned off.

use std::fmt;

pub const PREFIX: &str = "SOCKTUNE_";

/// Set by the first process of a tree that reported on a configuration, so that the processes it
/// starts (wrapper scripts exec several) do not repeat the same lines. Its value is
/// [`Parsed::fingerprint`]; a child with other settings reports again.
pub const REPORTED_VAR: &str = "SOCKTUNE__REPORTED";

/// Whether a child exec'd with an environment of the program's own choosing gets `LD_PRELOAD`
/// and the `SOCKTUNE_*` variables back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inherit {
    /// The child gets the environment the program chose.
    Chosen,
    /// They are put back, for daemons that scrub their environment before exec'ing workers;
    /// never once the process's user or group changed.
    Always,
}

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
    /// Switchback: every new connection of the tree takes the arm of the current window of
    /// this many seconds; `None`, each connection draws its own.
    pub ab_window_s: Option<u32>,
    pub inherit: Inherit,
    /// The socket options set once per socket, scoped by `ports` and `opts_role`.
    pub opts: Opts,
    pub opts_role: Role,
    /// What wins over the program's own setsockopt: bit i for `FORCE_NAMES[i]`.
    pub force: u32,
    /// The rules file (`SOCKTUNE_CONFIG`).
    pub rules_file: Option<String>,
    /// A control file for `socktune ctl` (only while some behaviour or recording is on).
    pub ctl: bool,
}

/// `SOCKTUNE_KEEPALIVE`: seconds idle before the first probe, then the kernel's defaults (or
/// these) for the interval and the probe count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: u32,
    pub interval: Option<u32>,
    pub count: Option<u32>,
}

/// The values of the per-socket options; `None` leaves the kernel's.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Opts {
    pub keepalive: Option<Keepalive>,
    pub user_timeout: Option<u32>,
    pub syncnt: Option<u32>,
    pub congestion: Option<String>,
    pub notsent_lowat: Option<u32>,
    pub sndbuf: Option<u32>,
    pub rcvbuf: Option<u32>,
    pub tos: Option<u32>,
    pub mark: Option<u32>,
    pub priority: Option<u32>,
    pub maxseg: Option<u32>,
}

/// One per-socket option; its place in [`Opt::ALL`] is its bit in the fd state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    Keepalive,
    UserTimeout,
    Syncnt,
    Congestion,
    NotsentLowat,
    Sndbuf,
    Rcvbuf,
    Tos,
    Mark,
    Priority,
    Maxseg,
}

/// When socktune sets an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// On accepted sockets, and on connecting ones before connect().
    Connection,
    /// On listeners before listen() (accepted sockets inherit it), and before connect(): it
    /// shapes the handshake.
    Handshake,
    /// Before connect() only.
    Connecting,
}

impl Opt {
    pub const ALL: [Opt; 11] = [
        Opt::Keepalive,
        Opt::UserTimeout,
        Opt::Syncnt,
        Opt::Congestion,
        Opt::NotsentLowat,
        Opt::Sndbuf,
        Opt::Rcvbuf,
        Opt::Tos,
        Opt::Mark,
        Opt::Priority,
        Opt::Maxseg,
    ];

    /// Its key in a rules file and its word in `SOCKTUNE_FORCE`.
    pub fn name(self) -> &'static str {
        match self {
            Opt::Keepalive => "keepalive",
            Opt::UserTimeout => "user_timeout",
            Opt::Syncnt => "syncnt",
            Opt::Congestion => "congestion",
            Opt::NotsentLowat => "notsent_lowat",
            Opt::Sndbuf => "sndbuf",
            Opt::Rcvbuf => "rcvbuf",
            Opt::Tos => "tos",
            Opt::Mark => "mark",
            Opt::Priority => "priority",
            Opt::Maxseg => "maxseg",
        }
    }

    pub fn when(self) -> When {
        match self {
            Opt::Syncnt => When::Connecting,
            Opt::Sndbuf | Opt::Rcvbuf | Opt::Maxseg => When::Handshake,
            _ => When::Connection,
        }
    }

    pub fn is_set(self, o: &Opts) -> bool {
        match self {
            Opt::Keepalive => o.keepalive.is_some(),
            Opt::Congestion => o.congestion.is_some(),
            _ => self.number(o).is_some(),
        }
    }

    /// The value of an option that is one number.
    pub fn number(self, o: &Opts) -> Option<u32> {
        match self {
            Opt::Keepalive | Opt::Congestion => None,
            Opt::UserTimeout => o.user_timeout,
            Opt::Syncnt => o.syncnt,
            Opt::NotsentLowat => o.notsent_lowat,
            Opt::Sndbuf => o.sndbuf,
            Opt::Rcvbuf => o.rcvbuf,
            Opt::Tos => o.tos,
            Opt::Mark => o.mark,
            Opt::Priority => o.priority,
            Opt::Maxseg => o.maxseg,
        }
    }

    /// Its bit in [`Config::force`], for the options `SOCKTUNE_FORCE` takes.
    pub fn force_bit(self) -> u32 {
        force_bit(self.name())
    }
}

/// The settings `SOCKTUNE_FORCE` takes, in the order of its bits.
pub const FORCE_NAMES: &[&str] = &[
    "nodelay",
    "cork",
    "quickack",
    "keepalive",
    "user_timeout",
    "congestion",
    "sndbuf",
    "rcvbuf",
    "tos",
    "mark",
    "priority",
    "maxseg",
];

/// The bit of `name` in [`Config::force`]; 0 for a name it does not take.
pub const fn force_bit(name: &str) -> u32 {
    let mut i = 0;
    while i < FORCE_NAMES.len() {
        if const_eq(FORCE_NAMES[i], name) {
            return 1 << i;
        }
        i += 1;
    }
    0
}

const fn const_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

pub const FORCE_NODELAY: u32 = force_bit("nodelay");
pub const FORCE_CORK: u32 = force_bit("cork");
pub const FORCE_QUICKACK: u32 = force_bit("quickack");

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
            ab_window_s: None,
            inherit: Inherit::Chosen,
            opts: Opts::default(),
            opts_role: Role::Both,
            force: 0,
            rules_file: None,
            ctl: true,
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
            && self.opts == Opts::default()
            && self.rules_file.is_none()
            && !self.records()
    }

    /// Connections are recorded, so every TCP socket is tracked even with no behaviour on.
    pub fn records(&self) -> bool {
        self.stats.is_some() || self.stats_prom.is_some()
    }
}

/// One `SOCKTUNE_*` variable: all that the parser, the launcher and the docs know of it.
pub struct Setting {
    /// The variable without the prefix.
    pub name: &'static str,
    pub kind: Kind,
    /// The default, as the docs say it.
    pub default: &'static str,
    pub part: Part,
    /// Its line in the effective settings, unless another line shows it.
    pub effective: Option<Line>,
    /// How the launcher's flag takes its value.
    pub arg: Arg,
    /// What it does, for `--help` and the man page.
    pub help: &'static str,
}

/// A line of the effective settings: its label, and its value in a config.
pub type Line = (&'static str, fn(&Config) -> String);

/// The values a setting takes, where a good one goes in [`Config`], and for the kinds that can
/// be bad, what a bad one leaves (the end of its error line).
pub enum Kind {
    /// 1/0, true/false, yes/no, on/off, in any case.
    Bool {
        set: fn(&mut Config, bool),
        if_bad: &'static str,
    },
    /// Decimal digits only, from `min` to `max`, or 0 too where it switches the setting off;
    /// `unit` names them in the accepted forms.
    Number {
        min: u32,
        max: u32,
        zero_is_off: bool,
        unit: &'static str,
        set: fn(&mut Config, u32),
        if_bad: &'static str,
    },
    /// Ports and inclusive ranges, comma-separated.
    Ports {
        set: fn(&mut Config, PortSet),
        if_bad: &'static str,
    },
    Role {
        set: fn(&mut Config, Role),
        if_bad: &'static str,
    },
    Level {
        set: fn(&mut Config, Level),
        if_bad: &'static str,
    },
    /// Any text; an empty one leaves the setting unset.
    Path { set: fn(&mut Config, String) },
    /// `idle[:interval[:count]]`, or 0 for off.
    Keepalive {
        set: fn(&mut Config, Option<Keepalive>),
        if_bad: &'static str,
    },
    /// A kernel name: 1 to 15 lower-case letters, digits, `_` or `-`.
    Name {
        set: fn(&mut Config, String),
        if_bad: &'static str,
    },
    /// A comma list of some of `names`, in any case, or `none`; `set` gets bit i for `names[i]`.
    List {
        names: &'static [&'static str],
        set: fn(&mut Config, u32),
        if_bad: &'static str,
    },
    /// Text of a form of its own (`forms` says it, `example` is one): `set` reads it into the
    /// config, or says it is bad.
    Text {
        forms: &'static str,
        example: &'static str,
        set: fn(&mut Config, &str) -> bool,
        if_bad: &'static str,
    },
    /// One of `names`, in any case; `set` gets its index.
    Choice {
        names: &'static [&'static str],
        set: fn(&mut Config, usize),
        if_bad: &'static str,
    },
}

/// What a bad `SOCKTUNE_PORTS` does to a setting.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Switched off with every other behaviour, so that the bad list cannot widen it to all
    /// ports.
    Behaviour,
    /// Logs and stats: kept as set.
    Output,
}

/// How the launcher's flag for a setting takes its value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// `--cork` sets 1; `--cork=off` takes any boolean form.
    Switch,
    /// `--backlog N` or `--backlog=N`; the text is the placeholder the help shows.
    Value(&'static str),
    /// A file path, made absolute so that the program finds it whatever directory it runs in.
    Path,
}

const BOOL_FORMS: &str = "1/0, true/false, yes/no, on/off";
const ROLE_IF_BAD: &str = "the default role is used";

/// Every variable the shim reads, in the order they are read: the shared role comes first since
/// it is the default of the three per-behaviour roles. The effective settings show the lines in
/// this order too.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "ROLE",
        kind: Kind::Role {
            set: |c, role| {
                c.cork_role = role;
                c.quickack_role = role;
                c.nodelay_role = role;
                c.opts_role = role;
            },
            if_bad: ROLE_IF_BAD,
        },
        default: "both",
        part: Part::Behaviour,
        effective: None,
        arg: Arg::Value("server|client|both"),
        help: "which sides cork, quickack, nodelay and the socket options (keepalive to maxseg) \
               apply to: accepted sockets (server), connected ones (client), or both",
    },
    Setting {
        name: "DEFER_ACCEPT",
        kind: Kind::Number {
            min: 1,
            max: 3600,
            zero_is_off: true,
            unit: "whole seconds",
            set: |c, secs| c.defer_accept = Some(secs).filter(|&s| s > 0),
            if_bad: "defer-accept is off",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("defer_accept", |c| number_or_off(c.defer_accept))),
        arg: Arg::Value("SECS"),
        help: "TCP_DEFER_ACCEPT on listeners, so accept() returns once the client has sent data \
               (only for protocols where the client speaks first)",
    },
    Setting {
        name: "CORK",
        kind: Kind::Bool {
            set: |c, on| c.cork = on,
            if_bad: "cork-per-response is off",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("cork", |c| {
            format!(
                "{} (role {}, flush after {} ms)",
                on_off(c.cork),
                role_name(c.cork_role),
                c.cork_flush_ms
            )
        })),
        arg: Arg::Switch,
        help: "corks per response, so each response leaves as full segments, released when the \
               program reads the connection again, waits for events, shuts it down or closes it",
    },
    Setting {
        name: "CORK_FLUSH_MS",
        kind: Kind::Number {
            min: 1,
            max: 200,
            zero_is_off: false,
            unit: "whole milliseconds",
            set: |c, ms| c.cork_flush_ms = ms,
            if_bad: "the default of 2 ms is used",
        },
        default: "2",
        part: Part::Behaviour,
        effective: None,
        arg: Arg::Value("MS"),
        help: "the longest corked data waits when no response boundary comes",
    },
    Setting {
        name: "QUICKACK",
        kind: Kind::Bool {
            set: |c, on| c.quickack_off = !on,
            if_bad: "quickack-off is off",
        },
        default: "on",
        part: Part::Behaviour,
        effective: Some(("quickack_off", |c| {
            format!(
                "{} (role {})",
                on_off(c.quickack_off),
                role_name(c.quickack_role)
            )
        })),
        arg: Arg::Value("off|on"),
        help: "off makes ACKs ride on the next data (a request's ACK on its response) instead \
               of leaving at once",
    },
    Setting {
        name: "FASTOPEN",
        kind: Kind::Number {
            min: 1,
            max: 65535,
            zero_is_off: true,
            unit: "a queue length",
            set: |c, qlen| c.fastopen = Some(qlen).filter(|&q| q > 0),
            if_bad: "server Fast Open is off",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("fastopen", |c| number_or_off(c.fastopen))),
        arg: Arg::Value("QLEN"),
        help: "server TCP Fast Open on listeners, with this queue length (needs bit 2 of \
               net.ipv4.tcp_fastopen); data in a SYN may be replayed, so for idempotent \
               requests only",
    },
    Setting {
        name: "FASTOPEN_CONNECT",
        kind: Kind::Bool {
            set: |c, on| c.fastopen_connect = on,
            if_bad: "client Fast Open is off",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("fastopen_connect", |c| on_off(c.fastopen_connect).into())),
        arg: Arg::Switch,
        help: "client TCP Fast Open, so that once a cookie is cached the first write rides in \
               the SYN (needs bit 1 of net.ipv4.tcp_fastopen)",
    },
    Setting {
        name: "NODELAY",
        kind: Kind::Bool {
            set: |c, on| c.nodelay = on,
            if_bad: "nodelay is off",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("nodelay", |c| {
            let implied = if c.cork && !c.nodelay {
                " (on for corked sockets: cork sets it)"
            } else {
                ""
            };
            let role = role_name(c.nodelay_role);
            format!("{} (role {role}){implied}", on_off(c.nodelay))
        })),
        arg: Arg::Switch,
        help: "TCP_NODELAY on accepted and connected sockets",
    },
    Setting {
        name: "BACKLOG",
        kind: Kind::Number {
            min: 1,
            max: i32::MAX as u32,
            zero_is_off: false,
            unit: "a whole number",
            set: |c, n| c.backlog = Some(n as i32),
            if_bad: "the program's own backlog is used",
        },
        default: "the program's",
        part: Part::Behaviour,
        effective: Some(("backlog", |c| number_or_off(c.backlog.map(|b| b as u32)))),
        arg: Arg::Value("N"),
        help: "replaces the listen() backlog (the kernel clamps it to net.core.somaxconn)",
    },
    Setting {
        name: "PORTS",
        kind: Kind::Ports {
            set: |c, ports| c.ports = Some(ports),
            if_bad: "every behaviour is off",
        },
        default: "all",
        part: Part::Behaviour,
        effective: Some(("ports", |c| {
            c.ports.as_ref().map_or("all".into(), PortSet::to_string)
        })),
        arg: Arg::Value("LIST"),
        help: "limits every behaviour to these ports (the local port for accepted sockets, the \
               remote port for connected ones)",
    },
    Setting {
        name: "CORK_ROLE",
        kind: Kind::Role {
            set: |c, role| c.cork_role = role,
            if_bad: ROLE_IF_BAD,
        },
        default: "the shared role",
        part: Part::Behaviour,
        effective: None,
        arg: Arg::Value("server|client|both"),
        help: "the role (--role) of cork alone",
    },
    Setting {
        name: "QUICKACK_ROLE",
        kind: Kind::Role {
            set: |c, role| c.quickack_role = role,
            if_bad: ROLE_IF_BAD,
        },
        default: "the shared role",
        part: Part::Behaviour,
        effective: None,
        arg: Arg::Value("server|client|both"),
        help: "the role (--role) of quickack alone",
    },
    Setting {
        name: "NODELAY_ROLE",
        kind: Kind::Role {
            set: |c, role| c.nodelay_role = role,
            if_bad: ROLE_IF_BAD,
        },
        default: "the shared role",
        part: Part::Behaviour,
        effective: None,
        arg: Arg::Value("server|client|both"),
        help: "the role (--role) of nodelay alone",
    },
    Setting {
        name: "KEEPALIVE",
        kind: Kind::Keepalive {
            set: |c, k| c.opts.keepalive = k,
            if_bad: "keepalive is left to the program",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("keepalive", |c| {
            opt_line(c, c.opts.keepalive.map(|k| k.to_string()))
        })),
        arg: Arg::Value("IDLE[:INTVL[:CNT]]"),
        help: "SO_KEEPALIVE on accepted and connected sockets, probing after IDLE seconds of \
               silence, then every INTVL seconds, giving up after CNT unanswered probes (the \
               kernel's defaults where left out)",
    },
    Setting {
        name: "USER_TIMEOUT",
        kind: Kind::Number {
            min: 1,
            max: i32::MAX as u32,
            zero_is_off: true,
            unit: "whole milliseconds",
            set: |c, ms| c.opts.user_timeout = Some(ms).filter(|&m| m > 0),
            if_bad: "the user timeout is left to the program",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("user_timeout", |c| opt_number(c, Opt::UserTimeout))),
        arg: Arg::Value("MS"),
        help: "TCP_USER_TIMEOUT on accepted and connected sockets: a connection whose sent data \
               stays unacknowledged this long is aborted (keepalive does not fire while data is \
               queued)",
    },
    Setting {
        name: "SYNCNT",
        kind: Kind::Number {
            min: 1,
            max: 127,
            zero_is_off: false,
            unit: "a count",
            set: |c, n| c.opts.syncnt = Some(n),
            if_bad: "the kernel's SYN retries are used",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("syncnt", |c| opt_number(c, Opt::Syncnt))),
        arg: Arg::Value("N"),
        help: "TCP_SYNCNT on connecting sockets: SYN retransmits before connect() gives up",
    },
    Setting {
        name: "CONGESTION",
        kind: Kind::Name {
            set: |c, name| c.opts.congestion = Some(name),
            if_bad: "the kernel's congestion control is used",
        },
        default: "the kernel's",
        part: Part::Behaviour,
        effective: Some(("congestion", |c| opt_line(c, c.opts.congestion.clone()))),
        arg: Arg::Value("NAME"),
        help: "TCP_CONGESTION on accepted and connected sockets (one of \
               net.ipv4.tcp_allowed_congestion_control, e.g. cubic, reno or bbr; another is \
               reported once and skipped)",
    },
    Setting {
        name: "NOTSENT_LOWAT",
        kind: Kind::Number {
            min: 1,
            max: i32::MAX as u32,
            zero_is_off: false,
            unit: "bytes",
            set: |c, n| c.opts.notsent_lowat = Some(n),
            if_bad: "the kernel's limit is used",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("notsent_lowat", |c| opt_number(c, Opt::NotsentLowat))),
        arg: Arg::Value("BYTES"),
        help: "TCP_NOTSENT_LOWAT on accepted and connected sockets: the socket polls writable \
               only while less than this is queued unsent",
    },
    Setting {
        name: "SNDBUF",
        kind: Kind::Number {
            min: 1,
            max: BUF_MAX,
            zero_is_off: false,
            unit: "bytes",
            set: |c, n| c.opts.sndbuf = Some(n),
            if_bad: "the kernel's send buffer is used",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("sndbuf", |c| opt_number(c, Opt::Sndbuf))),
        arg: Arg::Value("BYTES"),
        help: "SO_SNDBUF on listeners (accepted sockets inherit it) and connecting sockets; the \
               kernel clamps it to net.core.wmem_max and doubles it",
    },
    Setting {
        name: "RCVBUF",
        kind: Kind::Number {
            min: 1,
            max: BUF_MAX,
            zero_is_off: false,
            unit: "bytes",
            set: |c, n| c.opts.rcvbuf = Some(n),
            if_bad: "the kernel's receive buffer is used",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("rcvbuf", |c| opt_number(c, Opt::Rcvbuf))),
        arg: Arg::Value("BYTES"),
        help: "SO_RCVBUF on listeners (accepted sockets inherit it) and connecting sockets, \
               before the handshake fixes the window scale; the kernel clamps it to \
               net.core.rmem_max and doubles it",
    },
    Setting {
        name: "TOS",
        kind: Kind::Number {
            min: 0,
            max: 255,
            zero_is_off: false,
            unit: "a byte",
            set: |c, n| c.opts.tos = Some(n),
            if_bad: "the TOS byte is left to the program",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("tos", |c| opt_number(c, Opt::Tos))),
        arg: Arg::Value("BYTE"),
        help: "IP_TOS on accepted and connected sockets, and IPV6_TCLASS too on IPv6 ones (whose \
               IPv4-mapped peers take IP_TOS): DSCP << 2 | ECN",
    },
    Setting {
        name: "MARK",
        kind: Kind::Number {
            min: 0,
            max: u32::MAX,
            zero_is_off: false,
            unit: "a number",
            set: |c, n| c.opts.mark = Some(n),
            if_bad: "no mark is set",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("mark", |c| opt_number(c, Opt::Mark))),
        arg: Arg::Value("N"),
        help: "SO_MARK on accepted and connected sockets, for policy routing and firewall rules \
               (needs CAP_NET_ADMIN; a refusal is reported once)",
    },
    Setting {
        name: "PRIORITY",
        kind: Kind::Number {
            min: 0,
            max: 6,
            zero_is_off: false,
            unit: "a priority",
            set: |c, n| c.opts.priority = Some(n),
            if_bad: "the priority is left to the program",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("priority", |c| opt_number(c, Opt::Priority))),
        arg: Arg::Value("N"),
        help: "SO_PRIORITY on accepted and connected sockets: the queueing discipline's band",
    },
    Setting {
        name: "MAXSEG",
        kind: Kind::Number {
            min: 88,
            max: 32767,
            zero_is_off: false,
            unit: "bytes",
            set: |c, n| c.opts.maxseg = Some(n),
            if_bad: "the path's segment size is used",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("maxseg", |c| opt_number(c, Opt::Maxseg))),
        arg: Arg::Value("BYTES"),
        help: "TCP_MAXSEG on listeners and connecting sockets, before the handshake: the largest \
               segment announced and sent",
    },
    Setting {
        name: "FORCE",
        kind: Kind::List {
            names: FORCE_NAMES,
            set: |c, bits| c.force = bits,
            if_bad: "the program's own setsockopt wins, as without it",
        },
        default: "none",
        part: Part::Behaviour,
        effective: Some(("force", |c| {
            let names: Vec<&str> = FORCE_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| c.force & 1 << i != 0)
                .map(|(_, n)| *n)
                .collect();
            if names.is_empty() {
                "none".into()
            } else {
                names.join(",")
            }
        })),
        arg: Arg::Value("LIST"),
        help: "these settings win over the program's own setsockopt: its call succeeds, \
               socktune's value stays, and getsockopt reads socktune's value",
    },
    Setting {
        name: "CONFIG",
        kind: Kind::Path {
            set: |c, path| c.rules_file = Some(path),
        },
        default: "none",
        part: Part::Behaviour,
        effective: Some(("config", |c| path_or_off(&c.rules_file))),
        arg: Arg::Path,
        help: "a TOML file of settings (top level) and [[rule]]s by program, role, ports and \
               peers, read once at start; SOCKTUNE_* variables override its top level",
    },
    Setting {
        name: "LOG",
        kind: Kind::Level {
            set: |c, level| c.log = level,
            if_bad: "level error is used",
        },
        default: "error",
        part: Part::Output,
        effective: None,
        arg: Arg::Value("error|info|debug"),
        help: "info prints the effective settings and one-time notices, debug every action",
    },
    Setting {
        name: "LOG_FILE",
        kind: Kind::Path {
            set: |c, path| c.log_file = Some(path),
        },
        default: "stderr",
        part: Part::Output,
        effective: None,
        arg: Arg::Path,
        help: "log lines go to this file instead of stderr (which gets none when it is a socket, as in inetd-style servers)",
    },
    Setting {
        name: "STATS",
        kind: Kind::Path {
            set: |c, path| c.stats = Some(path),
        },
        default: "off",
        part: Part::Output,
        effective: Some(("stats", |c| path_or_off(&c.stats))),
        arg: Arg::Path,
        help: "appends one JSON line per TCP connection at close (TCP_INFO figures, arm, \
               behaviours); read it with `socktune report`",
    },
    Setting {
        name: "STATS_PROM",
        kind: Kind::Path {
            set: |c, path| c.stats_prom = Some(path),
        },
        default: "off",
        part: Part::Output,
        effective: Some(("stats_prom", |c| path_or_off(&c.stats_prom))),
        arg: Arg::Path,
        help: "keeps a Prometheus textfile of the process tree's counters, for node_exporter's \
               textfile collector",
    },
    Setting {
        name: "AB",
        kind: Kind::Number {
            min: 0,
            max: 100,
            zero_is_off: false,
            unit: "a whole percent",
            set: |c, pct| c.ab = Some(pct as u8),
            if_bad: "there is no A/B split",
        },
        default: "off",
        part: Part::Behaviour,
        effective: Some(("ab", |c| {
            c.ab.map_or("off".into(), |pct| match c.ab_window_s {
                None => format!("{pct}% of connections in arm B"),
                Some(s) => format!("{pct}% of switchback windows of {s} s in arm B"),
            })
        })),
        arg: Arg::Value("PCT"),
        help: "A/B split: that percent of connections, picked at random, get the behaviours \
               (arm B), the rest none (arm A); the arm is recorded by --stats. Listener options \
               (defer-accept, fastopen) apply to both arms",
    },
    Setting {
        name: "AB_MODE",
        kind: Kind::Text {
            forms: "connection, or switchback:SECS with whole seconds from 1 to 86400",
            example: "switchback:10",
            set: |c, v| match parse_ab_mode(v) {
                Some(window) => {
                    c.ab_window_s = window;
                    true
                }
                None => false,
            },
            if_bad: "each connection draws its own arm",
        },
        default: "connection",
        part: Part::Behaviour,
        effective: None,
        arg: Arg::Value("connection|switchback:SECS"),
        help: "how --ab picks arms: per connection at random, or switchback: all new connections \
               of the process tree take the same arm for SECS-second windows, alternating A, B \
               (with --ab 50) or drawn per window with the --ab share, since arms that share a \
               bottleneck bias a per-connection split; records carry the window",
    },
    Setting {
        name: "CTL",
        kind: Kind::Bool {
            set: |c, on| c.ctl = on,
            if_bad: "live control stays on",
        },
        default: "on",
        part: Part::Output,
        effective: None,
        arg: Arg::Switch,
        help: "live control: while some behaviour or recording is on, a control file in the \
               user's runtime directory ($XDG_RUNTIME_DIR/socktune, /run/socktune for root) \
               lets `socktune ctl PID` show and change the settings of the running process \
               and its forked workers; off: no control file",
    },
    Setting {
        name: "INHERIT",
        kind: Kind::Choice {
            names: &["chosen", "always"],
            set: |c, i| c.inherit = [Inherit::Chosen, Inherit::Always][i],
            if_bad: "children get the environment the program chose",
        },
        default: "chosen",
        part: Part::Output,
        effective: None,
        arg: Arg::Value("chosen|always"),
        help:
            "chosen: a child the program execs with an environment of its own choosing gets that \
               environment; always: LD_PRELOAD and SOCKTUNE_* are put back (for daemons that \
               scrub their environment before exec'ing workers), never once the process's user or \
               group changed",
    },
];

impl Setting {
    /// The variable's full name: `SOCKTUNE_CORK`.
    pub fn var(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }

    /// Its key in a rules file: the name in lower case.
    pub fn key(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// The line for a bad `value` set at `at`.
    pub fn problem(&self, value: &str, if_bad: &str, at: Origin<'_>) -> String {
        let forms = self.kind.forms();
        match at {
            Origin::Env => format!(
                "socktune: {}={value:?} is not valid (accepted: {forms}); {if_bad}",
                self.var()
            ),
            Origin::File { path, line } => format!(
                "socktune: {path}:{line}: {}={value:?} is not valid (accepted: {forms}); {if_bad}",
                self.key()
            ),
        }
    }
}

impl Kind {
    /// The accepted forms, as the error line and the docs give them.
    pub fn forms(&self) -> String {
        match self {
            Kind::Bool { .. } => BOOL_FORMS.into(),
            Kind::Number {
                min,
                max,
                zero_is_off,
                unit,
                ..
            } => {
                let off = if *zero_is_off { "0 (off) or " } else { "" };
                format!("{off}{unit} from {min} to {max}")
            }
            Kind::Ports { .. } => "a comma list of ports and ranges, e.g. 80,8080,9000-9100".into(),
            Kind::Role { .. } => "server, client or both".into(),
            Kind::Level { .. } => "error, info or debug".into(),
            Kind::Path { .. } => "a file path".into(),
            Kind::Keepalive { .. } => format!(
                "0 (off) or IDLE[:INTVL[:CNT]], seconds from 1 to {KEEPALIVE_SECS_MAX} and a \
                 count from 1 to {KEEPALIVE_COUNT_MAX}"
            ),
            Kind::Name { .. } => "a name of up to 15 lower-case letters, digits, _ or -".into(),
            Kind::List { names, .. } => format!("none or a comma list of {}", names.join(", ")),
            Kind::Text { forms, .. } => (*forms).into(),
            Kind::Choice { names, .. } => match names.split_last() {
                Some((last, [])) => (*last).into(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            },
        }
    }

    /// Sets what `value` asks for in `config`; a bad value leaves it as it was and yields what
    /// that leaves.
    pub(crate) fn apply(&self, value: &str, config: &mut Config) -> Result<(), &'static str> {
        fn put<T>(
            config: &mut Config,
            parsed: Option<T>,
            set: fn(&mut Config, T),
            if_bad: &'static str,
        ) -> Result<(), &'static str> {
            set(config, parsed.ok_or(if_bad)?);
            Ok(())
        }
        let v = value.trim();
        match *self {
            Kind::Bool { set, if_bad } => put(config, parse_bool(v), set, if_bad),
            Kind::Number {
                min,
                max,
                zero_is_off,
                set,
                if_bad,
                ..
            } => {
                let least = if zero_is_off { 0 } else { min };
                put(config, parse_uint(v, least, max), set, if_bad)
            }
            Kind::Ports { set, if_bad } => put(config, parse_ports(v), set, if_bad),
            Kind::Role { set, if_bad } => put(config, parse_role(v), set, if_bad),
            Kind::Level { set, if_bad } => put(config, parse_level(v), set, if_bad),
            // Untrimmed: a file name may begin or end with a space.
            Kind::Path { set } => {
                if !value.is_empty() {
                    set(config, value.to_string());
                }
                Ok(())
            }
            Kind::Text { set, if_bad, .. } => {
                if set(config, v) {
                    Ok(())
                } else {
                    Err(if_bad)
                }
            }
            Kind::Choice { names, set, if_bad } => put(
                config,
                names.iter().position(|n| n.eq_ignore_ascii_case(v)),
                set,
                if_bad,
            ),
            Kind::Keepalive { set, if_bad } => put(config, parse_keepalive(v), set, if_bad),
            Kind::Name { set, if_bad } => put(config, parse_name(v), set, if_bad),
            Kind::List { names, set, if_bad } => put(config, parse_list(v, names), set, if_bad),
        }
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
    let names = |var: &str, s: &Setting| var.strip_prefix(PREFIX) == Some(s.name);
    for (name, _) in &ours {
        if !SETTINGS.iter().any(|s| names(name, s)) {
            problems.push(unknown_name_message(name));
        }
    }
    let config = build(
        |s| env_value(&ours, s).map(|v| (v, Origin::Env)),
        &mut problems,
    );
    Parsed {
        config,
        problems,
        fingerprint,
        reported,
    }
}

/// Where a value was set, for its error line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    Env,
    /// A key of the rules file `path`, on this line.
    File {
        path: &'a str,
        line: usize,
    },
}

/// The value of setting `s` among `SOCKTUNE_*` pairs.
pub fn env_value<'a>(vars: &'a [(String, String)], s: &Setting) -> Option<&'a str> {
    vars.iter()
        .find(|(k, _)| k.strip_prefix(PREFIX) == Some(s.name))
        .map(|(_, v)| v.as_str())
}

/// A config of the values `value` gives, each with where it was set; `problems` gets a line
/// for each bad one. A bad port list must not widen the behaviours to every port: it switches
/// them all off.
pub fn build<'a>(
    value: impl Fn(&Setting) -> Option<(&'a str, Origin<'a>)>,
    problems: &mut Vec<String>,
) -> Config {
    let mut ports_bad = false;
    let config = read(SETTINGS.iter(), &value, |s, (v, at), if_bad| {
        problems.push(s.problem(v, if_bad, at));
        ports_bad |= matches!(s.kind, Kind::Ports { .. });
    });
    if ports_bad {
        let output = SETTINGS.iter().filter(|s| s.part == Part::Output);
        read(output, &value, |_, _, _| {})
    } else {
        config
    }
}

/// A default config with `settings` applied, each to its value if it has one; `bad` hears of
/// each bad value.
fn read<'a, V>(
    settings: impl Iterator<Item = &'a Setting>,
    value: impl Fn(&Setting) -> Option<(&'a str, V)>,
    mut bad: impl FnMut(&Setting, (&str, V), &str),
) -> Config {
    let mut config = Config::default();
    for s in settings {
        if let Some((v, at)) = value(s) {
            if let Err(if_bad) = s.kind.apply(v, &mut config) {
                bad(s, (v, at), if_bad);
            }
        }
    }
    config
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

/// The kernel's limits (TCP_KEEPIDLE/TCP_KEEPINTVL and TCP_KEEPCNT).
const KEEPALIVE_SECS_MAX: u32 = 32767;
const KEEPALIVE_COUNT_MAX: u32 = 127;
/// Past this the kernel's doubling of SO_SNDBUF/SO_RCVBUF overflows an int.
const BUF_MAX: u32 = i32::MAX as u32 / 2;

/// `Some(None)` is off (0).
fn parse_keepalive(v: &str) -> Option<Option<Keepalive>> {
    if v == "0" {
        return Some(None);
    }
    let mut parts = v.split(':');
    let secs = |p: Option<&str>| p.map(|p| parse_uint(p.trim(), 1, KEEPALIVE_SECS_MAX));
    let idle = secs(parts.next())??;
    let interval = secs(parts.next()).map_or(Some(None), |i| i.map(Some))?;
    let count = parts
        .next()
        .map(|p| parse_uint(p.trim(), 1, KEEPALIVE_COUNT_MAX))
        .map_or(Some(None), |c| c.map(Some))?;
    if parts.next().is_some() {
        return None;
    }
    Some(Some(Keepalive {
        idle,
        interval,
        count,
    }))
}

fn parse_name(v: &str) -> Option<String> {
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-';
    (!v.is_empty() && v.len() <= 15 && v.bytes().all(ok)).then(|| v.to_string())
}

fn parse_list(v: &str, names: &[&str]) -> Option<u32> {
    if v.eq_ignore_ascii_case("none") {
        return Some(0);
    }
    v.split(',').try_fold(0, |bits, item| {
        let i = names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(item.trim()))?;
        Some(bits | 1 << i)
    })
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

/// `connection` (None) or `switchback:SECS` (Some(SECS)).
fn parse_ab_mode(v: &str) -> Option<Option<u32>> {
    if v.eq_ignore_ascii_case("connection") {
        return Some(None);
    }
    let (mode, secs) = v.split_once(':')?;
    let secs = parse_uint(secs.trim(), 1, 86_400)?;
    mode.trim()
        .eq_ignore_ascii_case("switchback")
        .then_some(Some(secs))
}

pub fn parse_role(v: &str) -> Option<Role> {
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
    match nearest(bare, SETTINGS.iter().map(|s| s.name)) {
        Some(k) => format!("socktune: unknown variable {name} ignored (did you mean {PREFIX}{k}?)"),
        None => format!("socktune: unknown variable {name} ignored"),
    }
}

/// The name among `names` within two edits of `typed`, if one is.
pub fn nearest<'a>(typed: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|n| (edit_distance(typed, n), n))
        .min()
        .filter(|(d, _)| *d <= 2)
        .map(|(_, n)| n)
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

pub fn role_name(r: Role) -> &'static str {
    match r {
        Role::Server => "server",
        Role::Client => "client",
        Role::Both => "both",
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn number_or_off(n: Option<u32>) -> String {
    n.map_or("off".into(), |n| n.to_string())
}

/// An option's line: its value and role, or off.
fn opt_line(c: &Config, value: Option<String>) -> String {
    value.map_or("off".into(), |v| {
        format!("{v} (role {})", role_name(c.opts_role))
    })
}

fn opt_number(c: &Config, o: Opt) -> String {
    opt_line(c, o.number(&c.opts).map(|n| n.to_string()))
}

/// `30:5:3`, as `SOCKTUNE_KEEPALIVE` takes it.
impl fmt::Display for Keepalive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.idle)?;
        if let Some(i) = self.interval {
            write!(f, ":{i}")?;
        }
        if let Some(c) = self.count {
            write!(f, ":{c}")?;
        }
        Ok(())
    }
}

fn path_or_off(path: &Option<String>) -> String {
    path.clone().unwrap_or_else(|| "off".into())
}

/// `80,9000-9100`, as `SOCKTUNE_PORTS` takes it.
impl fmt::Display for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, &(lo, hi)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if lo == hi {
                write!(f, "{sep}{lo}")?;
            } else {
                write!(f, "{sep}{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// The effective settings as one aligned block, for `SOCKTUNE_LOG=info`.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "socktune: effective settings")?;
        for (label, value) in SETTINGS.iter().filter_map(|s| s.effective) {
            write!(f, "\n  {label:<18}{}", value(self))?;
        }
        Ok(())
    }
}

/// A valid value for `s`, so that with one for every setting any problem comes from the one
/// changed (for the property tests here and in `rules`).
#[cfg(test)]
pub(crate) fn good(s: &Setting) -> String {
    match s.kind {
        Kind::Bool { .. } => "yes".into(),
        Kind::Number { min, max, .. } => (min + (max - min) / 2).to_string(),
        Kind::Ports { .. } => "80,8000-8100".into(),
        Kind::Role { .. } => "client".into(),
        Kind::Level { .. } => "info".into(),
        Kind::Path { .. } => format!("/tmp/socktune-{}", s.name.to_ascii_lowercase()),
        Kind::Choice { names, .. } => names[names.len() - 1].into(),
        Kind::Keepalive { .. } => "30:5:3".into(),
        Kind::Name { .. } => "reno".into(),
        Kind::List { .. } => "nodelay,tos".into(),
        Kind::Text { example, .. } => example.into(),
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
    fn fastopen_zero_is_off_and_the_range_is_one_to_65535() {
        for (v, want) in [("0", None), ("1", Some(1)), ("65535", Some(65535))] {
            let p = env(&[("SOCKTUNE_FASTOPEN", v)]);
            assert_eq!(p.config.fastopen, want, "{v:?}");
            assert!(p.problems.is_empty(), "{v:?}: {:?}", p.problems);
        }
        let p = env(&[("SOCKTUNE_FASTOPEN", "65536")]);
        assert!(
            p.problems[0].contains("(accepted: 0 (off) or a queue length from 1 to 65535)"),
            "{:?}",
            p.problems
        );
        // Where 0 is not off, it stays out of range.
        assert_eq!(env(&[("SOCKTUNE_CORK_FLUSH_MS", "0")]).problems.len(), 1);
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
    fn keepalive_force_and_congestion_forms() {
        let k = |v: &str| env(&[("SOCKTUNE_KEEPALIVE", v)]).config.opts.keepalive;
        let ka = |idle, interval, count| {
            Some(Keepalive {
                idle,
                interval,
                count,
            })
        };
        assert_eq!(k("30"), ka(30, None, None));
        assert_eq!(k("30:5"), ka(30, Some(5), None));
        assert_eq!(k(" 30:5:3 "), ka(30, Some(5), Some(3)));
        assert_eq!(k("0"), None);
        for bad in [
            "30:", ":5", "30:5:3:1", "30::3", "30:5:128", "32768", "a:b", "-1",
        ] {
            let p = env(&[("SOCKTUNE_KEEPALIVE", bad)]);
            assert_eq!(
                (p.config.opts.keepalive, p.problems.len()),
                (None, 1),
                "{bad:?}"
            );
        }
        let f = env(&[("SOCKTUNE_FORCE", "Nodelay, mark")]).config.force;
        assert_eq!(f, FORCE_NODELAY | Opt::Mark.force_bit());
        assert_eq!(Opt::Syncnt.force_bit(), 0, "not forceable");
        assert_eq!(
            env(&[("SOCKTUNE_FORCE", "nodelay,syncnt")]).problems.len(),
            1
        );
        assert_eq!(env(&[("SOCKTUNE_FORCE", "none")]).config.force, 0);
        let c = |v: &str| env(&[("SOCKTUNE_CONGESTION", v)]).config.opts.congestion;
        assert_eq!(c("bbr").as_deref(), Some("bbr"));
        for bad in ["", "BBR", "a b", "sixteen_letters_", "../x"] {
            assert_eq!(c(bad), None, "{bad:?}");
        }
        let on = env(&[("SOCKTUNE_TOS", "0")]).config;
        assert!(!on.inert(), "TOS 0 is a value, not off");
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
        for s in SETTINGS {
            for v in samples {
                let _ = env(&[(&s.var(), v)]);
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
            "FORCE",
            "MAXSEG",
            "PRIORITY",
            "MARK",
            "TOS",
            "RCVBUF",
            "SNDBUF",
            "NOTSENT_LOWAT",
            "CONGESTION",
            "SYNCNT",
            "USER_TIMEOUT",
            "KEEPALIVE",
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
            // "x" would be a congestion control name.
            .map(|k| {
                (
                    format!("{PREFIX}{k}"),
                    if *k == "CONGESTION" { "X" } else { "x" }.to_string(),
                )
            })
            .chain([
                ("SOCKTUNE_CORKK".to_string(), "1".to_string()),
                ("SOCKTUNE_WHATEVER".to_string(), "1".to_string()),
            ]);
        let want = [
            "socktune: unknown variable SOCKTUNE_CORKK ignored (did you mean SOCKTUNE_CORK?)",
            "socktune: unknown variable SOCKTUNE_WHATEVER ignored",
            r#"socktune: SOCKTUNE_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_DEFER_ACCEPT="x" is not valid (accepted: 0 (off) or whole seconds from 1 to 3600); defer-accept is off"#,
            r#"socktune: SOCKTUNE_CORK="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); cork-per-response is off"#,
            r#"socktune: SOCKTUNE_CORK_FLUSH_MS="x" is not valid (accepted: whole milliseconds from 1 to 200); the default of 2 ms is used"#,
            r#"socktune: SOCKTUNE_QUICKACK="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); quickack-off is off"#,
            r#"socktune: SOCKTUNE_FASTOPEN="x" is not valid (accepted: 0 (off) or a queue length from 1 to 65535); server Fast Open is off"#,
            r#"socktune: SOCKTUNE_FASTOPEN_CONNECT="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); client Fast Open is off"#,
            r#"socktune: SOCKTUNE_NODELAY="x" is not valid (accepted: 1/0, true/false, yes/no, on/off); nodelay is off"#,
            r#"socktune: SOCKTUNE_BACKLOG="x" is not valid (accepted: a whole number from 1 to 2147483647); the program's own backlog is used"#,
            r#"socktune: SOCKTUNE_PORTS="x" is not valid (accepted: a comma list of ports and ranges, e.g. 80,8080,9000-9100); every behaviour is off"#,
            r#"socktune: SOCKTUNE_CORK_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_QUICKACK_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_NODELAY_ROLE="x" is not valid (accepted: server, client or both); the default role is used"#,
            r#"socktune: SOCKTUNE_KEEPALIVE="x" is not valid (accepted: 0 (off) or IDLE[:INTVL[:CNT]], seconds from 1 to 32767 and a count from 1 to 127); keepalive is left to the program"#,
            r#"socktune: SOCKTUNE_USER_TIMEOUT="x" is not valid (accepted: 0 (off) or whole milliseconds from 1 to 2147483647); the user timeout is left to the program"#,
            r#"socktune: SOCKTUNE_SYNCNT="x" is not valid (accepted: a count from 1 to 127); the kernel's SYN retries are used"#,
            r#"socktune: SOCKTUNE_CONGESTION="X" is not valid (accepted: a name of up to 15 lower-case letters, digits, _ or -); the kernel's congestion control is used"#,
            r#"socktune: SOCKTUNE_NOTSENT_LOWAT="x" is not valid (accepted: bytes from 1 to 2147483647); the kernel's limit is used"#,
            r#"socktune: SOCKTUNE_SNDBUF="x" is not valid (accepted: bytes from 1 to 1073741823); the kernel's send buffer is used"#,
            r#"socktune: SOCKTUNE_RCVBUF="x" is not valid (accepted: bytes from 1 to 1073741823); the kernel's receive buffer is used"#,
            r#"socktune: SOCKTUNE_TOS="x" is not valid (accepted: a byte from 0 to 255); the TOS byte is left to the program"#,
            r#"socktune: SOCKTUNE_MARK="x" is not valid (accepted: a number from 0 to 4294967295); no mark is set"#,
            r#"socktune: SOCKTUNE_PRIORITY="x" is not valid (accepted: a priority from 0 to 6); the priority is left to the program"#,
            r#"socktune: SOCKTUNE_MAXSEG="x" is not valid (accepted: bytes from 88 to 32767); the path's segment size is used"#,
            r#"socktune: SOCKTUNE_FORCE="x" is not valid (accepted: none or a comma list of nodelay, cork, quickack, keepalive, user_timeout, congestion, sndbuf, rcvbuf, tos, mark, priority, maxseg); the program's own setsockopt wins, as without it"#,
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
  keepalive         off
  user_timeout      off
  syncnt            off
  congestion        off
  notsent_lowat     off
  sndbuf            off
  rcvbuf            off
  tos               off
  mark              off
  priority          off
  maxseg            off
  force             none
  config            off
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
            ("SOCKTUNE_KEEPALIVE", "30:5:3"),
            ("SOCKTUNE_USER_TIMEOUT", "20000"),
            ("SOCKTUNE_SYNCNT", "2"),
            ("SOCKTUNE_CONGESTION", "reno"),
            ("SOCKTUNE_NOTSENT_LOWAT", "16384"),
            ("SOCKTUNE_SNDBUF", "65536"),
            ("SOCKTUNE_RCVBUF", "131072"),
            ("SOCKTUNE_TOS", "184"),
            ("SOCKTUNE_MARK", "7"),
            ("SOCKTUNE_PRIORITY", "4"),
            ("SOCKTUNE_MAXSEG", "1400"),
            ("SOCKTUNE_FORCE", "tos, NODELAY"),
            ("SOCKTUNE_CONFIG", "/etc/socktune.toml"),
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
  keepalive         30:5:3 (role client)
  user_timeout      20000 (role client)
  syncnt            2 (role client)
  congestion        reno (role client)
  notsent_lowat     16384 (role client)
  sndbuf            65536 (role client)
  rcvbuf            131072 (role client)
  tos               184 (role client)
  mark              7 (role client)
  priority          4 (role client)
  maxseg            1400 (role client)
  force             nodelay,tos
  config            /etc/socktune.toml
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

    #[test]
    fn names_are_warned_about_exactly_as_they_are_read() {
        for name in ["SOCKTUNE_cork", "SOCKTUNE_SOCKTUNE_CORK"] {
            let p = env(&[(name, "1")]);
            assert!(
                !p.config.cork,
                "{name} is reported as ignored, so it must be"
            );
            assert_eq!(p.problems.len(), 1, "{name}: {:?}", p.problems);
        }
    }

    #[test]
    fn ab_mode_is_connection_or_switchback_windows() {
        let mode = |v: &str| {
            let p = env(&[("SOCKTUNE_AB", "50"), ("SOCKTUNE_AB_MODE", v)]);
            (p.config.ab_window_s, p.problems)
        };
        assert_eq!(mode("switchback:10"), (Some(10), vec![]));
        assert_eq!(mode(" Switchback: 3 "), (Some(3), vec![]));
        assert_eq!(mode("connection"), (None, vec![]));
        for bad in [
            "switchback",
            "switchback:0",
            "switchback:x",
            "window:5",
            "5",
        ] {
            let (window, problems) = mode(bad);
            assert_eq!(window, None, "{bad}");
            assert_eq!(
                problems,
                [format!(
                    "socktune: SOCKTUNE_AB_MODE={bad:?} is not valid (accepted: connection, or \
                     switchback:SECS with whole seconds from 1 to 86400); each connection draws \
                     its own arm"
                )]
            );
        }
    }

    #[test]
    fn the_table_holds_together() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(
                !s.name.is_empty() && s.name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{}: flags and docs are made from the name",
                s.name
            );
            assert!(
                SETTINGS[..i].iter().all(|t| t.name != s.name),
                "{} twice",
                s.name
            );
            let path = matches!(s.kind, Kind::Path { .. });
            assert_eq!(
                path,
                s.arg == Arg::Path,
                "{}: a path is a path flag",
                s.name
            );
            if s.arg == Arg::Switch {
                assert!(
                    matches!(s.kind, Kind::Bool { .. }),
                    "{}: a switch is a boolean",
                    s.name
                );
            }
            // A documented default that is also a value must leave the config as it was.
            let mut config = Config::default();
            if !path && s.kind.apply(s.default, &mut config).is_ok() {
                assert_eq!(
                    config,
                    Config::default(),
                    "{}'s default of {:?}",
                    s.name,
                    s.default
                );
            }
        }
    }

    /// Property tests over arbitrary names and values (proptest; 1000 cases each, well under a
    /// second in release).
    mod fuzz {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::select;

        use crate::config::good;

        fn names() -> Vec<&'static str> {
            SETTINGS.iter().map(|s| s.name).collect()
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
                        "4294967296",
                        "30:5:3",
                        "30:",
                        "1:2:3:4",
                        "bbr",
                        "nodelay,mark",
                        "none"
                    ][..]
                )
                .prop_map(String::from),
            ]
        }

        /// Names: ours, near-misses of ours, and anything at all.
        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                select(names()).prop_map(|k| format!("{PREFIX}{k}")),
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
                changed in 0..SETTINGS.len(), v in value()
            ) {
                let changed = &SETTINGS[changed];
                let env = |changed_to: Option<&str>| {
                    parse(SETTINGS.iter().filter_map(|s| {
                        let v = if s.name == changed.name { changed_to? } else { &good(s) };
                        Some((s.var(), v.to_string()))
                    }))
                };
                let (good_env, p) = (env(Some(&good(changed))), env(Some(&v)));
                prop_assert!(good_env.problems.is_empty(), "{:?}", good_env.problems);
                let named = format!("{}=", changed.var());
                prop_assert!(p.problems.len() <= 1, "{:?}", p.problems);
                if let Some(line) = p.problems.first() {
                    prop_assert!(line.starts_with(&format!("socktune: {named}")), "{line:?}");
                    if matches!(changed.kind, Kind::Ports { .. }) {
                        // A bad port list switches every behaviour off rather than widening.
                        prop_assert!(!p.config.cork && p.config.defer_accept.is_none());
                        return Ok(());
                    }
                    prop_assert_eq!(&p.config, &env(None).config, "a bad {}{:?} is as if unset", named, v);
                }
                // Every other variable's own part of the config is as its value set it: setting
                // it again changes nothing. The shared role only supplies the default of the
                // three per-behaviour roles, all set here, so it is left out.
                for other in SETTINGS.iter().filter(|s| s.name != changed.name && s.name != "ROLE") {
                    let mut again = p.config.clone();
                    prop_assert!(other.kind.apply(&good(other), &mut again).is_ok());
                    prop_assert_eq!(&again, &p.config, "{} changed by {}{:?}", other.var(), named, v);
                }
            }
        }
    }
}
