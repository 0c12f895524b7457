//! The rules of a `SOCKTUNE_CONFIG` file: which settings a socket follows, by program, role,
//! port and peer. Plain Rust; the preload library picks a rule once per socket and keeps its
//! number in the fd state.

use crate::config::{self, Config, Origin, Part, PortSet, Role, Setting, SETTINGS};
use std::net::IpAddr;
use toml_edit::{Document, Item, Table, Value};

/// An address prefix, `10.0.0.0/8` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    pub fn contains(self, ip: IpAddr) -> bool {
        // An IPv4 peer of an IPv6 socket arrives mapped (::ffff:a.b.c.d).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let bits = |a: IpAddr| match a {
            IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32u32),
            IpAddr::V6(v6) => (u128::from(v6), 128),
        };
        let ((want, width), (got, got_width)) = (bits(self.addr), bits(ip));
        if width != got_width {
            return false;
        }
        let shift = width - u32::from(self.len);
        shift >= 128 || want >> shift == got >> shift
    }
}

/// One `[[rule]]`: what it matches, and the settings a socket it matches follows (the top level
/// with the rule's own keys over it).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Its line in the file.
    pub line: usize,
    pub program: Option<String>,
    pub role: Option<Role>,
    pub ports: Option<PortSet>,
    pub peers: Option<Vec<Prefix>>,
    /// A pattern was bad: the rule matches nothing rather than more than it says.
    pub broken: bool,
    /// The settings it sets itself (their places in `SETTINGS`).
    pub own: Vec<usize>,
    pub config: Config,
}

impl Rule {
    fn matches(&self, server: bool, port: u16, peer: Option<IpAddr>) -> bool {
        !self.broken
            && self
                .role
                .is_none_or(|r| if server { r.server() } else { r.client() })
            && self.ports.as_ref().is_none_or(|p| p.contains(port))
            && self
                .peers
                .as_ref()
                .is_none_or(|ps| peer.is_some_and(|ip| ps.iter().any(|p| p.contains(ip))))
    }
}

/// The rules that apply to this program, in the file's order (at most 255: the fd state keeps
/// a rule's number in a byte).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rules(pub Vec<Rule>);

impl Rules {
    /// The number of the first rule that matches (its index plus one), or 0 for the top level.
    /// A listener has no peer, so rules by peer match its accepted sockets, not it.
    pub fn pick(&self, server: bool, port: u16, peer: Option<IpAddr>) -> u8 {
        self.0
            .iter()
            .position(|r| r.matches(server, port, peer))
            .map_or(0, |i| (i + 1) as u8)
    }

    pub fn config(&self, number: u8) -> Option<&Config> {
        self.0
            .get(usize::from(number).checked_sub(1)?)
            .map(|r| &r.config)
    }

    pub fn by_peer(&self) -> bool {
        self.0.iter().any(|r| r.peers.is_some())
    }
}

/// What a rules file gives: the top level (the variables over the file's), the rules for the
/// program, and a line for each problem.
pub struct Loaded {
    pub top: Config,
    pub rules: Rules,
    pub problems: Vec<String>,
}

/// A rule's own keys that are no settings.
const MATCHERS: [&str; 4] = ["program", "role", "ports", "peers"];
/// A file this broken is not worth more guesses.
const MOST_SKIPPED_LINES: usize = 20;

/// One `key = value` of the file, as text, with its line.
struct Key {
    key: String,
    text: String,
    line: usize,
}

/// Reads rules file `path` (its `text`) for a program known by `names` (the basenames of
/// /proc/self/exe and argv\[0\]; `None` keeps every rule), with the `SOCKTUNE_*` variables `env`
/// over its top level. Never fails: each bad line, key, value or pattern yields one problem
/// line and is left out.
pub fn load(path: &str, text: &str, env: &[(String, String)], names: Option<&[&str]>) -> Loaded {
    let mut problems = Vec::new();
    let at = |line| Origin::File { path, line };
    let (top_keys, tables) = match document(path, text, &mut problems) {
        Some(doc) => split(path, text, &doc, &mut problems),
        None => (Vec::new(), Vec::new()),
    };
    let top_value = |s: &Setting| {
        config::env_value(env, s)
            .map(|v| (v, Origin::Env))
            .or_else(|| file_value(&top_keys, s).map(|(v, line)| (v, at(line))))
    };
    let top = config::build(top_value, &mut problems);
    let mut rules = Vec::new();
    for (line, keys) in &tables {
        let mut rule = Rule {
            line: *line,
            program: None,
            role: None,
            ports: None,
            peers: None,
            broken: false,
            own: Vec::new(),
            config: top.clone(),
        };
        for k in keys.iter().filter(|k| MATCHERS.contains(&k.key.as_str())) {
            if let Err(forms) = rule.set_matcher(k) {
                problems.push(format!(
                    "socktune: {path}:{}: {}={:?} is not valid (accepted: {forms}); this rule \
                     matches nothing",
                    k.line, k.key, k.text
                ));
                rule.broken = true;
            }
        }
        // The rule's keys, then the top level's. A rule's role is its sockets' role for every
        // behaviour, over the top level's per-behaviour roles.
        // A bad port list already made the rule match nothing.
        let by_role = |s: &Setting| s.name.ends_with("_ROLE") && rule.role.is_some();
        let own = |s: &Setting| {
            file_value(keys, s)
                .filter(|_| s.name != "PORTS" || rule.ports.is_some())
                .map(|(v, line)| (v, at(line)))
        };
        let value = |s: &Setting| own(s).or_else(|| if by_role(s) { None } else { top_value(s) });
        rule.config = config::build(value, &mut problems);
        rule.own = (0..SETTINGS.len())
            .filter(|&i| {
                !["PORTS", "ROLE"].contains(&SETTINGS[i].name) && own(&SETTINGS[i]).is_some()
            })
            .collect();
        let mine = match (names, &rule.program) {
            (Some(names), Some(glob)) => names.iter().any(|n| glob_matches(glob, n)),
            _ => true,
        };
        if mine {
            rules.push(rule);
        }
    }
    if rules.len() > usize::from(u8::MAX) {
        problems.push(format!(
            "socktune: {path}: {} rules; those past the first 255 are ignored",
            rules.len()
        ));
        rules.truncate(usize::from(u8::MAX));
    }
    // A bad top-level value is met again by each rule that falls back to it; a bad variable is
    // `config::parse`'s to report. The rest in the file's order.
    let mine = format!("socktune: {path}");
    let mut seen = Vec::new();
    problems.retain(|p| {
        let new = p.starts_with(&mine) && !seen.contains(p);
        seen.push(p.clone());
        new
    });
    let line = |p: &String| -> usize {
        let rest = &p[mine.len()..];
        let digits = rest.strip_prefix(':').unwrap_or("");
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        digits[..end].parse().unwrap_or(usize::MAX)
    };
    problems.sort_by_key(line);
    Loaded {
        top,
        rules: Rules(rules),
        problems,
    }
}

/// What the `SOCKTUNE_*` variables `vars` give, as the library reads them: the variables over
/// the top level of the rules file they name (its text from `read`, for the program `names`
/// gives), and the file's rules; the problems of both. Only a caller given a rules file pays
/// for reading one.
pub fn with_file(
    vars: &[(String, String)],
    read: impl FnOnce(&str) -> Result<String, String>,
    names: impl FnOnce() -> Vec<String>,
) -> (config::Parsed, Rules) {
    let mut parsed = config::parse(vars.iter().cloned());
    let Some(path) = parsed.config.rules_file.clone() else {
        return (parsed, Rules::default());
    };
    let loaded = match read(&path) {
        Ok(text) => {
            let names = names();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            load(&path, &text, vars, Some(&names))
        }
        Err(why) => Loaded {
            top: parsed.config.clone(),
            rules: Rules::default(),
            problems: vec![unreadable(&path, &why)],
        },
    };
    parsed.config = loaded.top;
    parsed.problems.extend(loaded.problems);
    (parsed, loaded.rules)
}

/// The settings the top level of rules file `path` (its `text`) sets, as `load` reads them:
/// each one's place in `SETTINGS`, its line, and its value as written (`load` reports the
/// problems).
pub fn top_level(path: &str, text: &str) -> Vec<(usize, usize, String)> {
    let mut reported = Vec::new();
    let Some(doc) = document(path, text, &mut reported) else {
        return Vec::new();
    };
    let (top, _) = split(path, text, &doc, &mut reported);
    (0..SETTINGS.len())
        .filter_map(|i| file_value(&top, &SETTINGS[i]).map(|(v, line)| (i, line, v.to_string())))
        .collect()
}

/// The line for a rules file that cannot be read, for `why`.
pub fn unreadable(path: &str, why: &str) -> String {
    format!("socktune: SOCKTUNE_CONFIG={path:?} cannot be read ({why}); only the variables apply")
}

/// The text and line of setting `s` among `keys`.
fn file_value<'k>(keys: &'k [Key], s: &Setting) -> Option<(&'k str, usize)> {
    let key = s.key();
    keys.iter()
        .find(|k| k.key == key)
        .map(|k| (k.text.as_str(), k.line))
}

impl Rule {
    /// Sets one of the rule's matchers from its key; a bad one yields its accepted forms.
    fn set_matcher(&mut self, k: &Key) -> Result<(), &'static str> {
        let v = k.text.trim();
        match k.key.as_str() {
            "program" => {
                let ok = !v.is_empty() && !v.contains('/');
                self.program = Some(v.to_string()).filter(|_| ok);
                ok.then_some(())
                    .ok_or("a glob of the program's name, with * and ?")
            }
            "role" => {
                self.role = config::parse_role(v);
                self.role.map(|_| ()).ok_or("server, client or both")
            }
            "ports" => {
                self.ports = config::parse_ports(v);
                self.ports
                    .as_ref()
                    .map(|_| ())
                    .ok_or("a comma list of ports and ranges, e.g. 80,8080,9000-9100")
            }
            _ => {
                self.peers = v.split(',').map(|p| p.trim().parse().ok()).collect();
                self.peers
                    .as_ref()
                    .map(|_| ())
                    .ok_or("a comma list of address prefixes, e.g. 10.0.0.0/8,::1/128")
            }
        }
    }

    /// Whether the rule sets `s` itself, so that a value of it from the variables or a live
    /// change does not reach the rule's sockets (its role is their role for every behaviour).
    pub fn keeps(&self, s: &Setting) -> bool {
        match s.name {
            "PORTS" => self.ports.is_some(),
            "ROLE" => self.role.is_some(),
            name if name.ends_with("_ROLE") && self.role.is_some() => true,
            name => self.own.iter().any(|&i| SETTINGS[i].name == name),
        }
    }

    /// What the rule matches and the settings it sets itself, as doctor prints it.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if let Some(p) = &self.program {
            what.push(format!("program {p}"));
        }
        if let Some(r) = self.role {
            what.push(format!("role {}", config::role_name(r)));
        }
        if let Some(p) = &self.ports {
            what.push(format!("ports {p}"));
        }
        if let Some(ps) = &self.peers {
            let ps: Vec<String> = ps.iter().map(Prefix::to_string).collect();
            what.push(format!("peers {}", ps.join(",")));
        }
        if what.is_empty() {
            what.push("every socket".into());
        }
        let changes: Vec<String> = self
            .own
            .iter()
            .map(|&i| match SETTINGS[i].effective {
                Some((label, value)) => format!("{label} {}", value(&self.config)),
                None => format!("{} (set)", SETTINGS[i].key()),
            })
            .collect();
        let changes = if changes.is_empty() {
            "the top level".to_string()
        } else {
            changes.join("; ")
        };
        let broken = if self.broken {
            " (a pattern is bad: matches nothing)"
        } else {
            ""
        };
        format!(
            "line {}: {}{broken} -> {changes}",
            self.line,
            what.join(", ")
        )
    }
}

/// The file parsed as TOML, each line that is not skipped over (blanked) and reported.
fn document(path: &str, text: &str, problems: &mut Vec<String>) -> Option<Document<String>> {
    let mut text = text.to_string();
    for _ in 0..MOST_SKIPPED_LINES {
        let e = match Document::parse(text.clone()) {
            Ok(doc) => return Some(doc),
            Err(e) => e,
        };
        let at = e.span().map_or(0, |s| s.start).min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let why = e.message().lines().next().unwrap_or("").trim().to_string();
        problems.push(format!(
            "socktune: {path}:{}: not TOML ({why}); the line is skipped",
            line_of(&text, at)
        ));
        // TOML's whitespace only: a line of other control characters is a line to skip.
        if text[start..end].trim_matches([' ', '\t', '\r']).is_empty() {
            break; // the error is not on one line that can be skipped
        }
        // Blank rather than remove, so that later lines keep their numbers.
        text.replace_range(start..end, &" ".repeat(end - start));
    }
    problems.push(format!(
        "socktune: {path}: too broken to read; it is ignored"
    ));
    None
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The top level's keys, and each `[[rule]]` with its line and keys.
#[allow(clippy::type_complexity)]
fn split(
    path: &str,
    text: &str,
    doc: &Document<String>,
    problems: &mut Vec<String>,
) -> (Vec<Key>, Vec<(usize, Vec<Key>)>) {
    let mut rules = Vec::new();
    let top = keys(path, text, doc.as_table(), false, problems);
    match doc.get("rule") {
        None => {}
        Some(Item::ArrayOfTables(tables)) => {
            for t in tables.iter() {
                let line = t.span().map_or(0, |s| line_of(text, s.start));
                rules.push((line, keys(path, text, t, true, problems)));
            }
        }
        Some(other) => {
            let line = other.span().map_or(0, |s| line_of(text, s.start));
            problems.push(format!(
                "socktune: {path}:{line}: rule must be [[rule]] tables; it is ignored"
            ));
        }
    }
    (top, rules)
}

/// The settings (and, in a rule, the matchers) of `table`; any other key is reported.
fn keys(
    path: &str,
    text: &str,
    table: &Table,
    in_rule: bool,
    problems: &mut Vec<String>,
) -> Vec<Key> {
    let settings = || SETTINGS.iter().filter(|s| s.name != "CONFIG");
    let mut found = Vec::new();
    for (key, item) in table.iter() {
        let span = table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| item.span());
        let line = span.map_or(0, |s| line_of(text, s.start));
        if !in_rule && key == "rule" {
            continue;
        }
        let known = settings().any(|s| s.key() == key) || in_rule && MATCHERS.contains(&key);
        if !known {
            let names: Vec<String> = settings().map(|s| s.key()).collect();
            let nearest = config::nearest(key, names.iter().map(String::as_str));
            let hint = nearest.map_or(String::new(), |n| format!(" (did you mean {n}?)"));
            problems.push(format!(
                "socktune: {path}:{line}: unknown key {key} ignored{hint}"
            ));
            continue;
        }
        if in_rule && settings().any(|s| s.key() == key && whole_process(s)) {
            problems.push(format!(
                "socktune: {path}:{line}: {key} is for the whole process; set it at the top \
                 level (ignored in a rule)"
            ));
            continue;
        }
        let text = match item.as_value() {
            Some(Value::String(s)) => s.value().clone(),
            Some(Value::Integer(i)) => i.value().to_string(),
            Some(Value::Boolean(b)) => b.value().to_string(),
            // Any other value, as written: it reads as a bad value of the setting.
            _ => item
                .span()
                .and_then(|s| text.get(s))
                .unwrap_or("")
                .trim()
                .to_string(),
        };
        found.push(Key {
            key: key.to_string(),
            text,
            line,
        });
    }
    found
}

/// A setting read where no socket is known (logs, stats, children, the flusher's period, the
/// A/B draw): a rule cannot change it.
fn whole_process(s: &Setting) -> bool {
    s.part == Part::Output || ["CORK_FLUSH_MS", "AB"].contains(&s.name)
}

/// `*` is any run of characters, `?` any one; the rest stands for itself.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (g, n): (Vec<char>, Vec<char>) = (glob.chars().collect(), name.chars().collect());
    // The classic two-pointer walk, going back to the last `*` on a mismatch.
    let (mut gi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if gi < g.len() && (g[gi] == '?' || g[gi] == n[ni]) {
            gi += 1;
            ni += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some(gi);
            mark = ni;
            gi += 1;
        } else if let Some(s) = star {
            gi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

impl std::str::FromStr for Prefix {
    type Err = ();
    fn from_str(s: &str) -> Result<Prefix, ()> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| ())?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()) => {
                l.parse::<u8>().map_err(|_| ())?
            }
            Some(_) => return Err(()),
            None => width,
        };
        if len > width {
            return Err(());
        }
        Ok(Prefix { addr, len })
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/socktune.toml";

    fn load_for(text: &str, env: &[(&str, &str)], names: Option<&[&str]>) -> Loaded {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(PATH, text, &env, names)
    }

    const PROXY: &str = r#"
nodelay = true
keepalive = "60"

[[rule]]
program = "nginx*"
role = "server"
ports = "80,443"
defer_accept = 5

[[rule]]
role = "client"
ports = "5432"
peers = "10.0.0.0/8, ::1/128"
keepalive = "30:5:3"
user_timeout = 20000

[[rule]]
role = "client"
nodelay = false
"#;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_first_rule_that_matches_gives_the_settings_and_the_top_level_fills_in() {
        let l = load_for(PROXY, &[], Some(&["nginx"]));
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        let r = &l.rules;
        assert_eq!(r.0.len(), 3);
        assert_eq!(r.pick(true, 443, None), 1);
        assert_eq!(r.pick(true, 8080, None), 0, "no rule: the top level");
        assert_eq!(r.pick(false, 5432, ip("10.1.2.3")), 2);
        assert_eq!(r.pick(false, 5432, ip("::ffff:10.1.2.3")), 2, "mapped IPv4");
        assert_eq!(r.pick(false, 5432, ip("192.168.0.1")), 3, "another peer");
        assert_eq!(r.pick(false, 5432, None), 3, "a listener has no peer");
        assert!(r.by_peer());
        let server = r.config(1).unwrap();
        assert_eq!(server.defer_accept, Some(5));
        assert!(server.nodelay, "left out: the top level's");
        assert_eq!(server.opts.keepalive.unwrap().idle, 60);
        let db = r.config(2).unwrap();
        assert_eq!(db.opts.keepalive.unwrap().to_string(), "30:5:3");
        assert_eq!(db.opts.user_timeout, Some(20000));
        assert_eq!(db.defer_accept, None);
        assert_eq!(db.ports.as_ref().unwrap().to_string(), "5432");
        assert!(!r.config(3).unwrap().nodelay);
        assert!(l.top.nodelay && l.top.defer_accept.is_none());
        assert_eq!(r.config(0), None);
    }

    #[test]
    fn a_rule_for_another_program_never_applies() {
        let l = load_for(PROXY, &[], Some(&["python3.11", "python3"]));
        assert_eq!(l.rules.0.len(), 2);
        assert_eq!(l.rules.pick(true, 443, None), 0);
        assert_eq!(
            load_for(PROXY, &[], None).rules.0.len(),
            3,
            "doctor sees all"
        );
        for (glob, name, want) in [
            ("nginx*", "nginx", true),
            ("nginx*", "nginx-debug", true),
            ("*nginx", "nginx", true),
            ("ng?nx", "nginx", true),
            ("python3*", "python3.11", true),
            ("nginx", "nginx-debug", false),
            ("a*b*c", "abxbc", true),
            ("a*b*c", "abxbd", false),
            ("", "x", false),
        ] {
            assert_eq!(glob_matches(glob, name), want, "{glob} {name}");
        }
    }

    #[test]
    fn variables_override_the_top_level_but_not_the_rules() {
        let l = load_for(
            PROXY,
            &[("SOCKTUNE_KEEPALIVE", "90"), ("SOCKTUNE_CORK", "1")],
            Some(&["nginx"]),
        );
        assert_eq!(l.top.opts.keepalive.unwrap().idle, 90);
        assert!(l.top.cork);
        assert_eq!(l.rules.config(1).unwrap().opts.keepalive.unwrap().idle, 90);
        assert!(l.rules.config(1).unwrap().cork, "the rule leaves cork out");
        assert_eq!(l.rules.config(2).unwrap().opts.keepalive.unwrap().idle, 30);
        let bad = load_for(PROXY, &[("SOCKTUNE_CORK", "maybe")], None);
        assert!(
            bad.problems.is_empty(),
            "config::parse reports it: {:?}",
            bad.problems
        );
    }

    #[test]
    fn a_rules_role_is_its_sockets_role_for_every_behaviour() {
        let text = "role = \"server\"\ncork_role = \"server\"\ncork = true\nmark = 3\n\n[[rule]]\nrole = \"client\"\nports = \"5432\"\n";
        let l = load_for(text, &[], None);
        let c = l.rules.config(1).unwrap();
        assert_eq!((c.cork_role, c.opts_role), (Role::Client, Role::Client));
        assert!(c.cork && c.opts.mark == Some(3));
        assert_eq!(l.top.cork_role, Role::Server);
    }

    #[test]
    fn each_bad_line_key_value_or_pattern_is_one_line_naming_file_line_and_key() {
        let text = "\
nodelay = true
corkk = 1
cork = \"maybe\"
this is not toml
tos = 184

[[rule]]
ports = \"80-abc\"
mark = 5

[[rule]]
peers = \"10.0.0.0/33\"

[[rule]]
program = \"a/b\"

[[rule]]
ports = 8080
keepalive = 1.5
user_timeout = 3000
stats = \"/tmp/s\"
";
        let l = load_for(text, &[], None);
        let want = [
            "socktune: /etc/socktune.toml:2: unknown key corkk ignored (did you mean cork?)",
            r#"socktune: /etc/socktune.toml:3: cork="maybe" is not valid (accepted: 1/0, true/false, yes/no, on/off); cork-per-response is off"#,
            "socktune: /etc/socktune.toml:4: not TOML (key with no value, expected `=`); the line is skipped",
            r#"socktune: /etc/socktune.toml:8: ports="80-abc" is not valid (accepted: a comma list of ports and ranges, e.g. 80,8080,9000-9100); this rule matches nothing"#,
            r#"socktune: /etc/socktune.toml:12: peers="10.0.0.0/33" is not valid (accepted: a comma list of address prefixes, e.g. 10.0.0.0/8,::1/128); this rule matches nothing"#,
            r#"socktune: /etc/socktune.toml:15: program="a/b" is not valid (accepted: a glob of the program's name, with * and ?); this rule matches nothing"#,
            r#"socktune: /etc/socktune.toml:19: keepalive="1.5" is not valid (accepted: 0 (off) or IDLE[:INTVL[:CNT]], seconds from 1 to 32767 and a count from 1 to 127); keepalive is left to the program"#,
            r#"socktune: /etc/socktune.toml:21: stats is for the whole process; set it at the top level (ignored in a rule)"#,
        ];
        assert_eq!(l.problems, want);
        assert!(l.top.nodelay && !l.top.cork && l.top.opts.tos == Some(184));
        assert_eq!(
            l.rules.pick(true, 8080, None),
            4,
            "broken rules match nothing"
        );
        let last = l.rules.config(4).unwrap();
        assert_eq!(
            (last.opts.keepalive, last.opts.user_timeout),
            (None, Some(3000))
        );
        assert_eq!(last.opts.tos, Some(184));
    }

    #[test]
    fn a_file_that_is_no_toml_at_all_gives_the_variables_alone() {
        let l = load_for("[[[\n\"\n", &[("SOCKTUNE_CORK", "1")], None);
        assert!(l.top.cork && l.rules.0.is_empty());
        assert!(l
            .problems
            .iter()
            .all(|p| p.starts_with("socktune: /etc/socktune.toml")));
        assert!(!l.problems.is_empty());
    }

    #[test]
    fn doctor_describes_each_rule_by_what_it_changes() {
        let l = load_for(PROXY, &[], None);
        let lines: Vec<String> = l.rules.0.iter().map(Rule::describe).collect();
        assert_eq!(
            lines,
            [
                "line 5: program nginx*, role server, ports 80,443 -> defer_accept 5",
                "line 11: role client, ports 5432, peers 10.0.0.0/8,::1/128 -> keepalive 30:5:3 (role client); user_timeout 20000 (role client)",
                "line 18: role client -> nodelay off (role client)",
            ]
        );
    }

    #[test]
    fn a_rule_keeps_the_keys_it_sets_over_the_variables() {
        let env = [("SOCKTUNE_DEFER_ACCEPT", "9"), ("SOCKTUNE_NODELAY", "0")];
        let l = load_for(PROXY, &env, Some(&["nginx"]));
        let (top, server) = (&l.top, &l.rules.0[0]);
        assert_eq!((top.defer_accept, top.nodelay), (Some(9), false));
        assert_eq!(server.config.defer_accept, Some(5), "its own key");
        assert!(!server.config.nodelay, "left to the top level");
        let keeps = |name: &str| server.keeps(SETTINGS.iter().find(|s| s.name == name).unwrap());
        assert!(keeps("DEFER_ACCEPT") && keeps("PORTS") && keeps("ROLE") && keeps("CORK_ROLE"));
        assert!(!keeps("NODELAY") && !keeps("CORK"));
    }

    #[test]
    fn with_file_reads_the_file_the_variables_name_and_top_level_gives_its_lines() {
        let vars = [("SOCKTUNE_CONFIG".to_string(), PATH.to_string())];
        let (parsed, rules) = with_file(&vars, |_| Ok(PROXY.into()), || vec!["nginx".into()]);
        assert!(parsed.config.nodelay && rules.0.len() == 3);
        let (parsed, rules) = with_file(&vars, |_| Err("gone".into()), Vec::new);
        assert_eq!(parsed.problems, [unreadable(PATH, "gone")]);
        assert!(!parsed.config.nodelay && rules.0.is_empty());
        let mut top: Vec<(&str, usize, String)> = top_level(PATH, PROXY)
            .into_iter()
            .map(|(i, line, v)| (SETTINGS[i].name, line, v))
            .collect();
        let want = [("KEEPALIVE", 3, "60".into()), ("NODELAY", 2, "true".into())];
        top.sort();
        assert_eq!(top, want);
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| s.parse::<Prefix>();
        let ten = p("10.0.0.0/8").unwrap();
        assert!(ten.contains("10.255.0.1".parse().unwrap()));
        assert!(!ten.contains("11.0.0.1".parse().unwrap()));
        assert!(!ten.contains("::1".parse().unwrap()));
        assert!(p("::/0").unwrap().contains("2001:db8::1".parse().unwrap()));
        assert!(p("0.0.0.0/0").unwrap().contains("1.2.3.4".parse().unwrap()));
        assert!(p("::1").unwrap().contains("::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
    }

    /// Property tests over the rules file (proptest; 500 cases each).
    mod fuzz {
        use super::*;
        use crate::config::good;
        use proptest::prelude::*;
        use proptest::sample::select;

        /// Lines: settings and matchers with good, near and wild values, table headers, junk.
        fn line() -> impl Strategy<Value = String> {
            let keys: Vec<String> = SETTINGS
                .iter()
                .map(Setting::key)
                .chain(MATCHERS.map(String::from))
                .chain(["rule".into(), "corkk".into()])
                .collect();
            let value = prop_oneof![
                select(SETTINGS.iter().map(good).collect::<Vec<_>>())
                    .prop_map(|v| format!("{v:?}")),
                "[0-9]{1,12}",
                select(
                    &[
                        "true",
                        "1.5",
                        "[1, 2]",
                        "{a = 1}",
                        "\"\"",
                        "\"10.0.0.0/8,::1\""
                    ][..]
                )
                .prop_map(String::from),
                any::<String>(),
            ];
            prop_oneof![
                (select(keys), value).prop_map(|(k, v)| format!("{k} = {v}")),
                Just("[[rule]]".to_string()),
                Just("[rule]".to_string()),
                "[^\n]{0,20}",
            ]
        }

        /// Every setting at a good value, one per line.
        fn good_file() -> String {
            SETTINGS
                .iter()
                .filter(|s| s.name != "CONFIG")
                .map(|s| format!("{} = {:?}\n", s.key(), good(s)))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(500))]

            #[test]
            fn any_file_loads_and_every_problem_is_one_line_naming_the_file(
                lines in proptest::collection::vec(line(), 0..12)
            ) {
                let l = load(PATH, &lines.join("\n"), &[], Some(&["prog"]));
                for p in &l.problems {
                    prop_assert!(p.starts_with("socktune: /etc/socktune.toml") && !p.contains('\n'), "{p:?}");
                }
                prop_assert!(l.rules.0.len() <= 255);
            }

            #[test]
            fn a_bad_last_line_leaves_every_other_setting_as_set(junk in line()) {
                let file = good_file();
                let clean = load(PATH, &file, &[], None);
                prop_assert!(clean.problems.is_empty(), "{:?}", clean.problems);
                let l = load(PATH, &format!("{file}{junk}\n"), &[], None);
                prop_assert!(l.problems.len() <= 1, "{:?}", l.problems);
                if let Some(p) = l.problems.first() {
                    prop_assert!(p.starts_with(&format!("socktune: {PATH}:{}: ", file.lines().count() + 1)), "{p:?}");
                }
                // The settings the junk line does not name are as the good lines set them (one
                // that names a setting again is a duplicate key: not TOML, so it is skipped).
                let key = junk.split('=').next().unwrap_or("").trim().to_string();
                // The shared role only supplies the default of the per-behaviour roles.
                for s in SETTINGS.iter().filter(|s| s.key() != key && s.name != "CONFIG" && s.name != "ROLE") {
                    let mut again = l.top.clone();
                    prop_assert!(s.kind.apply(&good(s), &mut again).is_ok());
                    prop_assert_eq!(&again, &l.top, "{} changed by {:?}", s.key(), junk);
                }
            }
        }
    }
}
